// `deno task rules`: explainCalculationRule() and calculationRuleHistory() on
// the memory store (every case of "why"), argument parsing, and the script
// as a process on the in-memory store loaded from config/.
import assert from "node:assert/strict";
import process from "node:process";
import { describe, it } from "node:test";
import { InvalidInputError } from "../../src/core/errors.ts";
import { calculationRuleHistory, explainCalculationRule } from "../../src/core/rules_explain.ts";
import type { CalculationRuleRecord } from "../../src/core/types.ts";
import { MemoryRulesStore } from "../../src/persistence/memory_backend.ts";
import { parseRulesArgs, USAGE } from "../../scripts/rules.ts";
import { runScript } from "../support/seed_script.ts";

function version(clientId: string, effectiveFrom: string, effectiveTo: string | null, hours: string) {
  return {
    clientId,
    ruleId: "OVERTIME",
    ruleType: "multiplier_over_threshold",
    description: `${clientId} from ${effectiveFrom}`,
    parameters: { multiplier: "1.5", thresholdHours: hours },
    effectiveFrom,
    effectiveTo,
  } satisfies CalculationRuleRecord;
}

const store = new MemoryRulesStore({
  calculationRules: [
    version("GLOBAL", "2024-01-01", "2025-12-31", "40"),
    version("ACME", "2024-03-01", "2024-06-30", "38"),
    version("ACME", "2025-01-01", "2025-06-30", "37.5"),
    version("ACME", "2025-07-01", "2025-12-31", "37"),
  ],
});

describe("explainCalculationRule(): which version answers and why", () => {
  it("the client's own version covering the day answers, with the versions before and after it", async () => {
    const why = await explainCalculationRule(store, "ACME", "OVERTIME", "2025-06-30");
    assert.equal(why.answer?.clientId, "ACME");
    assert.equal(why.answer?.parameters.thresholdHours, "37.5");
    assert.equal(why.reason, "ACME's own version 2025-01-01..2025-06-30 covers 2025-06-30");
    assert.equal(why.own?.previous?.effectiveFrom, "2024-03-01");
    assert.equal(why.own?.next?.effectiveFrom, "2025-07-01");
  });

  it("the day before the override starts falls back to GLOBAL, saying when the override starts", async () => {
    const why = await explainCalculationRule(store, "ACME", "OVERTIME", "2024-02-29");
    assert.equal(why.answer?.clientId, "GLOBAL");
    assert.equal(why.reason, "ACME's override starts 2024-03-01; GLOBAL's version 2024-01-01..2025-12-31 answers");
  });

  it("a gap between the client's versions falls back to GLOBAL, naming the versions around it", async () => {
    const why = await explainCalculationRule(store, "ACME", "OVERTIME", "2024-07-01");
    assert.equal(why.answer?.scope, "GLOBAL");
    assert.equal(
      why.reason,
      "ACME's overrides leave a gap on 2024-07-01, between 2024-03-01..2024-06-30 and 2025-01-01..2025-06-30; " +
        "GLOBAL's version 2024-01-01..2025-12-31 answers",
    );
  });

  it("after every version ended nothing answers, and the reason says when each ended", async () => {
    const why = await explainCalculationRule(store, "ACME", "OVERTIME", "2026-01-01");
    assert.equal(why.answer, null);
    assert.equal(why.reason, "ACME's override ended 2025-12-31; GLOBAL's version ended 2025-12-31: no version answers");
  });

  it("a client without an override, and GLOBAL itself", async () => {
    const newco = await explainCalculationRule(store, "NEWCO", "OVERTIME", "2024-01-01");
    assert.equal(newco.reason, "NEWCO has no override; GLOBAL's version 2024-01-01..2025-12-31 answers");
    const global = await explainCalculationRule(store, "GLOBAL", "OVERTIME", "2025-12-31");
    assert.equal(global.own, null);
    assert.equal(global.reason, "GLOBAL's version 2024-01-01..2025-12-31 covers 2025-12-31");
    const none = await explainCalculationRule(store, "GLOBAL", "NO_SUCH_RULE", "2025-01-01");
    assert.equal(none.reason, "GLOBAL has no version: no version answers");
  });

  it("an impossible day or a malformed id is an InvalidInputError", async () => {
    await assert.rejects(explainCalculationRule(store, "ACME", "OVERTIME", "2025-02-29"), InvalidInputError);
    await assert.rejects(explainCalculationRule(store, "A#B", "OVERTIME", "2025-01-01"), InvalidInputError);
  });
});

describe("calculationRuleHistory()", () => {
  it("lists the client's versions and changes, then GLOBAL's, each change of that rule only", async () => {
    const changed = new MemoryRulesStore({ calculationRules: [version("GLOBAL", "2024-01-01", null, "40")] });
    await changed.putCalculationRule(version("GLOBAL", "2025-01-01", null, "39"), { actor: "ops", reason: "law" });
    await changed.putCalculationRule({ ...version("GLOBAL", "2025-01-01", null, "39"), ruleId: "OTHER" }, {
      actor: "ops",
      reason: "other rule",
    });
    const [own, global] = await calculationRuleHistory(changed, "ACME", "OVERTIME");
    assert.deepEqual([own.clientId, own.versions, own.changes], ["ACME", [], []]);
    assert.equal(global.clientId, "GLOBAL");
    assert.deepEqual(global.versions.map((v) => [v.effectiveFrom, v.effectiveTo]), [
      ["2024-01-01", "2024-12-31"],
      ["2025-01-01", null],
    ]);
    assert.deepEqual(global.changes.map((c) => [c.reason, c.closed?.after.effectiveTo]), [["law", "2024-12-31"]]);
  });
});

describe("scripts/rules.ts: the command line", () => {
  it("parseRulesArgs() reads the command and every option; the flags alone choose the target", () => {
    const command = parseRulesArgs(
      ["explain", "--client", "ACME", "--rule", "OVERTIME", "--as-of", "2025-03-01", "--table-suffix", "-dev"],
      { AWS_REGION: "eu-west-1" },
    );
    assert.deepEqual(command, {
      help: false,
      action: "explain",
      clientId: "ACME",
      ruleId: "OVERTIME",
      asOf: "2025-03-01",
      endpointUrl: undefined,
      region: undefined,
      suffix: "-dev",
      configDir: "config",
    });
    const live = parseRulesArgs(["history", "--client", "C", "--rule", "R", "--endpoint-url", "http://h:1"], {});
    assert.deepEqual([live.action, live.region, live.endpointUrl], ["history", "us-east-1", "http://h:1"]);
  });

  it("parseRulesArgs() rejects a missing or unknown command, a missing --client or --rule, and --as-of on history", () => {
    assert.throws(() => parseRulesArgs(["--client", "C", "--rule", "R"]), /Invalid arguments: no command/);
    assert.throws(() => parseRulesArgs(["why", "--client", "C", "--rule", "R"]), /unknown command "why"/);
    assert.throws(() => parseRulesArgs(["explain", "--rule", "R"]), /--client is required/);
    assert.throws(() => parseRulesArgs(["explain", "--client", "C"]), /--rule is required/);
    assert.throws(
      () => parseRulesArgs(["history", "--client", "C", "--rule", "R", "--as-of", "2025-01-01"]),
      /for explain/,
    );
    assert.throws(() => parseRulesArgs(["explain", "--client", "C", "--rule", "R", "--nope"]), /Unknown option/);
  });
});

describe("scripts/rules.ts as a process, on the in-memory store loaded from config/", () => {
  const env = { PATH: process.env.PATH, HOME: process.env.HOME, DENO_DIR: process.env.DENO_DIR, NO_COLOR: "1" };

  it("explain prints the answer, from which partition, why, and the neighbouring versions", async () => {
    const result = await runScript("rules", [
      "explain",
      "--client",
      "ACME_CORP",
      "--rule",
      "OVERTIME",
      "--as-of",
      "2025-03-01",
    ], env);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(result.stdout.trimEnd().split("\n"), [
      "ACME_CORP OVERTIME as of 2025-03-01, from the in-memory store loaded from config:",
      "  Answer: GLOBAL's version 2024-01-01..open (revision 1): multiplier 1.5, thresholdHours 40",
      "  Why: ACME_CORP's override starts 2025-07-01; GLOBAL's version 2024-01-01..open answers",
      "  ACME_CORP's own versions: 1 version",
      "    after     2025-07-01..open (revision 1): multiplier 1.5, thresholdHours 37.5",
      "  GLOBAL's versions: 1 version",
      "    covering  2024-01-01..open (revision 1): multiplier 1.5, thresholdHours 40",
    ]);
    assert.equal(result.stderr, "");
  });

  it("explain exits 1 when no version answers, saying why", async () => {
    const result = await runScript(
      "rules",
      ["explain", "--client", "GLOBAL", "--rule", "ROTH_CATCH_UP", "--as-of", "2024-06-14"],
      env,
    );
    assert.equal(result.code, 1);
    assert.match(result.stdout, /^ {2}Answer: none/m);
    assert.match(result.stdout, /^ {2}Why: GLOBAL's version starts 2025-01-01: no version answers$/m);
  });

  it("history prints every version of the client's rule and of GLOBAL's", async () => {
    const result = await runScript(
      "rules",
      ["history", "--client", "ACME_CORP", "--rule", "FICA_SOCIAL_SECURITY"],
      env,
    );
    assert.equal(result.code, 0, result.stderr);
    const lines = result.stdout.trimEnd().split("\n");
    assert.equal(lines[1], "  ACME_CORP: 0 versions, 0 changes");
    assert.equal(lines[2], "  GLOBAL (the fallback): 3 versions, 0 changes");
    assert.match(lines[3], /^ {4}version {2}2024-01-01\.\.2024-12-31 \(revision 1\): rate 0\.062, wageBase 168600; /);
    assert.match(lines[5], /^ {4}version {2}2026-01-01\.\.2026-12-31 \(revision 1\): rate 0\.062, wageBase 184500; /);
  });

  it("--help names the options; a usage error exits 2 with the reason and the usage text", async () => {
    const help = await runScript("rules", ["--help"], env);
    assert.equal(help.code, 0);
    assert.equal(help.stdout, `${USAGE}\n`);
    for (const option of ["--client", "--rule", "--as-of", "--endpoint-url", "--region", "--table-suffix"]) {
      assert.ok(USAGE.includes(option), option);
    }
    const bad = await runScript("rules", ["explain", "--client", "ACME_CORP"], env);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /^Invalid arguments: --rule is required\n\nUsage: /);
  });
});
