// RedisCacheBackend on a real three-master Redis Cluster (.ci/redis_cluster
// starts it on 7001-7003): the cache contract, the store's contract through
// the cluster with its in-process tier and bus, and what a cluster client
// says when it is pointed at a server that is no cluster node.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { createCluster } from "redis";
import { CacheError, RedisCacheBackend, RedisInvalidationBus } from "../../mod.ts";
import { cacheContract } from "../contract/cache_contract.ts";
import { uniqueId } from "../contract/fixtures.ts";
import { rulesStoreContract } from "../contract/rules_store_contract.ts";
import { DynamoDBRulesStore } from "../../src/persistence/dynamodb_backend.ts";
import { countingClient, createTables, deleteTables, uniqueSuffix } from "../support/dynamodb.ts";
import { AWS_ENDPOINT_URL, integrationSuite, probe, REDIS_CLUSTER_NODES, REDIS_URL } from "../support/gate.ts";

const clusterDown = await probe(`redis://${REDIS_CLUSTER_NODES[0]}`);
const clusterOrAwsDown = clusterDown ?? (await probe(AWS_ENDPOINT_URL));
const redisDown = await probe(REDIS_URL);

integrationSuite("RedisCacheBackend (Redis Cluster, three masters)", clusterDown, () => {
  cacheContract("RedisCacheBackend on a Redis Cluster", () => {
    const prefix = `${uniqueId("bluestar-test-cluster")}:`;
    const cache = new RedisCacheBackend({ clusterNodes: REDIS_CLUSTER_NODES, keyPrefix: prefix });
    return Promise.resolve({
      cache,
      elapse: (milliseconds: number) => sleep(milliseconds),
      cleanup: () => cache.close(),
    });
  });

  it("keys land on every master: the cluster is really sharding what the backend writes", async () => {
    const prefix = `${uniqueId("bluestar-test-spread")}:`;
    const cache = new RedisCacheBackend({ clusterNodes: REDIS_CLUSTER_NODES, keyPrefix: prefix });
    const raw = createCluster({ rootNodes: REDIS_CLUSTER_NODES.map((node) => ({ url: `redis://${node}` })) });
    raw.on("error", () => {});
    await raw.connect();
    try {
      const keys = Array.from({ length: 30 }, (_, index) => `k${index}`);
      for (const key of keys) await cache.setex(key, 60, { key });
      const perMaster = await Promise.all(
        raw.masters.map(async (master) => (await (await raw.nodeClient(master)).keys(`${prefix}*`)).length),
      );
      assert.equal(perMaster.length, 3);
      assert.ok(perMaster.every((count) => count > 0), `keys per master: ${perMaster.join(", ")}`);
      assert.equal(perMaster.reduce((sum, count) => sum + count, 0), keys.length);
      for (const key of keys) assert.deepEqual(await cache.get(key), { key });
    } finally {
      await cache.close();
      await raw.close();
    }
  });
});

integrationSuite("DynamoDBRulesStore through a Redis Cluster, in-process tier and bus (moto)", clusterOrAwsDown, () => {
  rulesStoreContract("DynamoDBRulesStore (moto, Redis Cluster, local tier, bus)", async (data, options) => {
    const counting = countingClient();
    const suffix = uniqueSuffix("cluster");
    await createTables(counting.client, suffix, data);
    const cache = new RedisCacheBackend({ clusterNodes: REDIS_CLUSTER_NODES });
    const bus = new RedisInvalidationBus({ clusterNodes: REDIS_CLUSTER_NODES, namespace: suffix });
    const store = new DynamoDBRulesStore({
      ...options,
      client: counting.client,
      tableSuffix: suffix,
      cache,
      invalidationBus: bus,
    });
    return {
      store,
      cleanup: async () => {
        await store.close();
        await Promise.all([cache.close(), bus.close()]);
        await deleteTables(counting.client, suffix);
        counting.client.destroy();
      },
    };
  });
});

integrationSuite("RedisCacheBackend clusterNodes on a single Redis server", redisDown, () => {
  describe("a server with cluster support disabled", () => {
    it('every call fails with a CacheError naming the node and saying "cluster support disabled"', async () => {
      const node = new URL(REDIS_URL).host;
      const events: string[] = [];
      const cache = new RedisCacheBackend({
        clusterNodes: [node],
        onEvent: (event) => event.type === "cache.error" && events.push(event.error.message),
      });
      try {
        await assert.rejects(cache.get("k"), (error: unknown) => {
          assert.ok(error instanceof CacheError);
          assert.match(error.message, /cluster support disabled/);
          assert.ok(error.message.includes(node), error.message);
          assert.doesNotMatch(error.message, /Redis is not connected/);
          return true;
        });
        assert.ok(events.some((message) => /cluster support disabled/.test(message) && message.includes(node)));
      } finally {
        await cache.close();
      }
    });
  });
});
