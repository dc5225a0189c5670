/**
 * `deno task audit`: seal a batch's audit trail, or verify one or every
 * trail sealed since a date, on DynamoDB (and the S3 bucket holding the
 * seal copies). Run `deno task audit --help` for the options.
 *
 * The logic lives in the rules store (`sealAuditTrail`,
 * `verifyAuditTrail`) and `src/persistence/audit_seals.ts`; this file
 * parses arguments and prints. Exit codes: 0 when the seal landed or every
 * trail verified, 1 when anything failed or did not verify, 2 for bad usage.
 *
 * @module
 */

import { type CommandIo, commandOrUsage, parseCommandLine, parseTarget, runWhenMain } from "./cli.ts";
import { type AuditSeal, MAX_SEAL_RETENTION_DAYS } from "../src/core/audit.ts";
import { BlueStarError, ConfigError, quote } from "../src/core/errors.ts";
import { checkId } from "../src/core/keys.ts";
import type { IFileStore, IRulesStore } from "../src/core/protocols.ts";
import { listSealedBatches } from "../src/persistence/audit_seals.ts";
import { DynamoDBRulesStore } from "../src/persistence/dynamodb_backend.ts";
import { bucketProblems, integerProblems, usageProblemText } from "../src/persistence/options.ts";
import { S3FileStore } from "../src/persistence/s3_backend.ts";
import { checkTableSuffix } from "../src/persistence/seed.ts";

/** The usage text. */
export const USAGE: string = `Usage: deno task audit seal --batch ID --actor NAME [target options]
       deno task audit verify (--batch ID | --all-sealed-since DATE) [target options]
       bluestar-audit ...         (the npm package's command, on Node)

seal     seals the batch's audit trail: the SHA-256 Merkle root over its
         entries, stored in the audit-log table and, with --s3-bucket, as
         audit-seals/{batchId}.json with Object Lock retention where the
         bucket has Object Lock. Appends to the batch are refused from then on.
verify   recomputes each root from the stored entries and compares it with
         the seal in the table and the seal copy in the bucket, naming every
         problem. --all-sealed-since verifies every seal copy in the bucket
         sealed at or after DATE (YYYY-MM-DD or an ISO 8601 time).

Target options (one of --endpoint-url and --region is required):
  --endpoint-url URL      DynamoDB and S3 endpoint, e.g. http://127.0.0.1:4566
  --region REGION         AWS region (default with --endpoint-url: $AWS_REGION, else us-east-1)
  --table-suffix S        suffix of every table name, e.g. -dev (default: none)
  --s3-bucket NAME        the bucket of the seal copies (without it, verify cannot
                          pass: no copy outside DynamoDB is checked)
  --retention-days N      seal: days the seal copy is retained (default: 1552)
  -h, --help              print this text

Exit code: 0 when the seal landed or every trail verified, 1 when anything
failed or did not verify, 2 for bad usage.`;

/** What the command line asks for. */
export interface AuditCommand {
  /** Print the usage text and stop. */
  help: boolean;
  /** `seal` or `verify`. */
  action: "seal" | "verify";
  /** The batch, for `seal` and a single `verify`. */
  batchId?: string;
  /** Who seals. */
  actor?: string;
  /** For a sweep: seals at or after this time. */
  sealedSince?: Date;
  /** The endpoint, when not AWS's. */
  endpointUrl?: string;
  /** The region. */
  region: string;
  /** The table suffix. */
  suffix: string;
  /** The bucket of the seal copies. */
  s3Bucket?: string;
  /** Retention of a new seal copy, in days. */
  retentionDays?: number;
}

/**
 * Parses the command line (strict: an unknown flag or a stray argument is an error).
 *
 * @param argv The arguments after the script name.
 * @param env The environment, for `AWS_REGION`.
 * @returns The command.
 * @throws {ConfigError} When an argument is unknown, missing, or invalid.
 */
export function parseAuditArgs(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>> = {},
): AuditCommand {
  const parsed = parseCommandLine(argv, {
    allowPositionals: true,
    options: {
      batch: { type: "string" },
      actor: { type: "string" },
      "all-sealed-since": { type: "string" },
      "endpoint-url": { type: "string" },
      region: { type: "string" },
      "table-suffix": { type: "string", default: "" },
      "s3-bucket": { type: "string" },
      "retention-days": { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  const { values, positionals } = parsed;
  const invalid = (message: string) => new ConfigError(`Invalid arguments: ${message}`);
  if (values.help) return { help: true, action: "verify", region: "", suffix: "" };
  const [action, ...rest] = positionals;
  if (action !== "seal" && action !== "verify") throw invalid(`the command ${quote(action)} is not seal or verify`);
  if (rest.length > 0) throw invalid(`unexpected ${quote(rest[0])}`);
  const batchId = values.batch;
  if (batchId !== undefined) checkId("batch id", batchId);
  const since = values["all-sealed-since"];
  let sealedSince: Date | undefined;
  if (action === "seal") {
    if (batchId === undefined) throw invalid("seal needs --batch");
    if (values.actor === undefined || values.actor === "") throw invalid("seal needs --actor");
    if (since !== undefined) throw invalid("--all-sealed-since is for verify");
  } else {
    if ((batchId === undefined) === (since === undefined)) throw invalid("verify needs --batch or --all-sealed-since");
    if (values.actor !== undefined) throw invalid("--actor is for seal");
    if (values["retention-days"] !== undefined) throw invalid("--retention-days is for seal");
    if (since !== undefined) {
      sealedSince = /^\d{4}-\d{2}-\d{2}(T.+)?$/.test(since) ? new Date(since) : undefined;
      if (sealedSince === undefined || Number.isNaN(sealedSince.getTime())) {
        throw invalid(`--all-sealed-since ${quote(since)} is not a date (YYYY-MM-DD) or an ISO 8601 time`);
      }
      if (values["s3-bucket"] === undefined) {
        throw invalid("--all-sealed-since needs --s3-bucket (it lists the seal copies)");
      }
    }
  }
  const retention = values["retention-days"];
  // Plain decimal digits only: Number() would take "1e3" and "0x10".
  const retentionDays = retention === undefined ? undefined : /^\d+$/.test(retention) ? Number(retention) : Number.NaN;
  const [retentionProblem] = retentionDays === undefined
    ? []
    : integerProblems("--retention-days", retentionDays, 1, MAX_SEAL_RETENTION_DAYS);
  if (retentionProblem !== undefined) {
    throw new ConfigError(
      usageProblemText("retention days", { ...retentionProblem, value: retention }, "--retention-days"),
    );
  }
  const { endpointUrl, region } = parseTarget(values, env);
  if (region === undefined) throw invalid("give --endpoint-url or --region (the audit trail is on DynamoDB)");
  const bucket = values["s3-bucket"];
  const [bucketProblem] = bucket === undefined ? [] : bucketProblems("--s3-bucket", bucket);
  if (bucketProblem !== undefined) throw new ConfigError(usageProblemText("S3 bucket", bucketProblem));
  return {
    help: false,
    action,
    batchId,
    actor: values.actor,
    sealedSince,
    endpointUrl,
    region,
    suffix: checkTableSuffix(values["table-suffix"]),
    s3Bucket: bucket,
    retentionDays,
  };
}

/** The stores a command works on. */
export interface AuditStores {
  /** The rules store, with the seal copies' file store wired in. */
  rules: IRulesStore;
  /** The file store of the seal copies, when a bucket was given. */
  files?: IFileStore;
  /** Releases the connections. */
  close(): Promise<void>;
}

/** Where the command prints, and how it opens stores. */
export interface AuditIo extends CommandIo {
  /** Opens the stores of a command; tests pass memory stores. Defaults to DynamoDB and S3. */
  open?: (command: AuditCommand) => AuditStores;
}

function openAwsStores(command: AuditCommand): AuditStores {
  const target = { region: command.region, endpointUrl: command.endpointUrl };
  const files = command.s3Bucket === undefined ? undefined : new S3FileStore({ ...target, bucket: command.s3Bucket });
  const rules = new DynamoDBRulesStore({
    ...target,
    tableSuffix: command.suffix,
    sealFiles: files,
    sealRetentionDays: command.retentionDays,
  });
  return {
    rules,
    files,
    close: async () => {
      await rules.close();
      files?.close();
    },
  };
}

function describeSeal(seal: AuditSeal): string {
  return `${seal.entryCount} entries, root ${seal.root}, sealed ${seal.sealedAt} by ${quote(seal.actor)}`;
}

/**
 * Runs the command.
 *
 * @param argv The arguments after the script name.
 * @param io Where to print, the environment, and how to open stores.
 * @returns The exit code: 0 when the seal landed or every trail verified, 1 otherwise, 2 for bad usage.
 */
export async function main(argv: readonly string[], io: AuditIo): Promise<number> {
  const command = await commandOrUsage(() => parseAuditArgs(argv, io.env), USAGE, io);
  if (typeof command === "number") return command;
  const stores = (io.open ?? openAwsStores)(command);
  try {
    if (command.action === "seal") {
      const seal = await stores.rules.sealAuditTrail(command.batchId!, { actor: command.actor! });
      io.out(`sealed  ${command.batchId}: ${describeSeal(seal)}`);
      if (stores.files === undefined) io.out("note: no --s3-bucket, so no seal copy was written outside DynamoDB");
      return 0;
    }
    const batches = command.batchId !== undefined
      ? [command.batchId]
      : await listSealedBatches(stores.files!, command.sealedSince!);
    if (command.sealedSince !== undefined) {
      io.out(`${batches.length} seal copies since ${command.sealedSince.toISOString()}`);
    }
    let failed = 0;
    for (const batchId of batches) {
      const verification = await stores.rules.verifyAuditTrail(batchId);
      if (verification.ok) {
        io.out(`ok      ${batchId}: ${describeSeal(verification.seal)}`);
        continue;
      }
      failed++;
      io.out(`FAILED  ${batchId}:`);
      for (const problem of verification.problems) io.out(`  - ${problem}`);
    }
    io.out(
      failed === 0
        ? `Summary: all ${batches.length} trails verify`
        : `Summary: ${failed} of ${batches.length} trails do not verify`,
    );
    return failed === 0 ? 0 : 1;
  } catch (error) {
    const message = error instanceof BlueStarError ? error.message : `Audit failed: ${String(error)}`;
    for (const line of message.split("\n")) io.err(line);
    return 1;
  } finally {
    await stores.close();
  }
}

await runWhenMain(import.meta, main);
