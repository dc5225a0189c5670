// The two cache tiers across processes, on a real Redis and on the real
// three-master cluster: process A (this one) reads through its in-process
// tier; process B (rule_writer.ts, a child) changes the rule. Then the bus of
// A cut silently through a paused proxy, and Redis gone entirely.
import assert from "node:assert/strict";
import { after, before, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { createClient, createCluster } from "redis";
import {
  type BusEvent,
  RedisCacheBackend,
  RedisInvalidationBus,
  type RedisInvalidationBusOptions,
  type RulesStoreEvent,
} from "../../mod.ts";
import { DynamoDBRulesStore } from "../../src/persistence/dynamodb_backend.ts";
import { invalidationChannel, ruleVersionsCacheKey } from "../../src/core/keys.ts";
import { RULES_FIXTURE, uniqueId } from "../contract/fixtures.ts";
import { countingClient, createTables, deleteTables, uniqueSuffix } from "../support/dynamodb.ts";
import { AWS_ENDPOINT_URL, integrationSuite, probe, REDIS_CLUSTER_NODES, REDIS_URL } from "../support/gate.ts";
import { eventually, TcpProxy } from "../support/net.ts";
import { RuleWriter } from "../support/two_processes.ts";

const awsDown = await probe(AWS_ENDPOINT_URL);
const redisDown = awsDown ?? (await probe(REDIS_URL));
const clusterDown = awsDown ?? (await probe(`redis://${REDIS_CLUSTER_NODES[0]}`));
const redisAddress = new URL(REDIS_URL);

/** The bound the issue sets for a change to reach another process with the bus up, in milliseconds. */
const PROPAGATION_BOUND_MS = 50;
/** A short heartbeat, so the silent-cut tests take a fraction of a second. */
const HEARTBEAT_MS = 300;

type Target = { url: string } | { clusterNodes: string[] };

/** Process A: a store on fresh tables through Redis, its in-process tier and a bus; events collected. */
async function processA(target: Target, busTarget: Target = target) {
  const { client } = countingClient();
  const suffix = uniqueSuffix("tiers");
  await createTables(client, suffix, RULES_FIXTURE);
  const events: Array<RulesStoreEvent | BusEvent> = [];
  const cache = new RedisCacheBackend({ ...target, commandTimeoutMs: 100 });
  const bus = new RedisInvalidationBus({
    ...(busTarget as RedisInvalidationBusOptions),
    namespace: suffix,
    heartbeatMs: HEARTBEAT_MS,
    onEvent: (event) => events.push(event),
  });
  const store = new DynamoDBRulesStore({
    client,
    tableSuffix: suffix,
    cache,
    invalidationBus: bus,
    localCache: { maxEntries: 1000, ttlSeconds: 60 },
    onEvent: (event) => events.push(event),
  });
  return {
    store,
    suffix,
    events,
    /** The tier that answered the last hit, or the last lookup event. */
    lastAnswer: () => {
      const last = events.filter((event) => event.type.startsWith("cache.")).at(-1);
      return last?.type === "cache.hit" ? last.tier : last?.type;
    },
    cleanup: async () => {
      await store.close();
      await Promise.all([cache.close(), bus.close()]);
      await deleteTables(client, suffix);
      client.destroy();
    },
  };
}

/** Reads until the in-process tier answers (the bus is live and the entry kept): a bound on waiting, not a timing claim. */
async function untilLocal(a: Awaited<ReturnType<typeof processA>>, clientId: string): Promise<string> {
  return await eventually(
    async () => {
      const rule = await a.store.getCalculationRule(clientId, "FICA_SS");
      assert.equal(a.lastAnswer(), "local");
      return rule.parameters.rate;
    },
    100,
    20,
  );
}

function tiersAcrossProcesses(name: string, unreachable: string | undefined, target: Target): void {
  integrationSuite(`Two cache tiers across processes (${name})`, unreachable, () => {
    let a: Awaited<ReturnType<typeof processA>>;
    let b: RuleWriter;
    before(async () => {
      a = await processA(target);
      b = new RuleWriter(a.suffix, target);
    });
    after(async () => {
      await b?.close();
      await a?.cleanup();
    });

    it(`A serves B's change within ${PROPAGATION_BOUND_MS} ms of B's change returning, and never the old value after`, async () => {
      const clientId = uniqueId("client");
      assert.equal(await untilLocal(a, clientId), "0.062");
      for (const rate of ["0.07", "0.071", "0.072"]) {
        await b.change(clientId, "FICA_SS", rate);
        await sleep(PROPAGATION_BOUND_MS);
        // From here on the old value is never served, whichever tier answers.
        for (let read = 0; read < 20; read++) {
          assert.equal((await a.store.getCalculationRule(clientId, "FICA_SS")).parameters.rate, rate);
        }
        assert.equal(a.lastAnswer(), "local", "the new value is served from the in-process tier again");
      }
    });

    it("messages on the namespace's channel carry the changed keys, never values", async () => {
      const clientId = uniqueId("client");
      const messages: string[] = [];
      const subscriber = "url" in target
        ? createClient({ url: target.url })
        : createCluster({ rootNodes: target.clusterNodes.map((node) => ({ url: `redis://${node}` })) });
      subscriber.on("error", () => {});
      await subscriber.connect();
      await subscriber.subscribe(invalidationChannel(a.suffix), (message: string) => messages.push(message));
      try {
        await b.change(clientId, "FICA_SS", "0.0765");
        // The per-owner entry of the client's versions of the rule: the one the change touched.
        const key = ruleVersionsCacheKey(a.suffix, "calculation", "FICA_SS", clientId);
        await eventually(() => Promise.resolve(assert.ok(messages.includes(JSON.stringify({ keys: [key] })))), 50, 20);
        await eventually(() => Promise.resolve(assert.ok(messages.includes('{"keys":[]}'), "no heartbeat")), 50, 20);
        assert.ok(messages.every((message) => !message.includes("0.0765")), messages.join("\n"));
      } finally {
        await subscriber.close();
      }
    });
  });
}

tiersAcrossProcesses("Redis", redisDown, { url: REDIS_URL });
tiersAcrossProcesses("Redis Cluster", clusterDown, { clusterNodes: REDIS_CLUSTER_NODES });

integrationSuite("Two cache tiers when the bus or Redis is lost (Redis)", redisDown, () => {
  it("A's bus cut silently: A serves B's change within the heartbeat plus one DynamoDB read; the bus back, the tier answers again", async () => {
    const proxy = new TcpProxy(redisAddress.hostname, Number(redisAddress.port || 6379));
    await proxy.start();
    const a = await processA({ url: REDIS_URL }, { url: `redis://127.0.0.1:${proxy.port}` });
    const b = new RuleWriter(a.suffix, { url: REDIS_URL });
    try {
      const clientId = uniqueId("client");
      assert.equal(await untilLocal(a, clientId), "0.062");
      proxy.pause();
      await b.change(clientId, "FICA_SS", "0.08");
      // The bus heard nothing since the pause, which came before the change: past the heartbeat it is lost.
      await sleep(HEARTBEAT_MS + 10);
      assert.equal((await a.store.getCalculationRule(clientId, "FICA_SS")).parameters.rate, "0.08");
      assert.notEqual(a.lastAnswer(), "local");
      assert.ok(a.events.some((event) => event.type === "bus.lost"));
      for (let read = 0; read < 10; read++) {
        assert.equal((await a.store.getCalculationRule(clientId, "FICA_SS")).parameters.rate, "0.08");
        assert.notEqual(a.lastAnswer(), "local", "the in-process tier does not answer while the bus is lost");
      }
      proxy.resume();
      assert.equal(await untilLocal(a, clientId), "0.08");
      assert.ok(a.events.some((event) => event.type === "bus.restored"));
    } finally {
      await b.close();
      await a.cleanup();
      await proxy.stop();
    }
  });

  it("Redis stopped entirely (cache and bus): every read keeps succeeding from DynamoDB", async () => {
    const proxy = new TcpProxy(redisAddress.hostname, Number(redisAddress.port || 6379));
    await proxy.start();
    const through = { url: `redis://127.0.0.1:${proxy.port}` };
    const a = await processA(through);
    try {
      const clientId = uniqueId("client");
      assert.equal(await untilLocal(a, clientId), "0.062");
      await proxy.stop(); // every connection dropped, every new one refused
      await sleep(HEARTBEAT_MS + 10);
      for (let read = 0; read < 20; read++) {
        const rule = await a.store.getCalculationRule(clientId, "FICA_SS");
        assert.equal(rule.parameters.rate, "0.062");
        assert.notEqual(a.lastAnswer(), "local");
        assert.equal((await a.store.getIrsLimits(2026)).year, 2026);
      }
      assert.ok(a.events.some((event) => event.type === "cache.error"));
    } finally {
      await a.cleanup();
    }
  });
});
