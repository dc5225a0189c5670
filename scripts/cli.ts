/**
 * What the command-line scripts share (`seed_dynamodb.ts`, `rules.ts`,
 * `audit.ts`): reading string options whose values start with `-`, the
 * DynamoDB target the flags choose, usage errors, and process wiring.
 *
 * @module
 */

import { stat } from "node:fs/promises";
import process from "node:process";
import { pathToFileURL } from "node:url";
import { parseArgs, type ParseArgsConfig } from "node:util";
import { ConfigError, quote } from "../src/core/errors.ts";
import { endpointUrlProblems, regionProblems, usageProblemText } from "../src/persistence/options.ts";

/**
 * `parseArgs` takes `--table-suffix -dev` for a flag missing its value; a
 * suffix that starts with `-` is the usual case, so a string option's next
 * argument is its value unless it is itself one of the flags.
 *
 * @param argv The arguments.
 * @param stringOptions The options that take a value, e.g. `"--table-suffix"`.
 * @param flags Every option the command knows.
 * @returns The arguments, each dash value joined to its option with `=`.
 */
export function joinDashValues(
  argv: readonly string[],
  stringOptions: ReadonlySet<string>,
  flags: ReadonlySet<string>,
): string[] {
  const args: string[] = [];
  for (let index = 0; index < argv.length; index++) {
    const arg = argv[index];
    const next = argv[index + 1];
    if (stringOptions.has(arg) && next !== undefined && next.startsWith("-") && !flags.has(next)) {
      args.push(`${arg}=${next}`);
      index++;
    } else {
      args.push(arg);
    }
  }
  return args;
}

/**
 * Parses a command line strictly (an unknown flag, a missing value, or a
 * stray argument where `allowPositionals` is off is a `ConfigError`). The
 * values of options that take one may start with `-` (a table suffix does):
 * see {@linkcode joinDashValues}.
 *
 * @param argv The arguments after the script name.
 * @param config `parseArgs`'s configuration without `args` and `strict`.
 * @returns What `parseArgs` returns.
 * @throws {ConfigError} When the arguments do not parse.
 */
export function parseCommandLine<const T extends ParseArgsConfig & { options: object }>(
  argv: readonly string[],
  config: T,
): ReturnType<typeof parseArgs<T & { args: string[]; strict: true }>> {
  const options = Object.entries(config.options as Record<string, { type: string; short?: string }>);
  const valued = new Set(options.filter(([, option]) => option.type === "string").map(([name]) => `--${name}`));
  const flags = new Set(
    options.flatMap(([name, option]) => [`--${name}`, ...(option.short ? [`-${option.short}`] : [])]),
  );
  try {
    return parseArgs({ ...config, args: joinDashValues(argv, valued, flags), strict: true });
  } catch (error) {
    throw new ConfigError(`Invalid arguments: ${(error as Error).message.split("\n")[0]}`);
  }
}

/** The DynamoDB target the flags choose. */
export interface CommandTarget {
  /** The endpoint, when not AWS's. */
  endpointUrl?: string;
  /** The region; set whenever there is a target. */
  region?: string;
}

/**
 * The target the flags choose: none without `--endpoint-url` and
 * `--region` (environment variables never choose one); with
 * `--endpoint-url` alone, the region from `AWS_REGION`, else
 * `AWS_DEFAULT_REGION`, else `us-east-1`.
 *
 * @param values The parsed `--endpoint-url` and `--region`.
 * @param env The environment.
 * @returns The target.
 * @throws {ConfigError} When the endpoint is not an http(s) URL or the region is malformed.
 */
export function parseTarget(
  values: { "endpoint-url"?: string; region?: string },
  env: Readonly<Record<string, string | undefined>>,
): CommandTarget {
  const endpointUrl = values["endpoint-url"];
  const [endpointProblem] = endpointUrl === undefined ? [] : endpointUrlProblems("--endpoint-url", endpointUrl);
  if (endpointProblem !== undefined) throw new ConfigError(usageProblemText("endpoint URL", endpointProblem));
  const regionFrom = values.region !== undefined
    ? "--region"
    : env.AWS_REGION
    ? "AWS_REGION"
    : env.AWS_DEFAULT_REGION
    ? "AWS_DEFAULT_REGION"
    : undefined;
  const region = values.region ??
    (endpointUrl === undefined ? undefined : env.AWS_REGION || env.AWS_DEFAULT_REGION || "us-east-1");
  const [regionProblem] = region === undefined ? [] : regionProblems(regionFrom ?? "region", region);
  if (regionProblem !== undefined) throw new ConfigError(usageProblemText("region", regionProblem, regionFrom));
  return { endpointUrl, region };
}

/** Where a command prints. */
export interface CommandIo {
  /** Standard output, one line a call. */
  out: (line: string) => void;
  /** Standard error, one line a call. */
  err: (line: string) => void;
  /** The environment. */
  env: Readonly<Record<string, string | undefined>>;
}

/**
 * Checks that a directory exists.
 *
 * @param path The directory.
 * @returns The path.
 * @throws {ConfigError} When it is not a directory.
 */
export async function checkDirectory(path: string): Promise<string> {
  let isDirectory = false;
  try {
    isDirectory = (await stat(path)).isDirectory();
  } catch {
    isDirectory = false;
  }
  if (!isDirectory) throw new ConfigError(`Invalid config directory ${quote(path)}: it is not a directory`);
  return path;
}

/**
 * Runs a command's `main` when its module is the program (under Deno or
 * Node), with this process's arguments, output and environment, and sets
 * the exit code.
 *
 * @param meta The command module's `import.meta`.
 * @param main The command.
 * @returns When the command is done (at once when the module is imported).
 */
export async function runWhenMain(
  meta: ImportMeta,
  main: (argv: readonly string[], io: CommandIo) => Promise<number>,
): Promise<void> {
  const isMain = (meta as { main?: boolean }).main ??
    (process.argv[1] !== undefined && pathToFileURL(process.argv[1]).href === meta.url);
  if (isMain) await runCommand(main);
}

/**
 * Runs a command's `main` on this process (its output and environment) and
 * sets the exit code; the npm package's commands call it directly.
 *
 * @param main The command.
 * @param argv The arguments.
 * @default argv This process's arguments after the script name.
 * @returns When the command is done.
 */
export async function runCommand(
  main: (argv: readonly string[], io: CommandIo) => Promise<number>,
  argv: readonly string[] = process.argv.slice(2),
): Promise<void> {
  process.exitCode = await main(argv, processIo());
}

/**
 * This process's output and environment.
 *
 * @returns The io.
 */
export function processIo(): CommandIo {
  return {
    out: (line) => process.stdout.write(`${line}\n`),
    err: (line) => process.stderr.write(`${line}\n`),
    env: process.env,
  };
}

/**
 * Parses a command line for a command's `main`: a usage error prints the
 * reason and the usage text on stderr (exit code 2), `--help` the usage
 * text on stdout (exit code 0).
 *
 * @param parse Parses (and checks) the arguments; throws on bad usage.
 * @param usage The usage text.
 * @param io Where to print.
 * @returns The command to run, or the exit code when there is nothing to run.
 */
export async function commandOrUsage<C extends { help: boolean }>(
  parse: () => C | Promise<C>,
  usage: string,
  io: CommandIo,
): Promise<C | number> {
  let command: C;
  try {
    command = await parse();
  } catch (error) {
    io.err((error as Error).message);
    io.err("");
    io.err(usage);
    return 2;
  }
  if (!command.help) return command;
  io.out(usage);
  return 0;
}
