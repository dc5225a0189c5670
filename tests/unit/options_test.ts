// The per-option rules (src/persistence/options.ts): each parser alone, and
// the same rule giving the same answer through every place that takes it.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { S3Client } from "@aws-sdk/client-s3";
import { ConfigError } from "../../src/core/errors.ts";
import { MAX_TTL_SECONDS } from "../../src/core/values.ts";
import { resolveConfig } from "../../src/persistence/config.ts";
import { DynamoDBRulesStore } from "../../src/persistence/dynamodb_backend.ts";
import {
  bucketProblems,
  clashProblems,
  DEFAULT_CACHE_TTL_SECONDS,
  endpointUrlProblems,
  hookProblems,
  integerProblems,
  optionProblemsText,
  optionProblemText,
  problemClause,
  reasonProblems,
  redisDbProblems,
  redisUrlProblems,
  regionProblems,
  tableSuffixProblems,
  timeoutMsProblems,
  ttlSecondsProblems,
  usageProblemText,
} from "../../src/persistence/options.ts";
import { RedisCacheBackend } from "../../src/persistence/redis_backend.ts";
import { S3FileStore } from "../../src/persistence/s3_backend.ts";
import { checkTableSuffix, createSeedClient } from "../../src/persistence/seed.ts";
import { parseSeedArgs } from "../../scripts/seed_dynamodb.ts";

const texts = (problems: ReturnType<typeof regionProblems>) => problems.map(optionProblemText);

describe("options: one parser per option", () => {
  it("table suffix: empty or a separator first, table-name characters, table names within 255", () => {
    for (const suffix of ["", "-dev", "_dev", ".dev", "-", "-a.b_c-1", `-${"x".repeat(226)}`]) {
      assert.deepEqual(tableSuffixProblems("tableSuffix", suffix), [], suffix);
    }
    assert.deepEqual(texts(tableSuffixProblems("tableSuffix", "dev")), [
      'tableSuffix "dev": it does not start with "-", "_" or "." (did you mean "-dev"?)',
    ]);
    assert.deepEqual(texts(tableSuffixProblems("s", "a b")), [
      's "a b": it may hold only letters, digits, "_", "-" and "."',
    ]);
    assert.deepEqual(texts(tableSuffixProblems("s", 7)), ['s "7": it is not a string']);
    assert.deepEqual(texts(tableSuffixProblems("s", `-${"x".repeat(227)}`)).length, 1);
    assert.match(
      optionProblemText(tableSuffixProblems("s", `-${"x".repeat(227)}`)[0]),
      /table names would be over 255/,
    );
  });

  it("region: a region name", () => {
    for (const region of ["us-east-1", "eu-central-2", "us-gov-west-1", "xx-fake-9"]) {
      assert.deepEqual(regionProblems("region", region), [], region);
    }
    for (const region of ["", "mars", "us east 1", "US-EAST-1", 1, null]) {
      assert.deepEqual(texts(regionProblems("region", region)), [
        `region ${JSON.stringify(String(region))} is not a region name (like "us-east-1")`,
      ]);
    }
  });

  it("endpoint URL: http or https, never userinfo, shown redacted", () => {
    for (const url of ["http://127.0.0.1:4566", "https://dynamodb.us-east-1.amazonaws.com", "http://[::1]:4566/"]) {
      assert.deepEqual(endpointUrlProblems("endpointUrl", url), [], url);
    }
    assert.deepEqual(texts(endpointUrlProblems("e", "ftp://127.0.0.1")), [
      'e "ftp://127.0.0.1" is not an http or https URL (like "http://127.0.0.1:4566")',
    ]);
    assert.deepEqual(texts(endpointUrlProblems("e", "localhost:4566")).length, 1);
    assert.deepEqual(endpointUrlProblems("e", 4566)[0].value, "[redacted]");
    for (const url of ["http://admin:pw@127.0.0.1:4566", "http://admin@127.0.0.1:4566", "https://:pw@h"]) {
      const [problem] = endpointUrlProblems("e", url);
      assert.match(problem.problem, /^carries credentials/, url);
      assert.ok(problem.value?.includes("[redacted]@"), url);
      assert.doesNotMatch(optionProblemText(problem), /pw|admin/);
    }
  });

  it("Redis URL: redis:// or rediss://, a host, a database path, good percent-encoding; shown redacted", () => {
    for (const url of ["redis://127.0.0.1:6379", "rediss://u:p@cache:6380/1", "redis://[::1]/0"]) {
      assert.deepEqual(redisUrlProblems("url", url), [], url);
    }
    assert.deepEqual(texts(redisUrlProblems("url", "redis://:pw@host:99999")), [
      'url "redis://[redacted]" is not a valid URL',
    ]);
    assert.deepEqual(texts(redisUrlProblems("url", "http://u:pw@cache")), [
      'url "http://[redacted]@cache" is not a redis:// or rediss:// URL',
    ]);
    assert.deepEqual(texts(redisUrlProblems("url", "redis://cache/x")), [
      'url "redis://cache/x" has a database "x" that is not a non-negative integer',
    ]);
    assert.deepEqual(texts(redisUrlProblems("url", "redis://:%zz@cache")), [
      'url "redis://[redacted]@cache" has malformed percent-encoding in its credentials',
    ]);
  });

  it("numbers: TTL seconds, timeouts, Redis databases, bounded integers", () => {
    assert.deepEqual(ttlSecondsProblems("ttl", 1), []);
    assert.deepEqual(ttlSecondsProblems("ttl", "60"), []);
    assert.deepEqual(ttlSecondsProblems("ttl", MAX_TTL_SECONDS), []);
    for (const ttl of [0, -1, 1.5, NaN, MAX_TTL_SECONDS + 1, "1e3", "0x10", " 60", "", "+5"]) {
      assert.deepEqual(texts(ttlSecondsProblems("ttl", ttl)), [
        `ttl ${JSON.stringify(String(ttl))} is not a positive integer of seconds`,
      ]);
    }
    assert.deepEqual(timeoutMsProblems("t", 0.5), []);
    assert.deepEqual(timeoutMsProblems("t", 2_147_483_647), []);
    for (const ms of [0, -1, NaN, Infinity, 2_147_483_648, "50"]) {
      assert.equal(timeoutMsProblems("t", ms).length, 1, String(ms));
    }
    assert.deepEqual(redisDbProblems("db", 0), []);
    assert.deepEqual(redisDbProblems("db", 2_147_483_646), []);
    for (const db of [-1, 1.5, 2_147_483_647, "0"]) assert.equal(redisDbProblems("db", db).length, 1, String(db));
    assert.deepEqual(integerProblems("port", 65535, 1, 65535), []);
    assert.deepEqual(texts(integerProblems("port", 0, 1, 65535)), ['port "0" is not an integer from 1 to 65535']);
  });

  it("bucket, hook, clashes and core reasons", () => {
    assert.deepEqual(bucketProblems("bucket", "bluestar-files-dev"), []);
    assert.match(texts(bucketProblems("bucket", "Bad_Bucket"))[0], /^bucket "Bad_Bucket" is not a bucket name: it /);
    assert.deepEqual(hookProblems("onEvent", undefined), []);
    assert.deepEqual(texts(hookProblems("onEvent", "log")), ["onEvent is not a function"]);
    const options: { region?: string; endpointUrl?: string; maxAttempts?: number } = { region: "x", maxAttempts: 2 };
    assert.deepEqual(texts(clashProblems(options, ["region", "endpointUrl", "maxAttempts"], "client", "why")), [
      "region, maxAttempts cannot be set with client (why)",
    ]);
    assert.deepEqual(clashProblems({}, ["region"] as never[], "client", "why"), []);
    assert.deepEqual(texts(reasonProblems("pageSize", 0, "it is not an integer from 1 to 1000")), [
      'pageSize "0": it is not an integer from 1 to 1000',
    ]);
    assert.deepEqual(reasonProblems("pageSize", 1, undefined), []);
    assert.equal(DEFAULT_CACHE_TTL_SECONDS, 300);
  });

  it("a problem reads as a fragment, a clause and a usage error", () => {
    const [region] = regionProblems("--region", "mars");
    const [suffix] = tableSuffixProblems("--table-suffix", "dev");
    assert.equal(problemClause(region), 'it is not a region name (like "us-east-1")');
    assert.equal(problemClause(suffix), 'it does not start with "-", "_" or "." (did you mean "-dev"?)');
    assert.equal(
      usageProblemText("region", region, "AWS_REGION"),
      'Invalid region "mars" (AWS_REGION): it is not a region name (like "us-east-1")',
    );
    assert.equal(
      usageProblemText("table suffix", suffix),
      'Invalid table suffix "dev": it does not start with "-", "_" or "." (did you mean "-dev"?)',
    );
    assert.equal(
      optionProblemsText([region, suffix]),
      '--region "mars" is not a region name (like "us-east-1"); --table-suffix "dev": it does not start with "-", "_" or "." (did you mean "-dev"?)',
    );
  });
});

describe("options: one rule wherever the option is taken", () => {
  const configError = (call: () => unknown): string => {
    try {
      call();
    } catch (error) {
      assert.ok(error instanceof ConfigError, String(error));
      return error.message;
    }
    assert.fail("expected a ConfigError");
  };
  const aws = { AWS_REGION: "us-east-1", BLUESTAR_S3_BUCKET: "bluestar-files" };

  it("an endpoint with userinfo is refused by the configuration, both AWS stores, the seed and its CLI, redacted", () => {
    const url = "http://admin:pw@127.0.0.1:4566";
    const shown = /"http:\/\/\[redacted\]@127\.0\.0\.1:4566":? (?:it )?carries credentials/;
    const messages = [
      configError(() => resolveConfig({ endpointUrl: url }, aws)),
      configError(() => new DynamoDBRulesStore({ endpointUrl: url })),
      configError(() => new S3FileStore({ bucket: "bluestar-files", endpointUrl: url })),
      configError(() => createSeedClient({ region: "us-east-1", endpointUrl: url })),
      configError(() => parseSeedArgs(["--endpoint-url", url])),
    ];
    for (const message of messages) {
      assert.match(message, shown);
      assert.doesNotMatch(message, /pw|admin/);
    }
  });

  it('a suffix without its separator is refused with the same hint everywhere, and "-dev" accepted everywhere', () => {
    const hint = '"dev": it does not start with "-", "_" or "." (did you mean "-dev"?)';
    for (
      const message of [
        configError(() => resolveConfig({ tableSuffix: "dev" }, aws)),
        configError(() => new DynamoDBRulesStore({ tableSuffix: "dev" })),
        configError(() => checkTableSuffix("dev")),
        configError(() => parseSeedArgs(["--table-suffix", "dev"])),
      ]
    ) {
      assert.ok(message.includes(hint), message);
    }
    assert.equal(resolveConfig({ tableSuffix: "-dev" }, aws).tableSuffix, "-dev");
    assert.equal(checkTableSuffix("-dev"), "-dev");
    assert.equal(parseSeedArgs(["--table-suffix", "-dev"]).suffix, "-dev");
  });

  it("a region that is not a region name is refused by the configuration, both AWS stores and the seed", () => {
    const client = new S3Client({ region: "us-east-1" });
    try {
      for (
        const message of [
          configError(() => resolveConfig({ region: "mars" }, aws)),
          configError(() => new DynamoDBRulesStore({ region: "mars" })),
          configError(() => new S3FileStore({ bucket: "bluestar-files", region: "mars" })),
          configError(() => createSeedClient({ region: "mars" })),
          configError(() => parseSeedArgs(["--region", "mars"])),
        ]
      ) {
        assert.match(message, /"mars"(?: \(--region\))?:? (?:it )?is not a region name/, message);
      }
    } finally {
      client.destroy();
    }
  });

  it("the TTL and timeout rules hold in the configuration, the store and the Redis cache alike", () => {
    assert.match(
      configError(() => resolveConfig({ cacheTtlSeconds: 0 }, aws)),
      /cacheTtlSeconds "0" is not a positive/,
    );
    assert.match(
      configError(() => new DynamoDBRulesStore({ cacheTtlSeconds: 0 })),
      /cacheTtlSeconds "0" is not a positive/,
    );
    assert.match(
      configError(() => new DynamoDBRulesStore({ cacheTimeoutMs: 0 })),
      /cacheTimeoutMs "0" is not a positive/,
    );
    assert.match(
      configError(() => new RedisCacheBackend({ commandTimeoutMs: 0 })),
      /commandTimeoutMs "0" is not a positive/,
    );
    assert.match(
      configError(() => new RedisCacheBackend({ url: "redis://cache/x" })),
      /url "redis:\/\/cache\/x" has a database/,
    );
    assert.match(
      configError(() => resolveConfig({ redisUrl: "redis://cache/x" }, aws)),
      /redisUrl "redis:\/\/cache\/x" has a database/,
    );
  });
});
