// Seeding 10,000 calculation rules against the local AWS endpoint (moto):
// writeItems (the seed's batch writer) against sequential PutItem and against
// a hand-written loop of four concurrent raw BatchWriteItem calls. Each
// iteration writes into a fresh table; creating and deleting it is not timed.
//
//   deno bench -A bench/seed_bench.ts
//
// moto is shared by every suite that runs at the same time; for steadier
// numbers give the bench its own: BLUESTAR_AWS_ENDPOINT_URL=http://127.0.0.1:4599
// with `moto_server -H 127.0.0.1 -p 4599` running.
//
// Targets: writeItems at least 10x sequential puts, and at least 0.9x the raw loop.
import process from "node:process";
import {
  BatchWriteItemCommand,
  DeleteTableCommand,
  type DynamoDBClient,
  PutItemCommand,
  type WriteRequest,
} from "@aws-sdk/client-dynamodb";
import { marshall } from "@aws-sdk/util-dynamodb";
import type { CalculationRuleRecord } from "../src/core/types.ts";
import { calculationRuleHistoryCodec, groupCalculationRules } from "../src/persistence/items.ts";
import { chunk, ensureTables, writeItems } from "../src/persistence/provision.ts";
import { createSeedClient } from "../src/persistence/seed.ts";
import { tableName, TABLES } from "../src/persistence/tables.ts";
import { AWS_ENDPOINT_URL, probe, useLocalAwsCredentials } from "../tests/support/gate.ts";

const RULES = 10_000;
const GROUP = `seed ${RULES.toLocaleString("en-US")} calculation rules`;

useLocalAwsCredentials();
const unreachable = await probe(AWS_ENDPOINT_URL);
if (unreachable !== undefined) console.warn(`Skipping the seed benchmarks: ${unreachable}`);

const client: DynamoDBClient = createSeedClient({
  region: process.env.AWS_REGION ?? "us-east-1",
  endpointUrl: AWS_ENDPOINT_URL,
});

const rules: CalculationRuleRecord[] = Array.from({ length: RULES }, (_, index) => ({
  clientId: `CLIENT_${String(index % 100).padStart(3, "0")}`,
  ruleId: `RULE_${String(index).padStart(5, "0")}`,
  ruleType: "percentage_up_to_wage_base",
  description: `Generated rule ${index}`,
  parameters: { rate: "0.062", wageBase: "184500", threshold: `${index}.25` },
  effectiveFrom: "2026-01-01",
  effectiveTo: index % 2 === 0 ? null : "2026-12-31",
}));
const items = groupCalculationRules(rules).map(calculationRuleHistoryCodec.toItem);
const marshalled = items.map((item) => marshall(item, { removeUndefinedValues: true }));
const calculationRules = TABLES.filter((table) => table.name === "calculation-rules");

/** A fresh calculation-rules table for one iteration; the timed part runs between `b.start()` and `b.end()`. */
async function withFreshTable(b: Deno.BenchContext, write: (table: string) => Promise<void>): Promise<void> {
  const suffix = `-bench-${crypto.randomUUID().slice(0, 8)}`;
  await ensureTables(client, suffix, { tables: calculationRules, pollIntervalMs: 20 });
  const table = tableName("calculation-rules", suffix);
  try {
    b.start();
    await write(table);
    b.end();
  } finally {
    await client.send(new DeleteTableCommand({ TableName: table }));
  }
}

// Few iterations: sequential puts take minutes. (Deno runs one warmup even at `warmup: 0`.)
const options = { group: GROUP, ignore: unreachable !== undefined } as const;

Deno.bench({
  ...options,
  name: "writeItems (BatchWriteItem x 25, 4 concurrent, retries)",
  baseline: true,
  n: 3,
  warmup: 1,
  async fn(b) {
    await withFreshTable(b, async (table) => {
      const { written } = await writeItems(client, table, items);
      if (written !== RULES) throw new Error(`Only ${written} of ${RULES} items landed`);
    });
  },
});

Deno.bench({
  ...options,
  name: "sequential PutItem",
  n: 1,
  warmup: 0,
  async fn(b) {
    await withFreshTable(b, async (table) => {
      for (const item of marshalled) await client.send(new PutItemCommand({ TableName: table, Item: item }));
    });
  },
});

Deno.bench({
  ...options,
  name: "raw BatchWriteItem loop, 4 concurrent",
  n: 3,
  warmup: 1,
  async fn(b) {
    await withFreshTable(b, async (table) => {
      const batches = chunk(marshalled.map((item): WriteRequest => ({ PutRequest: { Item: item } })));
      let next = 0;
      const worker = async () => {
        while (next < batches.length) {
          let pending = batches[next++];
          while (pending.length > 0) {
            const { UnprocessedItems } = await client.send(
              new BatchWriteItemCommand({ RequestItems: { [table]: pending } }),
            );
            pending = UnprocessedItems?.[table] ?? [];
          }
        }
      };
      await Promise.all(Array.from({ length: 4 }, worker));
    });
  },
});
