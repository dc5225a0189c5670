// Builds the npm package in npm/ (what dnt would do, with the TypeScript
// compiler from the npm registry): ESM JavaScript and .d.ts files, relative
// `.ts` imports rewritten to `.js` and checked, a package.json generated from
// deno.json, README and LICENSE, the seed data and the commands (`bin`). The
// test files are compiled beside it (npm/esm/tests, not published) so the same
// tests run under `node --test`, with the seed script and the seed data they
// read, and the runtime-neutral memory benches (npm/esm/bench/file_streams.js,
// npm/esm/bench/read_stream_loopback.js).
//
// One ESM build serves `import` and `require()`: every supported Node (22.12
// and later) loads ES modules synchronously from `require()` when the graph
// has no top-level await, which the library's has not. A second, CommonJS
// build would give a program that both imports and requires the package two
// copies of every class, so `instanceof RuleNotFoundError` would fail across
// them.
//
//   deno task build:npm
import { cp, mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join, relative } from "node:path";
import process from "node:process";
import ts from "typescript";

const root = new URL(".", import.meta.url).pathname;
const out = join(root, "npm");
const denoJson = JSON.parse(await readFile(join(root, "deno.json"), "utf8"));

/** Every .ts file under a folder. */
async function sources(folder: string): Promise<string[]> {
  const entries = await readdir(join(root, folder), { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile() && entry.name.endsWith(".ts"))
    .map((entry) => join(entry.parentPath, entry.name));
}

await rm(out, { recursive: true, force: true });
/**
 * The package's commands: name -> source. Each is a thin file in scripts/bin/
 * that runs a script with the package's own defaults.
 */
const BIN: Record<string, string> = {
  "bluestar-seed": "scripts/bin/bluestar_seed.ts",
  "bluestar-rules": "scripts/bin/bluestar_rules.ts",
  "bluestar-audit": "scripts/bin/bluestar_audit.ts",
};
/** The scripts the commands run, and what they share. */
const SCRIPTS = [
  "scripts/seed_dynamodb.ts",
  "scripts/rules.ts",
  "scripts/audit.ts",
  "scripts/cli.ts",
  "scripts/bin/shipped.ts",
];
const emittedJs = (source: string) => `esm/${source.replace(/\.ts$/, ".js")}`;

const files = [
  join(root, "mod.ts"),
  ...SCRIPTS.map((source) => join(root, source)),
  ...Object.values(BIN).map((source) => join(root, source)),
  ...await sources("src"),
  ...await sources("tests"),
  // Run on either runtime: `node npm/esm/bench/file_streams.js` measures the npm build's memory (not published).
  join(root, "bench", "file_streams.ts"),
  join(root, "bench", "read_stream_loopback.ts"),
];
const program = ts.createProgram(files, {
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.ES2022,
  moduleResolution: ts.ModuleResolutionKind.Bundler,
  lib: ["lib.es2023.d.ts", "lib.dom.d.ts"],
  types: ["node"],
  typeRoots: [join(root, "node_modules/@types")],
  strict: true,
  declaration: true,
  isolatedDeclarations: false,
  allowImportingTsExtensions: true,
  rewriteRelativeImportExtensions: true,
  skipLibCheck: true,
  rootDir: root,
  outDir: join(out, "esm"),
  sourceMap: false,
});
const diagnostics = ts.getPreEmitDiagnostics(program).concat(program.emit().diagnostics);
if (diagnostics.length > 0) {
  console.error(ts.formatDiagnosticsWithColorAndContext(diagnostics, {
    getCanonicalFileName: (name) => name,
    getCurrentDirectory: () => root,
    getNewLine: () => "\n",
  }));
  process.exit(1);
}

// Declarations keep `.ts` specifiers; rewrite them, then check nothing relative still ends in .ts.
const relativeTs = /(from\s+|import\s*\(\s*)(["'])(\.{1,2}\/[^"']+)\.ts\2/g;
const emitted = (await readdir(join(out, "esm"), { recursive: true, withFileTypes: true }))
  .filter((entry) => entry.isFile() && /\.(js|d\.ts)$/.test(entry.name))
  .map((entry) => join(entry.parentPath, entry.name));
for (const file of emitted) {
  const text = await readFile(file, "utf8");
  const rewritten = text.replace(relativeTs, "$1$2$3.js$2");
  if (rewritten !== text) await writeFile(file, rewritten);
  if (/(from\s+|import\s*\(\s*)["']\.{1,2}\/[^"']+\.ts["']/.test(rewritten)) {
    console.error(`Relative .ts import left in ${relative(root, file)}`);
    process.exit(1);
  }
}

const dependencies: Record<string, string> = {};
const devDependencies: Record<string, string> = {};
const devOnly = new Set([
  "@opentelemetry/context-async-hooks",
  "@opentelemetry/sdk-metrics",
  "@opentelemetry/sdk-trace-base",
  "@types/node",
  "aws-sdk-client-mock",
  "fast-check",
  "typescript",
]);
/**
 * Optional peers: only an extra entry point loads them (`./otel` loads
 * `@opentelemetry/api`), so the core installs without them. The range is
 * the API lines the adapter is written against; the tests run on the
 * version deno.json maps (a dev dependency here).
 */
const optionalPeers: Record<string, string> = { "@opentelemetry/api": "^1.9.0" };
// Used by bench/ only, which the package does not ship.
const benchOnly = new Set(["bentocache", "bentocache/", "ioredis"]);
for (const [name, specifier] of Object.entries(denoJson.imports as Record<string, string>)) {
  const match = /^npm:((?:@[^/]+\/)?[^@]+)@(.+)$/.exec(specifier);
  if (match === null || benchOnly.has(name)) continue;
  (devOnly.has(name) || name in optionalPeers ? devDependencies : dependencies)[match[1]] = match[2];
}

const packageJson = {
  name: denoJson.name,
  version: denoJson.version,
  description: denoJson.description,
  license: denoJson.license,
  type: "module",
  main: "./esm/mod.js",
  types: "./esm/mod.d.ts",
  exports: Object.fromEntries(
    Object.entries(denoJson.exports as Record<string, string>).map(([path, source]) => {
      const js = `./${emittedJs(source.replace(/^\.\//, ""))}`;
      return [path, { types: js.replace(/\.js$/, ".d.ts"), import: js, require: js, default: js }];
    }),
  ),
  bin: Object.fromEntries(Object.entries(BIN).map(([name, source]) => [name, emittedJs(source)])),
  files: [
    "esm/mod.js",
    "esm/mod.d.ts",
    "esm/src/",
    "esm/config/",
    ...SCRIPTS.map(emittedJs),
    ...Object.values(BIN).map(emittedJs),
    "README.md",
    "LICENSE",
  ],
  // require() of ES modules without a flag or a warning: Node 22.12 (see above).
  engines: { node: ">=22.12" },
  sideEffects: false,
  // A scoped package is private on its first publish unless it says otherwise.
  publishConfig: { access: "public" },
  dependencies,
  peerDependencies: optionalPeers,
  peerDependenciesMeta: Object.fromEntries(Object.keys(optionalPeers).map((name) => [name, { optional: true }])),
  devDependencies,
};
await mkdir(out, { recursive: true });
await writeFile(join(out, "package.json"), `${JSON.stringify(packageJson, null, 2)}\n`);
await cp(join(root, "README.md"), join(out, "README.md"));
await cp(join(root, "LICENSE"), join(out, "LICENSE"));
await cp(join(root, "config"), join(out, "esm", "config"), { recursive: true });
console.log(`Built ${packageJson.name}@${packageJson.version} in npm/ (${emitted.length} files)`);
