#!/usr/bin/env node
/**
 * `bluestar-audit`, the npm package's command: `deno task audit` under
 * Node. Options, output and exit codes are the audit script's own
 * (`bluestar-audit --help`). It reads no seed data, so it runs the script
 * as is rather than through `shipped.ts`; a separate file for the reason
 * given there: npm links a `bin` entry into `node_modules/.bin`, where the
 * script's own "am I the main module?" test does not hold.
 *
 * @module
 */

import { runCommand } from "../cli.ts";
import { main } from "../audit.ts";

await runCommand(main);
