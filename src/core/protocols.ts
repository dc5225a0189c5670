/**
 * The three protocols every backend implements. The in-memory backends are
 * the behavioural reference; the contract suites in `tests/contract/` hold
 * every backend to them.
 *
 * @module
 */

import type { AuditSeal, AuditVerification, SealAuditTrailOptions } from "./audit.ts";
import type {
  AgentConfig,
  AuditEntry,
  BatchState,
  BatchStatus,
  CalculationRule,
  FileWriteOptions,
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
 * A backend failure is a `RulesStoreError`; an item that does not decode is a
 * `CorruptItemError`.
 */
export interface IRulesStore {
  /**
   * Every step of a plan, sorted by step number.
   *
   * @param planId The plan, e.g. `"DEFAULT_BiWeeklyFri"`.
   * @returns The steps.
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
   * @returns The rules; `[]` when neither has any.
   */
  getValidationRules(clientId: string, field: string): Promise<ValidationRule[]>;

  /**
   * A calculation rule: the client's own, else GLOBAL's. The rule's `scope`
   * and `clientId` say which answered.
   *
   * @param clientId The client.
   * @param ruleId The rule, e.g. `"FICA_SOCIAL_SECURITY"`.
   * @returns The rule.
   * @throws {RuleNotFoundError} When neither the client nor GLOBAL has it.
   */
  getCalculationRule(clientId: string, ruleId: string): Promise<CalculationRule>;

  /**
   * The IRS limits of a year.
   *
   * @param year The calendar year.
   * @returns The limits.
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
   * @returns The state, or `null` for an unknown batch.
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
   * @throws {ConflictError} When the batch already has an entry with that id (the first entry stays as it was), or its trail is sealed (or being sealed); decided atomically with the append.
   * @throws {InvalidInputError} When the entry is malformed.
   */
  appendAuditEntry(entry: AuditEntry): Promise<void>;

  /**
   * Seals a batch's audit trail: the SHA-256 Merkle root over its entries in
   * listing order (see `auditTrailRoot`), stored once in the audit-log table
   * and, where the store has a file store for seals, as
   * `audit-seals/{batchId}.json` with retention. From the moment sealing
   * starts no entry can be appended.
   *
   * @param batchId The batch.
   * @param options Who seals.
   * @returns The seal.
   * @throws {ConflictError} When the batch is already sealed.
   * @throws {InvalidInputError} When the batch id or the actor is not valid.
   */
  sealAuditTrail(batchId: string, options: SealAuditTrailOptions): Promise<AuditSeal>;

  /**
   * Recomputes a batch's root from its stored entries and compares it with
   * the seal in the table and the seal copy in the file store.
   *
   * @param batchId The batch.
   * @returns `{ ok: true, seal }`, or `{ ok: false, problems }`, each problem naming what it found (an entry changed, inserted or removed, a seal missing, the two seals disagreeing, no file store configured).
   */
  verifyAuditTrail(batchId: string): Promise<AuditVerification>;

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
   * @returns The configuration, or `null` when none is stored.
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
   * @param options Retention (`retainUntil`): create-only, and no replacing or deleting before then.
   * @throws {FileStoreError} When the write fails; a failed write leaves no partial file.
   * @throws {ConflictError} When the file is retained, or `retainUntil` is given and a file is at the path.
   */
  write(path: string, data: Uint8Array | string, options?: FileWriteOptions): Promise<void>;

  /**
   * A retained file's bytes as first written: where the store keeps versions
   * (an S3 bucket with versioning, as Object Lock requires), the oldest
   * version of the path, which a later plain write cannot replace; elsewhere
   * the file.
   *
   * @param path The path.
   * @returns The bytes.
   * @throws {FileNotFoundError} When there is no such file.
   */
  readRetained(path: string): Promise<Uint8Array>;

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
