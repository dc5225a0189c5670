// Configuration: explicit settings, then the environment, every problem at once.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConfigError } from "../../mod.ts";
import { resolveConfig } from "../../src/persistence/config.ts";

const AWS_ENV = { AWS_REGION: "us-east-1", BLUESTAR_S3_BUCKET: "bluestar-files-dev" };

describe("resolveConfig()", () => {
  it("reads every variable from the environment", () => {
    assert.deepEqual(
      resolveConfig({}, {
        ...AWS_ENV,
        BLUESTAR_BACKEND: "aws",
        BLUESTAR_TABLE_SUFFIX: "-dev",
        BLUESTAR_AWS_ENDPOINT_URL: "http://127.0.0.1:4566",
        BLUESTAR_REDIS_URL: "redis://127.0.0.1:6379",
        BLUESTAR_CACHE_TTL_SECONDS: "60",
      }),
      {
        backend: "aws",
        tableSuffix: "-dev",
        region: "us-east-1",
        endpointUrl: "http://127.0.0.1:4566",
        s3Bucket: "bluestar-files-dev",
        redisUrl: "redis://127.0.0.1:6379",
        cacheTtlSeconds: 60,
      },
    );
  });

  it("prefers explicit settings, then BLUESTAR_AWS_ENDPOINT_URL, then AWS_ENDPOINT_URL", () => {
    const env = { ...AWS_ENV, AWS_ENDPOINT_URL: "http://aws-fallback:4566", BLUESTAR_TABLE_SUFFIX: "-env" };
    assert.equal(resolveConfig({}, env).endpointUrl, "http://aws-fallback:4566");
    const config = resolveConfig({ endpointUrl: "http://explicit:4566", tableSuffix: "-x", redisUrl: null }, {
      ...env,
      BLUESTAR_REDIS_URL: "redis://ignored:6379",
    });
    assert.equal(config.endpointUrl, "http://explicit:4566");
    assert.equal(config.tableSuffix, "-x");
    assert.equal(config.redisUrl, null);
  });

  it("defaults to aws, no cache, a 300-second TTL, and us-east-1 only with a local endpoint", () => {
    const config = resolveConfig({}, AWS_ENV);
    assert.equal(config.backend, "aws");
    assert.equal(config.redisUrl, null);
    assert.equal(config.cacheTtlSeconds, 300);
    assert.equal(config.endpointUrl, null);
    const local = resolveConfig({ endpointUrl: "http://127.0.0.1:4566" }, { BLUESTAR_S3_BUCKET: "b-files" });
    assert.equal(local.region, "us-east-1");
  });

  it("never falls back to memory when AWS settings are missing: one ConfigError lists them all", () => {
    assert.throws(() => resolveConfig({}, {}), (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.equal(error.code, "CONFIG_ERROR");
      assert.match(error.message, /AWS_REGION is not set; BLUESTAR_S3_BUCKET is not set/);
      return true;
    });
  });

  it("lists every malformed setting at once and never echoes a Redis URL", () => {
    assert.throws(
      () =>
        resolveConfig({}, {
          BLUESTAR_BACKEND: "dynamo",
          BLUESTAR_TABLE_SUFFIX: "bad suffix!",
          AWS_REGION: "mars",
          BLUESTAR_AWS_ENDPOINT_URL: "not a url",
          BLUESTAR_S3_BUCKET: "Bad_Bucket",
          BLUESTAR_REDIS_URL: "http://user:s3cret-pass@host",
          BLUESTAR_CACHE_TTL_SECONDS: "-5",
        }),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        for (
          const name of [
            "BLUESTAR_BACKEND",
            "BLUESTAR_TABLE_SUFFIX",
            "AWS_REGION",
            "BLUESTAR_AWS_ENDPOINT_URL",
            "BLUESTAR_S3_BUCKET",
            "BLUESTAR_REDIS_URL",
            "BLUESTAR_CACHE_TTL_SECONDS",
          ]
        ) assert.match(error.message, new RegExp(name));
        assert.doesNotMatch(error.message, /s3cret-pass/);
        return true;
      },
    );
  });

  it("memory needs no AWS settings and drops them", () => {
    const config = resolveConfig({ backend: "memory" }, { BLUESTAR_S3_BUCKET: "b-files", AWS_REGION: "us-east-1" });
    assert.deepEqual(config, {
      backend: "memory",
      tableSuffix: "",
      region: null,
      endpointUrl: null,
      s3Bucket: null,
      redisUrl: null,
      cacheTtlSeconds: 300,
    });
  });
});
