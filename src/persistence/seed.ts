/**
 * Seeding DynamoDB with the reference data: the plan (what would be created
 * and written, checked by resolving every step's rules on the in-memory
 * store) and the run (tables ensured, items written in batches). The
 * `deno task seed` script only parses arguments and prints what these
 * return; library code never prints, it reports through `onProgress`.
 *
 * @module
 */

import { DescribeTableCommand, DynamoDBClient, ResourceNotFoundException } from "@aws-sdk/client-dynamodb";
import { BlueStarError, ConfigError, quote, RulesStoreError } from "../core/errors.ts";
import { GLOBAL_CLIENT_ID } from "../core/keys.ts";
import type { CompleteRulesData } from "../core/schema.ts";
import { MemoryRulesStore } from "./memory_backend.ts";
import {
  ensureTables,
  type EnsureTablesOptions,
  rulesDataItems,
  type TableOutcome,
  type WriteItemsOptions,
} from "./provision.ts";
import { type TableDefinition, type TableName, tableName, TABLES } from "./tables.ts";
import {
  awsErrorName,
  type AwsTarget,
  classifyAwsError,
  clientTarget,
  describeAwsError,
  redactCredentials,
  safeCause,
} from "./aws_errors.ts";
import { endpointUrlProblems, regionProblems, tableSuffixProblems, usageProblemText } from "./options.ts";
import type { ICacheBackend } from "../core/protocols.ts";
import { applyWork, planTarget as planTargetTables, planWork, type TablePlan, type TableWork } from "./seed_plan.ts";

export type { PlannedItem, SeedAction, TablePlan } from "./seed_plan.ts";
export { TABLES } from "./tables.ts";

export {
  type CompleteRulesData,
  loadSeedData,
  type LoadSeedDataOptions,
  REQUIRED_IRS_YEARS,
  SEED_FILES,
} from "./seed_data.ts";

/** Options every seed step shares. */
export interface SeedOptions {
  /**
   * The table suffix, e.g. `"-dev"`: empty, or `-`, `_` or `.` then letters, digits, `_`, `-` and `.`.
   *
   * @default {""}
   */
  suffix?: string;
  /**
   * Only these tables are ensured and written.
   *
   * @default {every table}
   */
  only?: readonly TableName[];
}

/** One table of a plan. */
export interface PlannedTable {
  /** The logical name. */
  name: TableName;
  /** The physical name. */
  tableName: string;
  /** How many items the seed writes to it. */
  items: number;
}

/** How the rules of one client resolved on the in-memory store. */
export interface ClientResolution {
  /** The client, or `"GLOBAL"`. */
  clientId: string;
  /** The pipeline steps walked, across every plan. */
  steps: number;
  /** Calculation-rule lookups: one per rule a step names. */
  lookups: number;
  /** Lookups the client's own rules answered. */
  fromClient: number;
  /** Lookups the GLOBAL fallback answered. */
  fromGlobal: number;
  /** Fields with validation rules, the client's or GLOBAL's. */
  fields: number;
  /** Fields whose rules are the client's own. */
  fieldsOverridden: number;
}

/** What a seed would do, and the check that the data resolves. */
export interface SeedPlan {
  /** The table suffix. */
  suffix: string;
  /** The tables to ensure, in definition order, with their item counts. */
  tables: PlannedTable[];
  /** Items to write, across the planned tables. */
  totalItems: number;
  /** What the data set holds. */
  counts: {
    /** Plans. */
    plans: number;
    /** Pipeline steps, across plans. */
    pipelineSteps: number;
    /** Validation rules (records, before grouping by field). */
    validationRules: number;
    /** Calculation rules. */
    calculationRules: number;
    /** IRS limit years, ascending. */
    irsYears: number[];
    /** Agent configurations. */
    agentConfigs: number;
  };
  /**
   * The day the rules were resolved for: 1 July of the latest IRS limits
   * year (the newest year the data set serves, whatever today is).
   */
  resolvedAsOf: string;
  /** GLOBAL first, then each client with overrides, by id. */
  resolution: ClientResolution[];
}

/** What happened to one table in a run. */
export interface SeedTableReport {
  /** The logical name. */
  name: TableName;
  /** The physical name. */
  tableName: string;
  /** Whether this run created the table or found it. */
  status: "created" | "exists";
  /** Whether this run turned TTL on. */
  ttlEnabled: boolean;
  /** How long ensuring the table took, in milliseconds. */
  ensureMs: number;
  /** The table's plan against what the target held before the run. */
  plan: TablePlan;
  /** Items (rule versions) the plan creates or updates. */
  items: number;
  /** Of those, how many landed. */
  written: number;
  /** Items the plan deletes (with `prune`) that were deleted. */
  deleted: number;
  /** How long writing took, in milliseconds. */
  writeMs: number;
  /** Why writing failed, when it did: every failure, one a line. */
  error?: string;
}

/** What a run did. */
export interface SeedReport {
  /** The in-memory plan: the data set and its resolution. */
  plan: SeedPlan;
  /** One report per planned table, in definition order. */
  tables: SeedTableReport[];
  /** Items (rule versions) created or updated, across tables. */
  written: number;
  /** Items the plan created, updated or deleted that did not land, across tables. */
  failed: number;
  /** How long the run took, in milliseconds. */
  elapsedMs: number;
  /** Whether every table is in place and every item landed. */
  ok: boolean;
}

/** A step of a run, as it happens. */
export type SeedProgress =
  | { type: "plan"; tables: TablePlan[] }
  | { type: "table"; outcome: TableOutcome }
  | { type: "items"; report: SeedTableReport };

/** Options of {@linkcode runSeed}. */
export interface RunSeedOptions extends SeedOptions {
  /**
   * Batch writing: concurrency, attempts, backoff, and the `sleep` and
   * `random` that tests inject. `onWritten` is the run's own.
   *
   * @default {writeItems' defaults}
   */
  write?: Omit<WriteItemsOptions, "onWritten">;
  /**
   * Table polling.
   *
   * @default {ensureTables' defaults}
   */
  ensure?: Pick<EnsureTablesOptions, "pollIntervalMs" | "activeTimeoutMs">;
  /**
   * Called with the plan of every table once the target has been read, as
   * each table is ensured and as each table's items are written.
   *
   * @default {undefined}
   */
  onProgress?: (progress: SeedProgress) => void;
  /**
   * Delete what the target holds and the seed data does not. Without it such
   * items are kept and listed as `keep`.
   *
   * @default {false}
   */
  prune?: boolean;
  /**
   * Who the audit record of each rule change names.
   *
   * @default {"seed"}
   */
  actor?: string;
  /**
   * Why, for the audit record of each rule change.
   *
   * @default {"seed data"}
   */
  reason?: string;
  /**
   * The cache the agents share: each rule change invalidates its entry there
   * before the run goes on, so no agent reads the old rule after the run.
   *
   * @default {undefined (no shared cache to invalidate)}
   */
  cache?: ICacheBackend;
}

/** Where to seed. */
export interface SeedTarget {
  /** The AWS region, e.g. `"us-east-1"`. */
  region: string;
  /**
   * A DynamoDB endpoint other than AWS's, e.g. `"http://127.0.0.1:4566"` (moto, LocalStack).
   *
   * @default {undefined}
   */
  endpointUrl?: string;
}

/**
 * Checks a table suffix (see {@linkcode tableSuffixProblems}): empty, or `-`,
 * `_` or `.` then letters, digits, `_`, `-` and `.`, with every table name
 * within 255 characters.
 *
 * @param suffix The candidate suffix.
 * @returns The suffix.
 * @throws {ConfigError} When a table name with it would be invalid, or it has no separator (with a hint).
 *
 * @example Check a suffix
 * ```ts
 * import { checkTableSuffix } from "./seed.ts";
 *
 * console.assert(checkTableSuffix("-dev") === "-dev");
 * ```
 */
export function checkTableSuffix(suffix: string): string {
  const [problem] = tableSuffixProblems("tableSuffix", suffix);
  if (problem !== undefined) throw new ConfigError(usageProblemText("table suffix", problem));
  return suffix;
}

/**
 * Parses table names given on a command line: logical names, each value
 * possibly a comma-separated list. Repeats are dropped; the result is in
 * definition order.
 *
 * @param values The values, e.g. `["calculation-rules,irs-limits", "agent-config"]`.
 * @returns The table names.
 * @throws {ConfigError} When a name is not one of the eight tables; the message lists them.
 *
 * @example Parse a comma list
 * ```ts
 * import { parseTableNames } from "./seed.ts";
 *
 * const names = parseTableNames(["irs-limits,calculation-rules"]);
 * console.assert(names.join() === "calculation-rules,irs-limits");
 * ```
 */
export function parseTableNames(values: readonly string[]): TableName[] {
  const wanted = new Set(values.flatMap((value) => value.split(",")).map((name) => name.trim()).filter(Boolean));
  const known = TABLES.map((table) => table.name as string);
  const unknown = [...wanted].filter((name) => !known.includes(name));
  if (unknown.length > 0) {
    throw new ConfigError(
      `Invalid table ${unknown.map(quote).join(", ")}: the tables are ${known.join(", ")}`,
    );
  }
  if (wanted.size === 0) {
    throw new ConfigError(`Invalid table list: it names no table (the tables are ${known.join(", ")})`);
  }
  return TABLES.filter((table) => wanted.has(table.name)).map((table) => table.name);
}

function selectedTables(only: readonly TableName[] | undefined): readonly TableDefinition[] {
  return only === undefined ? TABLES : TABLES.filter((table) => only.includes(table.name));
}

/**
 * Plans a seed without touching DynamoDB: which tables, how many items each,
 * and a check that the data serves the agents. The data is loaded into a
 * {@linkcode MemoryRulesStore} and every calculation rule every step names is
 * resolved for GLOBAL and for each client with overrides (client first, then
 * the GLOBAL fallback), as are the validation rules of every field, as of
 * 1 July of the latest IRS limits year (so the check does not depend on the
 * day the seed runs).
 *
 * @param data A decoded data set (see `loadSeedData`).
 * @param options The suffix and the tables.
 * @returns The plan.
 * @throws {ConfigError} When the suffix is invalid or a rule does not resolve.
 *
 * @example Plan the seed of the config directory
 * ```ts
 * import { loadSeedData, planSeed } from "./seed.ts";
 *
 * const plan = await planSeed(await loadSeedData("config"), { suffix: "-dev" });
 * console.log(`${plan.tables.length} tables, ${plan.totalItems} items`);
 * ```
 */
export async function planSeed(data: CompleteRulesData, options: SeedOptions = {}): Promise<SeedPlan> {
  const suffix = checkTableSuffix(options.suffix ?? "");
  const itemsByTable = new Map(rulesDataItems(data).map(({ table, items }) => [table, items.length]));
  const tables = selectedTables(options.only).map((table) => ({
    name: table.name,
    tableName: tableName(table.name, suffix),
    items: itemsByTable.get(table.name) ?? 0,
  }));
  const planIds = [...new Set(data.pipelineSteps.map((step) => step.planId))].sort();
  const years = data.irsLimits.map((limits) => limits.year);
  const resolvedAsOf = years.length === 0
    ? new Date().toISOString().slice(0, 10)
    : `${String(Math.max(...years)).padStart(4, "0")}-07-01`;
  return {
    suffix,
    tables,
    totalItems: tables.reduce((sum, table) => sum + table.items, 0),
    counts: {
      plans: planIds.length,
      pipelineSteps: data.pipelineSteps.length,
      validationRules: data.validationRules.length,
      calculationRules: data.calculationRules.length,
      irsYears: data.irsLimits.map((limits) => limits.year).sort((a, b) => a - b),
      agentConfigs: data.agentConfigs.length,
    },
    resolvedAsOf,
    resolution: await resolveRules(data, planIds, resolvedAsOf),
  };
}

async function resolveRules(
  data: CompleteRulesData,
  planIds: readonly string[],
  asOf: string,
): Promise<ClientResolution[]> {
  let store: MemoryRulesStore;
  try {
    store = new MemoryRulesStore(data);
  } catch (error) {
    throw new ConfigError(`Failed to plan the seed: ${(error as Error).message}`, { cause: error });
  }
  const clients = [
    ...new Set([...data.calculationRules, ...data.validationRules].map((rule) => rule.clientId)),
  ].filter((id) => id !== GLOBAL_CLIENT_ID).sort();
  const fields = [...new Set(data.validationRules.map((rule) => rule.field))].sort();
  const resolution: ClientResolution[] = [];
  for (const clientId of [GLOBAL_CLIENT_ID, ...clients]) {
    const result: ClientResolution = {
      clientId,
      steps: 0,
      lookups: 0,
      fromClient: 0,
      fromGlobal: 0,
      fields: 0,
      fieldsOverridden: 0,
    };
    try {
      for (const planId of planIds) {
        for (const step of await store.getPipeline(planId)) {
          result.steps++;
          for (const ruleId of step.calculationRules) {
            const rule = await store.getCalculationRule(clientId, ruleId, { asOf });
            result.lookups++;
            if (rule.scope === "GLOBAL") result.fromGlobal++;
            else result.fromClient++;
          }
        }
      }
      for (const field of fields) {
        const rules = await store.getValidationRules(clientId, field, { asOf });
        if (rules.length === 0) continue;
        result.fields++;
        if (rules[0].scope === "CLIENT") result.fieldsOverridden++;
      }
    } catch (error) {
      throw new ConfigError(
        `Failed to resolve the rules of client ${quote(clientId)}: ${(error as Error).message}`,
        { cause: error },
      );
    }
    resolution.push(result);
  }
  return resolution;
}

/**
 * A DynamoDB client for seeding: the given region and endpoint, credentials
 * from the SDK's default chain, and short connection timeouts so that an
 * unreachable endpoint fails in seconds.
 *
 * @param target The region and, for a local endpoint, its URL.
 * @returns The client; the caller destroys it.
 * @throws {ConfigError} When the region is not a region name, or the endpoint is not an http(s) URL or carries credentials.
 *
 * @example A client for moto
 * ```ts
 * import { createSeedClient } from "./seed.ts";
 *
 * const client = createSeedClient({ region: "us-east-1", endpointUrl: "http://127.0.0.1:4566" });
 * client.destroy();
 * ```
 */
export function createSeedClient(target: SeedTarget): DynamoDBClient {
  const [problem] = [
    ...regionProblems("region", target.region),
    ...(target.endpointUrl === undefined ? [] : endpointUrlProblems("endpointUrl", target.endpointUrl)),
  ];
  if (problem !== undefined) {
    throw new ConfigError(usageProblemText(problem.option === "region" ? "region" : "endpoint URL", problem));
  }
  return new DynamoDBClient({
    region: target.region,
    endpoint: target.endpointUrl,
    requestHandler: { connectionTimeout: 3000, requestTimeout: 30_000 },
  });
}

/** Why DynamoDB could not be used, in one line, from the one classification (`classifyAwsError`). */
function reachProblem(error: unknown, target?: AwsTarget): string {
  const { message } = error as { message?: string };
  const detail = redactCredentials(String(message ?? error).split("\n")[0]);
  switch (classifyAwsError(error)) {
    case "no-credentials":
      return "no AWS credentials found (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE; " +
        "any values work for a local endpoint)";
    case "unreachable":
    case "timed-out":
      return `the endpoint is unreachable (${detail})`;
    case "credentials-rejected":
    case "access-denied":
      return `AWS rejected the credentials (${awsErrorName(error)}: ${detail})`;
    default:
      return describeAwsError(error, [], target);
  }
}

/** One cheap request first, so an unreachable endpoint or missing credentials is one clear error, not eight. */
async function preflight(client: DynamoDBClient, table: string): Promise<void> {
  try {
    await client.send(new DescribeTableCommand({ TableName: table }));
  } catch (error) {
    if (error instanceof ResourceNotFoundException) return;
    const target = await clientTarget("DynamoDB", client.config);
    throw new RulesStoreError(`Failed to use DynamoDB: ${reachProblem(error, target)}`, { cause: safeCause(error) });
  }
}

/**
 * Plans the seed against a target without changing it: reads the live
 * tables (`DescribeTable` and `Scan` only, never a write) and says per table
 * what {@linkcode runSeed} would create, update, leave unchanged, and what
 * the target holds that the seed data does not (kept, or deleted with
 * `prune`).
 *
 * @param client The DynamoDB client (see {@linkcode createSeedClient}).
 * @param data A decoded data set (see `loadSeedData`).
 * @param options The suffix, the tables, and whether to prune.
 * @returns One plan per table, in definition order.
 * @throws {ConfigError} When the suffix is invalid.
 * @throws {RulesStoreError} When DynamoDB is unreachable, the credentials are missing or rejected, or a read fails.
 * @throws {CorruptItemError} When a stored item does not decode.
 *
 * @example The plan against a local endpoint
 * ```ts
 * import { createSeedClient, loadSeedData, planTarget } from "./seed.ts";
 *
 * const client = createSeedClient({ region: "us-east-1", endpointUrl: "http://127.0.0.1:4566" });
 * for (const table of await planTarget(client, await loadSeedData("config"), { suffix: "-dev" })) {
 *   console.log(table.tableName, table.counts);
 * }
 * client.destroy();
 * ```
 */
export async function planTarget(
  client: DynamoDBClient,
  data: CompleteRulesData,
  options: SeedOptions & { prune?: boolean } = {},
): Promise<TablePlan[]> {
  const suffix = checkTableSuffix(options.suffix ?? "");
  const tables = selectedTables(options.only);
  if (tables.length === 0) return [];
  await preflight(client, tableName(tables[0].name, suffix));
  return await planTargetTables(client, data, { suffix, tables, prune: options.prune });
}

/**
 * Seeds DynamoDB like a plan: reads what the target holds (see
 * {@linkcode planTarget}), reports the plan, ensures the planned tables
 * (created in parallel when missing; an existing table is checked, never
 * changed), then applies the plan. Rule versions are written one at a time
 * through the audited write path of `DynamoDBRulesStore` (actor `seed`, the
 * given reason; a correction names the revision read), each invalidating
 * its entry in the shared `cache`; the other reference items are written in
 * batches. What is unchanged is not written, so running it again on the
 * same data changes nothing and writes no audit record. What the target
 * holds and the seed data does not is kept unless `prune` (rule versions
 * are always kept: the rules store removes none, which the report says).
 * A table whose changes do not all land is reported, and the run goes on.
 *
 * @param client The DynamoDB client (see {@linkcode createSeedClient}).
 * @param data A decoded data set (see `loadSeedData`).
 * @param options The suffix, the tables, pruning, the audit actor and reason, the shared cache, batching and a progress hook.
 * @returns The report; `ok` is true only when every change landed.
 * @throws {ConfigError} When the suffix is invalid, a rule does not resolve, or an existing table has the wrong key schema.
 * @throws {RulesStoreError} When DynamoDB is unreachable, the credentials are missing or rejected, or a table cannot be created.
 *
 * @example Seed a local endpoint
 * ```ts
 * import { createSeedClient, loadSeedData, runSeed } from "./seed.ts";
 *
 * const client = createSeedClient({ region: "us-east-1", endpointUrl: "http://127.0.0.1:4566" });
 * const report = await runSeed(client, await loadSeedData("config"), { suffix: "-dev", reason: "config/ v2" });
 * console.log(report.ok ? "seeded" : `${report.failed} changes did not land`);
 * client.destroy();
 * ```
 */
export async function runSeed(
  client: DynamoDBClient,
  data: CompleteRulesData,
  options: RunSeedOptions = {},
): Promise<SeedReport> {
  const started = performance.now();
  const plan = await planSeed(data, options);
  const { onProgress } = options;
  const definitions = selectedTables(options.only);
  if (definitions.length === 0) return { plan, tables: [], written: 0, failed: 0, elapsedMs: 0, ok: true };
  await preflight(client, plan.tables[0].tableName);
  const work: TableWork[] = await planWork(client, data, {
    suffix: plan.suffix,
    tables: definitions,
    prune: options.prune,
  });
  onProgress?.({ type: "plan", tables: work.map((table) => table.plan) });
  let outcomes: TableOutcome[];
  try {
    outcomes = await ensureTables(client, plan.suffix, {
      ...options.ensure,
      tables: definitions,
      onTable: (outcome) => onProgress?.({ type: "table", outcome }),
    });
  } catch (error) {
    if (error instanceof BlueStarError) throw error;
    throw new RulesStoreError(`Failed to ensure the tables: ${reachProblem(error)}`, { cause: safeCause(error) });
  }
  const tables: SeedTableReport[] = [];
  let failed = 0;
  for (const [index, table] of work.entries()) {
    const outcome = outcomes[index];
    const { counts } = table.plan;
    const writeStarted = performance.now();
    const applied = await applyWork(client, table, {
      suffix: plan.suffix,
      actor: options.actor ?? "seed",
      reason: options.reason ?? "seed data",
      cache: options.cache,
      write: options.write,
    });
    const items = counts.create + counts.update;
    failed += items - applied.written + (options.prune ? counts.delete - applied.deleted : 0);
    const report: SeedTableReport = {
      name: table.plan.name,
      tableName: table.plan.tableName,
      status: outcome.status,
      ttlEnabled: outcome.ttlEnabled,
      ensureMs: outcome.elapsedMs,
      plan: table.plan,
      items,
      written: applied.written,
      deleted: applied.deleted,
      writeMs: Math.round(performance.now() - writeStarted),
      ...(applied.errors.length === 0 ? {} : { error: applied.errors.join("\n") }),
    };
    tables.push(report);
    onProgress?.({ type: "items", report });
  }
  const written = tables.reduce((sum, table) => sum + table.written, 0);
  return {
    plan,
    tables,
    written,
    failed,
    elapsedMs: Math.round(performance.now() - started),
    ok: failed === 0 && tables.every((table) => table.error === undefined),
  };
}
