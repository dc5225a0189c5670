// Sealed audit trails on DynamoDB + S3 (moto): the sealing contract, tampering behind the library's back with
// the raw AWS SDK, Object Lock on the seal copy, appends racing a seal, and exactly-once batch updates.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { DeleteItemCommand, GetItemCommand, PutItemCommand, UpdateItemCommand } from "@aws-sdk/client-dynamodb";
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  HeadObjectCommand,
  ListObjectVersionsCommand,
  PutObjectCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import {
  auditSealPath,
  type AuditVerification,
  ConflictError,
  DynamoDBRulesStore,
  S3FileStore,
  tableName,
  updateBatchState,
} from "../../mod.ts";
import { appendEntries, auditSealContract } from "../contract/audit_seal_contract.ts";
import { auditEntry, batchState, uniqueId } from "../contract/fixtures.ts";
import { openStore, storeWithFaults } from "../support/dynamodb.ts";
import { serverError } from "../support/faults.ts";
import { AWS_ENDPOINT_URL, integrationSuite, probe, useLocalAwsCredentials } from "../support/gate.ts";
import { adminClient, openFileStore, REGION } from "../support/s3.ts";

useLocalAwsCredentials();
const unreachable = await probe(AWS_ENDPOINT_URL);

/** A store on fresh tables whose seal copies go to a fresh bucket. */
async function openSealingStore() {
  const bucket = await openFileStore();
  const tables = await openStore({}, { sealFiles: bucket.files });
  return {
    ...tables,
    files: bucket.files,
    bucket,
    table: tableName("audit-log", tables.suffix),
    cleanup: async () => {
      await tables.cleanup();
      await bucket.cleanup();
    },
  };
}

function problemsOf(verification: AuditVerification): string {
  assert.equal(verification.ok, false, "expected the verification to fail");
  return verification.ok ? "" : verification.problems.join("\n");
}

integrationSuite("Sealed audit trails on moto", unreachable, () => {
  auditSealContract("DynamoDBRulesStore + S3FileStore (moto)", openSealingStore);

  describe("tampering behind the library's back (raw AWS SDK)", () => {
    let subject: Awaited<ReturnType<typeof openSealingStore>>;
    before(async () => {
      subject = await openSealingStore();
    });
    after(() => subject?.cleanup());

    /** A sealed batch of five entries, `e0000` to `e0004`. */
    async function sealedBatch(): Promise<string> {
      const batchId = uniqueId("T");
      await appendEntries(subject.store, batchId, 5);
      await subject.store.sealAuditTrail(batchId, { actor: "auditor" });
      return batchId;
    }

    function entryKey(batchId: string, entryId: string) {
      return { PK: { S: `BATCH#${batchId}` }, SK: { S: `ENTRY#${entryId}` } };
    }

    async function setDetails(batchId: string, entryId: string, change: (details: string) => string) {
      const key = entryKey(batchId, entryId);
      const stored = await subject.client.send(new GetItemCommand({ TableName: subject.table, Key: key }));
      const details = change(stored.Item!.details.S!);
      await subject.client.send(
        new UpdateItemCommand({
          TableName: subject.table,
          Key: key,
          UpdateExpression: "SET details = :details",
          ExpressionAttributeValues: { ":details": { S: details } },
        }),
      );
    }

    it("names the entry when one byte of its details changed", async () => {
      const batchId = await sealedBatch();
      await setDetails(batchId, "e0002", (details) => details.replace("entry 2", "entry 3"));
      const problems = problemsOf(await subject.store.verifyAuditTrail(batchId));
      assert.match(problems, /Entry "e0002" of batch .* changed since the seal/);
      assert.doesNotMatch(problems, /"e0001"|"e0003"/);
    });

    it("names the entry when a decimal's canonical text changed but not its value", async () => {
      const batchId = await sealedBatch();
      await setDetails(batchId, "e0001", (details) => details.replace('"1.50"', '"1.5"'));
      assert.match(
        problemsOf(await subject.store.verifyAuditTrail(batchId)),
        /Entry "e0001" .* changed since the seal/,
      );
    });

    it("names the entry when a JSON number's text changed but parses the same", async () => {
      const batchId = await sealedBatch();
      await setDetails(batchId, "e0004", (details) => details.replace('"step":4', '"step":4.0'));
      assert.deepEqual((await subject.store.listAuditEntries(batchId))[4].details.step, 4);
      assert.match(
        problemsOf(await subject.store.verifyAuditTrail(batchId)),
        /Entry "e0004" .* changed since the seal/,
      );
    });

    it("names an entry inserted after the seal", async () => {
      const batchId = await sealedBatch();
      await subject.client.send(
        new PutItemCommand({
          TableName: subject.table,
          Item: {
            ...entryKey(batchId, "forged"),
            entryId: { S: "forged" },
            batchId: { S: batchId },
            timestamp: { S: "2026-11-27T10:00:01.500Z" },
            agent: { S: "compliance" },
            action: { S: "rule_resolved" },
            actor: { S: "svc-compliance" },
            details: { S: "{}" },
          },
        }),
      );
      assert.match(
        problemsOf(await subject.store.verifyAuditTrail(batchId)),
        /Entry "forged" .* inserted after the seal/,
      );
    });

    it("names an entry removed since the seal", async () => {
      const batchId = await sealedBatch();
      await subject.client.send(new DeleteItemCommand({ TableName: subject.table, Key: entryKey(batchId, "e0000") }));
      assert.match(
        problemsOf(await subject.store.verifyAuditTrail(batchId)),
        /Entry "e0000" .* removed since the seal/,
      );
    });

    it("catches a seal item rewritten to match tampered entries: the copy outside DynamoDB disagrees", async () => {
      const batchId = await sealedBatch();
      await setDetails(batchId, "e0003", (details) => details.replace("entry 3", "entry X"));
      // The attacker recomputes a root over the tampered entries and writes it into the seal item.
      const other = uniqueId("T");
      for (const entry of await subject.store.listAuditEntries(batchId)) {
        await subject.store.appendAuditEntry({ ...entry, batchId: other });
      }
      const forged = await (new DynamoDBRulesStore({ client: subject.client, tableSuffix: subject.suffix }))
        .sealAuditTrail(other, { actor: "auditor" });
      const sealKey = { PK: { S: `BATCH#${batchId}` }, SK: { S: "SEAL" } };
      await subject.client.send(
        new UpdateItemCommand({
          TableName: subject.table,
          Key: sealKey,
          UpdateExpression: "SET #root = :root",
          ExpressionAttributeNames: { "#root": "root" },
          ExpressionAttributeValues: { ":root": { S: forged.root } },
        }),
      );
      const problems = problemsOf(await subject.store.verifyAuditTrail(batchId));
      assert.match(problems, /disagrees between the table and the file store: root/);
      assert.match(problems, /Entry "e0003" .* changed since the seal/);
    });

    it("names a seal item deleted from the table", async () => {
      const batchId = await sealedBatch();
      const sealKey = { PK: { S: `BATCH#${batchId}` }, SK: { S: "SEAL" } };
      await subject.client.send(new DeleteItemCommand({ TableName: subject.table, Key: sealKey }));
      assert.match(problemsOf(await subject.store.verifyAuditTrail(batchId)), /missing from the audit-log table/);
    });

    it("names a seal item that no longer decodes", async () => {
      const batchId = await sealedBatch();
      const sealKey = { PK: { S: `BATCH#${batchId}` }, SK: { S: "SEAL" } };
      await subject.client.send(
        new UpdateItemCommand({
          TableName: subject.table,
          Key: sealKey,
          UpdateExpression: "SET entryCount = :count",
          ExpressionAttributeValues: { ":count": { S: "five" } },
        }),
      );
      assert.match(problemsOf(await subject.store.verifyAuditTrail(batchId)), /in the audit-log table is corrupt/);
    });

    it("names a seal copy missing from the file store", async () => {
      const batchId = await sealedBatch();
      // The suite's bucket has no Object Lock: an attacker with S3 access can delete the copy there.
      await subject.bucket.admin.send(
        new DeleteObjectCommand({ Bucket: subject.bucket.bucket, Key: auditSealPath(batchId) }),
      );
      assert.match(problemsOf(await subject.store.verifyAuditTrail(batchId)), /is missing from the file store/);
    });

    it("verifies without a file store for seals only to say the copy is not configured", async () => {
      const batchId = await sealedBatch();
      const tableOnly = new DynamoDBRulesStore({ client: subject.client, tableSuffix: subject.suffix });
      assert.match(problemsOf(await tableOnly.verifyAuditTrail(batchId)), /No file store for seal copies/);
    });
  });

  describe("Object Lock on the seal copy", () => {
    let admin: S3Client;
    let bucket: string;
    let files: S3FileStore;
    let tables: Awaited<ReturnType<typeof openStore>>;
    let store: DynamoDBRulesStore;
    before(async () => {
      admin = adminClient();
      bucket = uniqueId("bluestar-lock").toLowerCase().slice(0, 63);
      await admin.send(new CreateBucketCommand({ Bucket: bucket, ObjectLockEnabledForBucket: true }));
      files = new S3FileStore({ bucket, region: REGION, endpointUrl: AWS_ENDPOINT_URL });
      tables = await openStore({});
      store = new DynamoDBRulesStore({ client: tables.client, tableSuffix: tables.suffix, sealFiles: files });
    });
    after(async () => {
      // Compliance-mode versions cannot be deleted before their date: the bucket stays in moto until it restarts.
      files?.close();
      await tables?.cleanup();
      admin?.destroy();
    });

    async function versionsOf(key: string) {
      const listed = await admin.send(new ListObjectVersionsCommand({ Bucket: bucket, Prefix: key }));
      return (listed.Versions ?? []).filter((version) => version.Key === key);
    }

    it("writes the seal copy with compliance retention of sealRetentionDays", async () => {
      const batchId = uniqueId("L");
      await appendEntries(store, batchId, 2);
      const seal = await store.sealAuditTrail(batchId, { actor: "auditor" });
      const [version] = await versionsOf(auditSealPath(batchId));
      const { ObjectLockMode, ObjectLockRetainUntilDate } = await admin.send(
        new HeadObjectCommand({ Bucket: bucket, Key: auditSealPath(batchId), VersionId: version.VersionId }),
      );
      assert.equal(ObjectLockMode, "COMPLIANCE");
      const days = (ObjectLockRetainUntilDate!.getTime() - Date.parse(seal.sealedAt)) / 86_400_000;
      assert.ok(Math.abs(days - 1552) < 1, `retained ${days} days`);
    });

    it("refuses to delete the locked version of the seal copy, and a second seal copy", async () => {
      const batchId = uniqueId("L");
      await appendEntries(store, batchId, 2);
      await store.sealAuditTrail(batchId, { actor: "auditor" });
      const path = auditSealPath(batchId);
      const [version] = await versionsOf(path);
      await assert.rejects(
        admin.send(new DeleteObjectCommand({ Bucket: bucket, Key: path, VersionId: version.VersionId })),
        (error: unknown) => (error as { name?: string }).name === "AccessDenied",
      );
      await assert.rejects(files.write(path, "{}", { retainUntil: new Date(Date.now() + 86_400_000) }), ConflictError);
      assert.equal((await versionsOf(path)).length, 1);
    });

    it("verifies against the locked version when the copy is overwritten or deleted on top", async () => {
      const batchId = uniqueId("L");
      await appendEntries(store, batchId, 3);
      const seal = await store.sealAuditTrail(batchId, { actor: "auditor" });
      const path = auditSealPath(batchId);
      // An attacker with DynamoDB and S3 write access rewrites an entry, then the seal item and the copy's latest version.
      await admin.send(new PutObjectCommand({ Bucket: bucket, Key: path, Body: "{}" }));
      await admin.send(new DeleteObjectCommand({ Bucket: bucket, Key: path }));
      assert.deepEqual(await store.verifyAuditTrail(batchId), { ok: true, seal });
      await tables.client.send(
        new UpdateItemCommand({
          TableName: tableName("audit-log", tables.suffix),
          Key: { PK: { S: `BATCH#${batchId}` }, SK: { S: "ENTRY#e0001" } },
          UpdateExpression: "SET actor = :actor",
          ExpressionAttributeValues: { ":actor": { S: "someone-else" } },
        }),
      );
      assert.match(problemsOf(await store.verifyAuditTrail(batchId)), /Entry "e0001" .* changed since the seal/);
    });
  });

  describe("appends and seals at once", () => {
    let subject: Awaited<ReturnType<typeof openSealingStore>>;
    before(async () => {
      subject = await openSealingStore();
    });
    after(() => subject?.cleanup());

    it("1,000 concurrent appends then a seal: the seal counts 1,000 and verifies", async () => {
      const batchId = uniqueId("C");
      await Promise.all(
        Array.from(
          { length: 1000 },
          (_, index) =>
            subject.store.appendAuditEntry(auditEntry(batchId, `e${String(index).padStart(4, "0")}`, {
              details: { index },
            })),
        ),
      );
      const seal = await subject.store.sealAuditTrail(batchId, { actor: "auditor" });
      assert.equal(seal.entryCount, 1000);
      assert.deepEqual(await subject.store.verifyAuditTrail(batchId), { ok: true, seal });
    });

    it("appends racing the seal land before it and are covered, or are refused: none lands uncovered", async () => {
      const batchId = uniqueId("R");
      await appendEntries(subject.store, batchId, 10);
      const racing = Array.from(
        { length: 200 },
        (_, index) =>
          subject.store.appendAuditEntry(auditEntry(batchId, `race${String(index).padStart(3, "0")}`)).then(
            () => "landed",
            (error: unknown) => {
              assert.ok(error instanceof ConflictError, String(error));
              return "refused";
            },
          ),
      );
      const seal = await subject.store.sealAuditTrail(batchId, { actor: "auditor" });
      const outcomes = await Promise.all(racing);
      const landed = outcomes.filter((outcome) => outcome === "landed").length;
      assert.equal(seal.entryCount, 10 + landed);
      assert.equal((await subject.store.listAuditEntries(batchId)).length, 10 + landed);
      assert.deepEqual(await subject.store.verifyAuditTrail(batchId), { ok: true, seal });
    });

    it("a seal interrupted after its first step is finished by the next seal, and appends wait for it", async () => {
      const batchId = uniqueId("I");
      await appendEntries(subject.store, batchId, 2);
      // The first step of a seal by a process that then died: the seal item in state "sealing".
      await subject.client.send(
        new PutItemCommand({
          TableName: subject.table,
          Item: { PK: { S: `BATCH#${batchId}` }, SK: { S: "SEAL" }, state: { S: "sealing" }, actor: { S: "crashed" } },
        }),
      );
      await assert.rejects(subject.store.appendAuditEntry(auditEntry(batchId, "late")), ConflictError);
      assert.match(problemsOf(await subject.store.verifyAuditTrail(batchId)), /started and not finished/);
      const seal = await subject.store.sealAuditTrail(batchId, { actor: "auditor" });
      assert.equal(seal.entryCount, 2);
      assert.deepEqual(await subject.store.verifyAuditTrail(batchId), { ok: true, seal });
    });
  });

  describe("exactly-once batch updates", () => {
    let suffix: string;
    let admin: Awaited<ReturnType<typeof openStore>>;
    before(async () => {
      admin = await openStore({});
      suffix = admin.suffix;
    });
    after(() => admin?.cleanup());

    /** One increment of the counter in `data.count`. */
    function increment(store: DynamoDBRulesStore, batchId: string, key: string | undefined) {
      return updateBatchState(store, batchId, (current) => {
        const { version: _, updateKeys: __, ...base } = current ?? batchState(batchId);
        return { ...base, data: { count: Number(current?.data.count ?? 0) + 1 } };
      }, { idempotencyKey: key, maxAttempts: 200, baseDelayMs: 2 });
    }

    /**
     * 50 increments, each once, from a queue: eight workers on a store that drops the answer of one
     * write in five after it landed, and before the SDK retries it, another writer takes the next
     * increment from the queue and commits it.
     */
    async function fiftyIncrements(batchId: string, keyed: boolean) {
      const queue = Array.from({ length: 50 }, (_, index) => keyed ? `inc-${index}` : undefined);
      let taken = 0;
      const next = () => (taken < queue.length ? { key: queue[taken++] } : undefined);
      const second = storeWithFaults(suffix, () => undefined);
      let puts = 0;
      const first = storeWithFaults(suffix, (operation, attempt) => {
        if (operation !== "PutItem" || attempt !== 1 || ++puts % 5 !== 0) return undefined;
        return {
          after: true,
          error: serverError(),
          during: async () => {
            const task = next();
            if (task !== undefined) await increment(second.store, batchId, task.key);
          },
        };
      });
      const outcomes: unknown[] = [];
      try {
        await Promise.all(Array.from({ length: 8 }, async () => {
          for (let task = next(); task !== undefined; task = next()) {
            await increment(first.store, batchId, task.key).catch((error) => outcomes.push(error));
          }
        }));
        return { state: await first.store.getBatchState(batchId), injected: first.faults.injected, outcomes };
      } finally {
        await first.close();
        await second.close();
      }
    }

    it("50 concurrent keyed increments, one answer in five lost after landing: the counter is exactly 50", async () => {
      const batchId = uniqueId("X");
      const { state, injected, outcomes } = await fiftyIncrements(batchId, true);
      assert.deepEqual(outcomes, []);
      assert.ok((injected.get("PutItem") ?? 0) >= 5, `only ${injected.get("PutItem")} answers dropped`);
      assert.deepEqual({ count: state?.data.count, version: state?.version }, { count: 50, version: 50 });
    });

    it("without keys the same faults leave the outcome unknown (what the keys fix)", async () => {
      const batchId = uniqueId("X");
      const { state, outcomes } = await fiftyIncrements(batchId, false);
      assert.ok(outcomes.length > 0, "expected some updates to end with an unknown outcome");
      assert.ok(Number(state?.data.count) <= 50);
    });
  });
});
