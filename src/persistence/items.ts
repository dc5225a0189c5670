/**
 * The DynamoDB item codec: domain records to items and back, for every table.
 * The DynamoDB backend and the seed both use it, so what the seed writes is
 * exactly what the backend reads.
 *
 * Items are read with the document client's `wrapNumbers`, so every number
 * arrives as a `NumberValue` holding DynamoDB's exact decimal text: decimals
 * stay strings, integers are checked to be safe before they become numbers.
 * Free-form JSON (batch data, result output, audit details, agent settings)
 * is stored as one JSON string attribute, so it round-trips exactly.
 *
 * @module
 */

import { NumberValueImpl as NumberValue } from "@aws-sdk/util-dynamodb";
import { CorruptItemError, quote } from "../core/errors.ts";
import { type ItemKey, itemKeys } from "../core/keys.ts";
import {
  agentConfigSchema,
  auditEntrySchema,
  batchStateSchema,
  calculationRuleVersionSchema,
  irsLimitsSchema,
  pipelineStepSchema,
  type Problem,
  problemText,
  processingResultSchema,
  ruleChangeSchema,
  type Schema,
  validationRuleVersionSchema,
} from "../core/schema.ts";
import { compareVersions, rangesOverlap, rangeText } from "../core/rules_logic.ts";
import {
  type AgentConfig,
  type AuditEntry,
  type BatchState,
  type CalculationRuleRecord,
  type CalculationRuleVersion,
  EARLIEST_EFFECTIVE_DATE,
  type IrsLimits,
  type PipelineStep,
  type ProcessingResult,
  type RuleChange,
  type ValidationRuleRecord,
  type ValidationRuleVersion,
} from "../core/types.ts";
import type { TableName } from "./tables.ts";

/** A DynamoDB item as the document client sees it. */
export type Item = Record<string, unknown>;

/**
 * The attribute that holds the write token of the conditional write that
 * stored an item: a random id per call, the same on every SDK retry of it,
 * so a retry that loses its condition can tell its own earlier attempt from
 * another writer's identical item. It is no field of any record: decoding
 * drops it, and an item without it (written before tokens, or by the seed)
 * decodes as before.
 */
export const WRITE_ID_ATTRIBUTE = "writeId";

const SAFE_INTEGER = /^-?\d{1,16}$/;

/** A number attribute as a safe integer; anything else is left for the schema to reject. */
function int(value: unknown): unknown {
  if (!(value instanceof NumberValue)) return value;
  const number = Number(value.value);
  return SAFE_INTEGER.test(value.value) && Number.isSafeInteger(number) ? number : value.value;
}

/** A number attribute as its exact decimal text. */
function decimal(value: unknown): unknown {
  return value instanceof NumberValue ? value.value : value;
}

function decimals(value: unknown): unknown {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return value;
  return Object.fromEntries(Object.entries(value).map(([key, element]) => [key, decimal(element)]));
}

function jsonText(value: unknown): unknown {
  if (typeof value !== "string") return value;
  try {
    return JSON.parse(value);
  } catch {
    return value;
  }
}

function numberValue(value: string | undefined): NumberValue | undefined {
  return value === undefined ? undefined : NumberValue.from(value);
}

function numberValues(record: Record<string, string>): Record<string, NumberValue> {
  return Object.fromEntries(Object.entries(record).map(([key, value]) => [key, NumberValue.from(value)]));
}

/** Drops `undefined` fields, which DynamoDB cannot store and the schemas treat as absent. */
function defined(item: Item): Item {
  return Object.fromEntries(Object.entries(item).filter(([, value]) => value !== undefined));
}

/** How one table's records become items and back. */
export interface ItemCodec<T> {
  /** The table. */
  readonly table: TableName;
  /** The record's key. */
  key(record: T): ItemKey;
  /** The item for a record (already validated). */
  toItem(record: T): Item;
  /** The attributes of an item in the record's shape, before validation. */
  fromItem(item: Item): unknown;
  /** The record's schema. */
  readonly schema: Schema<T>;
}

/** Pipeline steps: `CLIENT#{planId}` / `STEP#0100`. */
export const pipelineStepCodec: ItemCodec<PipelineStep> = {
  table: "processing-pipeline",
  schema: pipelineStepSchema,
  key: (step) => itemKeys.pipelineStep(step.planId, step.step),
  toItem: (step) => ({ ...itemKeys.pipelineStep(step.planId, step.step), ...step }),
  fromItem: ({ PK: _, SK: __, ...step }) => {
    const retry = step.retry as Item | undefined;
    return {
      ...step,
      step: int(step.step),
      timeoutSeconds: int(step.timeoutSeconds),
      retry: typeof retry === "object" && retry !== null
        ? { ...retry, maxAttempts: int(retry.maxAttempts), backoffSeconds: int(retry.backoffSeconds) }
        : retry,
    };
  },
};

/**
 * All versions of all of one client's (or GLOBAL's) validation rules for one
 * field, in one item, so that the client's and GLOBAL's answers for a field
 * on any date come back in one `BatchGetItem`.
 */
export interface ValidationRuleGroup {
  /** The owner: a client id or `"GLOBAL"`. */
  clientId: string;
  /** The field. */
  field: string;
  /** The item's revision: one more per change, the condition of the next change (0: nothing stored). */
  revision: number;
  /** Every version of every rule of the field, by rule id, then `effectiveFrom`. */
  rules: ValidationRuleVersion[];
}

/**
 * All versions of one client's (or GLOBAL's) calculation rule, in one item:
 * one cached entry answers every date.
 */
export interface CalculationRuleHistory {
  /** The owner: a client id or `"GLOBAL"`. */
  clientId: string;
  /** The rule. */
  ruleId: string;
  /** The item's revision: one more per change, the condition of the next change (0: nothing stored). */
  revision: number;
  /** Every version, in `effectiveFrom` order. */
  versions: CalculationRuleVersion[];
}

/** Records grouped by the item that holds them, each as its first stored version (revision 1), in version order. */
function groupVersions<R, V extends ValidationRuleVersion | CalculationRuleVersion>(
  records: readonly R[],
  itemOf: (record: R) => ItemKey,
  versionOf: (record: R) => V,
): Array<{ key: ItemKey; versions: V[] }> {
  const groups = new Map<string, { key: ItemKey; versions: V[] }>();
  for (const record of records) {
    const key = itemOf(record);
    const id = `${key.PK}\u0000${key.SK}`;
    const group = groups.get(id) ?? { key, versions: [] };
    group.versions.push(versionOf(record));
    groups.set(id, group);
  }
  for (const group of groups.values()) group.versions.sort(compareVersions);
  return [...groups.values()];
}

/**
 * The first stored version of a validation rule record: its dates filled in
 * (from the earliest date, open-ended), revision 1.
 *
 * @param rule The record.
 * @returns The version.
 */
export function validationRuleVersion(rule: ValidationRuleRecord): ValidationRuleVersion {
  return {
    ...rule,
    effectiveFrom: rule.effectiveFrom ?? EARLIEST_EFFECTIVE_DATE,
    effectiveTo: rule.effectiveTo ?? null,
    revision: 1,
  };
}

/**
 * Groups validation rules by client and field: one item each, holding every
 * version, each at revision 1, the item at revision 1 (what the seed writes).
 *
 * @param rules The rules.
 * @returns One group per client and field, versions by rule id, then `effectiveFrom`.
 */
export function groupValidationRules(rules: readonly ValidationRuleRecord[]): ValidationRuleGroup[] {
  return groupVersions(rules, (r) => itemKeys.validationRules(r.clientId, r.field), validationRuleVersion).map((
    { versions },
  ) => ({ clientId: versions[0].clientId, field: versions[0].field, revision: 1, rules: versions }));
}

/**
 * Groups calculation rule versions by client and rule: one item each, each
 * version at revision 1, the item at revision 1 (what the seed writes).
 *
 * @param rules The versions.
 * @returns One history per client and rule, versions in `effectiveFrom` order.
 */
export function groupCalculationRules(rules: readonly CalculationRuleRecord[]): CalculationRuleHistory[] {
  return groupVersions(
    rules,
    (r) => itemKeys.calculationRule(r.clientId, r.ruleId),
    (r): CalculationRuleVersion => ({ ...r, revision: 1 }),
  ).map(({ versions }) => ({ clientId: versions[0].clientId, ruleId: versions[0].ruleId, revision: 1, versions }));
}

/**
 * The schema of an item holding versions: its owner and subject, a revision,
 * and a list of versions, each decoded and belonging to that owner and
 * subject, in version order without overlaps.
 */
function historySchema<H>(
  name: string,
  subject: "field" | "ruleId",
  list: "rules" | "versions",
  versionSchema: Schema<ValidationRuleVersion | CalculationRuleVersion>,
): Schema<H> {
  return {
    name,
    decode(value, path = name.replaceAll(" ", "_")) {
      const item = value as Item | null;
      if (typeof item !== "object" || item === null || !Array.isArray(item[list])) {
        return { ok: false, problems: [{ path: `${path}.${list}`, message: "it is not an array" }] };
      }
      const problems: Problem[] = [];
      // 0: nothing stored (an owner without versions, as a cache holds it).
      if (!Number.isSafeInteger(item.revision) || (item.revision as number) < 0) {
        problems.push({ path: `${path}.revision`, message: "it is not a non-negative integer" });
      }
      const decoded: Array<ValidationRuleVersion | CalculationRuleVersion> = [];
      (item[list] as unknown[]).forEach((element, index) => {
        const at = `${path}.${list}[${index}]`;
        const result = versionSchema.decode(element, at);
        if (!result.ok) return problems.push(...result.problems);
        const version = result.value;
        if (version.clientId !== item.clientId || (version as Item)[subject] !== item[subject]) {
          return problems.push({ path: at, message: `it belongs to another client or ${subject}` });
        }
        const previous = decoded.at(-1);
        if (previous !== undefined && compareVersions(previous, version) >= 0) {
          problems.push({ path: at, message: "it is not after the previous version" });
        } else if (previous?.ruleId === version.ruleId && rangesOverlap(previous, version)) {
          problems.push({ path: at, message: `it overlaps the previous version ${rangeText(previous)}` });
        }
        decoded.push(version);
      });
      return problems.length === 0 ? { ok: true, value: { ...item, [list]: decoded } as H } : { ok: false, problems };
    },
  };
}

/** Validation rules: `CLIENT#{clientId}` / `FIELD#{field}`, every version of every rule of the field in one item. */
export const validationRuleGroupCodec: ItemCodec<ValidationRuleGroup> = {
  table: "validation-rules",
  schema: historySchema("validation rule group", "field", "rules", validationRuleVersionSchema),
  key: (group) => itemKeys.validationRules(group.clientId, group.field),
  toItem: (group) => ({
    ...itemKeys.validationRules(group.clientId, group.field),
    clientId: group.clientId,
    field: group.field,
    revision: group.revision,
    rules: group.rules.map((rule) => defined({ ...rule, min: numberValue(rule.min), max: numberValue(rule.max) })),
  }),
  fromItem: ({ PK: _, SK: __, ...group }) => ({
    ...group,
    revision: int(group.revision),
    rules: Array.isArray(group.rules)
      ? group.rules.map((rule: Item) =>
        typeof rule === "object" && rule !== null
          ? defined({ ...rule, min: decimal(rule.min), max: decimal(rule.max), revision: int(rule.revision) })
          : rule
      )
      : group.rules,
  }),
};

/** Calculation rules: `CLIENT#{clientId}` / `RULE#{ruleId}`, every version in one item; parameters are DynamoDB numbers. */
export const calculationRuleHistoryCodec: ItemCodec<CalculationRuleHistory> = {
  table: "calculation-rules",
  schema: historySchema("calculation rule history", "ruleId", "versions", calculationRuleVersionSchema),
  key: (history) => itemKeys.calculationRule(history.clientId, history.ruleId),
  toItem: (history) => ({
    ...itemKeys.calculationRule(history.clientId, history.ruleId),
    clientId: history.clientId,
    ruleId: history.ruleId,
    revision: history.revision,
    versions: history.versions.map((version) => ({ ...version, parameters: numberValues(version.parameters) })),
  }),
  fromItem: ({ PK: _, SK: __, ...history }) => ({
    ...history,
    revision: int(history.revision),
    versions: Array.isArray(history.versions)
      ? history.versions.map((version: Item) =>
        typeof version === "object" && version !== null
          ? { ...version, parameters: decimals(version.parameters), revision: int(version.revision) }
          : version
      )
      : history.versions,
  }),
};

/**
 * Audited rule changes, in the audit-log table beside the batch trails:
 * `RULES#{clientId}` / `CHANGE#{at}#{changeId}`; the versions before and
 * after are JSON text, so their decimals round-trip exactly.
 */
export const ruleChangeCodec: ItemCodec<RuleChange> = {
  table: "audit-log",
  schema: ruleChangeSchema,
  key: (change) => itemKeys.ruleChange(change.clientId, change.at, change.changeId),
  toItem: (change) => ({
    ...itemKeys.ruleChange(change.clientId, change.at, change.changeId),
    ...change,
    before: JSON.stringify(change.before),
    after: JSON.stringify(change.after),
    closed: JSON.stringify(change.closed),
  }),
  fromItem: ({ PK: _, SK: __, ...change }) => ({
    ...change,
    before: jsonText(change.before),
    after: jsonText(change.after),
    closed: jsonText(change.closed),
  }),
};

/** IRS limits: `YEAR#{year}` / `LIMITS`; limits are DynamoDB numbers. */
export const irsLimitsCodec: ItemCodec<IrsLimits> = {
  table: "irs-limits",
  schema: irsLimitsSchema,
  key: (limits) => itemKeys.irsLimits(limits.year),
  toItem: (limits) => ({ ...itemKeys.irsLimits(limits.year), year: limits.year, limits: numberValues(limits.limits) }),
  fromItem: ({ PK: _, SK: __, ...limits }) => ({ ...limits, year: int(limits.year), limits: decimals(limits.limits) }),
};

/** Batch state: `BATCH#{batchId}` / `STATE`; `status` and `updatedAt` feed the status index. */
export const batchStateCodec: ItemCodec<BatchState> = {
  table: "batch-state",
  schema: batchStateSchema,
  key: (state) => itemKeys.batchState(state.batchId),
  toItem: (state) => ({ ...itemKeys.batchState(state.batchId), ...state, data: JSON.stringify(state.data) }),
  fromItem: ({ PK: _, SK: __, ...state }) => ({
    ...state,
    currentStep: int(state.currentStep),
    version: int(state.version),
    data: jsonText(state.data),
  }),
};

/** Processing results: `BATCH#{batchId}` / `STEP#{step}`; `expiresAt` is the table's TTL attribute. */
export const processingResultCodec: ItemCodec<ProcessingResult> = {
  table: "processing-results",
  schema: processingResultSchema,
  key: (result) => itemKeys.processingResult(result.batchId, result.step),
  toItem: (result) =>
    defined({
      ...itemKeys.processingResult(result.batchId, result.step),
      ...result,
      output: JSON.stringify(result.output),
    }),
  fromItem: ({ PK: _, SK: __, ...result }) =>
    defined({ ...result, output: jsonText(result.output), expiresAt: int(result.expiresAt) }),
};

/** Audit entries: `BATCH#{batchId}` / `ENTRY#{entryId}`. */
export const auditEntryCodec: ItemCodec<AuditEntry> = {
  table: "audit-log",
  schema: auditEntrySchema,
  key: (entry) => itemKeys.auditEntry(entry.batchId, entry.entryId),
  toItem: (entry) => ({
    ...itemKeys.auditEntry(entry.batchId, entry.entryId),
    ...entry,
    details: JSON.stringify(entry.details),
  }),
  fromItem: ({ PK: _, SK: __, ...entry }) => ({ ...entry, details: jsonText(entry.details) }),
};

/** Agent configuration: `AGENT#{agent}` / `CONFIG`. */
export const agentConfigCodec: ItemCodec<AgentConfig> = {
  table: "agent-config",
  schema: agentConfigSchema,
  key: (config) => itemKeys.agentConfig(config.agent),
  toItem: (config) => ({ ...itemKeys.agentConfig(config.agent), ...config, settings: JSON.stringify(config.settings) }),
  fromItem: ({ PK: _, SK: __, ...config }) => ({
    ...config,
    maxConcurrency: int(config.maxConcurrency),
    settings: jsonText(config.settings),
  }),
};

/**
 * Decodes an item into its record, or fails naming the table and key.
 *
 * @param codec The table's codec.
 * @param tableName The physical table name, for the message.
 * @param item The item, read with `wrapNumbers`.
 * @returns The record.
 * @throws {CorruptItemError} When the item does not decode; the message lists every problem.
 */
export function decodeItem<T>(codec: ItemCodec<T>, tableName: string, item: Item): T {
  const { [WRITE_ID_ATTRIBUTE]: _, ...attributes } = item;
  const decoded = codec.schema.decode(codec.fromItem(attributes), "item");
  if (decoded.ok) return decoded.value;
  throw new CorruptItemError(
    `Item ${quote(`${String(item.PK)} / ${String(item.SK)}`)} in table ${quote(tableName)} is corrupt: ${
      decoded.problems.map(problemText).join("; ")
    }`,
  );
}
