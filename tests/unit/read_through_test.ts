// The read-through cache on its own: MemoryCacheBackend (wrapped where a test
// needs a slow or failing cache), a fake loader, and a manual clock for the
// deadlines, so no test waits for a timeout.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { CacheError, type ICacheBackend, MemoryCacheBackend } from "../../mod.ts";
import type { Decoded, Problem } from "../../src/core/schema.ts";
import { sleep } from "../../src/core/time.ts";
import { ReadThroughCache, type ReadThroughEvent } from "../../src/persistence/read_through.ts";
import { ManualClock } from "../support/clock.ts";

const TTL_SECONDS = 60;
const TIMEOUT_MS = 50;

/** What the fake source of truth holds. */
interface Rate {
  id: string;
  rate: string;
}

/** Decodes a cached rate for `id` into a fresh copy; counts its calls. */
function rateCheck(id: string) {
  const check = (value: unknown): Decoded<Rate> => {
    check.calls++;
    const candidate = value as Partial<Rate> | null;
    const problems: Problem[] = [];
    if (typeof candidate !== "object" || candidate === null) {
      return { ok: false, problems: [{ path: "cached", message: "it is not an object" }] };
    }
    if (candidate.id !== id) problems.push({ path: "cached.id", message: `it is not ${JSON.stringify(id)}` });
    if (typeof candidate.rate !== "string") problems.push({ path: "cached.rate", message: "it is not a string" });
    return problems.length > 0 ? { ok: false, problems } : { ok: true, value: { id, rate: candidate.rate! } };
  };
  check.calls = 0;
  return check;
}

/** A fake loader: answers `value` (a fresh copy each time), or throws `error`; may wait for a gate. */
function loader<T>(value: T, options: { error?: Error; gate?: Promise<void> } = {}) {
  const load = async (): Promise<T> => {
    load.calls++;
    await options.gate;
    if (options.error !== undefined) throw options.error;
    return structuredClone(value);
  };
  load.calls = 0;
  return load;
}

/** A promise and the function that resolves it. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

/** Lets every pending promise callback run (a macrotask turn; no time is asserted). */
const settleCallbacks = () => sleep(0);

/**
 * A MemoryCacheBackend whose `get` and `setex` a test can replace (to hang,
 * throw or reject), counting the calls that reach it.
 */
class ScriptedCache implements ICacheBackend {
  readonly memory: MemoryCacheBackend;
  gets = 0;
  sets = 0;
  get: <T>(key: string) => Promise<T | null>;
  setex: (key: string, ttlSeconds: number, value: unknown) => Promise<void>;

  constructor(
    behaviour: {
      get?: (key: string) => Promise<unknown>;
      setex?: (key: string, ttlSeconds: number, value: unknown) => Promise<void>;
    } = {},
    now?: () => number,
  ) {
    this.memory = new MemoryCacheBackend({ now });
    this.get = <T>(key: string) => {
      this.gets++;
      return (behaviour.get ?? ((k) => this.memory.get(k)))(key) as Promise<T | null>;
    };
    this.setex = (key, ttlSeconds, value) => {
      this.sets++;
      return (behaviour.setex ?? ((k, t, v) => this.memory.setex(k, t, v)))(key, ttlSeconds, value);
    };
  }

  delete(key: string): Promise<void> {
    return this.memory.delete(key);
  }
}

/** A cache whose writes land only once `written.open()` is called. */
function heldWrites(): { cache: ScriptedCache; written: ReturnType<typeof gate> } {
  const written = gate();
  const cache: ScriptedCache = new ScriptedCache({
    setex: async (key, ttl, value) => {
      await written.promise;
      await cache.memory.setex(key, ttl, value);
    },
  });
  return { cache, written };
}

/** A read-through cache on `cache`, collecting its events, on a manual clock. */
function open(cache: ICacheBackend | undefined) {
  const events: ReadThroughEvent[] = [];
  const clock = new ManualClock();
  const reads = new ReadThroughCache({
    cache,
    ttlSeconds: TTL_SECONDS,
    timeoutMs: TIMEOUT_MS,
    onEvent: (event) => events.push(event),
    clock,
  });
  return { reads, events, clock, types: () => events.map((event) => event.type) };
}

const RATE: Rate = { id: "FICA", rate: "0.062" };

describe("ReadThroughCache", () => {
  describe("hits and misses", () => {
    it("a miss loads and writes the answer back for ttlSeconds; the next read is a hit that loads nothing", async () => {
      let now = 0;
      const cache = new ScriptedCache({}, () => now);
      const { reads, types } = open(cache);
      const load = loader(RATE);
      assert.deepEqual(await reads.read("calculation", "k", rateCheck("FICA"), load), RATE);
      await reads.close();
      assert.deepEqual(await cache.memory.get("k"), RATE);
      assert.deepEqual(await reads.read("calculation", "k", rateCheck("FICA"), load), RATE);
      assert.equal(load.calls, 1);
      assert.deepEqual(types(), ["cache.miss", "cache.hit"]);
      now += TTL_SECONDS * 1000; // the entry expires: the read loads again
      assert.deepEqual(await reads.read("calculation", "k", rateCheck("FICA"), load), RATE);
      assert.equal(load.calls, 2);
      assert.deepEqual(types(), ["cache.miss", "cache.hit", "cache.miss"]);
    });

    it("a hit is frozen: changing it throws, and changes neither the cache nor the next hit", async () => {
      const cache = new ScriptedCache();
      await cache.memory.setex("k", TTL_SECONDS, RATE);
      const { reads } = open(cache);
      const load = loader(RATE);
      const first = await reads.read("calculation", "k", rateCheck("FICA"), load);
      assert.throws(() => {
        first.rate = "0.9";
      }, TypeError);
      const second = await reads.read("calculation", "k", rateCheck("FICA"), load);
      assert.equal(second.rate, "0.062");
      assert.ok(Object.isFrozen(second));
      assert.equal((await reads.read("calculation", "k", rateCheck("FICA"), load)).rate, "0.062");
      assert.deepEqual(await cache.memory.get("k"), RATE);
      assert.equal(load.calls, 0);
    });

    it("an answer of null is returned and never written back", async () => {
      const cache = new ScriptedCache();
      const { reads, types } = open(cache);
      const load = loader(null);
      assert.equal(await reads.read("agent", "k", rateCheck("FICA"), load), null);
      assert.equal(await reads.read("agent", "k", rateCheck("FICA"), load), null);
      await reads.close();
      assert.equal(load.calls, 2);
      assert.equal(cache.sets, 0);
      assert.deepEqual(types(), ["cache.miss", "cache.miss"]);
    });

    it("a loaded answer is frozen: changing it throws, and the write-back holds what was loaded", async () => {
      const { cache, written } = heldWrites();
      const { reads } = open(cache);
      const answer = await reads.read("calculation", "k", rateCheck("FICA"), loader(RATE));
      assert.throws(() => {
        answer.rate = "0.5";
      }, TypeError);
      written.open();
      await reads.close();
      assert.deepEqual(await cache.memory.get("k"), RATE);
    });

    it("a failed load reaches the caller and writes nothing back; the next read loads again", async () => {
      const cache = new ScriptedCache();
      const { reads } = open(cache);
      const failing = loader(RATE, { error: new Error("source down") });
      await assert.rejects(reads.read("calculation", "k", rateCheck("FICA"), failing), /^Error: source down$/);
      await reads.close();
      assert.equal(cache.sets, 0);
      const load = loader(RATE);
      assert.deepEqual(await reads.read("calculation", "k", rateCheck("FICA"), load), RATE);
      assert.equal(load.calls, 1);
    });

    it("without a cache, every read loads, identical concurrent reads share one load, and nothing is reported", async () => {
      const { reads, events } = open(undefined);
      const opened = gate();
      const load = loader(RATE, { gate: opened.promise });
      const shared = Promise.all(
        Array.from({ length: 10 }, () => reads.read("calculation", "k", rateCheck("FICA"), load)),
      );
      opened.open();
      assert.deepEqual(await shared, Array.from({ length: 10 }, () => RATE));
      await reads.read("calculation", "k", rateCheck("FICA"), load);
      assert.equal(load.calls, 2);
      assert.deepEqual(events, []);
    });
  });

  describe("corrupt entries", () => {
    it("a cached value that fails the check is reported with its problems, then loaded and overwritten", async () => {
      for (const garbage of ["not a rate", 42, [], { id: "OTHER", rate: "0.062" }, { id: "FICA", rate: 0.062 }]) {
        const cache = new ScriptedCache();
        await cache.memory.setex("k", TTL_SECONDS, garbage);
        const { reads, events } = open(cache);
        const load = loader(RATE);
        assert.deepEqual(await reads.read("calculation", "k", rateCheck("FICA"), load), RATE);
        assert.equal(load.calls, 1, `value ${JSON.stringify(garbage)}`);
        assert.equal(events.length, 1);
        const [corrupt] = events;
        assert.ok(corrupt.type === "cache.corrupt" && corrupt.problems.length > 0, `value ${JSON.stringify(garbage)}`);
        assert.equal(corrupt.key, "k");
        assert.equal(corrupt.kind, "calculation");
        await reads.close();
        assert.deepEqual(await cache.memory.get("k"), RATE);
        assert.deepEqual(await reads.read("calculation", "k", rateCheck("FICA"), load), RATE);
        assert.equal(load.calls, 1);
      }
    });

    it("an entry whose exact text already passed is not checked again; a changed entry is", async () => {
      const cache = new ScriptedCache();
      await cache.memory.setex("k", TTL_SECONDS, RATE);
      const { reads, types } = open(cache);
      const check = rateCheck("FICA");
      const load = loader(RATE);
      for (let read = 0; read < 5; read++) await reads.read("calculation", "k", check, load);
      assert.equal(check.calls, 1);
      await cache.memory.setex("k", TTL_SECONDS, { ...RATE, rate: "0.063" });
      assert.equal((await reads.read("calculation", "k", check, load)).rate, "0.063");
      assert.equal(check.calls, 2);
      await cache.memory.setex("k", TTL_SECONDS, { ...RATE, rate: 7 });
      assert.equal((await reads.read("calculation", "k", check, load)).rate, "0.062");
      assert.equal(check.calls, 3);
      assert.equal(load.calls, 1);
      assert.deepEqual(types(), [...Array(6).fill("cache.hit"), "cache.corrupt"]);
    });

    it("a text that passed for one key is checked again under another", async () => {
      const cache = new ScriptedCache();
      await cache.memory.setex("a", TTL_SECONDS, RATE);
      await cache.memory.setex("b", TTL_SECONDS, RATE);
      const { reads, types } = open(cache);
      await reads.read("calculation", "a", rateCheck("FICA"), loader(RATE));
      const other = { id: "OTHER", rate: "0.1" };
      assert.deepEqual(await reads.read("calculation", "b", rateCheck("OTHER"), loader(other)), other);
      assert.deepEqual(types(), ["cache.hit", "cache.corrupt"]);
    });
  });

  describe("slow and failing caches", () => {
    it("a get that never answers is a cache.error at the deadline; then the read loads and succeeds", async () => {
      const cache = new ScriptedCache({ get: () => new Promise(() => {}) });
      const { reads, events, clock } = open(cache);
      const load = loader(RATE);
      let answer: Rate | undefined;
      const read = reads.read("calculation", "k", rateCheck("FICA"), load).then((value) => (answer = value));
      await settleCallbacks();
      clock.advance(TIMEOUT_MS - 1);
      await settleCallbacks();
      assert.equal(load.calls, 0, "the read did not wait for its deadline");
      assert.equal(events.length, 0);
      clock.advance(1);
      await read;
      assert.deepEqual(answer, RATE);
      assert.equal(load.calls, 1);
      assert.equal(events.length, 1);
      const [error] = events;
      assert.ok(error.type === "cache.error" && error.operation === "get");
      assert.ok(error.error instanceof CacheError);
      assert.equal(error.error.message, `Failed to get cache key "k": no answer within ${TIMEOUT_MS} ms`);
      await reads.close();
      assert.deepEqual(await cache.memory.get("k"), RATE, "the write-back still landed");
    });

    it("a get answered after its deadline is ignored: one event, and the late value is not served", async () => {
      const late = gate();
      const cache = new ScriptedCache({
        get: async () => {
          await late.promise;
          return { id: "FICA", rate: "0.5" };
        },
      });
      const { reads, clock, types } = open(cache);
      const read = reads.read("calculation", "k", rateCheck("FICA"), loader(RATE));
      await settleCallbacks();
      clock.advance(TIMEOUT_MS);
      assert.deepEqual(await read, RATE);
      late.open();
      await settleCallbacks();
      await reads.close();
      assert.deepEqual(types(), ["cache.error"]);
    });

    it("reads started at different times each wait their own deadline, never cut short by another's", async () => {
      const cache = new ScriptedCache({ get: () => new Promise(() => {}) });
      const { reads, clock, types } = open(cache);
      const finished: Array<[string, number]> = [];
      const start = (id: string) =>
        reads.read("calculation", id, rateCheck(id), loader({ id, rate: "1" })).then((answer) => {
          finished.push([answer.id, clock.now()]);
        });
      const r1 = start("R1");
      clock.advance(20);
      const r2 = start("R2");
      clock.advance(20);
      const r3 = start("R3");
      await settleCallbacks();
      assert.deepEqual(finished, []);
      clock.advance(10); // 50: R1's deadline
      await r1;
      await settleCallbacks();
      assert.deepEqual(finished, [["R1", 50]]);
      clock.advance(19);
      await settleCallbacks();
      assert.equal(finished.length, 1);
      clock.advance(1); // 70: R2's
      await r2;
      clock.advance(20); // 90: R3's
      await r3;
      assert.deepEqual(finished, [["R1", 50], ["R2", 70], ["R3", 90]]);
      assert.deepEqual(types(), ["cache.error", "cache.error", "cache.error"]);
    });

    it("a get that throws synchronously or rejects is a cache.error naming the key, cause kept; the read loads", async () => {
      const backendError = new CacheError('Failed to get cache key "k": Redis is not connected');
      const cases: Array<[string, () => Promise<unknown>, (error: CacheError) => void]> = [
        ["throws", () => {
          throw new TypeError("not connected");
        }, (error) => {
          assert.equal(error.message, 'Failed to get cache key "k": TypeError: not connected');
          assert.equal((error.cause as Error).message, "not connected");
        }],
        ["rejects", () => Promise.reject(new Error("ECONNREFUSED")), (error) => {
          assert.match(error.message, /^Failed to get cache key "k": ECONNREFUSED$/);
          assert.equal((error.cause as Error).message, "ECONNREFUSED");
        }],
        ["rejects with a CacheError", () => Promise.reject(backendError), (error) => {
          assert.equal(error, backendError);
        }],
      ];
      for (const [label, get, verify] of cases) {
        const cache = new ScriptedCache({ get });
        const { reads, events } = open(cache);
        const load = loader(RATE);
        assert.deepEqual(await reads.read("calculation", "k", rateCheck("FICA"), load), RATE, label);
        assert.equal(load.calls, 1, label);
        await reads.close();
        assert.equal(events.length, 1, label);
        const [event] = events;
        assert.ok(event.type === "cache.error" && event.operation === "get" && event.kind === "calculation", label);
        assert.equal(event.error.code, "CACHE_ERROR");
        verify(event.error);
      }
    });

    it("a write-back that throws, rejects or hangs is reported once as a setex cache.error, never thrown", async () => {
      const cases: Array<[string, () => Promise<void>]> = [
        ["throws", () => {
          throw new TypeError("not connected");
        }],
        ["rejects", () => Promise.reject(new Error("READONLY"))],
        ["hangs", () => new Promise(() => {})],
      ];
      for (const [label, setex] of cases) {
        const { reads, events, clock, types } = open(new ScriptedCache({ setex }));
        assert.deepEqual(await reads.read("calculation", "k", rateCheck("FICA"), loader(RATE)), RATE, label);
        const closed = reads.close();
        clock.advance(TIMEOUT_MS);
        await closed;
        assert.deepEqual(types(), ["cache.miss", "cache.error"], label);
        const error = events[1];
        assert.ok(error.type === "cache.error" && error.operation === "setex", label);
        assert.match(error.error.message, /^Failed to setex cache key "k": /, label);
      }
    });
  });

  describe("single flight", () => {
    it("100 concurrent identical misses: one lookup, one load, one frozen answer shared by every caller", async () => {
      const cache = new ScriptedCache();
      const { reads, types } = open(cache);
      const opened = gate();
      const load = loader(RATE, { gate: opened.promise });
      const pending = Array.from({ length: 100 }, () => reads.read("calculation", "k", rateCheck("FICA"), load));
      opened.open();
      const answers = await Promise.all(pending);
      assert.equal(cache.gets, 1);
      assert.equal(load.calls, 1);
      assert.deepEqual(types(), ["cache.miss"]);
      assert.throws(() => {
        answers[0].rate = "0.5";
      }, TypeError);
      assert.ok(answers.every((answer) => answer.rate === "0.062"));
      assert.equal(new Set(answers).size, 1, "the callers got different objects");
      await reads.close();
      assert.equal(cache.sets, 1);
      assert.deepEqual(await cache.memory.get("k"), RATE);
    });

    it("concurrent identical hits share one lookup and one frozen answer", async () => {
      const cache = new ScriptedCache();
      await cache.memory.setex("k", TTL_SECONDS, RATE);
      const { reads, types } = open(cache);
      const answers = await Promise.all(
        Array.from({ length: 10 }, () => reads.read("calculation", "k", rateCheck("FICA"), loader(RATE))),
      );
      assert.equal(cache.gets, 1);
      assert.deepEqual(types(), ["cache.hit"]);
      assert.equal(new Set(answers).size, 1);
      assert.ok(Object.isFrozen(answers[0]));
    });

    it("a failed shared load reaches every caller, and the next read tries again", async () => {
      const { reads } = open(new ScriptedCache());
      const opened = gate();
      const failing = loader(RATE, { error: new Error("source down"), gate: opened.promise });
      const pending = Array.from({ length: 10 }, () => reads.read("calculation", "k", rateCheck("FICA"), failing));
      opened.open();
      const results = await Promise.allSettled(pending);
      assert.equal(failing.calls, 1);
      assert.ok(results.every((result) => result.status === "rejected" && result.reason.message === "source down"));
      const load = loader(RATE);
      assert.deepEqual(await reads.read("calculation", "k", rateCheck("FICA"), load), RATE);
      assert.equal(load.calls, 1);
    });

    it("reads of different keys do not share", async () => {
      const cache = new ScriptedCache();
      const { reads } = open(cache);
      const load = loader(RATE);
      await Promise.all(["a", "b", "c"].map((key) => reads.read("calculation", key, rateCheck("FICA"), load)));
      assert.equal(cache.gets, 3);
      assert.equal(load.calls, 3);
    });
  });

  describe("close()", () => {
    it("waits for the write-back in flight, which has then landed", async () => {
      const { cache, written } = heldWrites();
      const { reads } = open(cache);
      await reads.read("calculation", "k", rateCheck("FICA"), loader(RATE));
      let closed = false;
      const closing = reads.close().then(() => (closed = true));
      await settleCallbacks();
      assert.equal(closed, false, "close() did not wait for the write-back");
      written.open();
      await closing;
      assert.deepEqual(await cache.memory.get("k"), RATE);
    });

    it("waits for a hanging write-back only until its deadline", async () => {
      const { reads, clock, types } = open(new ScriptedCache({ setex: () => new Promise(() => {}) }));
      await reads.read("calculation", "k", rateCheck("FICA"), loader(RATE));
      let closed = false;
      const closing = reads.close().then(() => (closed = true));
      await settleCallbacks();
      assert.equal(closed, false);
      clock.advance(TIMEOUT_MS);
      await closing;
      assert.deepEqual(types(), ["cache.miss", "cache.error"]);
    });
  });

  describe("events", () => {
    it("each lookup reports exactly one event: hit, miss, corrupt or error, alone or shared by 10 readers", async () => {
      const scenarios: Array<[ReadThroughEvent["type"], () => Promise<ScriptedCache>]> = [
        ["cache.hit", async () => {
          const cache = new ScriptedCache();
          await cache.memory.setex("k", TTL_SECONDS, RATE);
          return cache;
        }],
        ["cache.miss", () => Promise.resolve(new ScriptedCache())],
        ["cache.corrupt", async () => {
          const cache = new ScriptedCache();
          await cache.memory.setex("k", TTL_SECONDS, { id: "FICA" });
          return cache;
        }],
        ["cache.error", () => Promise.resolve(new ScriptedCache({ get: () => Promise.reject(new Error("down")) }))],
      ];
      for (const [expected, make] of scenarios) {
        for (const readers of [1, 10]) {
          const { reads, events } = open(await make());
          await Promise.all(
            Array.from({ length: readers }, () => reads.read("calculation", "k", rateCheck("FICA"), loader(RATE))),
          );
          await reads.close();
          const lookups = events.filter((event) => event.type !== "cache.error" || event.operation === "get");
          assert.deepEqual(lookups.map((event) => event.type), [expected], `${expected}, ${readers} readers`);
          assert.ok(lookups.every((event) => event.kind === "calculation" && event.key === "k"));
        }
      }
    });
  });
});

describe("ReadThroughCache.readMany() and invalidate()", () => {
  const checks = [rateCheck("OWN"), rateCheck("GLOBAL")];
  const check = (value: unknown, index: number) => checks[index](value);
  const KEYS = ["{r}:own", "{r}:global"];
  const OLD = [{ id: "OWN", rate: "1" }, { id: "GLOBAL", rate: "1" }];
  const NEW = [{ id: "OWN", rate: "2" }, { id: "GLOBAL", rate: "2" }];
  const always = () => true;

  it("reads every entry in one getMany() without generations; all cached is a hit, one missing reads the generations, loads all and writes back the missing", async () => {
    const cache = new MemoryCacheBackend();
    const lookups: Array<boolean | undefined> = [];
    const counted: ICacheBackend = {
      get: (key) => cache.get(key),
      setex: (key, ttl, value) => cache.setex(key, ttl, value),
      delete: (key) => cache.delete(key),
      getMany: (keys, details) => {
        lookups.push(details?.generations);
        return cache.getMany(keys, details);
      },
      setexIfGeneration: (key, ttl, value, generation) => cache.setexIfGeneration(key, ttl, value, generation),
      invalidate: (keys) => cache.invalidate(keys),
    };
    const { reads, types } = open(counted);
    await cache.setex(KEYS[1], TTL_SECONDS, OLD[1]);
    const load = loader(NEW);
    assert.deepEqual(await reads.readMany("calculation", KEYS, check, load, always), NEW);
    await reads.close();
    assert.deepEqual(await cache.get(KEYS[0]), NEW[0]);
    assert.deepEqual(await cache.get(KEYS[1]), OLD[1], "a cached entry is not rewritten");
    assert.deepEqual(await reads.readMany("calculation", KEYS, check, load, always), [NEW[0], OLD[1]]);
    // The first read: values, then the generations its write-back needs; the second, a hit: values alone.
    assert.deepEqual([load.calls, lookups], [1, [false, true, false]]);
    assert.deepEqual(types(), ["cache.miss", "cache.hit", "cache.hit", "cache.hit"]);
  });

  it("readMany() decodes an entry only when the memo does not know its text: a repeated hit parses nothing", async () => {
    const cache = new MemoryCacheBackend();
    const decoded: string[] = [];
    const counted: ICacheBackend = {
      get: (key) => cache.get(key),
      setex: (key, ttl, value) => cache.setex(key, ttl, value),
      delete: (key) => cache.delete(key),
      getEntries: async (keys, details) =>
        (await cache.getEntries(keys, details)).map(({ entry, generation }) => ({
          generation,
          entry: entry === null ? null : {
            ...entry,
            decode: () => {
              decoded.push(entry.text);
              return entry.decode();
            },
          },
        })),
      setexIfGeneration: (key, ttl, value, generation) => cache.setexIfGeneration(key, ttl, value, generation),
      invalidate: (keys) => cache.invalidate(keys),
    };
    const { reads, types } = open(counted);
    await cache.setex(KEYS[0], TTL_SECONDS, OLD[0]);
    await cache.setex(KEYS[1], TTL_SECONDS, OLD[1]);
    const load = loader(NEW);
    for (let read = 0; read < 3; read++) {
      assert.deepEqual(await reads.readMany("calculation", KEYS, check, load, always), OLD);
    }
    assert.equal(decoded.length, 2);
    await cache.setex(KEYS[0], TTL_SECONDS, NEW[0]);
    assert.deepEqual(await reads.readMany("calculation", KEYS, check, load, always), [NEW[0], OLD[1]]);
    assert.deepEqual(decoded, [JSON.stringify(OLD[0]), JSON.stringify(OLD[1]), JSON.stringify(NEW[0])]);
    assert.equal(load.calls, 0);
    assert.deepEqual(types(), Array(8).fill("cache.hit"));
  });

  it("a getEntries() lookup is given the timeout and bounded by the backend: its failure is reported once, as it is, and the read loads", async () => {
    const asked: Array<number | undefined> = [];
    const refusal = new CacheError('Failed to get cache keys "{r}:own": Redis did not answer within 50 ms');
    const bounding: ICacheBackend = {
      get: () => Promise.resolve(null),
      setex: () => Promise.resolve(),
      delete: () => Promise.resolve(),
      getEntries: (_keys, details) => {
        asked.push(details?.timeoutMs);
        return Promise.reject(refusal);
      },
    };
    const { reads, events } = open(bounding);
    const load = loader(NEW);
    assert.deepEqual(await reads.readMany("calculation", KEYS, check, load, always), NEW);
    assert.deepEqual(asked, [TIMEOUT_MS]);
    assert.equal(load.calls, 1);
    const errors = events.filter((event) => event.type === "cache.error");
    assert.equal(errors.length, 1);
    assert.ok(errors[0].type === "cache.error" && errors[0].error === refusal && errors[0].operation === "getMany");
  });

  it("concurrent readMany() calls share a flight only with the same keys in the same order", async () => {
    const cache = new MemoryCacheBackend();
    const { reads } = open(cache);
    const opened = gate();
    const own = loader(NEW, { gate: opened.promise });
    const other = loader([NEW[0], { id: "OTHER", rate: "3" }], { gate: opened.promise });
    const otherCheck = (value: unknown, index: number) => (index === 0 ? checks[0] : rateCheck("OTHER"))(value);
    const pending = [
      reads.readMany("calculation", KEYS, check, own, always),
      reads.readMany("calculation", KEYS, check, own, always),
      reads.readMany("calculation", [KEYS[0], "{r}:other"], otherCheck, other, always),
      reads.readMany("calculation", [KEYS[0], "{r}:other"], otherCheck, other, always),
      reads.readMany("calculation", [KEYS[1], KEYS[0]], (value, index) => check(value, 1 - index), own, always),
    ];
    opened.open();
    const [first, second, third, fourth, reversed] = await Promise.all(pending);
    assert.equal(first, second, "identical reads share one answer");
    // Another second key after the same first one is another read; so are the same keys in another order.
    for (const answer of [third, fourth]) assert.deepEqual(answer.map((entry) => entry.id), ["OWN", "OTHER"]);
    assert.deepEqual(reversed.map((entry) => entry.id), ["OWN", "GLOBAL"]);
    assert.equal(own.calls, 2);
  });

  it("an answer that is not to be cached is not written back", async () => {
    const cache = new MemoryCacheBackend();
    const { reads } = open(cache);
    await reads.readMany("calculation", KEYS, check, loader(NEW), () => false);
    await reads.close();
    assert.deepEqual(await cache.getMany(KEYS), [{ value: null, generation: 0 }, { value: null, generation: 0 }]);
  });

  it("a reader that loaded before a change was invalidated never writes its old value back, in this process or another", async () => {
    for (const where of ["same process", "another process"]) {
      const cache = new MemoryCacheBackend();
      const reader = open(cache);
      const writer = where === "same process" ? reader : open(cache);
      const loaded = gate();
      // The reader misses, then loads from the source of truth what was there before the change.
      const slow = loader(OLD, { gate: loaded.promise });
      const stale = reader.reads.readMany("calculation", KEYS, check, slow, always);
      await settleCallbacks();
      assert.equal(slow.calls, 1, where);
      // The change commits and is invalidated; only then does the reader's load return.
      await writer.reads.invalidate("calculation", KEYS);
      loaded.open();
      assert.deepEqual(await stale, OLD, where);
      await reader.reads.close();
      assert.deepEqual(await cache.get(KEYS[0]), null, `${where}: the old value stayed out of the cache`);
      assert.deepEqual(await cache.get(KEYS[1]), null, where);
      const fresh = loader(NEW);
      assert.deepEqual(await reader.reads.readMany("calculation", KEYS, check, fresh, always), NEW, where);
      assert.equal(fresh.calls, 1, where);
    }
  });

  it("a read that starts after invalidate() never joins a read that started before", async () => {
    const { reads } = open(new MemoryCacheBackend());
    const loaded = gate();
    const before = reads.readMany("calculation", KEYS, check, loader(OLD, { gate: loaded.promise }), always);
    await settleCallbacks();
    await reads.invalidate("calculation", [KEYS[1]]);
    const after = loader(NEW);
    const afterChange = reads.readMany("calculation", KEYS, check, after, always);
    loaded.open();
    assert.deepEqual(await before, OLD);
    assert.deepEqual(await afterChange, NEW);
    assert.equal(after.calls, 1);
  });

  it("without a cache, readMany() loads; a failed getMany() loads and writes nothing back", async () => {
    assert.deepEqual(await open(undefined).reads.readMany("calculation", KEYS, check, loader(NEW), always), NEW);
    const failing = new ScriptedCache({ get: () => Promise.reject(new Error("down")) });
    const { reads, events } = open(failing);
    assert.deepEqual(await reads.readMany("calculation", KEYS, check, loader(NEW), always), NEW);
    await reads.close();
    assert.equal(failing.sets, 0);
    assert.deepEqual(events.map((event) => event.type === "cache.error" && event.operation), ["getMany"]);
  });

  it("invalidate() reports a failing cache as cache.error and still resolves", async () => {
    const broken = new ScriptedCache();
    broken.delete = () => Promise.reject(new Error("down"));
    const { reads, events } = open(broken);
    await reads.invalidate("validation", KEYS);
    assert.deepEqual(events.map((event) => event.type === "cache.error" && event.operation), ["invalidate"]);
  });
});
