/**
 * Provisioning DynamoDB from the table definitions: create the tables
 * (idempotently, checked), and write items in batches that retry what
 * DynamoDB leaves unprocessed. The seed script and the integration tests use
 * it; agents never need it.
 *
 * @module
 */

import {
  type AttributeDefinition,
  BatchWriteItemCommand,
  CreateTableCommand,
  DescribeTableCommand,
  DescribeTimeToLiveCommand,
  type DynamoDBClient,
  ResourceInUseException,
  ResourceNotFoundException,
  type TableDescription,
  UpdateTimeToLiveCommand,
  type WriteRequest,
} from "@aws-sdk/client-dynamodb";
import { marshall } from "@aws-sdk/util-dynamodb";
import { CreateBucketCommand, HeadBucketCommand, PutBucketEncryptionCommand, type S3Client } from "@aws-sdk/client-s3";
import { ConfigError, FileStoreError, InvalidInputError, quote, RulesStoreError } from "../core/errors.ts";
import { mapConcurrently } from "../core/concurrency.ts";
import type { CompleteRulesData } from "../core/schema.ts";
import type { ItemKey } from "../core/keys.ts";
import { backoffDelay, sleep } from "../core/time.ts";
import {
  agentConfigCodec,
  calculationRuleHistoryCodec,
  groupCalculationRules,
  groupValidationRules,
  irsLimitsCodec,
  type Item,
  pipelineStepCodec,
  validationRuleGroupCodec,
} from "./items.ts";
import { type TableDefinition, type TableName, tableName, TABLES } from "./tables.ts";
import { describeAwsError, safeCause } from "./aws_errors.ts";

/** What happened to one table. */
export interface TableOutcome {
  /** The physical table name. */
  tableName: string;
  /** Whether this run created it or found it. */
  status: "created" | "exists";
  /** Whether this run turned TTL on. */
  ttlEnabled: boolean;
  /** How long it took, in milliseconds. */
  elapsedMs: number;
}

/** Options of {@linkcode ensureTables}. */
export interface EnsureTablesOptions {
  /**
   * The tables to ensure.
   *
   * @default {TABLES}
   */
  tables?: readonly TableDefinition[];
  /**
   * How long to wait between status polls, in milliseconds (the SDK waiter's
   * 20-second minimum is far too slow against a local endpoint).
   *
   * @default {100}
   */
  pollIntervalMs?: number;
  /**
   * How long a table may take to become ACTIVE, in milliseconds.
   *
   * @default {120000}
   */
  activeTimeoutMs?: number;
  /** Called as each table is done. */
  onTable?: (outcome: TableOutcome) => void;
}

/**
 * Creates every table that does not exist yet, in parallel, waits until each
 * is ACTIVE and turns TTL on where the definition has it. A table that exists
 * is checked, not changed: the wrong key schema or a missing index is an
 * error. TTL is read with `DescribeTimeToLive` first, because DynamoDB
 * rejects a repeated `UpdateTimeToLive` within an hour.
 *
 * @param client The DynamoDB client.
 * @param suffix The table suffix.
 * @param options Which tables, and how to poll.
 * @returns One outcome per table, in definition order.
 * @throws {ConfigError} When an existing table has the wrong key schema or lacks an index.
 * @throws {RulesStoreError} When DynamoDB fails or a table does not become ACTIVE in time.
 */
export async function ensureTables(
  client: DynamoDBClient,
  suffix: string,
  options: EnsureTablesOptions = {},
): Promise<TableOutcome[]> {
  const { tables = TABLES, pollIntervalMs = 100, activeTimeoutMs = 120_000, onTable } = options;
  return await Promise.all(tables.map(async (definition) => {
    const started = performance.now();
    const name = tableName(definition.name, suffix);
    let status: TableOutcome["status"] = "exists";
    let description = await describe(client, name);
    if (description === undefined) {
      status = await create(client, name, definition);
      description = await describe(client, name);
    }
    const deadline = Date.now() + activeTimeoutMs;
    while (description?.TableStatus !== "ACTIVE") {
      if (Date.now() > deadline) {
        throw new RulesStoreError(
          `Failed to create table ${quote(name)}: it is not ACTIVE after ${activeTimeoutMs} ms`,
        );
      }
      await sleep(pollIntervalMs);
      description = await describe(client, name);
    }
    checkShape(name, definition, description);
    const ttlEnabled = await ensureTtl(client, name, definition);
    const outcome = { tableName: name, status, ttlEnabled, elapsedMs: Math.round(performance.now() - started) };
    onTable?.(outcome);
    return outcome;
  }));
}

async function describe(client: DynamoDBClient, name: string): Promise<TableDescription | undefined> {
  try {
    return (await client.send(new DescribeTableCommand({ TableName: name }))).Table;
  } catch (error) {
    if (error instanceof ResourceNotFoundException) return undefined;
    throw new RulesStoreError(`Failed to describe table ${quote(name)}: ${describeAwsError(error)}`, {
      cause: safeCause(error),
    });
  }
}

async function create(
  client: DynamoDBClient,
  name: string,
  definition: TableDefinition,
): Promise<TableOutcome["status"]> {
  const attributes = new Map<string, AttributeDefinition>();
  for (const attribute of ["PK", "SK", ...definition.globalIndexes.flatMap((i) => [i.partitionKey, i.sortKey])]) {
    attributes.set(attribute, { AttributeName: attribute, AttributeType: "S" });
  }
  try {
    await client.send(
      new CreateTableCommand({
        TableName: name,
        BillingMode: "PAY_PER_REQUEST",
        AttributeDefinitions: [...attributes.values()],
        KeySchema: [{ AttributeName: "PK", KeyType: "HASH" }, { AttributeName: "SK", KeyType: "RANGE" }],
        GlobalSecondaryIndexes: definition.globalIndexes.length === 0 ? undefined : definition.globalIndexes.map((
          index,
        ) => ({
          IndexName: index.indexName,
          KeySchema: [
            { AttributeName: index.partitionKey, KeyType: "HASH" },
            { AttributeName: index.sortKey, KeyType: "RANGE" },
          ],
          Projection: { ProjectionType: "ALL" },
        })),
      }),
    );
    return "created";
  } catch (error) {
    // Another run created it between our describe and create.
    if (error instanceof ResourceInUseException) return "exists";
    throw new RulesStoreError(`Failed to create table ${quote(name)}: ${describeAwsError(error)}`, {
      cause: safeCause(error),
    });
  }
}

function checkShape(name: string, definition: TableDefinition, table: TableDescription): void {
  const keys = (table.KeySchema ?? []).map((k) => `${k.AttributeName}:${k.KeyType}`).sort().join(",");
  const problems: string[] = [];
  if (keys !== "PK:HASH,SK:RANGE") problems.push(`its key schema is ${quote(keys)}, not PK (HASH) and SK (RANGE)`);
  for (const index of definition.globalIndexes) {
    const found = table.GlobalSecondaryIndexes?.find((i) => i.IndexName === index.indexName);
    const indexKeys = (found?.KeySchema ?? []).map((k) => `${k.AttributeName}:${k.KeyType}`).join(",");
    if (indexKeys !== `${index.partitionKey}:HASH,${index.sortKey}:RANGE`) {
      problems.push(`its index ${quote(index.indexName)} is missing or keyed differently`);
    }
  }
  if (problems.length > 0) throw new ConfigError(`Table ${quote(name)} exists but ${problems.join(" and ")}`);
}

async function ensureTtl(client: DynamoDBClient, name: string, definition: TableDefinition): Promise<boolean> {
  if (definition.ttlAttribute === null) return false;
  try {
    const { TimeToLiveDescription: ttl } = await client.send(new DescribeTimeToLiveCommand({ TableName: name }));
    if (ttl?.TimeToLiveStatus === "ENABLED" || ttl?.TimeToLiveStatus === "ENABLING") {
      if (ttl.AttributeName !== definition.ttlAttribute) {
        throw new ConfigError(
          `Table ${quote(name)} exists but expires items by ${quote(ttl.AttributeName)}, not ${
            quote(definition.ttlAttribute)
          }`,
        );
      }
      return false;
    }
    await client.send(
      new UpdateTimeToLiveCommand({
        TableName: name,
        TimeToLiveSpecification: { AttributeName: definition.ttlAttribute, Enabled: true },
      }),
    );
    return true;
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    throw new RulesStoreError(`Failed to set TTL on table ${quote(name)}: ${describeAwsError(error)}`, {
      cause: safeCause(error),
    });
  }
}

/** Options of {@linkcode writeItems}. */
export interface WriteItemsOptions {
  /**
   * How many `BatchWriteItem` requests run at once.
   *
   * @default {4}
   */
  concurrency?: number;
  /**
   * Attempts per batch, the first included, before unprocessed items count as lost.
   *
   * @default {8}
   */
  maxAttempts?: number;
  /**
   * The first retry's delay ceiling, in milliseconds; it doubles per attempt
   * (full jitter: the delay is random below the ceiling).
   *
   * @default {50}
   */
  baseDelayMs?: number;
  /**
   * The largest delay ceiling, in milliseconds.
   *
   * @default {2000}
   */
  maxDelayMs?: number;
  /**
   * The random source for jitter, in [0, 1).
   *
   * @default {Math.random}
   */
  random?: () => number;
  /**
   * How to wait; inject one so tests need not sleep.
   *
   * @default {setTimeout}
   */
  sleep?: (milliseconds: number) => Promise<void>;
  /**
   * Called after each `BatchWriteItem` response with how many items it
   * landed, so a caller can report progress, and what landed when the call
   * fails part way.
   *
   * @default {undefined}
   */
  onWritten?: (count: number) => void;
}

/** What {@linkcode writeItems} did. */
export interface WriteItemsResult {
  /** Items that landed. */
  written: number;
  /** `BatchWriteItem` requests sent, retries included. */
  requests: number;
}

/** The most items one `BatchWriteItem` takes. */
export const BATCH_WRITE_LIMIT = 25;

/**
 * Splits items into chunks of at most {@linkcode BATCH_WRITE_LIMIT}.
 *
 * @param items The items.
 * @param size The chunk size.
 * @returns The chunks, in order.
 */
export function chunk<T>(items: readonly T[], size: number = BATCH_WRITE_LIMIT): T[][] {
  const chunks: T[][] = [];
  for (let start = 0; start < items.length; start += size) chunks.push(items.slice(start, start + size));
  return chunks;
}

/**
 * Writes items to one table with `BatchWriteItem` in chunks of 25, a few
 * chunks at a time, retrying `UnprocessedItems` with exponential backoff and
 * full jitter until all land or a chunk runs out of attempts.
 *
 * @param client The DynamoDB client.
 * @param table The physical table name.
 * @param items The items (document-client shapes; numbers as `NumberValue`).
 * @param options Concurrency and retry policy.
 * @returns How many landed and how many requests it took.
 * @throws {InvalidInputError} When `concurrency` or `maxAttempts` is not a positive integer.
 * @throws {RulesStoreError} When items are still unprocessed after the last attempt (the message says how many) or DynamoDB fails.
 */
export async function writeItems(
  client: DynamoDBClient,
  table: string,
  items: readonly Item[],
  options: WriteItemsOptions = {},
): Promise<WriteItemsResult> {
  const requests = items.map((item) => ({ PutRequest: { Item: marshall(item, { removeUndefinedValues: true }) } }));
  return await sendBatches(client, table, requests, "write", options);
}

/**
 * Deletes items from one table by key, batched and retried exactly as
 * {@linkcode writeItems} writes them. Deleting a key that holds no item is
 * no error.
 *
 * @param client The DynamoDB client.
 * @param table The physical table name.
 * @param keys The keys of the items.
 * @param options Concurrency and retry policy; `onWritten` counts deleted items.
 * @returns How many were deleted and how many requests it took.
 * @throws {InvalidInputError} When `concurrency` or `maxAttempts` is not a positive integer.
 * @throws {RulesStoreError} When deletes are still unprocessed after the last attempt or DynamoDB fails.
 *
 * @example Delete one pipeline step
 * ```ts
 * import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
 * import { deleteItems } from "./provision.ts";
 *
 * const client = new DynamoDBClient({ region: "us-east-1", endpoint: "http://127.0.0.1:4566" });
 * await deleteItems(client, "bluestar-processing-pipeline-dev", [{ PK: "CLIENT#P", SK: "STEP#0100" }]);
 * client.destroy();
 * ```
 */
export async function deleteItems(
  client: DynamoDBClient,
  table: string,
  keys: readonly ItemKey[],
  options: WriteItemsOptions = {},
): Promise<WriteItemsResult> {
  const requests = keys.map((key) => ({ DeleteRequest: { Key: marshall({ PK: key.PK, SK: key.SK }) } }));
  return await sendBatches(client, table, requests, "delete", options);
}

/** Sends write requests in chunks of 25, a few at a time, asking again for what DynamoDB leaves unprocessed. */
async function sendBatches(
  client: DynamoDBClient,
  table: string,
  requests: readonly WriteRequest[],
  verb: "write" | "delete",
  options: WriteItemsOptions,
): Promise<WriteItemsResult> {
  const {
    concurrency = 4,
    maxAttempts = 8,
    baseDelayMs = 50,
    maxDelayMs = 2000,
    random = Math.random,
    sleep: wait = sleep,
    onWritten,
  } = options;
  for (const [name, value] of [["concurrency", concurrency], ["maxAttempts", maxAttempts]] as const) {
    // Zero or NaN workers would return at once having written nothing, and say it succeeded.
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new InvalidInputError(
        `Failed to ${verb} items ${verb === "write" ? "to" : "of"} table ${quote(table)}: ${name} ${
          quote(value)
        } is not a positive integer`,
      );
    }
  }
  const chunks = chunk(requests);
  let written = 0;
  let sent = 0;
  let lost = 0;
  let failure: unknown;
  /** Sends one chunk, asking again for what DynamoDB leaves unprocessed; counts what never lands. */
  const sendChunk = async (requestsOfChunk: WriteRequest[]) => {
    let pending = requestsOfChunk;
    for (let attempt = 1; pending.length > 0; attempt++) {
      if (attempt > maxAttempts) {
        lost += pending.length;
        return;
      }
      if (attempt > 1) await wait(backoffDelay({ baseDelayMs, maxDelayMs }, attempt - 1, random));
      sent++;
      const { UnprocessedItems } = await client.send(new BatchWriteItemCommand({ RequestItems: { [table]: pending } }));
      const unprocessed = UnprocessedItems?.[table] ?? [];
      written += pending.length - unprocessed.length;
      onWritten?.(pending.length - unprocessed.length);
      pending = unprocessed;
    }
  };
  try {
    await mapConcurrently(chunks, concurrency, sendChunk);
  } catch (error) {
    failure = error;
  }
  if (failure !== undefined || lost > 0) {
    const reason = failure === undefined
      ? `still unprocessed after ${maxAttempts} attempts`
      : describeAwsError(failure);
    throw new RulesStoreError(
      `Failed to ${verb} ${requests.length - written} of ${requests.length} items ${
        verb === "write" ? "to" : "of"
      } table ${quote(table)}: ${reason}`,
      { cause: safeCause(failure) },
    );
  }
  return { written, requests: sent };
}

/**
 * The items of a reference data set, per table, encoded by the same codecs
 * the DynamoDB backend reads with.
 *
 * @param data A decoded data set (see `decodeRulesData`).
 * @returns The items of each table that has any.
 */
export function rulesDataItems(data: CompleteRulesData): Array<{ table: TableName; items: Item[] }> {
  return [
    { table: pipelineStepCodec.table, items: data.pipelineSteps.map(pipelineStepCodec.toItem) },
    {
      table: validationRuleGroupCodec.table,
      items: groupValidationRules(data.validationRules).map(validationRuleGroupCodec.toItem),
    },
    {
      table: calculationRuleHistoryCodec.table,
      items: groupCalculationRules(data.calculationRules).map(calculationRuleHistoryCodec.toItem),
    },
    { table: irsLimitsCodec.table, items: data.irsLimits.map(irsLimitsCodec.toItem) },
    { table: agentConfigCodec.table, items: data.agentConfigs.map(agentConfigCodec.toItem) },
  ].filter(({ items }) => items.length > 0) as Array<{ table: TableName; items: Item[] }>;
}

/**
 * Creates an S3 bucket when it does not exist, with default encryption
 * (SSE-S3) so that every object is encrypted even when written by another tool.
 *
 * @param client The S3 client.
 * @param bucket The bucket.
 * @param region The bucket's region (a LocationConstraint outside us-east-1).
 * @returns Whether this call created it.
 * @throws {FileStoreError} When S3 refuses (the bucket belongs to someone else, access denied).
 */
export async function ensureBucket(client: S3Client, bucket: string, region: string): Promise<"created" | "exists"> {
  try {
    await client.send(new HeadBucketCommand({ Bucket: bucket }));
    return "exists";
  } catch (error) {
    if ((error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode !== 404) {
      throw new FileStoreError(`Failed to check bucket ${quote(bucket)}: ${(error as Error).name}`, {
        cause: safeCause(error),
      });
    }
  }
  try {
    await client.send(
      new CreateBucketCommand({
        Bucket: bucket,
        CreateBucketConfiguration: region === "us-east-1" ? undefined : { LocationConstraint: region as never },
      }),
    );
    await client.send(
      new PutBucketEncryptionCommand({
        Bucket: bucket,
        ServerSideEncryptionConfiguration: {
          Rules: [{ ApplyServerSideEncryptionByDefault: { SSEAlgorithm: "AES256" } }],
        },
      }),
    );
    return "created";
  } catch (error) {
    throw new FileStoreError(`Failed to create bucket ${quote(bucket)}: ${(error as Error).name}`, {
      cause: safeCause(error),
    });
  }
}
