/**
 * One schema per domain type, used wherever a value crosses a boundary: input
 * handed to a store (bad input is an `InvalidInputError`), an item read back
 * from a store or a cache (a bad item is a `CorruptItemError`, a bad cache
 * entry is a miss), and the seed files (a bad entry names the file).
 *
 * Decoding validates and returns a normalised copy: decimals in canonical
 * form, JSON deep-copied, unknown fields rejected (a field the caller thinks
 * is stored but is not would be data lost in silence).
 *
 * @module
 */

import { InvalidInputError } from "./errors.ts";
import { hasLoneSurrogate, idProblem, itemKeys } from "./keys.ts";
import type {
  AgentConfig,
  AgentName,
  AuditEntry,
  BatchState,
  BatchStatus,
  CalculationRule,
  CalculationRuleRecord,
  IrsLimits,
  PipelineStep,
  ProcessingResult,
  RulesData,
  ValidationRule,
  ValidationRuleRecord,
  ValidationRuleType,
} from "./types.ts";
import { AGENT_NAMES, BATCH_STATUSES } from "./types.ts";
import { canonicalDecimal, decimalProblem, jsonProblem, MAX_PAYLOAD_BYTES } from "./values.ts";

/** Validates one value and returns its normalised copy, or reports problems. */
type Field = (value: unknown, path: string, problems: string[]) => unknown;

/** A field that may be absent. */
interface Optional {
  optional: Field;
}

type Shape = Record<string, Field | Optional>;

/** The result of decoding: the value, or every problem found. */
export type Decoded<T> = { ok: true; value: T } | { ok: false; problems: string[] };

/** A schema for one domain type. */
export interface Schema<T> {
  /** What the type is called in messages (`"calculation rule"`). */
  readonly name: string;
  /**
   * Validates a value and returns its normalised copy.
   *
   * @param value The candidate.
   * @param path How problems name the value.
   * @default {schema name}
   * @returns The copy, or every problem found.
   */
  decode(value: unknown, path?: string): Decoded<T>;
}

function problemWhen(problem: string | undefined, path: string, problems: string[]): void {
  if (problem !== undefined) problems.push(`${path}: ${problem}`);
}

const id: Field = (value, path, problems) => {
  problemWhen(idProblem(value), path, problems);
  return value;
};

const text: Field = (value, path, problems) => {
  if (typeof value !== "string" || value.length === 0) problems.push(`${path}: it is not a non-empty string`);
  // Not Unicode: DynamoDB stores UTF-8 and refuses it, so one backend would keep what another cannot.
  else if (hasLoneSurrogate(value)) problems.push(`${path}: it contains a lone surrogate`);
  return value;
};

const bool: Field = (value, path, problems) => {
  if (typeof value !== "boolean") problems.push(`${path}: it is not a boolean`);
  return value;
};

function integer(min: number, max: number): Field {
  return (value, path, problems) => {
    if (!Number.isInteger(value) || (value as number) < min || (value as number) > max) {
      problems.push(`${path}: it is not an integer from ${min} to ${max}`);
    }
    return value;
  };
}

const decimal: Field = (value, path, problems) => {
  const problem = decimalProblem(value);
  problemWhen(problem, path, problems);
  return problem === undefined ? canonicalDecimal(value as string) : value;
};

/** Calculation parameters; one named `rate` or `...Rate` is a fraction and must lie in [0, 1]. */
const parameters: Field = (value, path, problems) => {
  const copy = recordOf(decimal)(value, path, problems);
  if (typeof copy !== "object" || copy === null) return copy;
  for (const [key, element] of Object.entries(copy)) {
    const isRate = key === "rate" || key.endsWith("Rate");
    if (isRate && decimalProblem(element) === undefined && (Number(element) < 0 || Number(element) > 1)) {
      problems.push(`${path}.${key}: the rate ${JSON.stringify(element)} is outside [0, 1]`);
    }
  }
  return copy;
};

const ISO_TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?(Z|[+-]\d{2}:\d{2})$/;
/** Timestamps are stored in UTC with milliseconds (`toISOString()`), so text order is time order. */
const timestamp: Field = (value, path, problems) => {
  const time = typeof value === "string" && ISO_TIMESTAMP.test(value) ? Date.parse(value) : Number.NaN;
  if (Number.isNaN(time)) {
    problems.push(`${path}: it is not an ISO 8601 timestamp with at most millisecond precision`);
    return value;
  }
  return new Date(time).toISOString();
};

const ISO_DATE = /^\d{4}-\d{2}-\d{2}$/;
const date: Field = (value, path, problems) => {
  if (typeof value !== "string" || !ISO_DATE.test(value) || Number.isNaN(Date.parse(value))) {
    problems.push(`${path}: it is not a YYYY-MM-DD date`);
  }
  return value;
};

const jsonObject: Field = (value, path, problems) => {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    problems.push(`${path}: it is not an object`);
    return value;
  }
  const problem = jsonProblem(value);
  if (problem !== undefined) {
    problems.push(`${path}: ${problem}`);
    return value;
  }
  // The copy goes through JSON text anyway; its size is the payload's size.
  const text = JSON.stringify(value);
  const bytes = text.length * 3 <= MAX_PAYLOAD_BYTES ? text.length : utf8.encode(text).length;
  if (bytes > MAX_PAYLOAD_BYTES) {
    problems.push(`${path}: it is ${bytes} bytes of JSON, over the limit of ${MAX_PAYLOAD_BYTES}`);
    return value;
  }
  return JSON.parse(text);
};

const utf8 = new TextEncoder();

function oneOf<T extends string>(values: readonly T[]): Field {
  return (value, path, problems) => {
    if (!values.includes(value as T)) {
      problems.push(`${path}: it is not one of ${values.map((v) => JSON.stringify(v)).join(", ")}`);
    }
    return value;
  };
}

function nullable(field: Field): Field {
  return (value, path, problems) => value === null ? null : field(value, path, problems);
}

function arrayOf(item: Field): Field {
  return (value, path, problems) => {
    if (!Array.isArray(value)) {
      problems.push(`${path}: it is not an array`);
      return value;
    }
    return value.map((element, index) => item(element, `${path}[${index}]`, problems));
  };
}

/**
 * A record of named values (calculation parameters, IRS limits). Only a plain
 * object: a `Map`, a typed array or a class instance has no entries of its
 * own and would become `{}`, its values lost in silence. Names are ids, and
 * not the name of a built-in object property (`__proto__` would set the
 * copy's prototype instead of a value, `constructor` breaks DynamoDB's map
 * encoding).
 */
function recordOf(item: Field): Field {
  return (value, path, problems) => {
    const prototype = typeof value === "object" && value !== null ? Object.getPrototypeOf(value) : undefined;
    if (prototype !== Object.prototype && prototype !== null) {
      problems.push(`${path}: it is not a plain object`);
      return value;
    }
    const copy: Record<string, unknown> = {};
    for (const [key, element] of Object.entries(value as object)) {
      const problem = idProblem(key) ?? (key in Object.prototype ? "it is a built-in property name" : undefined);
      problemWhen(problem, `${path} key ${JSON.stringify(key)}`, problems);
      if (problem === undefined) copy[key] = item(element, `${path}.${key}`, problems);
    }
    return copy;
  };
}

function object(shape: Shape): Field {
  return (value, path, problems) => {
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      problems.push(`${path}: it is not an object`);
      return value;
    }
    const input = value as Record<string, unknown>;
    const copy: Record<string, unknown> = {};
    for (const [key, spec] of Object.entries(shape)) {
      const isOptional = typeof spec !== "function";
      if (input[key] === undefined) {
        if (!isOptional) problems.push(`${path}.${key}: it is missing`);
        continue;
      }
      copy[key] = (isOptional ? spec.optional : spec)(input[key], `${path}.${key}`, problems);
    }
    for (const key of Object.keys(input)) {
      if (!(key in shape)) problems.push(`${path}.${key}: it is not a field of this type`);
    }
    return copy;
  };
}

function schema<T>(name: string, shape: Shape): Schema<T> {
  const check = object(shape);
  return {
    name,
    decode(value: unknown, path: string = name.replaceAll(" ", "_")): Decoded<T> {
      const problems: string[] = [];
      const copy = check(value, path, problems);
      return problems.length === 0 ? { ok: true, value: copy as T } : { ok: false, problems };
    },
  };
}

const agent = oneOf<AgentName>(AGENT_NAMES);
const ruleScope = oneOf(["CLIENT", "GLOBAL"] as const);

/** A pipeline step. */
export const pipelineStepSchema: Schema<PipelineStep> = schema("pipeline step", {
  planId: id,
  step: integer(1, 9999),
  name: text,
  agent,
  action: text,
  required: bool,
  timeoutSeconds: integer(1, 86_400),
  retry: object({ maxAttempts: integer(1, 100), backoffSeconds: integer(0, 86_400) }),
  calculationRules: arrayOf(id),
});

const validationRuleShape: Shape = {
  ruleId: id,
  field: id,
  ruleType: oneOf<ValidationRuleType>(["required", "pattern", "range", "length", "enum", "date"]),
  pattern: { optional: text },
  min: { optional: decimal },
  max: { optional: decimal },
  allowedValues: { optional: arrayOf(text) },
  severity: oneOf(["error", "warning"] as const),
  message: text,
  clientId: id,
};

/** A validation rule as stored (no `scope`). */
export const validationRuleRecordSchema: Schema<ValidationRuleRecord> = schema(
  "validation rule",
  validationRuleShape,
);

/** A validation rule as read (with `scope`). */
export const validationRuleSchema: Schema<ValidationRule> = schema("validation rule", {
  ...validationRuleShape,
  scope: ruleScope,
});

const calculationRuleShape: Shape = {
  ruleId: id,
  ruleType: text,
  description: text,
  parameters,
  effectiveFrom: date,
  effectiveTo: nullable(date),
  clientId: id,
};

/** A calculation rule as stored (no `scope`). */
export const calculationRuleRecordSchema: Schema<CalculationRuleRecord> = schema(
  "calculation rule",
  calculationRuleShape,
);

/** A calculation rule as read (with `scope`). */
export const calculationRuleSchema: Schema<CalculationRule> = schema("calculation rule", {
  ...calculationRuleShape,
  scope: ruleScope,
});

/** A year's IRS limits. */
export const irsLimitsSchema: Schema<IrsLimits> = schema("IRS limits", {
  year: integer(1900, 9999),
  limits: recordOf(decimal),
});

const batchStatus = oneOf<BatchStatus>(BATCH_STATUSES);

/** A batch state. */
export const batchStateSchema: Schema<BatchState> = schema("batch state", {
  batchId: id,
  clientId: id,
  planId: id,
  status: batchStatus,
  currentStep: nullable(integer(1, 9999)),
  version: integer(1, Number.MAX_SAFE_INTEGER),
  updatedAt: timestamp,
  data: jsonObject,
});

/** A processing result. */
export const processingResultSchema: Schema<ProcessingResult> = schema("processing result", {
  batchId: id,
  step: id,
  status: oneOf(["succeeded", "failed", "skipped"] as const),
  output: jsonObject,
  error: nullable(text),
  startedAt: timestamp,
  completedAt: timestamp,
  expiresAt: { optional: integer(1, 253_402_300_799) },
});

/** An audit entry. */
export const auditEntrySchema: Schema<AuditEntry> = schema("audit entry", {
  entryId: id,
  batchId: id,
  timestamp,
  agent,
  action: text,
  actor: text,
  details: jsonObject,
});

/** An agent's configuration. */
export const agentConfigSchema: Schema<AgentConfig> = schema("agent config", {
  agent,
  enabled: bool,
  maxConcurrency: integer(1, 1000),
  settings: jsonObject,
});

/**
 * Decodes input handed to a store.
 *
 * @param schema The schema of the input.
 * @param value The input.
 * @param action The action, for the message (`'save batch state "B1"'`).
 * @returns The normalised copy.
 * @throws {InvalidInputError} Listing every problem, when the input does not decode.
 */
export function decodeInput<T>(schema: Schema<T>, value: unknown, action: string): T {
  const decoded = schema.decode(value);
  if (!decoded.ok) throw new InvalidInputError(`Failed to ${action}: ${decoded.problems.join("; ")}`);
  return decoded.value;
}

/** Reference data with every collection present. */
export type CompleteRulesData = { [K in keyof RulesData]-?: NonNullable<RulesData[K]> };

/**
 * Decodes a reference data set: every record, plus no two records with the
 * same key (a second record would silently replace the first).
 *
 * @param data The data set.
 * @returns The normalised data set, or every problem found, each named by collection and index.
 */
export function decodeRulesData(data: RulesData): Decoded<CompleteRulesData> {
  const problems: string[] = [];
  const out: CompleteRulesData = {
    pipelineSteps: [],
    validationRules: [],
    calculationRules: [],
    irsLimits: [],
    agentConfigs: [],
  };
  const collect = <T>(
    collection: keyof CompleteRulesData,
    records: readonly unknown[] | undefined,
    recordSchema: Schema<T>,
    keyOf: (record: T) => string,
  ): void => {
    if (records === undefined) return;
    if (!Array.isArray(records)) {
      problems.push(`${collection}: it is not an array`);
      return;
    }
    const seen = new Map<string, number>();
    records.forEach((record, index) => {
      const path = `${collection}[${index}]`;
      const decoded = recordSchema.decode(record, path);
      if (!decoded.ok) {
        problems.push(...decoded.problems);
        return;
      }
      const key = keyOf(decoded.value);
      const first = seen.get(key);
      if (first !== undefined) problems.push(`${path}: it repeats the key of ${collection}[${first}]`);
      seen.set(key, index);
      (out[collection] as T[]).push(decoded.value);
    });
  };
  const keyText = ({ PK, SK }: { PK: string; SK: string }) => `${PK}\u0000${SK}`;
  collect(
    "pipelineSteps",
    data.pipelineSteps,
    pipelineStepSchema,
    (s) => keyText(itemKeys.pipelineStep(s.planId, s.step)),
  );
  collect(
    "validationRules",
    data.validationRules,
    validationRuleRecordSchema,
    (r) => `${keyText(itemKeys.validationRules(r.clientId, r.field))}\u0000${r.ruleId}`,
  );
  collect(
    "calculationRules",
    data.calculationRules,
    calculationRuleRecordSchema,
    (r) => keyText(itemKeys.calculationRule(r.clientId, r.ruleId)),
  );
  collect("irsLimits", data.irsLimits, irsLimitsSchema, (l) => keyText(itemKeys.irsLimits(l.year)));
  collect("agentConfigs", data.agentConfigs, agentConfigSchema, (c) => keyText(itemKeys.agentConfig(c.agent)));
  return problems.length === 0 ? { ok: true, value: out } : { ok: false, problems };
}
