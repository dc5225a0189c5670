/**
 * What the npm package's commands share: running a script's `main` under
 * Node with the seed data the package ships (`esm/config/`) as the default
 * `--config-dir`.
 *
 * The commands are separate files because npm links a `bin` entry into
 * `node_modules/.bin`, where a script's own "am I the main module?" test
 * does not hold; these files always run.
 *
 * @module
 */

import process from "node:process";
import { fileURLToPath } from "node:url";
import { type CommandIo, runCommand } from "../cli.ts";

/** The seed data beside the package's scripts: `config/` in a checkout, `esm/config/` in the npm package. */
const SHIPPED_CONFIG_DIR = fileURLToPath(new URL("../../config/", import.meta.url));

/**
 * Runs a command with this process's arguments, `--config-dir` defaulting
 * to the shipped seed data, and sets the exit code.
 *
 * @param main The command.
 * @returns When it is done.
 */
export async function runWithShippedConfig(
  main: (argv: readonly string[], io: CommandIo) => Promise<number>,
): Promise<void> {
  const argv = process.argv.slice(2);
  const hasConfigDir = argv.some((arg) => arg === "--config-dir" || arg.startsWith("--config-dir="));
  await runCommand(main, hasConfigDir ? argv : [...argv, "--config-dir", SHIPPED_CONFIG_DIR]);
}
