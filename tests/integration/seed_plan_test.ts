// The seed as a plan against the local AWS endpoint (moto) and the shared
// Redis: a dry run sends no write command (counted on the client), a changed
// config is applied through the audited rule path and reaches a reader with
// a warm Redis cache at once, what left the config is kept (removed, audited,
// with prune), and a re-run
// changes nothing.
import assert from "node:assert/strict";
import process from "node:process";
import { after, before, it } from "node:test";
import { DeleteTableCommand, type DynamoDBClient, ResourceNotFoundException } from "@aws-sdk/client-dynamodb";
import { RuleNotFoundError } from "../../src/core/errors.ts";
import type { ICacheBackend } from "../../src/core/protocols.ts";
import type { CompleteRulesData } from "../../src/core/schema.ts";
import { DynamoDBRulesStore, type RulesStoreEvent } from "../../src/persistence/dynamodb_backend.ts";
import { RedisCacheBackend } from "../../src/persistence/redis_backend.ts";
import { loadSeedData } from "../../src/persistence/seed_data.ts";
import { createSeedClient, planTarget, runSeed } from "../../src/persistence/seed.ts";
import { tableName, TABLES } from "../../src/persistence/tables.ts";
import { main } from "../../scripts/seed_dynamodb.ts";
import { AWS_ENDPOINT_URL, integrationSuite, probe, REDIS_URL, useLocalAwsCredentials } from "../support/gate.ts";
import { CONFIG_DIR, runScript } from "../support/seed_script.ts";

useLocalAwsCredentials();
const unreachable = (await probe(AWS_ENDPOINT_URL)) ?? (await probe(REDIS_URL.replace(/^redis/, "http")));

/** A seed client that records the name of every command it sends. */
function countingClient(): { client: DynamoDBClient; commands: string[] } {
  const client = createSeedClient({ region: process.env.AWS_REGION ?? "us-east-1", endpointUrl: AWS_ENDPOINT_URL });
  const commands: string[] = [];
  client.middlewareStack.add((next, context) => (args) => {
    commands.push(String(context.commandName));
    return next(args);
  }, { step: "initialize", name: "countCommands" });
  return { client, commands };
}

/** The data set with one GLOBAL calculation rule version changed. */
function withRule(
  data: CompleteRulesData,
  ruleId: string,
  effectiveFrom: string,
  parameters: Record<string, string>,
): CompleteRulesData {
  return {
    ...data,
    calculationRules: data.calculationRules.map((rule) =>
      rule.clientId === "GLOBAL" && rule.ruleId === ruleId && rule.effectiveFrom === effectiveFrom
        ? { ...rule, parameters: { ...rule.parameters, ...parameters } }
        : rule
    ),
  };
}

integrationSuite("seed as a plan against DynamoDB (moto) and Redis", unreachable, () => {
  const suffix = `-seedplan-${crypto.randomUUID().slice(0, 8)}`;
  let client: DynamoDBClient;
  let data: CompleteRulesData;

  before(async () => {
    client = createSeedClient({ region: process.env.AWS_REGION ?? "us-east-1", endpointUrl: AWS_ENDPOINT_URL });
    data = await loadSeedData(CONFIG_DIR);
    const report = await runSeed(client, data, { suffix, ensure: { pollIntervalMs: 20 } });
    assert.equal(report.ok, true);
  });

  after(async () => {
    await Promise.all(TABLES.map(async (table) => {
      try {
        await client.send(new DeleteTableCommand({ TableName: tableName(table.name, suffix) }));
      } catch (error) {
        if (!(error instanceof ResourceNotFoundException)) throw error;
      }
    }));
    client.destroy();
  });

  it("--dry-run against the seeded target reads it and sends no write command", async () => {
    const counting = countingClient();
    const out: string[] = [];
    const err: string[] = [];
    try {
      const code = await main(
        ["--config-dir", CONFIG_DIR, "--endpoint-url", AWS_ENDPOINT_URL, "--table-suffix", suffix, "--dry-run"],
        { out: (line) => out.push(line), err: (line) => err.push(line), env: {}, createClient: () => counting.client },
      );
      assert.equal(code, 0, err.join("\n"));
    } finally {
      counting.client.destroy();
    }
    assert.ok(counting.commands.includes("ScanCommand"), "the live tables were read");
    assert.deepEqual(
      new Set(counting.commands),
      new Set(["DescribeTableCommand", "ScanCommand"]),
      "only reads were sent",
    );
    assert.match(
      out.join("\n"),
      /bluestar-calculation-rules-seedplan-\S+ +exists; 0 to create, 0 to update, 16 unchanged/,
    );
    assert.match(out.at(-1)!, /^Summary: plan only, nothing written: 8 tables, 0 to create, 0 to update, 77 unchanged/);
  });

  it("planTarget() on a changed data set says what changes and sends only reads", async () => {
    const counting = countingClient();
    try {
      const changed = withRule(data, "FUTA", "2024-01-01", { wageBase: "7100" });
      const tables = await planTarget(counting.client, changed, { suffix });
      const calculation = tables.find((table) => table.name === "calculation-rules")!;
      assert.deepEqual(calculation.items.filter((item) => item.action !== "unchanged"), [
        { action: "update", label: "GLOBAL FUTA 2024-01-01..open" },
      ]);
      assert.deepEqual(new Set(counting.commands), new Set(["DescribeTableCommand", "ScanCommand"]));
    } finally {
      counting.client.destroy();
    }
  });

  it("a change reaches a reader with a warm shared Redis cache at once, audited with the seed's reason", async () => {
    const events: RulesStoreEvent[] = [];
    const readerCache = new RedisCacheBackend({ url: REDIS_URL, keyPrefix: "" });
    const seedCache = new RedisCacheBackend({ url: REDIS_URL, keyPrefix: "" });
    const reader = new DynamoDBRulesStore({
      tableSuffix: suffix,
      client,
      cache: readerCache,
      cacheTtlSeconds: 300,
      cacheTimeoutMs: 2000,
      onEvent: (event) => events.push(event),
    });
    try {
      const asOf = { asOf: "2025-03-01" };
      // ACME_CORP's override starts 2025-07-01: GLOBAL's version answers, read through GLOBAL's cache entry.
      assert.equal((await reader.getCalculationRule("ACME_CORP", "OVERTIME", asOf)).parameters.thresholdHours, "40");
      assert.equal((await reader.getCalculationRule("ACME_CORP", "OVERTIME", asOf)).parameters.thresholdHours, "40");
      assert.ok(events.some((event) => event.type === "cache.hit"), "the second read came from Redis");

      const changed = withRule(data, "OVERTIME", "2024-01-01", { thresholdHours: "39" });
      const report = await runSeed(client, changed, { suffix, reason: "FLSA test change", cache: seedCache });
      assert.equal(report.ok, true, report.tables.map((table) => table.error).join("\n"));
      assert.equal(report.written, 1);

      const requests = events.filter((event) => event.type === "dynamodb.request").length;
      const now = await reader.getCalculationRule("ACME_CORP", "OVERTIME", asOf);
      assert.equal(now.parameters.thresholdHours, "39", "no old cached rule after the seed returned");
      assert.equal(now.revision, 2);
      // The seed's change wrote GLOBAL's entry through: the reader finds the new version in Redis.
      assert.equal(events.filter((event) => event.type === "dynamodb.request").length, requests, "no DynamoDB read");

      const [change] = (await reader.listRuleChanges("GLOBAL")).filter((c) => c.reason === "FLSA test change");
      assert.equal(change.actor, "seed");
      assert.equal(change.ruleId, "OVERTIME");
      assert.equal((change.before as { parameters: Record<string, string> }).parameters.thresholdHours, "40");
      assert.equal((change.after as { parameters: Record<string, string> }).parameters.thresholdHours, "39");

      const audited = (await reader.listRuleChanges("GLOBAL")).length;
      const again = await runSeed(client, changed, { suffix, reason: "FLSA test change", cache: seedCache });
      assert.equal(again.written, 0, "a re-run on the same data changes nothing");
      assert.equal((await reader.listRuleChanges("GLOBAL")).length, audited, "and writes no audit record");
    } finally {
      await reader.close();
      await readerCache.close();
      await seedCache.close();
    }
  });

  it("deno task rules reads the live tables: explain names the changed GLOBAL version, history the seed's changes", async () => {
    const target = ["--endpoint-url", AWS_ENDPOINT_URL, "--table-suffix", suffix];
    const env = { ...process.env, NO_COLOR: "1" };
    const explain = await runScript(
      "rules",
      ["explain", "--client", "ACME_CORP", "--rule", "OVERTIME", "--as-of", "2025-03-01", ...target],
      env,
    );
    assert.equal(explain.code, 0, explain.stderr);
    assert.match(
      explain.stdout,
      /^ACME_CORP OVERTIME as of 2025-03-01, from DynamoDB http:\/\/\S+ \(region \S+\), table suffix/,
    );
    assert.match(
      explain.stdout,
      /^ {2}Answer: GLOBAL's version 2024-01-01\.\.open \(revision 2\): multiplier 1\.5, thresholdHours 39$/m,
    );
    const history = await runScript("rules", ["history", "--client", "GLOBAL", "--rule", "OVERTIME", ...target], env);
    assert.equal(history.code, 0, history.stderr);
    assert.match(history.stdout, /^ {2}GLOBAL: 1 version, 2 changes$/m);
    assert.match(history.stdout, /^ {4}change {3}\S+ {2}seed: added 2024-01-01\.\.open; reason: seed data$/m);
    assert.match(
      history.stdout,
      /^ {4}change {3}\S+ {2}seed: corrected 2024-01-01\.\.open \(revision 1 to 2\); reason: FLSA test change$/m,
    );
  });

  it("a rule version no longer in the data set is kept and listed; with prune it is removed through the audited path", async () => {
    const without: CompleteRulesData = {
      ...data,
      calculationRules: data.calculationRules.filter((rule) =>
        !(rule.ruleId === "HSA_CONTRIBUTION" && rule.effectiveFrom < "2026-01-01")
      ),
    };
    const store = new DynamoDBRulesStore({ tableSuffix: suffix, client });
    try {
      const kept = await runSeed(client, without, { suffix, only: ["calculation-rules"] });
      assert.equal(kept.ok, true);
      const changes = (await store.listRuleChanges("GLOBAL")).length;
      const labels = kept.tables[0].plan.items.filter((item) => item.action === "keep").map((item) => item.label);
      assert.deepEqual(labels, [
        "GLOBAL HSA_CONTRIBUTION 2024-01-01..2024-12-31",
        "GLOBAL HSA_CONTRIBUTION 2025-01-01..2025-12-31",
      ]);
      assert.equal((await store.listCalculationRuleVersions("GLOBAL", "HSA_CONTRIBUTION")).length, 3, "kept");

      const pruned = await runSeed(client, without, {
        suffix,
        only: ["calculation-rules"],
        prune: true,
        reason: "HSA history pruned",
      });
      assert.equal(pruned.ok, true, pruned.tables[0].error);
      assert.deepEqual(pruned.tables[0].plan.counts, { create: 0, update: 0, unchanged: 14, keep: 0, delete: 2 });
      assert.equal(pruned.tables[0].deleted, 2);
      assert.equal(pruned.failed, 0);
      const left = await store.listCalculationRuleVersions("GLOBAL", "HSA_CONTRIBUTION");
      assert.deepEqual(left.map((v) => v.effectiveFrom), ["2026-01-01"]);
      await assert.rejects(
        store.getCalculationRule("ACME_CORP", "HSA_CONTRIBUTION", { asOf: "2025-06-13" }),
        RuleNotFoundError,
      );
      const removals = (await store.listRuleChanges("GLOBAL")).slice(changes);
      assert.deepEqual(
        removals.map((c) => [c.actor, c.reason, c.ruleId, c.before?.effectiveFrom, c.after]),
        [
          ["seed", "HSA history pruned", "HSA_CONTRIBUTION", "2024-01-01", null],
          ["seed", "HSA history pruned", "HSA_CONTRIBUTION", "2025-01-01", null],
        ],
      );
      // `deno task rules history` on the live tables prints each removal.
      const history = await runScript(
        "rules",
        [
          "history",
          "--client",
          "GLOBAL",
          "--rule",
          "HSA_CONTRIBUTION",
          "--endpoint-url",
          AWS_ENDPOINT_URL,
          "--table-suffix",
          suffix,
        ],
        { ...process.env, NO_COLOR: "1" },
      );
      assert.equal(history.code, 0, history.stderr);
      assert.match(
        history.stdout,
        /^ {4}change {3}\S+ {2}seed: removed 2024-01-01\.\.2024-12-31 \(revision 1\); reason: HSA history pruned$/m,
      );
      // The same data again: nothing left to prune.
      const again = await runSeed(client, without, { suffix, only: ["calculation-rules"], prune: true });
      assert.deepEqual(again.tables[0].plan.counts, { create: 0, update: 0, unchanged: 14, keep: 0, delete: 0 });
      // And the full data set brings them back, as new versions.
      const restored = await runSeed(client, data, { suffix, only: ["calculation-rules"] });
      assert.equal(restored.ok, true);
      assert.equal(restored.tables[0].plan.counts.create, 2);
      assert.equal((await store.listCalculationRuleVersions("GLOBAL", "HSA_CONTRIBUTION")).length, 3);
    } finally {
      await store.close();
    }
  });

  it("a shared cache that cannot invalidate is reported: the run fails, the change itself landed", async () => {
    const broken: ICacheBackend = {
      get: () => Promise.resolve(null),
      setex: () => Promise.resolve(),
      delete: () => Promise.reject(new Error("connection reset")),
      invalidate: () => Promise.reject(new Error("connection reset")),
    };
    const changed = withRule(data, "FUTA", "2024-01-01", { wageBase: "7100" });
    const report = await runSeed(client, changed, { suffix, only: ["calculation-rules"], cache: broken });
    assert.equal(report.ok, false);
    assert.equal(report.written, 1);
    assert.match(
      report.tables[0].error!,
      /^Failed to invalidate the shared cache: .*agents may read the old rules until the TTL$/m,
    );
    const restored = await runSeed(client, data, { suffix, only: ["calculation-rules"] });
    assert.equal(restored.ok, true);
  });
});
