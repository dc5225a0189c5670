// DynamoDB on the local endpoint for tests: a client that counts what it
// sends, fresh tables under a unique suffix loaded with reference data, and
// a store on them (and another, with faults injected).
import process from "node:process";
import { DeleteTableCommand, DynamoDBClient, type DynamoDBClientConfig } from "@aws-sdk/client-dynamodb";
import { type CalculationRuleRecord, InvalidInputError, type RulesData, tableName, TABLES } from "../../mod.ts";
import { type CompleteRulesData, decodeRulesData, problemText } from "../../src/core/schema.ts";
import { DynamoDBRulesStore, type DynamoDBRulesStoreOptions } from "../../src/persistence/dynamodb_backend.ts";
import { ensureTables, rulesDataItems, writeItems } from "../../src/persistence/provision.ts";
import { calculationRuleHistoryCodec, groupCalculationRules, type Item } from "../../src/persistence/items.ts";
import { type FaultLog, type FaultPlan, injectFaults } from "./faults.ts";
import { AWS_ENDPOINT_URL, useLocalAwsCredentials } from "./gate.ts";

useLocalAwsCredentials();

/** A client and the HTTP requests it sent (retries included), by operation. */
export interface CountingClient {
  client: DynamoDBClient;
  requests: Map<string, number>;
  total(): number;
}

/**
 * A client on the local endpoint that counts the HTTP requests it sends
 * (retries included), by operation.
 *
 * @param config Extra client configuration (credentials, `maxAttempts`, ...).
 */
export function countingClient(config: DynamoDBClientConfig = {}): CountingClient {
  const client = new DynamoDBClient({ endpoint: AWS_ENDPOINT_URL, region: process.env.AWS_REGION, ...config });
  const requests = new Map<string, number>();
  client.middlewareStack.add(
    (next, context) => (args) => {
      const operation = String(context.commandName ?? "unknown").replace(/Command$/, "");
      requests.set(operation, (requests.get(operation) ?? 0) + 1);
      return next(args);
    },
    // The deserialize step runs inside the retry middleware: once per attempt on the wire.
    { step: "deserialize", name: "countRequests", priority: "high" },
  );
  return { client, requests, total: () => [...requests.values()].reduce((sum, n) => sum + n, 0) };
}

/** Decodes a data set as the seed does: bad data is an InvalidInputError before anything is written. */
export function decodeSeed(data: RulesData): CompleteRulesData {
  const decoded = decodeRulesData(data);
  if (!decoded.ok) {
    throw new InvalidInputError(`Failed to load rules data: ${decoded.problems.map(problemText).join("; ")}`);
  }
  return decoded.value;
}

/** A table suffix no other suite uses. */
export function uniqueSuffix(label = "it"): string {
  return `-${label}-${crypto.randomUUID().slice(0, 8)}`;
}

/** Creates every table under the suffix and loads the data set into them. */
export async function createTables(client: DynamoDBClient, suffix: string, data: RulesData = {}): Promise<void> {
  await ensureTables(client, suffix, { pollIntervalMs: 20 });
  for (const { table, items } of rulesDataItems(decodeSeed(data))) {
    await writeItems(client, tableName(table, suffix), items);
  }
}

/** Deletes every table under the suffix. */
export async function deleteTables(client: DynamoDBClient, suffix: string): Promise<void> {
  await Promise.all(
    TABLES.map((table) => client.send(new DeleteTableCommand({ TableName: tableName(table.name, suffix) }))),
  );
}

/**
 * A store on the tables of a suffix through a client of its own that injects
 * the plan's faults (see `injectFaults`): a second writer, next to another
 * store on the same tables.
 *
 * @param suffix The tables' suffix.
 * @param plan Which attempts fail, and how.
 * @param config Extra client configuration (`maxAttempts`, ...).
 */
export function storeWithFaults(
  suffix: string,
  plan: FaultPlan,
  config: DynamoDBClientConfig = {},
): { store: DynamoDBRulesStore; faults: FaultLog; close: () => Promise<void> } {
  const { client } = countingClient(config);
  const faults = injectFaults(client, plan);
  const store = new DynamoDBRulesStore({ client, tableSuffix: suffix });
  return {
    store,
    faults,
    close: async () => {
      await store.close();
      client.destroy();
    },
  };
}

/** Fresh tables under a unique suffix, loaded with data, and a store on them through a counting client. */
export async function openStore(
  data: RulesData,
  options: Omit<DynamoDBRulesStoreOptions, "client" | "tableSuffix"> = {},
): Promise<
  CountingClient & {
    store: DynamoDBRulesStore;
    suffix: string;
    cleanup: () => Promise<void>;
    peer: () => Promise<DynamoDBRulesStore>;
    failNextRuleChangeAudit: () => void;
  }
> {
  const counting = countingClient();
  const { client } = counting;
  const suffix = uniqueSuffix();
  await createTables(client, suffix, data);
  counting.requests.clear();
  const store = new DynamoDBRulesStore({ ...options, client, tableSuffix: suffix });
  const peers: DynamoDBRulesStore[] = [];
  let failAudit = false;
  client.middlewareStack.add(
    (next, context) => (args) => {
      const input = args.input as { TransactItems?: Array<{ Put?: { TableName?: string } }> };
      if (failAudit && context.commandName === "TransactWriteItemsCommand" && input.TransactItems?.[1]?.Put) {
        failAudit = false;
        // The audit record's part of the transaction goes to a table that does not exist: the whole write fails.
        const items = [...input.TransactItems];
        items[1] = { ...items[1], Put: { ...items[1].Put, TableName: `bluestar-no-such-table${suffix}` } };
        return next({ ...args, input: { ...input, TransactItems: items } });
      }
      return next(args);
    },
    { step: "initialize", name: "failRuleChangeAudit" },
  );
  return {
    ...counting,
    store,
    suffix,
    // Another process, as far as a reader can tell: its own store (and memo, and single flight), the same cache.
    peer: () => {
      const peer = new DynamoDBRulesStore({ ...options, client, tableSuffix: suffix });
      peers.push(peer);
      return Promise.resolve(peer);
    },
    failNextRuleChangeAudit: () => {
      failAudit = true;
    },
    cleanup: async () => {
      await store.close();
      await Promise.all(peers.map((peer) => peer.close()));
      await deleteTables(client, suffix);
      client.destroy();
    },
  };
}

/** The stored item of one calculation rule version: its owner's item holding just that version. */
export function calculationRuleItem(rule: CalculationRuleRecord): Item {
  return calculationRuleHistoryCodec.toItem(groupCalculationRules([rule])[0]);
}
