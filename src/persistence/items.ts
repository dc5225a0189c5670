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
import { compareText } from "../core/rules_logic.ts";
import {
  agentConfigSchema,
  auditEntrySchema,
  batchStateSchema,
  calculationRuleRecordSchema,
  irsLimitsSchema,
  pipelineStepSchema,
  type Problem,
  problemText,
  processingResultSchema,
  type Schema,
  validationRuleRecordSchema,
} from "../core/schema.ts";
import type {
  AgentConfig,
  AuditEntry,
  BatchState,
  CalculationRuleRecord,
  IrsLimits,
  PipelineStep,
  ProcessingResult,
  ValidationRuleRecord,
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

/** All of one client's (or GLOBAL's) validation rules for one field, in one item. */
export interface ValidationRuleGroup {
  /** The owner: a client id or `"GLOBAL"`. */
  clientId: string;
  /** The field. */
  field: string;
  /** The rules. */
  rules: ValidationRuleRecord[];
}

/**
 * Groups validation rules by client and field: one item each, so the client
 * and GLOBAL answers for a field come back in one `BatchGetItem`.
 *
 * @param rules The rules.
 * @returns One group per client and field, rules sorted by id.
 */
export function groupValidationRules(rules: readonly ValidationRuleRecord[]): ValidationRuleGroup[] {
  const groups = new Map<string, ValidationRuleGroup>();
  for (const rule of rules) {
    const { PK, SK } = itemKeys.validationRules(rule.clientId, rule.field);
    const id = `${PK}\u0000${SK}`;
    const group = groups.get(id) ?? { clientId: rule.clientId, field: rule.field, rules: [] };
    group.rules.push(rule);
    groups.set(id, group);
  }
  for (const group of groups.values()) {
    group.rules.sort((a, b) => compareText(a.ruleId, b.ruleId));
  }
  return [...groups.values()];
}

const ruleGroupSchema: Schema<ValidationRuleGroup> = {
  name: "validation rule group",
  decode(value, path = "validation_rule_group") {
    if (typeof value !== "object" || value === null || !Array.isArray((value as Item).rules)) {
      return { ok: false, problems: [{ path: `${path}.rules`, message: "it is not an array" }] };
    }
    const { clientId, field, rules } = value as { clientId: unknown; field: unknown; rules: unknown[] };
    const problems: Problem[] = [];
    const decoded: ValidationRuleRecord[] = [];
    rules.forEach((rule, index) => {
      const result = validationRuleRecordSchema.decode(rule, `${path}.rules[${index}]`);
      if (!result.ok) problems.push(...result.problems);
      else if (result.value.clientId !== clientId || result.value.field !== field) {
        problems.push({ path: `${path}.rules[${index}]`, message: "it belongs to another client or field" });
      } else decoded.push(result.value);
    });
    return problems.length === 0
      ? { ok: true, value: { clientId: clientId as string, field: field as string, rules: decoded } }
      : { ok: false, problems };
  },
};

/** Validation rules: `CLIENT#{clientId}` / `FIELD#{field}`, all rules of the field in one item. */
export const validationRuleGroupCodec: ItemCodec<ValidationRuleGroup> = {
  table: "validation-rules",
  schema: ruleGroupSchema,
  key: (group) => itemKeys.validationRules(group.clientId, group.field),
  toItem: (group) => ({
    ...itemKeys.validationRules(group.clientId, group.field),
    clientId: group.clientId,
    field: group.field,
    rules: group.rules.map((rule) => defined({ ...rule, min: numberValue(rule.min), max: numberValue(rule.max) })),
  }),
  fromItem: ({ PK: _, SK: __, ...group }) => ({
    ...group,
    rules: Array.isArray(group.rules)
      ? group.rules.map((rule: Item) =>
        typeof rule === "object" && rule !== null
          ? defined({ ...rule, min: decimal(rule.min), max: decimal(rule.max) })
          : rule
      )
      : group.rules,
  }),
};

/** Calculation rules: `CLIENT#{clientId}` / `RULE#{ruleId}`; parameters are DynamoDB numbers. */
export const calculationRuleCodec: ItemCodec<CalculationRuleRecord> = {
  table: "calculation-rules",
  schema: calculationRuleRecordSchema,
  key: (rule) => itemKeys.calculationRule(rule.clientId, rule.ruleId),
  toItem: (rule) => ({
    ...itemKeys.calculationRule(rule.clientId, rule.ruleId),
    ...rule,
    parameters: numberValues(rule.parameters),
  }),
  fromItem: ({ PK: _, SK: __, ...rule }) => ({ ...rule, parameters: decimals(rule.parameters) }),
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
