// createPersistence() for aws on the local endpoint and Redis: wired from the
// environment alone, the rules store reading through the Redis cache, and
// close() releasing every connection.
import assert from "node:assert/strict";
import { after, before, it } from "node:test";
import { createPersistence, type PersistenceEvent, ruleVersionsCacheKey } from "../../mod.ts";
import { RULES_FIXTURE, uniqueId } from "../contract/fixtures.ts";
import { countingClient, createTables, deleteTables, uniqueSuffix } from "../support/dynamodb.ts";
import { AWS_ENDPOINT_URL, integrationSuite, probe, REDIS_URL } from "../support/gate.ts";
import { adminClient, createBucket, deleteBucket } from "../support/s3.ts";

const unreachable = (await probe(AWS_ENDPOINT_URL)) ?? (await probe(REDIS_URL));

integrationSuite("createPersistence() on the local endpoint and Redis", unreachable, () => {
  const { client } = countingClient();
  const s3 = adminClient();
  const suffix = uniqueSuffix("factory");
  let bucket: string;

  before(async () => {
    await createTables(client, suffix, RULES_FIXTURE);
    bucket = await createBucket(s3);
  });
  after(async () => {
    await deleteTables(client, suffix);
    await deleteBucket(s3, bucket);
    client.destroy();
    s3.destroy();
  });

  it("wires DynamoDB through Redis and S3 from the environment; the second read is a cache hit", async () => {
    const events: PersistenceEvent[] = [];
    const persistence = createPersistence({
      env: {
        BLUESTAR_BACKEND: "aws",
        AWS_REGION: "us-east-1",
        BLUESTAR_AWS_ENDPOINT_URL: AWS_ENDPOINT_URL,
        BLUESTAR_TABLE_SUFFIX: suffix,
        BLUESTAR_S3_BUCKET: bucket,
        BLUESTAR_REDIS_URL: REDIS_URL,
        BLUESTAR_CACHE_TTL_SECONDS: "30",
      },
      onEvent: (event) => events.push(event),
    });
    try {
      // Connected first: the first read's cache lookup is bounded by cacheTimeoutMs (50 ms), which a connect
      // on a loaded machine can exceed (a cache.error, then DynamoDB: right, but not the path this test follows).
      assert.equal(await persistence.cache!.get(uniqueId("warm-up")), null);
      const clientId = uniqueId("client");
      const first = await persistence.rules.getCalculationRule(clientId, "FICA_SS");
      const second = await persistence.rules.getCalculationRule(clientId, "FICA_SS");
      assert.deepEqual(second, first);
      assert.equal(first.scope, "GLOBAL");
      const kinds = events.map((event) => event.type).filter((type) =>
        type.startsWith("cache.") || type.startsWith("dynamodb.")
      );
      // One entry per owner: the client's own versions (none) and GLOBAL's.
      assert.deepEqual(kinds, ["cache.miss", "cache.miss", "dynamodb.request", "cache.hit", "cache.hit"]);
      const own = ruleVersionsCacheKey(suffix, "calculation", "FICA_SS", clientId);
      const global = ruleVersionsCacheKey(suffix, "calculation", "FICA_SS", "GLOBAL");
      const { scope: _, ...version } = first;
      assert.deepEqual(
        await persistence.cache!.get(own),
        { clientId, ruleId: "FICA_SS", revision: 0, versions: [] },
        "the client's emptiness is cached under its own key",
      );
      assert.deepEqual(await persistence.cache!.get(global), {
        clientId: "GLOBAL",
        ruleId: "FICA_SS",
        revision: 1,
        versions: [version],
      });
      await persistence.cache!.delete(own);
      await persistence.cache!.delete(global);

      await persistence.files.write("results/summary.json", '{"ok":true}');
      assert.equal(new TextDecoder().decode(await persistence.files.read("results/summary.json")), '{"ok":true}');
    } finally {
      await persistence.close();
    }
    await assert.rejects(persistence.rules.getIrsLimits(2026), /closed/i);
  });
});
