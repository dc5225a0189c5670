// Items 3 and 4: concurrent writers on DynamoDB (moto). No batch-state update
// is lost under 50 concurrent updateBatchState() writers, and the audit log
// is append-only under 1,000 concurrent appends and their replay.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { type AuditEntry, type BatchState, ConflictError, updateBatchState } from "../../mod.ts";
import type { DynamoDBRulesStore } from "../../src/persistence/dynamodb_backend.ts";
import { auditEntry, uniqueId } from "../contract/fixtures.ts";
import { openStore } from "../support/dynamodb.ts";
import { AWS_ENDPOINT_URL, integrationSuite, probe } from "../support/gate.ts";
import { mapConcurrently } from "../../src/core/concurrency.ts";
import { outcome } from "../support/rules_data.ts";

integrationSuite("Reliability: concurrent writers on DynamoDB", await probe(AWS_ENDPOINT_URL), () => {
  let store: DynamoDBRulesStore;
  let cleanup = () => Promise.resolve();

  before(async () => {
    ({ store, cleanup } = await openStore({}));
  });

  after(() => cleanup());

  describe("lost updates: 50 concurrent updateBatchState() writers on one batch", () => {
    /** The update each writer makes: one more in the counter, its name appended to the list. */
    const increment = (batchId: string, writer: string) => (current: BatchState | null) => ({
      batchId,
      clientId: "ACME",
      planId: "PLAN_A",
      status: "running" as const,
      currentStep: 100,
      updatedAt: new Date().toISOString(),
      data: {
        counter: ((current?.data.counter as number | undefined) ?? 0) + 1,
        writers: [...((current?.data.writers as string[] | undefined) ?? []), writer],
      },
    });

    async function race(options: Parameters<typeof updateBatchState>[3]) {
      const batchId = uniqueId("batch");
      const writers = Array.from({ length: 50 }, (_, index) => `writer-${index}`);
      const results = await Promise.all(
        writers.map((writer) => outcome(updateBatchState(store, batchId, increment(batchId, writer), options))),
      );
      const final = await store.getBatchState(batchId);
      assert.ok(final !== null);
      const won = writers.filter((_, index) => results[index].ok);
      const lost = results.filter((result) => !result.ok);
      for (const result of lost) assert.ok(!result.ok && result.error instanceof ConflictError, String(result));
      // No update lost: every successful write is in the state exactly once, and nothing else is.
      assert.equal(final.version, won.length);
      assert.equal(final.data.counter, won.length);
      assert.deepEqual([...(final.data.writers as string[])].sort(), [...won].sort());
      // Each successful call returned the version it wrote: 1..n, each once.
      const versions = results.flatMap((result) => (result.ok ? [result.value.version] : [])).sort((a, b) => a - b);
      assert.deepEqual(versions, Array.from({ length: won.length }, (_, index) => index + 1));
      return { won: won.length, lost: lost.length };
    }

    it("with the default retry policy, the final version and the counter both equal the successful writes", async () => {
      const { won, lost } = await race(undefined);
      assert.equal(won + lost, 50);
      assert.ok(won > 0);
    });

    it("with enough attempts, all 50 writes land: version 50, counter 50, every writer once", async () => {
      const { won } = await race({ maxAttempts: 500, baseDelayMs: 2 });
      assert.equal(won, 50);
    });
  });

  describe("the audit log is append-only under 1,000 concurrent appends", () => {
    const batchId = uniqueId("batch");
    const entries: AuditEntry[] = Array.from(
      { length: 1_000 },
      (_, index) =>
        auditEntry(batchId, `entry-${String(index).padStart(4, "0")}`, {
          // Shared timestamps, so the listing order falls back to the id.
          timestamp: new Date(Date.UTC(2026, 10, 27, 10, 0, index % 60)).toISOString(),
          details: { index, amount: `${index}.05`, note: `entry ${index} \u{1F4B5} "quoted"` },
        }),
    );
    let firstListing = "";

    it("1,000 appends with unique ids, 50 at a time, all land exactly once", async () => {
      const results = await mapConcurrently(entries, 50, (entry) => outcome(store.appendAuditEntry(entry)));
      assert.deepEqual(results.filter((result) => !result.ok), []);
      const listed = await store.listAuditEntries(batchId);
      assert.equal(listed.length, 1_000);
      assert.equal(new Set(listed.map((entry) => entry.entryId)).size, 1_000);
      const byId = (a: AuditEntry, b: AuditEntry) => (a.entryId < b.entryId ? -1 : 1);
      assert.deepEqual([...listed].sort(byId), [...entries].sort(byId));
      firstListing = JSON.stringify(listed);
    });

    it("replaying the same 1,000 gives 1,000 ConflictErrors and changes no byte of the trail", async () => {
      assert.notEqual(firstListing, "");
      const results = await mapConcurrently(entries, 50, (entry) => outcome(store.appendAuditEntry(entry)));
      assert.equal(results.filter((result) => !result.ok && result.error instanceof ConflictError).length, 1_000);
      assert.equal(JSON.stringify(await store.listAuditEntries(batchId)), firstListing);
    });

    it("replaying the 1,000 ids with other content gives 1,000 ConflictErrors and changes no byte", async () => {
      assert.notEqual(firstListing, "");
      const forged = entries.map((entry) => ({
        ...entry,
        actor: "intruder",
        timestamp: "2030-01-01T00:00:00.000Z",
        details: { forged: true },
      }));
      const results = await mapConcurrently(forged, 50, (entry) => outcome(store.appendAuditEntry(entry)));
      assert.equal(results.filter((result) => !result.ok && result.error instanceof ConflictError).length, 1_000);
      assert.equal(JSON.stringify(await store.listAuditEntries(batchId)), firstListing);
    });
  });
});
