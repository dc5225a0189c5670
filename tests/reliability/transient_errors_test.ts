// Item 5: throttling and transient errors, injected through SDK middleware on
// real clients pointed at moto. The SDK's standard retry strategy sees each
// injected error and retries it with backoff; writeItems() and the store
// retry what DynamoDB leaves unprocessed. When failures never stop, both
// give up within a bounded number of attempts with a RulesStoreError that
// keeps the SDK error as cause. A retried conditional write has exactly one
// outcome, with a second writer of identical payloads (issue 11, item 4).
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ScanCommand } from "@aws-sdk/client-dynamodb";
import {
  type AuditEntry,
  type BatchState,
  type CalculationRuleRecord,
  ConflictError,
  RulesStoreError,
  tableName,
  updateBatchState,
} from "../../mod.ts";
import { DynamoDBRulesStore, type RulesStoreEvent } from "../../src/persistence/dynamodb_backend.ts";
import { calculationRuleHistoryCodec, groupCalculationRules } from "../../src/persistence/items.ts";
import { writeItems } from "../../src/persistence/provision.ts";
import { auditEntry, batchState, uniqueId } from "../contract/fixtures.ts";
import { countingClient, createTables, deleteTables, storeWithFaults, uniqueSuffix } from "../support/dynamodb.ts";
import {
  type Fault,
  injectFaults,
  leaveUnprocessed,
  networkError,
  seededRandom,
  serverError,
  throttled,
} from "../support/faults.ts";
import { AWS_ENDPOINT_URL, integrationSuite, probe } from "../support/gate.ts";
import { mapConcurrently } from "../../src/core/concurrency.ts";
import { outcome, overrideData, readKey } from "../support/rules_data.ts";

/** Attempts per request under the SDK's standard retry strategy: the store's default. */
const SDK_ATTEMPTS = 3;

function rule(index: number): CalculationRuleRecord {
  return {
    clientId: index % 2 === 0 ? "GLOBAL" : `CLIENT_${index % 7}`,
    ruleId: `BULK_${String(index).padStart(4, "0")}`,
    ruleType: "flat",
    description: `Bulk rule ${index}`,
    parameters: { amount: `${index}.25` },
    effectiveFrom: "2026-01-01",
    effectiveTo: null,
  };
}

/** Every PK / SK of a table, sorted. */
async function keysOf(client: ReturnType<typeof countingClient>["client"], table: string): Promise<string[]> {
  const keys: string[] = [];
  let start: Record<string, never> | undefined;
  do {
    const page = await client.send(
      new ScanCommand({
        TableName: table,
        ExclusiveStartKey: start,
        ConsistentRead: true,
        ProjectionExpression: "PK, SK",
      }),
    );
    for (const item of page.Items ?? []) keys.push(`${item.PK.S}/${item.SK.S}`);
    start = page.LastEvaluatedKey as typeof start;
  } while (start !== undefined);
  return keys.sort();
}

/** A RulesStoreError (not a subclass) whose cause is the injected SDK error after all its attempts. */
function givenUp(errorName: string, attempts: number): (error: unknown) => boolean {
  return (error: unknown) => {
    assert.ok(error instanceof RulesStoreError, `expected a RulesStoreError, got ${error}`);
    assert.equal(error.code, "RULES_STORE_ERROR");
    assert.match(error.message, new RegExp(errorName));
    const cause = error.cause as { name?: string; $metadata?: { attempts?: number } } | undefined;
    assert.equal(cause?.name, errorName);
    assert.equal(cause?.$metadata?.attempts, attempts);
    return true;
  };
}

integrationSuite("Reliability: throttling and transient errors", await probe(AWS_ENDPOINT_URL), () => {
  const setup = countingClient();
  const suffix = uniqueSuffix("rel-faults");
  const table = tableName("calculation-rules", suffix);
  let fixture: Awaited<ReturnType<typeof overrideData>>;

  before(async () => {
    fixture = await overrideData(4, 8);
    await createTables(setup.client, suffix, fixture.data);
  });

  after(async () => {
    await deleteTables(setup.client, suffix);
    setup.client.destroy();
  });

  describe("the seed's batch writer (writeItems)", () => {
    it("500 items with 40% of first attempts throttled and half of each batch left unprocessed: every item lands", async () => {
      const { client } = countingClient({ maxAttempts: SDK_ATTEMPTS });
      const random = seededRandom(5);
      // At most two throttled attempts per request (fewer second ones), so the SDK's third always goes through
      // and its retry quota is never drained.
      const faults = injectFaults(
        client,
        (operation, attempt) =>
          operation === "BatchWriteItem" && attempt < SDK_ATTEMPTS && random() < 0.4 / attempt
            ? { error: throttled() }
            : undefined,
      );
      const unprocessed = leaveUnprocessed(client, (_, count) => (random() < 0.5 ? Math.ceil(count / 2) : count));
      try {
        const items = Array.from(
          { length: 500 },
          (_, index) => calculationRuleHistoryCodec.toItem(groupCalculationRules([rule(index)])[0]),
        );
        const before = new Set(await keysOf(setup.client, table));
        const result = await writeItems(client, table, items, { concurrency: 4 });
        assert.equal(result.written, 500);
        assert.ok((faults.injected.get("BatchWriteItem") ?? 0) > 0, "some attempts were throttled");
        assert.ok(unprocessed.heldBack() > 0, "some items were left unprocessed");
        assert.ok(result.requests > 20, `${result.requests} requests for 20 chunks: unprocessed items were sent again`);
        const added = (await keysOf(setup.client, table)).filter((key) => !before.has(key));
        assert.deepEqual(added, items.map((item) => `${item.PK}/${item.SK}`).sort());
      } finally {
        client.destroy();
      }
    });

    it("throttling that never stops: gives up after the SDK's attempts with a RulesStoreError keeping the cause", async () => {
      const { client } = countingClient({ maxAttempts: SDK_ATTEMPTS });
      const faults = injectFaults(client, () => ({ error: throttled() }));
      try {
        const items = Array.from(
          { length: 100 },
          (_, index) => calculationRuleHistoryCodec.toItem(groupCalculationRules([rule(1000 + index)])[0]),
        );
        await assert.rejects(writeItems(client, table, items, { concurrency: 2 }), (error: unknown) => {
          givenUp("ProvisionedThroughputExceededException", SDK_ATTEMPTS)(error);
          assert.match((error as Error).message, /^Failed to write 100 of 100 items to table /);
          return true;
        });
        // Bounded: at most the chunks in flight times the SDK's attempts, never the 4 chunks' worth.
        const attempts = faults.attempts.get("BatchWriteItem") ?? 0;
        assert.ok(attempts >= SDK_ATTEMPTS && attempts <= 2 * SDK_ATTEMPTS, `${attempts} attempts`);
      } finally {
        client.destroy();
      }
    });

    it("items that stay unprocessed: gives up after maxAttempts with a RulesStoreError saying how many", async () => {
      const { client, requests } = countingClient({ maxAttempts: SDK_ATTEMPTS });
      leaveUnprocessed(client, () => 0);
      try {
        const items = Array.from(
          { length: 30 },
          (_, index) => calculationRuleHistoryCodec.toItem(groupCalculationRules([rule(2000 + index)])[0]),
        );
        await assert.rejects(
          writeItems(client, table, items, { maxAttempts: 4, baseDelayMs: 1 }),
          (error: unknown) => {
            assert.ok(error instanceof RulesStoreError);
            assert.match(
              error.message,
              /^Failed to write 30 of 30 items to table .*: still unprocessed after 4 attempts$/,
            );
            return true;
          },
        );
        assert.equal(requests.get("BatchWriteItem") ?? 0, 0, "nothing reached DynamoDB");
      } finally {
        client.destroy();
      }
    });
  });

  describe("the rules store", () => {
    it("300 rule reads with a third of first attempts throttled or 500ed and keys left unprocessed: every read is right", async () => {
      const { client } = countingClient({ maxAttempts: SDK_ATTEMPTS });
      const random = seededRandom(11);
      const faults = injectFaults(client, (_, attempt) => {
        if (attempt >= SDK_ATTEMPTS) return undefined;
        const draw = random() * attempt;
        return draw < 0.2 ? { error: throttled() } : draw < 0.33 ? { error: serverError() } : undefined;
      });
      const unprocessed = leaveUnprocessed(client, (_, count) => (random() < 0.3 ? count - 1 : count));
      const store = new DynamoDBRulesStore({ client, tableSuffix: suffix });
      try {
        const reads = Array.from({ length: 300 }, (_, index) => fixture.reads[index % fixture.reads.length]);
        const results = await mapConcurrently(
          reads,
          25,
          (read) => outcome(store.getCalculationRule(read.clientId, read.ruleId)),
        );
        results.forEach((result, index) => {
          assert.ok(result.ok, `read ${index} failed: ${!result.ok && result.error}`);
          assert.deepEqual(result.value, fixture.expected.get(readKey(reads[index])));
        });
        assert.ok((faults.injected.get("BatchGetItem") ?? 0) > 0);
        assert.ok(unprocessed.heldBack() > 0);
      } finally {
        await store.close();
        client.destroy();
      }
    });

    it("conditional writes with a third of first attempts throttled or 500ed before they land: all land, no ConflictError", async () => {
      const { client } = countingClient({ maxAttempts: SDK_ATTEMPTS });
      const random = seededRandom(17);
      const faults = injectFaults(client, (operation, attempt) => {
        if (operation !== "PutItem" || attempt >= SDK_ATTEMPTS) return undefined;
        const draw = random() * attempt;
        return draw < 0.2 ? { error: throttled() } : draw < 0.33 ? { error: serverError() } : undefined;
      });
      const store = new DynamoDBRulesStore({ client, tableSuffix: suffix });
      try {
        const batchId = uniqueId("batch");
        const entries = Array.from({ length: 60 }, (_, index) => auditEntry(batchId, `e${index}`));
        const appended = await mapConcurrently(entries, 20, (entry) => outcome(store.appendAuditEntry(entry)));
        assert.deepEqual(appended.filter((result) => !result.ok), []);
        assert.equal((await store.listAuditEntries(batchId)).length, 60);

        const states = Array.from({ length: 30 }, () => uniqueId("batch"));
        const saved = await mapConcurrently(
          states,
          10,
          (id) => outcome(store.saveBatchState(id, batchState(id), { expectedVersion: 0 })),
        );
        assert.deepEqual(saved.filter((result) => !result.ok), []);
        for (const id of states) assert.deepEqual(await store.getBatchState(id), batchState(id));
        assert.ok((faults.injected.get("PutItem") ?? 0) > 0);
      } finally {
        await store.close();
        client.destroy();
      }
    });

    it("a conditional write that landed but whose answer was lost is not a ConflictError when the SDK retries it", async () => {
      const { client } = countingClient({ maxAttempts: SDK_ATTEMPTS });
      let mode: "lose the answer" | "throttle" | "off" = "lose the answer";
      // The first attempt of a PutItem either lands and then loses its answer (HTTP 500), or is throttled.
      const faults = injectFaults(client, (operation, attempt) => {
        if (operation !== "PutItem" || attempt !== 1 || mode === "off") return undefined;
        return mode === "throttle" ? { error: throttled() } : { error: serverError(), after: true };
      });
      const store = new DynamoDBRulesStore({ client, tableSuffix: suffix });
      try {
        const batchId = uniqueId("batch");
        const entry: AuditEntry = auditEntry(batchId, "lost-answer");
        await store.appendAuditEntry(entry);
        assert.deepEqual(await store.listAuditEntries(batchId), [entry]);
        assert.equal(faults.attempts.get("PutItem"), 2, "the SDK retried once");

        // The same entry appended again by a new call is still a conflict.
        mode = "off";
        await assert.rejects(store.appendAuditEntry(entry), ConflictError);

        // 20 sequential updates, every one's first answer lost: each lands exactly once.
        mode = "lose the answer";
        const stateId = uniqueId("batch");
        for (let index = 0; index < 20; index++) {
          await updateBatchState(store, stateId, (current) => ({
            ...batchState(stateId),
            data: { counter: ((current?.data.counter as number | undefined) ?? 0) + 1 },
          }));
        }
        const state = await store.getBatchState(stateId);
        assert.equal(state?.version, 20);
        assert.deepEqual(state?.data, { counter: 20 });

        // A retry that loses the condition to another writer's item is still a conflict.
        mode = "throttle";
        faults.reset();
        await assert.rejects(
          store.saveBatchState(stateId, { ...state!, version: 21, status: "failed" }, { expectedVersion: 19 }),
          ConflictError,
        );
        assert.equal(faults.attempts.get("PutItem"), 2, "the SDK retried once");
        assert.deepEqual(await store.getBatchState(stateId), state);
      } finally {
        await store.close();
        client.destroy();
      }
    });

    describe("two writers, identical payloads, the second one's first attempt failed (item 4)", () => {
      /** The same update from either writer: byte-identical states when both read the same one. */
      const increment = (batchId: string) => (current: BatchState | null) => ({
        ...batchState(batchId),
        data: { counter: ((current?.data.counter as number | undefined) ?? 0) + 1 },
      });

      /** Writer A on a clean client; writer B on one whose first PutItem attempt gets `fault` (once). */
      function writers(fault: (a: DynamoDBRulesStore) => Fault) {
        const clean = countingClient({ maxAttempts: SDK_ATTEMPTS });
        const a = new DynamoDBRulesStore({ client: clean.client, tableSuffix: suffix });
        let fired = false;
        const b = storeWithFaults(suffix, (operation, attempt) => {
          if (operation !== "PutItem" || attempt !== 1 || fired) return undefined;
          fired = true;
          return fault(a);
        }, { maxAttempts: SDK_ATTEMPTS });
        return {
          a,
          b: b.store,
          faults: b.faults,
          close: async () => {
            await Promise.all([a.close(), b.close()]);
            clean.client.destroy();
          },
        };
      }

      it("B's version 2, its first PutItem failed before it was sent, loses to A's identical one: a ConflictError", async () => {
        const batchId = uniqueId("batch");
        const version2 = batchState(batchId, { version: 2 });
        const { a, b, faults, close } = writers((a) => ({
          error: networkError(),
          during: () => a.saveBatchState(batchId, version2, { expectedVersion: 1 }),
        }));
        try {
          await a.saveBatchState(batchId, batchState(batchId, { version: 1 }), { expectedVersion: 0 });
          await assert.rejects(b.saveBatchState(batchId, { ...version2 }, { expectedVersion: 1 }), (error: unknown) => {
            assert.ok(error instanceof ConflictError, String(error));
            assert.match(error.message, /expected version 1, stored version is 2$/);
            return true;
          });
          assert.equal(faults.attempts.get("PutItem"), 2, "the SDK retried once");
          assert.deepEqual(await b.getBatchState(batchId), version2);
        } finally {
          await close();
        }
      });

      it("two updateBatchState() increments, B's first PutItem failed before it was sent: both land, counter 2", async () => {
        const batchId = uniqueId("batch");
        const { a, b, faults, close } = writers((a) => ({
          error: networkError(),
          during: () => updateBatchState(a, batchId, increment(batchId)),
        }));
        try {
          const written = await updateBatchState(b, batchId, increment(batchId));
          assert.equal(faults.injected.get("PutItem"), 1);
          assert.equal(written.version, 2);
          const stored = await a.getBatchState(batchId);
          assert.equal(stored?.version, 2);
          assert.deepEqual(stored?.data, { counter: 2 });
        } finally {
          await close();
        }
      });

      it("B's first attempt landed, its answer lost, then A wrote the next version: B's outcome is unknown, counter 2", async () => {
        const batchId = uniqueId("batch");
        const { a, b, close } = writers((a) => ({
          error: serverError(),
          after: true,
          during: () => updateBatchState(a, batchId, increment(batchId)),
        }));
        try {
          await assert.rejects(updateBatchState(b, batchId, increment(batchId)), (error: unknown) => {
            assert.ok(error instanceof RulesStoreError && !(error instanceof ConflictError), String(error));
            assert.match(error.message, /: the outcome is unknown: an earlier attempt may have landed \(it failed /);
            assert.match(error.message, /\(expected version 0, stored version is 2\); read before writing again$/);
            return true;
          });
          // B's increment landed once (version 1) and A's on top of it: neither applied twice.
          const stored = await a.getBatchState(batchId);
          assert.equal(stored?.version, 2);
          assert.deepEqual(stored?.data, { counter: 2 });
        } finally {
          await close();
        }
      });

      it("B's first attempt throttled (never applied), then A wrote twice: B's conflict is retried, counter 3", async () => {
        const batchId = uniqueId("batch");
        const { a, b, close } = writers((a) => ({
          error: throttled(),
          during: async () => {
            await updateBatchState(a, batchId, increment(batchId));
            await updateBatchState(a, batchId, increment(batchId));
          },
        }));
        try {
          const written = await updateBatchState(b, batchId, increment(batchId));
          assert.equal(written.version, 3);
          assert.deepEqual((await a.getBatchState(batchId))?.data, { counter: 3 });
        } finally {
          await close();
        }
      });
    });

    it("failures that never stop: reads and conditional writes give up after the SDK's attempts, cause kept", async () => {
      for (
        const [name, error] of [["ProvisionedThroughputExceededException", throttled], [
          "InternalServerError",
          serverError,
        ]] as const
      ) {
        const { client } = countingClient({ maxAttempts: SDK_ATTEMPTS });
        const faults = injectFaults(client, () => ({ error: error() }));
        const store = new DynamoDBRulesStore({ client, tableSuffix: suffix });
        try {
          await assert.rejects(store.getCalculationRule("CLIENT_0", "RULE_0"), givenUp(name, SDK_ATTEMPTS));
          await assert.rejects(store.getIrsLimits(2026), givenUp(name, SDK_ATTEMPTS));
          const batchId = uniqueId("batch");
          await assert.rejects(
            store.saveBatchState(batchId, batchState(batchId), { expectedVersion: 0 }),
            givenUp(name, SDK_ATTEMPTS),
          );
          await assert.rejects(store.appendAuditEntry(auditEntry(batchId, "e1")), givenUp(name, SDK_ATTEMPTS));
          // An append's first request is its claim on the seal item (an UpdateItem); it gives up there.
          assert.deepEqual(Object.fromEntries(faults.attempts), {
            BatchGetItem: SDK_ATTEMPTS,
            GetItem: SDK_ATTEMPTS,
            PutItem: SDK_ATTEMPTS,
            UpdateItem: SDK_ATTEMPTS,
          });
        } finally {
          await store.close();
          client.destroy();
        }
      }
    });

    it("keys that stay unprocessed: a read gives up after 8 BatchGetItem calls with a RulesStoreError", async () => {
      const { client } = countingClient({ maxAttempts: SDK_ATTEMPTS });
      leaveUnprocessed(client, (_, count) => count - 1);
      const events: RulesStoreEvent[] = [];
      const store = new DynamoDBRulesStore({ client, tableSuffix: suffix, onEvent: (event) => events.push(event) });
      try {
        await assert.rejects(store.getCalculationRule("CLIENT_0", "RULE_1"), (error: unknown) => {
          assert.ok(error instanceof RulesStoreError);
          assert.match(error.message, /: 1 of 2 keys still unprocessed after 8 attempts$/);
          return true;
        });
        assert.equal(events.filter((event) => event.type === "dynamodb.request").length, 8);
        assert.deepEqual(
          events.flatMap((event) => (event.type === "dynamodb.unprocessed" ? [event.attempt] : [])),
          [1, 2, 3, 4, 5, 6, 7],
        );
      } finally {
        await store.close();
        client.destroy();
      }
    });
  });
});
