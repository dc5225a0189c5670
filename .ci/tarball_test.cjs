// The packed npm tarball as a Node user gets it. `.ci/run` copies this file
// into a scratch project that has installed the tarball and runs it with
// `node --test` under each supported Node line. CommonJS on purpose: the
// package must load through `require()` as well as `import`.
//
// Environment: BLUESTAR_CI_ROOT (the checkout, for `deno task seed --help`),
// BLUESTAR_CI_SUFFIX and BLUESTAR_CI_BUCKET (a fresh environment on the local
// endpoint), and the usual AWS_* / BLUESTAR_* variables of the integration run.
"use strict";
const assert = require("node:assert/strict");
const { execFile } = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");
const { describe, it } = require("node:test");

const { BLUESTAR_CI_ROOT, BLUESTAR_CI_SUFFIX, BLUESTAR_CI_BUCKET, BLUESTAR_AWS_ENDPOINT_URL } = process.env;

/** Runs a command in the scratch project; resolves with its exit code and output. */
function run(command, args, { env = process.env, cwd = process.cwd() } = {}) {
  return new Promise((resolve) => {
    execFile(command, args, { cwd, env, maxBuffer: 16 << 20 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : Number(error.code ?? 1), stdout, stderr });
    });
  });
}

/** The long options a usage text names, sorted. */
const optionsOf = (usage) => [...new Set(usage.match(/--[a-z][a-z-]*/g))].sort();

/** Asserts a process ended with 0 and printed no AWS SDK support warning. */
function assertClean(result, what) {
  assert.equal(result.code, 0, `${what} exited ${result.code}:\n${result.stdout}\n${result.stderr}`);
  assert.doesNotMatch(result.stderr, /NodeVersionSupportWarning/, `${what} printed the AWS SDK's support warning`);
}

describe(`the npm package on Node ${process.version}`, () => {
  it('require() loads it and createPersistence({ backend: "memory" }) serves the reference backends', async () => {
    const { createPersistence, MemoryRulesStore, RuleNotFoundError } = require("@bluestar/persistence");
    const persistence = createPersistence({ backend: "memory" });
    try {
      assert.equal(persistence.config.backend, "memory");
      assert.ok(persistence.rules instanceof MemoryRulesStore);
      await assert.rejects(persistence.rules.getCalculationRule("ACME_CORP", "OVERTIME"), RuleNotFoundError);
    } finally {
      await persistence.close();
    }
  });

  it("require() and import() return the same module, so its classes are one set", async () => {
    const required = require("@bluestar/persistence");
    const imported = await import("@bluestar/persistence");
    assert.equal(required.RuleNotFoundError, imported.RuleNotFoundError);
    assert.equal(required.createPersistence, imported.createPersistence);
  });

  it("the core loads without the optional peer @opentelemetry/api; ./otel is exported and is what needs it", () => {
    assert.throws(() => require.resolve("@opentelemetry/api"), { code: "MODULE_NOT_FOUND" });
    assert.equal(typeof require("@bluestar/persistence").createPersistence, "function");
    const root = path.resolve(path.dirname(require.resolve("@bluestar/persistence")), "..");
    const manifest = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8"));
    assert.deepEqual(manifest.peerDependenciesMeta, { "@opentelemetry/api": { optional: true } });
    assert.ok(!("@opentelemetry/api" in manifest.dependencies));
    assert.equal(require.resolve("@bluestar/persistence/otel"), path.join(root, "esm", "src", "otel.js"));
    assert.throws(() => require("@bluestar/persistence/otel"), /@opentelemetry\/api/);
  });

  it("npx bluestar-seed --help names the same options as deno task seed --help", async () => {
    const npm = await run("npx", ["--no-install", "bluestar-seed", "--help"]);
    assertClean(npm, "npx bluestar-seed --help");
    const deno = await run("deno", ["task", "--quiet", "seed", "--help"], { cwd: BLUESTAR_CI_ROOT });
    assert.equal(deno.code, 0, deno.stderr);
    assert.match(npm.stdout, /^Usage: .*\n\s+bluestar-seed \[options\]/);
    assert.deepEqual(optionsOf(npm.stdout), optionsOf(deno.stdout));
    assert.ok(optionsOf(npm.stdout).includes("--endpoint-url"));
  });

  it("npx bluestar-seed plans on the in-memory store from the seed data the package ships", async () => {
    const result = await run("npx", ["--no-install", "bluestar-seed"]);
    assertClean(result, "npx bluestar-seed");
    assert.match(result.stdout, /1 plan of 26 steps/);
    assert.match(result.stdout, /^Summary: plan only, nothing written: 8 tables and \d+ items/m);
  });

  it("npx bluestar-rules explain answers from the seed data the package ships, without a target", async () => {
    const result = await run("npx", [
      "--no-install",
      "bluestar-rules",
      "explain",
      "--client",
      "ACME_CORP",
      "--rule",
      "OVERTIME",
      "--as-of",
      "2025-03-01",
    ]);
    assertClean(result, "npx bluestar-rules explain");
    assert.match(result.stdout, /^ACME_CORP OVERTIME as of 2025-03-01, from the in-memory store loaded from /m);
    assert.match(
      result.stdout,
      /^ {2}Why: ACME_CORP's override starts 2025-07-01; GLOBAL's version 2024-01-01\.\.open answers$/m,
    );
    const help = await run("npx", ["--no-install", "bluestar-rules", "--help"]);
    assertClean(help, "npx bluestar-rules --help");
    assert.match(help.stdout, /bluestar-rules \.\.\./);
  });

  it("npx bluestar-audit --help prints the audit command's usage; bad usage exits 2", async () => {
    const help = await run("npx", ["--no-install", "bluestar-audit", "--help"]);
    assertClean(help, "npx bluestar-audit --help");
    assert.match(help.stdout, /^Usage: deno task audit seal .*\n.*\n\s+bluestar-audit \.\.\./);
    const bad = await run("npx", ["--no-install", "bluestar-audit", "unseal"]);
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /Usage: deno task audit/);
  });

  it("npx bluestar-seed seeds a fresh environment on the local endpoint, and the Node agent runs on it", async () => {
    const seed = await run("npx", [
      "--no-install",
      "bluestar-seed",
      "--endpoint-url",
      BLUESTAR_AWS_ENDPOINT_URL,
      "--table-suffix",
      BLUESTAR_CI_SUFFIX,
      "--s3-bucket",
      BLUESTAR_CI_BUCKET,
    ]);
    assertClean(seed, "npx bluestar-seed --endpoint-url");
    assert.match(seed.stdout, /^Summary: 8 tables \(8 created, 0 existed\), \d+ created, 0 updated, 0 unchanged/m);

    const agent = await run("node", ["node_agent.mjs"], {
      env: {
        ...process.env,
        BLUESTAR_BACKEND: "aws",
        BLUESTAR_TABLE_SUFFIX: BLUESTAR_CI_SUFFIX,
        BLUESTAR_S3_BUCKET: BLUESTAR_CI_BUCKET,
      },
    });
    assertClean(agent, "node node_agent.mjs (aws)");
    assert.doesNotMatch(agent.stdout, /^FAIL/m);
  });

  it("the Node agent runs in memory on the seed data the package ships", async () => {
    const agent = await run("node", ["node_agent.mjs"], { env: { ...process.env, BLUESTAR_BACKEND: "memory" } });
    assertClean(agent, "node node_agent.mjs (memory)");
    assert.match(agent.stdout, /^ok +pipeline DEFAULT_BiWeeklyFri has 26 steps$/m);
    assert.doesNotMatch(agent.stdout, /^FAIL/m);
  });
});
