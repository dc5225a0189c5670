#!/usr/bin/env node
/**
 * `bluestar-audit`, the npm package's command: `deno task audit` under
 * Node. Options, output and exit codes are the audit script's own
 * (`bluestar-audit --help`). A separate file for the reason given in
 * `bluestar_seed.ts`: npm links a `bin` entry into `node_modules/.bin`,
 * where the script's own "am I the main module?" test does not hold.
 *
 * @module
 */

import { runCommand } from "../cli_args.ts";
import { main } from "../audit.ts";

await runCommand(main);
