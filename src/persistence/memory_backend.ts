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
  InvalidInputError,
  IrsLimitsNotFoundError,
  PipelineNotFoundError,
  quote,
  RuleNotFoundError,
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
import type { ICacheBackend, IFileStore, IRulesStore } from "../core/protocols.ts";
import {
  auditEntrySchema,
  batchStateSchema,
  type CompleteRulesData,
  decodeInput,
  decodeRulesData,
  problemText,
  processingResultSchema,
} from "../core/schema.ts";
import type {
  AgentConfig,
  AuditEntry,
  BatchState,
  BatchStatus,
  CalculationRule,
  CalculationRuleRecord,
  FileWriteOptions,
  IrsLimits,
  PipelineStep,
  ProcessingResult,
  RulesData,
  SaveBatchStateOptions,
  ValidationRule,
  ValidationRuleRecord,
} from "../core/types.ts";
import { checkRetainUntil, copyBytes, encodeCacheWrite, toBytes } from "../core/values.ts";
import {
  checkBatchStatus,
  checkExpectedVersion,
  checkIdempotencyKey,
  checkSealActor,
  compareAuditEntries,
  compareBatchesByRecency,
  scoped,
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
    return [...partition.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, value]) => value);
  }

  values(): T[] {
    return [...this.#partitions.values()].flatMap((partition) => [...partition.values()]);
  }
}

/** Options of {@linkcode MemoryRulesStore}: where seal copies go, and how long they are retained. */
export interface MemoryRulesStoreOptions extends AuditSealOptions {}

/**
 * The reference {@linkcode IRulesStore}, in memory.
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
 * const rule = await store.getCalculationRule("ACME", "FICA_MEDICARE");
 * console.assert(rule.scope === "GLOBAL" && rule.parameters.rate === "0.0145");
 * ```
 */
export class MemoryRulesStore implements IRulesStore {
  readonly #pipeline = new Table<PipelineStep>();
  readonly #validationRules = new Table<ValidationRuleRecord[]>();
  readonly #calculationRules = new Table<CalculationRuleRecord>();
  readonly #irsLimits = new Table<IrsLimits>();
  readonly #batchStates = new Table<BatchState>();
  readonly #results = new Table<ProcessingResult>();
  readonly #audit = new Table<AuditEntry>();
  readonly #agentConfigs = new Table<AgentConfig>();
  /** Each batch's seal, or `"sealing"` from the moment sealing starts: what refuses appends. */
  readonly #seals = new Map<string, AuditSeal | "sealing">();
  readonly #sealFiles: IFileStore | undefined;
  readonly #sealRetentionDays: number;

  /**
   * Creates a store serving a copy of the data.
   *
   * @param data The reference data to serve, checked like the seed files.
   * @param options Seal copies: the file store and the retention.
   * @throws {InvalidInputError} Listing every problem, when the data does not decode.
   * @throws {ConfigError} Listing every problem, when an option is malformed.
   */
  constructor(data: RulesData = {}, options: MemoryRulesStoreOptions = {}) {
    const problems = sealOptionProblems(options ?? {});
    if (problems.length > 0) throw new ConfigError(`Invalid memory rules store options: ${problems.join("; ")}`);
    this.#sealFiles = options?.sealFiles;
    this.#sealRetentionDays = options?.sealRetentionDays ?? DEFAULT_SEAL_RETENTION_DAYS;
    const decoded = decodeRulesData(data);
    if (!decoded.ok) {
      throw new InvalidInputError(`Failed to load rules data: ${decoded.problems.map(problemText).join("; ")}`);
    }
    this.#load(decoded.value);
  }

  #load(data: CompleteRulesData): void {
    for (const step of data.pipelineSteps) this.#pipeline.put(itemKeys.pipelineStep(step.planId, step.step), step);
    for (const rule of data.validationRules) {
      const key = itemKeys.validationRules(rule.clientId, rule.field);
      const rules = this.#validationRules.get(key) ?? [];
      rules.push(rule);
      this.#validationRules.put(key, rules);
    }
    for (const rule of data.calculationRules) {
      this.#calculationRules.put(itemKeys.calculationRule(rule.clientId, rule.ruleId), rule);
    }
    for (const limits of data.irsLimits) this.#irsLimits.put(itemKeys.irsLimits(limits.year), limits);
    for (const config of data.agentConfigs) this.#agentConfigs.put(itemKeys.agentConfig(config.agent), config);
  }

  getPipeline(planId: string): Promise<PipelineStep[]> {
    return settle(() => {
      const steps = this.#pipeline.query(itemKeys.pipelinePartition(planId));
      if (steps.length === 0) throw new PipelineNotFoundError(`Pipeline ${quote(planId)} not found`);
      return structuredClone(steps);
    });
  }

  getValidationRules(clientId: string, field: string): Promise<ValidationRule[]> {
    return settle(() => {
      const own = this.#validationRules.get(itemKeys.validationRules(clientId, field));
      const rules = own ?? this.#validationRules.get(itemKeys.validationRules(GLOBAL_CLIENT_ID, field)) ?? [];
      return rules.map(scoped).sort((a, b) => (a.ruleId < b.ruleId ? -1 : a.ruleId > b.ruleId ? 1 : 0));
    });
  }

  getCalculationRule(clientId: string, ruleId: string): Promise<CalculationRule> {
    return settle(() => {
      const rule = this.#calculationRules.get(itemKeys.calculationRule(clientId, ruleId)) ??
        this.#calculationRules.get(itemKeys.calculationRule(GLOBAL_CLIENT_ID, ruleId));
      if (rule === undefined) {
        throw new RuleNotFoundError(
          `Calculation rule ${quote(ruleId)} not found for client ${quote(clientId)} or GLOBAL`,
        );
      }
      return scoped(rule);
    });
  }

  getIrsLimits(year: number): Promise<IrsLimits> {
    return settle(() => {
      const limits = this.#irsLimits.get(itemKeys.irsLimits(year));
      if (limits === undefined) throw new IrsLimitsNotFoundError(`IRS limits not found for year ${quote(year)}`);
      return structuredClone(limits);
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
    const actor = checkSealActor(action, options);
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
    return settle(() => structuredClone(this.#agentConfigs.get(itemKeys.agentConfig(agent)) ?? null));
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
    return settle(() => {
      checkCacheKey(key);
      const entry = this.#entries.get(key);
      if (entry === undefined) return null;
      if (entry.expiresAt <= this.#now()) {
        this.#entries.delete(key);
        return null;
      }
      return JSON.parse(entry.json) as T;
    });
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
  readonly #files = new Map<string, Uint8Array>();
  /** Retained paths and until when (epoch milliseconds). */
  readonly #retained = new Map<string, number>();
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
      const data = this.#files.get(checkPath(path));
      if (data === undefined) throw new FileNotFoundError(`Failed to read file ${quote(path)}: it does not exist`);
      return copyBytes(data);
    });
  }

  write(path: string, data: Uint8Array | string, options: FileWriteOptions = {}): Promise<void> {
    return settle(() => {
      checkPath(path);
      const retainUntil = checkRetainUntil(path, options?.retainUntil);
      const bytes = toBytes(data, path);
      this.#refuseRetained(`Failed to write file ${quote(path)}`, path);
      if (retainUntil !== undefined) {
        if (this.#files.has(path)) {
          throw new ConflictError(`Failed to write retained file ${quote(path)}: a file is at the path`);
        }
        this.#retained.set(path, retainUntil.getTime());
      }
      this.#files.set(path, bytes);
    });
  }

  readRetained(path: string): Promise<Uint8Array> {
    // Nothing replaces a retained file here, so the file is its first version.
    return this.read(path);
  }

  /** Refuses to change a path under retention. */
  #refuseRetained(context: string, path: string): void {
    const until = this.#retained.get(path);
    if (until === undefined) return;
    if (until > Date.now()) {
      throw new ConflictError(`${context}: it is retained until ${new Date(until).toISOString()}`);
    }
    this.#retained.delete(path);
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
      this.#refuseRetained(`Failed to move file ${quote(src)} to ${quote(dst)}`, src);
      // A move never replaces a file: one that is there was put there by someone else.
      if (this.#files.has(dst)) {
        throw new ConflictError(
          `Failed to move file ${quote(src)} to ${quote(dst)}: the destination exists; the source is kept`,
        );
      }
      this.#files.set(dst, data);
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

  #sortedUnder(prefix: string): string[] {
    checkPrefix(prefix);
    return [...this.#files.keys()].filter((path) => path.startsWith(prefix)).sort(comparePaths);
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
