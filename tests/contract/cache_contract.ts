// The ICacheBackend contract: every backend runs this suite unchanged.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { type ICacheBackend, InvalidInputError } from "../../mod.ts";
import { DECIMAL_38, uniqueId } from "./fixtures.ts";

/** A cache, a way to let time pass for it, and how to dispose of it. */
export interface CacheUnderTest {
  cache: ICacheBackend;
  /** Lets at least this many milliseconds pass as the cache sees time. */
  elapse(milliseconds: number): Promise<void>;
  cleanup(): Promise<void>;
}

/**
 * Registers the cache contract suite.
 *
 * @param name The backend's name.
 * @param open Creates a cache (called once per suite).
 */
export function cacheContract(name: string, open: () => Promise<CacheUnderTest>): void {
  describe(`ICacheBackend contract: ${name}`, () => {
    let subject: CacheUnderTest;
    let cache: ICacheBackend;
    before(async () => {
      subject = await open();
      cache = subject.cache;
    });
    after(() => subject?.cleanup());

    it("get() returns null on a miss", async () => {
      assert.equal(await cache.get(uniqueId("missing")), null);
    });

    it("setex() then get() round-trips nested JSON, unicode and exact decimals", async () => {
      const key = uniqueId("json");
      const value = {
        rule: { ruleId: "FICA_SS", parameters: { rate: "0.062", exact: DECIMAL_38 } },
        list: [1, -0.5, 1e21, Number.MAX_SAFE_INTEGER, null, true, "x"],
        text: 'Zoë 中文 \u{1F4B5} "quoted" \\ \n',
        empty: {},
      };
      await cache.setex(key, 60, value);
      assert.deepEqual(await cache.get(key), value);
    });

    it("setex() stores top-level strings, numbers, booleans, null and arrays", async () => {
      for (const value of ["text", 42, 0.1, false, null, [1, [2]]]) {
        const key = uniqueId("scalar");
        await cache.setex(key, 60, value);
        assert.deepEqual(await cache.get(key), value);
      }
    });

    it("setex() replaces the value and get() returns a copy", async () => {
      const key = uniqueId("replace");
      const value = { n: 1, list: [1] };
      await cache.setex(key, 60, value);
      value.list.push(2);
      await cache.setex(key, 60, { n: 2, list: [9] });
      const read = await cache.get<{ n: number; list: number[] }>(key);
      assert.deepEqual(read, { n: 2, list: [9] });
      read!.list.push(10);
      assert.deepEqual(await cache.get(key), { n: 2, list: [9] });
    });

    it("an entry expires after its TTL", async () => {
      const key = uniqueId("ttl");
      await cache.setex(key, 1, { short: true });
      assert.deepEqual(await cache.get(key), { short: true });
      await subject.elapse(2100);
      assert.equal(await cache.get(key), null);
    });

    it("delete() removes an entry, and deleting a missing key is not an error", async () => {
      const key = uniqueId("delete");
      await cache.setex(key, 60, "v");
      await cache.delete(key);
      assert.equal(await cache.get(key), null);
      await cache.delete(key);
    });

    it("setex() rejects a TTL that is not a positive integer and keeps the stored value", async () => {
      const key = uniqueId("badttl");
      await cache.setex(key, 60, "kept");
      for (const ttl of [0, -1, 1.5, Number.NaN, Infinity, "60" as unknown as number]) {
        await assert.rejects(cache.setex(key, ttl, "lost"), InvalidInputError);
      }
      assert.equal(await cache.get(key), "kept");
    });

    it("setex() rejects a value JSON cannot hold and keeps the stored value", async () => {
      const key = uniqueId("badvalue");
      await cache.setex(key, 60, "kept");
      const cyclic: Record<string, unknown> = {};
      cyclic.self = cyclic;
      for (const value of [10n, cyclic, undefined, () => 1, Number.NaN, { when: new Date() }, [Symbol("s")]]) {
        await assert.rejects(cache.setex(key, 60, value), (error: unknown) => {
          assert.ok(error instanceof InvalidInputError);
          assert.match(error.message, /^Failed to cache key "/);
          return true;
        });
      }
      assert.equal(await cache.get(key), "kept");
    });

    it("every method rejects an empty, over-long or control-character key", async () => {
      for (const key of ["", "k".repeat(1025), "a\u0000b", 7 as unknown as string]) {
        await assert.rejects(cache.get(key), InvalidInputError);
        await assert.rejects(cache.setex(key, 60, 1), InvalidInputError);
        await assert.rejects(cache.delete(key), InvalidInputError);
        if (cache.getEntry !== undefined) await assert.rejects(cache.getEntry(key, true), InvalidInputError);
        if (cache.getMany !== undefined) await assert.rejects(cache.getMany(["ok", key]), InvalidInputError);
        if (cache.getEntries !== undefined) await assert.rejects(cache.getEntries(["ok", key]), InvalidInputError);
        if (cache.setexIfGeneration !== undefined) {
          await assert.rejects(cache.setexIfGeneration(key, 60, 1, 0), InvalidInputError);
        }
        if (cache.invalidate !== undefined) await assert.rejects(cache.invalidate([key]), InvalidInputError);
        if (cache.writeThrough !== undefined) {
          await assert.rejects(cache.writeThrough(key, 60, 1, 1), InvalidInputError);
        }
      }
    });

    /** Keys that share a hash tag, as one read's keys do. */
    const taggedKeys = (label: string) => {
      const tag = `{${uniqueId(label)}}`;
      return [`bluestar:${tag}:a`, `bluestar:${tag}:b`, `bluestar:${tag}:c`];
    };

    it("getMany() returns every key's value (null on a miss) and generation (0 before any invalidation), in order", async (t) => {
      if (cache.getMany === undefined) return t.skip("the backend has no getMany()");
      const [a, b, c] = taggedKeys("many");
      await cache.setex(a, 60, { n: 1 });
      await cache.setex(c, 60, [3]);
      assert.deepEqual(await cache.getMany([a, b, c]), [
        { value: { n: 1 }, generation: 0 },
        { value: null, generation: 0 },
        { value: [3], generation: 0 },
      ]);
      assert.deepEqual(await cache.getMany([]), []);
    });

    it("getEntry() gives the JSON text as stored and the TTL left when asked; decode() gives what get() gives", async (t) => {
      if (cache.getEntry === undefined) return t.skip("the backend has no getEntry()");
      const key = uniqueId("entry");
      const value = { rate: "0.062", exact: DECIMAL_38, text: "Zoë \u{1F4B5}" };
      await cache.setex(key, 60, value);
      const entry = await cache.getEntry(key, true);
      assert.equal(entry?.text, JSON.stringify(value));
      assert.ok(entry.ttlMs > 0 && entry.ttlMs <= 60_000, `ttlMs ${entry.ttlMs}`);
      assert.deepEqual(await entry.decode(), await cache.get(key));
      assert.equal((await cache.getEntry(key, false))?.ttlMs, Infinity);
      assert.equal(await cache.getEntry(uniqueId("missing"), true), null);
    });

    it("getEntries() reads each key as stored (text, TTL when asked, null on a miss) with its generation, in order", async (t) => {
      if (cache.getEntries === undefined || cache.invalidate === undefined) {
        return t.skip("the backend has no getEntries()");
      }
      const [a, b, c] = taggedKeys("entries");
      await cache.setex(a, 60, { n: 1 });
      await cache.invalidate([b]);
      await cache.setex(c, 60, [3]);
      const found = await cache.getEntries([a, b, c], { ttl: true });
      assert.deepEqual(found.map(({ entry, generation }) => [entry?.text ?? null, generation]), [
        ['{"n":1}', 0],
        [null, 1],
        ["[3]", 0],
      ]);
      for (const { entry } of [found[0], found[2]]) assert.ok(entry!.ttlMs > 0 && entry!.ttlMs <= 60_000);
      assert.deepEqual(await Promise.all([found[0].entry!.decode(), found[2].entry!.decode()]), [{ n: 1 }, [3]]);
      // Without `ttl` an entry's TTL is unknown (Infinity); with `generations: false` every generation is 0.
      const plain = await cache.getEntries([a, b], { generations: false });
      assert.deepEqual(plain.map(({ entry, generation }) => [entry?.ttlMs ?? null, generation]), [[Infinity, 0], [
        null,
        0,
      ]]);
      assert.deepEqual(await cache.getEntries([]), []);
    });

    it("getMany() and getEntries() refuse a timeoutMs that is not a positive number of milliseconds", async () => {
      const [a] = taggedKeys("timeout");
      for (const timeoutMs of [0, -5, Number.NaN]) {
        if (cache.getMany !== undefined) await assert.rejects(cache.getMany([a], { timeoutMs }), InvalidInputError);
        if (cache.getEntries !== undefined) {
          await assert.rejects(cache.getEntries([a], { timeoutMs }), InvalidInputError);
        }
      }
      if (cache.getEntries !== undefined) {
        assert.deepEqual(await cache.getEntries([a], { timeoutMs: 1000 }), [{ entry: null, generation: 0 }]);
      }
    });

    it("invalidate() drops each value and raises its generation by one; a missing key is no error", async (t) => {
      if (cache.getMany === undefined || cache.invalidate === undefined) return t.skip("no fenced calls");
      const [a, b] = taggedKeys("invalidate");
      await cache.setex(a, 60, "v");
      await cache.invalidate([a, b]);
      await cache.invalidate([a]);
      assert.deepEqual(await cache.getMany([a, b]), [{ value: null, generation: 2 }, { value: null, generation: 1 }]);
      assert.equal(await cache.get(a), null);
      // A lookup for hits alone reads no generation.
      await cache.setex(a, 60, "w");
      assert.deepEqual(await cache.getMany([a, b], { generations: false }), [
        { value: "w", generation: 0 },
        { value: null, generation: 0 },
      ]);
    });

    it("setexIfGeneration() stores only while the key's generation is the one read, for its TTL", async (t) => {
      if (cache.getMany === undefined || cache.invalidate === undefined || cache.setexIfGeneration === undefined) {
        return t.skip("no fenced calls");
      }
      const [a, b] = taggedKeys("fenced");
      const [{ generation }] = await cache.getMany([a]);
      // A writer invalidates between the reader's lookup and its write-back: the old value stays out.
      await cache.invalidate([a]);
      assert.equal(await cache.setexIfGeneration(a, 60, "old", generation), false);
      assert.equal(await cache.get(a), null);
      const [now] = await cache.getMany([a]);
      assert.equal(await cache.setexIfGeneration(a, 60, "new", now.generation), true);
      assert.equal(await cache.get(a), "new");
      assert.equal(await cache.setexIfGeneration(b, 1, { fresh: true }, 0), true);
      assert.deepEqual(await cache.get(b), { fresh: true });
      await subject.elapse(2100);
      assert.equal(await cache.get(b), null);
      await assert.rejects(cache.setexIfGeneration(a, 0, "x", now.generation), InvalidInputError);
      assert.equal(await cache.get(a), "new");
    });

    it("writeThrough() stores a newer version and raises the generation; an older one only drops the value", async (t) => {
      if (cache.getMany === undefined || cache.writeThrough === undefined || cache.setexIfGeneration === undefined) {
        return t.skip("no write-through");
      }
      const [a, b] = taggedKeys("through");
      await cache.setex(a, 60, { revision: 1 });
      const [{ generation }] = await cache.getMany([a]);
      assert.equal(await cache.writeThrough(a, 60, { revision: 3 }, 3), true);
      assert.deepEqual(await cache.getMany([a]), [{ value: { revision: 3 }, generation: generation + 1 }]);
      // A reader that looked the key up before the write cannot put its older value back.
      assert.equal(await cache.setexIfGeneration(a, 60, { revision: 1 }, generation), false);
      // The writer of revision 2 runs late: its value never replaces revision 3, and the key is dropped.
      assert.equal(await cache.writeThrough(a, 60, { revision: 2 }, 2), false);
      assert.deepEqual(await cache.getMany([a]), [{ value: null, generation: generation + 2 }]);
      assert.equal(await cache.writeThrough(a, 60, { revision: 3 }, 3), false, "an equal version is not newer");
      assert.equal(await cache.writeThrough(a, 60, { revision: 4 }, 4), true);
      assert.deepEqual(await cache.get(a), { revision: 4 });
      // It lives for its TTL, and a bad argument changes nothing.
      assert.equal(await cache.writeThrough(b, 1, "short", 1), true);
      await subject.elapse(2100);
      assert.equal(await cache.get(b), null);
      for (const version of [0, -1, 1.5, Number.NaN, 2 ** 53]) {
        await assert.rejects(cache.writeThrough(a, 60, "x", version), (error: Error) => {
          assert.ok(error instanceof InvalidInputError);
          assert.match(error.message, /^Failed to write through cache key ".*": version .* is not a positive integer$/);
          return true;
        });
      }
      await assert.rejects(cache.writeThrough(a, 0, "x", 9), InvalidInputError);
      await assert.rejects(cache.writeThrough(a, 60, () => 1, 9), InvalidInputError);
      assert.deepEqual(await cache.getMany([a]), [{ value: { revision: 4 }, generation: generation + 4 }]);
    });
  });
}
