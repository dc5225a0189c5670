// RedisCacheBackend without a server: options, error mapping, deadlines,
// corrupt entries and connection state, through a fake node-redis client.
import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { describe, it } from "node:test";
import { ErrorReply } from "redis";
import {
  CacheError,
  type CacheEvent,
  ConfigError,
  InvalidInputError,
  RedisCacheBackend,
  type RedisCacheClient,
} from "../../mod.ts";

type Reply = unknown | Promise<unknown>;

/** A stand-in for a node-redis client: records commands, answers with `reply`. */
class FakeClient extends EventEmitter implements RedisCacheClient {
  isOpen = true;
  isReady = true;
  readonly calls: string[][] = [];
  reply: (command: string[]) => Reply = () => null;

  connect(): Promise<unknown> {
    this.isOpen = true;
    return Promise.resolve(this);
  }

  get(key: string): Promise<unknown> {
    return this.#answer(["GET", key]);
  }

  set(key: string, value: string, options: { expiration: { type: "EX"; value: number } }): Promise<unknown> {
    return this.#answer(["SET", key, value, options.expiration.type, String(options.expiration.value)]);
  }

  del(key: string): Promise<unknown> {
    return this.#answer(["DEL", key]);
  }

  mGet(keys: string[]): Promise<unknown> {
    return this.#answer(["MGET", ...keys]);
  }

  #answer(command: string[]): Promise<unknown> {
    this.calls.push(command);
    try {
      return Promise.resolve(this.reply(command));
    } catch (error) {
      return Promise.reject(error);
    }
  }
}

/** A promise that never settles: a command Redis never answers. */
const never = (): Promise<never> => new Promise<never>(() => {});

function systemError(code: string): Error {
  return Object.assign(new Error(`connect ${code} 127.0.0.1:6379`), { code });
}

function rejectsWith(pattern: RegExp, cause?: unknown): (error: unknown) => boolean {
  return (error: unknown) => {
    assert.ok(error instanceof CacheError, `expected a CacheError, got ${error}`);
    assert.match(error.message, pattern);
    if (cause !== undefined) assert.equal(error.cause, cause);
    return true;
  };
}

describe("RedisCacheBackend options", () => {
  it("rejects malformed options, listing every problem", () => {
    assert.throws(
      () =>
        new RedisCacheBackend({
          host: "",
          port: 70000,
          db: -1,
          commandTimeoutMs: 0,
          connectTimeoutMs: Number.NaN,
          keyPrefix: "a\u0000b",
        }),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.match(error.message, /^Invalid Redis cache options: /);
        for (
          const part of [
            "host",
            'port "70000"',
            'db "-1"',
            'commandTimeoutMs "0"',
            'connectTimeoutMs "NaN"',
            "keyPrefix",
          ]
        ) {
          assert.ok(error.message.includes(part), `${part} in ${error.message}`);
        }
        return true;
      },
    );
  });

  it("rejects a client combined with connection options, and a url combined with host", () => {
    assert.throws(
      () => new RedisCacheBackend({ client: new FakeClient(), url: "redis://127.0.0.1" }),
      /client cannot be combined with url/,
    );
    assert.throws(
      () => new RedisCacheBackend({ url: "redis://127.0.0.1", host: "other" }),
      /url cannot be combined with host/,
    );
    assert.throws(() => new RedisCacheBackend({ client: {} as RedisCacheClient }), /client is not a node-redis client/);
  });

  it("never echoes the password of a malformed URL", () => {
    for (
      const url of [
        "redis://user:s3cr3t-pw@127.0.0.1:99999",
        "http://user:s3cr3t-pw@127.0.0.1:6379",
        "redis://user:s3cr3t-pw%ZZ@127.0.0.1:6379",
        "redis://user:s3cr3t-pw@127.0.0.1:6379/x",
        "not a url s3cr3t-pw",
      ]
    ) {
      assert.throws(() => new RedisCacheBackend({ url }), (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.ok(!error.message.includes("s3cr3t"), error.message);
        assert.equal(error.cause, undefined);
        return true;
      });
    }
  });

  it("accepts redis:// and rediss:// URLs with credentials and a database without connecting", async () => {
    for (const url of ["redis://127.0.0.1:6379/2", "rediss://user:p%40ss@cache.example.com:6380/0", "redis://[::1]"]) {
      const cache = new RedisCacheBackend({ url });
      await cache.close();
    }
  });
});

describe("RedisCacheBackend commands", () => {
  it("setex() sends SET key json EX ttl under the prefix; get() decodes; delete() sends DEL", async () => {
    const client = new FakeClient();
    const stored = new Map<string, string>();
    client.reply = ([command, key, value]) => {
      if (command === "SET") stored.set(key, value);
      if (command === "DEL") return stored.delete(key) ? 1 : 0;
      return command === "GET" ? stored.get(key) ?? null : "OK";
    };
    const cache = new RedisCacheBackend({ client, keyPrefix: "ns:" });
    await cache.setex("k", 30, { rate: "0.062", list: [1, "é"] });
    assert.deepEqual(client.calls[0], ["SET", "ns:k", '{"rate":"0.062","list":[1,"é"]}', "EX", "30"]);
    assert.deepEqual(await cache.get("k"), { rate: "0.062", list: [1, "é"] });
    await cache.delete("k");
    await cache.delete("k");
    assert.equal(await cache.get("k"), null);
    assert.deepEqual(client.calls.map(([command, key]) => `${command} ${key}`), [
      "SET ns:k",
      "GET ns:k",
      "DEL ns:k",
      "DEL ns:k",
      "GET ns:k",
    ]);
  });

  it("get() decodes a reply that comes back as bytes", async () => {
    const client = new FakeClient();
    client.reply = () => new TextEncoder().encode('{"a":"ü"}');
    const cache = new RedisCacheBackend({ client });
    assert.deepEqual(await cache.get("k"), { a: "ü" });
  });

  it("invalid input is rejected before anything is sent", async () => {
    const client = new FakeClient();
    const cache = new RedisCacheBackend({ client });
    await assert.rejects(cache.get(""), InvalidInputError);
    await assert.rejects(cache.delete("a\nb"), InvalidInputError);
    await assert.rejects(cache.setex("k", 1.5, 1), InvalidInputError);
    await assert.rejects(cache.setex("k", 60, Number.NaN), InvalidInputError);
    assert.deepEqual(client.calls, []);
  });

  it("a corrupt value is a miss, is reported with the caller's key and is deleted", async () => {
    const client = new FakeClient();
    client.reply = ([command]) => (command === "GET" ? "{not json" : 1);
    const events: CacheEvent[] = [];
    const cache = new RedisCacheBackend({ client, keyPrefix: "ns:", onEvent: (event) => events.push(event) });
    assert.equal(await cache.get("k"), null);
    assert.deepEqual(client.calls, [["GET", "ns:k"], ["DEL", "ns:k"]]);
    const cacheEvents = events.filter((event) => event.type.startsWith("cache."));
    assert.equal(cacheEvents.length, 1);
    const [event] = cacheEvents;
    assert.ok(event.type === "cache.corrupt" && event.key === "k" && event.error instanceof SyntaxError);
  });

  it("a corrupt value whose delete fails is still a miss, and the failure is reported", async () => {
    const client = new FakeClient();
    const readonly = new ErrorReply("READONLY You can't write against a read only replica.");
    client.reply = ([command]) => {
      if (command === "GET") return "<html>";
      throw readonly;
    };
    const events: CacheEvent[] = [];
    const cache = new RedisCacheBackend({ client, onEvent: (event) => events.push(event) });
    assert.equal(await cache.get("k"), null);
    const cacheEvents = events.filter((event) => event.type.startsWith("cache."));
    assert.deepEqual(cacheEvents.map((event) => event.type), ["cache.corrupt", "cache.error"]);
    const failure = cacheEvents[1];
    assert.ok(failure.type === "cache.error");
    assert.equal(failure.key, "k");
    assert.equal(failure.error.message, 'Failed to delete cache key "k": Redis refused the command (READONLY)');
  });

  it("an event hook that throws does not break the cache", async () => {
    const client = new FakeClient();
    client.reply = ([command]) => (command === "GET" ? "{" : 1);
    const cache = new RedisCacheBackend({
      client,
      onEvent: () => {
        throw new Error("hook failed");
      },
    });
    assert.equal(await cache.get("k"), null);
    client.emit("error", systemError("ECONNRESET"));
  });
});

describe("RedisCacheBackend errors", () => {
  it("wraps READONLY, OOM and socket errors in CacheError, naming the action and the key", async () => {
    const cases: Array<[string, unknown, RegExp]> = [
      [
        "SET",
        new ErrorReply("READONLY You can't write against a read only replica."),
        /^Failed to cache key "k": Redis refused the command \(READONLY\)$/,
      ],
      [
        "SET",
        new ErrorReply("OOM command not allowed when used memory > 'maxmemory'."),
        /^Failed to cache key "k": Redis refused the command \(OOM\)$/,
      ],
      ["GET", systemError("ECONNRESET"), /^Failed to get cache key "k": Redis is unreachable \(ECONNRESET\)$/],
      ["DEL", new TypeError("boom"), /^Failed to delete cache key "k": the Redis client failed \(TypeError\)$/],
    ];
    for (const [command, failure, pattern] of cases) {
      const client = new FakeClient();
      client.reply = () => Promise.reject(failure);
      const cache = new RedisCacheBackend({ client });
      const call = command === "GET" ? cache.get("k") : command === "SET" ? cache.setex("k", 60, 1) : cache.delete("k");
      await assert.rejects(call, rejectsWith(pattern, failure));
    }
  });

  it("a command that never answers fails within the command timeout; the others are unaffected", async () => {
    const client = new FakeClient();
    client.reply = ([, key]) => (key === "hung" ? never() : '"fast"');
    const cache = new RedisCacheBackend({ client, commandTimeoutMs: 30 });
    const hung = Array.from({ length: 5 }, () => cache.get("hung"));
    const fast = Array.from({ length: 5 }, () => cache.get("fast"));
    assert.deepEqual(await Promise.all(fast), ["fast", "fast", "fast", "fast", "fast"]);
    for (const call of hung) {
      await assert.rejects(call, rejectsWith(/^Failed to get cache key "hung": Redis did not answer within 30 ms$/));
    }
    assert.equal(await cache.get("fast"), "fast");
    await cache.close();
  });

  it("getEntries() and getMany() fail within the timeoutMs they are given, and within commandTimeoutMs when it is shorter", async () => {
    const client = new FakeClient();
    client.reply = () => never();
    const patient = new RedisCacheBackend({ client, commandTimeoutMs: 60_000 });
    await assert.rejects(
      patient.getEntries(["a", "b"], { timeoutMs: 30 }),
      rejectsWith(/^Failed to get cache keys "a": Redis did not answer within 30 ms$/),
    );
    await assert.rejects(
      patient.getMany(["a"], { timeoutMs: 30, ttl: true }),
      rejectsWith(/^Failed to get (cache keys|the TTL of cache key) "a": Redis did not answer within 30 ms$/),
    );
    const hasty = new RedisCacheBackend({ client, commandTimeoutMs: 30 });
    await assert.rejects(
      hasty.getEntries(["a"], { timeoutMs: 60_000 }),
      rejectsWith(/^Failed to get cache keys "a": Redis did not answer within 30 ms$/),
    );
    await Promise.all([patient.close(), hasty.close()]);
  });

  it("getEntries() and getMany() refuse a timeoutMs that is not a positive number of milliseconds; nothing is sent", async () => {
    const client = new FakeClient();
    const cache = new RedisCacheBackend({ client });
    for (const timeoutMs of [0, -1, Number.NaN, Infinity, "50" as unknown as number]) {
      for (const call of [cache.getEntries(["a"], { timeoutMs }), cache.getMany(["a"], { timeoutMs })]) {
        await assert.rejects(call, (error: unknown) => {
          assert.ok(error instanceof InvalidInputError);
          assert.match(
            error.message,
            /^Failed to read the cache: timeout .* is not a positive number of milliseconds$/,
          );
          return true;
        });
      }
    }
    assert.deepEqual(client.calls, []);
    await cache.close();
  });

  it("deadlines of commands started at different times each expire", async () => {
    const client = new FakeClient();
    client.reply = never;
    const cache = new RedisCacheBackend({ client, commandTimeoutMs: 20 });
    const first = cache.get("a");
    await new Promise((resolve) => setTimeout(resolve, 10));
    const second = cache.setex("b", 60, 1);
    await assert.rejects(first, rejectsWith(/^Failed to get cache key "a": Redis did not answer within 20 ms$/));
    await assert.rejects(second, rejectsWith(/^Failed to cache key "b": Redis did not answer within 20 ms$/));
  });

  it("while the client reports errors, calls fail at once without sending; they resume when it is ready again", async () => {
    const client = new FakeClient();
    client.reply = () => '"v"';
    const events: CacheEvent[] = [];
    const cache = new RedisCacheBackend({ client, onEvent: (event) => events.push(event) });
    assert.equal(await cache.get("k"), "v");

    const refused = systemError("ECONNREFUSED");
    client.isReady = false;
    client.emit("error", refused);
    await assert.rejects(
      cache.get("k"),
      rejectsWith(/^Failed to get cache key "k": Redis is not connected \(ECONNREFUSED\)$/, refused),
    );
    assert.equal(client.calls.length, 1);
    const cacheEvents = () => events.filter((event) => event.type.startsWith("cache."));
    const [error] = cacheEvents();
    assert.ok(error.type === "cache.error");
    assert.equal(error.error.message, "Lost connection to Redis: Redis is unreachable (ECONNREFUSED)");
    assert.equal(error.error.cause, refused);

    client.isReady = true;
    client.emit("ready");
    assert.equal(await cache.get("k"), "v");
    assert.deepEqual(cacheEvents().map((event) => event.type), ["cache.error", "cache.reconnect"]);
  });

  it("a call made while the first connection is being set up waits for it", async () => {
    const client = new FakeClient();
    client.isOpen = false;
    client.isReady = false;
    client.connect = () => {
      client.isOpen = true;
      setTimeout(() => {
        client.isReady = true;
        client.emit("ready");
      }, 5);
      return Promise.resolve(client);
    };
    client.reply = () => "1";
    const cache = new RedisCacheBackend({ client });
    assert.equal(await cache.get("k"), 1);
  });

  it("close() leaves a passed-in client open and removes its listeners; later calls fail", async () => {
    const client = new FakeClient();
    const before = client.listenerCount("error");
    const cache = new RedisCacheBackend({ client });
    assert.equal(client.listenerCount("error"), before + 1);
    await cache.close();
    await cache.close();
    assert.equal(client.listenerCount("error"), before);
    assert.equal(client.listenerCount("ready"), 0);
    assert.ok(client.isOpen);
    await assert.rejects(cache.get("k"), rejectsWith(/^Failed to get cache key "k": the cache is closed$/));
    assert.deepEqual(client.calls, []);
  });
});
