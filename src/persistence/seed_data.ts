/**
 * The seed files in `config/`: reading, decoding and the checks that make a
 * data set fit to seed. Loading is all or nothing: a data set with any
 * problem is a {@linkcode ConfigError} that lists every problem, each named
 * by file and entry, and nothing is returned to write.
 *
 * Each file holds a JSON array of records in the shapes of the domain types:
 *
 * | file | records |
 * |---|---|
 * | `pipeline_seed.json` | `PipelineStep` |
 * | `validation_rules.json` | `ValidationRuleRecord` |
 * | `calculation_rules.json` | `CalculationRuleRecord` |
 * | `irs_limits.json` | `IrsLimits` |
 * | `agent_config.json` | `AgentConfig` |
 *
 * @module
 */

import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { ConfigError, quote } from "../core/errors.ts";
import { GLOBAL_CLIENT_ID } from "../core/keys.ts";
import { coversDay } from "../core/rules_logic.ts";
import { type CompleteRulesData, decodeRulesData, problemText, type RulesDataProblem } from "../core/schema.ts";
import { compareDecimals } from "../core/values.ts";

export type { CompleteRulesData } from "../core/schema.ts";

/** The collection of the reference data each seed file holds, and the file's name. */
export const SEED_FILES: Readonly<Record<keyof CompleteRulesData, string>> = {
  pipelineSteps: "pipeline_seed.json",
  validationRules: "validation_rules.json",
  calculationRules: "calculation_rules.json",
  irsLimits: "irs_limits.json",
  agentConfigs: "agent_config.json",
};

/** The IRS years the seed must hold. */
export const REQUIRED_IRS_YEARS: readonly number[] = [2024, 2025, 2026];

/** Options of {@linkcode loadSeedData}. */
export interface LoadSeedDataOptions {
  /**
   * The calendar years `irs_limits.json` must hold.
   *
   * @default {REQUIRED_IRS_YEARS}
   */
  requiredYears?: readonly number[];
}

type Collection = keyof CompleteRulesData;
type RawRecord = Record<string, unknown>;

const COLLECTIONS = Object.keys(SEED_FILES) as Collection[];

/** How a problem names a raw entry: its index and, when readable, what it is. */
function entryLabel(collection: Collection, index: number, record: unknown): string {
  const r = (typeof record === "object" && record !== null ? record : {}) as RawRecord;
  const parts: unknown[] = {
    pipelineSteps: [r.planId, r.step === undefined ? undefined : `step ${String(r.step)}`],
    validationRules: [r.clientId, r.field, r.ruleId],
    calculationRules: [r.clientId, r.ruleId],
    irsLimits: [r.year === undefined ? undefined : `year ${String(r.year)}`],
    agentConfigs: [r.agent],
  }[collection];
  const shown = parts.filter((part) => typeof part === "string" || typeof part === "number").map(String);
  return shown.length === 0 ? entryName(collection, index) : `${entryName(collection, index)} (${shown.join(" ")})`;
}

/** Reads one seed file: its parsed records, or the problems that stop it. */
async function readSeedFile(path: string, problems: string[]): Promise<unknown[] | undefined> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    const reason = code === "ENOENT" ? "the file does not exist" : (error as Error).message;
    problems.push(`${path}: cannot read it: ${reason}`);
    return undefined;
  }
  let parsed: unknown;
  try {
    // Editors on Windows save UTF-8 with a byte-order mark; JSON.parse would call it malformed.
    parsed = JSON.parse(text.startsWith("\ufeff") ? text.slice(1) : text);
  } catch (error) {
    problems.push(`${path}: malformed JSON: ${(error as Error).message}`);
    return undefined;
  }
  if (!Array.isArray(parsed)) {
    problems.push(`${path}: it is not a JSON array of records`);
    return undefined;
  }
  return parsed;
}

/** How a problem names another entry: `entry [3]`. */
function entryName(_collection: Collection, index: number): string {
  return `entry [${index}]`;
}

/**
 * Names the file and the entry of a schema problem (`config/pipeline_seed.json
 * entry [3] (P step 400): retry: ...`).
 */
function inFile(path: string, records: readonly unknown[], problem: RulesDataProblem): string {
  const { entry } = problem;
  if (entry === undefined) return `${path}: ${problemText(problem)}`;
  const label = entryLabel(entry.collection, entry.index, records[entry.index]);
  return `${path} ${label}: ${problemText({ path: entry.field, message: problem.message })}`;
}

/**
 * Steps must number 100, 200, 300, ... per plan, with no gap: a skipped or
 * misnumbered step is named with the entry that holds it. (A repeated step
 * is reported by the schema's duplicate-key check.)
 */
function checkStepNumbers(path: string, records: readonly unknown[], problems: string[]): void {
  const plans = new Map<string, Map<number, number>>();
  records.forEach((record, index) => {
    const { planId, step } = (record ?? {}) as RawRecord;
    if (typeof planId !== "string" || !Number.isInteger(step)) return;
    const steps = plans.get(planId) ?? new Map<number, number>();
    if (!steps.has(step as number)) steps.set(step as number, index);
    plans.set(planId, steps);
  });
  for (const [planId, steps] of plans) {
    const named = (step: number) => {
      const index = steps.get(step)!;
      return `${path} ${entryLabel("pipelineSteps", index, records[index])}`;
    };
    let previous = 0;
    for (const step of [...steps.keys()].sort((a, b) => a - b)) {
      if (step % 100 !== 0) {
        problems.push(
          `${named(step)}: step ${step} is not a multiple of 100 (plans number their steps 100, 200, 300, ...)`,
        );
        continue;
      }
      if (step > previous + 100) {
        const missing: number[] = [];
        for (let gap = previous + 100; gap < step; gap += 100) missing.push(gap);
        const what = missing.length === 1 ? `step ${missing[0]}` : `steps ${missing.join(", ")}`;
        problems.push(`${named(step)}: plan ${quote(planId)} skips ${what} before step ${step}`);
      }
      previous = step;
    }
  }
}

/** Every calculation rule a step names must have a GLOBAL definition, the fallback of every client. */
function checkStepRules(
  stepsPath: string,
  steps: readonly unknown[],
  rulesPath: string,
  rules: readonly unknown[],
  problems: string[],
): void {
  const global = new Set(
    rules
      .map((rule) => (rule ?? {}) as RawRecord)
      .filter((rule) => rule.clientId === GLOBAL_CLIENT_ID)
      .map((rule) => rule.ruleId),
  );
  steps.forEach((step, index) => {
    const names = ((step ?? {}) as RawRecord).calculationRules;
    if (!Array.isArray(names)) return;
    for (const name of names) {
      if (typeof name !== "string" || global.has(name)) continue;
      problems.push(
        `${stepsPath} ${entryLabel("pipelineSteps", index, step)}: calculation rule ${
          quote(name)
        } has no GLOBAL definition in ${rulesPath}`,
      );
    }
  });
}

function checkYears(path: string, records: readonly unknown[], years: readonly number[], problems: string[]): void {
  const present = new Set(records.map((record) => ((record ?? {}) as RawRecord).year));
  for (const year of years) {
    if (!present.has(year)) problems.push(`${path}: year ${year} is missing (the seed needs ${years.join(", ")})`);
  }
}

/** Every agent a step runs on needs a configuration. */
function checkAgents(
  stepsPath: string,
  steps: readonly unknown[],
  agentsPath: string,
  agents: readonly unknown[],
  problems: string[],
): void {
  const configured = new Set(agents.map((config) => ((config ?? {}) as RawRecord).agent));
  const reported = new Set<unknown>();
  steps.forEach((step, index) => {
    const { agent } = (step ?? {}) as RawRecord;
    if (typeof agent !== "string" || configured.has(agent) || reported.has(agent)) return;
    reported.add(agent);
    problems.push(
      `${stepsPath} ${entryLabel("pipelineSteps", index, step)}: agent ${quote(agent)} has no entry in ${agentsPath}`,
    );
  });
}

/**
 * The GLOBAL calculation-rule parameters that must equal a limit of the IRS
 * limits of the year in effect on 1 July (mid-year: a version that covers
 * only part of a year is still checked against that year's figure).
 */
const IRS_BOUND_PARAMETERS: ReadonlyArray<{ ruleId: string; parameter: string; limit: string }> = [
  { ruleId: "FICA_SOCIAL_SECURITY", parameter: "wageBase", limit: "socialSecurityWageBase" },
  { ruleId: "DEFERRAL_401K", parameter: "annualLimit", limit: "electiveDeferral" },
];

/** A GLOBAL wage base or deferral cap in effect on 1 July of a year must be that year's IRS figure. */
function checkIrsBoundRules(
  rulesPath: string,
  limitsPath: string,
  data: Pick<CompleteRulesData, "calculationRules" | "irsLimits">,
  problems: string[],
): void {
  for (const { year, limits } of data.irsLimits) {
    const midYear = `${String(year).padStart(4, "0")}-07-01`;
    for (const { ruleId, parameter, limit } of IRS_BOUND_PARAMETERS) {
      const expected = limits[limit];
      const index = data.calculationRules.findIndex((rule) =>
        rule.clientId === GLOBAL_CLIENT_ID && rule.ruleId === ruleId && coversDay(rule, midYear)
      );
      const actual = data.calculationRules[index]?.parameters[parameter];
      if (expected === undefined || actual === undefined || compareDecimals(actual, expected) === 0) continue;
      problems.push(
        `${rulesPath} ${entryLabel("calculationRules", index, data.calculationRules[index])}: ${parameter} ${
          quote(actual)
        } in effect on ${midYear} differs from ${limit} ${quote(expected)} of year ${year} in ${limitsPath}`,
      );
    }
  }
}

/**
 * Reads and checks the seed files of a directory. Beyond each record's
 * schema (types, decimals, rates in [0, 1], no repeated key), it checks that
 * every plan numbers its steps 100, 200, 300, ... with no gap or repeat, that
 * every calculation rule a step names has a GLOBAL definition, that every
 * agent a step names has a configuration, that the IRS limits hold every
 * required year, and that the GLOBAL `FICA_SOCIAL_SECURITY` wage base and
 * `DEFERRAL_401K` annual limit in effect on 1 July of each year equal that
 * year's `socialSecurityWageBase` and `electiveDeferral`. Overlapping
 * versions of one (client, rule) and impossible dates are refused by the
 * schema.
 *
 * @param dir The directory that holds the five seed files, e.g. `"config"`.
 * @param options The years the IRS limits must hold.
 * @returns The decoded data set: decimals canonical, every collection present.
 * @throws {ConfigError} Listing every problem, one a line, each naming the file and the entry.
 *
 * @example Load and count the pipeline steps
 * ```ts
 * import { loadSeedData } from "@bluestar/persistence";
 *
 * const data = await loadSeedData("config");
 * console.log(`${data.pipelineSteps.length} steps`);
 * ```
 */
export async function loadSeedData(dir: string, options: LoadSeedDataOptions = {}): Promise<CompleteRulesData> {
  const { requiredYears = REQUIRED_IRS_YEARS } = options;
  const problems: string[] = [];
  const paths = Object.fromEntries(COLLECTIONS.map((c) => [c, join(dir, SEED_FILES[c])])) as Record<Collection, string>;
  const raw = {} as Record<Collection, unknown[] | undefined>;
  for (const collection of COLLECTIONS) raw[collection] = await readSeedFile(paths[collection], problems);

  const data: Partial<CompleteRulesData> = {};
  for (const collection of COLLECTIONS) {
    const records = raw[collection];
    if (records === undefined) continue;
    const decoded = decodeRulesData({ [collection]: records }, entryName);
    if (decoded.ok) (data as Record<Collection, unknown>)[collection] = decoded.value[collection];
    else problems.push(...decoded.problems.map((problem) => inFile(paths[collection], records, problem)));
  }

  const steps = raw.pipelineSteps;
  if (steps !== undefined) {
    checkStepNumbers(paths.pipelineSteps, steps, problems);
    if (raw.calculationRules !== undefined) {
      checkStepRules(paths.pipelineSteps, steps, paths.calculationRules, raw.calculationRules, problems);
    }
    if (raw.agentConfigs !== undefined) {
      checkAgents(paths.pipelineSteps, steps, paths.agentConfigs, raw.agentConfigs, problems);
    }
  }
  if (raw.irsLimits !== undefined) checkYears(paths.irsLimits, raw.irsLimits, requiredYears, problems);
  if (data.calculationRules !== undefined && data.irsLimits !== undefined) {
    checkIrsBoundRules(paths.calculationRules, paths.irsLimits, data as CompleteRulesData, problems);
  }

  if (problems.length > 0) {
    const count = problems.length === 1 ? "1 problem" : `${problems.length} problems`;
    throw new ConfigError(`Failed to load seed data from ${quote(dir)}: ${count}\n  - ${problems.join("\n  - ")}`);
  }
  return data as CompleteRulesData;
}
