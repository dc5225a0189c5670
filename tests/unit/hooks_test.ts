// The guarded event hook (src/core/hooks.ts), alone and on every backend: a
// hook that throws or returns a rejected promise never changes an outcome and
// never leaves an unhandled rejection.
import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import process from "node:process";
import { after, afterEach, before, describe, it } from "node:test";
import { PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { BatchGetCommand, DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { mockClient } from "aws-sdk-client-mock";
import { guardHook } from "../../src/core/hooks.ts";
import { DynamoDBRulesStore } from "../../src/persistence/dynamodb_backend.ts";
import { calculationRuleItem } from "../support/dynamodb.ts";
import { MemoryCacheBackend } from "../../src/persistence/memory_backend.ts";
import { ReadThroughCache } from "../../src/persistence/read_through.ts";
import { RedisCacheBackend, type RedisCacheClient } from "../../src/persistence/redis_backend.ts";
import { S3FileStore } from "../../src/persistence/s3_backend.ts";
import { RULES_FIXTURE } from "../contract/fixtures.ts";

/** The hooks every backend is tried with: each fails its own way, and counts its calls. */
function failingHooks(): Array<{ name: string; calls: () => number; hook: (event: unknown) => unknown }> {
  const make = (name: string, fail: () => unknown) => {
    let calls = 0;
    return {
      name,
      calls: () => calls,
      hook: () => {
        calls++;
        return fail();
      },
    };
  };
  return [
    make("throws", () => {
      throw new Error("hook threw");
    }),
    make("rejects", () => Promise.reject(new Error("hook rejected"))),
    make("returns a rejecting thenable", () => ({ then: (_: unknown, reject: (e: unknown) => void) => reject("no") })),
  ];
}

/** Collects unhandled rejections while a test runs (a rejecting hook must leave none). */
function watchUnhandled(): { reasons: unknown[]; stop(): Promise<void> } {
  const reasons: unknown[] = [];
  const listener = (reason: unknown) => reasons.push(reason);
  process.on("unhandledRejection", listener);
  return {
    reasons,
    async stop() {
      // Unhandled rejections are reported after the microtask queue drains.
      await new Promise((resolve) => setTimeout(resolve, 20));
      process.off("unhandledRejection", listener);
    },
  };
}

describe("guardHook()", () => {
  it("calls the hook with each event", () => {
    const seen: string[] = [];
    const report = guardHook((event: string) => seen.push(event));
    report("a");
    report("b");
    assert.deepEqual(seen, ["a", "b"]);
  });

  it("swallows a hook's exception and handles a rejected promise or thenable it returns", async () => {
    const unhandled = watchUnhandled();
    for (const { hook, calls } of failingHooks()) {
      const report = guardHook(hook);
      assert.doesNotThrow(() => report("event"));
      assert.equal(calls(), 1);
    }
    await unhandled.stop();
    assert.deepEqual(unhandled.reasons, []);
  });

  it("without a hook, reporting does nothing", () => {
    assert.doesNotThrow(() => guardHook<string>(undefined)("event"));
  });
});

describe("a failing hook changes nothing on any backend", () => {
  const ddb = mockClient(DynamoDBDocumentClient);
  const s3 = mockClient(S3Client);
  let s3Client: S3Client;
  before(() => {
    s3Client = new S3Client({ region: "us-east-1", credentials: { accessKeyId: "AKIDTEST", secretAccessKey: "x" } });
  });
  afterEach(() => {
    ddb.reset();
    s3.reset();
  });
  after(() => {
    ddb.restore();
    s3.restore();
    s3Client.destroy();
  });

  it("DynamoDBRulesStore: reads through the cache and DynamoDB return the rule", async () => {
    const rule = RULES_FIXTURE.calculationRules!.find((r) => r.ruleId === "FICA_SS" && r.clientId === "GLOBAL")!;
    const table = "bluestar-calculation-rules-hooks";
    ddb.on(BatchGetCommand).resolves({
      Responses: { [table]: [calculationRuleItem(rule)] },
    });
    const unhandled = watchUnhandled();
    for (const { name, hook, calls } of failingHooks()) {
      const store = new DynamoDBRulesStore({
        region: "us-east-1",
        credentials: { accessKeyId: "test", secretAccessKey: "test" },
        tableSuffix: "-hooks",
        cache: new MemoryCacheBackend(),
        onEvent: hook,
      });
      const miss = await store.getCalculationRule("ACME", "FICA_SS");
      const hit = await store.getCalculationRule("ACME", "FICA_SS");
      await store.close();
      assert.equal(miss.parameters.rate, "0.062", name);
      assert.deepEqual(hit, miss, name);
      // cache.miss, dynamodb.request, then cache.hit: each reached the hook.
      assert.ok(calls() >= 3, `${name}: ${calls()} calls`);
    }
    await unhandled.stop();
    assert.deepEqual(unhandled.reasons, []);
  });

  it("ReadThroughCache given a hook directly: a read answers", async () => {
    const unhandled = watchUnhandled();
    for (const { name, hook, calls } of failingHooks()) {
      const reads = new ReadThroughCache({
        cache: new MemoryCacheBackend(),
        ttlSeconds: 60,
        timeoutMs: 50,
        onEvent: hook,
      });
      const check = (value: unknown) => ({ ok: true as const, value: value as number });
      assert.equal(await reads.read("irs", "k", check, () => Promise.resolve(7)), 7, name);
      await reads.close();
      assert.ok(calls() >= 1, name);
    }
    await unhandled.stop();
    assert.deepEqual(unhandled.reasons, []);
  });

  it("RedisCacheBackend: a corrupt entry is still a miss, and deleted", async () => {
    const unhandled = watchUnhandled();
    for (const { name, hook, calls } of failingHooks()) {
      const client = new CorruptRedis();
      const cache = new RedisCacheBackend({ client: client as unknown as RedisCacheClient, onEvent: hook });
      assert.equal(await cache.get("k"), null, name);
      await cache.close();
      assert.deepEqual(client.deleted, ["k"], name);
      // The GET's redis.command, the cache.corrupt, the DEL's redis.command: each reached the failing hook.
      assert.equal(calls(), 3, name);
    }
    await unhandled.stop();
    assert.deepEqual(unhandled.reasons, []);
  });

  it("S3FileStore: a write succeeds and a failed one fails with its own error", async () => {
    const unhandled = watchUnhandled();
    for (const { name, hook, calls } of failingHooks()) {
      const files = new S3FileStore({ bucket: "bkt", client: s3Client, onEvent: hook });
      s3.on(PutObjectCommand).resolves({ ETag: '"e"' });
      await files.write("in/a.csv", "a,b\n");
      s3.on(PutObjectCommand).rejects(Object.assign(new Error("denied"), { name: "AccessDenied" }));
      await assert.rejects(files.write("in/a.csv", "a,b\n"), { name: "FileStoreError" }, name);
      await files.close();
      assert.equal(calls(), 2, name);
    }
    await unhandled.stop();
    assert.deepEqual(unhandled.reasons, []);
  });
});

/** A node-redis stand-in whose every entry is not JSON; records deletes. */
class CorruptRedis extends EventEmitter {
  isOpen = true;
  isReady = true;
  readonly deleted: string[] = [];
  connect(): Promise<unknown> {
    return Promise.resolve(this);
  }
  get(): Promise<unknown> {
    return Promise.resolve("{not json");
  }
  set(): Promise<unknown> {
    return Promise.resolve("OK");
  }
  del(key: string): Promise<unknown> {
    this.deleted.push(key);
    return Promise.resolve(1);
  }
}
