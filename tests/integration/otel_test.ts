// The OpenTelemetry adapter on the real services: createPersistence() for aws
// on the local endpoint (DynamoDB, S3) and Redis, with the adapter as its one
// onEvent hook, recorded by the OpenTelemetry SDK's in-memory exporters.
import assert from "node:assert/strict";
import { it } from "node:test";
import { SpanKind } from "@opentelemetry/api";
import { createPersistence, tableName } from "../../mod.ts";
import { uniqueId } from "../contract/fixtures.ts";
import { freshEnvironment } from "../support/environment.ts";
import { AWS_ENDPOINT_URL, integrationSuite, probe, REDIS_URL } from "../support/gate.ts";
import { recorded, recordingTelemetry, total } from "../support/otel.ts";

const unreachable = (await probe(AWS_ENDPOINT_URL)) ?? (await probe(REDIS_URL));

integrationSuite("openTelemetryHook() on the local endpoint and Redis", unreachable, () => {
  const environment = freshEnvironment("otel");

  it("DynamoDB requests, Redis commands, cache lookups and S3 operations become metrics and spans", async () => {
    const telemetry = recordingTelemetry();
    const persistence = createPersistence({ env: environment.env(), onEvent: telemetry.onEvent });
    const clientId = uniqueId("client");
    const calculationTable = tableName("calculation-rules", environment.suffix);
    const bucket = environment.bucket();
    try {
      // Connected first, so that the first lookup is a miss, not a connect slower than cacheTimeoutMs.
      assert.equal(await persistence.cache!.get(uniqueId("warm-up")), null);
      await persistence.rules.getCalculationRule(clientId, "FICA_SS");
      // Write-backs are not awaited by reads: read again until the answer comes from Redis.
      for (let attempt = 0; attempt < 50; attempt++) {
        await persistence.rules.getCalculationRule(clientId, "FICA_SS");
        const hits = total(await telemetry.points("bluestar.cache.lookups"), { "bluestar.cache.result": "hit" });
        if (hits > 0) break;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      await persistence.files.write("results/summary.json", '{"ok":true}');
      assert.equal(new TextDecoder().decode(await persistence.files.read("results/summary.json")), '{"ok":true}');
    } finally {
      await persistence.close();
    }

    const durations = await telemetry.points("db.client.operation.duration");
    const batchGet = {
      "db.system.name": "aws.dynamodb",
      "db.operation.name": "BatchGetItem",
      "db.collection.name": calculationTable,
    };
    assert.equal(recorded(durations, batchGet), 1, "one DynamoDB request: every later read was a cache hit");
    // Each read looks up both owners' entries (the client's own, GLOBAL's) in one MGET; the miss writes both back.
    assert.ok(recorded(durations, { "db.system.name": "redis", "db.operation.name": "MGET" }) >= 2);
    assert.equal(recorded(durations, { "db.system.name": "redis", "db.operation.name": "EVAL" }), 2);

    const lookups = await telemetry.points("bluestar.cache.lookups");
    const tier = { "bluestar.cache.tier": "redis", "bluestar.cache.kind": "calculation" };
    assert.equal(total(lookups, { ...tier, "bluestar.cache.result": "miss" }), 2);
    assert.ok(total(lookups, { ...tier, "bluestar.cache.result": "hit" }) >= 2);

    const files = await telemetry.points("bluestar.file_store.operation.duration");
    for (const operation of ["write", "read"]) {
      assert.equal(recorded(files, { "bluestar.file_store.operation": operation, "aws.s3.bucket": bucket }), 1);
    }
    assert.deepEqual(await telemetry.points("bluestar.errors"), []);

    const spans = telemetry.spans();
    const request = spans.find((span) => span.name === `BatchGetItem ${calculationTable}`);
    assert.equal(request?.kind, SpanKind.CLIENT);
    assert.deepEqual(request?.attributes["aws.dynamodb.table_names"], [calculationTable]);
    const read = spans.find((span) => span.name === "S3 read");
    assert.equal(read?.attributes["aws.s3.bucket"], bucket);
    assert.equal(read?.attributes["aws.s3.key"], "results/summary.json");
    assert.ok(spans.some((span) => span.name === "getCalculationRule" && span.kind === SpanKind.INTERNAL));
    await telemetry.shutdown();
  });
});
