/**
 * `deno task rules`: ask why a calculation rule resolves as it does, and
 * what its history is. Run `deno task rules --help` for the options.
 *
 * - `explain --client C --rule R [--as-of D]`: which version answers on D
 *   (default today, UTC), from which partition and why, with the versions
 *   around it.
 * - `history --client C --rule R`: every version and every audited change
 *   of the client's rule and of GLOBAL's.
 *
 * With `--endpoint-url` or `--region` it reads the live tables; without, the
 * in-memory store loaded from the seed files, so a rule can be asked about
 * before anything is deployed. The logic lives in `src/core/rules_explain.ts`;
 * this file parses arguments and prints. Exit codes: 0 when a version
 * answers (explain) or the history was read, 1 when no version answers or a
 * read failed, 2 for a usage error.
 *
 * @module
 */

import { BlueStarError, ConfigError, redactUrl } from "../src/core/errors.ts";
import type { IRulesStore } from "../src/core/protocols.ts";
import { rangeText } from "../src/core/rules_logic.ts";
import { calculationRuleHistory, explainCalculationRule, type PartitionVersions } from "../src/core/rules_explain.ts";
import type { CalculationRule, CalculationRuleChange } from "../src/core/types.ts";
import { DynamoDBRulesStore } from "../src/persistence/dynamodb_backend.ts";
import { MemoryRulesStore } from "../src/persistence/memory_backend.ts";
import { checkTableSuffix } from "../src/persistence/seed.ts";
import { loadSeedData } from "../src/persistence/seed_data.ts";
import { checkDirectory, type CommandIo, commandOrUsage, parseCommandLine, parseTarget, runWhenMain } from "./cli.ts";

/** The usage text. */
export const USAGE: string = `Usage: deno task rules explain --client ID --rule ID [--as-of YYYY-MM-DD] [target]
       deno task rules history --client ID --rule ID [target]
       bluestar-rules ...          (the npm package's command, on Node)

explain  which version of a calculation rule answers for the client on the
         day, from which partition (the client's own, else GLOBAL's) and why,
         with the versions before and after it
history  every version of the client's rule and of GLOBAL's, closed ones
         included, and every audited change of them

Options:
  --client ID          the client, or GLOBAL
  --rule ID            the calculation rule, e.g. OVERTIME
  --as-of DATE         the day to resolve for (explain; default: today, UTC)
  --endpoint-url URL   read the live tables at this DynamoDB endpoint
  --region REGION      AWS region; alone, it targets AWS itself
                       (default with --endpoint-url: $AWS_REGION, else us-east-1)
  --table-suffix S     suffix of the live table names, e.g. -dev (default: none)
  --config-dir DIR     without a target, the seed files to load into the
                       in-memory store (default: config; for bluestar-rules,
                       the seed data the package ships)
  -h, --help           print this text

Without --endpoint-url or --region nothing is contacted: the rules come from
the seed files. Exit code: 0 when a version answers (explain) or the history
was read, 1 when none answers or a read failed, 2 for bad usage.`;

/** What the command line asks for. */
export interface RulesCommand {
  /** Print the usage text and stop. */
  help: boolean;
  /** The question. */
  action?: "explain" | "history";
  /** The client. */
  clientId: string;
  /** The rule. */
  ruleId: string;
  /** The day (explain); `undefined`: today. */
  asOf?: string;
  /** The DynamoDB endpoint, when not AWS's. */
  endpointUrl?: string;
  /** The region; set whenever there is a target. */
  region?: string;
  /** The table suffix. */
  suffix: string;
  /** The seed files' directory. */
  configDir: string;
}

/**
 * Parses the command line (strict: an unknown flag, a stray argument or a
 * missing `--client` or `--rule` is an error).
 *
 * @param argv The arguments after the script name.
 * @param env The environment, for `AWS_REGION` / `AWS_DEFAULT_REGION`.
 * @returns The command.
 * @throws {ConfigError} When an argument is unknown, missing or invalid.
 */
export function parseRulesArgs(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>> = {},
): RulesCommand {
  const parsed = parseCommandLine(argv, {
    allowPositionals: true,
    options: {
      client: { type: "string" },
      rule: { type: "string" },
      "as-of": { type: "string" },
      "endpoint-url": { type: "string" },
      region: { type: "string" },
      "table-suffix": { type: "string", default: "" },
      "config-dir": { type: "string", default: "config" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  const { values, positionals } = parsed;
  const command = {
    help: values.help,
    clientId: values.client ?? "",
    ruleId: values.rule ?? "",
    asOf: values["as-of"],
    ...parseTarget(values, env),
    suffix: checkTableSuffix(values["table-suffix"]),
    configDir: values["config-dir"],
  };
  if (command.help) return command;
  const [action, ...rest] = positionals;
  if (action !== "explain" && action !== "history") {
    throw new ConfigError(
      `Invalid arguments: ${action === undefined ? "no command" : `unknown command "${action}"`} (explain or history)`,
    );
  }
  if (rest.length > 0) throw new ConfigError(`Invalid arguments: unexpected argument "${rest[0]}"`);
  for (const option of ["client", "rule"] as const) {
    if (!values[option]) throw new ConfigError(`Invalid arguments: --${option} is required`);
  }
  if (action === "history" && values["as-of"] !== undefined) {
    throw new ConfigError("Invalid arguments: --as-of is for explain; history lists every version");
  }
  return { ...command, action };
}

const counted = (count: number, noun: string) => `${count} ${noun}${count === 1 ? "" : "s"}`;

const parametersText = (rule: CalculationRule) =>
  Object.entries(rule.parameters).map(([name, value]) => `${name} ${value}`).join(", ");

const versionText = (rule: CalculationRule) =>
  `${rangeText(rule)} (revision ${rule.revision}): ${parametersText(rule)}`;

function printNeighbours(partition: PartitionVersions, title: string, io: CommandIo): void {
  io.out(`  ${title}: ${counted(partition.versions.length, "version")}`);
  const rows: Array<[string, CalculationRule | null]> = [
    ["before", partition.previous],
    ["covering", partition.covering],
    ["after", partition.next],
  ];
  for (const [place, version] of rows) {
    if (version !== null) io.out(`    ${place.padEnd(8)}  ${versionText(version)}`);
  }
}

function changeText(change: CalculationRuleChange): string {
  const what = change.after === null
    ? `removed ${rangeText(change.before!)} (revision ${change.before!.revision})`
    : change.before === null
    ? `added ${rangeText(change.after)}`
    : `corrected ${rangeText(change.after)} (revision ${change.before.revision} to ${change.after.revision})`;
  const closed = change.closed === null
    ? ""
    : `, closing the version from ${change.closed.after.effectiveFrom} on ${change.closed.after.effectiveTo}`;
  return `${change.at}  ${change.actor}: ${what}${closed}; reason: ${change.reason}`;
}

async function openStore(
  command: RulesCommand,
): Promise<{ store: IRulesStore & { close?(): Promise<void> }; source: string }> {
  if (command.region === undefined) {
    const dir = await checkDirectory(command.configDir);
    return { store: new MemoryRulesStore(await loadSeedData(dir)), source: `the in-memory store loaded from ${dir}` };
  }
  const where = command.endpointUrl === undefined ? "AWS" : redactUrl(command.endpointUrl);
  return {
    store: new DynamoDBRulesStore({
      region: command.region,
      endpointUrl: command.endpointUrl,
      tableSuffix: command.suffix,
    }),
    source: `DynamoDB ${where} (region ${command.region}), table suffix "${command.suffix}"`,
  };
}

/**
 * Runs the command.
 *
 * @param argv The arguments after the script name.
 * @param io Where to print, and the environment.
 * @returns The exit code: 0 when answered, 1 when no version answers or a read failed, 2 for bad usage.
 */
export async function main(argv: readonly string[], io: CommandIo): Promise<number> {
  const command = await commandOrUsage(() => parseRulesArgs(argv, io.env), USAGE, io);
  if (typeof command === "number") return command;
  const { clientId, ruleId } = command;
  let opened: Awaited<ReturnType<typeof openStore>> | undefined;
  try {
    opened = await openStore(command);
    if (command.action === "explain") {
      const asOf = command.asOf ?? new Date().toISOString().slice(0, 10);
      const why = await explainCalculationRule(opened.store, clientId, ruleId, asOf);
      io.out(`${clientId} ${ruleId} as of ${why.asOf}, from ${opened.source}:`);
      io.out(
        why.answer === null
          ? "  Answer: none (a read is a RuleNotFoundError)"
          : `  Answer: ${why.answer.clientId}'s version ${versionText(why.answer)}`,
      );
      io.out(`  Why: ${why.reason}`);
      if (why.own !== null) printNeighbours(why.own, `${clientId}'s own versions`, io);
      printNeighbours(why.global, "GLOBAL's versions", io);
      return why.answer === null ? 1 : 0;
    }
    io.out(`${clientId} ${ruleId} history, from ${opened.source}:`);
    for (const partition of await calculationRuleHistory(opened.store, clientId, ruleId)) {
      const fallback = partition.clientId !== clientId ? " (the fallback)" : "";
      io.out(
        `  ${partition.clientId}${fallback}: ${counted(partition.versions.length, "version")}, ${
          counted(partition.changes.length, "change")
        }`,
      );
      for (const version of partition.versions) io.out(`    version  ${versionText(version)}; ${version.description}`);
      for (const change of partition.changes) io.out(`    change   ${changeText(change)}`);
    }
    return 0;
  } catch (error) {
    const message = error instanceof BlueStarError ? error.message : `Rules failed: ${String(error)}`;
    for (const line of message.split("\n")) io.err(line);
    return 1;
  } finally {
    await opened?.store.close?.();
  }
}

await runWhenMain(import.meta, main);
