/**
 * `deno task check` step: every symbol an entry point (`mod.ts`,
 * `src/otel.ts`) exports, and every public member of an exported class or
 * interface, has a doc comment (`deno doc --lint` checks this too, but also
 * fails on the AWS SDK's own types that the backends' options name), and
 * `deno doc` of the entry points prints no warning.
 *
 * The doc comments of `mod.ts` and `src/` must also be checkable: no
 * example marked `ignore` (`deno check --doc` skips it, so it rots), and no
 * `{@inheritDoc}` (`deno doc` and TypeScript show it as literal text; a
 * member with no doc comment inherits its interface's). The examples that
 * need no network then run, without network access.
 *
 * @module
 */

import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

/** Files whose examples reach AWS or Redis: `deno check --doc` type-checks them; nothing runs them. */
const NETWORK_EXAMPLES = new Set([
  "src/persistence/dynamodb_backend.ts",
  "src/persistence/mod.ts",
  "src/persistence/provision.ts",
  "src/persistence/redis_backend.ts",
  "src/persistence/s3_backend.ts",
  "src/persistence/seed.ts",
  "src/persistence/seed_plan.ts",
]);

interface DocNode {
  name: string;
  jsDoc?: { doc?: string };
  accessibility?: string;
  isPrivate?: boolean;
}
interface Symbol {
  name: string;
  declarations: Array<{ jsDoc?: { doc?: string }; kind: string; def?: Record<string, DocNode[] | undefined> }>;
}

/** The package's entry points (deno.json `exports`): `mod.ts` and `src/otel.ts`. */
const entries = Object.values(JSON.parse(readFileSync("deno.json", "utf8")).exports as Record<string, string>);
const docRun = spawnSync("deno", ["doc", "--json", ...entries], {
  encoding: "utf8",
  maxBuffer: 64 << 20,
  env: { ...process.env, NO_COLOR: "1" },
  stdio: ["ignore", "pipe", "pipe"],
});
if (docRun.status !== 0) {
  console.error(docRun.stderr);
  process.exit(1);
}

/**
 * Deno 2.9.6 (the newest release) hands the bare `/// <reference path="zlib.d.ts" />`
 * lines of `@types/node`'s index.d.ts to the package resolver, which finds no
 * such package (denoland/deno#36751; the fix, denoland/deno_graph#668, is not
 * released). `@types/node` is in the graph because redis's declarations say
 * `/// <reference types="node" />`; without it those fail instead. A warning
 * is that bug only when the line it points at is such a reference and
 * TypeScript finds the file beside index.d.ts; any other warning fails.
 */
function isDenoPathReferenceBug(warning: string): boolean {
  const match =
    /^Warning Failed resolving types\. Could not find package '[^']+' from referrer '(file:[^']+\/@types\/node\/index\.d\.ts)'\.\n\s+at \1:(\d+):\d+\n/
      .exec(warning);
  if (match === null) return false;
  const indexDts = fileURLToPath(match[1]);
  const line = readFileSync(indexDts, "utf8").split("\n")[Number(match[2]) - 1] ?? "";
  const reference = /^\/\/\/ <reference path="([^"./][^"]*)" \/>$/.exec(line.trim());
  return reference !== null && existsSync(join(dirname(indexDts), reference[1]));
}
const warnings = docRun.stderr.split(/^(?=Warning )/m).filter((block) => block.startsWith("Warning "));
const unexpected = warnings.filter((warning) => !isDenoPathReferenceBug(warning));
if (unexpected.length > 0) {
  console.error(`deno doc ${entries.join(" ")} printed ${unexpected.length} warnings:\n${unexpected.join("")}`);
  process.exit(1);
}
const nodes = JSON.parse(docRun.stdout).nodes as Record<string, { symbols: Symbol[] }>;
const undocumented: string[] = [];
const documented = (doc?: { doc?: string }) => (doc?.doc ?? "").trim().length > 0;

for (const symbol of Object.values(nodes).flatMap((node) => node.symbols)) {
  for (const declaration of symbol.declarations) {
    if (!documented(declaration.jsDoc)) undocumented.push(symbol.name);
    for (const group of ["methods", "properties", "constructors", "indexSignatures"]) {
      for (const member of declaration.def?.[group] ?? []) {
        if (member.accessibility === "private" || member.isPrivate || member.name?.startsWith("#")) continue;
        if (!documented(member.jsDoc)) undocumented.push(`${symbol.name}.${member.name ?? group}`);
      }
    }
  }
}

if (undocumented.length > 0) {
  console.error(`Exported without a doc comment: ${[...new Set(undocumented)].join(", ")}`);
  process.exit(1);
}
console.log(
  `Every export of ${
    entries.join(" and ")
  } has a doc comment; deno doc prints no warning but ${warnings.length} from denoland/deno#36751`,
);

const sources = [
  "mod.ts",
  ...readdirSync("src", { recursive: true, encoding: "utf8" })
    .filter((path) => path.endsWith(".ts"))
    .map((path) => join("src", path).replaceAll("\\", "/"))
    .sort(),
];
const unchecked: string[] = [];
for (const path of sources) {
  readFileSync(path, "utf8").split("\n").forEach((line, index) => {
    const where = `${path}:${index + 1}`;
    // A fence's attributes follow its language: "```ts ignore" is never type-checked.
    if (/^\s*\*\s*```.*\bignore\b/.test(line)) unchecked.push(`${where}: an example marked ignore`);
    if (line.includes("{@inheritDoc")) unchecked.push(`${where}: {@inheritDoc}, shown as literal text`);
  });
}
if (unchecked.length > 0) {
  console.error(
    `Docs that no check covers (type-check the example; drop the doc comment to inherit the interface's):\n  ${
      unchecked.join("\n  ")
    }`,
  );
  process.exit(1);
}

// `--no-check`: `deno check --doc` has type-checked every example already; no `--allow-net`, so none reaches a service.
const runnable = sources.filter((path) => !NETWORK_EXAMPLES.has(path));
try {
  execFileSync("deno", ["test", "--doc", "--no-check", "--allow-read", "--allow-env", ...runnable], {
    encoding: "utf8",
    maxBuffer: 64 << 20,
    stdio: ["ignore", "pipe", "pipe"],
  });
} catch (error) {
  const { stdout = "", stderr = "" } = error as { stdout?: string; stderr?: string };
  console.error(`${stdout}${stderr}The examples that need no network failed (deno test --doc ${runnable.join(" ")})`);
  process.exit(1);
}
console.log(`No unchecked examples; the examples of ${runnable.length} files that need no network ran`);
