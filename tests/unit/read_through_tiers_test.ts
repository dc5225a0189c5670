// The read-through cache with its in-process tier and an invalidation bus
// the test controls: which tier answers, invalidation in every tier, a silent
// bus, a read racing an invalidation, stale-if-error. Manual clock throughout.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MemoryCacheBackend } from "../../mod.ts";
import type { IInvalidationBus, InvalidationListener } from "../../src/core/protocols.ts";
import type { Decoded } from "../../src/core/schema.ts";
import { ReadThroughCache, type ReadThroughEvent } from "../../src/persistence/read_through.ts";
import { ManualClock } from "../support/clock.ts";

interface Rate {
  id: string;
  rate: string;
}

const check = (value: unknown): Decoded<Rate> => {
  const candidate = value as Partial<Rate> | null;
  return typeof candidate?.rate === "string" && candidate.id === "FICA"
    ? { ok: true, value: { id: "FICA", rate: candidate.rate } }
    : { ok: false, problems: [{ path: "cached", message: "it is not a rate" }] };
};

/** A bus the test drives: it is live while `live` is set, and `deliver` plays a message from another process. */
class FakeBus implements IInvalidationBus {
  live = true;
  readonly published: string[][] = [];
  readonly #listeners: InvalidationListener[] = [];

  publish(keys: readonly string[]): Promise<void> {
    this.published.push([...keys]);
    return Promise.resolve();
  }
  listen(listener: InvalidationListener): void {
    this.#listeners.push(listener);
  }
  isLive(): boolean {
    return this.live;
  }
  liveUntil(): number {
    return this.live ? Infinity : -Infinity;
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
  deliver(keys: string[]): void {
    for (const listener of this.#listeners) listener.dropped(keys);
  }
  restore(): void {
    this.live = true;
    for (const listener of this.#listeners) listener.restored();
  }
}

/** The source of truth: a rate the test changes, and how often it was loaded. */
function source(rate = "0.062") {
  const truth = {
    rate,
    loads: 0,
    failure: undefined as Error | undefined,
    load: (): Promise<Rate> => {
      truth.loads++;
      if (truth.failure !== undefined) return Promise.reject(truth.failure);
      return Promise.resolve({ id: "FICA", rate: truth.rate });
    },
  };
  return truth;
}

function open(options: { bus?: FakeBus; staleSeconds?: number; localTtlSeconds?: number } = {}) {
  const clock = new ManualClock();
  const cache = new MemoryCacheBackend({ now: () => clock.now() });
  const events: ReadThroughEvent[] = [];
  const reads = new ReadThroughCache({
    cache,
    ttlSeconds: 300,
    timeoutMs: 50,
    clock,
    onEvent: (event) => events.push(event),
    localCache: { maxEntries: 100, ttlSeconds: options.localTtlSeconds ?? 60 },
    bus: options.bus,
    staleIfError: options.staleSeconds === undefined
      ? undefined
      : { seconds: options.staleSeconds, when: (error) => (error as Error).message === "down" },
  });
  const tiers = () => events.map((event) => (event.type === "cache.hit" ? `hit:${event.tier}` : event.type)).splice(0);
  return { reads, cache, clock, events, tiers };
}

describe("ReadThroughCache tiers", () => {
  it("a load fills both tiers; the next read is a local hit, the same frozen value, with no cache call", async () => {
    const { reads, tiers } = open();
    const truth = source();
    const first = await reads.read("calculation", "k", check, truth.load);
    await reads.close();
    const second = await reads.read("calculation", "k", check, truth.load);
    assert.equal(second, first);
    assert.ok(Object.isFrozen(second));
    assert.deepEqual(tiers(), ["cache.miss", "hit:local"]);
    assert.equal(truth.loads, 1);
  });

  it("a Redis-tier hit fills the local tier; the local entry ends with the Redis entry's remaining TTL", async () => {
    const { reads, cache, clock, tiers } = open({ localTtlSeconds: 60 });
    await cache.setex("k", 2, { id: "FICA", rate: "0.062" });
    const truth = source("0.063");
    assert.equal((await reads.read("calculation", "k", check, truth.load)).rate, "0.062");
    clock.advance(1999);
    assert.equal((await reads.read("calculation", "k", check, truth.load)).rate, "0.062");
    clock.advance(1);
    assert.equal((await reads.read("calculation", "k", check, truth.load)).rate, "0.063");
    assert.deepEqual(tiers(), ["hit:redis", "hit:local", "cache.miss"]);
  });

  it("invalidate() drops the key locally and in the cache, and publishes it on the bus", async () => {
    const bus = new FakeBus();
    const { reads, cache, tiers } = open({ bus });
    const truth = source();
    await reads.read("calculation", "k", check, truth.load);
    await reads.close();
    truth.rate = "0.07";
    await reads.invalidate("calculation", ["k"]);
    assert.equal(await cache.get("k"), null);
    assert.deepEqual(bus.published, [["k"]]);
    assert.equal((await reads.read("calculation", "k", check, truth.load)).rate, "0.07");
    assert.deepEqual(tiers(), ["cache.miss", "cache.miss"]);
  });

  it("writeThrough() caches the writer's value before the bus publishes it: the next read is a Redis hit", async () => {
    const bus = new FakeBus();
    const { reads, cache, tiers } = open({ bus });
    const truth = source();
    await reads.read("calculation", "k", check, truth.load);
    await reads.close();
    // The cache answers late: the bus must still wait for it.
    const writeThrough = cache.writeThrough.bind(cache);
    cache.writeThrough = async (...call) => {
      await new Promise((resolve) => setTimeout(resolve, 5));
      return writeThrough(...call);
    };
    const cachedWhenPublished: unknown[] = [];
    const publish = bus.publish.bind(bus);
    bus.publish = async (keys) => {
      cachedWhenPublished.push(await cache.get("k"));
      return publish(keys);
    };
    truth.rate = "0.07";
    await reads.writeThrough("calculation", "k", { id: "FICA", rate: "0.07" }, 2);
    assert.deepEqual(cachedWhenPublished, [{ id: "FICA", rate: "0.07" }]);
    assert.deepEqual(bus.published, [["k"]]);
    assert.equal((await reads.read("calculation", "k", check, truth.load)).rate, "0.07");
    assert.equal(truth.loads, 1);
    assert.deepEqual(tiers(), ["cache.miss", "hit:redis"]);
    // An older writer's late call drops the entry rather than put its value back: the next read loads.
    await reads.writeThrough("calculation", "k", { id: "FICA", rate: "0.065" }, 1);
    assert.equal(await cache.get("k"), null);
    assert.equal((await reads.read("calculation", "k", check, truth.load)).rate, "0.07");
    assert.equal(truth.loads, 2);
  });

  it("writeThrough() on a backend without it invalidates the key, and a failure is reported, never thrown", async () => {
    const memory = new MemoryCacheBackend();
    const events: ReadThroughEvent[] = [];
    const plain = {
      get: memory.get.bind(memory),
      setex: memory.setex.bind(memory),
      delete: memory.delete.bind(memory),
      invalidate: memory.invalidate.bind(memory),
    };
    const reads = new ReadThroughCache({ cache: plain, ttlSeconds: 300, timeoutMs: 50 });
    await memory.setex("k", 300, { id: "FICA", rate: "0.062" });
    await reads.writeThrough("calculation", "k", { id: "FICA", rate: "0.07" }, 2);
    assert.equal(await memory.get("k"), null);
    const failing = new ReadThroughCache({
      cache: { ...plain, writeThrough: () => Promise.reject(new Error("READONLY")) },
      ttlSeconds: 300,
      timeoutMs: 50,
      onEvent: (event) => events.push(event),
    });
    await failing.writeThrough("calculation", "k", { id: "FICA", rate: "0.07" }, 3);
    assert.deepEqual(
      events.map((event) => event.type === "cache.error" && [event.operation, event.error.code, event.key]),
      [["writeThrough", "CACHE_ERROR", "k"]],
    );
  });

  it("keys another process published are dropped from the local tier", async () => {
    const bus = new FakeBus();
    const { reads, cache, tiers } = open({ bus });
    const truth = source();
    await reads.read("calculation", "k", check, truth.load);
    await reads.close();
    await cache.setex("k", 300, { id: "FICA", rate: "0.07" }); // the other process's write-back
    bus.deliver(["k"]);
    assert.equal((await reads.read("calculation", "k", check, truth.load)).rate, "0.07");
    assert.deepEqual(tiers(), ["cache.miss", "hit:redis"]);
  });

  it("while the bus is silent the local tier does not answer; when it is back the tier is cleared", async () => {
    const bus = new FakeBus();
    const { reads, cache, tiers } = open({ bus });
    const truth = source();
    await reads.read("calculation", "k", check, truth.load);
    await reads.close();
    bus.live = false;
    // The change another process made, whose message this process missed.
    await cache.setex("k", 300, { id: "FICA", rate: "0.07" });
    assert.equal((await reads.read("calculation", "k", check, truth.load)).rate, "0.07");
    assert.equal((await reads.read("calculation", "k", check, truth.load)).rate, "0.07");
    bus.restore();
    assert.equal((await reads.read("calculation", "k", check, truth.load)).rate, "0.07");
    assert.equal((await reads.read("calculation", "k", check, truth.load)).rate, "0.07");
    assert.deepEqual(tiers(), ["cache.miss", "hit:redis", "hit:redis", "hit:redis", "hit:local"]);
  });

  it("a read in flight when an invalidation arrives answers, but caches nothing in any tier", async () => {
    const bus = new FakeBus();
    const { reads, cache } = open({ bus });
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const old = reads.read("calculation", "k", check, async () => {
      await held;
      return { id: "FICA", rate: "0.062" };
    });
    bus.deliver(["k"]);
    release();
    assert.equal((await old).rate, "0.062");
    await reads.close();
    assert.equal(await cache.get("k"), null);
    const truth = source("0.07");
    assert.equal((await reads.read("calculation", "k", check, truth.load)).rate, "0.07");
  });

  it("staleIfError serves the last value read within the window when the load fails, reported as cache.stale", async () => {
    const { reads, cache, clock, events } = open({ staleSeconds: 10, localTtlSeconds: 1 });
    const truth = source();
    await reads.read("calculation", "k", check, truth.load);
    await reads.close();
    await cache.delete("k");
    clock.advance(5000);
    truth.failure = new Error("down");
    assert.equal((await reads.read("calculation", "k", check, truth.load)).rate, "0.062");
    const stale = events.find((event) => event.type === "cache.stale");
    assert.ok(stale?.type === "cache.stale" && stale.ageMs === 5000 && stale.key === "k");
    clock.advance(5000);
    await assert.rejects(reads.read("calculation", "k", check, truth.load), /down/);
    truth.failure = new Error("not found");
    await assert.rejects(reads.read("calculation", "other", check, truth.load), /not found/);
  });

  it("without staleIfError a failed load fails, whatever was read before", async () => {
    const { reads, cache, clock } = open({ localTtlSeconds: 1 });
    const truth = source();
    await reads.read("calculation", "k", check, truth.load);
    await reads.close();
    await cache.delete("k");
    clock.advance(1000);
    truth.failure = new Error("down");
    await assert.rejects(reads.read("calculation", "k", check, truth.load), /down/);
  });

  describe("per-owner entries (readMany)", () => {
    const KEYS = ["own", "global"];
    const many = (reads: ReadThroughCache, truth: ReturnType<typeof source>) =>
      reads.readMany("calculation", KEYS, check, async () => [await truth.load(), await truth.load()], () => true);

    it("both entries come from the local tier after one load: the same frozen values, no cache call", async () => {
      const { reads, tiers } = open({ bus: new FakeBus() });
      const truth = source();
      const first = await many(reads, truth);
      await reads.close();
      const second = await many(reads, truth);
      assert.ok(second.every((entry, index) => entry === first[index] && Object.isFrozen(entry)));
      assert.deepEqual(tiers(), ["cache.miss", "cache.miss", "hit:local", "hit:local"]);
      assert.equal(truth.loads, 2);
    });

    it("invalidate() of one owner's key raises its generation, drops it locally and publishes it; the next read loads it", async () => {
      const bus = new FakeBus();
      const { reads, cache, events, tiers } = open({ bus });
      const truth = source();
      await many(reads, truth);
      await reads.close();
      const [before] = await cache.getMany(KEYS);
      await reads.invalidate("calculation", ["own"]);
      const [own, global] = await cache.getMany(KEYS);
      assert.deepEqual([own.value, own.generation, global.generation], [null, before.generation + 1, 0]);
      assert.deepEqual(bus.published, [["own"]]);
      events.length = 0;
      truth.rate = "0.07";
      assert.deepEqual((await many(reads, truth)).map((entry) => entry.rate), ["0.07", "0.07"]);
      assert.deepEqual(tiers(), ["cache.miss", "hit:redis"]);
    });

    it("a read that loaded before an invalidation neither writes back nor keeps its entries", async () => {
      const { reads, cache, events, tiers } = open({ bus: new FakeBus() });
      const truth = source();
      let release = () => {};
      const slow = reads.readMany("calculation", KEYS, check, async () => {
        const loaded = [await truth.load(), await truth.load()];
        await new Promise<void>((resolve) => (release = resolve));
        return loaded;
      }, () => true);
      await new Promise((resolve) => setTimeout(resolve, 0));
      await reads.invalidate("calculation", ["own"]);
      release();
      assert.equal((await slow)[0].rate, "0.062");
      await reads.close();
      assert.equal((await cache.getMany(KEYS))[0].value, null, "the old value was not written back");
      events.length = 0;
      truth.rate = "0.07";
      assert.equal((await many(reads, truth))[0].rate, "0.07");
      assert.ok(!tiers().includes("hit:local"), "nothing of the old read was kept in process");
    });
  });
});
