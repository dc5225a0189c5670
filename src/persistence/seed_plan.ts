/**
 * The seed against a target, like a plan: read what the live tables hold,
 * compare it with the seed data item by item (rule tables version by
 * version), and say per table what would be created, updated, left
 * unchanged, and what is no longer in the seed data. Applying the plan
 * writes rule versions through the audited write path of
 * {@linkcode DynamoDBRulesStore} (so each change has its audit record and
 * invalidates what it changed in a shared cache) and the other reference
 * items in batches.
 *
 * @module
 */

import { DescribeTableCommand, type DynamoDBClient, ScanCommand } from "@aws-sdk/client-dynamodb";
import { unmarshall } from "@aws-sdk/util-dynamodb";
import { quote, RulesStoreError } from "../core/errors.ts";
import { type ItemKey, itemKeys } from "../core/keys.ts";
import type { ICacheBackend } from "../core/protocols.ts";
import { rangeText } from "../core/rules_logic.ts";
import type { CompleteRulesData } from "../core/schema.ts";
import type {
  CalculationRuleRecord,
  CalculationRuleVersion,
  RuleChangeOptions,
  ValidationRuleRecord,
  ValidationRuleVersion,
} from "../core/types.ts";
import { describeAwsError, safeCause } from "./aws_errors.ts";
import { DynamoDBRulesStore } from "./dynamodb_backend.ts";
import {
  agentConfigCodec,
  calculationRuleHistoryCodec,
  decodeItem,
  irsLimitsCodec,
  type Item,
  type ItemCodec,
  pipelineStepCodec,
  validationRuleGroupCodec,
  validationRuleVersion,
} from "./items.ts";
import { deleteItems, writeItems, type WriteItemsOptions } from "./provision.ts";
import { type TableDefinition, type TableName, tableName } from "./tables.ts";

/**
 * What the plan does with one item (for the rule tables, one rule version):
 * `create` it, `update` it, leave it `unchanged`, or, for what the target
 * holds and the seed data does not, `keep` it or `delete` it (with prune).
 */
export type SeedAction = "create" | "update" | "unchanged" | "keep" | "delete";

/** One item of a table plan. */
export interface PlannedItem {
  /** What the plan does with it. */
  action: SeedAction;
  /** What it is: `GLOBAL FICA_SOCIAL_SECURITY 2025-01-01..2025-12-31`, `DEFAULT_BiWeeklyFri step 100`, `year 2025`. */
  label: string;
}

/** The plan of one table against the target. */
export interface TablePlan {
  /** The logical name. */
  name: TableName;
  /** The physical name. */
  tableName: string;
  /** Whether the table exists on the target (when not, the seed creates it). */
  exists: boolean;
  /** Every item of the seed data and of the target, by label (none for the tables the seed never writes). */
  items: PlannedItem[];
  /** How many items of each action. */
  counts: Record<SeedAction, number>;
}

/** Options of {@linkcode planTarget} and of the apply step. */
export interface TargetPlanOptions {
  /** The table suffix, already checked. */
  suffix: string;
  /** The tables to plan, in definition order. */
  tables: readonly TableDefinition[];
  /**
   * Delete what the target holds and the seed data does not.
   *
   * @default {false}
   */
  prune?: boolean;
}

/** One change to make, beside the plan entry it belongs to. */
export type Operation =
  | { kind: "put"; key: ItemKey; item: Item }
  | { kind: "delete"; key: ItemKey }
  | { kind: "calculation"; version: CalculationRuleRecord; expectedRevision: number }
  | { kind: "validation"; version: ValidationRuleRecord; expectedRevision: number }
  | { kind: "removal"; version: CalculationRuleVersion | ValidationRuleVersion; expectedRevision: number };

/** A change of one rule version, through the audited path. */
type RuleOperation = Extract<Operation, { kind: "calculation" | "validation" | "removal" }>;

/** A table plan and the operations that carry it out. */
export interface TableWork {
  /** The plan. */
  plan: TablePlan;
  /** The changes, each with the plan entry it carries out. */
  operations: Array<{ entry: PlannedItem; operation: Operation }>;
}

/** A JSON text of a value with every object's keys sorted: equal values, equal texts. */
function canonicalJson(value: unknown): string {
  return JSON.stringify(
    value,
    (_key, inner) =>
      inner !== null && typeof inner === "object" && !Array.isArray(inner)
        ? Object.fromEntries(Object.entries(inner).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
        : inner,
  );
}

const keyText = ({ PK, SK }: ItemKey) => `${PK}\u0000${SK}`;

/** Every item of a table, strongly consistent, every page followed; numbers kept exact. */
async function scanTable(client: DynamoDBClient, table: string): Promise<Item[]> {
  const items: Item[] = [];
  let ExclusiveStartKey: Record<string, never> | undefined;
  try {
    do {
      const page = await client.send(new ScanCommand({ TableName: table, ExclusiveStartKey, ConsistentRead: true }));
      for (const item of page.Items ?? []) items.push(unmarshall(item, { wrapNumbers: true }));
      ExclusiveStartKey = page.LastEvaluatedKey as typeof ExclusiveStartKey;
    } while (ExclusiveStartKey !== undefined);
  } catch (error) {
    throw new RulesStoreError(`Failed to read table ${quote(table)}: ${describeAwsError(error)}`, {
      cause: safeCause(error),
    });
  }
  return items;
}

async function tableExists(client: DynamoDBClient, table: string): Promise<boolean> {
  try {
    await client.send(new DescribeTableCommand({ TableName: table }));
    return true;
  } catch (error) {
    if ((error as { name?: string }).name === "ResourceNotFoundException") return false;
    throw new RulesStoreError(`Failed to describe table ${quote(table)}: ${describeAwsError(error)}`, {
      cause: safeCause(error),
    });
  }
}

/** A version without its revision, the part the seed data holds. */
function withoutRevision<V extends { revision: number }>(version: V): Omit<V, "revision"> {
  const { revision: _, ...rest } = version;
  return rest;
}

/** One thing the seed data and the target may both hold, compared by `value`. */
interface Comparable {
  id: string;
  label: string;
  value: unknown;
}

/**
 * Pairs what the seed data holds with what the target holds, by id: a
 * `create` for what only the seed data has, an `update` or `unchanged` for
 * both, a `keep` or `delete` for what only the target has.
 */
function compare<W extends Comparable, S extends Comparable>(
  wanted: readonly W[],
  stored: readonly S[],
  prune: boolean,
): Array<{ action: SeedAction; wanted?: W; stored?: S; label: string; id: string }> {
  const byId = new Map(stored.map((entry) => [entry.id, entry]));
  const result: Array<{ action: SeedAction; wanted?: W; stored?: S; label: string; id: string }> = [];
  for (const entry of wanted) {
    const live = byId.get(entry.id);
    byId.delete(entry.id);
    const action = live === undefined
      ? "create"
      : canonicalJson(live.value) === canonicalJson(entry.value)
      ? "unchanged"
      : "update";
    result.push({ action, wanted: entry, stored: live, label: entry.label, id: entry.id });
  }
  for (const live of byId.values()) {
    result.push({ action: prune ? "delete" : "keep", stored: live, label: live.label, id: live.id });
  }
  // In key order: steps by number, versions by owner, rule and date.
  return result.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

function emptyCounts(): Record<SeedAction, number> {
  return { create: 0, update: 0, unchanged: 0, keep: 0, delete: 0 };
}

/** Plain items: compared as the codec decodes them, written with batched puts, deleted by key. */
function planItems<T>(
  codec: ItemCodec<T>,
  table: string,
  wanted: readonly T[],
  live: readonly Item[],
  label: (record: T) => string,
  prune: boolean,
): Omit<TableWork, "plan"> & { items: PlannedItem[] } {
  const entry = (record: T) => ({ id: keyText(codec.key(record)), label: label(record), value: record, record });
  const stored = live.map((item) => entry(decodeItem(codec, table, item)));
  const operations: TableWork["operations"] = [];
  const items = compare(wanted.map(entry), stored, prune).map(({ action, wanted: w, stored: s, label }) => {
    const planned = { action, label };
    if (action === "create" || action === "update") {
      operations.push({
        entry: planned,
        operation: { kind: "put", key: codec.key(w!.record), item: codec.toItem(w!.record) },
      });
    } else if (action === "delete") {
      operations.push({ entry: planned, operation: { kind: "delete", key: codec.key(s!.record) } });
    }
    return planned;
  });
  return { items, operations };
}

/**
 * Rule versions: compared without their revision; a change is a put of one
 * version through the audited path (a correction names the stored revision),
 * a deletion the audited removal of the stored version (naming its revision).
 */
function planVersions<V extends CalculationRuleVersion | ValidationRuleVersion, R>(
  wanted: ReadonlyArray<{ id: string; label: string; value: Omit<V, "revision">; record: R }>,
  stored: readonly V[],
  idOf: (version: Omit<V, "revision">) => string,
  labelOf: (version: Omit<V, "revision">) => string,
  kind: "calculation" | "validation",
  prune: boolean,
): Omit<TableWork, "plan"> & { items: PlannedItem[] } {
  const live = stored.map((version) => ({
    id: idOf(version),
    label: labelOf(version),
    value: withoutRevision(version),
    revision: version.revision,
    version,
  }));
  const operations: TableWork["operations"] = [];
  const items = compare(wanted, live, prune).map(({ action, wanted: w, stored: s, label }) => {
    const planned = { action, label };
    if (action === "create" || action === "update") {
      const operation = { kind, version: w!.record, expectedRevision: s?.revision ?? 0 } as Operation;
      operations.push({ entry: planned, operation });
    } else if (action === "delete") {
      operations.push({
        entry: planned,
        operation: { kind: "removal", version: s!.version, expectedRevision: s!.revision },
      });
    }
    return planned;
  });
  return { items, operations };
}

const calculationLabel = (v: { clientId: string; ruleId: string; effectiveFrom: string; effectiveTo: string | null }) =>
  `${v.clientId} ${v.ruleId} ${rangeText(v)}`;
const calculationId = (v: { clientId: string; ruleId: string; effectiveFrom: string }) =>
  `${keyText(itemKeys.calculationRule(v.clientId, v.ruleId))}\u0000${v.effectiveFrom}`;
const validationLabel = (
  v: { clientId: string; field: string; ruleId: string; effectiveFrom: string; effectiveTo: string | null },
) => `${v.clientId} ${v.field} ${v.ruleId} ${rangeText(v)}`;
const validationId = (v: { clientId: string; field: string; ruleId: string; effectiveFrom: string }) =>
  `${keyText(itemKeys.validationRules(v.clientId, v.field))}\u0000${v.ruleId}\u0000${v.effectiveFrom}`;

/** Plans one table: its items against what the target holds (nothing when the table is missing). */
async function planTable(
  client: DynamoDBClient,
  data: CompleteRulesData,
  definition: TableDefinition,
  options: TargetPlanOptions,
): Promise<TableWork> {
  const name = tableName(definition.name, options.suffix);
  const exists = await tableExists(client, name);
  const prune = options.prune ?? false;
  const live = async () => exists ? await scanTable(client, name) : [];
  let work: Omit<TableWork, "plan"> & { items: PlannedItem[] };
  switch (definition.name) {
    case "processing-pipeline":
      work = planItems(
        pipelineStepCodec,
        name,
        data.pipelineSteps,
        await live(),
        (s) => `${s.planId} step ${s.step}`,
        prune,
      );
      break;
    case "irs-limits":
      work = planItems(irsLimitsCodec, name, data.irsLimits, await live(), (l) => `year ${l.year}`, prune);
      break;
    case "agent-config":
      work = planItems(agentConfigCodec, name, data.agentConfigs, await live(), (c) => `agent ${c.agent}`, prune);
      break;
    case "calculation-rules": {
      const stored = (await live()).flatMap((item) => decodeItem(calculationRuleHistoryCodec, name, item).versions);
      const wanted = data.calculationRules.map((record) => ({
        id: calculationId(record),
        label: calculationLabel(record),
        value: record,
        record,
      }));
      work = planVersions(wanted, stored, calculationId, calculationLabel, "calculation", prune);
      break;
    }
    case "validation-rules": {
      const stored = (await live()).flatMap((item) => decodeItem(validationRuleGroupCodec, name, item).rules);
      const wanted = data.validationRules.map((record) => {
        const value = withoutRevision(validationRuleVersion(record));
        return { id: validationId(value), label: validationLabel(value), value, record };
      });
      work = planVersions(wanted, stored, validationId, validationLabel, "validation", prune);
      break;
    }
    default:
      // Batch state, results and the audit trail: the seed never writes them, so never reads them either.
      work = { items: [], operations: [] };
  }
  const counts = emptyCounts();
  for (const item of work.items) counts[item.action]++;
  return { plan: { name: definition.name, tableName: name, exists, items: work.items, counts }, ...work };
}

/**
 * Reads the target and plans every table: per item (per rule version for
 * the rule tables) whether the seed creates, updates or leaves it, and what
 * the target holds that the seed data does not (kept, or deleted with
 * `prune`). Read-only: it sends `DescribeTable` and `Scan` requests only.
 *
 * @param client The DynamoDB client.
 * @param data A decoded data set (see `loadSeedData`).
 * @param options The suffix, the tables, and whether to prune.
 * @returns One plan per table, in the order given.
 * @throws {RulesStoreError} When DynamoDB fails.
 * @throws {CorruptItemError} When a stored item does not decode.
 *
 * @example Plan against a local endpoint
 * ```ts
 * import { createSeedClient, loadSeedData, TABLES } from "./seed.ts";
 * import { planTarget } from "./seed_plan.ts";
 *
 * const client = createSeedClient({ region: "us-east-1", endpointUrl: "http://127.0.0.1:4566" });
 * const plans = await planTarget(client, await loadSeedData("config"), { suffix: "-dev", tables: TABLES });
 * for (const plan of plans) console.log(plan.tableName, plan.counts);
 * client.destroy();
 * ```
 */
export async function planTarget(
  client: DynamoDBClient,
  data: CompleteRulesData,
  options: TargetPlanOptions,
): Promise<TablePlan[]> {
  return (await planWork(client, data, options)).map((work) => work.plan);
}

/**
 * The plans and their operations, table by table.
 *
 * @param client The DynamoDB client.
 * @param data The data set.
 * @param options The suffix, the tables, and whether to prune.
 * @returns One work list per table.
 */
export async function planWork(
  client: DynamoDBClient,
  data: CompleteRulesData,
  options: TargetPlanOptions,
): Promise<TableWork[]> {
  const work: TableWork[] = [];
  for (const definition of options.tables) work.push(await planTable(client, data, definition, options));
  return work;
}

/** Options of the apply step. */
export interface ApplyOptions {
  /** The table suffix, already checked: the rules store's tables and cache namespace. */
  suffix: string;
  /** Who the audit records name. */
  actor: string;
  /** Why, for the audit records. */
  reason: string;
  /** The shared cache to invalidate what changes in, when there is one. */
  cache?: ICacheBackend;
  /** Batch writing of the plain items. */
  write?: Omit<WriteItemsOptions, "onWritten">;
}

/** What applying one table's plan did. */
export interface AppliedTable {
  /** Items (rule versions) written: created or updated. */
  written: number;
  /** Items deleted. */
  deleted: number;
  /** What failed, one message each. */
  errors: string[];
}

/** Removes one stored rule version through the audited path. */
function removeVersion(
  store: DynamoDBRulesStore,
  version: CalculationRuleVersion | ValidationRuleVersion,
  options: RuleChangeOptions,
): Promise<unknown> {
  const { clientId, ruleId, effectiveFrom } = version;
  return "field" in version
    ? store.removeValidationRuleVersion(clientId, version.field, ruleId, effectiveFrom, options)
    : store.removeCalculationRuleVersion(clientId, ruleId, effectiveFrom, options);
}

/**
 * Carries out one table's plan. Rule versions go through the rules store one
 * at a time: removals (with prune) first, then corrections, then additions,
 * each in `effectiveFrom` order (so a version the seed data now closes is
 * closed before the next one is added); plain items are written and deleted
 * in batches.
 *
 * @param client The DynamoDB client.
 * @param work The table's plan and operations.
 * @param options The store's suffix, the audit actor and reason, the cache, batching.
 * @returns What landed and what failed.
 */
export async function applyWork(client: DynamoDBClient, work: TableWork, options: ApplyOptions): Promise<AppliedTable> {
  const result: AppliedTable = { written: 0, deleted: 0, errors: [] };
  const table = work.plan.tableName;
  const puts = work.operations.flatMap(({ operation }) => operation.kind === "put" ? [operation.item] : []);
  const deletes = work.operations.flatMap(({ operation }) => operation.kind === "delete" ? [operation.key] : []);
  const rules = work.operations.filter((entry): entry is { entry: PlannedItem; operation: RuleOperation } =>
    entry.operation.kind === "calculation" || entry.operation.kind === "validation" ||
    entry.operation.kind === "removal"
  );
  if (deletes.length > 0) {
    try {
      result.deleted = (await deleteItems(client, table, deletes, options.write)).written;
    } catch (error) {
      result.errors.push((error as Error).message);
    }
  }
  if (puts.length > 0) {
    try {
      result.written += (await writeItems(client, table, puts, options.write)).written;
    } catch (error) {
      result.errors.push((error as Error).message);
    }
  }
  if (rules.length === 0) return result;
  const cacheErrors: string[] = [];
  const store = new DynamoDBRulesStore({
    client,
    tableSuffix: options.suffix,
    cache: options.cache,
    // The seed waits for the cache: an invalidation that times out leaves agents reading the old rule.
    cacheTimeoutMs: 5000,
    onEvent: (event) => {
      if (event.type === "cache.error") cacheErrors.push(event.error.message);
    },
  });
  // Removals first (a version moved to another date leaves room for its successor), then corrections, then
  // additions, each by effectiveFrom (none: the earliest date).
  const order = ({ operation }: { operation: RuleOperation }) =>
    `${operation.kind === "removal" ? 0 : operation.expectedRevision === 0 ? 2 : 1}${
      operation.version.effectiveFrom ?? ""
    }`;
  const changes = { actor: options.actor, reason: options.reason };
  try {
    for (const { entry, operation } of [...rules].sort((a, b) => (order(a) < order(b) ? -1 : 1))) {
      try {
        if (operation.kind === "removal") {
          await removeVersion(store, operation.version, { ...changes, expectedRevision: operation.expectedRevision });
          result.deleted++;
          continue;
        }
        if (operation.kind === "calculation") {
          await store.putCalculationRule(operation.version, {
            ...changes,
            expectedRevision: operation.expectedRevision,
          });
        } else {
          await store.putValidationRule(operation.version, {
            ...changes,
            expectedRevision: operation.expectedRevision,
          });
        }
        result.written++;
      } catch (error) {
        result.errors.push(`Failed to ${entry.action} ${entry.label}: ${(error as Error).message}`);
      }
    }
  } finally {
    await store.close();
  }
  for (const message of new Set(cacheErrors)) {
    result.errors.push(
      `Failed to invalidate the shared cache: ${message}; agents may read the old rules until the TTL`,
    );
  }
  return result;
}
