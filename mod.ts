/**
 * BlueStar persistence: the data layer the BlueStar payroll agents stand on.
 *
 * Three protocols, each with an in-memory reference backend and a real one:
 *
 * - {@linkcode IRulesStore}: pipelines, validation and calculation rules
 *   (client override, else GLOBAL), IRS limits, batch state, processing
 *   results and the append-only audit trail.
 * - {@linkcode ICacheBackend}: a JSON cache with expiry.
 * - {@linkcode IFileStore}: payroll files by path.
 *
 * Money and rates are exact {@linkcode Decimal} strings, never floats. Every
 * failure is a {@linkcode BlueStarError} with a stable `code`.
 *
 * @example Resolve a calculation rule for a client
 * ```ts
 * import { MemoryRulesStore, RuleNotFoundError } from "@bluestar/persistence";
 *
 * const rules = new MemoryRulesStore({
 *   calculationRules: [{
 *     clientId: "GLOBAL",
 *     ruleId: "FICA_SOCIAL_SECURITY",
 *     ruleType: "percentage_up_to_wage_base",
 *     description: "Social Security, employee share",
 *     parameters: { rate: "0.062", wageBase: "184500" },
 *     effectiveFrom: "2026-01-01",
 *     effectiveTo: "2026-12-31",
 *   }],
 * });
 *
 * const rule = await rules.getCalculationRule("ACME", "FICA_SOCIAL_SECURITY");
 * console.assert(rule.scope === "GLOBAL" && rule.parameters.rate === "0.062");
 *
 * try {
 *   await rules.getCalculationRule("ACME", "NO_SUCH_RULE");
 * } catch (error) {
 *   console.assert(error instanceof RuleNotFoundError && error.code === "RULE_NOT_FOUND");
 * }
 * ```
 *
 * @module
 */

export type {
  CachedEntry,
  CacheEntry,
  CacheEntryDetails,
  FileSource,
  FileStat,
  ICacheBackend,
  IFileStore,
  IInvalidationBus,
  InvalidationListener,
  IRulesStore,
  StoredEntry,
} from "./src/core/protocols.ts";
export type {
  AgentConfig,
  AgentName,
  AuditEntry,
  BatchState,
  BatchStatus,
  CalculationRule,
  CalculationRuleChange,
  CalculationRuleInput,
  CalculationRuleRecord,
  CalculationRuleVersion,
  Decimal,
  IrsLimits,
  JsonObject,
  JsonValue,
  PipelineStep,
  ProcessingResult,
  RetryPolicy,
  RuleChange,
  RuleChangeBase,
  RuleChangeOptions,
  RuleReadOptions,
  RuleScope,
  RulesData,
  SaveBatchStateOptions,
  ValidationRule,
  ValidationRuleChange,
  ValidationRuleInput,
  ValidationRuleRecord,
  ValidationRuleType,
  ValidationRuleVersion,
  VersionChange,
} from "./src/core/types.ts";
export { AGENT_NAMES, BATCH_STATUSES, EARLIEST_EFFECTIVE_DATE, MAX_UPDATE_KEYS } from "./src/core/types.ts";
export type { FileWriteOptions } from "./src/core/types.ts";
export {
  AUDIT_ENTRY_ENCODING,
  AUDIT_SEAL_FORMAT,
  auditEntryDigest,
  type AuditSeal,
  type AuditSealDocument,
  auditTrailRoot,
  type AuditVerification,
  canonicalAuditEntry,
  DEFAULT_SEAL_RETENTION_DAYS,
  type SealAuditTrailOptions,
  type SealedEntry,
  storedAuditFields,
} from "./src/core/audit.ts";
export { auditSealPath } from "./src/core/keys.ts";
export type { AuditSealOptions } from "./src/persistence/audit_seals.ts";
export {
  calculationRuleHistory,
  explainCalculationRule,
  type PartitionHistory,
  type PartitionVersions,
  type RuleExplanation,
} from "./src/core/rules_explain.ts";
export {
  BlueStarError,
  type BlueStarErrorCode,
  type BlueStarErrorOptions,
  CacheError,
  ConfigError,
  ConflictError,
  CorruptItemError,
  FileNotFoundError,
  FileStoreError,
  IntegrityError,
  InvalidInputError,
  IrsLimitsNotFoundError,
  PipelineNotFoundError,
  RuleNotFoundError,
  RulesStoreError,
} from "./src/core/errors.ts";
export type { CacheTier, CallEnd, CallOutcome } from "./src/core/call_end.ts";
export {
  cacheKey,
  type CacheKind,
  GLOBAL_CLIENT_ID,
  MAX_ID_BYTES,
  MAX_PATH_BYTES,
  ruleVersionsCacheKey,
  stepId,
} from "./src/core/keys.ts";
export {
  canonicalDecimal,
  compareDecimals,
  decimalProblem,
  MAX_DECIMAL_DIGITS,
  MAX_DESCRIPTION_BYTES,
  MAX_ERROR_BYTES,
  MAX_JSON_DEPTH,
  MAX_LABEL_BYTES,
  MAX_PAYLOAD_BYTES,
} from "./src/core/values.ts";
export {
  MemoryCacheBackend,
  type MemoryCacheOptions,
  MemoryFileStore,
  type MemoryFileStoreOptions,
  MemoryRulesStore,
  type MemoryRulesStoreOptions,
} from "./src/persistence/memory_backend.ts";
export {
  type GlobalIndexDefinition,
  type TableDefinition,
  type TableName,
  tableName,
  TABLES,
} from "./src/persistence/tables.ts";
export {
  type FileStoreAction,
  type FileStoreEvent,
  type PresignedRequest,
  type PresignReadOptions,
  type PresignWriteOptions,
  S3FileStore,
  type S3FileStoreOptions,
} from "./src/persistence/s3_backend.ts";
export {
  type BatchStateUpdate,
  updateBatchState,
  type UpdateBatchStateOptions,
} from "./src/persistence/update_batch_state.ts";
export {
  type CacheEvent,
  RedisCacheBackend,
  type RedisCacheClient,
  type RedisCacheOptions,
  type RedisCommand,
} from "./src/persistence/redis_backend.ts";
export {
  type DynamoDBOperation,
  DynamoDBRulesStore,
  type DynamoDBRulesStoreOptions,
  type RulesStoreEvent,
  type RulesStoreMethod,
} from "./src/persistence/dynamodb_backend.ts";
export type { CacheOperation, ReadThroughEvent } from "./src/persistence/read_through.ts";
export {
  type BusEvent,
  DEFAULT_HEARTBEAT_MS,
  RedisInvalidationBus,
  type RedisInvalidationBusOptions,
} from "./src/persistence/invalidation_bus.ts";
export { type CompleteRulesData, loadSeedData, type LoadSeedDataOptions } from "./src/persistence/seed_data.ts";
export {
  createPersistence,
  type Persistence,
  type PersistenceEvent,
  type PersistenceOptions,
} from "./src/persistence/mod.ts";
export {
  type BackendKind,
  DEFAULT_CACHE_TTL_SECONDS,
  type PersistenceConfig,
  type PersistenceSettings,
  resolveConfig,
} from "./src/persistence/config.ts";
