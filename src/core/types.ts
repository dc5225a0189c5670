/**
 * The domain types the protocols speak.
 *
 * Money, rates, thresholds and limits are {@linkcode Decimal} strings, never
 * JavaScript numbers: a `number` cannot hold `0.1` exactly, nor a 20-digit
 * amount at all. Counts, step numbers, years and seconds are plain integers.
 * Free-form payloads are {@linkcode JsonObject}s and round-trip exactly.
 *
 * @module
 */

/**
 * An exact decimal number in plain notation: an optional `-`, digits, and an
 * optional fraction (`"0.062"`, `"184500"`, `"-12.5"`). At most 38
 * significant digits, the precision DynamoDB keeps. Stores return it in
 * canonical form (no leading zeros, no trailing fractional zeros, no `-0`),
 * so `"184500.00"` comes back as `"184500"`: the same value.
 */
export type Decimal = string;

/** A JSON value that round-trips through every backend unchanged. */
export type JsonValue = null | boolean | number | string | JsonValue[] | JsonObject;

/** A JSON object. */
export interface JsonObject {
  /** Any field, holding JSON. */
  [key: string]: JsonValue;
}

/** The five payroll agents. */
export type AgentName = "intake" | "validation" | "calculation" | "compliance" | "disbursement";

/** Every agent name, in pipeline order. */
export const AGENT_NAMES: readonly AgentName[] = [
  "intake",
  "validation",
  "calculation",
  "compliance",
  "disbursement",
];

/** Where a client-scoped rule came from: the client's own partition or the GLOBAL fallback. */
export type RuleScope = "CLIENT" | "GLOBAL";

/** How often and how patiently a pipeline step is retried. */
export interface RetryPolicy {
  /** Attempts in all, the first included (1 = no retry). */
  maxAttempts: number;
  /** Seconds before the first retry; each later retry doubles it. */
  backoffSeconds: number;
}

/** One step of a processing plan. */
export interface PipelineStep {
  /** The plan the step belongs to, e.g. `"DEFAULT_BiWeeklyFri"`. */
  planId: string;
  /** The step number, 1 to 9999; plans number in hundreds (100, 200, ...). */
  step: number;
  /** A human name, e.g. `"Gross pay"`. */
  name: string;
  /** The agent that runs the step. */
  agent: AgentName;
  /** What the agent does, e.g. `"compute_gross_pay"`. */
  action: string;
  /** Whether the batch fails when the step fails. */
  required: boolean;
  /** How long the step may run. */
  timeoutSeconds: number;
  /** How the step is retried. */
  retry: RetryPolicy;
  /** Ids of the calculation rules the step uses (resolved per client). */
  calculationRules: string[];
}

/** The kinds of field validation. */
export type ValidationRuleType = "required" | "pattern" | "range" | "length" | "enum" | "date";

/** One validation rule for one field of a payroll input file. */
export interface ValidationRule {
  /** The rule's id, unique within its client and field. */
  ruleId: string;
  /** The field the rule checks, e.g. `"ssn"`. */
  field: string;
  /** What kind of check it is. */
  ruleType: ValidationRuleType;
  /** For `pattern`: an ECMAScript regular expression the whole value must match. */
  pattern?: string;
  /** For `range` (value) and `length` (characters): the inclusive lower bound. */
  min?: Decimal;
  /** For `range` (value) and `length` (characters): the inclusive upper bound. */
  max?: Decimal;
  /** For `enum`: the accepted values. */
  allowedValues?: string[];
  /** Whether a failure rejects the record or only warns. */
  severity: "error" | "warning";
  /** The message shown when the check fails. */
  message: string;
  /** The first day the rule applies, `YYYY-MM-DD`. */
  effectiveFrom: string;
  /** The last day the rule applies, `YYYY-MM-DD`, or `null` when open-ended. */
  effectiveTo: string | null;
  /** The revision of the version that answered: 1 when it was added, one more per change to it. */
  revision: number;
  /** The partition the rule came from: the client's id, or `"GLOBAL"`. */
  clientId: string;
  /** Whether the client's own rules or the GLOBAL fallback answered. */
  scope: RuleScope;
}

/** One pay calculation rule (a tax, a cap, an overtime multiplier). */
export interface CalculationRule {
  /** The rule's id, e.g. `"FICA_SOCIAL_SECURITY"`. */
  ruleId: string;
  /** What kind of computation it is, e.g. `"percentage_up_to_wage_base"`. */
  ruleType: string;
  /** A human description. */
  description: string;
  /** The rule's exact numeric parameters: rates, thresholds, amounts, multipliers. */
  parameters: Record<string, Decimal>;
  /** The first day the rule applies, `YYYY-MM-DD`. */
  effectiveFrom: string;
  /** The last day the rule applies, `YYYY-MM-DD`, or `null` when open-ended. */
  effectiveTo: string | null;
  /** The revision of the version that answered: 1 when it was added, one more per change to it. */
  revision: number;
  /** The partition the rule came from: the client's id, or `"GLOBAL"`. */
  clientId: string;
  /** Whether the client's own rule or the GLOBAL fallback answered. */
  scope: RuleScope;
}

/** The first day a version without an `effectiveFrom` applies: the earliest date a rule can carry. */
export const EARLIEST_EFFECTIVE_DATE = "0001-01-01";

/**
 * One version of a validation rule as the seed files and `putValidationRule`
 * take it: no `scope` (derived from `clientId` when read) and no `revision`
 * (the store counts). Without `effectiveFrom` the version applies from
 * {@linkcode EARLIEST_EFFECTIVE_DATE}; without `effectiveTo` it is open-ended.
 */
export type ValidationRuleRecord = Omit<ValidationRule, "scope" | "revision" | "effectiveFrom" | "effectiveTo"> & {
  /**
   * The first day the rule applies, `YYYY-MM-DD`.
   *
   * @default {"0001-01-01"}
   */
  effectiveFrom?: string;
  /**
   * The last day the rule applies, `YYYY-MM-DD`, or `null` when open-ended.
   *
   * @default {null}
   */
  effectiveTo?: string | null;
};

/**
 * One version of a calculation rule as the seed files and
 * `putCalculationRule` take it: no `scope` (derived from `clientId` when
 * read) and no `revision` (the store counts).
 */
export type CalculationRuleRecord = Omit<CalculationRule, "scope" | "revision">;

/** One stored version of a calculation rule: what a read returns, less the derived `scope`. */
export type CalculationRuleVersion = Omit<CalculationRule, "scope">;

/** One stored version of a validation rule: what a read returns, less the derived `scope`. */
export type ValidationRuleVersion = Omit<ValidationRule, "scope">;

/** What `putCalculationRule` takes: one version of a calculation rule. */
export type CalculationRuleInput = CalculationRuleRecord;

/** What `putValidationRule` takes: one version of one validation rule. */
export type ValidationRuleInput = ValidationRuleRecord;

/** Options of the reads that resolve a rule as of a date. */
export interface RuleReadOptions {
  /**
   * The day to resolve for (the pay date), a calendar date `YYYY-MM-DD`.
   *
   * @default {today in UTC, from the store's clock}
   */
  asOf?: string;
}

/** Options of an audited rule change (`putCalculationRule`, `putValidationRule`, `removeCalculationRuleVersion`, `removeValidationRuleVersion`). */
export interface RuleChangeOptions {
  /** Who makes the change: a user or a service account (at most 4 KiB of UTF-8, as an audit entry's `actor`). */
  actor: string;
  /** Why: the ticket, the law, the contract (at most 16 KiB of UTF-8, as a rule's `description`). */
  reason: string;
  /**
   * For a correction (a version with the same `effectiveFrom` is stored):
   * the stored version's `revision`, required. For a new version: omitted,
   * or `0` to insist that none with that `effectiveFrom` is stored. For a
   * removal: the stored version's `revision`, required.
   *
   * @default {undefined}
   */
  expectedRevision?: number;
}

/** A version before and after a change. */
export interface VersionChange<T> {
  /** The version as it was, or `null` when the change added it. */
  before: T | null;
  /** The version as it is after the change, or `null` when the change removed it. */
  after: T | null;
}

/** What an audited rule change record holds in common. */
export interface RuleChangeBase {
  /** The change's id, unique. */
  changeId: string;
  /** When the change was made, ISO 8601 UTC; changes list in this order (then by id). */
  at: string;
  /** Who made it. */
  actor: string;
  /** Why. */
  reason: string;
  /** The owner whose rule changed: a client id or `"GLOBAL"`. */
  clientId: string;
  /** The rule changed. */
  ruleId: string;
}

/** An audited change of a calculation rule. */
export interface CalculationRuleChange extends RuleChangeBase, VersionChange<CalculationRule> {
  /** A calculation rule changed. */
  kind: "calculation";
  /** The open-ended earlier version the change closed on the day before its `effectiveFrom`, or `null`. */
  closed: (VersionChange<CalculationRule> & { after: CalculationRule }) | null;
}

/** An audited change of a validation rule. */
export interface ValidationRuleChange extends RuleChangeBase, VersionChange<ValidationRule> {
  /** A validation rule changed. */
  kind: "validation";
  /** The field of the rule. */
  field: string;
  /** The open-ended earlier version the change closed on the day before its `effectiveFrom`, or `null`. */
  closed: (VersionChange<ValidationRule> & { after: ValidationRule }) | null;
}

/** One audited rule change: who, why, when, and the version before and after. */
export type RuleChange = CalculationRuleChange | ValidationRuleChange;

/** The IRS and SSA limits of one calendar year. */
export interface IrsLimits {
  /** The calendar year. */
  year: number;
  /** Each limit by name (e.g. `electiveDeferral`, `socialSecurityWageBase`), in US dollars. */
  limits: Record<string, Decimal>;
}

/** Where a batch is in its life. */
export type BatchStatus =
  | "received"
  | "running"
  | "awaiting_approval"
  | "completed"
  | "failed"
  | "cancelled";

/** Every batch status. */
export const BATCH_STATUSES: readonly BatchStatus[] = [
  "received",
  "running",
  "awaiting_approval",
  "completed",
  "failed",
  "cancelled",
];

/** The state of one payroll batch, shared by the agents that work on it. */
export interface BatchState {
  /** The batch's id. */
  batchId: string;
  /** The client the batch pays. */
  clientId: string;
  /** The plan the batch runs. */
  planId: string;
  /** Where the batch is. */
  status: BatchStatus;
  /** The step running or last run, or `null` before the first. */
  currentStep: number | null;
  /**
   * The version of this state, a positive integer. A write with an expected
   * version must carry a greater one (see {@linkcode SaveBatchStateOptions}).
   */
  version: number;
  /** When the state was written, ISO 8601. */
  updatedAt: string;
  /** Agent-specific state. */
  data: JsonObject;
  /**
   * The idempotency keys of the last {@linkcode MAX_UPDATE_KEYS} writes that
   * carried one, oldest first: how a retried update is recognised (see
   * {@linkcode SaveBatchStateOptions.idempotencyKey}). Keep it when you
   * build the next state from a read one (`updateBatchState` does).
   */
  updateKeys?: string[];
}

/** How many idempotency keys a batch state remembers. */
export const MAX_UPDATE_KEYS = 64;

/** Options of `saveBatchState`. */
export interface SaveBatchStateOptions {
  /**
   * Optimistic concurrency: the write lands only when the stored state has
   * this version (`0`: only when no state is stored yet); otherwise it is a
   * `ConflictError` and changes nothing. The new state's `version` must be
   * greater. Omitted: the write replaces whatever is stored.
   *
   * @default {undefined}
   */
  expectedVersion?: number;
  /**
   * Exactly once: the key of this logical update (an id, at most 256 bytes).
   * When the stored state already remembers the key in its `updateKeys`,
   * the update landed before (its answer was lost, or another writer built
   * on it) and this write changes nothing and succeeds. Otherwise the state
   * is written with the key appended to its `updateKeys` (the last
   * {@linkcode MAX_UPDATE_KEYS} kept). Omitted: no check, and `updateKeys`
   * is stored as given.
   *
   * @default {undefined}
   */
  idempotencyKey?: string;
}

/** Options of `IFileStore.write`. */
export interface FileWriteOptions {
  /**
   * Retention: the file is created only where none is (else a
   * `ConflictError`), and nobody can replace or delete it before this time.
   * `S3FileStore` enforces it with Object Lock in compliance mode where the
   * bucket has Object Lock enabled (elsewhere S3 keeps no retention, and
   * only the create-only write holds).
   *
   * @default {undefined (no retention)}
   */
  retainUntil?: Date;
}

/** The outcome of one step of one batch. */
export interface ProcessingResult {
  /** The batch. */
  batchId: string;
  /** The step's id: its zero-padded number (`"0100"`), so text order is step order. */
  step: string;
  /** How the step ended. */
  status: "succeeded" | "failed" | "skipped";
  /** What the step produced. */
  output: JsonObject;
  /** Why the step failed, or `null`. */
  error: string | null;
  /** When the step started, ISO 8601. */
  startedAt: string;
  /** When the step ended, ISO 8601. */
  completedAt: string;
  /**
   * Retention: epoch seconds after which DynamoDB's TTL may delete the
   * result (within days, not at once). Stores never hide it before then.
   */
  expiresAt?: number;
}

/** One entry of the compliance audit trail. Entries are never changed or removed. */
export interface AuditEntry {
  /** The entry's id, unique within its batch. */
  entryId: string;
  /** The batch the entry is about. */
  batchId: string;
  /** When it happened, ISO 8601; entries list in this order (then by id). */
  timestamp: string;
  /** The agent that acted. */
  agent: AgentName;
  /** What was done, e.g. `"rule_resolved"`. */
  action: string;
  /** Who or what acted: a service account, a user. */
  actor: string;
  /** What the auditor needs to know. */
  details: JsonObject;
}

/** The runtime configuration of one agent. */
export interface AgentConfig {
  /** The agent. */
  agent: AgentName;
  /** Whether the agent takes work. */
  enabled: boolean;
  /** How many batches the agent works on at once. */
  maxConcurrency: number;
  /** Agent-specific settings. */
  settings: JsonObject;
}

/** The reference data a rules store serves: what the seed loads. */
export interface RulesData {
  /** Pipeline steps of every plan. */
  pipelineSteps?: readonly PipelineStep[];
  /** Validation rules, GLOBAL's (`clientId: "GLOBAL"`) and clients' own. */
  validationRules?: readonly ValidationRuleRecord[];
  /** Calculation rules, GLOBAL's and clients' own. */
  calculationRules?: readonly CalculationRuleRecord[];
  /** IRS limits by year. */
  irsLimits?: readonly IrsLimits[];
  /** Agent configurations. */
  agentConfigs?: readonly AgentConfig[];
}
