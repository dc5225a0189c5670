#!/usr/bin/env node
/**
 * `bluestar-rules`, the npm package's command: `deno task rules` under
 * Node, with the seed data the package ships (`esm/config/`) as the default
 * `--config-dir`, so `bluestar-rules explain ...` works before anything is
 * deployed. Options, output and exit codes are the rules script's own
 * (`bluestar-rules --help`).
 *
 * @module
 */

import { main } from "../rules.ts";
import { runWithShippedConfig } from "./shipped.ts";

await runWithShippedConfig(main);
