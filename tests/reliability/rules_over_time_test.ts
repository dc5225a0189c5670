// Rules over time under load and failure, on DynamoDB (moto): 20 concurrent
// writers adding and correcting versions of one rule while 200 readers read
// it as of random dates, through a shared cache and without one. No reader
// sees a version that was never written, no change is lost, and the audit
// trail holds exactly one record per successful change. Then answers of
// TransactWriteItems lost after the write landed: no change is applied twice
// or reported as a conflict.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  type CalculationRule,
  type CalculationRuleChange,
  type CalculationRuleInput,
  ConflictError,
  MemoryCacheBackend,
  RuleNotFoundError,
} from "../../mod.ts";
import { DynamoDBRulesStore } from "../../src/persistence/dynamodb_backend.ts";
import { uniqueId } from "../contract/fixtures.ts";
import { countingClient, createTables, deleteTables, storeWithFaults, uniqueSuffix } from "../support/dynamodb.ts";
import { seededRandom, serverError } from "../support/faults.ts";
import { AWS_ENDPOINT_URL, integrationSuite, probe } from "../support/gate.ts";
import { mapConcurrently } from "../../src/core/concurrency.ts";
import { sleep } from "../../src/core/time.ts";

const WRITERS = 20;
const CHANGES_PER_WRITER = 5;
const READERS = 200;
const READS_PER_READER = 5;

/** A version of the rule under test; its wage base names the change that wrote it. */
function version(ruleId: string, effectiveFrom: string, effectiveTo: string | null, wageBase: string) {
  return {
    clientId: "GLOBAL",
    ruleId,
    ruleType: "percentage_up_to_wage_base",
    description: "Social Security under load",
    parameters: { rate: "0.062", wageBase },
    effectiveFrom,
    effectiveTo,
  } satisfies CalculationRuleInput;
}

/** What identifies a stored state of a version: every field a reader gets, the scope aside. */
function stateOf(rule: CalculationRule): string {
  const { clientId, ruleId, ruleType, description, parameters, effectiveFrom, effectiveTo, revision } = rule;
  const sorted = Object.entries(parameters).sort(([a], [b]) => (a < b ? -1 : 1));
  return JSON.stringify([clientId, ruleId, ruleType, description, sorted, effectiveFrom, effectiveTo, revision]);
}

/** The first day of a month from 2020-01 to 2030-12, and its last day. */
function month(random: () => number): [string, string] {
  const year = 2020 + Math.floor(random() * 11);
  const monthIndex = Math.floor(random() * 12);
  const last = new Date(Date.UTC(year, monthIndex + 1, 0)).toISOString().slice(0, 10);
  return [`${last.slice(0, 8)}01`, last];
}

/** A random day from 2019 to 2031. */
function day(random: () => number): string {
  return new Date(Date.UTC(2019, 0, 1) + Math.floor(random() * 13 * 365) * 86_400_000).toISOString().slice(0, 10);
}

/**
 * Sends a client's TransactWriteItems one at a time. DynamoDB runs
 * transactions on an item one after the other (serializable isolation); moto
 * does not: of 20 concurrent transactions conditional on one item revision,
 * two sometimes both succeed (1 round in 30 measured; a conditional PutItem
 * never did). Without this, the test would measure moto's missing isolation,
 * not the store. Everything else (the reads of writers planning their
 * changes, 200 readers, losing the condition and planning again) stays
 * concurrent.
 */
function serializeTransactions(client: ReturnType<typeof countingClient>["client"]): void {
  let queue: Promise<unknown> = Promise.resolve();
  client.middlewareStack.add(
    (next, context) => (args) => {
      if (context.commandName !== "TransactWriteItemsCommand") return next(args);
      const turn = queue.then(() => next(args));
      queue = turn.catch(() => undefined);
      return turn;
    },
    { step: "finalizeRequest", name: "serializeTransactions" },
  );
}

integrationSuite("Reliability: rules over time on DynamoDB", await probe(AWS_ENDPOINT_URL), () => {
  const setup = countingClient();
  const suffix = uniqueSuffix("rel-rot");

  before(() => createTables(setup.client, suffix));

  after(async () => {
    await deleteTables(setup.client, suffix);
    setup.client.destroy();
  });

  it("20 writers and 200 readers of one rule: no never-written state read, no change lost, one audit record per change", async () => {
    const ruleId = uniqueId("LOADED");
    const cache = new MemoryCacheBackend();
    const writes = countingClient();
    serializeTransactions(writes.client);
    // One writer store (one process's change clock), a cached reader store sharing its cache, an uncached one.
    const writer = new DynamoDBRulesStore({ client: writes.client, tableSuffix: suffix, cache });
    const cachedReader = new DynamoDBRulesStore({ client: setup.client, tableSuffix: suffix, cache });
    const directReader = new DynamoDBRulesStore({ client: setup.client, tableSuffix: suffix });
    const succeeded: CalculationRule[] = [];
    const refused: unknown[] = [];
    const observed: Array<{ asOf: string; rule: CalculationRule }> = [];
    let writersDone = false;
    try {
      await writer.putCalculationRule(version(ruleId, "2020-01-01", null, "0"), { actor: "seed", reason: "start" });
      succeeded.push(await writer.getCalculationRule("GLOBAL", ruleId, { asOf: "2020-01-01" }));
      const writing = mapConcurrently(Array.from({ length: WRITERS }, (_, index) => index), WRITERS, async (index) => {
        const random = seededRandom(1000 + index);
        for (let change = 0; change < CHANGES_PER_WRITER; change++) {
          const wageBase = String((index + 1) * 1000 + change + 1);
          const actor = `writer-${index}`;
          const roll = random();
          try {
            if (roll < 0.35) {
              const versions = await writer.listCalculationRuleVersions("GLOBAL", ruleId);
              const target = versions[Math.floor(random() * versions.length)];
              succeeded.push(
                await writer.putCalculationRule(version(ruleId, target.effectiveFrom, target.effectiveTo, wageBase), {
                  actor,
                  reason: `correct ${target.effectiveFrom}`,
                  expectedRevision: target.revision,
                }),
              );
            } else {
              const [first, last] = month(random);
              const to = roll < 0.4 ? null : last;
              succeeded.push(
                await writer.putCalculationRule(version(ruleId, first, to, wageBase), {
                  actor,
                  reason: `add ${first}`,
                }),
              );
            }
          } catch (error) {
            refused.push(error);
          }
        }
      }).finally(() => {
        writersDone = true;
      });
      const reading = mapConcurrently(Array.from({ length: READERS }, (_, index) => index), READERS, async (index) => {
        const random = seededRandom(5000 + index);
        // A quarter read DynamoDB every time; the rest go through the cache the writer invalidates.
        const reader = index % 4 === 0 ? directReader : cachedReader;
        for (let read = 0; read < READS_PER_READER || !writersDone; read++) {
          const asOf = day(random);
          try {
            observed.push({ asOf, rule: await reader.getCalculationRule(`client-${index % 7}`, ruleId, { asOf }) });
          } catch (error) {
            if (!(error instanceof RuleNotFoundError)) throw error;
          }
          if (read >= READS_PER_READER * 8) break;
          await sleep(5 + random() * 20);
        }
      });
      await Promise.all([writing, reading]);

      // Every refusal is a ConflictError: an overlap, or a correction that lost to another correction.
      assert.deepEqual(refused.filter((error) => !(error instanceof ConflictError)), []);
      assert.equal(succeeded.length + refused.length, WRITERS * CHANGES_PER_WRITER + 1);
      // How many overlap depends on the interleaving (15 to 32 of the 101 seen): the floor only says the writers
      // got through, it is not a throughput bound.
      assert.ok(succeeded.length > WRITERS / 2, `only ${succeeded.length} changes succeeded`);

      // Exactly one audit record per successful change, each naming what the change returned.
      const changes = (await writer.listRuleChanges("GLOBAL"))
        .filter((change): change is CalculationRuleChange => change.ruleId === ruleId && change.kind === "calculation");
      assert.equal(changes.length, succeeded.length);
      const returned = succeeded.map(stateOf).sort();
      assert.deepEqual(changes.map((change) => stateOf(change.after!)).sort(), returned);

      // No change lost: replayed in order, each record's "before" is the state the one before left, and the
      // replay ends where the table is.
      const replay = new Map<string, string>();
      for (const change of changes) {
        const before = change.before === null ? undefined : stateOf(change.before);
        assert.equal(before, replay.get(change.after!.effectiveFrom), `change ${change.changeId}: before`);
        replay.set(change.after!.effectiveFrom, stateOf(change.after!));
        if (change.closed !== null) {
          assert.equal(stateOf(change.closed.before!), replay.get(change.closed.after.effectiveFrom));
          replay.set(change.closed.after.effectiveFrom, stateOf(change.closed.after));
        }
      }
      const stored = await writer.listCalculationRuleVersions("GLOBAL", ruleId);
      assert.deepEqual(stored.map(stateOf), [...replay.keys()].sort().map((from) => replay.get(from)));

      // No reader saw a state no change wrote, nor a version that does not cover the day it asked for.
      const written = new Set(
        changes.flatMap((change) => change.closed === null ? [change.after!] : [change.after!, change.closed.after])
          .map(stateOf),
      );
      assert.ok(observed.length >= READERS, `only ${observed.length} reads answered`);
      for (const { asOf, rule } of observed) {
        assert.ok(written.has(stateOf(rule)), `a read as of ${asOf} saw a state never written: ${stateOf(rule)}`);
        assert.ok(rule.effectiveFrom <= asOf && (rule.effectiveTo === null || asOf <= rule.effectiveTo), asOf);
        assert.equal(rule.scope, "GLOBAL");
      }
      // Once the writers are done, every reader sees the final state for every date.
      for (const reader of [cachedReader, directReader]) {
        for (const asOf of ["2020-01-01", "2024-02-29", "2030-12-31", "2031-06-01"]) {
          const expected = stored.find((v) =>
            v.effectiveFrom <= asOf && (v.effectiveTo === null || asOf <= v.effectiveTo)
          );
          const read = await reader.getCalculationRule("ACME", ruleId, { asOf }).catch(() => undefined);
          assert.equal(read && stateOf(read), expected && stateOf(expected), asOf);
        }
      }
    } finally {
      await Promise.all([writer.close(), cachedReader.close(), directReader.close()]);
      writes.client.destroy();
    }
  });

  describe("answers of TransactWriteItems lost after the write landed", () => {
    /** Adds three versions, then corrects each: six changes through a store whose transactions lose answers. */
    async function sixChanges(store: DynamoDBRulesStore, ruleId: string): Promise<CalculationRule[]> {
      const results: CalculationRule[] = [];
      for (const year of [2024, 2025, 2026]) {
        results.push(
          await store.putCalculationRule(version(ruleId, `${year}-01-01`, `${year}-12-31`, `${year}`), {
            actor: "test",
            reason: `add ${year}`,
          }),
        );
      }
      for (const year of [2024, 2025, 2026]) {
        results.push(
          await store.putCalculationRule(version(ruleId, `${year}-01-01`, `${year}-12-31`, `${year}5`), {
            actor: "test",
            reason: `correct ${year}`,
            expectedRevision: 1,
          }),
        );
      }
      return results;
    }

    async function checkApplied(store: DynamoDBRulesStore, ruleId: string, results: CalculationRule[]) {
      assert.deepEqual(results.map((r) => r.revision), [1, 1, 1, 2, 2, 2]);
      const changes = (await store.listRuleChanges("GLOBAL")).filter((change) => change.ruleId === ruleId);
      assert.equal(changes.length, 6, "one audit record per change");
      const versions = await store.listCalculationRuleVersions("GLOBAL", ruleId);
      assert.deepEqual(versions.map((v) => [v.parameters.wageBase, v.revision]), [["20245", 2], ["20255", 2], [
        "20265",
        2,
      ]]);
    }

    it("the first attempt of each lands and loses its answer: the SDK's retry (same ClientRequestToken) applies nothing twice", async () => {
      const ruleId = uniqueId("LOST_ONCE");
      const { store, faults, close } = storeWithFaults(
        suffix,
        (operation, attempt) =>
          operation === "TransactWriteItems" && attempt === 1 ? { error: serverError(), after: true } : undefined,
      );
      try {
        await checkApplied(store, ruleId, await sixChanges(store, ruleId));
        assert.equal(faults.injected.get("TransactWriteItems"), 6);
      } finally {
        await close();
      }
    });

    it("every attempt lands or is refused and loses its answer: the audit record tells the change landed", async () => {
      const ruleId = uniqueId("LOST_ALL");
      const { store, faults, close } = storeWithFaults(
        suffix,
        (operation) => operation === "TransactWriteItems" ? { error: serverError(), after: true } : undefined,
      );
      try {
        await checkApplied(store, ruleId, await sixChanges(store, ruleId));
        assert.equal(faults.injected.get("TransactWriteItems"), faults.attempts.get("TransactWriteItems"));
      } finally {
        await close();
      }
    });

    it("another writer changes the rule between the landed attempt and the retry: both changes land once", async () => {
      const ruleId = uniqueId("LOST_RACE");
      const other = new DynamoDBRulesStore({ client: setup.client, tableSuffix: suffix });
      let raced = false;
      const { store, close } = storeWithFaults(suffix, (operation, attempt) => {
        if (operation !== "TransactWriteItems" || attempt !== 1 || raced) return undefined;
        raced = true;
        return {
          error: serverError(),
          after: true,
          during: () => other.putCalculationRule(version(ruleId, "2030-01-01", null, "30"), CHANGE),
        };
      });
      try {
        const mine = await store.putCalculationRule(version(ruleId, "2024-01-01", "2024-12-31", "24"), CHANGE);
        assert.equal(mine.revision, 1);
        const versions = await store.listCalculationRuleVersions("GLOBAL", ruleId);
        assert.deepEqual(versions.map((v) => v.parameters.wageBase), ["24", "30"]);
        assert.equal((await store.listRuleChanges("GLOBAL")).filter((change) => change.ruleId === ruleId).length, 2);
      } finally {
        await close();
        await other.close();
      }
    });
  });
});

const CHANGE = { actor: "test", reason: "lost answers" };
