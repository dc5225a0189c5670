// The seed against the local AWS endpoint (moto_server): tables and indexes,
// item counts, a second run that changes nothing, a table with the wrong key
// schema, reading back (through the item codec with a document client, and
// through DynamoDBRulesStore), and the script itself as a process.
import assert from "node:assert/strict";
import process from "node:process";
import { after, before, it } from "node:test";
import {
  CreateTableCommand,
  DeleteTableCommand,
  DescribeTableCommand,
  type DynamoDBClient,
  ResourceNotFoundException,
  ScanCommand,
} from "@aws-sdk/client-dynamodb";
import {
  DynamoDBDocumentClient,
  GetCommand,
  QueryCommand,
  ScanCommand as DocumentScanCommand,
} from "@aws-sdk/lib-dynamodb";
import { GetBucketEncryptionCommand } from "@aws-sdk/client-s3";
import { ConfigError } from "../../src/core/errors.ts";
import { itemKeys } from "../../src/core/keys.ts";
import type { CompleteRulesData } from "../../src/core/schema.ts";
import { DynamoDBRulesStore } from "../../src/persistence/dynamodb_backend.ts";
import {
  agentConfigCodec,
  calculationRuleHistoryCodec,
  decodeItem,
  irsLimitsCodec,
  type Item,
  pipelineStepCodec,
} from "../../src/persistence/items.ts";
import { loadSeedData } from "../../src/persistence/seed_data.ts";
import { createSeedClient, runSeed, type SeedReport } from "../../src/persistence/seed.ts";
import { BATCH_STATUS_INDEX, tableName, TABLES } from "../../src/persistence/tables.ts";
import { AWS_ENDPOINT_URL, integrationSuite, probe, useLocalAwsCredentials } from "../support/gate.ts";
import { adminClient, deleteBucket } from "../support/s3.ts";
import { CONFIG_DIR, runSeedScript, type ScriptResult } from "../support/seed_script.ts";

const PLAN = "DEFAULT_BiWeeklyFri";

useLocalAwsCredentials();
const unreachable = await probe(AWS_ENDPOINT_URL);

/** Runs the script; resolves with its exit code and output. */
function runScript(args: string[]): Promise<ScriptResult> {
  return runSeedScript(args, { ...process.env, NO_COLOR: "1" });
}

/** Every item of a table, sorted by key, in the wire format (exact). */
async function scanAll(client: DynamoDBClient, table: string): Promise<unknown[]> {
  const items: Array<Record<string, { S?: string }>> = [];
  let ExclusiveStartKey: Record<string, never> | undefined;
  do {
    const page = await client.send(new ScanCommand({ TableName: table, ExclusiveStartKey, ConsistentRead: true }));
    items.push(...(page.Items ?? []) as typeof items);
    ExclusiveStartKey = page.LastEvaluatedKey as typeof ExclusiveStartKey;
  } while (ExclusiveStartKey !== undefined);
  const key = (item: Record<string, { S?: string }>) => `${item.PK.S}\u0000${item.SK.S}`;
  return items.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}

async function countItems(client: DynamoDBClient, table: string): Promise<number> {
  let count = 0;
  let ExclusiveStartKey: Record<string, never> | undefined;
  do {
    const page = await client.send(new ScanCommand({ TableName: table, Select: "COUNT", ExclusiveStartKey }));
    count += page.Count ?? 0;
    ExclusiveStartKey = page.LastEvaluatedKey as typeof ExclusiveStartKey;
  } while (ExclusiveStartKey !== undefined);
  return count;
}

async function deleteTables(client: DynamoDBClient, suffix: string): Promise<void> {
  await Promise.all(TABLES.map(async (table) => {
    try {
      await client.send(new DeleteTableCommand({ TableName: tableName(table.name, suffix) }));
    } catch (error) {
      if (!(error instanceof ResourceNotFoundException)) throw error;
    }
  }));
}

integrationSuite("seed against DynamoDB (moto)", unreachable, () => {
  const run = crypto.randomUUID().slice(0, 8);
  const suffix = `-seed-${run}`;
  const wrongSuffix = `-seed-wrong-${run}`;
  const scriptSuffix = `-seed-script-${run}`;
  let client: DynamoDBClient;
  let documents: DynamoDBDocumentClient;
  let data: CompleteRulesData;
  let first: SeedReport;
  let firstScan: Map<string, unknown[]>;

  const scanEverything = async () =>
    new Map(
      await Promise.all(TABLES.map(async (table) => {
        const name = tableName(table.name, suffix);
        return [name, await scanAll(client, name)] as const;
      })),
    );

  before(async () => {
    client = createSeedClient({ region: process.env.AWS_REGION ?? "us-east-1", endpointUrl: AWS_ENDPOINT_URL });
    documents = DynamoDBDocumentClient.from(client, { unmarshallOptions: { wrapNumbers: true } });
    data = await loadSeedData(CONFIG_DIR);
    first = await runSeed(client, data, { suffix, ensure: { pollIntervalMs: 20 } });
    firstScan = await scanEverything();
  });

  after(async () => {
    await Promise.all([suffix, wrongSuffix, scriptSuffix].map((s) => deleteTables(client, s)));
    client.destroy();
  });

  it("creates the eight tables with PK (HASH) / SK (RANGE) and the batch-state status index", async () => {
    assert.equal(first.ok, true);
    assert.deepEqual(first.tables.map((table) => table.status), TABLES.map(() => "created"));
    for (const definition of TABLES) {
      const { Table } = await client.send(new DescribeTableCommand({ TableName: tableName(definition.name, suffix) }));
      assert.equal(Table?.TableStatus, "ACTIVE");
      assert.deepEqual(Table?.KeySchema, [
        { AttributeName: "PK", KeyType: "HASH" },
        { AttributeName: "SK", KeyType: "RANGE" },
      ]);
      assert.equal(Table?.BillingModeSummary?.BillingMode, "PAY_PER_REQUEST");
      const indexes = (Table?.GlobalSecondaryIndexes ?? []).map((index) => ({
        name: index.IndexName,
        keys: index.KeySchema?.map((key) => `${key.AttributeName}:${key.KeyType}`),
      }));
      assert.deepEqual(
        indexes,
        definition.globalIndexes.map((index) => ({
          name: index.indexName,
          keys: [`${index.partitionKey}:HASH`, `${index.sortKey}:RANGE`],
        })),
      );
    }
    const batchState = first.tables.find((table) => table.name === "batch-state");
    assert.ok(batchState !== undefined && BATCH_STATUS_INDEX.indexName === "status-updatedAt-index");
  });

  it("writes every seed item, each rule version with its audit record: the count per table is the plan's", async () => {
    assert.equal(first.failed, 0);
    for (const planned of first.plan.tables.filter((table) => table.name !== "audit-log")) {
      assert.equal(await countItems(client, planned.tableName), planned.items, planned.tableName);
    }
    const count = (name: string) => first.plan.tables.find((table) => table.name === name)!.items;
    assert.equal(count("processing-pipeline"), 26);
    assert.equal(
      count("calculation-rules"),
      new Set(data.calculationRules.map((rule) => `${rule.clientId}/${rule.ruleId}`)).size,
    );
    assert.equal(count("irs-limits"), 3);
    assert.equal(count("agent-config"), 5);
    const versions = data.calculationRules.length + data.validationRules.length;
    assert.equal(first.written, 26 + versions + 3 + 5);
    assert.equal(
      await countItems(client, tableName("audit-log", suffix)),
      versions,
      "one audit record per rule version the seed added",
    );
    const store = new DynamoDBRulesStore({ tableSuffix: suffix, client });
    try {
      const changes = await store.listRuleChanges("GLOBAL");
      assert.equal(
        changes.length,
        [...data.calculationRules, ...data.validationRules].filter((rule) => rule.clientId === "GLOBAL").length,
      );
      assert.ok(changes.every((change) => change.actor === "seed" && change.reason === "seed data"));
      assert.ok(changes.every((change) => change.before === null && change.closed === null), "every one an addition");
    } finally {
      await store.close();
    }
  });

  it("a second run finds every table and everything unchanged: no write, no audit record", async () => {
    const second = await runSeed(client, data, { suffix, ensure: { pollIntervalMs: 20 } });
    assert.equal(second.ok, true);
    assert.deepEqual(second.tables.map((table) => table.status), TABLES.map(() => "exists"));
    assert.equal(second.written, 0);
    for (const table of second.tables) {
      assert.deepEqual(
        [table.plan.counts.create, table.plan.counts.update, table.plan.counts.keep],
        [0, 0, 0],
        table.tableName,
      );
    }
    assert.deepEqual(await scanEverything(), firstScan);
  });

  it("reads back through the item codec (document client with wrapNumbers, decodeItem): the seed data, exactly", async () => {
    const pipelineTable = tableName("processing-pipeline", suffix);
    const { Items = [] } = await documents.send(
      new QueryCommand({
        TableName: pipelineTable,
        KeyConditionExpression: "PK = :pk",
        ExpressionAttributeValues: { ":pk": itemKeys.pipelinePartition(PLAN) },
      }),
    );
    const steps = Items.map((item) => decodeItem(pipelineStepCodec, pipelineTable, item as Item));
    assert.deepEqual(steps.map((step) => step.step), Array.from({ length: 26 }, (_, index) => (index + 1) * 100));
    assert.deepEqual(steps, data.pipelineSteps.filter((step) => step.planId === PLAN));

    const calculationTable = tableName("calculation-rules", suffix);
    const rule = async (clientId: string, ruleId: string) => {
      const { Item: found } = await documents.send(
        new GetCommand({ TableName: calculationTable, Key: itemKeys.calculationRule(clientId, ruleId) }),
      );
      return found === undefined
        ? undefined
        : decodeItem(calculationRuleHistoryCodec, calculationTable, found as Item).versions.at(-1);
    };
    // The fallback, by hand: a client without an override has no item, GLOBAL's answers.
    assert.equal(await rule("NEWCO", "FICA_SOCIAL_SECURITY"), undefined);
    assert.deepEqual((await rule("GLOBAL", "FICA_SOCIAL_SECURITY"))?.parameters, { rate: "0.062", wageBase: "184500" });
    assert.deepEqual((await rule("ACME_CORP", "OVERTIME"))?.parameters, { multiplier: "1.5", thresholdHours: "37.5" });

    const irsTable = tableName("irs-limits", suffix);
    const { Items: years = [] } = await documents.send(new DocumentScanCommand({ TableName: irsTable }));
    assert.deepEqual(
      years.map((item) => decodeItem(irsLimitsCodec, irsTable, item as Item)).sort((a, b) => a.year - b.year),
      data.irsLimits,
    );
    const agentTable = tableName("agent-config", suffix);
    const { Item: calculation } = await documents.send(
      new GetCommand({ TableName: agentTable, Key: itemKeys.agentConfig("calculation") }),
    );
    assert.deepEqual(
      decodeItem(agentConfigCodec, agentTable, calculation as Item),
      data.agentConfigs.find((config) => config.agent === "calculation"),
    );
  });

  it("reads back through the DynamoDB store: 26 sorted steps, the GLOBAL fallback, the client's override", async () => {
    const store = new DynamoDBRulesStore({ tableSuffix: suffix, client });
    try {
      const steps = await store.getPipeline(PLAN);
      assert.equal(steps.length, 26);
      assert.deepEqual(steps.map((step) => step.step), [...steps.map((step) => step.step)].sort((a, b) => a - b));
      assert.equal(steps[0].name, data.pipelineSteps[0].name);

      const fallback = await store.getCalculationRule("NEWCO", "OVERTIME");
      assert.equal(fallback.scope, "GLOBAL");
      assert.equal(fallback.clientId, "GLOBAL");
      assert.deepEqual(fallback.parameters, { multiplier: "1.5", thresholdHours: "40" });

      const own = await store.getCalculationRule("ACME_CORP", "OVERTIME");
      assert.equal(own.scope, "CLIENT");
      assert.deepEqual(own.parameters, { multiplier: "1.5", thresholdHours: "37.5" });
      assert.equal((await store.getCalculationRule("ACME_CORP", "FICA_MEDICARE")).scope, "GLOBAL");

      const acmeIds = await store.getValidationRules("ACME_CORP", "employeeId");
      assert.ok(acmeIds.length > 0 && acmeIds.every((rule) => rule.scope === "CLIENT"));
      const newcoIds = await store.getValidationRules("NEWCO", "employeeId");
      assert.ok(newcoIds.length > 0 && newcoIds.every((rule) => rule.scope === "GLOBAL"));
      assert.equal((await store.getIrsLimits(2025)).limits.socialSecurityWageBase, "176100");
    } finally {
      await store.close();
    }
  });

  it("rejects an existing table with the wrong key schema, changes it not and writes nothing to it", async () => {
    const wrong = tableName("calculation-rules", wrongSuffix);
    await client.send(
      new CreateTableCommand({
        TableName: wrong,
        BillingMode: "PAY_PER_REQUEST",
        AttributeDefinitions: [{ AttributeName: "id", AttributeType: "S" }],
        KeySchema: [{ AttributeName: "id", KeyType: "HASH" }],
      }),
    );
    await assert.rejects(
      runSeed(client, data, { suffix: wrongSuffix, only: ["calculation-rules"], ensure: { pollIntervalMs: 20 } }),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.match(error.message, new RegExp(`Table "${wrong}" exists but its key schema is "id:HASH"`));
        return true;
      },
    );
    const { Table } = await client.send(new DescribeTableCommand({ TableName: wrong }));
    assert.deepEqual(Table?.KeySchema, [{ AttributeName: "id", KeyType: "HASH" }]);
    assert.equal(await countItems(client, wrong), 0);
  });

  it("the script plans without a target: exit 0 and the plan summary", async () => {
    const result = await runScript(["--table-suffix", "-dev"]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^Summary: plan only, nothing written: 8 tables and \d+ items; pass/m);
  });

  it("the script seeds moto and creates the bucket: exit 0 and the summary line, and again with everything existing", async () => {
    const bucket = `bluestar-seed-script-${run}`.toLowerCase();
    const args = ["--endpoint-url", AWS_ENDPOINT_URL, "--table-suffix", scriptSuffix, "--s3-bucket", bucket];
    const once = await runScript(args);
    assert.equal(once.code, 0, once.stderr);
    assert.match(once.stdout, /^ {2}bucket .*: created$/m);
    assert.match(
      once.stdout,
      /^Summary: 8 tables \(8 created, 0 existed\), 77 created, 0 updated, 0 unchanged, 0 kept, 0 deleted, in \d+\.\d s$/m,
    );
    const twice = await runScript(args);
    assert.equal(twice.code, 0, twice.stderr);
    assert.match(twice.stdout, /^ {2}bucket .*: exists$/m);
    assert.match(
      twice.stdout,
      /^Summary: 8 tables \(0 created, 8 existed\), 0 created, 0 updated, 77 unchanged, 0 kept, 0 deleted, in \d+\.\d s$/m,
    );
    assert.equal(twice.stderr, "");
    const s3 = adminClient();
    try {
      const encryption = await s3.send(new GetBucketEncryptionCommand({ Bucket: bucket }));
      const [rule] = encryption.ServerSideEncryptionConfiguration?.Rules ?? [];
      assert.equal(rule?.ApplyServerSideEncryptionByDefault?.SSEAlgorithm, "AES256");
      await deleteBucket(s3, bucket);
    } finally {
      s3.destroy();
    }
  });
});
