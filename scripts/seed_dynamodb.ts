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
import { stat } from "node:fs/promises";
import { parseArgs } from "node:util";
import { checkEndpointUrl, isMainModule, joinDashValues, runCommand } from "./cli_args.ts";
import { BlueStarError, ConfigError, quote, redactUrl } from "../src/core/errors.ts";
import { regionProblem } from "../src/persistence/config.ts";
import { bucketNameProblem } from "../src/core/keys.ts";
import { ensureBucket } from "../src/persistence/provision.ts";
import { loadSeedData } from "../src/persistence/seed_data.ts";
import {
  checkTableSuffix,
  createSeedClient,
  parseTableNames,
  planSeed,
  runSeed,
  type SeedPlan,
  type SeedProgress,
  type SeedReport,
  type SeedTarget,
} from "../src/persistence/seed.ts";
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
  --dry-run            print the plan for the target and change nothing
  -h, --help           print this text

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
}

const STRING_OPTIONS = new Set([
  "--endpoint-url",
  "--region",
  "--table-suffix",
  "--config-dir",
  "--only",
  "--s3-bucket",
]);
const FLAGS = new Set([...STRING_OPTIONS, "--dry-run", "--help", "-h"]);

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
  let values;
  try {
    ({ values } = parseArgs({
      args: joinDashValues(argv, STRING_OPTIONS, FLAGS),
      strict: true,
      allowPositionals: false,
      options: {
        "endpoint-url": { type: "string" },
        region: { type: "string" },
        "table-suffix": { type: "string", default: "" },
        "config-dir": { type: "string", default: "config" },
        only: { type: "string", multiple: true },
        "s3-bucket": { type: "string" },
        "dry-run": { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    }));
  } catch (error) {
    throw new ConfigError(`Invalid arguments: ${(error as Error).message.split("\n")[0]}`);
  }
  for (const option of ["config-dir", "s3-bucket"] as const) {
    if (values[option] === "") throw new ConfigError(`Invalid arguments: --${option} is empty`);
  }
  const endpointUrl = values["endpoint-url"];
  checkEndpointUrl(endpointUrl);
  const regionFrom = values.region !== undefined
    ? "--region"
    : env.AWS_REGION
    ? "AWS_REGION"
    : env.AWS_DEFAULT_REGION
    ? "AWS_DEFAULT_REGION"
    : undefined;
  const bucket = values["s3-bucket"] === undefined ? undefined : bucketNameProblem(values["s3-bucket"]);
  if (bucket !== undefined) throw new ConfigError(`Invalid S3 bucket ${quote(values["s3-bucket"])}: ${bucket}`);
  const region = values.region ??
    (endpointUrl === undefined ? undefined : env.AWS_REGION || env.AWS_DEFAULT_REGION || "us-east-1");
  const problem = region === undefined ? undefined : regionProblem(region);
  if (problem !== undefined) throw new ConfigError(`Invalid region ${quote(region)} (${regionFrom}): ${problem}`);
  return {
    help: values.help,
    endpointUrl,
    region,
    suffix: checkTableSuffix(values["table-suffix"]),
    configDir: values["config-dir"],
    only: values.only === undefined ? undefined : parseTableNames(values.only),
    s3Bucket: values["s3-bucket"],
    dryRun: values["dry-run"],
  };
}

/** Where the command prints. */
export interface SeedIo {
  /** Standard output, one line a call. */
  out: (line: string) => void;
  /** Standard error, one line a call. */
  err: (line: string) => void;
  /** The environment. */
  env: Readonly<Record<string, string | undefined>>;
  /** Makes the DynamoDB client; tests pass a fake. Defaults to `createSeedClient`. */
  createClient?: (target: SeedTarget) => DynamoDBClient;
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
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
  io.out("Rules resolved on the in-memory store (client first, then GLOBAL):");
  const width = Math.max(...plan.resolution.map((r) => r.clientId.length));
  for (const r of plan.resolution) {
    io.out(
      `  ${r.clientId.padEnd(width)}  ${r.steps} steps, ${r.lookups} calculation-rule lookups ` +
        `(${r.fromClient} own, ${r.fromGlobal} GLOBAL), ${r.fields} validated fields (${r.fieldsOverridden} own)`,
    );
  }
}

function printProgress(progress: SeedProgress, io: SeedIo): void {
  if (progress.type === "table") {
    const { tableName, status, ttlEnabled, elapsedMs } = progress.outcome;
    io.out(`  table ${tableName}: ${status}${ttlEnabled ? ", TTL enabled" : ""} (${elapsedMs} ms)`);
    return;
  }
  const { tableName, items, written, writeMs, error } = progress.report;
  if (items === 0) return;
  io.out(`  items ${tableName}: ${written} of ${items} written (${writeMs} ms)`);
  if (error !== undefined) io.err(error);
}

function summary(report: SeedReport): string {
  const created = report.tables.filter((table) => table.status === "created").length;
  const tables = `${report.tables.length} tables (${created} created, ${report.tables.length - created} existed)`;
  const items = report.failed === 0
    ? `all ${report.written} items written`
    : `${report.written} of ${report.plan.totalItems} items written, ${report.failed} did not land`;
  return `Summary: ${tables}, ${items}, in ${seconds(report.elapsedMs)}`;
}

/**
 * Runs the command.
 *
 * @param argv The arguments after the script name.
 * @param io Where to print, and the environment.
 * @returns The exit code: 0 when everything landed, 1 on any failure, 2 for bad usage.
 */
export async function main(argv: readonly string[], io: SeedIo): Promise<number> {
  let command: SeedCommand;
  try {
    command = parseSeedArgs(argv, io.env);
    if (!command.help && !(await isDirectory(command.configDir))) {
      throw new ConfigError(`Invalid config directory ${quote(command.configDir)}: it is not a directory`);
    }
  } catch (error) {
    io.err((error as Error).message);
    io.err("");
    io.err(USAGE);
    return 2;
  }
  if (command.help) {
    io.out(USAGE);
    return 0;
  }
  const { endpointUrl, region, suffix, configDir, only, s3Bucket, dryRun } = command;
  // Printed without the endpoint's userinfo, if it has one.
  const where = endpointUrl === undefined ? "AWS" : redactUrl(endpointUrl);
  try {
    const data = await loadSeedData(configDir);
    const plan = await planSeed(data, { suffix, only });
    printPlan(plan, configDir, io);
    if (region === undefined || dryRun) {
      const target = region === undefined ? "in-memory backend" : `DynamoDB ${where} (region ${region})`;
      io.out(`Plan for ${target}, table suffix ${quote(suffix)}:`);
      const width = Math.max(...plan.tables.map((table) => table.tableName.length));
      for (const table of plan.tables) {
        io.out(`  ${table.tableName.padEnd(width)}  create if missing, then write ${table.items} items`);
      }
      if (s3Bucket !== undefined) io.out(`  S3 bucket ${quote(s3Bucket)}: create if missing`);
      const hint = region === undefined ? "; pass --endpoint-url or --region to seed DynamoDB" : "";
      io.out(
        `Summary: plan only, nothing written: ${plan.tables.length} tables and ${plan.totalItems} items${hint}`,
      );
      return 0;
    }
    io.out(`Seeding DynamoDB ${where} (region ${region}), table suffix ${quote(suffix)}:`);
    const client = (io.createClient ?? createSeedClient)({ region, endpointUrl });
    try {
      const report = await runSeed(client, data, {
        suffix,
        only,
        onProgress: (progress) => printProgress(progress, io),
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
      client.destroy();
    }
  } catch (error) {
    const message = error instanceof BlueStarError ? error.message : `Seed failed: ${String(error)}`;
    for (const line of message.split("\n")) io.err(line);
    return 1;
  }
}

if (isMainModule(import.meta)) await runCommand(main);
