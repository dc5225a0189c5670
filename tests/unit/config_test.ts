// Configuration: explicit settings, then the environment, every problem at once.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConfigError, DynamoDBRulesStore } from "../../mod.ts";
import { resolveConfig, resolveConnections, tableSuffixProblem } from "../../src/persistence/config.ts";
import { checkTableSuffix } from "../../src/persistence/seed.ts";

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
        BLUESTAR_CACHE_TIMEOUT_MS: "100",
      }),
      {
        backend: "aws",
        tableSuffix: "-dev",
        region: "us-east-1",
        endpointUrl: "http://127.0.0.1:4566",
        s3Bucket: "bluestar-files-dev",
        redisUrl: "redis://127.0.0.1:6379",
        cacheTtlSeconds: 60,
        cacheTimeoutMs: 100,
      },
    );
  });

  it("the cache timeout defaults to 50 ms, is plain decimal digits of milliseconds, and the option wins", () => {
    assert.equal(resolveConfig({}, AWS_ENV).cacheTimeoutMs, 50);
    assert.equal(
      resolveConfig({ cacheTimeoutMs: 250 }, { ...AWS_ENV, BLUESTAR_CACHE_TIMEOUT_MS: "80" }).cacheTimeoutMs,
      250,
    );
    for (const timeout of ["0", "-5", "1e3", "0x10", "2.5", "50ms", "2147483648"]) {
      assert.throws(
        () => resolveConfig({}, { ...AWS_ENV, BLUESTAR_CACHE_TIMEOUT_MS: timeout }),
        new RegExp(`BLUESTAR_CACHE_TIMEOUT_MS "${timeout}" is not a positive number of milliseconds`),
      );
    }
    assert.throws(() => resolveConfig({ cacheTimeoutMs: 0 }, AWS_ENV), /cacheTimeoutMs "0" is not a positive number/);
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

  it("a TTL from the environment is plain decimal digits: 1e3, 0x10, 0b1, 60.0 and +60 are refused", () => {
    assert.equal(resolveConfig({}, { ...AWS_ENV, BLUESTAR_CACHE_TTL_SECONDS: "060" }).cacheTtlSeconds, 60);
    for (const ttl of ["1e3", "0x10", "0b1", "0o7", "60.0", "+60", "6_0", "Infinity", "0", "2147483648"]) {
      assert.throws(
        () => resolveConfig({}, { ...AWS_ENV, BLUESTAR_CACHE_TTL_SECONDS: ttl }),
        new RegExp(`BLUESTAR_CACHE_TTL_SECONDS "${ttl.replace("+", "\\+")}" is not a positive integer of seconds`),
        ttl,
      );
    }
  });

  it("a problem names the variable or option the value came from", () => {
    const problem = (settings: Record<string, unknown>, env: Record<string, string>) => {
      try {
        resolveConfig(settings, { ...AWS_ENV, ...env });
      } catch (error) {
        return (error as Error).message;
      }
      assert.fail("expected a ConfigError");
    };
    assert.match(problem({}, { AWS_ENDPOINT_URL: "ftp://host" }), /: AWS_ENDPOINT_URL "ftp:\/\/host" is not/);
    assert.doesNotMatch(problem({}, { AWS_ENDPOINT_URL: "ftp://host" }), /BLUESTAR_AWS_ENDPOINT_URL/);
    assert.match(
      problem({}, { BLUESTAR_AWS_ENDPOINT_URL: "ftp://a", AWS_ENDPOINT_URL: "http://b" }),
      /: BLUESTAR_AWS_ENDPOINT_URL "ftp:\/\/a" is not/,
    );
    assert.match(problem({ endpointUrl: "ftp://c" }, {}), /: endpointUrl "ftp:\/\/c" is not/);
    assert.match(problem({ tableSuffix: "a b" }, {}), /: tableSuffix "a b": it may hold only/);
    assert.match(problem({ cacheTtlSeconds: 1.5 }, {}), /: cacheTtlSeconds "1.5" is not a positive integer/);
    assert.match(problem({ region: "mars" }, {}), /: region "mars" is not a region name/);
  });

  it('a table suffix must start with -, _ or .: the configuration, the DynamoDB store and the seed refuse "dev" with a hint', () => {
    assert.equal(tableSuffixProblem(""), undefined);
    for (const suffix of ["-dev", "_dev", ".dev", "-", "-a.b_c-1"]) assert.equal(tableSuffixProblem(suffix), undefined);
    const hint = /"dev": it does not start with "-", "_" or "\." \(did you mean "-dev"\?\)/;
    assert.throws(() => resolveConfig({}, { ...AWS_ENV, BLUESTAR_TABLE_SUFFIX: "dev" }), hint);
    assert.throws(() => new DynamoDBRulesStore({ region: "us-east-1", tableSuffix: "dev" }), hint);
    assert.throws(() => checkTableSuffix("dev"), hint);
    assert.throws(() => checkTableSuffix(`-${"x".repeat(227)}`), /table names would be over 255 characters/);
    assert.equal(checkTableSuffix(`-${"x".repeat(226)}`).length, 227);
  });

  it("the configuration shows the Redis URL without its userinfo; the URL to connect with keeps it", () => {
    const env = { ...AWS_ENV, BLUESTAR_REDIS_URL: "rediss://bluestar:redis-pw@cache.example:6380/1" };
    const { config, redisUrl } = resolveConnections({}, env);
    assert.equal(config.redisUrl, "rediss://[redacted]@cache.example:6380/1");
    assert.equal(redisUrl, env.BLUESTAR_REDIS_URL);
    assert.deepEqual(resolveConfig({}, env), config);
  });

  it("an AWS endpoint that carries credentials is refused (the S3 store refuses it too), shown redacted", () => {
    assert.throws(
      () => resolveConfig({}, { ...AWS_ENV, AWS_ENDPOINT_URL: "http://admin:aws-pw@127.0.0.1:4566" }),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.match(error.message, /AWS_ENDPOINT_URL "http:\/\/\[redacted\]@127\.0\.0\.1:4566" carries credentials/);
        assert.doesNotMatch(error.message, /aws-pw/);
        return true;
      },
    );
    const memory = { backend: "memory" as const, endpointUrl: "http://admin:aws-pw@127.0.0.1:4566" };
    assert.equal(resolveConfig(memory, {}).endpointUrl, null);
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
      cacheTimeoutMs: 50,
    });
  });
});
