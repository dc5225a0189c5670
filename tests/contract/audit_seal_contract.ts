// The audit-sealing and exactly-once contract: every rules store with a file store for seal copies runs it unchanged.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  auditEntryDigest,
  auditSealPath,
  auditTrailRoot,
  ConflictError,
  type IFileStore,
  InvalidInputError,
  type IRulesStore,
  MAX_UPDATE_KEYS,
  storedAuditFields,
} from "../../mod.ts";
import { auditEntry, batchState, uniqueId } from "./fixtures.ts";

/** A rules store whose seal copies go to `files`, and how to dispose of both. */
export interface SealingStoreUnderTest {
  store: IRulesStore;
  files: IFileStore;
  cleanup(): Promise<void>;
}

/** Appends `count` entries to a batch, a second apart, with distinct details. */
export async function appendEntries(store: IRulesStore, batchId: string, count: number): Promise<void> {
  for (let index = 0; index < count; index++) {
    await store.appendAuditEntry(
      auditEntry(batchId, `e${String(index).padStart(4, "0")}`, {
        timestamp: new Date(Date.UTC(2026, 10, 27, 10, 0, index)).toISOString(),
        details: { step: index, amount: `${index}.50`, note: `entry ${index}` },
      }),
    );
  }
}

/**
 * Registers the sealing contract suite.
 *
 * @param name The backend's name.
 * @param open Creates a store with a file store for seal copies (called once per suite).
 */
export function auditSealContract(name: string, open: () => Promise<SealingStoreUnderTest>): void {
  describe(`IRulesStore sealing contract: ${name}`, () => {
    let subject: SealingStoreUnderTest;
    let store: IRulesStore;
    before(async () => {
      subject = await open();
      store = subject.store;
    });
    after(() => subject?.cleanup());

    it("sealAuditTrail() seals every entry under the root an auditor recomputes from the listing", async () => {
      const batchId = uniqueId("B");
      await appendEntries(store, batchId, 5);
      const seal = await store.sealAuditTrail(batchId, { actor: "auditor@example.com" });
      const listed = await store.listAuditEntries(batchId);
      assert.equal(seal.batchId, batchId);
      assert.equal(seal.entryCount, 5);
      assert.equal(seal.actor, "auditor@example.com");
      assert.equal(seal.root, auditTrailRoot(listed.map((entry) => auditEntryDigest(storedAuditFields(entry)))));
      assert.ok(!Number.isNaN(Date.parse(seal.sealedAt)));
      const copy = JSON.parse(new TextDecoder().decode(await subject.files.read(auditSealPath(batchId))));
      assert.equal(copy.root, seal.root);
      assert.deepEqual(copy.entries.map((entry: { entryId: string }) => entry.entryId), listed.map((e) => e.entryId));
    });

    it("sealAuditTrail() a second time is a ConflictError and the first seal stands", async () => {
      const batchId = uniqueId("B");
      await appendEntries(store, batchId, 2);
      const first = await store.sealAuditTrail(batchId, { actor: "auditor" });
      await assert.rejects(store.sealAuditTrail(batchId, { actor: "someone-else" }), ConflictError);
      const verification = await store.verifyAuditTrail(batchId);
      assert.deepEqual(verification, { ok: true, seal: first });
    });

    it("appendAuditEntry() to a sealed trail is a ConflictError and stores nothing", async () => {
      const batchId = uniqueId("B");
      await appendEntries(store, batchId, 3);
      await store.sealAuditTrail(batchId, { actor: "auditor" });
      await assert.rejects(store.appendAuditEntry(auditEntry(batchId, "late")), (error: unknown) => {
        assert.ok(error instanceof ConflictError);
        assert.match(error.message, /is sealed/);
        return true;
      });
      assert.equal((await store.listAuditEntries(batchId)).length, 3);
      assert.equal((await store.verifyAuditTrail(batchId)).ok, true);
    });

    it("verifyAuditTrail() passes on an untouched trail and returns its seal", async () => {
      const batchId = uniqueId("B");
      await appendEntries(store, batchId, 4);
      const seal = await store.sealAuditTrail(batchId, { actor: "auditor" });
      assert.deepEqual(await store.verifyAuditTrail(batchId), { ok: true, seal });
    });

    it("verifyAuditTrail() of a batch never sealed says so", async () => {
      const batchId = uniqueId("B");
      await appendEntries(store, batchId, 1);
      const verification = await store.verifyAuditTrail(batchId);
      assert.equal(verification.ok, false);
      assert.ok(!verification.ok);
      assert.match(verification.problems.join("\n"), /is not sealed/);
    });

    it("an empty trail seals with no entries and verifies, and then takes no entry", async () => {
      const batchId = uniqueId("B");
      const seal = await store.sealAuditTrail(batchId, { actor: "auditor" });
      assert.equal(seal.entryCount, 0);
      assert.equal(seal.root, auditTrailRoot([]));
      assert.equal((await store.verifyAuditTrail(batchId)).ok, true);
      await assert.rejects(store.appendAuditEntry(auditEntry(batchId, "e1")), ConflictError);
    });

    it("sealing one batch leaves other batches open", async () => {
      const sealed = uniqueId("B");
      const open = uniqueId("B");
      await store.sealAuditTrail(sealed, { actor: "auditor" });
      await store.appendAuditEntry(auditEntry(open, "e1"));
      assert.equal((await store.listAuditEntries(open)).length, 1);
    });

    it("sealAuditTrail() refuses a bad batch id or actor with InvalidInputError and seals nothing", async () => {
      const batchId = uniqueId("B");
      await assert.rejects(store.sealAuditTrail("A#B", { actor: "auditor" }), InvalidInputError);
      for (const options of [{ actor: "" }, { actor: 42 }, {}, null]) {
        await assert.rejects(store.sealAuditTrail(batchId, options as never), InvalidInputError);
      }
      await store.appendAuditEntry(auditEntry(batchId, "e1"));
      await assert.rejects(store.verifyAuditTrail("A#B"), InvalidInputError);
    });

    it("saveBatchState() with an idempotency key the state remembers changes nothing", async () => {
      const batchId = uniqueId("B");
      await store.saveBatchState(batchId, batchState(batchId), { expectedVersion: 0, idempotencyKey: "k1" });
      const first = await store.getBatchState(batchId);
      assert.deepEqual(first?.updateKeys, ["k1"]);
      // The same update again, even against a stale version: recognised, not applied.
      await store.saveBatchState(batchId, batchState(batchId, { version: 9, currentStep: 900 }), {
        expectedVersion: 0,
        idempotencyKey: "k1",
      });
      await store.saveBatchState(batchId, batchState(batchId, { version: 9 }), { idempotencyKey: "k1" });
      assert.deepEqual(await store.getBatchState(batchId), first);
    });

    it("saveBatchState() remembers the last 64 keys, oldest first", async () => {
      const batchId = uniqueId("B");
      let state = batchState(batchId);
      for (let index = 0; index < MAX_UPDATE_KEYS + 3; index++) {
        const version = index + 1;
        await store.saveBatchState(batchId, { ...state, version }, {
          expectedVersion: index,
          idempotencyKey: `k${index}`,
        });
        state = (await store.getBatchState(batchId))!;
      }
      assert.equal(state.updateKeys?.length, MAX_UPDATE_KEYS);
      assert.equal(state.updateKeys?.[0], "k3");
      assert.equal(state.updateKeys?.at(-1), `k${MAX_UPDATE_KEYS + 2}`);
      // A key that fell out of the window is no longer recognised: a stale version is then a conflict.
      await assert.rejects(
        store.saveBatchState(batchId, { ...state, version: 2 }, { expectedVersion: 1, idempotencyKey: "k0" }),
        ConflictError,
      );
    });

    it("saveBatchState() refuses a bad idempotency key with InvalidInputError and writes nothing", async () => {
      const batchId = uniqueId("B");
      for (const key of ["", "A#B", 42]) {
        await assert.rejects(
          store.saveBatchState(batchId, batchState(batchId), { idempotencyKey: key as string }),
          InvalidInputError,
        );
      }
      assert.equal(await store.getBatchState(batchId), null);
    });
  });
}
