// Sealing on the memory reference, the canonical encoding and the Merkle root, verification's named problems,
// retention in the memory file store, exactly-once updates, and the audit command.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, it } from "node:test";
import {
  AUDIT_ENTRY_ENCODING,
  auditEntryDigest,
  auditSealPath,
  auditTrailRoot,
  canonicalAuditEntry,
  ConfigError,
  ConflictError,
  InvalidInputError,
  MemoryFileStore,
  MemoryRulesStore,
  storedAuditFields,
  updateBatchState,
} from "../../mod.ts";
import { compareWithSeals, sealDocument } from "../../src/core/audit.ts";
import { main } from "../../scripts/audit.ts";
import { appendEntries, auditSealContract } from "../contract/audit_seal_contract.ts";
import { auditEntry, batchState, uniqueId } from "../contract/fixtures.ts";

auditSealContract("MemoryRulesStore + MemoryFileStore", () => {
  const files = new MemoryFileStore();
  return Promise.resolve({ store: new MemoryRulesStore({}, { sealFiles: files }), files, cleanup: async () => {} });
});

const sha256 = (...parts: Uint8Array[]) => {
  const hash = createHash("sha256");
  for (const part of parts) hash.update(part);
  return new Uint8Array(hash.digest());
};
const hex = (bytes: Uint8Array) => Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
const unhex = (text: string) => Uint8Array.from(text.match(/../g)!.map((pair) => parseInt(pair, 16)));

describe("the canonical entry encoding and the root", () => {
  it("encodes an entry as the v1 line and its stored fields as JSON with sorted keys", () => {
    const entry = auditEntry("B1", "e1", { details: { z: 1, a: "0.50" } });
    assert.equal(
      canonicalAuditEntry(storedAuditFields(entry)),
      `${AUDIT_ENTRY_ENCODING}\n{"action":"rule_resolved","actor":"svc-compliance","agent":"compliance",` +
        `"batchId":"B1","details":"{\\"z\\":1,\\"a\\":\\"0.50\\"}","entryId":"e1","timestamp":"2026-11-27T10:00:00.000Z"}`,
    );
  });

  it("a leaf is SHA-256 of 0x00 then the encoding, so a change of any byte changes it", () => {
    const fields = storedAuditFields(auditEntry("B1", "e1"));
    const expected = hex(sha256(Uint8Array.of(0), new TextEncoder().encode(canonicalAuditEntry(fields))));
    assert.equal(auditEntryDigest(fields), expected);
    assert.notEqual(auditEntryDigest({ ...fields, details: fields.details.replace("11439.00", "11439.0") }), expected);
  });

  it("the root is RFC 6962's Merkle tree hash: empty, one leaf, and an uneven split of five", () => {
    assert.equal(auditTrailRoot([]), hex(sha256()));
    const leaves = Array.from({ length: 5 }, (_, index) => hex(sha256(Uint8Array.of(index))));
    assert.equal(auditTrailRoot(leaves.slice(0, 1)), leaves[0]);
    const node = (left: string, right: string) => hex(sha256(Uint8Array.of(1), unhex(left), unhex(right)));
    // Five leaves split at four: ((0 1) (2 3)) 4.
    const expected = node(node(node(leaves[0], leaves[1]), node(leaves[2], leaves[3])), leaves[4]);
    assert.equal(auditTrailRoot(leaves), expected);
    assert.notEqual(auditTrailRoot([leaves[1], leaves[0], ...leaves.slice(2)]), expected);
  });
});

describe("verification names what it found", () => {
  const leaf = (entryId: string, content = entryId) => ({
    entryId,
    digest: hex(sha256(new TextEncoder().encode(content))),
  });
  const sealed = [leaf("a"), leaf("b"), leaf("c")];
  const document = sealDocument("B1", sealed, "auditor", "2026-11-27T12:00:00.000Z");
  const { format: _, entries: __, ...tableSeal } = document;

  it("passes when the entries, the table seal and the copy agree", () => {
    assert.deepEqual(compareWithSeals("B1", sealed, tableSeal, { state: "found", document }), {
      ok: true,
      seal: tableSeal,
    });
  });

  it("names a changed, an inserted and a removed entry at once", () => {
    const now = [leaf("a", "A!"), leaf("c"), leaf("d")];
    const result = compareWithSeals("B1", now, tableSeal, { state: "found", document });
    assert.ok(!result.ok);
    const text = result.problems.join("\n");
    assert.match(text, /Entry "a" of batch "B1" changed since the seal/);
    assert.match(text, /Entry "d" of batch "B1" was inserted after the seal/);
    assert.match(text, /Entry "b" of batch "B1" was removed since the seal/);
    assert.doesNotMatch(text, /Entry "c"/);
  });

  it("names entries moved in the listing order", () => {
    const result = compareWithSeals("B1", [sealed[1], sealed[0], sealed[2]], tableSeal, { state: "found", document });
    assert.ok(!result.ok && /in another order than when sealed/.test(result.problems.join("\n")));
  });

  it("names a seal missing from the table, from the file store, or a copy that is not configured", () => {
    const noTable = compareWithSeals("B1", sealed, undefined, { state: "found", document });
    assert.ok(!noTable.ok && /missing from the audit-log table/.test(noTable.problems.join("\n")));
    const noCopy = compareWithSeals("B1", sealed, tableSeal, { state: "missing" });
    assert.ok(
      !noCopy.ok && /audit-seals\/B1.json" of batch "B1" is missing from the file store/.test(noCopy.problems[0]),
    );
    const none = compareWithSeals("B1", sealed, tableSeal, { state: "not-configured" });
    assert.ok(!none.ok && /No file store for seal copies is configured/.test(none.problems[0]));
    const unreadable = compareWithSeals("B1", sealed, tableSeal, {
      state: "unreadable",
      reason: "it is not JSON text",
    });
    assert.ok(!unreadable.ok && /is unreadable: it is not JSON text/.test(unreadable.problems[0]));
  });

  it("names every field on which the table seal and the copy disagree", () => {
    const forged = { ...tableSeal, actor: "intruder", sealedAt: "2026-11-28T00:00:00.000Z" };
    const result = compareWithSeals("B1", sealed, forged, { state: "found", document });
    assert.ok(!result.ok);
    assert.equal(
      result.problems.filter((problem) => /disagrees between the table and the file store/.test(problem)).length,
      2,
    );
  });

  it("names a copy whose entry list does not give its root", () => {
    const inconsistent = { ...document, entries: [sealed[0], sealed[1]] };
    const result = compareWithSeals("B1", sealed, tableSeal, { state: "found", document: inconsistent });
    assert.ok(!result.ok && /is inconsistent/.test(result.problems.join("\n")));
  });
});

describe("MemoryRulesStore sealing", () => {
  it("without a file store for seals, seals in the table and verify says the copy is not configured", async () => {
    const store = new MemoryRulesStore();
    await appendEntries(store, "B1", 2);
    const seal = await store.sealAuditTrail("B1", { actor: "auditor" });
    assert.equal(seal.entryCount, 2);
    await assert.rejects(store.appendAuditEntry(auditEntry("B1", "late")), ConflictError);
    const verification = await store.verifyAuditTrail("B1");
    assert.ok(!verification.ok);
    assert.deepEqual(verification.problems.length, 1);
    assert.match(verification.problems[0], /No file store for seal copies is configured/);
  });

  it("writes the seal copy retained for sealRetentionDays, which nobody can overwrite or move", async () => {
    const files = new MemoryFileStore();
    const store = new MemoryRulesStore({}, { sealFiles: files, sealRetentionDays: 10 });
    await appendEntries(store, "B1", 1);
    await store.sealAuditTrail("B1", { actor: "auditor" });
    const path = auditSealPath("B1");
    await assert.rejects(files.write(path, "{}"), (error: unknown) => {
      assert.ok(error instanceof ConflictError);
      assert.match(error.message, /it is under an Object Lock retention \("COMPLIANCE" mode\) until/);
      return true;
    });
    await assert.rejects(files.move(path, "elsewhere.json"), ConflictError);
    assert.equal((await store.verifyAuditTrail("B1")).ok, true);
  });

  it("a retained file can be replaced once its retention has passed", async () => {
    const files = new MemoryFileStore();
    await files.write("kept.json", "1", { retainUntil: new Date(Date.now() - 1) });
    await files.write("kept.json", "2");
    assert.equal(new TextDecoder().decode(await files.read("kept.json")), "2");
  });

  it("a retained write is create-only, and refuses a retainUntil that is no Date", async () => {
    const files = new MemoryFileStore();
    await files.write("taken.json", "plain");
    await assert.rejects(files.write("taken.json", "x", { retainUntil: new Date(Date.now() + 60_000) }), ConflictError);
    await assert.rejects(files.write("new.json", "x", { retainUntil: "tomorrow" as never }), InvalidInputError);
    await assert.rejects(files.read("new.json"));
  });

  it("a seal that failed to write its copy leaves the trail closed, and the next seal finishes it", async () => {
    const files = new MemoryFileStore();
    let failing = true;
    const flaky = Object.assign(Object.create(files), {
      write: (path: string, data: string, options: object) =>
        failing ? Promise.reject(new Error("disk full")) : files.write(path, data, options),
      readRetained: (path: string) => files.readRetained(path),
    });
    const store = new MemoryRulesStore({}, { sealFiles: flaky });
    await appendEntries(store, "B1", 2);
    await assert.rejects(store.sealAuditTrail("B1", { actor: "auditor" }), /disk full/);
    await assert.rejects(store.appendAuditEntry(auditEntry("B1", "late")), ConflictError);
    const unfinished = await store.verifyAuditTrail("B1");
    assert.ok(!unfinished.ok && /started and not finished/.test(unfinished.problems.join("\n")));
    failing = false;
    const seal = await store.sealAuditTrail("B1", { actor: "auditor" });
    assert.deepEqual(await store.verifyAuditTrail("B1"), { ok: true, seal });
  });

  it("rejects malformed seal options with a ConfigError naming each", () => {
    assert.throws(
      () => new MemoryRulesStore({}, { sealRetentionDays: 0, sealFiles: {} as never }),
      (error: unknown) =>
        error instanceof ConfigError && /sealRetentionDays "0"/.test(error.message) && /sealFiles/.test(error.message),
    );
  });
});

describe("updateBatchState() with an idempotency key", () => {
  it("a retry of an update that landed is recognised and not applied again, even after another writer", async () => {
    const store = new MemoryRulesStore();
    const batchId = uniqueId("B");
    const increment = (key: string) =>
      updateBatchState(store, batchId, (current) => ({
        ...batchState(batchId),
        data: { count: Number(current?.data.count ?? 0) + 1 },
      }), { idempotencyKey: key });
    await increment("first");
    await increment("second");
    const retried = await increment("first");
    assert.equal(retried.data.count, 2);
    assert.deepEqual(retried.updateKeys, ["first", "second"]);
    assert.equal((await store.getBatchState(batchId))?.version, 2);
  });

  it("keeps the keys of earlier updates whatever the update returns, and without a key too", async () => {
    const store = new MemoryRulesStore();
    const batchId = uniqueId("B");
    await updateBatchState(store, batchId, () => batchState(batchId), { idempotencyKey: "k1" });
    await updateBatchState(store, batchId, () => ({ ...batchState(batchId), updateKeys: [] }));
    assert.deepEqual((await store.getBatchState(batchId))?.updateKeys, ["k1"]);
  });

  it("refuses a bad key before reading anything", async () => {
    const store = new MemoryRulesStore();
    await assert.rejects(
      updateBatchState(store, "B1", () => batchState("B1"), { idempotencyKey: "A#B" }),
      InvalidInputError,
    );
  });
});

describe("deno task audit", () => {
  function run(argv: string[], store: MemoryRulesStore, files?: MemoryFileStore) {
    const out: string[] = [];
    const err: string[] = [];
    return main(argv, {
      out: (line) => out.push(line),
      err: (line) => err.push(line),
      env: {},
      open: () => ({ rules: store, files, close: () => Promise.resolve() }),
    }).then((code) => ({ code, out: out.join("\n"), err: err.join("\n") }));
  }
  const target = ["--endpoint-url", "http://127.0.0.1:4566", "--table-suffix", "-dev", "--s3-bucket", "seals"];

  it("seals, then verifies with exit 0", async () => {
    const files = new MemoryFileStore();
    const store = new MemoryRulesStore({}, { sealFiles: files });
    await appendEntries(store, "B1", 3);
    const sealed = await run(["seal", "--batch", "B1", "--actor", "auditor", ...target], store, files);
    assert.equal(sealed.code, 0, sealed.err);
    assert.match(sealed.out, /sealed {2}B1: 3 entries, root [0-9a-f]{64}/);
    const verified = await run(["verify", "--batch", "B1", ...target], store, files);
    assert.equal(verified.code, 0, verified.err);
    assert.match(verified.out, /ok {6}B1: 3 entries/);
  });

  it("verify exits 1 and names each problem when a trail does not verify", async () => {
    const store = new MemoryRulesStore();
    await appendEntries(store, "B1", 1);
    const result = await run(["verify", "--batch", "B1", ...target], store);
    assert.equal(result.code, 1);
    assert.match(result.out, /FAILED {2}B1:\n {2}- Batch "B1" is not sealed/);
  });

  it("--all-sealed-since verifies every seal copy sealed since the date, exit 0 only when all verify", async () => {
    const files = new MemoryFileStore();
    const store = new MemoryRulesStore({}, { sealFiles: files });
    for (const batchId of ["B1", "B/2"]) {
      await appendEntries(store, batchId, 2);
      await store.sealAuditTrail(batchId, { actor: "auditor" });
    }
    const all = await run(["verify", "--all-sealed-since", "2000-01-01", ...target], store, files);
    assert.equal(all.code, 0, all.out);
    assert.match(all.out, /2 seal copies since 2000-01-01T00:00:00.000Z/);
    assert.match(all.out, /ok {6}B\/2:/);
    const none = await run(["verify", "--all-sealed-since", "9999-01-01", ...target], store, files);
    assert.match(none.out, /0 seal copies since/);
    // A copy that is no seal is listed and named.
    await files.write(auditSealPath("B3"), "not json");
    const broken = await run(["verify", "--all-sealed-since", "2000-01-01", ...target], store, files);
    assert.equal(broken.code, 1);
    assert.match(broken.out, /FAILED {2}B3:[\s\S]*is unreadable: it is not JSON text/);
  });

  it("usage errors exit 2 with the usage text", async () => {
    const store = new MemoryRulesStore();
    for (
      const argv of [
        [],
        ["unseal", ...target],
        ["seal", "--batch", "B1", ...target],
        ["verify", ...target],
        ["verify", "--batch", "B1", "--all-sealed-since", "2026-01-01", ...target],
        ["verify", "--all-sealed-since", "yesterday", ...target],
        ["verify", "--all-sealed-since", "2026-01-01", "--endpoint-url", "http://127.0.0.1:4566"],
        ["verify", "--batch", "B1"],
        ["verify", "--batch", "A#B", ...target],
        ["seal", "--batch", "B1", "--actor", "a", "--retention-days", "0", ...target],
      ]
    ) {
      const result = await run(argv, store);
      assert.equal(result.code, 2, `${argv.join(" ")}: ${result.out}`);
      assert.match(result.err, /Usage: deno task audit/);
    }
  });
});
