/**
 * Command-line helpers the scripts share (`seed_dynamodb.ts`, `audit.ts`).
 *
 * @module
 */

import process from "node:process";
import { pathToFileURL } from "node:url";
import { ConfigError, quote, redactUrl } from "../src/core/errors.ts";

/**
 * `parseArgs` takes `--table-suffix -dev` for a flag missing its value; a
 * suffix that starts with `-` is the usual case, so a string option's next
 * argument is its value unless it is itself one of the flags.
 *
 * @param argv The arguments.
 * @param stringOptions The options that take a value.
 * @param flags Every option, those with a value included.
 * @returns The arguments, such values joined to their option with `=`.
 *
 * @example A suffix that starts with a dash
 * ```ts
 * import { joinDashValues } from "./cli_args.ts";
 *
 * const options = new Set(["--table-suffix"]);
 * const joined = joinDashValues(["--table-suffix", "-dev"], options, options);
 * console.assert(joined[0] === "--table-suffix=-dev");
 * ```
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
 * Checks an `--endpoint-url` value.
 *
 * @param endpointUrl The value, if given.
 * @throws {ConfigError} When it is not an http(s) URL; the message shows it without credentials.
 *
 * @example A local endpoint
 * ```ts
 * import { checkEndpointUrl } from "./cli_args.ts";
 *
 * checkEndpointUrl("http://127.0.0.1:4566");
 * ```
 */
export function checkEndpointUrl(endpointUrl: string | undefined): void {
  if (endpointUrl === undefined) return;
  let url: URL | undefined;
  try {
    url = new URL(endpointUrl);
  } catch {
    url = undefined;
  }
  if (url === undefined || (url.protocol !== "http:" && url.protocol !== "https:")) {
    throw new ConfigError(
      `Invalid endpoint URL ${quote(redactUrl(endpointUrl))}: it is not an http(s) URL (like "http://127.0.0.1:4566")`,
    );
  }
}

/** Where a command prints, and its environment. */
export interface CommandIo {
  /** Standard output, one line a call. */
  out: (line: string) => void;
  /** Standard error, one line a call. */
  err: (line: string) => void;
  /** The environment. */
  env: Readonly<Record<string, string | undefined>>;
}

/**
 * Runs a command's `main` on this process: its standard streams and
 * environment, its exit code as the process's.
 *
 * @param main The command.
 * @param argv The arguments.
 * @returns When the command is done.
 *
 * @example Run a command
 * ```ts
 * import { runCommand } from "./cli_args.ts";
 *
 * await runCommand((_, io) => {
 *   io.out("hello");
 *   return Promise.resolve(0);
 * }, []);
 * ```
 */
export async function runCommand(
  main: (argv: readonly string[], io: CommandIo) => Promise<number>,
  argv: readonly string[] = process.argv.slice(2),
): Promise<void> {
  process.exitCode = await main(argv, {
    out: (line) => process.stdout.write(`${line}\n`),
    err: (line) => process.stderr.write(`${line}\n`),
    env: process.env,
  });
}

/**
 * Whether a module is the one the process was started with (Deno's
 * `import.meta.main`, else Node's `argv[1]`).
 *
 * @param meta The module's `import.meta`.
 * @returns Whether it is the main module.
 *
 * @example Run only when started directly
 * ```ts
 * import { isMainModule } from "./cli_args.ts";
 *
 * if (isMainModule(import.meta)) console.log("started directly");
 * ```
 */
export function isMainModule(meta: ImportMeta): boolean {
  return (meta as { main?: boolean }).main ??
    (process.argv[1] !== undefined && pathToFileURL(process.argv[1]).href === meta.url);
}
