/**
 * `deno task seed`: create the eight BlueStar DynamoDB tables and write the
 * seed data in `config/`. Run `deno task seed --help` for the options.
 *
 * The flags alone choose the target. Without `--endpoint-url` or `--region`
 * nothing is written anywhere: the seed files are checked, loaded into the
 * in-memory store, every step's rules are resolved, and the plan is printed.
 * Environment variables (`AWS_REGION`, `BLUESTAR_AWS_ENDPOINT_URL`) never turn
 * a plan into a write; `AWS_REGION` only supplies the region once
 * `--endpoint-url` is given without `--region`.
 *
 * The logic lives in `src/persistence/seed.ts` and `seed_data.ts`; this file
 * parses arguments and prints. Exit codes: 0 when everything landed (or the
 * plan is sound), 1 when anything failed, 2 for a usage error.
 *
 * @module
 */

import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { S3Client } from "@aws-sdk/client-s3";
import { BlueStarError, ConfigError, quote, redactUrl } from "../src/core/errors.ts";
import { checkDirectory, type CommandIo, commandOrUsage, parseCommandLine, parseTarget, runWhenMain } from "./cli.ts";
import { bucketProblems, usageProblemText } from "../src/persistence/options.ts";
import { ensureBucket } from "../src/persistence/provision.ts";
import { loadSeedData } from "../src/persistence/seed_data.ts";
import {
  checkTableSuffix,
  createSeedClient,
  parseTableNames,
  planSeed,
  planTarget,
  runSeed,
  type SeedAction,
  type SeedPlan,
  type SeedProgress,
  type SeedReport,
  type SeedTarget,
  type TablePlan,
} from "../src/persistence/seed.ts";
import { RedisCacheBackend } from "../src/persistence/redis_backend.ts";
import type { TableName } from "../src/persistence/tables.ts";
import { TABLES } from "../src/persistence/tables.ts";

/** The usage text. */
export const USAGE: string = `Usage: deno task seed [options]
       bluestar-seed [options]    (the npm package's command, on Node)

Creates the eight BlueStar DynamoDB tables (bluestar-{name}{suffix}) and writes
the seed data. With neither --endpoint-url nor --region it writes nothing: it
checks the seed files, resolves every step's rules on the in-memory store and
prints the plan. Environment variables never choose the target.

Options:
  --endpoint-url URL   DynamoDB endpoint, e.g. http://127.0.0.1:4566 (moto, LocalStack)
  --region REGION      AWS region; alone, it targets AWS itself
                       (default with --endpoint-url: $AWS_REGION, else us-east-1)
  --table-suffix S     suffix of every table name: "-", "_" or "." then letters,
                       digits, "_", "-" and ".", e.g. -dev (default: none)
  --config-dir DIR     directory of the seed files (default: config; for
                       bluestar-seed, the seed data the package ships)
  --only TABLE         only these tables; repeatable or comma-separated:
                       ${TABLES.slice(0, 4).map((table) => table.name).join(", ")},
                       ${TABLES.slice(4).map((table) => table.name).join(", ")}
  --s3-bucket NAME     also create this S3 bucket (SSE-S3 by default) when missing
  --dry-run            read the target (read-only), print its plan, change nothing
  --prune              delete what the target holds and the seed files do not
                       (without it such items are kept and listed); rule
                       versions through the audited removal
  --reason TEXT        the reason the audit record of each rule change gives
                       (default: "Seeded from DIR", DIR the config directory)
  --redis-url URL      the Redis cache the agents share: each rule change
                       invalidates its entry there (default: $BLUESTAR_REDIS_URL)
  -h, --help           print this text

Against a target the seed first reads the live tables and prints a plan per
table: what it creates, updates, leaves unchanged, and what is no longer in
the seed files; then it applies the plan. Rule changes go through the
audited write path (actor "seed"); what is unchanged is not written.

Credentials come from the AWS SDK's default chain (AWS_ACCESS_KEY_ID and
AWS_SECRET_ACCESS_KEY, AWS_PROFILE, ...); any values work for a local endpoint.
Exit code: 0 when everything landed, 1 when anything failed, 2 for bad usage.`;

/** What the command line asks for. */
export interface SeedCommand {
  /** Print the usage text and stop. */
  help: boolean;
  /** The DynamoDB endpoint, when not AWS's. */
  endpointUrl?: string;
  /** The region; set whenever there is a target. */
  region?: string;
  /** The table suffix. */
  suffix: string;
  /** The seed files' directory. */
  configDir: string;
  /** Only these tables, when given. */
  only?: TableName[];
  /** An S3 bucket to create when missing. */
  s3Bucket?: string;
  /** Plan only. */
  dryRun: boolean;
  /** Delete what the target holds and the seed files do not. */
  prune: boolean;
  /** The audit reason of the rule changes. */
  reason: string;
  /** The shared Redis cache to invalidate changed rules in, when given. */
  redisUrl?: string;
}

function checkRedisUrl(url: string | undefined): string | undefined {
  if (url === undefined) return undefined;
  let protocol: string | undefined;
  try {
    protocol = new URL(url).protocol;
  } catch {
    protocol = undefined;
  }
  if (protocol !== "redis:" && protocol !== "rediss:") {
    throw new ConfigError(
      `Invalid Redis URL ${
        quote(redactUrl(url))
      }: it is not a redis:// or rediss:// URL (like "redis://127.0.0.1:6379")`,
    );
  }
  return url;
}

/**
 * Parses the command line (strict: an unknown flag or a stray argument is an error).
 *
 * @param argv The arguments after the script name.
 * @param env The environment, for `AWS_REGION` / `AWS_DEFAULT_REGION`.
 * @returns The command.
 * @throws {ConfigError} When an argument is unknown, missing its value, or invalid.
 */
export function parseSeedArgs(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>> = {},
): SeedCommand {
  const { values } = parseCommandLine(argv, {
    allowPositionals: false,
    options: {
      "endpoint-url": { type: "string" },
      region: { type: "string" },
      "table-suffix": { type: "string", default: "" },
      "config-dir": { type: "string", default: "config" },
      only: { type: "string", multiple: true },
      "s3-bucket": { type: "string" },
      "dry-run": { type: "boolean", default: false },
      prune: { type: "boolean", default: false },
      reason: { type: "string" },
      "redis-url": { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  for (const option of ["config-dir", "s3-bucket", "reason", "redis-url"] as const) {
    if (values[option] === "") throw new ConfigError(`Invalid arguments: --${option} is empty`);
  }
  const [bucketProblem] = values["s3-bucket"] === undefined ? [] : bucketProblems("--s3-bucket", values["s3-bucket"]);
  if (bucketProblem !== undefined) throw new ConfigError(usageProblemText("S3 bucket", bucketProblem));
  const { endpointUrl, region } = parseTarget(values, env);
  return {
    help: values.help,
    endpointUrl,
    region,
    suffix: checkTableSuffix(values["table-suffix"]),
    configDir: values["config-dir"],
    only: values.only === undefined ? undefined : parseTableNames(values.only),
    s3Bucket: values["s3-bucket"],
    dryRun: values["dry-run"],
    prune: values.prune,
    reason: values.reason ?? `Seeded from ${values["config-dir"]}`,
    redisUrl: checkRedisUrl(values["redis-url"] ?? (env.BLUESTAR_REDIS_URL || undefined)),
  };
}

/** Where the command prints. */
export interface SeedIo extends CommandIo {
  /** Makes the DynamoDB client; tests pass a fake. Defaults to `createSeedClient`. */
  createClient?: (target: SeedTarget) => DynamoDBClient;
}

const seconds = (milliseconds: number) => `${(milliseconds / 1000).toFixed(1)} s`;

function printPlan(plan: SeedPlan, configDir: string, io: SeedIo): void {
  const { counts } = plan;
  io.out(
    `Seed data in ${configDir}: ${
      counts.plans === 1 ? "1 plan" : `${counts.plans} plans`
    } of ${counts.pipelineSteps} steps, ` +
      `${counts.validationRules} validation rules, ${counts.calculationRules} calculation rules, ` +
      `IRS limits for ${counts.irsYears.join(", ")}, ${counts.agentConfigs} agent configurations`,
  );
  io.out(`Rules resolved on the in-memory store as of ${plan.resolvedAsOf} (client first, then GLOBAL):`);
  const width = Math.max(...plan.resolution.map((r) => r.clientId.length));
  for (const r of plan.resolution) {
    io.out(
      `  ${r.clientId.padEnd(width)}  ${r.steps} steps, ${r.lookups} calculation-rule lookups ` +
        `(${r.fromClient} own, ${r.fromGlobal} GLOBAL), ${r.fields} validated fields (${r.fieldsOverridden} own)`,
    );
  }
}

const ACTION_TEXT: Record<SeedAction, string> = {
  create: "create",
  update: "update",
  unchanged: "unchanged",
  keep: "kept (use --prune to delete)",
  delete: "delete",
};

/** The plan of each table: counts, then every item that is not unchanged. */
function printTablePlans(tables: readonly TablePlan[], io: SeedIo): void {
  const width = Math.max(...tables.map((table) => table.tableName.length));
  for (const table of tables) {
    const state = table.exists ? "exists" : "missing, create it";
    if (table.items.length === 0) {
      io.out(`  ${table.tableName.padEnd(width)}  ${state}; no seed items`);
      continue;
    }
    const { counts } = table;
    const gone = counts.keep + counts.delete;
    io.out(
      `  ${table.tableName.padEnd(width)}  ${state}; ${counts.create} to create, ${counts.update} to update, ` +
        `${counts.unchanged} unchanged, ${gone} no longer in the seed files`,
    );
    for (const item of table.items) {
      if (item.action !== "unchanged") io.out(`      ${ACTION_TEXT[item.action]}: ${item.label}`);
    }
  }
}

function planTotals(tables: readonly TablePlan[]): string {
  const total = (action: SeedAction) => tables.reduce((sum, table) => sum + table.counts[action], 0);
  return `${total("create")} to create, ${total("update")} to update, ${total("unchanged")} unchanged, ` +
    `${total("keep")} kept, ${total("delete")} to delete`;
}

function printProgress(progress: SeedProgress, io: SeedIo, where: string): void {
  if (progress.type === "plan") {
    io.out(`Plan for ${where}:`);
    printTablePlans(progress.tables, io);
    io.out("Applying:");
    return;
  }
  if (progress.type === "table") {
    const { tableName, status, ttlEnabled, elapsedMs } = progress.outcome;
    io.out(`  table ${tableName}: ${status}${ttlEnabled ? ", TTL enabled" : ""} (${elapsedMs} ms)`);
    return;
  }
  const { tableName, items, written, deleted, writeMs, error, plan } = progress.report;
  if (items > 0 || plan.counts.delete > 0) {
    const deletes = plan.counts.delete > 0 ? `, ${deleted} of ${plan.counts.delete} deleted` : "";
    io.out(`  items ${tableName}: ${written} of ${items} written${deletes} (${writeMs} ms)`);
  }
  if (error !== undefined) { for (const line of error.split("\n")) io.err(line); }
}

function summary(report: SeedReport): string {
  const created = report.tables.filter((table) => table.status === "created").length;
  const tables = `${report.tables.length} tables (${created} created, ${report.tables.length - created} existed)`;
  const plans = report.tables.map((table) => table.plan);
  const count = (action: SeedAction) => plans.reduce((sum, plan) => sum + plan.counts[action], 0);
  const deleted = report.tables.reduce((sum, table) => sum + table.deleted, 0);
  const items = `${count("create")} created, ${count("update")} updated, ${count("unchanged")} unchanged, ` +
    `${count("keep")} kept, ${deleted} deleted`;
  const failed = report.failed === 0 ? "" : `, ${report.failed} did not land`;
  return `Summary: ${tables}, ${items}${failed}, in ${seconds(report.elapsedMs)}`;
}

/**
 * Runs the command.
 *
 * @param argv The arguments after the script name.
 * @param io Where to print, and the environment.
 * @returns The exit code: 0 when everything landed, 1 on any failure, 2 for bad usage.
 */
export async function main(argv: readonly string[], io: SeedIo): Promise<number> {
  const command = await commandOrUsage(
    async () => {
      const parsed = parseSeedArgs(argv, io.env);
      if (!parsed.help) await checkDirectory(parsed.configDir);
      return parsed;
    },
    USAGE,
    io,
  );
  if (typeof command === "number") return command;
  const { endpointUrl, region, suffix, configDir, only, s3Bucket, dryRun, prune, reason, redisUrl } = command;
  // Printed without the endpoint's userinfo, if it has one.
  const where = endpointUrl === undefined ? "AWS" : redactUrl(endpointUrl);
  try {
    const data = await loadSeedData(configDir);
    const plan = await planSeed(data, { suffix, only });
    printPlan(plan, configDir, io);
    if (region === undefined) {
      io.out(`Plan for in-memory backend, table suffix ${quote(suffix)}:`);
      const width = Math.max(...plan.tables.map((table) => table.tableName.length));
      for (const table of plan.tables) {
        io.out(`  ${table.tableName.padEnd(width)}  create if missing, then write ${table.items} items`);
      }
      if (s3Bucket !== undefined) io.out(`  S3 bucket ${quote(s3Bucket)}: create if missing`);
      io.out(
        `Summary: plan only, nothing written: ${plan.tables.length} tables and ${plan.totalItems} items; ` +
          "pass --endpoint-url or --region to seed DynamoDB",
      );
      return 0;
    }
    const target = `DynamoDB ${where} (region ${region}), table suffix ${quote(suffix)}`;
    const client = (io.createClient ?? createSeedClient)({ region, endpointUrl });
    const cache = redisUrl === undefined || dryRun
      ? undefined
      : new RedisCacheBackend({ url: redisUrl, keyPrefix: "" });
    try {
      // Said before the first request, so an unreachable target is named.
      io.out(`${dryRun ? "Planning (dry run, read-only)" : "Seeding"} ${target}:`);
      if (dryRun) {
        const tables = await planTarget(client, data, { suffix, only, prune });
        io.out(`Plan for ${target} (dry run, read-only):`);
        printTablePlans(tables, io);
        if (s3Bucket !== undefined) io.out(`  S3 bucket ${quote(s3Bucket)}: create if missing`);
        io.out(`Summary: plan only, nothing written: ${tables.length} tables, ${planTotals(tables)}`);
        return 0;
      }
      const report = await runSeed(client, data, {
        suffix,
        only,
        prune,
        reason,
        cache,
        onProgress: (progress) => printProgress(progress, io, target),
      });
      if (s3Bucket !== undefined) {
        const s3 = new S3Client({ region, endpoint: endpointUrl, forcePathStyle: endpointUrl !== undefined });
        try {
          io.out(`  bucket ${s3Bucket}: ${await ensureBucket(s3, s3Bucket, region)}`);
        } finally {
          s3.destroy();
        }
      }
      io.out(summary(report));
      return report.ok ? 0 : 1;
    } finally {
      await cache?.close();
      client.destroy();
    }
  } catch (error) {
    const message = error instanceof BlueStarError ? error.message : `Seed failed: ${String(error)}`;
    for (const line of message.split("\n")) io.err(line);
    return 1;
  }
}

await runWhenMain(import.meta, main);
