// RedisCacheBackend on a real Redis: the cache contract, then what only a
// real server (or a real socket) can show: expiry, corrupt entries, faults,
// reconnection.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { createClient, type RedisClientType } from "redis";
import {
  CacheError,
  type CacheEvent,
  type CalculationRuleRecord,
  InvalidInputError,
  RedisCacheBackend,
  type RulesStoreEvent,
} from "../../mod.ts";
import { cacheContract } from "../contract/cache_contract.ts";
import { DECIMAL_38, uniqueId } from "../contract/fixtures.ts";
import type { CallOutcome, CloseScenario } from "../support/close_child.ts";
import { openStore } from "../support/dynamodb.ts";
import { eventually, fakeRedis, FakeServer, freePort, runUntilExit, TcpProxy } from "../support/net.ts";
import { AWS_ENDPOINT_URL, integrationSuite, probe, REDIS_URL } from "../support/gate.ts";

const unreachable = await probe(REDIS_URL);
const unreachableWithAws = unreachable ?? (await probe(AWS_ENDPOINT_URL));
const redisAddress = new URL(REDIS_URL);
const REDIS_HOST = redisAddress.hostname.replace(/^\[|\]$/g, "");
const REDIS_PORT = Number(redisAddress.port || 6379);

type RawClient = RedisClientType;

/** A plain node-redis client for planting and inspecting keys behind the backend's back. */
async function rawClient(): Promise<RawClient> {
  const client = createClient({ url: REDIS_URL });
  client.on("error", () => {});
  await client.connect();
  return client;
}

/** Deletes every key under the prefix. */
async function deletePrefix(raw: RawClient, prefix: string): Promise<void> {
  for await (const keys of raw.scanIterator({ MATCH: `${prefix}*`, COUNT: 100 })) {
    if (keys.length > 0) await raw.del(keys);
  }
}

/** Runs close_child with the scenario; asserts the process exited by itself, and returns the call's outcome. */
async function closeInChild(scenario: CloseScenario): Promise<CallOutcome> {
  const run = await runUntilExit("close_child", [JSON.stringify(scenario)]);
  assert.ok(run.exited, `the process did not exit by itself after close(): ${run.stdout}${run.stderr}`);
  assert.equal(run.code, 0, run.stderr);
  return JSON.parse(run.stdout.trim().split("\n").at(-1) ?? "null");
}

/** Waits until the server has seen every connection it accepted end: a bound on hanging, not a timing claim. */
async function allEnded(server: { open: number }): Promise<void> {
  await eventually(() => Promise.resolve(assert.equal(server.open, 0, "connections still open after close()")), 300);
}

/** The longest timer: a connect timeout that never ends a socket during a test. */
const NEVER_MS = 2_147_483_647;

function isCacheError(pattern: RegExp): (error: unknown) => boolean {
  return (error: unknown) => {
    assert.ok(error instanceof CacheError, `expected a CacheError, got ${error}`);
    assert.equal(error.code, "CACHE_ERROR");
    assert.match(error.message, pattern);
    return true;
  };
}

integrationSuite("RedisCacheBackend (Redis)", unreachable, () => {
  cacheContract("RedisCacheBackend", async () => {
    const prefix = `${uniqueId("bluestar-test-contract")}:`;
    const raw = await rawClient();
    const cache = new RedisCacheBackend({ url: REDIS_URL, keyPrefix: prefix });
    return {
      cache,
      elapse: (milliseconds: number) => sleep(milliseconds),
      cleanup: async () => {
        await cache.close();
        await deletePrefix(raw, prefix);
        raw.destroy();
      },
    };
  });

  describe("RedisCacheBackend on a real server", () => {
    const prefix = `${uniqueId("bluestar-test-redis")}:`;
    const events: CacheEvent[] = [];
    let raw: RawClient;
    let cache: RedisCacheBackend;

    before(async () => {
      raw = await rawClient();
      cache = await RedisCacheBackend.connect({
        url: REDIS_URL,
        keyPrefix: prefix,
        onEvent: (event) => events.push(event),
      });
    });

    after(async () => {
      await cache?.close();
      if (raw !== undefined) {
        await deletePrefix(raw, prefix);
        raw.destroy();
      }
    });

    it("setex() stores JSON text under the prefixed key with the TTL", async () => {
      await cache.setex("rule:FICA_SS", 60, { rate: "0.062" });
      assert.equal(await raw.get(`${prefix}rule:FICA_SS`), '{"rate":"0.062"}');
      const ttl = await raw.ttl(`${prefix}rule:FICA_SS`);
      assert.ok(ttl > 0 && ttl <= 60, `TTL ${ttl}`);
      assert.equal(await raw.get("rule:FICA_SS"), null);
    });

    it("a 1-second TTL expires on the server", async () => {
      await cache.setex("ttl:short", 1, "soon gone");
      assert.equal(await cache.get("ttl:short"), "soon gone");
      await sleep(1000);
      await eventually(
        async () => {
          assert.equal(await cache.get("ttl:short"), null);
        },
        40,
        50,
      );
      assert.equal(await raw.exists(`${prefix}ttl:short`), 0);
    });

    it("round-trips nested objects, arrays, unicode and 38-digit decimals", async () => {
      const value = {
        rule: { ruleId: "FICA_SS", parameters: { rate: "0.062", wageBase: "184500", exact: DECIMAL_38 } },
        negative: `-${DECIMAL_38}`,
        tiny: "0.00000000000000000000000000000000000001",
        list: [[1, [2, [3, []]]], { a: [{ b: null }] }, true, false, 0, -1.5],
        text: 'Zoë Ångström 中文 العربية \u{1F4B5}\u{1F468}\u200D\u{1F469} "q" \\ \t',
        keys: { "": "empty key", "a.b": 1, "\u{1F511}": "emoji key" },
      };
      await cache.setex("json:nested", 60, value);
      assert.deepEqual(await cache.get("json:nested"), value);
      assert.equal(await raw.get(`${prefix}json:nested`), JSON.stringify(value));
    });

    it("a unicode key round-trips and is stored as given after the prefix", async () => {
      await cache.setex("clé:中文:\u{1F511}", 60, 1);
      assert.equal(await cache.get("clé:中文:\u{1F511}"), 1);
      assert.equal(await raw.get(`${prefix}clé:中文:\u{1F511}`), "1");
    });

    it("a corrupt value is a miss, is reported and is deleted", async () => {
      const key = "corrupt:planted";
      await raw.set(`${prefix}${key}`, '{"rate": 0.06', { expiration: { type: "EX", value: 60 } });
      events.length = 0;
      assert.equal(await cache.get(key), null);
      const corrupt = events.filter((event) => event.type === "cache.corrupt");
      assert.equal(corrupt.length, 1);
      assert.equal(corrupt[0].type === "cache.corrupt" && corrupt[0].key, key);
      assert.ok(corrupt[0].type === "cache.corrupt" && corrupt[0].error instanceof SyntaxError);
      assert.equal(await raw.exists(`${prefix}${key}`), 0);
      assert.equal(await cache.get(key), null);
    });

    it("a corrupt value read with getEntries() keeps its text, decodes to null, is reported and is deleted", async () => {
      const key = "corrupt:planted-many";
      await raw.set(`${prefix}${key}`, '{"rate": 0.06', { expiration: { type: "EX", value: 60 } });
      events.length = 0;
      const [{ entry }] = await cache.getEntries([key]);
      assert.equal(entry?.text, '{"rate": 0.06');
      assert.deepEqual(
        events.filter((event) => event.type === "cache.corrupt"),
        [],
        "nothing is decoded before decode()",
      );
      assert.equal(await entry.decode(), null);
      const corrupt = events.filter((event) => event.type === "cache.corrupt");
      assert.equal(corrupt.length, 1);
      assert.ok(
        corrupt[0].type === "cache.corrupt" && corrupt[0].key === key && corrupt[0].error instanceof SyntaxError,
      );
      assert.equal(await raw.exists(`${prefix}${key}`), 0);
      assert.deepEqual(await cache.getEntries([key]), [{ entry: null, generation: 0 }]);
    });

    it("invalid input is rejected before anything is sent", async () => {
      await assert.rejects(cache.setex("bad:ttl", 0, 1), InvalidInputError);
      await assert.rejects(cache.setex("bad:value", 60, { n: 10n }), InvalidInputError);
      assert.equal(await raw.exists([`${prefix}bad:ttl`, `${prefix}bad:value`]), 0);
    });

    it("a command stuck behind a blocked connection fails within the command timeout", async () => {
      const shared = await rawClient();
      const slow = new RedisCacheBackend({ client: shared, keyPrefix: prefix, commandTimeoutMs: 100 });
      try {
        await slow.setex("slow:k", 60, "v");
        // BLPOP blocks the shared connection for a second: the GET is written but not answered.
        const blocked = shared.blPop(`${prefix}slow:list`, 1);
        await assert.rejects(
          slow.get("slow:k"),
          isCacheError(/^Failed to get cache key "slow:k": Redis did not answer within 100 ms$/),
        );
        assert.equal(await blocked, null);
        assert.equal(await slow.get("slow:k"), "v");
      } finally {
        await slow.close();
        shared.destroy();
      }
    });

    it("close() leaves a client that was passed in open", async () => {
      const shared = await rawClient();
      const borrowed = new RedisCacheBackend({ client: shared, keyPrefix: prefix });
      try {
        await borrowed.setex("borrowed:k", 60, { ok: true });
        assert.deepEqual(await borrowed.get("borrowed:k"), { ok: true });
        await borrowed.close();
        assert.ok(shared.isOpen && shared.isReady);
        assert.equal(await shared.get(`${prefix}borrowed:k`), '{"ok":true}');
        await assert.rejects(
          borrowed.get("borrowed:k"),
          isCacheError(/^Failed to get cache key "borrowed:k": the cache is closed$/),
        );
      } finally {
        shared.destroy();
      }
    });

    it("a client that was passed in unopened is connected on first use and still not closed", async () => {
      const shared = createClient({ url: REDIS_URL });
      shared.on("error", () => {});
      const borrowed = new RedisCacheBackend({ client: shared, keyPrefix: prefix });
      try {
        assert.equal(shared.isOpen, false);
        await borrowed.setex("lazy:k", 60, [1, 2]);
        assert.deepEqual(await borrowed.get("lazy:k"), [1, 2]);
        await borrowed.close();
        assert.ok(shared.isReady);
      } finally {
        shared.destroy();
      }
    });

    it("a backend it created is closed by close(), and later calls fail with CacheError", async () => {
      const own = new RedisCacheBackend({ url: REDIS_URL, keyPrefix: prefix });
      await own.setex("own:k", 60, 1);
      await own.close();
      await own.close();
      await assert.rejects(own.get("own:k"), isCacheError(/^Failed to get cache key "own:k": the cache is closed$/));
      await assert.rejects(
        own.setex("own:k", 60, 2),
        isCacheError(/^Failed to cache key "own:k": the cache is closed$/),
      );
      await assert.rejects(
        own.delete("own:k"),
        isCacheError(/^Failed to delete cache key "own:k": the cache is closed$/),
      );
    });
  });

  describe("RedisCacheBackend faults", () => {
    it("connection refused: get() fails with CacheError and connect() rejects", async () => {
      const port = await freePort();
      const events: CacheEvent[] = [];
      const cache = new RedisCacheBackend({
        port,
        commandTimeoutMs: 100,
        onEvent: (event) => events.push(event),
      });
      try {
        await assert.rejects(cache.get("k"), isCacheError(/^Failed to get cache key "k": Redis is not connected/));
        await assert.rejects(cache.setex("k", 60, 1), isCacheError(/^Failed to cache key "k": Redis is not connected/));
        await assert.rejects(
          cache.delete("k"),
          isCacheError(/^Failed to delete cache key "k": Redis is not connected/),
        );
        assert.ok(events.some((event) => event.type === "cache.error"));
      } finally {
        await cache.close();
      }
      await assert.rejects(
        RedisCacheBackend.connect({ port, connectTimeoutMs: 500 }),
        isCacheError(/^Failed to connect to Redis at redis:\/\/127\.0\.0\.1:\d+\/0: /),
      );
    });

    it("a wrong password fails with CacheError and the password appears nowhere", async () => {
      // The local Redis has no password and accepts AUTH default <anything>,
      // so a fake server answers every command as a password-protected one would.
      const server = new FakeServer((socket) => {
        socket.on("data", () => socket.write("-WRONGPASS invalid username-password pair or user is disabled.\r\n"));
      });
      const port = await server.listen();
      const events: CacheEvent[] = [];
      const url = `redis://default:wrong@127.0.0.1:${port}`;
      const cache = new RedisCacheBackend({ url, commandTimeoutMs: 200, onEvent: (event) => events.push(event) });
      const leaks = (text: string) => text.includes("wrong") || text.includes(url);
      try {
        await assert.rejects(cache.get("k"), (error: unknown) => {
          assert.ok(error instanceof CacheError);
          assert.match(error.message, /^Failed to get cache key "k": /);
          assert.ok(!leaks(error.message), error.message);
          assert.ok(!leaks(String((error.cause as Error | undefined)?.message)));
          return true;
        });
        // The failed command's own end event carries its code, no message.
        const cacheEvents = events.filter((event) => event.type !== "redis.command");
        assert.ok(cacheEvents.length > 0);
        for (const event of cacheEvents) {
          assert.equal(event.type, "cache.error");
          if (event.type !== "cache.error") continue;
          assert.match(event.error.message, /WRONGPASS/);
          assert.ok(!leaks(event.error.message), event.error.message);
          assert.ok(!leaks(String((event.error.cause as Error).message)));
        }
        await assert.rejects(RedisCacheBackend.connect({ url, connectTimeoutMs: 500 }), (error: unknown) => {
          assert.ok(error instanceof CacheError);
          assert.ok(!leaks(error.message), error.message);
          return true;
        });
      } finally {
        await cache.close();
        await server.close();
      }
    });

    it("a server that accepts connections but never answers: get() rejects instead of hanging", async () => {
      const server = new FakeServer((socket) => socket.resume());
      const port = await server.listen();
      const cache = new RedisCacheBackend({ port, commandTimeoutMs: 100 });
      try {
        await assert.rejects(
          cache.get("k"),
          isCacheError(/^Failed to get cache key "k": Redis did not answer within 100 ms$/),
        );
        await assert.rejects(cache.setex("k", 60, 1), isCacheError(/^Failed to cache key "k": /));
        await assert.rejects(cache.get("k"), CacheError);
      } finally {
        await cache.close();
        await server.close();
      }
    });

    it("reconnects by itself when Redis comes back", async () => {
      const proxy = new TcpProxy(REDIS_HOST, REDIS_PORT);
      await proxy.start();
      const prefix = `${uniqueId("bluestar-test-reconnect")}:`;
      const events: CacheEvent[] = [];
      const cache = await RedisCacheBackend.connect({
        port: proxy.port,
        keyPrefix: prefix,
        commandTimeoutMs: 200,
        onEvent: (event) => events.push(event),
      });
      const raw = await rawClient();
      try {
        await cache.setex("k", 60, { up: 1 });
        assert.deepEqual(await cache.get("k"), { up: 1 });

        await proxy.stop();
        await eventually(() =>
          assert.rejects(cache.get("k"), isCacheError(/^Failed to get cache key "k": Redis is not connected/))
        );
        assert.ok(events.some((event) => event.type === "cache.error"));

        await proxy.start();
        assert.deepEqual(await eventually(() => cache.get("k")), { up: 1 });
        await cache.setex("k", 60, { up: 2 });
        assert.deepEqual(await cache.get("k"), { up: 2 });
        assert.ok(events.some((event) => event.type === "cache.reconnect"));
      } finally {
        await cache.close();
        await proxy.stop();
        await deletePrefix(raw, prefix);
        raw.destroy();
      }
    });
  });

  describe("RedisCacheBackend close() at each point of a connection", () => {
    const closed = /^Failed to get cache key "k": the cache is closed$/;

    it("close() in the same tick as the first get(): the call fails as closed and the process exits by itself", async () => {
      const outcome = await closeInChild({ cache: { url: REDIS_URL }, close: "same-tick" });
      assert.ok(!outcome.ok && outcome.code === "CACHE_ERROR", JSON.stringify(outcome));
      assert.match(outcome.message, closed);
    });

    it("close() in the same tick as the first get() on a server that never answers: the process exits by itself", async () => {
      const { server } = fakeRedis(() => "HELLO");
      const port = await server.listen();
      try {
        const outcome = await closeInChild({ cache: { port }, close: "same-tick" });
        assert.ok(!outcome.ok && closed.test(outcome.message), JSON.stringify(outcome));
      } finally {
        await server.close();
      }
    });

    it("close() while the TLS handshake is held ends the socket node-redis has not been handed yet", async () => {
      const server = new FakeServer((socket) => socket.resume());
      const port = await server.listen();
      const cache = new RedisCacheBackend({ port, tls: true, connectTimeoutMs: NEVER_MS, commandTimeoutMs: 100 });
      try {
        await assert.rejects(cache.get("k"), isCacheError(/Redis did not answer within 100 ms$/));
        await eventually(() => Promise.resolve(assert.equal(server.open, 1)));
        await cache.close();
        await allEnded(server);
        assert.equal(server.accepted, 1);
        // The same in a process of its own: nothing keeps it alive.
        await closeInChild({ cache: { port, tls: true, connectTimeoutMs: NEVER_MS }, close: "after-call" });
      } finally {
        await cache.close();
        await server.close();
      }
    });

    for (const [stallAt, stage] of [["HELLO", "HELLO with AUTH"], ["SELECT", "SELECT"], ["CLIENT", "CLIENT SETINFO"]]) {
      it(`close() while the handshake waits for the answer to ${stage} ends the socket`, async () => {
        const { server, commands } = fakeRedis(() => stallAt);
        const port = await server.listen();
        const cache = new RedisCacheBackend({
          url: `redis://default:pw@127.0.0.1:${port}/3`,
          connectTimeoutMs: NEVER_MS,
          commandTimeoutMs: 100,
        });
        try {
          await assert.rejects(cache.get("k"), isCacheError(/Redis did not answer within 100 ms$/));
          await eventually(() => Promise.resolve(assert.ok(commands[0]?.includes(stallAt), String(commands[0]))));
          assert.equal(server.open, 1);
          await cache.close();
          await allEnded(server);
        } finally {
          await cache.close();
          await server.close();
        }
      });
    }

    it("close() once the connection is ready ends it", async () => {
      const proxy = new TcpProxy(REDIS_HOST, REDIS_PORT);
      await proxy.start();
      const cache = await RedisCacheBackend.connect({ port: proxy.port, keyPrefix: `${uniqueId("bluestar-close")}:` });
      try {
        assert.equal(await cache.get("k"), null);
        assert.equal(proxy.open, 1);
        await cache.close();
        await allEnded(proxy);
      } finally {
        await cache.close();
        await proxy.stop();
      }
    });

    it("close() during a reconnection, with the new connection's handshake held, ends the new socket", async () => {
      const { server, commands } = fakeRedis((index) => (index === 0 ? undefined : "HELLO"));
      const port = await server.listen();
      const events: CacheEvent[] = [];
      const cache = await RedisCacheBackend.connect({
        port,
        connectTimeoutMs: NEVER_MS,
        commandTimeoutMs: 100,
        onEvent: (event) => events.push(event),
      });
      try {
        assert.equal(await cache.get("k"), null);
        server.drop();
        await eventually(() => Promise.resolve(assert.ok(commands[1]?.includes("HELLO"), "no second handshake")));
        assert.ok(events.some((event) => event.type === "cache.error"));
        await assert.rejects(cache.get("k"), CacheError);
        assert.equal(server.open, 1);
        await cache.close();
        await allEnded(server);
        assert.equal(server.accepted, 2);
      } finally {
        await cache.close();
        await server.close();
      }
    });

    it("close() while waiting to reconnect to a Redis that refuses connections: the process exits by itself", async () => {
      const port = await freePort();
      const outcome = await closeInChild({ cache: { port }, close: "after-call" });
      assert.ok(
        !outcome.ok && /Redis is not connected \(ECONNREFUSED\)$/.test(outcome.message),
        JSON.stringify(outcome),
      );
    });

    for (const close of ["same-tick", "after-call"] as const) {
      it(`createPersistence(), a rules read and close() ${close === "same-tick" ? "in the same tick" : "once the read failed"}: the process exits by itself`, async () => {
        const outcome = await closeInChild({
          persistence: {
            backend: "aws",
            // Nothing listens there: the read fails after the cache lookup, with no table to set up.
            endpointUrl: `http://127.0.0.1:${await freePort()}`,
            region: "us-east-1",
            tableSuffix: "-close",
            s3Bucket: "bluestar-close-test",
            redisUrl: REDIS_URL,
            env: {},
          },
          close,
        });
        assert.ok(!outcome.ok && outcome.code === "RULES_STORE_ERROR", JSON.stringify(outcome));
      });
    }
  });
});

integrationSuite("DynamoDBRulesStore through RedisCacheBackend (moto and Redis)", unreachableWithAws, () => {
  it("rules of 256-byte non-ASCII ids are cache hits on the second read, overrides and GLOBAL fallbacks", async () => {
    const [client, other, rule] = ["é".repeat(128), "\u{1F4B5}".repeat(64), "中".repeat(85)];
    const record = (clientId: string): CalculationRuleRecord => ({
      clientId,
      ruleId: rule,
      ruleType: "percentage",
      description: `For ${clientId.slice(0, 4)}`,
      parameters: { rate: clientId === "GLOBAL" ? "0.062" : "0.07" },
      effectiveFrom: "2026-01-01",
      effectiveTo: null,
    });
    const prefix = `${uniqueId("bluestar-test-longids")}:`;
    const events: RulesStoreEvent[] = [];
    const cache = await RedisCacheBackend.connect({ url: REDIS_URL, keyPrefix: prefix });
    const subject = await openStore(
      { calculationRules: [record("GLOBAL"), record(client)] },
      { cache, onEvent: (event) => events.push(event) },
    );
    const raw = await rawClient();
    try {
      for (const [who, scope] of [[client, "CLIENT"], [other, "GLOBAL"]]) {
        assert.equal((await subject.store.getCalculationRule(who, rule)).scope, scope);
      }
      assert.deepEqual(events.filter((event) => event.type === "cache.error"), []);
      // Write-backs are not awaited by reads: wait until both entries are in Redis.
      await eventually(async () => {
        subject.requests.clear();
        events.length = 0;
        for (const [who, scope] of [[client, "CLIENT"], [other, "GLOBAL"]]) {
          assert.equal((await subject.store.getCalculationRule(who, rule)).scope, scope);
        }
        // Two entries per read: the client's own versions (none for the other client) and GLOBAL's.
        const cacheEvents = events.filter((event) => event.type.startsWith("cache."));
        assert.deepEqual(cacheEvents.map((event) => event.type), Array(4).fill("cache.hit"));
        assert.equal(subject.total(), 0);
      });
    } finally {
      await subject.cleanup();
      await cache.close();
      await deletePrefix(raw, prefix);
      raw.destroy();
    }
  });
});
