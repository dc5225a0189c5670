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

import { InvalidInputError, quote } from "./errors.ts";
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
import {
  canonicalDecimal,
  compareDecimals,
  decimalProblem,
  jsonProblem,
  MAX_DESCRIPTION_BYTES,
  MAX_ERROR_BYTES,
  MAX_LABEL_BYTES,
  MAX_PAYLOAD_BYTES,
} from "./values.ts";

const utf8 = new TextEncoder();

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

/**
 * Free text of at most `maxBytes` UTF-8 bytes: each field's limit keeps its
 * record within one DynamoDB item, so no backend keeps what DynamoDB cannot.
 */
function text(maxBytes: number): Field {
  return (value, path, problems) => {
    if (typeof value !== "string" || value.length === 0) problems.push(`${path}: it is not a non-empty string`);
    // Not Unicode: DynamoDB stores UTF-8 and refuses it, so one backend would keep what another cannot.
    else if (hasLoneSurrogate(value)) problems.push(`${path}: it contains a lone surrogate`);
    // A UTF-16 unit is at most 3 UTF-8 bytes: only text that could be over the limit is encoded.
    else if (value.length * 3 > maxBytes) {
      const bytes = utf8.encode(value).length;
      if (bytes > maxBytes) problems.push(`${path}: it is ${bytes} bytes of UTF-8, over the limit of ${maxBytes}`);
    }
    return value;
  };
}

const label = text(MAX_LABEL_BYTES);
const description = text(MAX_DESCRIPTION_BYTES);

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
    // Compared as decimals: through a float, "1.00000000000000000001" would be 1.
    if (
      isRate && decimalProblem(element) === undefined &&
      (compareDecimals(element as string, "0") < 0 || compareDecimals(element as string, "1") > 0)
    ) {
      problems.push(`${path}.${key}: the rate ${JSON.stringify(element)} is outside [0, 1]`);
    }
  }
  return copy;
};

const ISO_TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,3}))?(?:Z|([+-])(\d{2}):(\d{2}))$/;
const ISO_DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
/** The stored form of a timestamp: UTC with milliseconds, years 0000 to 9999 (`toISOString()`'s plain form). */
const STORED_TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/** Whether the day exists in the proleptic Gregorian calendar (no "2024-02-30" rolling over to March). */
function isCalendarDay(year: number, month: number, day: number): boolean {
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  const days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1];
  return days !== undefined && day >= 1 && day <= days;
}

/**
 * The one timestamp normaliser, for input and for what a store reads back:
 * an ISO 8601 timestamp (a real calendar day, hours 00 to 23, an offset of
 * at most 23:59) becomes UTC with milliseconds. A value is accepted only when
 * its UTC form stays within years 0000 to 9999, the form every later read
 * accepts: "9999-12-31T23:30:00-01:00" would be year 10000, unreadable.
 */
const timestamp: Field = (value, path, problems) => {
  const match = typeof value === "string" ? ISO_TIMESTAMP.exec(value) : null;
  const [year, month, day, hour, minute, second] = (match?.slice(1, 7) ?? []).map(Number);
  const [fraction = "0", sign, offsetHours = "0", offsetMinutes = "0"] = match?.slice(7) ?? [];
  if (match === null) {
    problems.push(`${path}: it is not an ISO 8601 timestamp with at most millisecond precision`);
    return value;
  }
  if (!isCalendarDay(year, month, day)) {
    problems.push(`${path}: the day ${quote(match[0].slice(0, 10))} does not exist`);
    return value;
  }
  if (hour > 23 || minute > 59 || second > 59 || Number(offsetHours) > 23 || Number(offsetMinutes) > 59) {
    problems.push(`${path}: its time or offset is out of range (hours 00 to 23, minutes and seconds 00 to 59)`);
    return value;
  }
  const time = new Date(0);
  // setUTCFullYear, not Date.UTC: Date.UTC reads years 0 to 99 as 1900 to 1999.
  time.setUTCFullYear(year, month - 1, day);
  time.setUTCHours(hour, minute, second, Number(fraction.padEnd(3, "0")));
  const offset = (Number(offsetHours) * 60 + Number(offsetMinutes)) * 60_000;
  const utc = new Date(time.getTime() - (sign === "-" ? -offset : offset)).toISOString();
  if (!STORED_TIMESTAMP.test(utc)) {
    problems.push(`${path}: it is ${quote(utc)} in UTC, outside the years 0000 to 9999`);
    return value;
  }
  return utc;
};

const date: Field = (value, path, problems) => {
  const match = typeof value === "string" ? ISO_DATE.exec(value) : null;
  if (match === null) problems.push(`${path}: it is not a YYYY-MM-DD date`);
  else if (!isCalendarDay(Number(match[1]), Number(match[2]), Number(match[3]))) {
    problems.push(`${path}: the day ${quote(value)} does not exist`);
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
      // Own properties only: an inherited value is not the caller's field.
      if (!Object.hasOwn(input, key) || input[key] === undefined) {
        if (!isOptional) problems.push(`${path}.${key}: it is missing`);
        continue;
      }
      copy[key] = (isOptional ? spec.optional : spec)(input[key], `${path}.${key}`, problems);
    }
    for (const key of Object.keys(input)) {
      // `in` would find "toString" or "constructor" on the shape's prototype and drop the field in silence.
      if (!Object.hasOwn(shape, key)) problems.push(`${path}.${key}: it is not a field of this type`);
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
  name: label,
  agent,
  action: label,
  required: bool,
  timeoutSeconds: integer(1, 86_400),
  retry: object({ maxAttempts: integer(1, 100), backoffSeconds: integer(0, 86_400) }),
  calculationRules: arrayOf(id),
});

const validationRuleShape: Shape = {
  ruleId: id,
  field: id,
  ruleType: oneOf<ValidationRuleType>(["required", "pattern", "range", "length", "enum", "date"]),
  pattern: { optional: description },
  min: { optional: decimal },
  max: { optional: decimal },
  allowedValues: { optional: arrayOf(label) },
  severity: oneOf(["error", "warning"] as const),
  message: description,
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
  ruleType: label,
  description,
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
  error: nullable(text(MAX_ERROR_BYTES)),
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
  action: label,
  actor: label,
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

/**
 * The most JSON a reference record may take (for validation rules: all the
 * rules of one client and field, which share one item). DynamoDB refuses an
 * item over 400 KB (409,600 bytes, attribute names included; moto stops near
 * 405,000). A record's JSON text is at least as long as DynamoDB counts its
 * attributes; the margin holds the item's keys.
 */
const MAX_RECORD_JSON_BYTES = 400_000;

/** Reference data with every collection present. */
export type CompleteRulesData = { [K in keyof RulesData]-?: NonNullable<RulesData[K]> };

/**
 * Decodes a reference data set: every record, no two records with the same
 * key (a second record would silently replace the first), and no item larger
 * than DynamoDB holds.
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
    itemOf: (record: T) => string = keyOf,
  ): void => {
    if (records === undefined) return;
    if (!Array.isArray(records)) {
      problems.push(`${collection}: it is not an array`);
      return;
    }
    const seen = new Map<string, number>();
    const itemBytes = new Map<string, number>();
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
      const item = itemOf(decoded.value);
      const before = itemBytes.get(item) ?? 0;
      const bytes = before + utf8.encode(JSON.stringify(decoded.value)).length + 1;
      if (bytes > MAX_RECORD_JSON_BYTES && before <= MAX_RECORD_JSON_BYTES) {
        const shared = before === 0 ? "" : " with the records before it that share its item";
        problems.push(
          `${path}: it is ${bytes} bytes of JSON${shared}, over the ${MAX_RECORD_JSON_BYTES} that fit in one DynamoDB item`,
        );
      }
      itemBytes.set(item, bytes);
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
    // Every rule of one client and field is stored in one item.
    (r) => keyText(itemKeys.validationRules(r.clientId, r.field)),
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
