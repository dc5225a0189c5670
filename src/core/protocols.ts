/**
 * The three protocols every backend implements. The in-memory backends are
 * the behavioural reference; the contract suites in `tests/contract/` hold
 * every backend to them.
 *
 * @module
 */

import type {
  AgentConfig,
  AuditEntry,
  BatchState,
  BatchStatus,
  CalculationRule,
  IrsLimits,
  PipelineStep,
  ProcessingResult,
  SaveBatchStateOptions,
  ValidationRule,
} from "./types.ts";

/**
 * Pipelines, rules, limits, batch state, results and the audit trail.
 *
 * Every id is checked before any request: an id that is empty, contains `#`
 * or a control character, or is over 256 bytes is an `InvalidInputError`.
 *
 * Rule reads (pipelines, validation and calculation rules, IRS limits, agent
 * configuration) return deeply frozen values, whichever path answered
 * (the source, a cache, the in-process tier): readers may share them, and
 * changing one throws a `TypeError` in strict mode. Batch state, processing
 * results and audit entries are fresh copies the caller may change.
 * A backend failure is a `RulesStoreError`; an item that does not decode is a
 * `CorruptItemError`.
 */
export interface IRulesStore {
  /**
   * Every step of a plan, sorted by step number.
   *
   * @param planId The plan, e.g. `"DEFAULT_BiWeeklyFri"`.
   * @returns The steps, deeply frozen.
   * @throws {PipelineNotFoundError} When the plan has no steps.
   */
  getPipeline(planId: string): Promise<PipelineStep[]>;

  /**
   * The validation rules for a field: the client's own when it has any for
   * that field, else GLOBAL's, sorted by rule id. A client's rules for a field
   * replace GLOBAL's for that field entirely.
   *
   * @param clientId The client.
   * @param field The field, e.g. `"ssn"`.
   * @returns The rules, deeply frozen; `[]` when neither has any.
   */
  getValidationRules(clientId: string, field: string): Promise<ValidationRule[]>;

  /**
   * A calculation rule: the client's own, else GLOBAL's. The rule's `scope`
   * and `clientId` say which answered.
   *
   * @param clientId The client.
   * @param ruleId The rule, e.g. `"FICA_SOCIAL_SECURITY"`.
   * @returns The rule, deeply frozen.
   * @throws {RuleNotFoundError} When neither the client nor GLOBAL has it.
   */
  getCalculationRule(clientId: string, ruleId: string): Promise<CalculationRule>;

  /**
   * The IRS limits of a year.
   *
   * @param year The calendar year.
   * @returns The limits, deeply frozen.
   * @throws {IrsLimitsNotFoundError} When no limits are stored for the year.
   * @throws {InvalidInputError} When the year is not an integer from 1900 to 9999.
   */
  getIrsLimits(year: number): Promise<IrsLimits>;

  /**
   * Writes a batch's state, whole.
   *
   * @param batchId The batch; must equal `state.batchId`.
   * @param state The state.
   * @param options `expectedVersion` for optimistic concurrency.
   * @throws {ConflictError} When `expectedVersion` is given and the stored version differs; nothing changes.
   * @throws {InvalidInputError} When the state is malformed, or its version is not above `expectedVersion`.
   */
  saveBatchState(batchId: string, state: BatchState, options?: SaveBatchStateOptions): Promise<void>;

  /**
   * A batch's state.
   *
   * @param batchId The batch.
   * @returns The state (a fresh copy), or `null` for an unknown batch.
   */
  getBatchState(batchId: string): Promise<BatchState | null>;

  /**
   * Every batch with a status, most recently updated first (the batch-state
   * table's status index).
   *
   * @param status The status.
   * @returns The batch states.
   * @throws {InvalidInputError} When the status is not a batch status.
   */
  listBatchesByStatus(status: BatchStatus): Promise<BatchState[]>;

  /**
   * Writes one step's result; saving the same step again replaces it.
   *
   * @param batchId The batch; must equal `result.batchId`.
   * @param step The step id; must equal `result.step`.
   * @param result The result.
   * @throws {InvalidInputError} When the result is malformed or for another batch or step.
   */
  saveProcessingResult(batchId: string, step: string, result: ProcessingResult): Promise<void>;

  /**
   * Every step's result of a batch, in step order.
   *
   * @param batchId The batch.
   * @returns The results; `[]` for a batch with none.
   */
  getProcessingResults(batchId: string): Promise<ProcessingResult[]>;

  /**
   * Appends an entry to the audit trail. Append-only: nothing in the library
   * updates or deletes an entry.
   *
   * @param entry The entry.
   * @throws {ConflictError} When the batch already has an entry with that id; the first entry stays as it was.
   * @throws {InvalidInputError} When the entry is malformed.
   */
  appendAuditEntry(entry: AuditEntry): Promise<void>;

  /**
   * A batch's audit trail, every page of it, ordered by timestamp, then id.
   *
   * @param batchId The batch.
   * @returns The entries; `[]` for a batch with none.
   */
  listAuditEntries(batchId: string): Promise<AuditEntry[]>;

  /**
   * An agent's runtime configuration.
   *
   * @param agent The agent.
   * @returns The configuration, deeply frozen, or `null` when none is stored.
   */
  getAgentConfig(agent: string): Promise<AgentConfig | null>;
}

/**
 * A key-value cache with expiry. Values are JSON: what goes in comes out as
 * an equal copy.
 */
export interface ICacheBackend {
  /**
   * A cached value.
   *
   * @param key The key.
   * @returns The value, or `null` on a miss (or an entry that does not decode).
   * @throws {CacheError} When the cache cannot be reached.
   * @throws {InvalidInputError} When the key is empty or over 1024 bytes.
   */
  get<T = unknown>(key: string): Promise<T | null>;

  /**
   * Stores a value for a number of seconds.
   *
   * @param key The key.
   * @param ttlSeconds How long the value lives: a positive integer.
   * @param value A JSON value.
   * @throws {CacheError} When the cache cannot be reached.
   * @throws {InvalidInputError} When the key, the TTL or the value is not usable; nothing is sent.
   */
  setex(key: string, ttlSeconds: number, value: unknown): Promise<void>;

  /**
   * Removes a value; removing a missing key is not an error.
   *
   * @param key The key.
   * @throws {CacheError} When the cache cannot be reached.
   */
  delete(key: string): Promise<void>;

  /**
   * Optional: an entry as stored, its JSON text not yet decoded, so a reader
   * that already checked this exact text can skip the decode (the read-through
   * cache's hot path). Backends without it are read with `get`.
   *
   * @param key The key.
   * @param withTtl Whether to learn how long the entry has left (Redis: `PTTL`, sent in the same round trip).
   * @returns The entry, or `null` on a miss.
   * @throws {CacheError} When the cache cannot be reached.
   * @throws {InvalidInputError} When the key is empty or over 1024 bytes.
   */
  getEntry?(key: string, withTtl: boolean): Promise<CachedEntry | null>;
}

/** An entry as a cache holds it (see {@linkcode ICacheBackend.getEntry}). */
export interface CachedEntry {
  /** The JSON text as stored. */
  readonly text: string;
  /** How long the entry has left, in milliseconds; `Infinity` when not asked for or without expiry. */
  readonly ttlMs: number;
  /**
   * Decodes the text as `get` would: an entry that is not JSON is `null`,
   * reported and deleted by the backend.
   *
   * @returns The value, or `null`.
   */
  decode(): Promise<unknown>;
}

/**
 * Tells every process sharing a cache which keys changed: messages carry
 * keys, never values. A bus that has not been heard from within its
 * heartbeat is not live, and may have missed messages.
 */
export interface IInvalidationBus {
  /**
   * Publishes changed keys to every process (this one included).
   *
   * @param keys The cache keys.
   * @returns When published, or when publishing failed (reported, never thrown).
   */
  publish(keys: readonly string[]): Promise<void>;

  /**
   * Registers a receiver of keys, and of the bus coming back after it was
   * not live (when everything cached may be stale).
   *
   * @param listener What to call.
   */
  listen(listener: InvalidationListener): void;

  /**
   * Whether a message (a heartbeat counts) arrived within the heartbeat.
   *
   * @returns Whether the bus is live now.
   */
  isLive(): boolean;

  /**
   * Stops the heartbeat and closes the connections.
   *
   * @returns When closed.
   */
  close(): Promise<void>;
}

/** A receiver registered with {@linkcode IInvalidationBus.listen}. */
export interface InvalidationListener {
  /** Keys some process changed. */
  dropped(keys: readonly string[]): void;
  /** The bus is live again after a silence: messages may have been missed. */
  restored(): void;
}

/**
 * Files by path: payroll input files, payment files, archives.
 *
 * A path is a relative `/`-separated key: not empty, no leading `/`, no
 * empty, `.` or `..` segment, no backslash, no control character, at most
 * 1024 bytes; anything else is an `InvalidInputError` before any request.
 * Listings are sorted by code point (the UTF-8 byte order S3 lists in).
 */
export interface IFileStore {
  /**
   * A file's bytes.
   *
   * @param path The path.
   * @returns The bytes.
   * @throws {FileNotFoundError} When there is no such file.
   */
  read(path: string): Promise<Uint8Array>;

  /**
   * Writes a file, replacing any file at the path. A string is written as UTF-8.
   *
   * @param path The path.
   * @param data The content.
   * @throws {FileStoreError} When the write fails; a failed write leaves no partial file.
   */
  write(path: string, data: Uint8Array | string): Promise<void>;

  /**
   * Moves a file: afterwards `dst` has the content and `src` is gone. Moving
   * a file onto itself changes nothing. Unlike `write`, a move never replaces
   * a file, and of moves that run at once exactly one lands: of two moves of
   * one source, the other is a `FileNotFoundError`; of two moves to one
   * destination, a `ConflictError`. A move that fails leaves no copy.
   *
   * @param src The file to move.
   * @param dst Where it goes; no file may be there.
   * @throws {FileNotFoundError} When `src` does not exist (or another move took it first); nothing changes.
   * @throws {ConflictError} When a file is at `dst`; nothing changes.
   */
  move(src: string, dst: string): Promise<void>;

  /**
   * Every path under a prefix, sorted. Every listed path can be read: keys
   * other tools wrote that are no valid path are left out.
   *
   * @param prefix The prefix (`""` for all, `"in/"` for a folder).
   * @returns The paths; `[]` when none match.
   */
  listFiles(prefix: string): Promise<string[]>;

  /**
   * Every path under a prefix, a page at a time, in listing order, for
   * folders too large to hold in memory.
   *
   * @param prefix The prefix.
   * @returns The pages.
   */
  listFilePages(prefix: string): AsyncIterable<string[]>;
}
