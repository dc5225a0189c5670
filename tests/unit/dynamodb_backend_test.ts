// DynamoDBRulesStore without a server: a mocked document client for request
// shapes and counts, and a fake HTTP handler for the SDK's real retries.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { after, beforeEach, describe, it } from "node:test";
import { ConditionalCheckFailedException, DynamoDBClient, ResourceNotFoundException } from "@aws-sdk/client-dynamodb";
import { BatchGetCommand, DynamoDBDocumentClient, GetCommand, PutCommand, QueryCommand } from "@aws-sdk/lib-dynamodb";
import { marshall } from "@aws-sdk/util-dynamodb";
import { mockClient } from "aws-sdk-client-mock";
import {
  ConfigError,
  ConflictError,
  CorruptItemError,
  type ICacheBackend,
  InvalidInputError,
  MemoryCacheBackend,
  RuleNotFoundError,
  RulesStoreError,
} from "../../mod.ts";
import { ruleVersionsCacheKey } from "../../src/core/keys.ts";
import { DynamoDBRulesStore, type RulesStoreEvent } from "../../src/persistence/dynamodb_backend.ts";
import { calculationRuleItem } from "../support/dynamodb.ts";
import {
  auditEntryCodec,
  batchStateCodec,
  groupValidationRules,
  irsLimitsCodec,
  pipelineStepCodec,
  validationRuleGroupCodec,
} from "../../src/persistence/items.ts";
import { auditEntry, BAD_IDS, batchState, DECIMAL_38, processingResult, RULES_FIXTURE } from "../contract/fixtures.ts";
import { callsWithId } from "../contract/rules_store_contract.ts";

const SUFFIX = "-ut";
const CALC_TABLE = `bluestar-calculation-rules${SUFFIX}`;
const CREDENTIALS = { accessKeyId: "test", secretAccessKey: "test" };
const GLOBAL_FICA = RULES_FIXTURE.calculationRules!.find((r) => r.ruleId === "FICA_SS" && r.clientId === "GLOBAL")!;
const ACME_OVERTIME = RULES_FIXTURE.calculationRules!.find((r) => r.ruleId === "OVERTIME" && r.clientId === "ACME")!;

const sleep = (milliseconds: number) => new Promise((resolve) => setTimeout(resolve, milliseconds));

const ruleItem = calculationRuleItem;

/** A store on a client it creates, with the options given; events are collected. */
function openStore(options: { cache?: ICacheBackend; cacheTimeoutMs?: number } = {}) {
  const events: RulesStoreEvent[] = [];
  const store = new DynamoDBRulesStore({
    region: "us-east-1",
    credentials: CREDENTIALS,
    tableSuffix: SUFFIX,
    onEvent: (event) => events.push(event),
    ...options,
  });
  return { store, events, types: () => events.map((event) => event.type) };
}

/** A cache whose calls are recorded and whose behaviour a test chooses. */
function scriptedCache(behaviour: {
  get?: (key: string) => Promise<unknown>;
  setex?: (key: string, ttl: number, value: unknown) => Promise<void>;
}): ICacheBackend & { sets: Array<[string, number, unknown]> } {
  const sets: Array<[string, number, unknown]> = [];
  return {
    sets,
    get: <T>(key: string) => (behaviour.get?.(key) ?? Promise.resolve(null)) as Promise<T | null>,
    setex: (key, ttl, value) => {
      sets.push([key, ttl, value]);
      return behaviour.setex?.(key, ttl, value) ?? Promise.resolve();
    },
    delete: () => Promise.resolve(),
  };
}

describe("DynamoDBRulesStore with a mocked document client", () => {
  const ddb = mockClient(DynamoDBDocumentClient);
  beforeEach(() => ddb.reset());
  after(() => ddb.restore());

  describe("CLIENT -> GLOBAL fallback", () => {
    it("asks for the client's key and GLOBAL's in ONE BatchGetItem and says GLOBAL answered", async () => {
      ddb.on(BatchGetCommand).resolves({ Responses: { [CALC_TABLE]: [ruleItem(GLOBAL_FICA)] } });
      const { store } = openStore();
      const rule = await store.getCalculationRule("ACME", "FICA_SS");
      assert.equal(rule.scope, "GLOBAL");
      assert.equal(rule.clientId, "GLOBAL");
      assert.deepEqual(rule.parameters, { rate: "0.062", wageBase: "184500" });
      assert.equal(ddb.calls().length, 1);
      assert.deepEqual(ddb.commandCalls(BatchGetCommand)[0].args[0].input, {
        RequestItems: {
          [CALC_TABLE]: {
            Keys: [{ PK: "CLIENT#ACME", SK: "RULE#FICA_SS" }, { PK: "CLIENT#GLOBAL", SK: "RULE#FICA_SS" }],
            ConsistentRead: true,
          },
        },
      });
    });

    it("prefers the client's item whatever order the response lists them in", async () => {
      ddb.on(BatchGetCommand).resolves({
        Responses: { [CALC_TABLE]: [ruleItem({ ...ACME_OVERTIME, clientId: "GLOBAL" }), ruleItem(ACME_OVERTIME)] },
      });
      const { store } = openStore();
      const rule = await store.getCalculationRule("ACME", "OVERTIME");
      assert.equal(rule.scope, "CLIENT");
      assert.equal(rule.clientId, "ACME");
    });

    it("asks for one key when the client is GLOBAL", async () => {
      ddb.on(BatchGetCommand).resolves({ Responses: { [CALC_TABLE]: [ruleItem(GLOBAL_FICA)] } });
      const { store } = openStore();
      await store.getCalculationRule("GLOBAL", "FICA_SS");
      assert.deepEqual(ddb.commandCalls(BatchGetCommand)[0].args[0].input.RequestItems![CALC_TABLE].Keys, [
        { PK: "CLIENT#GLOBAL", SK: "RULE#FICA_SS" },
      ]);
    });

    it("reads a field's validation rules in one BatchGetItem, GLOBAL's when the client has none", async () => {
      const table = `bluestar-validation-rules${SUFFIX}`;
      const groups = groupValidationRules(RULES_FIXTURE.validationRules!).filter((g) => g.field === "ssn");
      ddb.on(BatchGetCommand).resolves({ Responses: { [table]: groups.map(validationRuleGroupCodec.toItem) } });
      const { store } = openStore();
      const rules = await store.getValidationRules("ACME", "ssn");
      assert.deepEqual(rules.map((r) => [r.ruleId, r.scope]), [["ssn_format", "GLOBAL"], ["ssn_required", "GLOBAL"]]);
      assert.equal(ddb.calls().length, 1);
    });

    it("asks again for UnprocessedKeys, and only for those", async () => {
      const unprocessed = { [CALC_TABLE]: { Keys: [{ PK: "CLIENT#GLOBAL", SK: "RULE#FICA_SS" }] } };
      ddb.on(BatchGetCommand)
        .resolvesOnce({ Responses: { [CALC_TABLE]: [] }, UnprocessedKeys: unprocessed })
        .resolvesOnce({ Responses: { [CALC_TABLE]: [ruleItem(GLOBAL_FICA)] } });
      const { store, types } = openStore();
      const rule = await store.getCalculationRule("ACME", "FICA_SS");
      assert.equal(rule.scope, "GLOBAL");
      const calls = ddb.commandCalls(BatchGetCommand);
      assert.equal(calls.length, 2);
      assert.deepEqual(calls[1].args[0].input.RequestItems, {
        [CALC_TABLE]: { ...unprocessed[CALC_TABLE], ConsistentRead: true },
      });
      assert.ok(types().includes("dynamodb.unprocessed"));
    });

    it("gives up on keys still unprocessed after 8 attempts with a RulesStoreError", async () => {
      const unprocessed = { [CALC_TABLE]: { Keys: [{ PK: "CLIENT#GLOBAL", SK: "RULE#FICA_SS" }] } };
      ddb.on(BatchGetCommand).resolves({ Responses: { [CALC_TABLE]: [] }, UnprocessedKeys: unprocessed });
      const { store } = openStore();
      await assert.rejects(store.getCalculationRule("ACME", "FICA_SS"), (error: unknown) => {
        assert.ok(error instanceof RulesStoreError && !(error instanceof RuleNotFoundError));
        assert.equal(
          error.message,
          'Failed to read calculation rule "FICA_SS" for client "ACME": 1 of 2 keys still unprocessed after 8 attempts',
        );
        return true;
      });
      assert.equal(ddb.calls().length, 8);
    });

    it("is a RuleNotFoundError when neither answers", async () => {
      ddb.on(BatchGetCommand).resolves({ Responses: { [CALC_TABLE]: [] } });
      const { store } = openStore();
      await assert.rejects(store.getCalculationRule("ACME", "NOPE"), RuleNotFoundError);
    });
  });

  describe("caching", () => {
    it("a cache hit sends no request, the GLOBAL fallback answer included", async () => {
      ddb.on(BatchGetCommand).resolves({ Responses: { [CALC_TABLE]: [ruleItem(GLOBAL_FICA)] } });
      const { store, types } = openStore({ cache: new MemoryCacheBackend() });
      const cold = await store.getCalculationRule("ACME", "FICA_SS");
      assert.equal(ddb.calls().length, 1);
      ddb.resetHistory();
      const warm = await store.getCalculationRule("ACME", "FICA_SS");
      assert.equal(ddb.calls().length, 0);
      assert.deepEqual(warm, cold);
      assert.equal(warm.scope, "GLOBAL");
      // One entry per owner: ACME's (empty, cached too) and GLOBAL's.
      assert.deepEqual(types(), [
        "cache.miss",
        "cache.miss",
        "dynamodb.request",
        "dynamodb.response",
        "call",
        "cache.hit",
        "cache.hit",
        "call",
      ]);
      await store.close();
    });

    it("caches each owner's versions under ruleVersionsCacheKey() for cacheTtlSeconds, an empty owner too", async () => {
      ddb.on(BatchGetCommand).resolves({ Responses: { [CALC_TABLE]: [ruleItem(GLOBAL_FICA)] } });
      const cache = scriptedCache({});
      const store = new DynamoDBRulesStore({
        region: "us-east-1",
        credentials: CREDENTIALS,
        tableSuffix: SUFFIX,
        cache,
        cacheTtlSeconds: 42,
      });
      const rule = await store.getCalculationRule("ACME", "FICA_SS");
      await store.close();
      const { scope: _, ...version } = rule;
      assert.deepEqual(cache.sets, [
        [
          ruleVersionsCacheKey(SUFFIX, "calculation", "FICA_SS", "ACME"),
          42,
          { clientId: "ACME", ruleId: "FICA_SS", revision: 0, versions: [] },
        ],
        [
          ruleVersionsCacheKey(SUFFIX, "calculation", "FICA_SS", "GLOBAL"),
          42,
          { clientId: "GLOBAL", ruleId: "FICA_SS", revision: 1, versions: [version] },
        ],
      ]);
    });

    it("never caches batch state, results or the audit trail, nor a rule that is not found", async () => {
      ddb.on(GetCommand).resolves({});
      ddb.on(QueryCommand).resolves({ Items: [] });
      ddb.on(PutCommand).resolves({});
      ddb.on(BatchGetCommand).resolves({ Responses: { [CALC_TABLE]: [] } });
      const cache = scriptedCache({});
      const { store } = openStore({ cache });
      for (let round = 0; round < 2; round++) {
        await store.saveBatchState("B1", batchState("B1"));
        await store.getBatchState("B1");
        await store.listBatchesByStatus("running");
        await store.saveProcessingResult("B1", "0100", processingResult("B1", "0100"));
        await store.getProcessingResults("B1");
        await store.appendAuditEntry(auditEntry("B1", `e${round}`));
        await store.listAuditEntries("B1");
        await store.getAgentConfig("intake");
        await assert.rejects(store.getCalculationRule("ACME", "NOPE"), RuleNotFoundError);
      }
      await store.close();
      assert.deepEqual(cache.sets, []);
      // Nine calls a round, and each append's claim on the seal item and its removal (two UpdateItems).
      assert.equal(ddb.calls().length, 22);
    });

    it("100 simultaneous cold reads of one rule share one request and one frozen rule", async () => {
      ddb.on(BatchGetCommand).callsFake(async () => {
        await sleep(10);
        return { Responses: { [CALC_TABLE]: [ruleItem(GLOBAL_FICA)] } };
      });
      for (const cache of [undefined, new MemoryCacheBackend()]) {
        ddb.resetHistory();
        const { store } = openStore({ cache });
        const rules = await Promise.all(Array.from({ length: 100 }, () => store.getCalculationRule("ACME", "FICA_SS")));
        assert.equal(ddb.calls().length, 1);
        assert.throws(() => {
          rules[0].parameters.rate = "0.5";
        }, TypeError);
        assert.ok(rules.every((rule) => rule.parameters.rate === "0.062"));
        await store.close();
      }
    });

    it("a failed shared read reaches every waiter, and the next read tries again", async () => {
      ddb.on(BatchGetCommand).callsFakeOnce(async () => {
        await sleep(10);
        throw Object.assign(new Error("Service unavailable"), { name: "ServiceUnavailable" });
      }).resolves({ Responses: { [CALC_TABLE]: [ruleItem(GLOBAL_FICA)] } });
      const { store } = openStore();
      const results = await Promise.allSettled(
        Array.from({ length: 10 }, () => store.getCalculationRule("ACME", "FICA_SS")),
      );
      assert.equal(ddb.calls().length, 1);
      for (const result of results) {
        assert.equal(result.status, "rejected");
        assert.ok((result as PromiseRejectedResult).reason instanceof RulesStoreError);
      }
      assert.equal((await store.getCalculationRule("ACME", "FICA_SS")).scope, "GLOBAL");
      assert.equal(ddb.calls().length, 2);
    });

    it("a cache that throws makes the read go to DynamoDB, and the hook reports it", async () => {
      ddb.on(BatchGetCommand).resolves({ Responses: { [CALC_TABLE]: [ruleItem(GLOBAL_FICA)] } });
      const broken = scriptedCache({
        get: () => Promise.reject(new Error("ECONNREFUSED")),
        setex: () => Promise.reject(new Error("ECONNREFUSED")),
      });
      const { store, events } = openStore({ cache: broken });
      assert.equal((await store.getCalculationRule("ACME", "FICA_SS")).scope, "GLOBAL");
      await store.close();
      const errors = events.filter((event) => event.type === "cache.error");
      // No write-back without the generation the failed lookup would have read: it could undo a change.
      assert.deepEqual(errors.map((event) => event.operation), ["getMany"]);
      assert.equal(errors[0].error.code, "CACHE_ERROR");
      assert.match(
        errors[0].error.message,
        /^Failed to getMany cache key "bluestar:v2:-ut:calculation:\{calculation:FICA_SS\}:ACME, bluestar:v2:[^"]*": /,
      );
      assert.equal((errors[0].error.cause as Error).message, "ECONNREFUSED");
    });

    it("a cache that throws synchronously is a miss too", async () => {
      ddb.on(GetCommand).resolves({ Item: irsLimitsCodec.toItem(RULES_FIXTURE.irsLimits![0]) });
      const cache: ICacheBackend = {
        get: () => {
          throw new TypeError("not connected");
        },
        setex: () => {
          throw new TypeError("not connected");
        },
        delete: () => Promise.resolve(),
      };
      const { store, types } = openStore({ cache });
      assert.equal((await store.getIrsLimits(2026)).limits.tiny, "0.1");
      await store.close();
      assert.deepEqual(types(), ["cache.error", "dynamodb.request", "dynamodb.response", "cache.error", "call"]);
    });

    it("a cache that never answers costs at most cacheTimeoutMs, and the read succeeds", async () => {
      ddb.on(BatchGetCommand).resolves({ Responses: { [CALC_TABLE]: [ruleItem(GLOBAL_FICA)] } });
      const hanging = scriptedCache({ get: () => new Promise(() => {}), setex: () => new Promise(() => {}) });
      const { store, events } = openStore({ cache: hanging, cacheTimeoutMs: 20 });
      const started = performance.now();
      const rule = await store.getCalculationRule("ACME", "FICA_SS");
      const elapsed = performance.now() - started;
      assert.equal(rule.scope, "GLOBAL");
      assert.ok(elapsed >= 15 && elapsed < 1000, `took ${elapsed} ms`);
      await store.close();
      const errors = events.filter((event) => event.type === "cache.error");
      assert.equal(errors.length, 1);
      assert.match(errors[0].error.message, /no answer within 20 ms$/);
      assert.equal(errors[0].operation, "getMany");
    });

    it("a cached value that does not decode, or answers another question, is a miss", async () => {
      ddb.on(BatchGetCommand).resolves({ Responses: { [CALC_TABLE]: [ruleItem(GLOBAL_FICA)] } });
      const version = { ...GLOBAL_FICA, parameters: { ...GLOBAL_FICA.parameters }, revision: 1 };
      const fine = { clientId: "GLOBAL", ruleId: "FICA_SS", revision: 1, versions: [version] };
      const garbage: unknown[] = [
        "not a rule",
        42,
        [],
        { ...fine, versions: [{ ...version, parameters: { rate: 0.062 } }] },
        { ...fine, versions: [{ ...version, extra: true }] },
        { ...fine, versions: [{ ...version, scope: "GLOBAL" }] },
        { ...fine, ruleId: "OTHER", versions: [{ ...version, ruleId: "OTHER" }] },
        { ...fine, versions: [{ ...version, ruleId: "OTHER" }] },
        { ...fine, clientId: "SOMEONE_ELSE", versions: [{ ...version, clientId: "SOMEONE_ELSE" }] },
        { ...fine, versions: [version, { ...version, effectiveFrom: "2026-06-01" }] },
        { ...fine, revision: -1 },
      ];
      const acme = { clientId: "ACME", ruleId: "FICA_SS", revision: 0, versions: [] };
      for (const value of garbage) {
        ddb.resetHistory();
        const get = (key: string) => Promise.resolve(key.endsWith(":ACME") ? acme : value);
        const { store, events } = openStore({ cache: scriptedCache({ get }) });
        const rule = await store.getCalculationRule("ACME", "FICA_SS");
        assert.equal(rule.parameters.rate, "0.062");
        assert.equal(ddb.calls().length, 1, `value ${JSON.stringify(value)}`);
        const corrupt = events.find((event) => event.type === "cache.corrupt");
        assert.ok(corrupt !== undefined && corrupt.problems.length > 0, `value ${JSON.stringify(value)}`);
        await store.close();
      }
    });

    it("a cached value is checked again when its text changes, and every read is frozen", async () => {
      const rule = { ...GLOBAL_FICA, parameters: { rate: "0.062", wageBase: "184500" }, revision: 1 };
      const history = (version: unknown) => ({
        clientId: "GLOBAL",
        ruleId: "FICA_SS",
        revision: 1,
        versions: [version],
      });
      const acme = { clientId: "ACME", ruleId: "FICA_SS", revision: 0, versions: [] };
      let served: unknown = history(rule);
      const { store, types } = openStore({
        cache: scriptedCache({
          get: (key) => Promise.resolve(structuredClone(key.endsWith(":ACME") ? acme : served)),
        }),
      });
      const first = await store.getCalculationRule("ACME", "FICA_SS");
      assert.throws(() => {
        first.parameters.rate = "0.9";
      }, TypeError);
      const second = await store.getCalculationRule("ACME", "FICA_SS");
      assert.equal(second.parameters.rate, "0.062");
      // The entry changes: the new text is decoded, and garbage is still caught.
      served = history({ ...rule, parameters: { rate: "0.063", wageBase: "184500" } });
      assert.equal((await store.getCalculationRule("ACME", "FICA_SS")).parameters.rate, "0.063");
      ddb.on(BatchGetCommand).resolves({ Responses: { [CALC_TABLE]: [ruleItem(GLOBAL_FICA)] } });
      served = history({ ...rule, parameters: { rate: "7" } });
      assert.equal((await store.getCalculationRule("ACME", "FICA_SS")).parameters.rate, "0.062");
      const cacheAndRequests = types().filter((type) => type.startsWith("cache.") || type === "dynamodb.request");
      assert.deepEqual(cacheAndRequests, [...Array(7).fill("cache.hit"), "cache.corrupt", "dynamodb.request"]);
      assert.equal(ddb.calls().length, 1);
      await store.close();
    });

    it("an event hook that throws never fails a read", async () => {
      ddb.on(BatchGetCommand).resolves({ Responses: { [CALC_TABLE]: [ruleItem(GLOBAL_FICA)] } });
      const store = new DynamoDBRulesStore({
        region: "us-east-1",
        credentials: CREDENTIALS,
        tableSuffix: SUFFIX,
        cache: scriptedCache({ get: () => Promise.reject(new Error("down")) }),
        onEvent: () => {
          throw new Error("hook bug");
        },
      });
      assert.equal((await store.getCalculationRule("ACME", "FICA_SS")).scope, "GLOBAL");
      await store.close();
    });
  });

  describe("conditional writes", () => {
    it("a lost version condition is a ConflictError naming the stored version from the raw item", async () => {
      ddb.on(PutCommand).rejects(
        new ConditionalCheckFailedException({
          message: "The conditional request failed",
          $metadata: {},
          Item: { PK: { S: "BATCH#B1" }, version: { N: "7" } },
        }),
      );
      const { store } = openStore();
      await assert.rejects(
        store.saveBatchState("B1", batchState("B1", { version: 4 }), { expectedVersion: 3 }),
        (error: unknown) => {
          assert.ok(error instanceof ConflictError);
          assert.equal(error.message, 'Failed to save batch state "B1": expected version 3, stored version is 7');
          assert.ok(error.cause instanceof ConditionalCheckFailedException);
          return true;
        },
      );
      const input = ddb.commandCalls(PutCommand)[0].args[0].input;
      assert.equal(input.ConditionExpression, "#version = :expected");
      assert.deepEqual(input.ExpressionAttributeValues, { ":expected": 3 });
      assert.equal(input.ReturnValuesOnConditionCheckFailure, "ALL_OLD");
    });

    it("a retried put landed earlier only when the stored item carries its own write token", async () => {
      const state = batchState("B1", { version: 4 });
      const lost = (attempts: number, Item: Record<string, unknown>) =>
        new ConditionalCheckFailedException({
          message: "The conditional request failed",
          $metadata: { attempts },
          Item: Item as never,
        });
      /** What DynamoDB would return as the stored item: what was sent, marshalled, with `changes`. */
      const stored = (input: { Item?: Record<string, unknown> }, changes: Record<string, unknown> = {}) => ({
        ...marshall(input.Item!, { removeUndefinedValues: true }),
        ...changes,
      });
      const { store } = openStore();
      // The SDK retried (the first answer was lost) and DynamoDB holds this call's item, token included: it landed.
      ddb.on(PutCommand).callsFake((input) => Promise.reject(lost(2, stored(input))));
      await store.saveBatchState("B1", state, { expectedVersion: 3 });
      const sent = ddb.commandCalls(PutCommand).map((call) => call.args[0].input.Item!);
      assert.equal(typeof sent[0].writeId, "string");
      // Writer B's item equals writer A's byte for byte but for A's token: A's write, a conflict for B (item 4).
      const other = randomUUID();
      ddb.on(PutCommand).callsFake((input) => Promise.reject(lost(2, stored(input, { writeId: { S: other } }))));
      await assert.rejects(store.saveBatchState("B1", state, { expectedVersion: 3 }), ConflictError);
      // An item stored before write tokens (or by the seed) is never this call's.
      ddb.on(PutCommand).callsFake((input) => {
        const { writeId: _, ...before } = stored(input);
        return Promise.reject(lost(3, before));
      });
      await assert.rejects(store.saveBatchState("B1", state, { expectedVersion: 3 }), ConflictError);
      // The same holds for an audit entry.
      const entry = auditEntry("B1", "e1");
      ddb.on(PutCommand).callsFake((input) => Promise.reject(lost(3, stored(input))));
      await store.appendAuditEntry(entry);
      ddb.on(PutCommand).callsFake((input) => Promise.reject(lost(3, stored(input, { writeId: { S: other } }))));
      await assert.rejects(store.appendAuditEntry(entry), ConflictError);
      // Each call has its own token, and only conditional puts carry one.
      const tokens = ddb.commandCalls(PutCommand).map((call) => call.args[0].input.Item!.writeId);
      assert.equal(new Set(tokens).size, tokens.length);
      ddb.on(PutCommand).resolves({});
      await store.saveBatchState("B1", state);
      assert.equal(ddb.commandCalls(PutCommand).at(-1)!.args[0].input.Item!.writeId, undefined);
    });

    it("reads never return the write token, and items without one decode as before", async () => {
      const state = batchState("B1", { version: 2 });
      const item = batchStateCodec.toItem(state);
      const entry = auditEntry("B1", "e1");
      ddb.on(GetCommand).resolvesOnce({ Item: { ...item, writeId: randomUUID() } }).resolvesOnce({ Item: item });
      ddb.on(QueryCommand).resolves({ Items: [{ ...auditEntryCodec.toItem(entry), writeId: randomUUID() }] });
      const { store } = openStore();
      assert.deepEqual(await store.getBatchState("B1"), state);
      assert.deepEqual(await store.getBatchState("B1"), state);
      assert.deepEqual(await store.listAuditEntries("B1"), [entry]);
    });

    it("expected version 0 puts on condition that nothing is stored", async () => {
      ddb.on(PutCommand).rejects(new ConditionalCheckFailedException({ message: "failed", $metadata: {} }));
      const { store } = openStore();
      await assert.rejects(
        store.saveBatchState("B1", batchState("B1", { version: 1 }), { expectedVersion: 0 }),
        /expected version 0, stored version is 0/,
      );
      assert.equal(ddb.commandCalls(PutCommand)[0].args[0].input.ConditionExpression, "attribute_not_exists(PK)");
    });

    it("a taken audit entry id is a ConflictError; a save without expected version is unconditional", async () => {
      ddb.on(PutCommand).rejects(new ConditionalCheckFailedException({ message: "failed", $metadata: {} }));
      const { store } = openStore();
      await assert.rejects(store.appendAuditEntry(auditEntry("B1", "e1")), (error: unknown) => {
        assert.ok(error instanceof ConflictError);
        assert.equal(error.message, 'Failed to append audit entry "e1": batch "B1" already has an entry with that id');
        return true;
      });
      assert.equal(ddb.commandCalls(PutCommand)[0].args[0].input.ConditionExpression, "attribute_not_exists(PK)");
      // Without a condition, a ConditionalCheckFailedException is no conflict of ours: a plain store error.
      await assert.rejects(store.saveBatchState("B1", batchState("B1")), (error: unknown) => {
        assert.ok(error instanceof RulesStoreError && !(error instanceof ConflictError));
        return true;
      });
      assert.equal(ddb.commandCalls(PutCommand)[1].args[0].input.ConditionExpression, undefined);
    });
  });

  describe("failures", () => {
    it("wraps an SDK error in a RulesStoreError naming the action and value, with the SDK error as cause", async () => {
      const throttled = Object.assign(new Error("Rate of requests exceeds the allowed throughput."), {
        name: "ProvisionedThroughputExceededException",
        $metadata: { attempts: 3 },
      });
      ddb.on(GetCommand).rejects(throttled);
      const { store } = openStore();
      await assert.rejects(store.getIrsLimits(2026), (error: unknown) => {
        assert.ok(error instanceof RulesStoreError);
        assert.equal(error.code, "RULES_STORE_ERROR");
        assert.equal(
          error.message,
          'Failed to read IRS limits for year "2026": ProvisionedThroughputExceededException after 3 attempts: ' +
            "Rate of requests exceeds the allowed throughput",
        );
        assert.equal(error.cause, throttled);
        return true;
      });
    });

    it("never puts credentials in a message", async () => {
      ddb.on(QueryCommand).rejects(
        Object.assign(
          new Error(
            "The request signature we calculated does not match. Credential=AKIAIOSFODNN7EXAMPLE/20260101/us-east-1 " +
              "Signature=abcdef0123 key ASIAIOSFODNN7EXAMPLE",
          ),
          { name: "InvalidSignatureException" },
        ),
      );
      const { store } = openStore();
      await assert.rejects(store.listAuditEntries("B1"), (error: unknown) => {
        assert.ok(error instanceof RulesStoreError);
        assert.doesNotMatch(error.message, /AKIA|ASIA|abcdef0123/);
        assert.match(error.message, /^Failed to list audit entries of batch "B1": InvalidSignatureException: /);
        return true;
      });
    });

    it("a missing table, whatever the operation, names the table and the suffix and says to run the seed", async () => {
      const missing = new ResourceNotFoundException({ message: "Requested resource not found", $metadata: {} });
      for (const command of [GetCommand, BatchGetCommand, QueryCommand, PutCommand] as const) {
        ddb.on(command as typeof GetCommand).rejects(missing);
      }
      const { store } = openStore();
      const calls: Array<[string, string, () => Promise<unknown>]> = [
        ['read pipeline "PLAN_A"', "processing-pipeline", () => store.getPipeline("PLAN_A")],
        [
          'read calculation rule "R1" for client "ACME"',
          "calculation-rules",
          () => store.getCalculationRule("ACME", "R1"),
        ],
        ['read batch state "B1"', "batch-state", () => store.getBatchState("B1")],
        ['append audit entry "e1"', "audit-log", () => store.appendAuditEntry(auditEntry("B1", "e1"))],
      ];
      for (const [action, table, call] of calls) {
        await assert.rejects(call(), (error: unknown) => {
          assert.ok(error instanceof RulesStoreError);
          assert.equal(
            error.message,
            `Failed to ${action}: table "bluestar-${table}-ut" does not exist in region "us-east-1" ` +
              '(ResourceNotFoundException); create the tables of table suffix "-ut" with ' +
              "`deno task seed --region us-east-1 --table-suffix -ut`",
          );
          assert.equal(error.cause, missing);
          return true;
        });
      }
    });

    it("a malformed item is a CorruptItemError naming the table and the key", async () => {
      ddb.on(GetCommand).resolves({ Item: { PK: "YEAR#2026", SK: "LIMITS", year: 2026, limits: { cap: 0.5 } } });
      ddb.on(QueryCommand).resolves({ Items: [{ PK: "CLIENT#PLAN_A", SK: "STEP#0100", planId: "PLAN_A" }] });
      ddb.on(BatchGetCommand).resolves({
        Responses: { [CALC_TABLE]: [{ ...ruleItem(GLOBAL_FICA), PK: "CLIENT#ACME", SK: "RULE#FICA_SS" }] },
      });
      const { store } = openStore();
      await assert.rejects(store.getIrsLimits(2026), (error: unknown) => {
        assert.ok(error instanceof CorruptItemError);
        assert.match(error.message, /^Item "YEAR#2026 \/ LIMITS" in table "bluestar-irs-limits-ut" is corrupt: /);
        assert.match(error.message, /item\.limits\.cap: it is a number/);
        return true;
      });
      await assert.rejects(store.getPipeline("PLAN_A"), (error: unknown) => {
        assert.ok(error instanceof CorruptItemError);
        assert.match(error.message, /"CLIENT#PLAN_A \/ STEP#0100" in table "bluestar-processing-pipeline-ut"/);
        return true;
      });
      // A GLOBAL rule stored under ACME's key would answer with the wrong scope.
      await assert.rejects(store.getCalculationRule("ACME", "FICA_SS"), (error: unknown) => {
        assert.ok(error instanceof CorruptItemError);
        assert.match(error.message, /"CLIENT#ACME \/ RULE#FICA_SS" in table "bluestar-calculation-rules-ut"/);
        assert.match(error.message, /belong to key "CLIENT#GLOBAL \/ RULE#FICA_SS"/);
        return true;
      });
    });

    it("an invalid id sends no request", async () => {
      const { store } = openStore({ cache: new MemoryCacheBackend() });
      for (const [label, id] of BAD_IDS) {
        for (const call of callsWithId(store, id as string)) {
          await assert.rejects(call(), InvalidInputError, `${label}: ${call}`);
        }
      }
      assert.equal(ddb.calls().length, 0);
    });

    it("ids that passed once are remembered, and nothing else slips through with them", async () => {
      ddb.on(BatchGetCommand).resolves({ Responses: { [CALC_TABLE]: [ruleItem(GLOBAL_FICA)] } });
      const { store } = openStore({ cache: new MemoryCacheBackend() });
      await store.getCalculationRule("42", "FICA_SS");
      await store.getValidationRules("A", "B");
      ddb.resetHistory();
      const lookalikes: Array<() => Promise<unknown>> = [
        () => store.getCalculationRule(42 as unknown as string, "FICA_SS"),
        () => store.getCalculationRule("42\u0000FICA_SS", ""),
        () => store.getValidationRules("A\u0000B", ""),
        () => store.getValidationRules("A", "B\u0000"),
      ];
      for (const call of lookalikes) await assert.rejects(call(), InvalidInputError);
      assert.equal(ddb.calls().length, 0);
      await store.close();
    });

    it("a closed store rejects every call with a RulesStoreError", async () => {
      const { store } = openStore();
      await store.close();
      await store.close();
      await assert.rejects(store.getCalculationRule("ACME", "FICA_SS"), /^RulesStoreError: .*it is closed$/);
      assert.equal(ddb.calls().length, 0);
    });
  });

  describe("pagination", () => {
    it("getPipeline() follows LastEvaluatedKey through every page and sorts by step", async () => {
      const steps = RULES_FIXTURE.pipelineSteps!.map(pipelineStepCodec.toItem);
      ddb.on(QueryCommand)
        .resolvesOnce({ Items: [steps[0]], LastEvaluatedKey: { PK: "CLIENT#PLAN_A", SK: "STEP#0300" } })
        .resolvesOnce({ Items: [steps[2]], LastEvaluatedKey: { PK: "CLIENT#PLAN_A", SK: "STEP#0200" } })
        .resolvesOnce({ Items: [steps[1]] });
      const { store } = openStore();
      assert.deepEqual((await store.getPipeline("PLAN_A")).map((step) => step.step), [100, 200, 300]);
      const calls = ddb.commandCalls(QueryCommand);
      assert.equal(calls.length, 3);
      assert.equal(calls[0].args[0].input.ExclusiveStartKey, undefined);
      assert.deepEqual(calls[2].args[0].input.ExclusiveStartKey, { PK: "CLIENT#PLAN_A", SK: "STEP#0200" });
    });

    it("listBatchesByStatus() queries the status index newest first, every page", async () => {
      ddb.on(QueryCommand).resolves({ Items: [] });
      const { store } = openStore();
      assert.deepEqual(await store.listBatchesByStatus("running"), []);
      const input = ddb.commandCalls(QueryCommand)[0].args[0].input;
      assert.equal(input.IndexName, "status-updatedAt-index");
      assert.equal(input.ScanIndexForward, false);
      assert.deepEqual(input.ExpressionAttributeValues, { ":status": "running" });
    });
  });

  describe("options", () => {
    it("rejects malformed options with a ConfigError listing every problem", () => {
      assert.throws(
        () =>
          new DynamoDBRulesStore({
            tableSuffix: "-dev/x",
            cacheTtlSeconds: 0,
            cacheTimeoutMs: -1,
            maxAttempts: 0,
            endpointUrl: "ftp://x",
          }),
        (error: unknown) => {
          assert.ok(error instanceof ConfigError);
          for (const name of ["tableSuffix", "cacheTtlSeconds", "cacheTimeoutMs", "maxAttempts", "endpointUrl"]) {
            assert.match(error.message, new RegExp(name));
          }
          return true;
        },
      );
    });

    it("rejects client together with the options the client brings itself", () => {
      const client = new DynamoDBClient({ region: "us-east-1" });
      assert.throws(() => new DynamoDBRulesStore({ client, region: "eu-west-1", maxAttempts: 5 }), (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.match(error.message, /region, maxAttempts cannot be set with client/);
        return true;
      });
      client.destroy();
    });

    it("leaves a given client's configuration as it was, and open after close()", async () => {
      ddb.on(GetCommand).resolves({});
      const client = new DynamoDBClient({ region: "us-east-1", credentials: CREDENTIALS });
      const documents = DynamoDBDocumentClient.from(client);
      const translateBefore = (documents.config as { translateConfig?: unknown }).translateConfig;
      const store = new DynamoDBRulesStore({ client: documents, tableSuffix: SUFFIX });
      assert.equal(await store.getAgentConfig("intake"), null);
      await store.close();
      assert.equal((documents.config as { translateConfig?: unknown }).translateConfig, translateBefore);
      assert.equal((client.config as { translateConfig?: unknown }).translateConfig, translateBefore);
      client.destroy();
    });
  });
});

/** A scripted reply, or one made from the request's JSON body. */
type Reply =
  | { status: number; body: unknown }
  | ((request: Record<string, unknown>) => { status: number; body: unknown });

/** A DynamoDB HTTP endpoint in a function: answers each request with the next scripted reply. */
function fakeEndpoint(replies: Reply[]) {
  const targets: string[] = [];
  const handler = {
    handle(request: { headers: Record<string, string>; body?: unknown }) {
      targets.push(request.headers["x-amz-target"]);
      const scripted = replies[Math.min(targets.length - 1, replies.length - 1)];
      const body = request.body instanceof Uint8Array ? new TextDecoder().decode(request.body) : request.body;
      const reply = typeof scripted === "function" ? scripted(JSON.parse(body as string)) : scripted;
      return Promise.resolve({
        response: {
          statusCode: reply.status,
          headers: { "content-type": "application/x-amz-json-1.0" },
          body: new TextEncoder().encode(JSON.stringify(reply.body)),
        },
      });
    },
  };
  return { handler, targets };
}

function throttling(type: string) {
  return { status: 400, body: { __type: `com.amazonaws.dynamodb.v20120810#${type}`, message: "Slow down" } };
}

describe("DynamoDBRulesStore through the SDK's real retry strategy", () => {
  function storeOn(handler: unknown, maxAttempts: number) {
    const client = new DynamoDBClient({
      region: "us-east-1",
      endpoint: "http://dynamodb.invalid",
      credentials: CREDENTIALS,
      maxAttempts,
      retryMode: "standard",
      requestHandler: handler as never,
    });
    return { client, store: new DynamoDBRulesStore({ client, tableSuffix: SUFFIX }) };
  }

  for (const [type, attempts] of [["ThrottlingException", 3], ["ProvisionedThroughputExceededException", 2]] as const) {
    it(`${type} is retried by the SDK, then a RulesStoreError with the SDK error as cause`, async () => {
      const endpoint = fakeEndpoint([throttling(type)]);
      const { client, store } = storeOn(endpoint.handler, attempts);
      await assert.rejects(store.getIrsLimits(2026), (error: unknown) => {
        assert.ok(error instanceof RulesStoreError);
        assert.match(
          error.message,
          new RegExp(`^Failed to read IRS limits for year "2026": ${type} after ${attempts}`),
        );
        assert.equal((error.cause as Error).name, type);
        return true;
      });
      assert.deepEqual(endpoint.targets, Array(attempts).fill("DynamoDB_20120810.GetItem"));
      client.destroy();
    });
  }

  describe("a conditional write the SDK retried has exactly one outcome", () => {
    const SERVER_ERROR = { status: 500, body: { __type: "com.amazonaws.dynamodb.v20120810#InternalServerError" } };
    /** The condition lost to the item sent (its token included), with `changes`. */
    const lostTo = (changes: Record<string, unknown> = {}): Reply => (request) => ({
      status: 400,
      body: {
        __type: "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException",
        message: "The conditional request failed",
        Item: { ...(request.Item as object), ...changes },
      },
    });
    const OTHER = { writeId: { S: "another-call" } };
    const state = batchState("B1", { version: 4 });
    const save = (store: DynamoDBRulesStore) => store.saveBatchState("B1", state, { expectedVersion: 3 });

    it("an answer lost (HTTP 500), then the condition lost to its own token: the write landed", async () => {
      const endpoint = fakeEndpoint([SERVER_ERROR, lostTo()]);
      const { client, store } = storeOn(endpoint.handler, 3);
      await save(store);
      assert.equal(endpoint.targets.length, 2);
      client.destroy();
    });

    it("an answer lost, then the condition lost to an equal item of another call: a ConflictError", async () => {
      // Another call's token, or none (an item written before tokens): never this call's.
      for (const changes of [OTHER, { writeId: undefined }]) {
        const { client, store } = storeOn(fakeEndpoint([SERVER_ERROR, lostTo(changes)]).handler, 3);
        await assert.rejects(save(store), ConflictError);
        client.destroy();
      }
    });

    it("an answer lost, then a later version of another call stored: a RulesStoreError, the outcome unknown", async () => {
      const endpoint = fakeEndpoint([SERVER_ERROR, lostTo({ ...OTHER, version: { N: "5" } })]);
      const { client, store } = storeOn(endpoint.handler, 3);
      await assert.rejects(save(store), (error: unknown) => {
        assert.ok(error instanceof RulesStoreError && !(error instanceof ConflictError));
        assert.equal(
          error.message,
          'Failed to save batch state "B1": the outcome is unknown: an earlier attempt may have landed (it failed ' +
            "with InternalServerError: UnknownError) and another writer has written since (expected version 3, " +
            "stored version is 5); read before writing again",
        );
        assert.equal((error.cause as Error).name, "ConditionalCheckFailedException");
        return true;
      });
      client.destroy();
    });

    it("throttled (never applied), then a later version of another call stored: a ConflictError", async () => {
      const { client, store } = storeOn(
        fakeEndpoint([throttling("ThrottlingException"), lostTo({ ...OTHER, version: { N: "5" } })]).handler,
        3,
      );
      await assert.rejects(save(store), ConflictError);
      client.destroy();
    });
  });

  it("a throttled request that succeeds on retry reads exact decimals through the real unmarshaller", async () => {
    const item = {
      PK: { S: "YEAR#2026" },
      SK: { S: "LIMITS" },
      year: { N: "2026" },
      limits: { M: { tiny: { N: "0.1" }, big: { N: "12345678901234567890" }, exact: { N: DECIMAL_38 } } },
    };
    const endpoint = fakeEndpoint([throttling("ThrottlingException"), { status: 200, body: { Item: item } }]);
    const { client, store } = storeOn(endpoint.handler, 3);
    assert.deepEqual(await store.getIrsLimits(2026), {
      year: 2026,
      limits: { tiny: "0.1", big: "12345678901234567890", exact: DECIMAL_38 },
    });
    assert.equal(endpoint.targets.length, 2);
    client.destroy();
  });

  it("an endpoint that answers with a web page: the error says it answered, naming endpoint and region", async () => {
    const server = createServer((_, response) => {
      response.writeHead(500, { "content-type": "text/html" }).end("<!doctype html><title>Not DynamoDB</title>");
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    const store = new DynamoDBRulesStore({
      region: "xx-fake-9",
      endpointUrl: `http://127.0.0.1:${port}`,
      credentials: CREDENTIALS,
      maxAttempts: 1,
    });
    try {
      await assert.rejects(store.getPipeline("DEFAULT_BiWeeklyFri"), (error: unknown) => {
        assert.ok(error instanceof RulesStoreError);
        assert.ok(
          error.message.startsWith(
            `Failed to read pipeline "DEFAULT_BiWeeklyFri": the endpoint "http://127.0.0.1:${port}" ` +
              '(region "xx-fake-9") answered with something that is not a DynamoDB response (HTTP 500; ' +
              'content type "text/html"; SyntaxError: ',
          ),
          error.message,
        );
        assert.match(error.message, /\); check the endpoint URL and the region$/);
        assert.doesNotMatch(error.message, /Deserialization error/);
        return true;
      });
    } finally {
      await store.close();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it("a store-created client retries maxAttempts times before giving up", async () => {
    const store = new DynamoDBRulesStore({
      region: "us-east-1",
      endpointUrl: "http://127.0.0.1:1",
      credentials: CREDENTIALS,
      maxAttempts: 2,
    });
    await assert.rejects(store.getAgentConfig("intake"), (error: unknown) => {
      assert.ok(error instanceof RulesStoreError);
      assert.equal((error.cause as { $metadata?: { attempts?: number } }).$metadata?.attempts, 2);
      assert.match(error.message, /^Failed to read agent config "intake": .*after 2 attempts/);
      return true;
    });
    await store.close();
  });
});
