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
  CalculationRuleChange,
  CalculationRuleRecord,
  CalculationRuleVersion,
  Decimal,
  IrsLimits,
  JsonObject,
  PipelineStep,
  ProcessingResult,
  RuleChange,
  RuleChangeOptions,
  RuleReadOptions,
  RulesData,
  ValidationRule,
  ValidationRuleChange,
  ValidationRuleRecord,
  ValidationRuleType,
  ValidationRuleVersion,
} from "./types.ts";
import type { SealAuditTrailOptions } from "./audit.ts";
import { AGENT_NAMES, BATCH_STATUSES, EARLIEST_EFFECTIVE_DATE, MAX_UPDATE_KEYS } from "./types.ts";
import { type EffectiveRange, rangeOrderProblem, rangesOverlap, rangeText } from "./rules_logic.ts";
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

/** One problem decoding found: where it is, and what is wrong there. */
export interface Problem {
  /**
   * Where: the name the value was decoded under, then fields, elements and
   * keys (`pipeline_step.retry.maxAttempts`, `cached[2].step`); under the
   * name `""`, paths are relative to the value (`retry.maxAttempts`, and `""`
   * for the value itself).
   */
  path: string;
  /** What is wrong there (`it is missing`). */
  message: string;
}

/**
 * A problem as every message shows it: `path: message`.
 *
 * @param problem The problem.
 * @returns The text.
 *
 * @example Show a problem
 * ```ts
 * import { problemText } from "./schema.ts";
 *
 * console.assert(problemText({ path: "batch_state.version", message: "it is missing" }) === "batch_state.version: it is missing");
 * ```
 */
export function problemText(problem: Problem): string {
  return problem.path === "" ? problem.message : `${problem.path}: ${problem.message}`;
}

/**
 * Validates one value and returns its normalised copy, or adds its problems.
 * The copy is a `T` only when no problem was added; otherwise it is thrown
 * away.
 */
export type Field<T> = (value: unknown, path: string, problems: Problem[]) => T;

/** A field that may be absent. */
export interface Optional<T> {
  /** The field's check, when it is present. */
  optional: Field<T>;
}

/**
 * The check of every field of the record type `T`: exactly the keys of `T`,
 * an optional key's check wrapped in {@linkcode Optional}. A field missing
 * or extra, or a check that returns another type, does not compile.
 */
export type Shape<T> = {
  [K in keyof T]-?: Record<never, never> extends Pick<T, K> ? Optional<Exclude<T[K], undefined>> : Field<T[K]>;
};

/** The result of decoding: the value, or every problem found (each a `P`). */
export type Decoded<T, P extends Problem = Problem> = { ok: true; value: T } | { ok: false; problems: P[] };

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

function problemWhen(problem: string | undefined, path: string, problems: Problem[]): void {
  if (problem !== undefined) problems.push({ path, message: problem });
}

/** The path of a field of the value at `path`. */
function fieldPath(path: string, key: string): string {
  return path === "" ? key : `${path}.${key}`;
}

const id: Field<string> = (value, path, problems) => {
  problemWhen(idProblem(value), path, problems);
  return value as string;
};

/**
 * Free text of at most `maxBytes` UTF-8 bytes: each field's limit keeps its
 * record within one DynamoDB item, so no backend keeps what DynamoDB cannot.
 */
function text(maxBytes: number): Field<string> {
  return (value, path, problems) => {
    let problem: string | undefined;
    if (typeof value !== "string" || value.length === 0) problem = "it is not a non-empty string";
    // Not Unicode: DynamoDB stores UTF-8 and refuses it, so one backend would keep what another cannot.
    else if (hasLoneSurrogate(value)) problem = "it contains a lone surrogate";
    // A UTF-16 unit is at most 3 UTF-8 bytes: only text that could be over the limit is encoded.
    else if (value.length * 3 > maxBytes) {
      const bytes = utf8.encode(value).length;
      if (bytes > maxBytes) problem = `it is ${bytes} bytes of UTF-8, over the limit of ${maxBytes}`;
    }
    problemWhen(problem, path, problems);
    return value as string;
  };
}

const label = text(MAX_LABEL_BYTES);
const description = text(MAX_DESCRIPTION_BYTES);

const bool: Field<boolean> = (value, path, problems) => {
  if (typeof value !== "boolean") problems.push({ path, message: "it is not a boolean" });
  return value as boolean;
};

function integer(min: number, max: number): Field<number> {
  return (value, path, problems) => {
    if (!Number.isInteger(value) || (value as number) < min || (value as number) > max) {
      problems.push({ path, message: `it is not an integer from ${min} to ${max}` });
    }
    return value as number;
  };
}

const decimal: Field<Decimal> = (value, path, problems) => {
  const problem = decimalProblem(value);
  problemWhen(problem, path, problems);
  return problem === undefined ? canonicalDecimal(value as string) : value as Decimal;
};

/** Calculation parameters; one named `rate` or `...Rate` is a fraction and must lie in [0, 1]. */
const parameters: Field<Record<string, Decimal>> = (value, path, problems) => {
  const copy = recordOf(decimal)(value, path, problems);
  if (typeof copy !== "object" || copy === null) return copy;
  for (const [key, element] of Object.entries(copy)) {
    const isRate = key === "rate" || key.endsWith("Rate");
    // Compared as decimals: through a float, "1.00000000000000000001" would be 1.
    if (
      isRate && decimalProblem(element) === undefined &&
      (compareDecimals(element as string, "0") < 0 || compareDecimals(element as string, "1") > 0)
    ) {
      problems.push({ path: fieldPath(path, key), message: `the rate ${JSON.stringify(element)} is outside [0, 1]` });
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
const timestamp: Field<string> = (value, path, problems) => {
  const match = typeof value === "string" ? ISO_TIMESTAMP.exec(value) : null;
  const [year, month, day, hour, minute, second] = (match?.slice(1, 7) ?? []).map(Number);
  const [fraction = "0", sign, offsetHours = "0", offsetMinutes = "0"] = match?.slice(7) ?? [];
  if (match === null) {
    problems.push({ path, message: "it is not an ISO 8601 timestamp with at most millisecond precision" });
    return value as string;
  }
  if (!isCalendarDay(year, month, day)) {
    problems.push({ path, message: `the day ${quote(match[0].slice(0, 10))} does not exist` });
    return value as string;
  }
  if (hour > 23 || minute > 59 || second > 59 || Number(offsetHours) > 23 || Number(offsetMinutes) > 59) {
    problems.push({
      path,
      message: "its time or offset is out of range (hours 00 to 23, minutes and seconds 00 to 59)",
    });
    return value as string;
  }
  const time = new Date(0);
  // setUTCFullYear, not Date.UTC: Date.UTC reads years 0 to 99 as 1900 to 1999.
  time.setUTCFullYear(year, month - 1, day);
  time.setUTCHours(hour, minute, second, Number(fraction.padEnd(3, "0")));
  const offset = (Number(offsetHours) * 60 + Number(offsetMinutes)) * 60_000;
  const utc = new Date(time.getTime() - (sign === "-" ? -offset : offset)).toISOString();
  if (!STORED_TIMESTAMP.test(utc)) {
    problems.push({ path, message: `it is ${quote(utc)} in UTC, outside the years 0000 to 9999` });
    return value as string;
  }
  return utc;
};

const date: Field<string> = (value, path, problems) => {
  const match = typeof value === "string" ? ISO_DATE.exec(value) : null;
  if (match === null) problems.push({ path, message: "it is not a YYYY-MM-DD date" });
  else if (!isCalendarDay(Number(match[1]), Number(match[2]), Number(match[3]))) {
    problems.push({ path, message: `the day ${quote(value)} does not exist` });
  }
  return value as string;
};

const jsonObject: Field<JsonObject> = (value, path, problems) => {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    problems.push({ path, message: "it is not an object" });
    return value as JsonObject;
  }
  const problem = jsonProblem(value);
  if (problem !== undefined) {
    problems.push({ path, message: problem });
    return value as JsonObject;
  }
  // The copy goes through JSON text anyway; its size is the payload's size.
  const text = JSON.stringify(value);
  const bytes = text.length * 3 <= MAX_PAYLOAD_BYTES ? text.length : utf8.encode(text).length;
  if (bytes > MAX_PAYLOAD_BYTES) {
    problems.push({ path, message: `it is ${bytes} bytes of JSON, over the limit of ${MAX_PAYLOAD_BYTES}` });
    return value as JsonObject;
  }
  return JSON.parse(text);
};

function oneOf<T extends string>(values: readonly T[]): Field<T> {
  return (value, path, problems) => {
    if (!values.includes(value as T)) {
      problems.push({ path, message: `it is not one of ${values.map((v) => JSON.stringify(v)).join(", ")}` });
    }
    return value as T;
  };
}

function nullable<T>(field: Field<T>): Field<T | null> {
  return (value, path, problems) => value === null ? null : field(value, path, problems);
}

function arrayOf<T>(item: Field<T>): Field<T[]> {
  return (value, path, problems) => {
    if (!Array.isArray(value)) {
      problems.push({ path, message: "it is not an array" });
      return value as T[];
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
function recordOf<T>(item: Field<T>): Field<Record<string, T>> {
  return (value, path, problems) => {
    const prototype = typeof value === "object" && value !== null ? Object.getPrototypeOf(value) : undefined;
    if (prototype !== Object.prototype && prototype !== null) {
      problems.push({ path, message: "it is not a plain object" });
      return value as Record<string, T>;
    }
    const copy: Record<string, T> = {};
    for (const [key, element] of Object.entries(value as object)) {
      const problem = idProblem(key) ?? (key in Object.prototype ? "it is a built-in property name" : undefined);
      problemWhen(problem, `${path} key ${JSON.stringify(key)}`, problems);
      if (problem === undefined) copy[key] = item(element, fieldPath(path, key), problems);
    }
    return copy;
  };
}

function object<T>(shape: NoInfer<Shape<T>>): Field<T> {
  const fields = Object.entries(shape) as Array<[string, Field<unknown> | Optional<unknown>]>;
  return (value, path, problems) => {
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      problems.push({ path, message: "it is not an object" });
      return value as T;
    }
    const input = value as Record<string, unknown>;
    const copy: Record<string, unknown> = {};
    for (const [key, spec] of fields) {
      const isOptional = typeof spec !== "function";
      // Own properties only: an inherited value is not the caller's field.
      if (!Object.hasOwn(input, key) || input[key] === undefined) {
        if (!isOptional) problems.push({ path: fieldPath(path, key), message: "it is missing" });
        continue;
      }
      copy[key] = (isOptional ? spec.optional : spec)(input[key], fieldPath(path, key), problems);
    }
    for (const key of Object.keys(input)) {
      // `in` would find "toString" or "constructor" on the shape's prototype and drop the field in silence.
      if (!Object.hasOwn(shape, key)) {
        problems.push({ path: fieldPath(path, key), message: "it is not a field of this type" });
      }
    }
    return copy as T;
  };
}

/**
 * The schema of the record type `T`, from the check of each of its fields.
 * The shape is typed by `T` (never inferred from the shape): a field of `T`
 * the shape lacks, a field `T` does not have, or a check of another type
 * than the field's is a compile error, so a type and its schema cannot drift.
 *
 * @param name What the type is called in messages (`"calculation rule"`).
 * @param shape The check of every field.
 * @returns The schema.
 *
 * @example A schema for a point
 * ```ts
 * import { type Field, schema } from "./schema.ts";
 *
 * interface Point {
 *   x: number;
 *   label?: string;
 * }
 * const finite: Field<number> = (value, path, problems) => {
 *   if (!Number.isFinite(value)) problems.push({ path, message: "it is not a finite number" });
 *   return value as number;
 * };
 * const label: Field<string> = (value, path, problems) => {
 *   if (typeof value !== "string") problems.push({ path, message: "it is not a string" });
 *   return value as string;
 * };
 * const pointSchema = schema<Point>("point", { x: finite, label: { optional: label } });
 *
 * const decoded = pointSchema.decode({ x: "1" });
 * console.assert(!decoded.ok && decoded.problems[0].path === "point.x");
 * ```
 */
export function schema<T>(name: string, shape: NoInfer<Shape<T>>): Schema<T> {
  const check = object<T>(shape);
  return {
    name,
    decode(value: unknown, path: string = name.replaceAll(" ", "_")): Decoded<T> {
      const problems: Problem[] = [];
      const copy = check(value, path, problems);
      return problems.length === 0 ? { ok: true, value: copy } : { ok: false, problems };
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

/** The fields every form of a validation rule has: record, stored version, rule as read. */
const validationRuleFields = {
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

const revision = integer(1, Number.MAX_SAFE_INTEGER);

const validationRuleVersionShape: Shape<ValidationRuleVersion> = {
  ...validationRuleFields,
  effectiveFrom: date,
  effectiveTo: nullable(date),
  revision,
};

/** A validation rule as the seed files and `putValidationRule` take it (no `scope`, no `revision`, dates optional). */
export const validationRuleRecordSchema: Schema<ValidationRuleRecord> = schema("validation rule", {
  ...validationRuleFields,
  effectiveFrom: { optional: date },
  effectiveTo: { optional: nullable(date) },
});

/** One stored version of a validation rule (no `scope`). */
export const validationRuleVersionSchema: Schema<ValidationRuleVersion> = schema(
  "validation rule version",
  validationRuleVersionShape,
);

/** A validation rule as read (with `scope`). */
export const validationRuleSchema: Schema<ValidationRule> = schema("validation rule", {
  ...validationRuleVersionShape,
  scope: ruleScope,
});

const calculationRuleShape: Shape<CalculationRuleRecord> = {
  ruleId: id,
  ruleType: label,
  description,
  parameters,
  effectiveFrom: date,
  effectiveTo: nullable(date),
  clientId: id,
};

/** A calculation rule as the seed files and `putCalculationRule` take it (no `scope`, no `revision`). */
export const calculationRuleRecordSchema: Schema<CalculationRuleRecord> = schema(
  "calculation rule",
  calculationRuleShape,
);

/** One stored version of a calculation rule (no `scope`). */
export const calculationRuleVersionSchema: Schema<CalculationRuleVersion> = schema("calculation rule version", {
  ...calculationRuleShape,
  revision,
});

/** A calculation rule as read (with `scope`). */
export const calculationRuleSchema: Schema<CalculationRule> = schema("calculation rule", {
  ...calculationRuleShape,
  revision,
  scope: ruleScope,
});

/** A schema as a field of a larger record. */
function nested<T>(inner: Schema<T>): Field<T> {
  return (value, path, problems) => {
    const decoded = inner.decode(value, path);
    if (decoded.ok) return decoded.value;
    problems.push(...decoded.problems);
    return value as T;
  };
}

const calculationRuleField = nested(calculationRuleSchema);
const validationRuleField = nested(validationRuleSchema);

/** The fields every rule change has. */
const ruleChangeFields = {
  changeId: id,
  at: timestamp,
  actor: label,
  reason: description,
  clientId: id,
  ruleId: id,
};

const calculationRuleChangeSchema: Schema<CalculationRuleChange> = schema("rule change", {
  ...ruleChangeFields,
  kind: oneOf(["calculation"] as const),
  before: nullable(calculationRuleField),
  after: nullable(calculationRuleField),
  closed: nullable(object({ before: nullable(calculationRuleField), after: calculationRuleField })),
});

const validationRuleChangeSchema: Schema<ValidationRuleChange> = schema("rule change", {
  ...ruleChangeFields,
  kind: oneOf(["validation"] as const),
  field: id,
  before: nullable(validationRuleField),
  after: nullable(validationRuleField),
  closed: nullable(object({ before: nullable(validationRuleField), after: validationRuleField })),
});

/** An audited rule change, of either kind. */
export const ruleChangeSchema: Schema<RuleChange> = {
  name: "rule change",
  decode(value: unknown, path = "rule_change"): Decoded<RuleChange> {
    const kind = (value as { kind?: unknown } | null)?.kind;
    if (kind === "validation") return validationRuleChangeSchema.decode(value, path);
    if (kind === "calculation") return calculationRuleChangeSchema.decode(value, path);
    return {
      ok: false,
      problems: [{ path: fieldPath(path, "kind"), message: 'it is not "calculation" or "validation"' }],
    };
  },
};

/** The options of an audited rule change: actor and reason with the free-text limits of an audit entry's actor and a rule's description. */
export const ruleChangeOptionsSchema: Schema<RuleChangeOptions> = schema("rule change options", {
  actor: label,
  reason: description,
  expectedRevision: { optional: integer(0, Number.MAX_SAFE_INTEGER) },
});

/** The options of `sealAuditTrail`: the actor with the free-text limit of an audit entry's actor. */
export const sealAuditTrailOptionsSchema: Schema<SealAuditTrailOptions> = schema("seal options", { actor: label });

/** A rule change's input, decoded: the version to store and the change's options. */
export interface RulePut<V> {
  /** The action, for messages (`'put calculation rule "R" for client "C" from 2025-01-01'`). */
  action: string;
  /** The version, normalised, without a revision. */
  version: Omit<V, "revision">;
  /** The options, checked. */
  options: RuleChangeOptions;
}

function decodeRulePut<R, V extends { effectiveFrom: string }>(
  what: string,
  recordSchema: Schema<R>,
  rule: unknown,
  options: unknown,
  toVersion: (record: R) => Omit<V, "revision">,
  subject: (version: Omit<V, "revision">) => string,
): RulePut<V> {
  const raw = (rule ?? {}) as { ruleId?: unknown; clientId?: unknown };
  const draft = `put ${what} ${quote(raw.ruleId)} for client ${quote(raw.clientId)}`;
  const version = toVersion(decodeInput(recordSchema, rule, draft));
  const action = `put ${subject(version)} from ${version.effectiveFrom}`;
  return { action, version, options: decodeInput(ruleChangeOptionsSchema, options, action) };
}

/**
 * Decodes the input of `putCalculationRule`.
 *
 * @param rule The version.
 * @param options The change's options.
 * @returns The decoded version and options, and the action for messages.
 * @throws {InvalidInputError} Listing every problem, when the rule or the options do not decode.
 */
export function decodeCalculationRulePut(rule: unknown, options: unknown): RulePut<CalculationRuleVersion> {
  return decodeRulePut<CalculationRuleRecord, CalculationRuleVersion>(
    "calculation rule",
    calculationRuleRecordSchema,
    rule,
    options,
    (record) => record,
    (v) => `calculation rule ${quote(v.ruleId)} for client ${quote(v.clientId)}`,
  );
}

/**
 * Decodes the input of `putValidationRule`: dates filled in (from the
 * earliest date, open-ended).
 *
 * @param rule The version.
 * @param options The change's options.
 * @returns The decoded version and options, and the action for messages.
 * @throws {InvalidInputError} Listing every problem, when the rule or the options do not decode.
 */
export function decodeValidationRulePut(rule: unknown, options: unknown): RulePut<ValidationRuleVersion> {
  return decodeRulePut<ValidationRuleRecord, ValidationRuleVersion>(
    "validation rule",
    validationRuleRecordSchema,
    rule,
    options,
    (record) => ({
      ...record,
      effectiveFrom: record.effectiveFrom ?? EARLIEST_EFFECTIVE_DATE,
      effectiveTo: record.effectiveTo ?? null,
    }),
    (v) => `validation rule ${quote(v.ruleId)} of field ${quote(v.field)} for client ${quote(v.clientId)}`,
  );
}

/** The input of a rule version removal, decoded: which version, and the change's options. */
export interface RuleRemoval {
  /** The action, for messages (`'remove calculation rule "R" for client "C" from 2025-01-01'`). */
  action: string;
  /** The owner: a client id or `"GLOBAL"`. */
  clientId: string;
  /** The item's subject: the rule id of a calculation rule, the field of a validation rule. */
  subject: string;
  /** The rule id. */
  ruleId: string;
  /** The first day of the version to remove, `YYYY-MM-DD`. */
  effectiveFrom: string;
  /** The options, checked. */
  options: RuleChangeOptions;
}

const calculationRemovalSchema = schema<{ clientId: string; ruleId: string; effectiveFrom: string }>(
  "calculation rule version",
  { clientId: id, ruleId: id, effectiveFrom: date },
);
const validationRemovalSchema = schema<{ clientId: string; field: string; ruleId: string; effectiveFrom: string }>(
  "validation rule version",
  { clientId: id, field: id, ruleId: id, effectiveFrom: date },
);

/**
 * Decodes the input of `removeCalculationRuleVersion`.
 *
 * @param clientId The owner.
 * @param ruleId The rule.
 * @param effectiveFrom The version's first day.
 * @param options The change's options.
 * @returns The version's identity and the options, and the action for messages.
 * @throws {InvalidInputError} Listing every problem, when an id, the date or the options do not decode.
 */
export function decodeCalculationRuleRemoval(
  clientId: unknown,
  ruleId: unknown,
  effectiveFrom: unknown,
  options: unknown,
): RuleRemoval {
  const draft = `remove calculation rule ${quote(ruleId)} for client ${quote(clientId)} from ${quote(effectiveFrom)}`;
  const key = decodeInput(calculationRemovalSchema, { clientId, ruleId, effectiveFrom }, draft);
  const action = `remove calculation rule ${quote(key.ruleId)} for client ${
    quote(key.clientId)
  } from ${key.effectiveFrom}`;
  return { action, ...key, subject: key.ruleId, options: decodeInput(ruleChangeOptionsSchema, options, action) };
}

/**
 * Decodes the input of `removeValidationRuleVersion`.
 *
 * @param clientId The owner.
 * @param field The field.
 * @param ruleId The rule id within the field.
 * @param effectiveFrom The version's first day.
 * @param options The change's options.
 * @returns The version's identity and the options, and the action for messages.
 * @throws {InvalidInputError} Listing every problem, when an id, the date or the options do not decode.
 */
export function decodeValidationRuleRemoval(
  clientId: unknown,
  field: unknown,
  ruleId: unknown,
  effectiveFrom: unknown,
  options: unknown,
): RuleRemoval {
  const what = (f: unknown, r: unknown, c: unknown) =>
    `remove validation rule ${quote(r)} of field ${quote(f)} for client ${quote(c)}`;
  const key = decodeInput(
    validationRemovalSchema,
    { clientId, field, ruleId, effectiveFrom },
    `${what(field, ruleId, clientId)} from ${quote(effectiveFrom)}`,
  );
  const action = `${what(key.field, key.ruleId, key.clientId)} from ${key.effectiveFrom}`;
  return {
    action,
    clientId: key.clientId,
    subject: key.field,
    ruleId: key.ruleId,
    effectiveFrom: key.effectiveFrom,
    options: decodeInput(ruleChangeOptionsSchema, options, action),
  };
}

/**
 * The day a read resolves for: `asOf`, checked, or today in UTC.
 *
 * @param options The read's options (`null` or `undefined`: none).
 * @param today Today in UTC, `YYYY-MM-DD`, asked only when `asOf` is absent.
 * @returns The day, `YYYY-MM-DD`.
 * @throws {InvalidInputError} When `asOf` is not a calendar date.
 *
 * @example Resolve for a pay date, or for today
 * ```ts
 * import { asOfDay } from "./schema.ts";
 *
 * console.assert(asOfDay({ asOf: "2025-06-13" }, () => "2026-01-01") === "2025-06-13");
 * console.assert(asOfDay(undefined, () => "2026-01-01") === "2026-01-01");
 * ```
 */
export function asOfDay(options: RuleReadOptions | null | undefined, today: () => string): string {
  const asOf = options?.asOf;
  return asOf === undefined ? today() : checkDate("as-of date", asOf);
}

/**
 * Checks a calendar date `YYYY-MM-DD` (an impossible day is refused, never
 * rolled over) and returns it.
 *
 * @param kind What the date is, for the message (`"as-of date"`).
 * @param value The candidate date.
 * @returns The date.
 * @throws {InvalidInputError} When it is not a calendar date.
 *
 * @example Check a pay date
 * ```ts
 * import { checkDate } from "./schema.ts";
 *
 * console.assert(checkDate("as-of date", "2024-02-29") === "2024-02-29");
 * ```
 */
export function checkDate(kind: string, value: unknown): string {
  const problems: Problem[] = [];
  date(value, "", problems);
  if (problems.length > 0) throw new InvalidInputError(`Invalid ${kind} ${quote(value)}: ${problems[0].message}`);
  return value as string;
}

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
  updateKeys: { optional: updateKeys },
});

/** A batch state's remembered idempotency keys: ids, at most MAX_UPDATE_KEYS. */
function updateKeys(value: unknown, path: string, problems: Problem[]): string[] {
  const keys = arrayOf(id)(value, path, problems);
  if (Array.isArray(keys) && keys.length > MAX_UPDATE_KEYS) {
    problems.push({ path, message: `it holds ${keys.length} keys, more than ${MAX_UPDATE_KEYS}` });
  }
  return keys;
}

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
  if (!decoded.ok) throw new InvalidInputError(`Failed to ${action}: ${decoded.problems.map(problemText).join("; ")}`);
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

/** A problem of a reference data set, with the record it is about. */
export interface RulesDataProblem extends Problem {
  /**
   * The record at fault: its collection, its index there, and `field`, where
   * in the record the problem is (`""`: the record itself, else a path such
   * as `retry.maxAttempts`). Absent when a whole collection is at fault.
   */
  entry?: { collection: keyof CompleteRulesData; index: number; field: string };
}

/** How problems name a record: `pipelineSteps[3]`. */
function recordName(collection: keyof CompleteRulesData, index: number): string {
  return `${collection}[${index}]`;
}

/**
 * Decodes a reference data set: every record, no two records with the same
 * key (a second record would silently replace the first; a rule version's
 * key includes its `effectiveFrom`), no two versions of one rule whose
 * ranges overlap and no range that ends before it starts (a date would have
 * two answers or none), and no item larger than DynamoDB holds (all versions
 * of a rule share one item).
 *
 * @param data The data set.
 * @param name How problems name a record, in paths and in messages that point at another record.
 * @default {`pipelineSteps[3]`}
 * @returns The normalised data set, or every problem found, each with the record it is about.
 *
 * @example Name the record a problem is about
 * ```ts
 * import { decodeRulesData } from "./schema.ts";
 *
 * const decoded = decodeRulesData({ irsLimits: [{ year: 2026, limits: { cap: 1 } }] as never });
 * console.assert(!decoded.ok && decoded.problems[0].path === "irsLimits[0].limits.cap");
 * console.assert(!decoded.ok && decoded.problems[0].entry?.field === "limits.cap");
 * ```
 */
export function decodeRulesData(
  data: RulesData,
  name: (collection: keyof CompleteRulesData, index: number) => string = recordName,
): Decoded<CompleteRulesData, RulesDataProblem> {
  const problems: RulesDataProblem[] = [];
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
    versionOf?: (record: T) => { rule: string; range: EffectiveRange },
  ): void => {
    if (records === undefined) return;
    if (!Array.isArray(records)) {
      problems.push({ path: collection, message: "it is not an array" });
      return;
    }
    const seen = new Map<string, number>();
    const itemBytes = new Map<string, number>();
    const versions = new Map<string, Array<{ range: EffectiveRange; index: number }>>();
    records.forEach((record, index) => {
      const report = (field: string, message: string) => {
        const path = field === "" ? name(collection, index) : fieldPath(name(collection, index), field);
        problems.push({ path, message, entry: { collection, index, field } });
      };
      // Decoded under "": each problem's path is its field within the record.
      const decoded = recordSchema.decode(record, "");
      if (!decoded.ok) {
        for (const problem of decoded.problems) report(problem.path, problem.message);
        return;
      }
      const key = keyOf(decoded.value);
      const first = seen.get(key);
      if (first !== undefined) report("", `it repeats the key of ${name(collection, first)}`);
      seen.set(key, index);
      if (versionOf !== undefined) {
        const { rule, range } = versionOf(decoded.value);
        const earlier = versions.get(rule) ?? [];
        const rangeProblem = rangeOrderProblem(range);
        if (rangeProblem !== undefined) report("effectiveTo", rangeProblem);
        const overlapped = earlier.find((other) => rangesOverlap(other.range, range));
        if (overlapped !== undefined && first === undefined) {
          report(
            "",
            `its range ${rangeText(range)} overlaps ${rangeText(overlapped.range)} of ${
              name(collection, overlapped.index)
            }`,
          );
        }
        versions.set(rule, [...earlier, { range, index }]);
      }
      const item = itemOf(decoded.value);
      const before = itemBytes.get(item) ?? 0;
      const bytes = before + utf8.encode(JSON.stringify(decoded.value)).length + 1;
      if (bytes > MAX_RECORD_JSON_BYTES && before <= MAX_RECORD_JSON_BYTES) {
        const shared = before === 0 ? "" : " with the records before it that share its item";
        report(
          "",
          `it is ${bytes} bytes of JSON${shared}, over the ${MAX_RECORD_JSON_BYTES} that fit in one DynamoDB item`,
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
    (r) =>
      `${keyText(itemKeys.validationRules(r.clientId, r.field))}\u0000${r.ruleId}\u0000${
        r.effectiveFrom ?? EARLIEST_EFFECTIVE_DATE
      }`,
    // Every version of every rule of one client and field is stored in one item.
    (r) => keyText(itemKeys.validationRules(r.clientId, r.field)),
    (r) => ({
      rule: `${keyText(itemKeys.validationRules(r.clientId, r.field))}\u0000${r.ruleId}`,
      range: { effectiveFrom: r.effectiveFrom ?? EARLIEST_EFFECTIVE_DATE, effectiveTo: r.effectiveTo ?? null },
    }),
  );
  collect(
    "calculationRules",
    data.calculationRules,
    calculationRuleRecordSchema,
    (r) => `${keyText(itemKeys.calculationRule(r.clientId, r.ruleId))}\u0000${r.effectiveFrom}`,
    // Every version of one client's rule is stored in one item.
    (r) => keyText(itemKeys.calculationRule(r.clientId, r.ruleId)),
    (r) => ({ rule: keyText(itemKeys.calculationRule(r.clientId, r.ruleId)), range: r }),
  );
  collect("irsLimits", data.irsLimits, irsLimitsSchema, (l) => keyText(itemKeys.irsLimits(l.year)));
  collect("agentConfigs", data.agentConfigs, agentConfigSchema, (c) => keyText(itemKeys.agentConfig(c.agent)));
  return problems.length === 0 ? { ok: true, value: out } : { ok: false, problems };
}
