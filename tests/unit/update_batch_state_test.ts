// updateBatchState(): optimistic read-modify-write that loses no update.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  type BatchState,
  ConflictError,
  InvalidInputError,
  type IRulesStore,
  MemoryRulesStore,
  RulesStoreError,
  updateBatchState,
} from "../../mod.ts";
import { batchState } from "../contract/fixtures.ts";

/** The store with its saveBatchState replaced. */
function withSave(store: MemoryRulesStore, save: IRulesStore["saveBatchState"]): IRulesStore {
  return new Proxy(store, {
    get: (target, property) => property === "saveBatchState" ? save : Reflect.get(target, property).bind(target),
  });
}

/** Adds one to `data.count`. */
const increment = (batchId: string) => (current: BatchState | null) => ({
  ...batchState(batchId),
  data: { count: ((current?.data.count as number | undefined) ?? 0) + 1 },
});

describe("updateBatchState()", () => {
  it("50 concurrent writers: the final version equals the successful writes and no update is lost", async () => {
    const store = new MemoryRulesStore();
    let conflicts = 0;
    const counting = withSave(store, async (...args) => {
      try {
        return await store.saveBatchState(...args);
      } catch (error) {
        if (error instanceof ConflictError) conflicts++;
        throw error;
      }
    });
    const results = await Promise.all(
      Array.from(
        { length: 50 },
        () => updateBatchState(counting, "B1", increment("B1"), { maxAttempts: 100, sleep: () => Promise.resolve() }),
      ),
    );
    const final = await store.getBatchState("B1");
    assert.equal(final?.version, 50);
    assert.equal(final?.data.count, 50);
    assert.deepEqual(results.map((r) => r.version).sort((a, b) => a - b), Array.from({ length: 50 }, (_, i) => i + 1));
    assert.ok(conflicts > 0, "the writers never raced, so the test proved nothing");
  });

  it("gives up after maxAttempts with a ConflictError that keeps the last conflict as cause", async () => {
    const store = new MemoryRulesStore();
    const alwaysStale = withSave(store, () => Promise.reject(new ConflictError("stale")));
    const delays: number[] = [];
    await assert.rejects(
      updateBatchState(alwaysStale, "B1", increment("B1"), {
        maxAttempts: 4,
        random: () => 0.5,
        sleep: (ms) => {
          delays.push(ms);
          return Promise.resolve();
        },
      }),
      (error: unknown) => {
        assert.ok(error instanceof ConflictError);
        assert.match(error.message, /other writers won all 4 attempts/);
        assert.ok(error.cause instanceof ConflictError);
        return true;
      },
    );
    assert.deepEqual(delays, [2.5, 5, 10]);
  });

  it("does not retry other errors, and rejects a malformed update", async () => {
    const store = new MemoryRulesStore();
    let calls = 0;
    const broken = withSave(store, () => {
      calls++;
      return Promise.reject(new RulesStoreError("down"));
    });
    await assert.rejects(updateBatchState(broken, "B1", increment("B1")), RulesStoreError);
    assert.equal(calls, 1);
    await assert.rejects(
      updateBatchState(store, "B1", () => ({ ...batchState("B1"), status: "lost" as never })),
      InvalidInputError,
    );
    await assert.rejects(updateBatchState(store, "B1", increment("B1"), { maxAttempts: 0 }), InvalidInputError);
    assert.equal(await store.getBatchState("B1"), null);
  });
});
