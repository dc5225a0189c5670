// createPersistence() without services: wiring, configuration errors, close().
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  ConfigError,
  createPersistence,
  DynamoDBRulesStore,
  MemoryCacheBackend,
  MemoryFileStore,
  MemoryRulesStore,
  RedisCacheBackend,
  S3FileStore,
} from "../../mod.ts";
import { RULES_FIXTURE } from "../contract/fixtures.ts";

describe("createPersistence()", () => {
  it("wires the memory backends, loaded with the data it is given", async () => {
    const persistence = createPersistence({ backend: "memory", data: RULES_FIXTURE, env: {} });
    assert.ok(persistence.rules instanceof MemoryRulesStore);
    assert.ok(persistence.cache instanceof MemoryCacheBackend);
    assert.ok(persistence.files instanceof MemoryFileStore);
    assert.equal((await persistence.rules.getCalculationRule("ACME", "FICA_SS")).scope, "GLOBAL");
    await persistence.close();
  });

  it("wires DynamoDB, Redis and S3 for aws from the environment, without connecting", async () => {
    const persistence = createPersistence({
      env: {
        AWS_REGION: "us-east-1",
        BLUESTAR_S3_BUCKET: "bluestar-files-dev",
        BLUESTAR_TABLE_SUFFIX: "-dev",
        BLUESTAR_REDIS_URL: "redis://127.0.0.1:6379",
        BLUESTAR_CACHE_TTL_SECONDS: "60",
      },
    });
    assert.ok(persistence.rules instanceof DynamoDBRulesStore);
    assert.ok(persistence.cache instanceof RedisCacheBackend);
    assert.ok(persistence.files instanceof S3FileStore);
    assert.equal(persistence.config.tableSuffix, "-dev");
    assert.equal(persistence.config.cacheTtlSeconds, 60);
    await persistence.close();
  });

  it("has no cache for aws without a Redis URL", async () => {
    const persistence = createPersistence({ region: "us-east-1", s3Bucket: "bluestar-files", env: {} });
    assert.equal(persistence.cache, null);
    await persistence.close();
  });

  it("never falls back to memory: missing AWS settings are one ConfigError", () => {
    assert.throws(() => createPersistence({ env: {} }), ConfigError);
    assert.throws(
      () => createPersistence({ env: { BLUESTAR_BACKEND: "aws", AWS_REGION: "us-east-1" } }),
      /BLUESTAR_S3_BUCKET/,
    );
  });
});
