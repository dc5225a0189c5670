/**
 * The in-memory reference backends. They implement the whole contract and
 * are what every real backend is tested against; use them in tests, demos
 * and the seed's plan mode. Everything handed in or returned is a copy.
 *
 * @module
 */

import {
  ConfigError,
  ConflictError,
  FileNotFoundError,
  FileStoreError,
  InvalidInputError,
  IrsLimitsNotFoundError,
  PipelineNotFoundError,
  quote,
} from "../core/errors.ts";
import {
  checkCacheKey,
  checkPath,
  checkPrefix,
  comparePaths,
  GLOBAL_CLIENT_ID,
  type ItemKey,
  itemKeys,
  MAX_PAGE_SIZE,
  pageSizeProblem,
} from "../core/keys.ts";
import type {
  CachedEntry,
  CacheEntry,
  CacheEntryDetails,
  FileSource,
  FileStat,
  ICacheBackend,
  IFileStore,
  IRulesStore,
  StoredEntry,
} from "../core/protocols.ts";
import { integrityError, pullStream, sha256Hex, sourceChunks, SourceFailure, verifiedChunks } from "../core/streams.ts";
import {
  asOfDay,
  auditEntrySchema,
  batchStateSchema,
  type CompleteRulesData,
  decodeCalculationRulePut,
  decodeCalculationRuleRemoval,
  decodeInput,
  decodeRulesData,
  decodeValidationRulePut,
  decodeValidationRuleRemoval,
  problemText,
  processingResultSchema,
  type RulePut,
  type RuleRemoval,
  sealAuditTrailOptionsSchema,
} from "../core/schema.ts";
import type {
  AgentConfig,
  AuditEntry,
  BatchState,
  BatchStatus,
  CalculationRule,
  CalculationRuleInput,
  CalculationRuleVersion,
  FileWriteOptions,
  IrsLimits,
  PipelineStep,
  ProcessingResult,
  RuleChange,
  RuleChangeOptions,
  RuleReadOptions,
  RulesData,
  SaveBatchStateOptions,
  ValidationRule,
  ValidationRuleInput,
  ValidationRuleVersion,
} from "../core/types.ts";
import {
  cacheVersionText,
  checkCacheTimeoutMs,
  checkRetainUntil,
  copyBytes,
  deepFreeze,
  encodeCacheWrite,
  objectLockProblem,
  type ObjectLockState,
  toBytes,
} from "../core/values.ts";
import {
  calculationRuleAsOf,
  changeClock,
  checkBatchStatus,
  checkExpectedVersion,
  checkIdempotencyKey,
  compareAuditEntries,
  compareBatchesByRecency,
  compareRuleChanges,
  compareText,
  planVersionChange,
  planVersionRemoval,
  ruleChangeOf,
  ruleNotFound,
  scoped,
  todayUtc,
  validationRulesAsOf,
  type VersionPlan,
  withUpdateKey,
} from "../core/rules_logic.ts";
import {
  auditEntryDigest,
  type AuditSeal,
  type AuditVerification,
  compareWithSeals,
  DEFAULT_SEAL_RETENTION_DAYS,
  type SealAuditTrailOptions,
  sealDocument,
  sealOf,
  storedAuditFields,
  unfinishedSeal,
} from "../core/audit.ts";
import { type AuditSealOptions, readSealCopy, sealOptionProblems, writeSealCopy } from "./audit_seals.ts";
import { groupCalculationRules, groupValidationRules } from "./items.ts";
import { hookProblems, optionProblemsText } from "./options.ts";

/** Items by partition key, then sort key: the shape of a DynamoDB table. */
class Table<T> {
  readonly #partitions = new Map<string, Map<string, T>>();

  get({ PK, SK }: ItemKey): T | undefined {
    return this.#partitions.get(PK)?.get(SK);
  }

  put({ PK, SK }: ItemKey, value: T): void {
    let partition = this.#partitions.get(PK);
    if (partition === undefined) this.#partitions.set(PK, partition = new Map());
    partition.set(SK, value);
  }

  /** The partition's items in sort-key order. */
  query(PK: string): T[] {
    const partition = this.#partitions.get(PK);
    if (partition === undefined) return [];
    return [...partition.entries()].sort(([a], [b]) => compareText(a, b)).map(([, value]) => value);
  }

  values(): T[] {
    return [...this.#partitions.values()].flatMap((partition) => [...partition.values()]);
  }
}

/** Options of {@linkcode MemoryRulesStore}: the clock, where seal copies go, and how long they are retained. */
export interface MemoryRulesStoreOptions extends AuditSealOptions {
  /**
   * The clock, in epoch milliseconds: "today" for reads without `asOf`, and
   * the time of rule changes. Inject one so tests do not depend on the day.
   *
   * @default {Date.now}
   */
  now?: () => number;
}

/**
 * The reference {@linkcode IRulesStore}, in memory. Every version of a rule
 * is kept; reads resolve as of a date, and changes are recorded with their
 * audit record in one step (a failed change leaves neither).
 *
 * Rule reads (`getPipeline`, `getValidationRules`, `getCalculationRule`,
 * `getIrsLimits`, `getAgentConfig`) return deeply frozen values, as the
 * DynamoDB store does: changing one throws in strict mode and never changes
 * the store. Batch state, processing results and audit entries are fresh
 * copies the caller may change.
 *
 * @example Resolve a rule through the GLOBAL fallback
 * ```ts
 * import { MemoryRulesStore } from "@bluestar/persistence";
 *
 * const store = new MemoryRulesStore({
 *   calculationRules: [{
 *     clientId: "GLOBAL",
 *     ruleId: "FICA_MEDICARE",
 *     ruleType: "percentage",
 *     description: "Medicare, employee share",
 *     parameters: { rate: "0.0145" },
 *     effectiveFrom: "2024-01-01",
 *     effectiveTo: null,
 *   }],
 * });
 * const rule = await store.getCalculationRule("ACME", "FICA_MEDICARE", { asOf: "2025-06-13" });
 * console.assert(rule.scope === "GLOBAL" && rule.parameters.rate === "0.0145");
 * ```
 */
export class MemoryRulesStore implements IRulesStore {
  readonly #pipeline = new Table<PipelineStep>();
  readonly #validationRules = new Table<ValidationRuleVersion[]>();
  readonly #calculationRules = new Table<CalculationRuleVersion[]>();
  readonly #ruleChanges = new Table<RuleChange>();
  readonly #irsLimits = new Table<IrsLimits>();
  readonly #batchStates = new Table<BatchState>();
  readonly #results = new Table<ProcessingResult>();
  readonly #audit = new Table<AuditEntry>();
  readonly #agentConfigs = new Table<AgentConfig>();
  /** Each batch's seal, or `"sealing"` from the moment sealing starts: what refuses appends. */
  readonly #seals = new Map<string, AuditSeal | "sealing">();
  readonly #sealFiles: IFileStore | undefined;
  readonly #sealRetentionDays: number;
  readonly #now: () => number;
  readonly #changeTime: () => string;

  /**
   * Creates a store serving a copy of the data.
   *
   * @param data The reference data to serve, checked like the seed files.
   * @param options The clock, and seal copies: the file store and the retention.
   * @throws {InvalidInputError} Listing every problem, when the data does not decode.
   * @throws {ConfigError} Listing every problem, when an option is malformed.
   */
  constructor(data: RulesData = {}, options: MemoryRulesStoreOptions = {}) {
    const problems = [...hookProblems("now", options?.now), ...sealOptionProblems(options ?? {})];
    if (problems.length > 0) {
      throw new ConfigError(`Invalid memory rules store options: ${optionProblemsText(problems)}`);
    }
    this.#sealFiles = options?.sealFiles;
    this.#sealRetentionDays = options?.sealRetentionDays ?? DEFAULT_SEAL_RETENTION_DAYS;
    const now = options?.now ?? Date.now;
    this.#now = now;
    this.#changeTime = changeClock(now);
    const decoded = decodeRulesData(data);
    if (!decoded.ok) {
      throw new InvalidInputError(`Failed to load rules data: ${decoded.problems.map(problemText).join("; ")}`);
    }
    this.#load(decoded.value);
  }

  #load(data: CompleteRulesData): void {
    for (const step of data.pipelineSteps) this.#pipeline.put(itemKeys.pipelineStep(step.planId, step.step), step);
    for (const group of groupValidationRules(data.validationRules)) {
      this.#validationRules.put(itemKeys.validationRules(group.clientId, group.field), group.rules);
    }
    for (const history of groupCalculationRules(data.calculationRules)) {
      this.#calculationRules.put(itemKeys.calculationRule(history.clientId, history.ruleId), history.versions);
    }
    for (const limits of data.irsLimits) this.#irsLimits.put(itemKeys.irsLimits(limits.year), limits);
    for (const config of data.agentConfigs) this.#agentConfigs.put(itemKeys.agentConfig(config.agent), config);
  }

  getPipeline(planId: string): Promise<PipelineStep[]> {
    return settle(() => {
      const steps = this.#pipeline.query(itemKeys.pipelinePartition(planId));
      if (steps.length === 0) throw new PipelineNotFoundError(`Pipeline ${quote(planId)} not found`);
      return deepFreeze(structuredClone(steps));
    });
  }

  getValidationRules(clientId: string, field: string, options?: RuleReadOptions): Promise<ValidationRule[]> {
    return settle(() => {
      const own = this.#validationRules.get(itemKeys.validationRules(clientId, field)) ?? [];
      const global = this.#validationRules.get(itemKeys.validationRules(GLOBAL_CLIENT_ID, field)) ?? [];
      return deepFreeze(validationRulesAsOf(own, global, asOfDay(options, () => todayUtc(this.#now))));
    });
  }

  getCalculationRule(clientId: string, ruleId: string, options?: RuleReadOptions): Promise<CalculationRule> {
    return settle(() => {
      const own = this.#calculationRules.get(itemKeys.calculationRule(clientId, ruleId)) ?? [];
      const global = this.#calculationRules.get(itemKeys.calculationRule(GLOBAL_CLIENT_ID, ruleId)) ?? [];
      const day = asOfDay(options, () => todayUtc(this.#now));
      const rule = calculationRuleAsOf(own, global, day);
      if (rule === undefined) throw ruleNotFound(clientId, ruleId, day);
      return deepFreeze(rule);
    });
  }

  putCalculationRule(rule: CalculationRuleInput, options: RuleChangeOptions): Promise<CalculationRule> {
    return settle(() => {
      const put = decodeCalculationRulePut(rule, options);
      return this.#put(this.#calculationRules, itemKeys.calculationRule(put.version.clientId, put.version.ruleId), put);
    });
  }

  putValidationRule(rule: ValidationRuleInput, options: RuleChangeOptions): Promise<ValidationRule> {
    return settle(() => {
      const put = decodeValidationRulePut(rule, options);
      return this.#put(this.#validationRules, itemKeys.validationRules(put.version.clientId, put.version.field), put);
    });
  }

  /** Plans a change against the stored versions, records its audit record, then stores the versions. */
  #put<V extends CalculationRuleVersion | ValidationRuleVersion>(
    table: Table<V[]>,
    key: ItemKey,
    { action, version, options }: RulePut<V>,
  ): V & { scope: CalculationRule["scope"] } {
    const plan = planVersionChange(action, table.get(key) ?? [], version, options.expectedRevision);
    this.#apply(table, key, plan, options);
    return scoped(plan.change.after!);
  }

  removeCalculationRuleVersion(
    clientId: string,
    ruleId: string,
    effectiveFrom: string,
    options: RuleChangeOptions,
  ): Promise<CalculationRule> {
    return settle(() => {
      const removal = decodeCalculationRuleRemoval(clientId, ruleId, effectiveFrom, options);
      return this.#remove(this.#calculationRules, itemKeys.calculationRule(removal.clientId, removal.subject), removal);
    });
  }

  removeValidationRuleVersion(
    clientId: string,
    field: string,
    ruleId: string,
    effectiveFrom: string,
    options: RuleChangeOptions,
  ): Promise<ValidationRule> {
    return settle(() => {
      const removal = decodeValidationRuleRemoval(clientId, field, ruleId, effectiveFrom, options);
      return this.#remove(this.#validationRules, itemKeys.validationRules(removal.clientId, removal.subject), removal);
    });
  }

  /** Plans a removal against the stored versions and applies it as {@linkcode MemoryRulesStore.#put} does. */
  #remove<V extends CalculationRuleVersion | ValidationRuleVersion>(
    table: Table<V[]>,
    key: ItemKey,
    { action, ruleId, effectiveFrom, options }: RuleRemoval,
  ): V & { scope: CalculationRule["scope"] } {
    const plan = planVersionRemoval(action, table.get(key) ?? [], ruleId, effectiveFrom, options.expectedRevision);
    this.#apply(table, key, plan, options);
    return scoped(plan.change.before!);
  }

  /** Records a planned change's audit record, then stores its versions. */
  #apply<V extends CalculationRuleVersion | ValidationRuleVersion>(
    table: Table<V[]>,
    key: ItemKey,
    plan: VersionPlan<V>,
    options: RuleChangeOptions,
  ): void {
    const stamp = {
      changeId: crypto.randomUUID(),
      at: this.#changeTime(),
      actor: options.actor,
      reason: options.reason,
    };
    // The audit record first: when it cannot be written, the versions stay as they were.
    this.recordRuleChange(ruleChangeOf(plan, stamp));
    table.put(key, plan.versions);
  }

  /**
   * Stores the audit record of a rule change; the change's versions are
   * stored only after it returns, so a record that cannot be written leaves
   * the rule as it was. A subclass may override it to observe changes, or to
   * fail one in a test of that guarantee.
   *
   * @param change The record.
   */
  protected recordRuleChange(change: RuleChange): void {
    this.#ruleChanges.put(itemKeys.ruleChange(change.clientId, change.at, change.changeId), structuredClone(change));
  }

  listCalculationRuleVersions(clientId: string, ruleId: string): Promise<CalculationRule[]> {
    return settle(() => (this.#calculationRules.get(itemKeys.calculationRule(clientId, ruleId)) ?? []).map(scoped));
  }

  listValidationRuleVersions(clientId: string, field: string): Promise<ValidationRule[]> {
    return settle(() => (this.#validationRules.get(itemKeys.validationRules(clientId, field)) ?? []).map(scoped));
  }

  listRuleChanges(clientId: string): Promise<RuleChange[]> {
    return settle(() =>
      structuredClone(this.#ruleChanges.query(itemKeys.ruleChangesPartition(clientId)).sort(compareRuleChanges))
    );
  }

  getIrsLimits(year: number): Promise<IrsLimits> {
    return settle(() => {
      const limits = this.#irsLimits.get(itemKeys.irsLimits(year));
      if (limits === undefined) throw new IrsLimitsNotFoundError(`IRS limits not found for year ${quote(year)}`);
      return deepFreeze(structuredClone(limits));
    });
  }

  saveBatchState(batchId: string, state: BatchState, options: SaveBatchStateOptions = {}): Promise<void> {
    return settle(() => {
      const key = itemKeys.batchState(batchId);
      const action = `save batch state ${quote(batchId)}`;
      const copy = decodeInput(batchStateSchema, state, action);
      // `?.`: a null `options` is no options, as for the DynamoDB store.
      const expectedVersion = options?.expectedVersion;
      const idempotencyKey = options?.idempotencyKey;
      checkExpectedVersion(action, batchId, copy, expectedVersion);
      checkIdempotencyKey(action, idempotencyKey);
      // A key the stored state remembers: this update landed before, so it is not applied again.
      if (idempotencyKey !== undefined && this.#batchStates.get(key)?.updateKeys?.includes(idempotencyKey)) return;
      if (idempotencyKey !== undefined) copy.updateKeys = withUpdateKey(copy.updateKeys, idempotencyKey);
      if (expectedVersion !== undefined) {
        const storedVersion = this.#batchStates.get(key)?.version ?? 0;
        if (storedVersion !== expectedVersion) {
          throw new ConflictError(
            `Failed to ${action}: expected version ${expectedVersion}, stored version is ${storedVersion}`,
          );
        }
      }
      this.#batchStates.put(key, copy);
    });
  }

  getBatchState(batchId: string): Promise<BatchState | null> {
    return settle(() => structuredClone(this.#batchStates.get(itemKeys.batchState(batchId)) ?? null));
  }

  listBatchesByStatus(status: BatchStatus): Promise<BatchState[]> {
    return settle(() => {
      checkBatchStatus(status);
      const states = this.#batchStates.values().filter((state) => state.status === status);
      return structuredClone(states.sort(compareBatchesByRecency));
    });
  }

  saveProcessingResult(batchId: string, step: string, result: ProcessingResult): Promise<void> {
    return settle(() => {
      const key = itemKeys.processingResult(batchId, step);
      const action = `save processing result ${quote(step)} of batch ${quote(batchId)}`;
      const copy = decodeInput(processingResultSchema, result, action);
      if (copy.batchId !== batchId || copy.step !== step) {
        throw new InvalidInputError(
          `Failed to ${action}: the result is for step ${quote(copy.step)} of batch ${quote(copy.batchId)}`,
        );
      }
      this.#results.put(key, copy);
    });
  }

  getProcessingResults(batchId: string): Promise<ProcessingResult[]> {
    return settle(() => structuredClone(this.#results.query(itemKeys.batchPartition(batchId))));
  }

  appendAuditEntry(entry: AuditEntry): Promise<void> {
    return settle(() => {
      const action = `append audit entry ${quote((entry as Partial<AuditEntry> | null)?.entryId)}`;
      const copy = decodeInput(auditEntrySchema, entry, action);
      const key = itemKeys.auditEntry(copy.batchId, copy.entryId);
      if (this.#audit.get(key) !== undefined) {
        throw new ConflictError(`Failed to ${action}: batch ${quote(copy.batchId)} already has an entry with that id`);
      }
      if (this.#seals.has(copy.batchId)) {
        throw new ConflictError(`Failed to ${action}: the audit trail of batch ${quote(copy.batchId)} is sealed`);
      }
      this.#audit.put(key, copy);
    });
  }

  async sealAuditTrail(batchId: string, options: SealAuditTrailOptions): Promise<AuditSeal> {
    itemKeys.auditSeal(batchId);
    const action = `seal the audit trail of batch ${quote(batchId)}`;
    const { actor } = decodeInput(sealAuditTrailOptionsSchema, options, action);
    const stored = this.#seals.get(batchId);
    if (typeof stored === "object") throw new ConflictError(`Failed to ${action}: it is already sealed`);
    // Appends stop here, before anything is awaited; an unfinished seal ("sealing") is completed by the next one.
    this.#seals.set(batchId, "sealing");
    const entries = this.#audit.query(itemKeys.batchPartition(batchId)).sort(compareAuditEntries);
    let document = sealDocument(
      batchId,
      entries.map((entry) => ({ entryId: entry.entryId, digest: auditEntryDigest(storedAuditFields(entry)) })),
      actor,
      new Date().toISOString(),
    );
    if (this.#sealFiles !== undefined) {
      document = await writeSealCopy(this.#sealFiles, document, this.#sealRetentionDays);
    }
    if (typeof this.#seals.get(batchId) === "object") {
      throw new ConflictError(`Failed to ${action}: it is already sealed`);
    }
    const seal = sealOf(document);
    this.#seals.set(batchId, seal);
    return { ...seal };
  }

  async verifyAuditTrail(batchId: string): Promise<AuditVerification> {
    itemKeys.auditSeal(batchId);
    const entries = this.#audit.query(itemKeys.batchPartition(batchId)).sort(compareAuditEntries);
    const stored = this.#seals.get(batchId);
    const copy = await readSealCopy(this.#sealFiles, batchId);
    return compareWithSeals(
      batchId,
      entries.map((entry) => ({ entryId: entry.entryId, digest: auditEntryDigest(storedAuditFields(entry)) })),
      stored === "sealing" ? unfinishedSeal(batchId) : stored,
      copy,
    );
  }

  listAuditEntries(batchId: string): Promise<AuditEntry[]> {
    return settle(() => structuredClone(this.#audit.query(itemKeys.batchPartition(batchId)).sort(compareAuditEntries)));
  }

  getAgentConfig(agent: string): Promise<AgentConfig | null> {
    return settle(() => deepFreeze(structuredClone(this.#agentConfigs.get(itemKeys.agentConfig(agent)) ?? null)));
  }

  /** Holds no connection, so releases nothing; a promise like every backend's `close()`. @returns At once. */
  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** Options of {@linkcode MemoryCacheBackend}. */
export interface MemoryCacheOptions {
  /**
   * The clock, in epoch milliseconds; inject one so tests need not sleep.
   *
   * @default {Date.now}
   */
  now?: () => number;
}

/**
 * The reference {@linkcode ICacheBackend}, in memory, honouring TTLs.
 * Values are stored as JSON text, as Redis stores them.
 *
 * @example Expire an entry with an injected clock
 * ```ts
 * import { MemoryCacheBackend } from "@bluestar/persistence";
 *
 * let now = 0;
 * const cache = new MemoryCacheBackend({ now: () => now });
 * await cache.setex("k", 60, { rate: "0.062" });
 * now += 60_000;
 * console.assert(await cache.get("k") === null);
 * ```
 */
export class MemoryCacheBackend implements ICacheBackend {
  readonly #entries = new Map<string, { json: string; expiresAt: number }>();
  /** How often each key was invalidated; a key never invalidated has none. */
  readonly #generations = new Map<string, number>();
  /** The highest version written through per key. */
  readonly #versions = new Map<string, number>();
  readonly #now: () => number;

  /**
   * Creates an empty cache.
   *
   * @param options The clock.
   */
  constructor(options: MemoryCacheOptions = {}) {
    this.#now = options.now ?? Date.now;
  }

  get<T = unknown>(key: string): Promise<T | null> {
    return settle(() => this.#live(checkCacheKey(key)) as T | null);
  }

  getEntry(key: string, withTtl: boolean): Promise<CachedEntry | null> {
    return settle(() => this.#stored(checkCacheKey(key), withTtl));
  }

  setex(key: string, ttlSeconds: number, value: unknown): Promise<void> {
    return settle(() => {
      const json = encodeCacheWrite(key, ttlSeconds, value);
      this.#entries.set(key, { json, expiresAt: this.#now() + ttlSeconds * 1000 });
    });
  }

  delete(key: string): Promise<void> {
    return settle(() => {
      this.#entries.delete(checkCacheKey(key));
    });
  }

  getMany<T = unknown>(keys: readonly string[], details: CacheEntryDetails = {}): Promise<Array<CacheEntry<T>>> {
    return settle(() => {
      checkCacheTimeoutMs(details.timeoutMs);
      keys.forEach(checkCacheKey);
      return keys.map((key) => {
        const value = this.#live(key) as T | null;
        const generation = details.generations === false ? 0 : this.#generations.get(key) ?? 0;
        const entry = this.#entries.get(key);
        if (value === null || entry === undefined) return { value, generation };
        return {
          value,
          generation,
          ...(details.ttl === true ? { ttlMs: entry.expiresAt - this.#now() } : undefined),
        };
      });
    });
  }

  getEntries(keys: readonly string[], details: CacheEntryDetails = {}): Promise<StoredEntry[]> {
    return settle(() => {
      // It answers at once, within any timeout; an unusable one is refused as by every backend.
      checkCacheTimeoutMs(details.timeoutMs);
      keys.forEach(checkCacheKey);
      return keys.map((key) => ({
        entry: this.#stored(key, details.ttl === true),
        generation: details.generations === false ? 0 : this.#generations.get(key) ?? 0,
      }));
    });
  }

  setexIfGeneration(key: string, ttlSeconds: number, value: unknown, generation: number): Promise<boolean> {
    return settle(() => {
      const json = encodeCacheWrite(key, ttlSeconds, value);
      if ((this.#generations.get(key) ?? 0) !== generation) return false;
      this.#entries.set(key, { json, expiresAt: this.#now() + ttlSeconds * 1000 });
      return true;
    });
  }

  invalidate(keys: readonly string[]): Promise<void> {
    return settle(() => {
      keys.forEach(checkCacheKey);
      for (const key of keys) this.#invalidate(key);
    });
  }

  writeThrough(key: string, ttlSeconds: number, value: unknown, version: number): Promise<boolean> {
    return settle(() => {
      const json = encodeCacheWrite(key, ttlSeconds, value);
      cacheVersionText(key, version);
      this.#invalidate(key);
      if (version <= (this.#versions.get(key) ?? 0)) return false;
      this.#versions.set(key, version);
      this.#entries.set(key, { json, expiresAt: this.#now() + ttlSeconds * 1000 });
      return true;
    });
  }

  /** Drops a key's value and raises its generation. */
  #invalidate(key: string): void {
    this.#entries.delete(key);
    this.#generations.set(key, (this.#generations.get(key) ?? 0) + 1);
  }

  /** The value of a live entry, parsed, or `null`; an expired entry is dropped. */
  #live(key: string): unknown {
    const entry = this.#entries.get(key);
    if (entry === undefined) return null;
    if (entry.expiresAt <= this.#now()) {
      this.#entries.delete(key);
      return null;
    }
    return JSON.parse(entry.json);
  }

  /** A live entry as stored, or `null` (an expired one is dropped). */
  #stored(key: string, withTtl: boolean): CachedEntry | null {
    const entry = this.#entries.get(key);
    if (entry === undefined) return null;
    const left = entry.expiresAt - this.#now();
    if (left <= 0) {
      this.#entries.delete(key);
      return null;
    }
    const text = entry.json;
    return { text, ttlMs: withTtl ? left : Infinity, decode: () => Promise.resolve(JSON.parse(text)) };
  }
}

/** Options of {@linkcode MemoryFileStore}. */
export interface MemoryFileStoreOptions {
  /**
   * How many paths a page of {@linkcode MemoryFileStore.listFilePages} holds:
   * 1 to 1000, as for `S3FileStore`.
   *
   * @default {1000}
   */
  pageSize?: number;
}

/**
 * The reference {@linkcode IFileStore}, in memory.
 *
 * @example Write, move and list
 * ```ts
 * import { MemoryFileStore } from "@bluestar/persistence";
 *
 * const files = new MemoryFileStore();
 * await files.write("in/batch-1.csv", "id,hours\n1,80\n");
 * await files.move("in/batch-1.csv", "archive/batch-1.csv");
 * console.assert((await files.listFiles("archive/")).length === 1);
 * ```
 */
export class MemoryFileStore implements IFileStore {
  readonly #files = new Map<string, StoredFile>();
  readonly #pageSize: number;

  /**
   * Creates an empty store.
   *
   * @param options The listing page size.
   * @throws {ConfigError} When the page size is not an integer from 1 to 1000.
   */
  constructor(options: MemoryFileStoreOptions = {}) {
    // Only a missing page size takes the default: null, like any other non-integer, is refused (as S3FileStore does).
    const pageSize = options?.pageSize === undefined ? MAX_PAGE_SIZE : options.pageSize;
    const problem = pageSizeProblem(pageSize);
    if (problem !== undefined) {
      throw new ConfigError(`Invalid memory file store options: pageSize ${quote(pageSize)}: ${problem}`);
    }
    this.#pageSize = pageSize;
  }

  read(path: string): Promise<Uint8Array> {
    return settle(() => {
      const file = this.#existing(path, "read");
      const actual = sha256Hex(file.bytes);
      if (actual !== file.sha256) {
        throw integrityError(
          `Failed to read file ${quote(path)}`,
          `content whose SHA-256 is ${actual}, not the stored ${file.sha256}`,
        );
      }
      return copyBytes(file.bytes);
    });
  }

  readStream(path: string): Promise<ReadableStream<Uint8Array>> {
    return settle(() => {
      const file = this.#existing(path, "read");
      const context = `Failed to read file ${quote(path)}`;
      const chunks = verifiedChunks(
        chunksOf(file.bytes),
        file.bytes.length,
        file.sha256,
        (found) => integrityError(context, found),
      );
      return pullStream(chunks, () => {}, (error) => error);
    });
  }

  write(path: string, data: Uint8Array | string, options: FileWriteOptions = {}): Promise<void> {
    return settle(() => {
      checkPath(path);
      const retainUntil = checkRetainUntil(path, options?.retainUntil);
      const bytes = toBytes(data, path);
      this.#refuseLocked(`Failed to write file ${quote(path)}`, path);
      if (retainUntil !== undefined && this.#files.has(path)) {
        throw new ConflictError(`Failed to write retained file ${quote(path)}: a file is at the path`);
      }
      this.#files.set(path, storedFile(bytes, retainUntil));
    });
  }

  async writeStream(path: string, source: FileSource): Promise<void> {
    checkPath(path);
    const parts: Uint8Array[] = [];
    let size = 0;
    try {
      // Copied as they come: a producer may reuse its buffer for the next chunk.
      for await (const chunk of sourceChunks(source, path)) {
        parts.push(copyBytes(chunk));
        size += chunk.length;
      }
    } catch (error) {
      if (!(error instanceof SourceFailure)) throw error;
      throw new FileStoreError(`Failed to write file ${quote(path)}: the source failed`, { cause: error.cause });
    }
    const bytes = new Uint8Array(size);
    let offset = 0;
    for (const part of parts) {
      bytes.set(part, offset);
      offset += part.length;
    }
    this.#refuseLocked(`Failed to write file ${quote(path)}`, path);
    this.#files.set(path, storedFile(bytes));
  }

  stat(path: string): Promise<FileStat> {
    return settle(() => {
      const file = this.#existing(path, "stat");
      return {
        path,
        size: file.bytes.length,
        sha256: file.sha256,
        lastModified: new Date(file.lastModified),
        etag: file.etag,
      };
    });
  }

  exists(path: string): Promise<boolean> {
    return settle(() => this.#files.has(checkPath(path)));
  }

  delete(path: string): Promise<void> {
    return settle(() => {
      const lock = this.#files.get(checkPath(path))?.lock;
      const locked = lock === undefined ? undefined : objectLockProblem(lock, new Date());
      // As S3FileStore refuses it: a delete marker would hide a file whose bytes stay locked.
      if (locked !== undefined) throw new FileStoreError(`Failed to delete file ${quote(path)}: ${locked}; it is kept`);
      this.#files.delete(path);
    });
  }

  readRetained(path: string): Promise<Uint8Array> {
    // Nothing replaces a retained file here, so the file is its first version.
    return this.read(path);
  }

  /** Refuses to replace or move a file under a retention that has not run out. */
  #refuseLocked(context: string, path: string): void {
    const lock = this.#files.get(path)?.lock;
    const locked = lock === undefined ? undefined : objectLockProblem(lock, new Date());
    if (locked !== undefined) throw new ConflictError(`${context}: ${locked}`);
  }

  move(src: string, dst: string): Promise<void> {
    return settle(() => {
      checkPath(src, "source path");
      checkPath(dst, "destination path");
      const data = this.#files.get(src);
      if (data === undefined) {
        throw new FileNotFoundError(`Failed to move file ${quote(src)} to ${quote(dst)}: the source does not exist`);
      }
      if (src === dst) return;
      this.#refuseLocked(`Failed to move file ${quote(src)} to ${quote(dst)}`, src);
      // A move never replaces a file: one that is there was put there by someone else.
      if (this.#files.has(dst)) {
        throw new ConflictError(
          `Failed to move file ${quote(src)} to ${quote(dst)}: the destination exists; the source is kept`,
        );
      }
      // The content and its checksum move together; the move is a new write of the destination (with no lock).
      this.#files.set(dst, { ...data, lock: undefined, lastModified: Date.now() });
      this.#files.delete(src);
    });
  }

  listFiles(prefix: string): Promise<string[]> {
    return settle(() => this.#sortedUnder(prefix));
  }

  async *listFilePages(prefix: string): AsyncIterable<string[]> {
    const paths = this.#sortedUnder(prefix);
    for (let start = 0; start < paths.length; start += this.#pageSize) {
      yield paths.slice(start, start + this.#pageSize);
    }
  }

  #existing(path: string, action: "read" | "stat"): StoredFile {
    const file = this.#files.get(checkPath(path));
    if (file === undefined) throw new FileNotFoundError(`Failed to ${action} file ${quote(path)}: it does not exist`);
    return file;
  }

  #sortedUnder(prefix: string): string[] {
    checkPrefix(prefix);
    return [...this.#files.keys()].filter((path) => path.startsWith(prefix)).sort(comparePaths);
  }

  /** Holds no connection, so releases nothing; a promise like every backend's `close()`. @returns At once. */
  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** A file of {@linkcode MemoryFileStore}: its bytes (never handed out), their SHA-256, when it was written. */
interface StoredFile {
  bytes: Uint8Array;
  sha256: string;
  etag: string;
  lastModified: number;
  /** A write with `retainUntil`: the compliance-mode lock S3 Object Lock would hold. */
  lock?: ObjectLockState;
}

function storedFile(bytes: Uint8Array, retainUntil?: Date): StoredFile {
  const sha256 = sha256Hex(bytes);
  // S3's ETag of a single-part upload is a quoted MD5 (32 hex digits): the same shape, from the SHA-256.
  const file: StoredFile = { bytes, sha256, etag: `"${sha256.slice(0, 32)}"`, lastModified: Date.now() };
  if (retainUntil !== undefined) file.lock = { ObjectLockMode: "COMPLIANCE", ObjectLockRetainUntilDate: retainUntil };
  return file;
}

/** How much of a file one chunk of `readStream` carries. */
const STREAM_CHUNK_BYTES = 64 * 1024;

/** Copies of consecutive slices of `bytes`, made as they are asked for. */
function* chunksOf(bytes: Uint8Array): Generator<Uint8Array> {
  for (let start = 0; start < bytes.length; start += STREAM_CHUNK_BYTES) {
    yield bytes.slice(start, start + STREAM_CHUNK_BYTES);
  }
}

/** Runs synchronous store logic as a promise, so a bad argument rejects rather than throws. */
function settle<T>(body: () => T): Promise<T> {
  try {
    return Promise.resolve(body());
  } catch (error) {
    return Promise.reject(error);
  }
}
