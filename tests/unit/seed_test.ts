// The seed: seed-file validation, the real config/ files, planning, batch
// writing with UnprocessedItems retries (fake clients, no waiting), a run on a
// fake DynamoDB, and the command line.
import assert from "node:assert/strict";
import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { after, before, describe, it } from "node:test";
import {
  BatchWriteItemCommand,
  CreateTableCommand,
  type CreateTableCommandInput,
  DescribeTableCommand,
  DescribeTimeToLiveCommand,
  type DynamoDBClient,
  ResourceNotFoundException,
  ScanCommand,
  UpdateTimeToLiveCommand,
  type WriteRequest,
} from "@aws-sdk/client-dynamodb";
import { marshall, unmarshall } from "@aws-sdk/util-dynamodb";
import { ConfigError, RulesStoreError } from "../../src/core/errors.ts";
import type { CompleteRulesData } from "../../src/core/schema.ts";
import { AGENT_NAMES } from "../../src/core/types.ts";
import { chunk, rulesDataItems, writeItems } from "../../src/persistence/provision.ts";
import { loadSeedData, SEED_FILES } from "../../src/persistence/seed_data.ts";
import { parseTableNames, planSeed, runSeed } from "../../src/persistence/seed.ts";
import { TABLES } from "../../src/persistence/tables.ts";
import { CONFIG_DIR, runSeedScript } from "../support/seed_script.ts";
import { main, parseSeedArgs, type SeedIo, USAGE } from "../../scripts/seed_dynamodb.ts";

/** What a fake client was sent. */
interface Sent {
  name: string;
  input: Record<string, unknown>;
}

/** A fake DynamoDB client: `send` is the only method the seed uses. */
function fakeClient(send: (command: { input: Record<string, unknown> }) => Promise<unknown>): DynamoDBClient {
  return { send, destroy: () => {} } as unknown as DynamoDBClient;
}

/** A DynamoDB in memory that speaks the commands the seed sends; `refuse` never accepts writes to that table. */
function fakeDynamo(options: { refuse?: string } = {}) {
  const tables = new Map<string, { input: CreateTableCommandInput; items: Map<string, unknown>; ttl?: string }>();
  const sent: Sent[] = [];
  const client = fakeClient((command) => {
    const input = command.input as Record<string, never>;
    sent.push({ name: command.constructor.name, input });
    const table = tables.get(input.TableName);
    if (command instanceof DescribeTableCommand) {
      if (table === undefined) {
        return Promise.reject(
          new ResourceNotFoundException({ message: "Requested resource not found", $metadata: {} }),
        );
      }
      return Promise.resolve({
        Table: {
          TableName: input.TableName,
          TableStatus: "ACTIVE",
          KeySchema: table.input.KeySchema,
          GlobalSecondaryIndexes: table.input.GlobalSecondaryIndexes,
        },
      });
    }
    if (command instanceof CreateTableCommand) {
      tables.set(input.TableName, { input: command.input, items: new Map() });
      return Promise.resolve({});
    }
    if (command instanceof DescribeTimeToLiveCommand) {
      return Promise.resolve({
        TimeToLiveDescription: table?.ttl === undefined
          ? { TimeToLiveStatus: "DISABLED" }
          : { TimeToLiveStatus: "ENABLED", AttributeName: table.ttl },
      });
    }
    if (command instanceof UpdateTimeToLiveCommand) {
      table!.ttl = command.input.TimeToLiveSpecification!.AttributeName;
      return Promise.resolve({});
    }
    if (command instanceof ScanCommand) {
      return Promise.resolve({ Items: [...table!.items.values()].map((item) => marshall(item)) });
    }
    if (command instanceof BatchWriteItemCommand) {
      const unprocessed: Record<string, WriteRequest[]> = {};
      for (const [name, requests] of Object.entries(command.input.RequestItems!)) {
        if (name === options.refuse) {
          unprocessed[name] = requests;
          continue;
        }
        for (const request of requests) {
          if (request.DeleteRequest !== undefined) {
            const key = unmarshall(request.DeleteRequest.Key!);
            tables.get(name)!.items.delete(`${key.PK}|${key.SK}`);
            continue;
          }
          const item = unmarshall(request.PutRequest!.Item!);
          tables.get(name)!.items.set(`${item.PK}|${item.SK}`, item);
        }
      }
      return Promise.resolve({ UnprocessedItems: unprocessed });
    }
    return Promise.reject(new Error(`Unexpected command ${command.constructor.name}`));
  });
  return { client, tables, sent };
}

/** An io that records what the command prints. */
function recordingIo(overrides: Partial<SeedIo> = {}): SeedIo & { stdout: string[]; stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return {
    stdout,
    stderr,
    out: (line) => stdout.push(line),
    err: (line) => stderr.push(line),
    env: {},
    ...overrides,
  };
}

/** Items for a table, with distinct keys. */
function items(count: number): Array<Record<string, unknown>> {
  return Array.from({ length: count }, (_, index) => ({ PK: `P#${index % 7}`, SK: `S#${index}`, n: index }));
}

describe("loadSeedData(): the config/ files", () => {
  let data: CompleteRulesData;
  before(async () => {
    data = await loadSeedData(CONFIG_DIR);
  });

  it("holds the 26-step DEFAULT_BiWeeklyFri pipeline, steps 100 to 2600, keyed STEP#0100 to STEP#2600", () => {
    const steps = data.pipelineSteps.filter((step) => step.planId === "DEFAULT_BiWeeklyFri");
    assert.equal(steps.length, 26);
    assert.deepEqual(steps.map((step) => step.step), Array.from({ length: 26 }, (_, index) => (index + 1) * 100));
    const pipeline = rulesDataItems(data).find(({ table }) => table === "processing-pipeline")!;
    assert.deepEqual(
      pipeline.items.map((item) => `${item.PK}/${item.SK}`),
      steps.map((step) => `CLIENT#DEFAULT_BiWeeklyFri/STEP#${String(step.step).padStart(4, "0")}`),
    );
    assert.deepEqual(new Set(steps.map((step) => step.agent)), new Set(AGENT_NAMES), "every agent has steps");
    assert.equal(steps[0].action, "receive_input_file");
    assert.equal(steps[0].agent, "intake");
    assert.ok(steps.some((step) => step.action === "generate_nacha_file" && step.agent === "disbursement"));
    for (const step of steps) assert.ok(step.timeoutSeconds > 0 && step.retry.maxAttempts >= 1, `step ${step.step}`);
  });

  it("defines every calculation rule a step names for GLOBAL", () => {
    const global = new Set(data.calculationRules.filter((r) => r.clientId === "GLOBAL").map((r) => r.ruleId));
    for (const step of data.pipelineSteps) {
      for (const ruleId of step.calculationRules) assert.ok(global.has(ruleId), `${ruleId} of step ${step.step}`);
    }
  });

  it("holds the exact payroll figures as decimal strings", () => {
    const rule = (clientId: string, ruleId: string) =>
      data.calculationRules.find((r) => r.clientId === clientId && r.ruleId === ruleId)!.parameters;
    assert.deepEqual(rule("GLOBAL", "FICA_SOCIAL_SECURITY"), { rate: "0.062", wageBase: "184500" });
    assert.deepEqual(rule("GLOBAL", "FICA_MEDICARE"), { rate: "0.0145" });
    assert.deepEqual(rule("GLOBAL", "ADDITIONAL_MEDICARE"), { rate: "0.009", threshold: "200000" });
    assert.deepEqual(rule("GLOBAL", "FUTA"), {
      grossRate: "0.06",
      creditRate: "0.054",
      rate: "0.006",
      wageBase: "7000",
    });
    assert.deepEqual(rule("GLOBAL", "OVERTIME"), { multiplier: "1.5", thresholdHours: "40" });
    assert.equal(rule("GLOBAL", "DEFERRAL_401K").annualLimit, "24500");
    assert.equal(rule("GLOBAL", "HSA_CONTRIBUTION").selfOnlyLimit, "4400");
    assert.equal(rule("ACME_CORP", "OVERTIME").thresholdHours, "37.5");
  });

  it("holds the year-bound GLOBAL rules for 2024, 2025 and 2026, each closed on 31 December", () => {
    const versions = (ruleId: string) =>
      data.calculationRules.filter((r) => r.clientId === "GLOBAL" && r.ruleId === ruleId)
        .sort((a, b) => a.effectiveFrom.localeCompare(b.effectiveFrom))
        .map((r) => [r.effectiveFrom, r.effectiveTo, r.parameters]);
    assert.deepEqual(versions("FICA_SOCIAL_SECURITY"), [
      ["2024-01-01", "2024-12-31", { rate: "0.062", wageBase: "168600" }],
      ["2025-01-01", "2025-12-31", { rate: "0.062", wageBase: "176100" }],
      ["2026-01-01", "2026-12-31", { rate: "0.062", wageBase: "184500" }],
    ]);
    assert.deepEqual(versions("DEFERRAL_401K"), [
      ["2024-01-01", "2024-12-31", { annualLimit: "23000", catchUpAge50: "7500" }],
      ["2025-01-01", "2025-12-31", { annualLimit: "23500", catchUpAge50: "7500", catchUpAge60To63: "11250" }],
      ["2026-01-01", "2026-12-31", { annualLimit: "24500", catchUpAge50: "8000", catchUpAge60To63: "11250" }],
    ]);
    assert.deepEqual(versions("HSA_CONTRIBUTION").map(([from, , p]) => [from, p]), [
      ["2024-01-01", { selfOnlyLimit: "4150", familyLimit: "8300", catchUpAge55: "1000" }],
      ["2025-01-01", { selfOnlyLimit: "4300", familyLimit: "8550", catchUpAge55: "1000" }],
      ["2026-01-01", { selfOnlyLimit: "4400", familyLimit: "8750", catchUpAge55: "1000" }],
    ]);
    assert.deepEqual(versions("ROTH_CATCH_UP").map(([from, to, p]) => [from, to, p]), [
      ["2025-01-01", "2025-12-31", { wageThreshold: "145000" }],
      ["2026-01-01", "2026-12-31", { wageThreshold: "150000" }],
    ]);
    for (const ruleId of ["FICA_MEDICARE", "ADDITIONAL_MEDICARE", "FUTA", "OVERTIME"]) {
      assert.deepEqual(versions(ruleId).map(([from, to]) => [from, to]), [["2024-01-01", null]], ruleId);
    }
    const acme = data.calculationRules.filter((r) => r.clientId === "ACME_CORP" && r.ruleId === "OVERTIME");
    assert.deepEqual(acme.map((r) => [r.effectiveFrom, r.effectiveTo]), [["2025-07-01", null]]);
    assert.ok(data.validationRules.every((r) => r.effectiveFrom !== undefined), "every validation rule is dated");
  });

  it("holds the IRS limits of 2024, 2025 and 2026, leaving out the cells that have no figure", () => {
    const year = (y: number) => data.irsLimits.find((limits) => limits.year === y)!.limits;
    assert.deepEqual(data.irsLimits.map((limits) => limits.year), [2024, 2025, 2026]);
    assert.deepEqual(
      [2024, 2025, 2026].map((y) => [year(y).electiveDeferral, year(y).socialSecurityWageBase, year(y).hsaFamily]),
      [["23000", "168600", "8300"], ["23500", "176100", "8550"], ["24500", "184500", "8750"]],
    );
    assert.equal(year(2024).catchUpAge60To63, undefined);
    assert.equal(year(2024).rothCatchUpWageThreshold, undefined);
    assert.equal(year(2025).catchUpAge60To63, "11250");
    assert.equal(year(2026).rothCatchUpWageThreshold, "150000");
    assert.equal(year(2026).hdhpOutOfPocketMaxFamily, "17000");
  });

  it("holds GLOBAL field rules, an ACME_CORP override, and the five agents", () => {
    const fields = new Set(data.validationRules.filter((r) => r.clientId === "GLOBAL").map((r) => r.field));
    for (const field of ["employeeId", "ssn", "hoursRegular", "payRate", "payPeriodStart", "state", "filingStatus"]) {
      assert.ok(fields.has(field), field);
    }
    assert.ok(data.validationRules.some((r) => r.clientId === "ACME_CORP" && r.field === "employeeId"));
    assert.deepEqual(data.agentConfigs.map((c) => c.agent).sort(), [
      "calculation",
      "compliance",
      "disbursement",
      "intake",
      "validation",
    ]);
  });
});

describe("loadSeedData(): bad seed files", () => {
  let root: string;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), "bluestar-seed-"));
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  /** A copy of config/ with one file changed. */
  async function badConfig(
    file: string,
    // deno-lint-ignore no-explicit-any
    change: (records: Array<Record<string, any>>) => unknown,
  ): Promise<string> {
    const dir = await mkdtemp(join(root, "config-"));
    await cp(CONFIG_DIR, dir, { recursive: true });
    const path = join(dir, file);
    const records = JSON.parse(await readFile(path, "utf8"));
    const changed = change(records);
    await writeFile(path, typeof changed === "string" ? changed : JSON.stringify(changed ?? records));
    return dir;
  }

  /** Loading fails with a ConfigError matching every pattern, and the command writes nothing. */
  async function rejects(dir: string, ...patterns: RegExp[]): Promise<void> {
    const error = await loadSeedData(dir).then(() => undefined, (error: unknown) => error);
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
    assert.equal(error.code, "CONFIG_ERROR");
    for (const pattern of patterns) assert.match(error.message, pattern);
    const fake = fakeDynamo();
    const io = recordingIo({ createClient: () => fake.client });
    const code = await main(["--config-dir", dir, "--endpoint-url", "http://127.0.0.1:4566"], io);
    assert.equal(code, 1);
    assert.deepEqual(fake.sent, [], "nothing is sent when the seed files are bad");
    assert.match(io.stderr.join("\n"), patterns[0]);
  }

  it("a repeated step names the file and both entries", async () => {
    const dir = await badConfig(SEED_FILES.pipelineSteps, (steps) => {
      steps[3].step = 300;
    });
    await rejects(
      dir,
      /pipeline_seed\.json entry \[3\] \(DEFAULT_BiWeeklyFri step 300\): it repeats the key of entry \[2\]/,
      /pipeline_seed\.json entry \[4\] \(DEFAULT_BiWeeklyFri step 500\): plan "DEFAULT_BiWeeklyFri" skips step 400/,
    );
  });

  it("a skipped step names the file, the entry after the gap and the missing step", async () => {
    const dir = await badConfig(SEED_FILES.pipelineSteps, (steps) => steps.filter((step) => step.step !== 1200));
    await rejects(
      dir,
      /pipeline_seed\.json entry \[11\] \(DEFAULT_BiWeeklyFri step 1300\): plan "DEFAULT_BiWeeklyFri" skips step 1200 before step 1300/,
    );
  });

  it("a step number that is not a multiple of 100 is named", async () => {
    const dir = await badConfig(SEED_FILES.pipelineSteps, (steps) => {
      steps[25].step = 2550;
    });
    await rejects(
      dir,
      /pipeline_seed\.json entry \[25\] \(DEFAULT_BiWeeklyFri step 2550\): step 2550 is not a multiple of 100/,
    );
  });

  it("a calculation rule a step names but GLOBAL does not define is named with the step", async () => {
    const dir = await badConfig(SEED_FILES.pipelineSteps, (steps) => {
      steps[9].calculationRules = ["FICA_SOCIAL_SECURITY", "SDI"];
    });
    await rejects(
      dir,
      /pipeline_seed\.json entry \[9\] \(DEFAULT_BiWeeklyFri step 1000\): calculation rule "SDI" has no GLOBAL definition in .*calculation_rules\.json/,
    );
  });

  it("a rule only a client defines does not satisfy a step", async () => {
    const dir = await badConfig(SEED_FILES.calculationRules, (rules) => {
      const futa = rules.find((rule) => rule.ruleId === "FUTA")!;
      futa.clientId = "ACME_CORP";
    });
    await rejects(dir, /calculation rule "FUTA" has no GLOBAL definition/);
  });

  it("a rate outside [0, 1] names the file, the rule and the parameter", async () => {
    const dir = await badConfig(SEED_FILES.calculationRules, (rules) => {
      rules[1].parameters.rate = "1.45";
      rules[3].parameters.creditRate = "-0.054";
    });
    await rejects(
      dir,
      /calculation_rules\.json entry \[1\] \(GLOBAL FICA_MEDICARE\): parameters\.rate: the rate "1\.45" is outside \[0, 1\]/,
      /calculation_rules\.json entry \[3\] \(GLOBAL FUTA\): parameters\.creditRate: the rate "-0\.054" is outside \[0, 1\]/,
    );
  });

  it("a rate just outside [0, 1] by a 20th decimal digit is named: decimals are compared exactly", async () => {
    const dir = await badConfig(SEED_FILES.calculationRules, (rules) => {
      rules[1].parameters.rate = "1.00000000000000000001";
      rules[3].parameters.creditRate = "-0.00000000000000000001";
    });
    await rejects(
      dir,
      /calculation_rules\.json entry \[1\] \(GLOBAL FICA_MEDICARE\): parameters\.rate: the rate "1\.00000000000000000001" is outside/,
      /entry \[3\] \(GLOBAL FUTA\): parameters\.creditRate: the rate "-0\.00000000000000000001" is outside/,
    );
  });

  it("a day that does not exist is named, not rolled over to the next month", async () => {
    const dir = await badConfig(SEED_FILES.calculationRules, (rules) => {
      rules[1].effectiveFrom = "2024-02-30";
      rules[0].effectiveTo = "2026-04-31";
    });
    await rejects(
      dir,
      /calculation_rules\.json entry \[1\] \(GLOBAL FICA_MEDICARE\): effectiveFrom: the day "2024-02-30" does not exist/,
      /calculation_rules\.json entry \[0\] \(GLOBAL FICA_SOCIAL_SECURITY\): effectiveTo: the day "2026-04-31" does not exist/,
    );
  });

  it("overlapping versions of one client's rule name the file and both entries", async () => {
    const dir = await badConfig(SEED_FILES.calculationRules, (rules) => {
      // The 2025 wage base (entry [9]) now runs into 2026, the year of entry [0].
      rules[9].effectiveTo = "2026-01-31";
    });
    await rejects(
      dir,
      /calculation_rules\.json entry \[9\] \(GLOBAL FICA_SOCIAL_SECURITY\): its range 2025-01-01\.\.2026-01-31 overlaps 2026-01-01\.\.2026-12-31 of entry \[0\]/,
    );
  });

  it("overlapping versions of one validation rule name the file and both entries", async () => {
    const dir = await badConfig(SEED_FILES.validationRules, (rules) => {
      rules.push({ ...rules[0], effectiveFrom: "2025-01-01" });
    });
    await rejects(
      dir,
      /validation_rules\.json entry \[\d+\] \(GLOBAL employeeId employee_id_required\): its range 2025-01-01\.\.open overlaps 2024-01-01\.\.open of entry \[0\]/,
    );
  });

  it("a GLOBAL wage base in effect on 1 July that differs from that year's IRS limit names both files", async () => {
    const dir = await badConfig(SEED_FILES.calculationRules, (rules) => {
      rules[9].parameters.wageBase = "176000";
    });
    await rejects(
      dir,
      /calculation_rules\.json entry \[9\] \(GLOBAL FICA_SOCIAL_SECURITY\): wageBase "176000" in effect on 2025-07-01 differs from socialSecurityWageBase "176100" of year 2025 in .*irs_limits\.json/,
    );
  });

  it("a GLOBAL 401(k) deferral in effect on 1 July that differs from that year's IRS limit is named", async () => {
    const dir = await badConfig(SEED_FILES.irsLimits, (years) => {
      years.find((limits) => limits.year === 2024)!.limits.electiveDeferral = "22500";
    });
    await rejects(
      dir,
      /calculation_rules\.json entry \[12\] \(GLOBAL DEFERRAL_401K\): annualLimit "23000" in effect on 2024-07-01 differs from electiveDeferral "22500" of year 2024/,
    );
  });

  it("a client's own wage base is not held to the IRS limits, and equal decimals in other forms pass", async () => {
    const dir = await badConfig(SEED_FILES.calculationRules, (rules) => {
      rules[9].parameters.wageBase = "176100.00";
      rules.push({ ...rules[9], clientId: "ACME_CORP", parameters: { rate: "0.062", wageBase: "1" } });
    });
    const data = await loadSeedData(dir);
    assert.equal(data.calculationRules.length, 17);
  });

  it("a seed file saved with a UTF-8 byte-order mark loads like one without", async () => {
    const dir = await badConfig(SEED_FILES.agentConfigs, (configs) => `\ufeff${JSON.stringify(configs)}`);
    const withMark = await loadSeedData(dir);
    assert.deepEqual(withMark.agentConfigs, (await loadSeedData(CONFIG_DIR)).agentConfigs);
  });

  it("a missing IRS year names the file and the year", async () => {
    const dir = await badConfig(SEED_FILES.irsLimits, (years) => years.filter((limits) => limits.year !== 2025));
    await rejects(dir, /irs_limits\.json: year 2025 is missing \(the seed needs 2024, 2025, 2026\)/);
  });

  it("malformed JSON names the file and where it breaks", async () => {
    const dir = await badConfig(SEED_FILES.agentConfigs, () => '[{"agent": "intake",}]');
    await rejects(dir, /agent_config\.json: malformed JSON: .*position/);
  });

  it("a schema problem (a number for a decimal) names the file, the entry and the field", async () => {
    const dir = await badConfig(SEED_FILES.irsLimits, (years) => {
      years[2].limits.electiveDeferral = 24500;
    });
    await rejects(dir, /irs_limits\.json entry \[2\] \(year 2026\): limits\.electiveDeferral: it is a number/);
  });

  it("a field path that looks like another entry's is shown as it is, not renamed", async () => {
    const dir = await badConfig(SEED_FILES.calculationRules, (rules) => {
      rules[1].parameters["calculationRules[0]"] = 5;
    });
    await rejects(
      dir,
      /calculation_rules\.json entry \[1\] \(GLOBAL FICA_MEDICARE\): parameters\.calculationRules\[0\]: it is a number/,
    );
  });

  it("a missing file and a file that is not an array are named", async () => {
    const dir = await badConfig(SEED_FILES.validationRules, () => "{}");
    await rm(join(dir, SEED_FILES.agentConfigs));
    await rejects(
      dir,
      /validation_rules\.json: it is not a JSON array of records/,
      /agent_config\.json: cannot read it: the file does not exist/,
    );
  });

  it("lists every problem at once, with a count", async () => {
    const dir = await badConfig(SEED_FILES.irsLimits, () => "[]");
    await assert.rejects(loadSeedData(dir), (error: Error) => {
      assert.match(error.message, /^Failed to load seed data from ".*": 3 problems\n {2}- /);
      return true;
    });
  });
});

describe("planSeed()", () => {
  it("plans the eight tables with their item counts and resolves every step's rules per client", async () => {
    const data = await loadSeedData(CONFIG_DIR);
    const plan = await planSeed(data, { suffix: "-dev" });
    assert.deepEqual(plan.tables.map((table) => table.tableName), TABLES.map((t) => `bluestar-${t.name}-dev`));
    const count = Object.fromEntries(plan.tables.map((table) => [table.name, table.items]));
    assert.equal(count["processing-pipeline"], 26);
    const calculationItems = new Set(data.calculationRules.map((rule) => `${rule.clientId}/${rule.ruleId}`));
    assert.equal(
      count["calculation-rules"],
      calculationItems.size,
      "one item per client and rule, every version in it",
    );
    assert.equal(count["irs-limits"], 3);
    assert.equal(count["agent-config"], 5);
    assert.equal(count["audit-log"], 0);
    assert.equal(plan.totalItems, plan.tables.reduce((sum, table) => sum + table.items, 0));
    const [global, acme] = plan.resolution;
    assert.equal(global.clientId, "GLOBAL");
    assert.equal(global.steps, 26);
    assert.equal(global.fromClient, 0);
    assert.equal(acme.clientId, "ACME_CORP");
    assert.equal(acme.lookups, global.lookups);
    const overtimeLookups = data.pipelineSteps.filter((step) => step.calculationRules.includes("OVERTIME")).length;
    assert.equal(acme.fromClient, overtimeLookups);
    assert.equal(acme.fieldsOverridden, 2);
  });

  it("plans only the tables asked for", async () => {
    const plan = await planSeed(await loadSeedData(CONFIG_DIR), { only: parseTableNames(["irs-limits,agent-config"]) });
    assert.deepEqual(plan.tables.map((table) => table.tableName), ["bluestar-irs-limits", "bluestar-agent-config"]);
    assert.equal(plan.totalItems, 8);
  });

  it("rejects a suffix that would make an invalid table name", async () => {
    await assert.rejects(planSeed(await loadSeedData(CONFIG_DIR), { suffix: "-dév" }), ConfigError);
  });
});

describe("writeItems(): batches of 25 with UnprocessedItems retried", () => {
  it("chunk() splits into chunks of at most 25, in order", () => {
    const chunks = chunk(Array.from({ length: 60 }, (_, index) => index));
    assert.deepEqual(chunks.map((c) => c.length), [25, 25, 10]);
    assert.deepEqual(chunks.flat(), Array.from({ length: 60 }, (_, index) => index));
    assert.deepEqual(chunk([]), []);
  });

  it("sends 60 items as three BatchWriteItem requests of at most 25", async () => {
    const sizes: number[] = [];
    const client = fakeClient((command) => {
      sizes.push((command.input.RequestItems as Record<string, unknown[]>).T.length);
      return Promise.resolve({});
    });
    const result = await writeItems(client, "T", items(60));
    assert.deepEqual(sizes.sort((a, b) => b - a), [25, 25, 10]);
    assert.deepEqual(result, { written: 60, requests: 3 });
  });

  it("retries unprocessed items with growing, jittered delays until all land, losing none", async () => {
    const landed: string[] = [];
    const refusals = new Map<string, number>();
    const client = fakeClient((command) => {
      const requests = (command.input.RequestItems as Record<string, WriteRequest[]>).T;
      const unprocessed: WriteRequest[] = [];
      for (const request of requests) {
        const { SK } = unmarshall(request.PutRequest!.Item!);
        // Every other item is refused twice before it is accepted.
        const refused = refusals.get(SK) ?? 0;
        if (Number(SK.slice(2)) % 2 === 0 && refused < 2) {
          refusals.set(SK, refused + 1);
          unprocessed.push(request);
        } else {
          landed.push(SK);
        }
      }
      return Promise.resolve({ UnprocessedItems: unprocessed.length === 0 ? {} : { T: unprocessed } });
    });
    const delays: number[] = [];
    const progress: number[] = [];
    const result = await writeItems(client, "T", items(30), {
      baseDelayMs: 100,
      random: () => 0.5,
      sleep: (milliseconds) => {
        delays.push(milliseconds);
        return Promise.resolve();
      },
      onWritten: (count) => progress.push(count),
    });
    assert.equal(result.written, 30);
    assert.equal(result.requests, 6, "two chunks, each sent three times");
    assert.deepEqual(landed.sort(), items(30).map((item) => item.SK as string).sort(), "every item landed once");
    assert.deepEqual(delays.sort((a, b) => a - b), [50, 50, 100, 100], "half of the 100 ms then 200 ms ceilings");
    assert.equal(progress.reduce((sum, count) => sum + count, 0), 30);
  });

  it("gives up after maxAttempts and says how many items did not land", async () => {
    let sends = 0;
    const client = fakeClient((command) => {
      sends++;
      return Promise.resolve({ UnprocessedItems: command.input.RequestItems });
    });
    let slept = 0;
    const error = await writeItems(client, "T", items(30), {
      maxAttempts: 4,
      sleep: () => {
        slept++;
        return Promise.resolve();
      },
    }).catch((error: unknown) => error);
    assert.ok(error instanceof RulesStoreError);
    assert.equal(
      error.message,
      'Failed to write 30 of 30 items to table "T": still unprocessed after 4 attempts',
    );
    assert.equal(sends, 8, "two chunks, four attempts each");
    assert.equal(slept, 6);
  });

  it("rejects a concurrency that would write nothing", async () => {
    const client = fakeClient(() => Promise.resolve({}));
    await assert.rejects(
      writeItems(client, "T", items(3), { concurrency: 0 }),
      /concurrency "0" is not a positive integer/,
    );
  });
});

/** The tables whose items the fake can take: the rule tables are written through the rules store (see the integration tests). */
const PLAIN_TABLES = TABLES.map((table) => table.name).filter((name) => !name.endsWith("-rules"));

describe("runSeed() on a fake DynamoDB (the tables without rules)", () => {
  it("creates the tables, writes every item, and a second run finds everything unchanged and writes nothing", async () => {
    const data = await loadSeedData(CONFIG_DIR);
    const fake = fakeDynamo();
    const progress: string[] = [];
    const first = await runSeed(fake.client, data, {
      suffix: "-t",
      only: PLAIN_TABLES,
      ensure: { pollIntervalMs: 1 },
      onProgress: (event) => progress.push(event.type),
    });
    assert.equal(first.ok, true);
    assert.equal(first.failed, 0);
    assert.equal(first.written, 26 + 3 + 5);
    assert.deepEqual(new Set(first.tables.map((table) => table.status)), new Set(["created"]));
    assert.equal(fake.tables.size, 6);
    assert.equal(fake.tables.get("bluestar-processing-results-t")!.ttl, "expiresAt");
    assert.equal(progress[0], "plan", "the plan is reported before anything is written");
    assert.equal(progress.filter((type) => type === "table").length, 6);
    const snapshot = JSON.stringify([...fake.tables].map(([name, table]) => [name, [...table.items]]));

    const writesBefore = fake.sent.filter((sent) => sent.name === "BatchWriteItemCommand").length;
    const second = await runSeed(fake.client, data, {
      suffix: "-t",
      only: PLAIN_TABLES,
      ensure: { pollIntervalMs: 1 },
    });
    assert.equal(second.ok, true);
    assert.equal(second.written, 0);
    assert.deepEqual(new Set(second.tables.map((table) => table.status)), new Set(["exists"]));
    const pipeline = second.tables.find((table) => table.name === "processing-pipeline")!;
    assert.deepEqual(pipeline.plan.counts, { create: 0, update: 0, unchanged: 26, keep: 0, delete: 0 });
    assert.equal(JSON.stringify([...fake.tables].map(([name, table]) => [name, [...table.items]])), snapshot);
    assert.equal(fake.sent.filter((sent) => sent.name === "BatchWriteItemCommand").length, writesBefore);
    assert.equal(fake.sent.filter((sent) => sent.name === "CreateTableCommand").length, 6);
    assert.equal(fake.sent.filter((sent) => sent.name === "UpdateTimeToLiveCommand").length, 1);
  });

  it("updates what changed, keeps what is no longer in the seed data, and deletes it with prune", async () => {
    const data = await loadSeedData(CONFIG_DIR);
    const fake = fakeDynamo();
    const only = ["irs-limits", "agent-config"] as const;
    await runSeed(fake.client, data, { only, ensure: { pollIntervalMs: 1 } });
    const changed: CompleteRulesData = {
      ...data,
      irsLimits: [
        ...data.irsLimits.filter((limits) => limits.year !== 2024),
        { year: 2023, limits: { electiveDeferral: "22500" } },
      ].map((limits) =>
        limits.year === 2026 ? { ...limits, limits: { ...limits.limits, iraCatchUp: "1200" } } : limits
      ),
    };
    const kept = await runSeed(fake.client, changed, { only, ensure: { pollIntervalMs: 1 } });
    const irs = kept.tables.find((table) => table.name === "irs-limits")!;
    assert.deepEqual(irs.plan.items.filter((item) => item.action !== "unchanged"), [
      { action: "create", label: "year 2023" },
      { action: "keep", label: "year 2024" },
      { action: "update", label: "year 2026" },
    ]);
    assert.equal(irs.written, 2);
    assert.equal(fake.tables.get("bluestar-irs-limits")!.items.size, 4, "without prune the 2024 limits stay");

    const pruned = await runSeed(fake.client, changed, { only, prune: true, ensure: { pollIntervalMs: 1 } });
    const prunedIrs = pruned.tables.find((table) => table.name === "irs-limits")!;
    assert.deepEqual(prunedIrs.plan.counts, { create: 0, update: 0, unchanged: 3, keep: 0, delete: 1 });
    assert.equal(prunedIrs.deleted, 1);
    assert.equal(pruned.ok, true);
    assert.deepEqual([...fake.tables.get("bluestar-irs-limits")!.items.keys()].sort(), [
      "YEAR#2023|LIMITS",
      "YEAR#2025|LIMITS",
      "YEAR#2026|LIMITS",
    ]);
  });

  it("a live table that cannot be read stops the plan with the table named, before any write", async () => {
    const data = await loadSeedData(CONFIG_DIR);
    const sent: string[] = [];
    const client = fakeClient((command) => {
      sent.push(command.constructor.name);
      if (command instanceof DescribeTableCommand) return Promise.resolve({ Table: { TableStatus: "ACTIVE" } });
      return Promise.reject(
        Object.assign(new Error("Throughput exceeded"), { name: "ProvisionedThroughputExceededException" }),
      );
    });
    await assert.rejects(
      runSeed(client, data, { only: ["irs-limits"] }),
      (error: unknown) =>
        error instanceof RulesStoreError && /^Failed to read table "bluestar-irs-limits": /.test(error.message),
    );
    assert.deepEqual(new Set(sent), new Set(["DescribeTableCommand", "ScanCommand"]));
  });

  it("reports the items that did not land and goes on with the other tables", async () => {
    const data = await loadSeedData(CONFIG_DIR);
    const fake = fakeDynamo({ refuse: "bluestar-irs-limits" });
    const report = await runSeed(fake.client, data, {
      only: PLAIN_TABLES,
      write: { maxAttempts: 2, sleep: () => Promise.resolve() },
    });
    assert.equal(report.ok, false);
    assert.equal(report.failed, 3);
    const irs = report.tables.find((table) => table.name === "irs-limits")!;
    assert.equal(irs.written, 0);
    assert.match(irs.error!, /^Failed to write 3 of 3 items to table "bluestar-irs-limits"/);
    assert.equal(fake.tables.get("bluestar-agent-config")!.items.size, 5);
  });
});

describe("scripts/seed_dynamodb.ts: the command line", () => {
  it("parseSeedArgs() reads every option; the flags alone choose the target", () => {
    assert.deepEqual(parseSeedArgs([]), {
      help: false,
      endpointUrl: undefined,
      region: undefined,
      suffix: "",
      configDir: "config",
      only: undefined,
      s3Bucket: undefined,
      dryRun: false,
      prune: false,
      reason: "Seeded from config",
      redisUrl: undefined,
    });
    assert.equal(
      parseSeedArgs([], { AWS_REGION: "eu-west-1" }).region,
      undefined,
      "the environment never picks a target",
    );
    const command = parseSeedArgs(
      [
        "--endpoint-url",
        "http://127.0.0.1:4566",
        "--table-suffix",
        "-dev",
        "--only",
        "irs-limits",
        "--only=audit-log,agent-config",
        "--s3-bucket",
        "bluestar-files-dev",
        "--dry-run",
      ],
      { AWS_REGION: "eu-west-1" },
    );
    assert.equal(command.endpointUrl, "http://127.0.0.1:4566");
    assert.equal(command.region, "eu-west-1");
    assert.equal(command.suffix, "-dev");
    assert.deepEqual(command.only, ["irs-limits", "audit-log", "agent-config"]);
    assert.equal(command.s3Bucket, "bluestar-files-dev");
    assert.equal(command.dryRun, true);
    assert.equal(parseSeedArgs(["--endpoint-url", "http://localhost:4566"]).region, "us-east-1");
    assert.equal(parseSeedArgs(["--region", "us-west-2"]).region, "us-west-2");
    assert.equal(parseSeedArgs(["-h"]).help, true);
  });

  it("parseSeedArgs() reads --prune, --reason and --redis-url, the last defaulting to BLUESTAR_REDIS_URL", () => {
    const command = parseSeedArgs(
      ["--region", "us-east-1", "--prune", "--reason", "Ticket 42", "--redis-url", "redis://cache:6379"],
      { BLUESTAR_REDIS_URL: "redis://other:6379" },
    );
    assert.deepEqual([command.prune, command.reason, command.redisUrl], [true, "Ticket 42", "redis://cache:6379"]);
    assert.equal(parseSeedArgs([], { BLUESTAR_REDIS_URL: "redis://other:6379" }).redisUrl, "redis://other:6379");
    assert.equal(parseSeedArgs(["--config-dir", "/srv/seed"]).reason, "Seeded from /srv/seed");
    assert.throws(() => parseSeedArgs(["--redis-url", "http://cache"]), /Invalid Redis URL "http:\/\/cache"/);
    assert.throws(() => parseSeedArgs(["--reason", ""]), /--reason is empty/);
  });

  it("parseSeedArgs() rejects unknown flags, stray arguments, missing values and bad values", () => {
    assert.throws(() => parseSeedArgs(["--endpoint"]), /Invalid arguments: Unknown option '--endpoint'/);
    assert.throws(() => parseSeedArgs(["seed"]), /Invalid arguments: .*positional/i);
    assert.throws(() => parseSeedArgs(["--table-suffix"]), /Invalid arguments: .*argument missing/);
    assert.throws(() => parseSeedArgs(["--table-suffix", "--dry-run"]), /Invalid arguments/);
    assert.throws(
      () => parseSeedArgs(["--only", "audit"]),
      /Invalid table "audit": the tables are processing-pipeline/,
    );
    assert.throws(() => parseSeedArgs(["--table-suffix", "a/b"]), /Invalid table suffix "a\/b"/);
    // Not a URL: it could hold a password anywhere, so none of it is shown.
    assert.throws(
      () => parseSeedArgs(["--endpoint-url", "localhost:4566"]),
      /Invalid endpoint URL "\[redacted\]": it is not an http or https URL \(like "http:\/\/127\.0\.0\.1:4566"\)/,
    );
  });

  it("every bad option value is a usage error: exit 2, the reason and the usage text, nothing sent", async () => {
    const cases: Array<[string[], RegExp, Record<string, string>?]> = [
      [["--region", "us east 1"], /^Invalid region "us east 1" \(--region\): it is not a region name/],
      [["--region", ""], /^Invalid region "" \(--region\)/],
      [["--endpoint-url", "http://127.0.0.1:4566"], /^Invalid region "Mars" \(AWS_REGION\)/, { AWS_REGION: "Mars" }],
      [
        ["--region", "us-east-1", "--table-suffix", "dev"],
        /^Invalid table suffix "dev": it does not start with "-", "_" or "\." \(did you mean "-dev"\?\)/,
      ],
      [["--table-suffix", "a/b"], /^Invalid table suffix "a\/b"/],
      [["--endpoint-url", "ftp://127.0.0.1:4566"], /^Invalid endpoint URL "ftp:\/\/127\.0\.0\.1:4566"/],
      [["--config-dir", "no/such/dir", "--region", "us-east-1"], /^Invalid config directory "no\/such\/dir"/],
      [["--config-dir", ""], /^Invalid arguments: --config-dir is empty/],
      [["--s3-bucket", "", "--region", "us-east-1"], /^Invalid arguments: --s3-bucket is empty/],
      [["--only", "audit", "--region", "us-east-1"], /^Invalid table "audit"/],
      [["--only", ","], /^Invalid table list/],
    ];
    for (const [argv, message, env] of cases) {
      const fake = fakeDynamo();
      const io = recordingIo({ createClient: () => fake.client, env: env ?? {} });
      assert.equal(await main(["--config-dir", CONFIG_DIR, ...argv], io), 2, argv.join(" "));
      assert.match(io.stderr[0], message, argv.join(" "));
      assert.ok(io.stderr.join("\n").includes(USAGE), argv.join(" "));
      assert.deepEqual(io.stdout, []);
      assert.deepEqual(fake.sent, []);
    }
  });

  it("an unknown flag exits 2 with the error and the usage text on stderr", async () => {
    const io = recordingIo();
    assert.equal(await main(["--bogus"], io), 2);
    assert.match(io.stderr[0], /Unknown option '--bogus'/);
    assert.ok(io.stderr.join("\n").includes(USAGE));
    assert.deepEqual(io.stdout, []);
  });

  it("--help exits 0 with the usage text on stdout", async () => {
    const io = recordingIo();
    assert.equal(await main(["--help"], io), 0);
    assert.deepEqual(io.stdout, [USAGE]);
    assert.match(USAGE, /--endpoint-url URL/);
    assert.match(USAGE, /--only TABLE/);
  });

  it("with no target it plans on the in-memory backend and writes nothing", async () => {
    const fake = fakeDynamo();
    const io = recordingIo({ createClient: () => fake.client, env: { AWS_REGION: "us-east-1" } });
    assert.equal(await main(["--config-dir", CONFIG_DIR, "--table-suffix", "-dev"], io), 0);
    assert.deepEqual(fake.sent, []);
    const output = io.stdout.join("\n");
    assert.match(output, /1 plan of 26 steps/);
    assert.match(output, /ACME_CORP +26 steps, \d+ calculation-rule lookups \(\d+ own, \d+ GLOBAL\)/);
    assert.match(output, /bluestar-processing-pipeline-dev +create if missing, then write 26 items/);
    assert.match(
      io.stdout.at(-1)!,
      /^Summary: plan only, nothing written: 8 tables and \d+ items; pass --endpoint-url/,
    );
  });

  it("--dry-run with a target reads the target, plans, and sends no write", async () => {
    const fake = fakeDynamo();
    const io = recordingIo({ createClient: () => fake.client });
    const code = await main(["--config-dir", CONFIG_DIR, "--endpoint-url", "http://127.0.0.1:4566", "--dry-run"], io);
    assert.equal(code, 0, io.stderr.join("\n"));
    assert.deepEqual(new Set(fake.sent.map((sent) => sent.name)), new Set(["DescribeTableCommand"]));
    const output = io.stdout.join("\n");
    assert.match(
      output,
      /Plan for DynamoDB http:\/\/127\.0\.0\.1:4566 \(region us-east-1\), table suffix "" \(dry run, read-only\)/,
    );
    assert.match(output, /bluestar-irs-limits +missing, create it; 3 to create, 0 to update, 0 unchanged/);
    assert.match(output, /^ +create: GLOBAL FICA_SOCIAL_SECURITY 2025-01-01\.\.2025-12-31$/m);
    assert.match(io.stdout.at(-1)!, /^Summary: plan only, nothing written: 8 tables, \d+ to create, 0 to update/);
  });

  it("seeds a target, printing progress per table and a summary; exits 1 when items do not land", async () => {
    const only = ["--only", PLAIN_TABLES.join(",")];
    const good = recordingIo({ createClient: () => fakeDynamo().client });
    assert.equal(await main(["--config-dir", CONFIG_DIR, "--endpoint-url", "http://127.0.0.1:4566", ...only], good), 0);
    assert.match(good.stdout.join("\n"), /table bluestar-audit-log: created \(\d+ ms\)/);
    assert.match(good.stdout.join("\n"), /items bluestar-processing-pipeline: 26 of 26 written \(\d+ ms\)/);
    assert.match(
      good.stdout.at(-1)!,
      /^Summary: 6 tables \(6 created, 0 existed\), 34 created, 0 updated, 0 unchanged, 0 kept, 0 deleted, in \d+\.\d s$/,
    );

    const bad = recordingIo({ createClient: () => fakeDynamo({ refuse: "bluestar-irs-limits" }).client });
    assert.equal(await main(["--config-dir", CONFIG_DIR, "--region", "us-east-1", ...only], bad), 1);
    assert.match(bad.stdout.at(-1)!, /^Summary: 6 tables .*, 34 created, .*, 3 did not land, in/);
    assert.match(bad.stderr.join("\n"), /Failed to write 3 of 3 items to table "bluestar-irs-limits"/);
  });
});

describe("scripts/seed_dynamodb.ts as a process", () => {
  const run = runSeedScript;
  const baseEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    DENO_DIR: process.env.DENO_DIR,
    NO_COLOR: "1",
    AWS_EC2_METADATA_DISABLED: "true",
    AWS_SHARED_CREDENTIALS_FILE: join(tmpdir(), "bluestar-no-credentials"),
    AWS_CONFIG_FILE: join(tmpdir(), "bluestar-no-config"),
  };

  it("an unreachable endpoint is one line on stderr and exit 1", async () => {
    const result = await run(["--endpoint-url", "http://127.0.0.1:1"], {
      ...baseEnv,
      AWS_ACCESS_KEY_ID: "test",
      AWS_SECRET_ACCESS_KEY: "test",
    });
    assert.equal(result.code, 1);
    assert.equal(
      result.stderr.trim(),
      "Failed to use DynamoDB: the endpoint is unreachable (connect ECONNREFUSED 127.0.0.1:1)",
    );
  });

  it("missing credentials are one line on stderr and exit 1", async () => {
    const result = await run(["--endpoint-url", "http://127.0.0.1:1"], baseEnv);
    assert.equal(result.code, 1);
    const lines = result.stderr.trim().split("\n");
    assert.equal(lines.length, 1, result.stderr);
    assert.match(lines[0], /^Failed to use DynamoDB: no AWS credentials found \(set AWS_ACCESS_KEY_ID/);
  });
});
