#!/usr/bin/env node
/**
 * `bluestar-seed`, the npm package's command: `deno task seed` under Node,
 * with the seed data the package ships (`esm/config/`) as the default
 * `--config-dir`. Options, output and exit codes are the seed script's own
 * (`bluestar-seed --help`).
 *
 * The command is a separate file because npm links a `bin` entry into
 * `node_modules/.bin`, where the seed script's own "am I the main module?"
 * test does not hold; this file always runs. Each command has a file of
 * its own beside this one (`bluestar_audit.ts`), and an entry in
 * `build_npm.ts`'s `BIN` map.
 *
 * @module
 */

import process from "node:process";
import { fileURLToPath } from "node:url";
import { main } from "../seed_dynamodb.ts";

/** The seed data beside the package's scripts: `config/` in a checkout, `esm/config/` in the npm package. */
const SHIPPED_CONFIG_DIR = fileURLToPath(new URL("../../config/", import.meta.url));

const argv = process.argv.slice(2);
const hasConfigDir = argv.some((arg) => arg === "--config-dir" || arg.startsWith("--config-dir="));
process.exitCode = await main(hasConfigDir ? argv : ["--config-dir", SHIPPED_CONFIG_DIR, ...argv], {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
  env: process.env,
});
