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
  CalculationRuleInput,
  FileWriteOptions,
  IrsLimits,
  PipelineStep,
  ProcessingResult,
  RuleChange,
  RuleChangeOptions,
  RuleReadOptions,
  SaveBatchStateOptions,
  ValidationRule,
  ValidationRuleInput,
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
   * The validation rules for a field in effect on a date: the client's own
   * versions in effect then when it has any, else GLOBAL's, sorted by rule
   * id. The client's rules for a field in effect on the date replace
   * GLOBAL's for that field entirely.
   *
   * @param clientId The client.
   * @param field The field, e.g. `"ssn"`.
   * @param options `asOf`, the day to resolve for; without it, today in UTC from the store's clock.
   * @returns The rules, deeply frozen, each with the version (`effectiveFrom`, `effectiveTo`, `revision`) that answered; `[]` when neither has any in effect.
   * @throws {InvalidInputError} When `asOf` is not a calendar date `YYYY-MM-DD` (an impossible day is refused, never rolled over).
   */
  getValidationRules(clientId: string, field: string, options?: RuleReadOptions): Promise<ValidationRule[]>;

  /**
   * A calculation rule as of a date: the client's version covering the day,
   * else GLOBAL's. The rule's `scope` and `clientId` say which partition
   * answered; `effectiveFrom`, `effectiveTo` and `revision` which version.
   *
   * @param clientId The client.
   * @param ruleId The rule, e.g. `"FICA_SOCIAL_SECURITY"`.
   * @param options `asOf`, the day to resolve for; without it, today in UTC from the store's clock.
   * @returns The rule, deeply frozen.
   * @throws {RuleNotFoundError} When neither the client nor GLOBAL has a version covering the day; the message names client, rule and day.
   * @throws {InvalidInputError} When `asOf` is not a calendar date `YYYY-MM-DD`.
   */
  getCalculationRule(clientId: string, ruleId: string, options?: RuleReadOptions): Promise<CalculationRule>;

  /**
   * Adds or corrects one version of a calculation rule, with its audit
   * record, atomically: a failed change leaves neither.
   *
   * - A new `effectiveFrom` adds a version. When an open-ended version
   *   started before it, that version is closed on the day before, in the
   *   same write. Any other overlap with a stored version of the same
   *   (client, rule) is a `ConflictError` naming both ranges.
   * - The `effectiveFrom` of a stored version corrects that version; it
   *   needs `expectedRevision` equal to the stored revision.
   *
   * Once it returns, every read of this store, and of every store sharing
   * its cache, sees the change.
   *
   * @param rule The version.
   * @param options Who (`actor`) and why (`reason`), and `expectedRevision` for a correction.
   * @returns The stored version, with its `revision` and `scope`.
   * @throws {ConflictError} When the version overlaps another, or a correction's `expectedRevision` is missing or not the stored revision; nothing changes.
   * @throws {InvalidInputError} When the rule, the actor or the reason is malformed, or `effectiveTo` is before `effectiveFrom`; nothing changes.
   */
  putCalculationRule(rule: CalculationRuleInput, options: RuleChangeOptions): Promise<CalculationRule>;

  /**
   * Adds or corrects one version of one validation rule, identified by
   * client, field, rule id and `effectiveFrom`, with its audit record,
   * atomically; the same rules as {@linkcode IRulesStore.putCalculationRule},
   * per rule id within the field.
   *
   * @param rule The version; without `effectiveFrom`, from `"0001-01-01"`; without `effectiveTo`, open-ended.
   * @param options Who (`actor`) and why (`reason`), and `expectedRevision` for a correction.
   * @returns The stored version, with its `revision` and `scope`.
   * @throws {ConflictError} When the version overlaps another of the same rule id, or a correction's `expectedRevision` is missing or not the stored revision; nothing changes.
   * @throws {InvalidInputError} When the rule, the actor or the reason is malformed, or `effectiveTo` is before `effectiveFrom`; nothing changes.
   */
  putValidationRule(rule: ValidationRuleInput, options: RuleChangeOptions): Promise<ValidationRule>;

  /**
   * Removes one version of a calculation rule, with its audit record (whose
   * `after` is `null`), atomically. The neighbouring versions stay as they
   * are: the days the version covered fall back to GLOBAL (or to no rule).
   * An owner left without versions reads as one that never had any.
   *
   * Once it returns, every read of this store, and of every store sharing
   * its cache, sees the removal.
   *
   * @param clientId The owner: a client id or `"GLOBAL"`.
   * @param ruleId The rule.
   * @param effectiveFrom The first day of the version, `YYYY-MM-DD`.
   * @param options Who (`actor`) and why (`reason`), and `expectedRevision`, required: the stored version's revision.
   * @returns The removed version, with its `revision` and `scope`.
   * @throws {RuleNotFoundError} When no such version is stored; the message names client, rule and day.
   * @throws {ConflictError} When `expectedRevision` is missing or not the stored revision; nothing changes.
   * @throws {InvalidInputError} When an id, the date, the actor or the reason is malformed; nothing changes.
   */
  removeCalculationRuleVersion(
    clientId: string,
    ruleId: string,
    effectiveFrom: string,
    options: RuleChangeOptions,
  ): Promise<CalculationRule>;

  /**
   * Removes one version of one validation rule, identified by client, field,
   * rule id and `effectiveFrom`, with its audit record, atomically; the same
   * rules as {@linkcode IRulesStore.removeCalculationRuleVersion}. When the
   * client has no rule of the field in effect on a day any more, GLOBAL's
   * answer for that day.
   *
   * @param clientId The owner: a client id or `"GLOBAL"`.
   * @param field The field.
   * @param ruleId The rule id within the field.
   * @param effectiveFrom The first day of the version, `YYYY-MM-DD`.
   * @param options Who (`actor`) and why (`reason`), and `expectedRevision`, required: the stored version's revision.
   * @returns The removed version, with its `revision` and `scope`.
   * @throws {RuleNotFoundError} When no such version is stored; the message names client, rule and day.
   * @throws {ConflictError} When `expectedRevision` is missing or not the stored revision; nothing changes.
   * @throws {InvalidInputError} When an id, the date, the actor or the reason is malformed; nothing changes.
   */
  removeValidationRuleVersion(
    clientId: string,
    field: string,
    ruleId: string,
    effectiveFrom: string,
    options: RuleChangeOptions,
  ): Promise<ValidationRule>;

  /**
   * Every version of a client's (or GLOBAL's) own calculation rule, closed
   * ones included, in `effectiveFrom` order: the rule's history. No GLOBAL
   * fallback.
   *
   * @param clientId The owner: a client id or `"GLOBAL"`.
   * @param ruleId The rule.
   * @returns The versions; `[]` when the owner has none.
   */
  listCalculationRuleVersions(clientId: string, ruleId: string): Promise<CalculationRule[]>;

  /**
   * Every version of a client's (or GLOBAL's) own validation rules for a
   * field, closed ones included, by rule id, then `effectiveFrom`. No GLOBAL
   * fallback.
   *
   * @param clientId The owner: a client id or `"GLOBAL"`.
   * @param field The field.
   * @returns The versions; `[]` when the owner has none.
   */
  listValidationRuleVersions(clientId: string, field: string): Promise<ValidationRule[]>;

  /**
   * Every audited change of a client's (or GLOBAL's) rules, in the order
   * they were made (by `at`, then `changeId`). Changes of GLOBAL's rules are
   * listed under `"GLOBAL"`, not under each client.
   *
   * @param clientId The owner: a client id or `"GLOBAL"`.
   * @returns The changes; `[]` when none was made.
   */
  listRuleChanges(clientId: string): Promise<RuleChange[]>;

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

  /**
   * Several cached values and the generation of each key, in ONE round trip.
   * A key's generation starts at 0 and goes up with each
   * {@linkcode ICacheBackend.invalidate} of it. On a Redis Cluster the keys
   * of one call share a hash tag. Optional: a cache without it is read one
   * key at a time, with no guard against stale write-backs.
   *
   * @param keys The keys.
   * @param details What to learn besides: `ttl`, how long each entry has left (`ttlMs`; Redis: `PTTL`, in the same round trip); `generations: false`, no generation (each is 0); `timeoutMs`, the most the call may take.
   * @returns One entry per key, in order: the value (`null` on a miss) and the key's generation.
   * @throws {CacheError} When the cache cannot be reached, or does not answer within `details.timeoutMs` (or the backend's own timeout, when shorter).
   * @throws {InvalidInputError} When a key is empty or over 1024 bytes, or `details.timeoutMs` is not a positive number; nothing is sent.
   */
  getMany?<T = unknown>(keys: readonly string[], details?: CacheEntryDetails): Promise<Array<CacheEntry<T>>>;

  /**
   * Optional: what {@linkcode ICacheBackend.getMany} reads, in the same ONE
   * round trip, with each entry as stored, its JSON text not yet decoded (as
   * {@linkcode ICacheBackend.getEntry} gives it), so a reader that already
   * checked an exact text skips its decode (the read-through cache's hot
   * path: a hit costs no parse). Backends without it are read with `getMany`.
   *
   * A backend that has it must fail the call within `details.timeoutMs`:
   * the read-through cache relies on that and sets no deadline of its own
   * on this call (one deadline per hit, not two).
   *
   * @param keys The keys.
   * @param details What to learn besides: `ttl`, how long each entry has left (its `ttlMs`, else `Infinity`); `generations: false`, no generation (each is 0); `timeoutMs`, the most the call may take.
   * @returns One entry per key, in order: the entry as stored (`null` on a miss) and the key's generation.
   * @throws {CacheError} When the cache cannot be reached, or does not answer within `details.timeoutMs` (or the backend's own timeout, when shorter).
   * @throws {InvalidInputError} When a key is empty or over 1024 bytes, or `details.timeoutMs` is not a positive number; nothing is sent.
   *
   * @example Decode only what was not checked before
   * ```ts
   * import { MemoryCacheBackend } from "@bluestar/persistence";
   *
   * const cache = new MemoryCacheBackend();
   * await cache.setex("rule", 60, { rate: "0.062" });
   * const [{ entry }] = await cache.getEntries(["rule", "missing"]);
   * console.assert(entry?.text === '{"rate":"0.062"}');
   * console.assert((await entry?.decode() as { rate: string }).rate === "0.062");
   * ```
   */
  getEntries?(keys: readonly string[], details?: CacheEntryDetails): Promise<StoredEntry[]>;

  /**
   * Stores a value only when the key's generation is still the one read
   * with {@linkcode ICacheBackend.getMany}, atomically: a reader that loaded
   * its value before a writer invalidated the key cannot write it back.
   *
   * @param key The key.
   * @param ttlSeconds How long the value lives: a positive integer.
   * @param value A JSON value.
   * @param generation The generation the key must still have.
   * @returns Whether the value was stored.
   * @throws {CacheError} When the cache cannot be reached.
   * @throws {InvalidInputError} When the key, the TTL or the value is not usable; nothing is sent.
   */
  setexIfGeneration?(key: string, ttlSeconds: number, value: unknown, generation: number): Promise<boolean>;

  /**
   * Removes values and raises each key's generation, atomically per key, so
   * that no write-back of a value read before lands afterwards.
   *
   * @param keys The keys.
   * @throws {CacheError} When the cache cannot be reached.
   */
  invalidate?(keys: readonly string[]): Promise<void>;

  /**
   * Replaces a key's value with the one its writer just stored in the
   * source of truth, atomically: raises the key's generation (as
   * {@linkcode ICacheBackend.invalidate} does, so no write-back of a value
   * read before lands afterwards), then stores the value only when its
   * `version` is above every version written through for the key so far,
   * and otherwise drops the cached value (a writer whose call ran late never
   * puts back a value older than another writer's). Readers of the key find
   * the new value at once instead of a miss.
   *
   * @param key The key.
   * @param ttlSeconds How long the value lives: a positive integer.
   * @param value A JSON value.
   * @param version The value's version in the source of truth (a rule item's revision): a positive integer.
   * @returns Whether the value was stored (`false`: a newer version was written through before; the key is dropped).
   * @throws {CacheError} When the cache cannot be reached.
   * @throws {InvalidInputError} When the key, the TTL, the value or the version is not usable; nothing is sent.
   */
  writeThrough?(key: string, ttlSeconds: number, value: unknown, version: number): Promise<boolean>;
}

/** What {@linkcode ICacheBackend.getMany} is to tell besides values and generations. */
export interface CacheEntryDetails {
  /**
   * Each entry's remaining TTL, as `ttlMs`.
   *
   * @default {false}
   */
  ttl?: boolean;
  /**
   * Each key's generation. `false`: not read, every entry's `generation` is
   * 0; for a lookup that serves only hits (a write-back needs the
   * generation, read before its load).
   *
   * @default {true}
   */
  generations?: boolean;
  /**
   * The most the call may take, in milliseconds; past it the call fails
   * with a `CacheError`. The backend's own timeout still applies when it
   * is shorter.
   *
   * @default {undefined: the backend's own timeout}
   */
  timeoutMs?: number;
}

/** A cached value and its key's generation (see {@linkcode ICacheBackend.getMany}). */
export interface CacheEntry<T> {
  /** The value, or `null` on a miss (or an entry that does not decode). */
  value: T | null;
  /** How many times the key was invalidated (0: never, or so long ago that the count expired). */
  generation: number;
  /**
   * How long the entry has left, in milliseconds, when asked for (`details.ttl`).
   *
   * @default {undefined: not asked for, or no expiry}
   */
  ttlMs?: number;
}

/** A key's entry as stored and the key's generation (see {@linkcode ICacheBackend.getEntries}). */
export interface StoredEntry {
  /** The entry, its text not yet decoded, or `null` on a miss. */
  entry: CachedEntry | null;
  /** How many times the key was invalidated (0: never, or so long ago that the count expired). */
  generation: number;
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
   * Until when the bus counts as live without a new message: when the last
   * message arrived plus the heartbeat, on the bus's clock
   * (`performance.now()` unless one was injected). The hot path of a read
   * compares it with the clock reading it already took, so a bus must run
   * on the same clock as the stores it serves; when it has passed, the
   * reader asks {@linkcode IInvalidationBus.isLive}.
   *
   * @returns The deadline; `-Infinity` when nothing was heard (or before first use).
   */
  liveUntil(): number;

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

/** What {@linkcode IFileStore.writeStream} reads a file's content from: a web stream or any async iterable of bytes. */
export type FileSource = ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>;

/** What {@linkcode IFileStore.stat} says about a file. */
export interface FileStat {
  /** The path. */
  path: string;
  /** The size in bytes. */
  size: number;
  /**
   * The SHA-256 of the content stored when it was written, as 64 lowercase
   * hex digits; `undefined` for a file another tool wrote without one (its
   * reads cannot be verified).
   */
  sha256: string | undefined;
  /** When the file was last written. */
  lastModified: Date;
  /** An opaque tag that changes when the content is rewritten (S3's ETag, quotes included). */
  etag: string;
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
   * @throws {IntegrityError} When the bytes do not match the SHA-256 stored with them.
   */
  read(path: string): Promise<Uint8Array>;

  /**
   * Writes a file, replacing any file at the path, with the SHA-256 of its
   * content (which reads verify). A string is written as UTF-8.
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
   * A file's bytes as a stream, for files too large to hold in memory. Only
   * a bounded part of the file is held at a time, however slowly the stream
   * is read. The content is checked against its stored SHA-256 as it goes:
   * when it differs, the stream errors with an `IntegrityError` instead of
   * delivering its last chunk. Cancelling the stream ends the transfer.
   *
   * @param path The path.
   * @returns The stream, once the file is known to exist.
   * @throws {FileNotFoundError} When there is no such file (before any byte).
   */
  readStream(path: string): Promise<ReadableStream<Uint8Array>>;

  /**
   * Writes a file from a stream of bytes, replacing any file at the path,
   * holding only a bounded part of it in memory. When the source fails, or
   * a chunk is not bytes, nothing is written: the file at the path is as it
   * was.
   *
   * @param path The path.
   * @param source The content, chunk by chunk.
   * @returns Nothing, once the whole file is stored.
   * @throws {InvalidInputError} When the source is not a stream or an async iterable, or a chunk is not a `Uint8Array`.
   * @throws {FileStoreError} When the source or the write fails; its error is the `cause`.
   */
  writeStream(path: string, source: FileSource): Promise<void>;

  /**
   * What is known about a file: its size, the SHA-256 stored with it, when
   * it was written, its ETag.
   *
   * @param path The path.
   * @returns The file's details.
   * @throws {FileNotFoundError} When there is no such file.
   */
  stat(path: string): Promise<FileStat>;

  /**
   * Whether a file is at the path.
   *
   * @param path The path.
   * @returns `true` when there is.
   */
  exists(path: string): Promise<boolean>;

  /**
   * Deletes a file. Deleting a missing file is not an error.
   *
   * @param path The path.
   * @returns Nothing, once the file is gone.
   * @throws {FileStoreError} When the delete fails or is refused (a file under a retention); the file stays.
   */
  delete(path: string): Promise<void>;

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
