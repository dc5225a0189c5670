// DynamoDBRulesStore against moto (or LocalStack): the contract suite with
// and without a cache, pagination, exact numbers, conditional writes, and
// request counts measured on the wire.
import assert from "node:assert/strict";
import process from "node:process";
import { after, before, describe, it } from "node:test";
import { GetItemCommand } from "@aws-sdk/client-dynamodb";
import {
  ConflictError,
  type ICacheBackend,
  InvalidInputError,
  MemoryCacheBackend,
  RuleNotFoundError,
  RulesStoreError,
  tableName,
} from "../../mod.ts";
import { DynamoDBRulesStore } from "../../src/persistence/dynamodb_backend.ts";
import { auditEntry, batchState, DECIMAL_38, RULES_FIXTURE, uniqueId } from "../contract/fixtures.ts";
import { rulesStoreContract } from "../contract/rules_store_contract.ts";
import { decodeSeed, openStore, uniqueSuffix } from "../support/dynamodb.ts";
import { AWS_ENDPOINT_URL, integrationSuite, probe, useLocalAwsCredentials } from "../support/gate.ts";

useLocalAwsCredentials();
const unreachable = await probe(AWS_ENDPOINT_URL);

integrationSuite("DynamoDBRulesStore on moto", unreachable, () => {
  rulesStoreContract("DynamoDBRulesStore (moto, no cache)", (data, options) => openStore(data, options));

  rulesStoreContract(
    "DynamoDBRulesStore (moto, MemoryCacheBackend)",
    (data, options) => openStore(data, { ...options, cache: new MemoryCacheBackend() }),
  );

  describe("DynamoDBRulesStore (moto): pagination", () => {
    let subject: Awaited<ReturnType<typeof openStore>>;
    const bigName = (step: number) => `Step ${step} `.padEnd(4000, "x");
    before(async () => {
      subject = await openStore({
        pipelineSteps: Array.from({ length: 300 }, (_, index) => ({
          planId: "BIG_PLAN",
          step: (index + 1) * 10,
          name: bigName((index + 1) * 10),
          agent: "calculation" as const,
          action: "compute",
          required: true,
          timeoutSeconds: 60,
          retry: { maxAttempts: 1, backoffSeconds: 0 },
          calculationRules: [],
        })),
      });
    });
    after(() => subject?.cleanup());

    it("getPipeline() follows LastEvaluatedKey through every page of a partition over 1 MB", async () => {
      const steps = await subject.store.getPipeline("BIG_PLAN");
      assert.equal(steps.length, 300);
      assert.deepEqual(steps.map((s) => s.step), Array.from({ length: 300 }, (_, index) => (index + 1) * 10));
      assert.equal(steps[299].name, bigName(3000));
      assert.ok((subject.requests.get("Query") ?? 0) >= 2, `expected 2+ pages, got ${subject.requests.get("Query")}`);
    });

    it("listAuditEntries() returns every entry of a trail over 1 MB, in timestamp order", async () => {
      const batchId = uniqueId("batch");
      const count = 60;
      for (let index = 0; index < count; index++) {
        await subject.store.appendAuditEntry(
          auditEntry(batchId, `e${String(index).padStart(3, "0")}`, {
            timestamp: new Date(Date.UTC(2026, 10, 27, 10, 0, count - index)).toISOString(),
            details: { blob: "y".repeat(20_000), index },
          }),
        );
      }
      subject.requests.clear();
      const entries = await subject.store.listAuditEntries(batchId);
      assert.equal(entries.length, count);
      assert.deepEqual(entries.map((e) => e.details.index), Array.from({ length: count }, (_, i) => count - 1 - i));
      assert.ok((subject.requests.get("Query") ?? 0) >= 2, `expected 2+ pages, got ${subject.requests.get("Query")}`);
    });
  });

  describe("DynamoDBRulesStore (moto): exact numbers", () => {
    const values = {
      tenth: "0.1",
      rate: "0.062",
      wageBase: "184500.00",
      twenty: "12345678901234567890",
      exact: DECIMAL_38,
      tiny: "0.00000000000000000000000000000000000001",
      negative: "-99999999999999999999999999999999999999",
    };
    const canonical = {
      tenth: "0.1",
      rate: "0.062",
      wageBase: "184500",
      twenty: "12345678901234567890",
      exact: DECIMAL_38,
      tiny: "0.00000000000000000000000000000000000001",
      negative: "-99999999999999999999999999999999999999",
    };
    const rule = {
      clientId: "GLOBAL",
      ruleId: "NUMBERS",
      ruleType: "table",
      description: "Exact numbers",
      parameters: values,
      effectiveFrom: "2026-01-01",
      effectiveTo: null,
    };
    let subject: Awaited<ReturnType<typeof openStore>>;
    before(async () => {
      subject = await openStore({ calculationRules: [rule], irsLimits: [{ year: 2030, limits: values }] });
    });
    after(() => subject?.cleanup());

    it("calculation-rule parameters come back with exactly the same decimal values", async () => {
      const read = await subject.store.getCalculationRule("ACME", "NUMBERS");
      assert.deepEqual(read.parameters, canonical);
    });

    it("IRS limits come back with exactly the same decimal values", async () => {
      assert.deepEqual(await subject.store.getIrsLimits(2030), { year: 2030, limits: canonical });
    });

    it("DynamoDB holds the canonical decimal text as a number attribute", async () => {
      const { Item } = await subject.client.send(
        new GetItemCommand({
          TableName: tableName("irs-limits", subject.suffix),
          Key: { PK: { S: "YEAR#2030" }, SK: { S: "LIMITS" } },
        }),
      );
      const limits = Item?.limits?.M ?? {};
      assert.deepEqual(
        Object.fromEntries(Object.entries(limits).map(([key, value]) => [key, value.N])),
        canonical,
      );
    });

    it("a 39-digit value is an InvalidInputError before anything is written", async () => {
      subject.requests.clear();
      assert.throws(
        () => decodeSeed({ irsLimits: [{ year: 2031, limits: { big: "1".repeat(39) } }] }),
        (error: unknown) => {
          assert.ok(error instanceof InvalidInputError);
          assert.match(error.message, /39 significant digits, over the limit of 38/);
          return true;
        },
      );
      assert.equal(subject.total(), 0);
      await assert.rejects(subject.store.getIrsLimits(2031), { code: "IRS_LIMITS_NOT_FOUND" });
    });
  });

  describe("DynamoDBRulesStore (moto): conditional writes", () => {
    let subject: Awaited<ReturnType<typeof openStore>>;
    before(async () => {
      subject = await openStore({});
    });
    after(() => subject?.cleanup());

    it("a stale version is a ConflictError naming the stored version, and nothing changes", async () => {
      const batchId = uniqueId("batch");
      await subject.store.saveBatchState(batchId, batchState(batchId, { version: 1 }), { expectedVersion: 0 });
      await subject.store.saveBatchState(batchId, batchState(batchId, { version: 2 }), { expectedVersion: 1 });
      await assert.rejects(
        subject.store.saveBatchState(batchId, batchState(batchId, { version: 3, status: "failed" }), {
          expectedVersion: 1,
        }),
        (error: unknown) => {
          assert.ok(error instanceof ConflictError);
          assert.match(error.message, /expected version 1, stored version is 2/);
          assert.equal((error.cause as Error).name, "ConditionalCheckFailedException");
          return true;
        },
      );
      assert.deepEqual(await subject.store.getBatchState(batchId), batchState(batchId, { version: 2 }));
    });

    it("a taken audit entry id is a ConflictError and the first entry stays", async () => {
      const batchId = uniqueId("batch");
      const first = auditEntry(batchId, "e1");
      await subject.store.appendAuditEntry(first);
      await assert.rejects(
        subject.store.appendAuditEntry(auditEntry(batchId, "e1", { actor: "intruder", details: {} })),
        ConflictError,
      );
      assert.deepEqual(await subject.store.listAuditEntries(batchId), [first]);
    });

    it("a conditional write stores its write token with the item, and no read returns it", async () => {
      const batchId = uniqueId("batch");
      const state = batchState(batchId, { version: 1, status: "awaiting_approval" });
      const entry = auditEntry(batchId, "e1");
      await subject.store.saveBatchState(batchId, state, { expectedVersion: 0 });
      await subject.store.appendAuditEntry(entry);
      const raw = await subject.client.send(
        new GetItemCommand({
          TableName: tableName("batch-state", subject.suffix),
          Key: { PK: { S: `BATCH#${batchId}` }, SK: { S: "STATE" } },
        }),
      );
      assert.match(raw.Item?.writeId?.S ?? "", /^[0-9a-f-]{36}$/);
      assert.deepEqual(await subject.store.getBatchState(batchId), state);
      assert.deepEqual(
        (await subject.store.listBatchesByStatus("awaiting_approval")).filter((found) => found.batchId === batchId),
        [state],
      );
      assert.deepEqual(await subject.store.listAuditEntries(batchId), [entry]);
    });

    it("a state DynamoDB could not hold (over 400 KB) is refused before any request and nothing is stored", async () => {
      const batchId = uniqueId("batch");
      const state = batchState(batchId, { data: { blob: "z".repeat(420_000) } });
      subject.requests.clear();
      await assert.rejects(subject.store.saveBatchState(batchId, state), (error: unknown) => {
        assert.equal((error as { code?: string }).code, "INVALID_INPUT");
        assert.match((error as Error).message, /over the limit of 262144/);
        return true;
      });
      assert.equal(subject.total(), 0);
      assert.equal(await subject.store.getBatchState(batchId), null);
    });
  });

  describe("DynamoDBRulesStore (moto): errors a new user meets", () => {
    it("tables not seeded: the error names the table and the suffix, and gives the seed command", async () => {
      const suffix = uniqueSuffix("unseeded");
      const endpoint = new URL(AWS_ENDPOINT_URL).origin;
      const region = process.env.AWS_REGION!;
      // Credentials in the endpoint URL are refused (AWS endpoints never take them), and never shown.
      const withUser = new URL(AWS_ENDPOINT_URL);
      withUser.username = "admin";
      withUser.password = "pw-in-the-url";
      assert.throws(() => new DynamoDBRulesStore({ tableSuffix: suffix, region, endpointUrl: withUser.href }), {
        name: "ConfigError",
        message: `Invalid DynamoDB rules store options: endpointUrl ${
          JSON.stringify(`${withUser.protocol}//[redacted]@${withUser.host}${withUser.pathname}`)
        } carries credentials (AWS credentials come from the environment, a profile or a role)`,
      });
      const store = new DynamoDBRulesStore({ tableSuffix: suffix, region, endpointUrl: AWS_ENDPOINT_URL });
      try {
        await assert.rejects(store.getPipeline("DEFAULT_BiWeeklyFri"), (error: unknown) => {
          assert.ok(error instanceof RulesStoreError);
          assert.equal(
            error.message,
            `Failed to read pipeline "DEFAULT_BiWeeklyFri": table "bluestar-processing-pipeline${suffix}" does not ` +
              `exist at endpoint ${JSON.stringify(endpoint)} in region ${JSON.stringify(region)} ` +
              `(ResourceNotFoundException); create the tables of table suffix ${JSON.stringify(suffix)} with ` +
              `\`deno task seed --endpoint-url ${endpoint} --region ${region} --table-suffix ${suffix}\``,
          );
          return true;
        });
        await assert.rejects(
          store.saveBatchState("B1", batchState("B1"), { expectedVersion: 0 }),
          {
            message: new RegExp(
              `^Failed to save batch state "B1": table "bluestar-batch-state${suffix}" does not exist `,
            ),
          },
        );
      } finally {
        await store.close();
      }
    });
  });

  describe("DynamoDBRulesStore (moto): requests on the wire", () => {
    let subject: Awaited<ReturnType<typeof openStore>>;
    const extraRules = Array.from({ length: 4 }, (_, index) => ({
      clientId: "GLOBAL",
      ruleId: `RULE_${index}`,
      ruleType: "flat",
      description: `Rule ${index}`,
      parameters: { amount: `${index}.5` },
      effectiveFrom: "2026-01-01",
      effectiveTo: null,
    }));
    before(async () => {
      subject = await openStore({
        ...RULES_FIXTURE,
        calculationRules: [...RULES_FIXTURE.calculationRules!, ...extraRules],
      });
    });
    after(() => subject?.cleanup());

    /** A second store on the same tables and client, so the counter sees it. */
    function storeWith(cache?: ICacheBackend): DynamoDBRulesStore {
      return new DynamoDBRulesStore({ client: subject.client, tableSuffix: subject.suffix, cache });
    }

    it("the CLIENT -> GLOBAL fallback is one BatchGetItem", async () => {
      const store = storeWith();
      subject.requests.clear();
      const rule = await store.getCalculationRule("ACME", "FICA_SS");
      assert.equal(rule.scope, "GLOBAL");
      assert.deepEqual(Object.fromEntries(subject.requests), { BatchGetItem: 1 });
      subject.requests.clear();
      await store.getValidationRules("ACME", "ssn");
      assert.deepEqual(Object.fromEntries(subject.requests), { BatchGetItem: 1 });
      await store.close();
    });

    it("a cache hit sends no request, the GLOBAL fallback answer included", async () => {
      const store = storeWith(new MemoryCacheBackend());
      const reads = () =>
        Promise.all([
          store.getCalculationRule("ACME", "FICA_SS"),
          store.getValidationRules("ACME", "ssn"),
          store.getPipeline("PLAN_A"),
          store.getIrsLimits(2026),
          store.getAgentConfig("calculation"),
        ]);
      subject.requests.clear();
      const cold = await reads();
      assert.deepEqual(Object.fromEntries(subject.requests), { BatchGetItem: 2, Query: 1, GetItem: 2 });
      subject.requests.clear();
      const warm = await reads();
      assert.equal(subject.total(), 0);
      assert.deepEqual(warm, cold);
      assert.equal(warm[0].scope, "GLOBAL");
      await store.close();
    });

    it("rules over time, counted on the wire: a cold read is one BatchGetItem for any date, a warm read none, a change writes through", async () => {
      const ruleId = uniqueId("YEARLY");
      const field = uniqueId("field");
      const writer = storeWith();
      for (const [year, wageBase] of [[2024, "168600"], [2025, "176100"], [2026, "184500"]] as const) {
        await writer.putCalculationRule({
          clientId: "GLOBAL",
          ruleId,
          ruleType: "percentage_up_to_wage_base",
          description: `Social Security ${year}`,
          parameters: { rate: "0.062", wageBase },
          effectiveFrom: `${year}-01-01`,
          effectiveTo: `${year}-12-31`,
        }, { actor: "test", reason: `IRS limits ${year}` });
      }
      await writer.putValidationRule({
        clientId: "GLOBAL",
        field,
        ruleId: "r",
        ruleType: "required",
        severity: "warning",
        message: "Required",
        effectiveFrom: "2024-01-01",
      }, { actor: "test", reason: "fallback" });
      await writer.putValidationRule({
        clientId: "ACME",
        field,
        ruleId: "r",
        ruleType: "required",
        severity: "error",
        message: "Required",
        effectiveFrom: "2025-07-01",
      }, { actor: "test", reason: "override" });
      const dates = ["2024-06-13", "2025-06-13", "2026-06-12", "2024-01-01", "2026-12-31"];
      for (const clientId of ["ACME", "GLOBAL"]) {
        const store = storeWith(new MemoryCacheBackend());
        subject.requests.clear();
        const [cold, ...others] = dates;
        assert.equal((await store.getCalculationRule(clientId, ruleId, { asOf: cold })).parameters.wageBase, "168600");
        assert.deepEqual(Object.fromEntries(subject.requests), { BatchGetItem: 1 }, `${clientId}: cold`);
        subject.requests.clear();
        const wageBases = [];
        for (const asOf of others) {
          wageBases.push((await store.getCalculationRule(clientId, ruleId, { asOf })).parameters.wageBase);
        }
        assert.deepEqual(wageBases, ["176100", "184500", "168600", "184500"]);
        assert.equal(subject.total(), 0, `${clientId}: warm reads for other dates`);
        await assert.rejects(store.getCalculationRule(clientId, ruleId, { asOf: "2027-01-01" }), RuleNotFoundError);
        assert.equal(subject.total(), 0, `${clientId}: a date no version covers, answered from the cache`);
        // Validation rules: the same.
        subject.requests.clear();
        await store.getValidationRules(clientId, field, { asOf: "2025-06-30" });
        assert.deepEqual(Object.fromEntries(subject.requests), { BatchGetItem: 1 }, `${clientId}: cold validation`);
        subject.requests.clear();
        for (const asOf of ["2025-07-01", "2024-01-01", "2030-01-01"]) {
          await store.getValidationRules(clientId, field, { asOf });
        }
        assert.equal(subject.total(), 0, `${clientId}: warm validation reads`);
        await store.close();
      }
      // A change costs one consistent GetItem and one TransactWriteItems, and writes its owner's entry through:
      // the next reads find the new version in the cache.
      const cache = new MemoryCacheBackend();
      const store = storeWith(cache);
      await store.getCalculationRule("ACME", ruleId, { asOf: "2025-06-13" });
      subject.requests.clear();
      await store.putCalculationRule({
        clientId: "GLOBAL",
        ruleId,
        ruleType: "percentage_up_to_wage_base",
        description: "Social Security 2025, corrected",
        parameters: { rate: "0.062", wageBase: "176100" },
        effectiveFrom: "2025-01-01",
        effectiveTo: "2025-12-31",
      }, { actor: "test", reason: "correction", expectedRevision: 1 });
      assert.deepEqual(Object.fromEntries(subject.requests), { GetItem: 1, TransactWriteItems: 1 });
      subject.requests.clear();
      const corrected = await store.getCalculationRule("ACME", ruleId, { asOf: "2025-06-13" });
      assert.deepEqual([corrected.description, corrected.revision], ["Social Security 2025, corrected", 2]);
      await store.getCalculationRule("ACME", ruleId, { asOf: "2024-06-13" });
      assert.equal(subject.total(), 0, "read from the entry the change wrote through");
      await writer.close();
      await store.close();
    });

    it("100 simultaneous cold reads of one rule send one request, with and without a cache", async () => {
      for (const [index, cache] of [undefined, new MemoryCacheBackend()].entries()) {
        const store = storeWith(cache);
        subject.requests.clear();
        const reads = await Promise.all(
          Array.from({ length: 100 }, () => store.getCalculationRule("ACME", `RULE_${index}`)),
        );
        assert.equal(subject.total(), 1);
        assert.ok(reads.every((rule) => rule.parameters.amount === `${index}.5`));
        assert.throws(() => {
          reads[0].parameters.amount = "changed";
        }, TypeError);
        assert.equal(reads[1].parameters.amount, `${index}.5`);
        await store.close();
      }
    });
  });
});
