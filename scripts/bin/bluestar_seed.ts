#!/usr/bin/env node
/**
 * `bluestar-seed`, the npm package's command: `deno task seed` under Node,
 * with the seed data the package ships (`esm/config/`) as the default
 * `--config-dir`. Options, output and exit codes are the seed script's own
 * (`bluestar-seed --help`). Another command gets a file of its own beside
 * this one (see `shipped.ts`), and an entry in `build_npm.ts`'s `BIN` map.
 *
 * @module
 */

import { main } from "../seed_dynamodb.ts";
import { runWithShippedConfig } from "./shipped.ts";

await runWithShippedConfig(main);
