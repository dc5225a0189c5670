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
      }
    });
  });
}
