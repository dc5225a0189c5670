// The in-process tier on its own, on a manual clock: the LRU bound, per-entry
// expiry, the lifetime cap of an entry copied from Redis, frozen values.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { LocalTier } from "../../src/persistence/local_tier.ts";
import { ManualClock } from "../support/clock.ts";

function open(maxEntries: number, ttlMs: number) {
  const clock = new ManualClock();
  return { tier: new LocalTier({ maxEntries, ttlMs, clock }), clock };
}

describe("LocalTier", () => {
  it("holds at most maxEntries under 100,000 distinct keys, keeping the most recently used", () => {
    const { tier } = open(1000, 60_000);
    for (let index = 0; index < 100_000; index++) {
      tier.set(`k${index}`, { index }, Infinity);
      if (index % 10 === 0) tier.get("k0"); // k0 stays in use
      assert.ok(tier.size <= 1000);
    }
    assert.equal(tier.size, 1000);
    assert.deepEqual(tier.get("k0"), { index: 0 });
    assert.deepEqual(tier.get("k99999"), { index: 99_999 });
    assert.equal(tier.get("k1"), undefined);
    assert.equal(tier.get("k98999"), undefined, "the least recently used went first");
  });

  it("an entry expires after the tier's TTL", () => {
    const { tier, clock } = open(10, 1000);
    tier.set("k", { v: 1 }, Infinity);
    clock.advance(999);
    assert.deepEqual(tier.get("k"), { v: 1 });
    clock.advance(1);
    assert.equal(tier.get("k"), undefined);
    assert.equal(tier.size, 0);
  });

  it("an entry never outlives the lifetime it was given (the Redis entry's remaining TTL)", () => {
    const { tier, clock } = open(10, 60_000);
    tier.set("short", { v: 1 }, 200);
    tier.set("gone", { v: 2 }, 0);
    assert.equal(tier.get("gone"), undefined);
    clock.advance(199);
    assert.deepEqual(tier.get("short"), { v: 1 });
    clock.advance(1);
    assert.equal(tier.get("short"), undefined);
  });

  it("a hit is the same frozen value: changing it throws, and the next hit is unaffected", () => {
    const { tier } = open(10, 60_000);
    tier.set("k", { rule: { parameters: { rate: "0.062" } }, list: [1, 2] }, Infinity);
    const hit = tier.get("k") as { rule: { parameters: { rate: string } }; list: number[] };
    assert.throws(() => {
      hit.rule.parameters.rate = "0.5";
    }, TypeError);
    assert.throws(() => hit.list.push(3), TypeError);
    const next = tier.get("k");
    assert.equal(next, hit);
    assert.deepEqual(next, { rule: { parameters: { rate: "0.062" } }, list: [1, 2] });
  });

  it("delete() drops the named keys and clear() drops every key", () => {
    const { tier } = open(10, 60_000);
    for (const key of ["a", "b", "c"]) tier.set(key, key, Infinity);
    tier.delete(["a", "missing"]);
    assert.equal(tier.get("a"), undefined);
    assert.equal(tier.get("b"), "b");
    tier.clear();
    assert.equal(tier.size, 0);
  });

  it("peek() shows a live entry and when it was stored, without reviving an expired one", () => {
    const { tier, clock } = open(10, 1000);
    clock.advance(5);
    tier.set("k", "v", Infinity);
    assert.deepEqual(tier.peek("k"), { value: "v", storedAt: 5, expiresAt: 1005 });
    clock.advance(1000);
    assert.equal(tier.peek("k"), undefined);
  });
});
