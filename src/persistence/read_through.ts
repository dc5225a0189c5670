/**
 * The read-through cache in front of a store's reads: single flight, the
 * cache lookup bounded by a deadline, the check of cached values, the
 * write-back. A store says what to read (`kind`, `key`), how to tell a
 * cached value is an answer (`check`) and how to load one (`load`); this
 * module decides where the answer comes from.
 *
 * Parts, each in one place: {@linkcode ReadThroughCache} only orchestrates
 * (in-process tier, then flight, then Redis tier, then load, then
 * write-back, and which event says so); `LocalTier` (`local_tier.ts`) is the
 * in-process LRU; an {@linkcode IInvalidationBus} carries invalidations
 * between processes;
 * `RemoteTier` is the ONE guarded call path to the {@linkcode ICacheBackend}
 * (every operation bounded, every failure reported and made harmless);
 * `CheckedTexts` is the memo of checked entries; `SingleFlight` shares
 * identical concurrent reads.
 *
 * @module
 */

import { CacheError, quote } from "../core/errors.ts";
import type { CacheKind } from "../core/keys.ts";
import type { CachedEntry, ICacheBackend, IInvalidationBus } from "../core/protocols.ts";
import { type Decoded, problemText } from "../core/schema.ts";
import { type Clock, Deadlines, Pending, SYSTEM_CLOCK } from "../core/time.ts";
import { deepFreeze } from "../core/values.ts";
import { describeAwsError } from "./aws_errors.ts";
import { LocalTier } from "./local_tier.ts";

/** A call the read-through cache sends to its cache backend. */
export type CacheOperation = "get" | "setex" | "delete";

/** Which tier answered a hit: the in-process LRU, or the shared cache backend (Redis). */
export type CacheTier = "local" | "redis";

/**
 * What a {@linkcode ReadThroughCache} reports. Each lookup reports exactly
 * one of `cache.hit`, `cache.miss`, `cache.corrupt` and `cache.error` (with
 * `operation: "get"`); a failed write-back reports one `cache.error` (with
 * `operation: "setex"`), a failed invalidation one per key (with
 * `operation: "delete"`).
 *
 * - `cache.hit`: a cached value was served; nothing was loaded. `tier` says
 *   which tier answered: `local` (in-process) or `redis` (the cache backend).
 * - `cache.stale`: the load failed and `staleIfErrorSeconds` allowed the
 *   last value this process read, `ageMs` old, to be served instead.
 * - `cache.miss`: the cache had no value; the read was loaded.
 * - `cache.corrupt`: the cache held a value that does not decode into what
 *   was asked for; it counts as a miss and the read was loaded.
 * - `cache.error`: a cache call failed or took longer than its timeout
 *   (`get`: the read was loaded; `setex`: the value was not cached).
 */
export type ReadThroughEvent =
  | { type: "cache.hit"; kind: CacheKind; key: string; tier: CacheTier }
  | { type: "cache.miss"; kind: CacheKind; key: string }
  | { type: "cache.corrupt"; kind: CacheKind; key: string; problems: string[] }
  | { type: "cache.error"; kind: CacheKind; key: string; operation: CacheOperation; error: CacheError }
  | { type: "cache.stale"; kind: CacheKind; key: string; ageMs: number; error: unknown };

/** The in-process tier's settings; the caller has checked them. */
export interface LocalCacheSettings {
  /** How many reads it holds at most: a positive integer. */
  maxEntries: number;
  /** How long an entry lives at most, in seconds: a positive number. */
  ttlSeconds: number;
}

/** When to serve a stale value; the caller has checked it. */
export interface StaleIfErrorSettings {
  /** How old a value this process read may be, at most, in seconds: a positive number. */
  seconds: number;
  /** Whether a load failure is one a stale value may stand in for (a store outage, not "not found"). */
  when: (error: unknown) => boolean;
}

/** Options of {@linkcode ReadThroughCache}; the caller has checked them. */
export interface ReadThroughOptions {
  /**
   * The cache tier. Without one, reads still share single flight and go
   * straight to their load.
   *
   * @default {undefined}
   */
  cache?: ICacheBackend;
  /** How long a written-back value lives, in seconds: a positive integer. */
  ttlSeconds: number;
  /** How long one cache call may take, in milliseconds: a slower `get` is a miss, a slower `setex` a failed write-back. */
  timeoutMs: number;
  /**
   * Receives the events (see {@linkcode ReadThroughEvent}), synchronously.
   * It must not throw: pass a hook that is already guarded.
   *
   * @default {undefined}
   */
  onEvent?: (event: ReadThroughEvent) => void;
  /**
   * The clock of the cache calls' deadlines and of the in-process expiries.
   *
   * @default {SYSTEM_CLOCK}
   */
  clock?: Clock;
  /**
   * The in-process tier in front of `cache`. With a `bus`, it answers only
   * while the bus is live; without one, an entry may be stale for its TTL.
   *
   * @default {undefined (no in-process tier)}
   */
  localCache?: LocalCacheSettings;
  /**
   * Carries invalidations between processes; {@linkcode ReadThroughCache.invalidate} publishes on it.
   *
   * @default {undefined}
   */
  bus?: IInvalidationBus;
  /**
   * When the load fails, serve the last value this process read within a window.
   *
   * @default {undefined (never stale)}
   */
  staleIfError?: StaleIfErrorSettings;
}

/**
 * The least time an invalidation's delete may take, in milliseconds: it is
 * on the write path, not a read's, and one that fails leaves the old value in
 * the cache for its TTL, so it gets longer than a lookup (a first connection
 * included).
 */
const MIN_DELETE_TIMEOUT_MS = 1000;

/** How many last-read values `staleIfError` keeps at most. */
const STALE_LIMIT = 10_000;

/** How many checked entries the memo keeps before it starts over. */
const MEMO_LIMIT = 10_000;

/** What a failed cache call yields, once it is reported. */
const FAILED: unique symbol = Symbol("cache call failed");

/**
 * A read-through cache: `read()` answers from the cache when it holds a
 * value that passes `check`, else from `load()`, and writes a loaded answer
 * back (`null` is never written: "not found" is never cached). The cache is
 * never a point of failure: a cache that throws, rejects, hangs past the
 * timeout or holds garbage makes the read load, and is reported.
 *
 * Identical concurrent reads (the same key) share one lookup and one load,
 * and one answer: every answer is deeply frozen, on every path (in-process
 * hit, cache hit, load), so sharing it needs no copy. A failure reaches
 * every caller sharing the read.
 *
 * With `localCache`, an in-process LRU answers first, with no request at
 * all; an entry lives for the local TTL, never longer than the cache entry
 * it came from. With a `bus`, the in-process tier answers only while the bus
 * is live, and is cleared when it comes back after a silence.
 *
 * @example Read through an in-memory cache
 * ```ts
 * import { MemoryCacheBackend } from "@bluestar/persistence";
 * import { ReadThroughCache } from "./read_through.ts";
 *
 * const reads = new ReadThroughCache({ cache: new MemoryCacheBackend(), ttlSeconds: 60, timeoutMs: 50 });
 * const check = (value: unknown) =>
 *   typeof value === "number"
 *     ? { ok: true as const, value }
 *     : { ok: false as const, problems: [{ path: "", message: "it is not a number" }] };
 * const first = await reads.read("irs", "answer", check, () => Promise.resolve(42)); // loaded, written back
 * await reads.close(); // the write-back has landed
 * const second = await reads.read("irs", "answer", check, () => Promise.reject(new Error("not called")));
 * console.assert(first === 42 && second === 42);
 * ```
 */
export class ReadThroughCache {
  readonly #remote: RemoteTier | undefined;
  readonly #local: LocalTier | undefined;
  readonly #bus: IInvalidationBus | undefined;
  readonly #stale: { tier: LocalTier; settings: StaleIfErrorSettings; clock: Clock } | undefined;
  readonly #checked = new CheckedTexts();
  readonly #flights = new SingleFlight();
  readonly #pendingWrites = new Set<Promise<void>>();
  readonly #onEvent: ((event: ReadThroughEvent) => void) | undefined;
  /** Moves on every invalidation: a read that started before one caches nothing. */
  #epoch = 0;
  /** Moves when the bus comes back after a silence: a read that started before keeps nothing in process. */
  #restores = 0;

  /**
   * Creates the cache; nothing is sent until the first read.
   *
   * @param options The cache tiers, TTL and timeout, the bus, the event sink and the clock.
   */
  constructor(options: ReadThroughOptions) {
    this.#onEvent = options.onEvent;
    const clock = options.clock ?? SYSTEM_CLOCK;
    this.#remote = options.cache === undefined ? undefined : new RemoteTier(options.cache, {
      ttlSeconds: options.ttlSeconds,
      timeoutMs: options.timeoutMs,
      report: (event) => this.#onEvent?.(event),
      clock,
    });
    const local = options.localCache;
    this.#local = local === undefined
      ? undefined
      : new LocalTier({ maxEntries: local.maxEntries, ttlMs: local.ttlSeconds * 1000, clock });
    const stale = options.staleIfError;
    this.#stale = stale === undefined ? undefined : {
      tier: new LocalTier({ maxEntries: STALE_LIMIT, ttlMs: stale.seconds * 1000, clock }),
      settings: stale,
      clock,
    };
    this.#bus = options.bus;
    this.#bus?.listen({
      dropped: (keys) => this.#drop(keys),
      restored: () => {
        this.#restores++;
        this.#local?.clear();
      },
    });
  }

  /**
   * Reads through the tiers. The answer is deeply frozen (shared by every
   * reader, so no copy is made): changing it throws in strict mode.
   *
   * @param kind What is read (named in events).
   * @param key The cache key; identical concurrent reads are those with the same key.
   * @param check Decodes a cached value into the answer, or says why it is not one.
   * @param load Loads the answer from the source of truth.
   * @returns The answer, frozen.
   * @throws {Error} Whatever `load` throws (every caller sharing the read gets it); never a cache failure.
   */
  read<T>(kind: CacheKind, key: string, check: (value: unknown) => Decoded<T>, load: () => Promise<T>): Promise<T> {
    return this.local<T>(kind, key) ?? this.#flights.run(key, () => this.#cachedOrLoaded(kind, key, check, load));
  }

  /**
   * The in-process tier's answer, if it has one and may give it (no tier,
   * or a bus that is not live: never): the hot path, which a caller tries
   * before building what `read` needs. Reports the hit.
   *
   * @param kind What is read (named in the event).
   * @param key The cache key.
   * @returns An already-resolved promise of the frozen answer, or `undefined`.
   */
  local<T>(kind: CacheKind, key: string): Promise<T> | undefined {
    const local = this.#local;
    if (local === undefined || (this.#bus !== undefined && !this.#bus.isLive())) return undefined;
    const value = local.get(key);
    if (value === undefined) return undefined;
    if (this.#onEvent !== undefined) this.#onEvent({ type: "cache.hit", kind, key, tier: "local" });
    return Promise.resolve(value as T);
  }

  /**
   * Drops keys from every tier: this process's in-process tier, the cache
   * backend, and, through the bus, every other process's in-process tier.
   * A read in flight that started before it caches nothing. A delete may
   * take `timeoutMs` or 1 second, whichever is longer. Failures are reported
   * (`cache.error`, `operation: "delete"`), never thrown: a key that could
   * not be deleted keeps its old value until its TTL ends.
   *
   * @param kind What the keys cache (named in events).
   * @param keys The cache keys that changed.
   * @returns When the cache backend answered and the bus published (or failed).
   */
  async invalidate(kind: CacheKind, keys: readonly string[]): Promise<void> {
    this.#drop(keys);
    const remote = this.#remote;
    await Promise.all([
      ...(remote === undefined ? [] : keys.map((key) => remote.delete(kind, key))),
      this.#bus?.publish(keys),
    ]);
  }

  /**
   * Waits for the write-backs started so far (each bounded by the timeout).
   * Reads still work afterwards; the caller stops sending them.
   *
   * @returns When every write-back has landed or failed.
   */
  async close(): Promise<void> {
    await Promise.allSettled([...this.#pendingWrites]);
  }

  #drop(keys: readonly string[]): void {
    this.#epoch++;
    this.#local?.delete(keys);
    this.#stale?.tier.delete(keys);
  }

  async #cachedOrLoaded<T>(
    kind: CacheKind,
    key: string,
    check: (value: unknown) => Decoded<T>,
    load: () => Promise<T>,
  ): Promise<T> {
    const epoch = this.#epoch;
    const restores = this.#restores;
    const remote = this.#remote;
    if (remote !== undefined) {
      // Each lookup reports exactly one event: a failed one was reported by the tier.
      const cached = await remote.get(kind, key, this.#local !== undefined);
      if (cached !== FAILED) {
        const known = cached === null ? undefined : this.#checked.known(key, cached.text);
        if (known !== undefined) return this.#redisHit(epoch, restores, kind, key, known as T, cached!.ttlMs);
        const checked = cached === null ? null : await this.#checked.check(key, cached, check);
        if (checked === null) {
          this.#onEvent?.({ type: "cache.miss", kind, key });
        } else if (checked.ok) {
          return this.#redisHit(epoch, restores, kind, key, checked.value, cached!.ttlMs);
        } else {
          this.#onEvent?.({ type: "cache.corrupt", kind, key, problems: checked.problems.map(problemText) });
        }
      }
    }
    let value: T;
    try {
      value = deepFreeze(await load());
    } catch (error) {
      return this.#staleOr(kind, key, error);
    }
    if (value === null) return value;
    if (remote !== undefined && epoch === this.#epoch) {
      // Frozen, so the write-back serialises what the caller got; the text is remembered as checked.
      this.#writeBack(remote, kind, key, value);
    }
    return this.#keep(epoch, restores, key, value, Infinity);
  }

  #redisHit<T>(epoch: number, restores: number, kind: CacheKind, key: string, value: T, ttlMs: number): T {
    this.#onEvent?.({ type: "cache.hit", kind, key, tier: "redis" });
    return this.#keep(epoch, restores, key, value, ttlMs);
  }

  /**
   * Keeps an answer in the in-process tiers, unless an invalidation came
   * while it was read, or the bus came back from a silence (the answer may
   * predate an invalidation the silence hid).
   */
  #keep<T>(epoch: number, restores: number, key: string, value: T, lifetimeMs: number): T {
    if (epoch !== this.#epoch) return value;
    this.#stale?.tier.set(key, value, Infinity);
    if (
      this.#local !== undefined && restores === this.#restores && (this.#bus === undefined || this.#bus.isLive())
    ) {
      this.#local.set(key, value, lifetimeMs);
    }
    return value;
  }

  /** The last value read within `staleIfErrorSeconds`, reported, when the failure allows it; else the failure. */
  #staleOr<T>(kind: CacheKind, key: string, error: unknown): T {
    const stale = this.#stale;
    if (stale === undefined || !stale.settings.when(error)) throw error;
    const kept = stale.tier.peek(key);
    if (kept === undefined) throw error;
    this.#onEvent?.({ type: "cache.stale", kind, key, ageMs: stale.clock.now() - kept.storedAt, error });
    return kept.value as T;
  }

  /** Caches a value without waiting for it; `close()` waits for it. */
  #writeBack(remote: RemoteTier, kind: CacheKind, key: string, value: unknown): void {
    let text: string | undefined;
    try {
      text = JSON.stringify(value);
    } catch {
      text = undefined; // Not JSON: the backend refuses it and the refusal is reported.
    }
    if (text !== undefined) this.#checked.remember(key, text, value);
    const write: Promise<void> = remote.setex(kind, key, value).then(() => {
      this.#pendingWrites.delete(write);
    });
    this.#pendingWrites.add(write);
  }
}

/** Identical concurrent reads share one run, and its (frozen) answer. */
class SingleFlight {
  readonly #flights = new Map<string, Promise<unknown>>();

  run<T>(key: string, start: () => Promise<T>): Promise<T> {
    const existing = this.#flights.get(key);
    if (existing !== undefined) return existing as Promise<T>;
    const flight = (async () => {
      try {
        return await start();
      } finally {
        // Before the promise settles, so nobody joins a finished flight.
        this.#flights.delete(key);
      }
    })();
    this.#flights.set(key, flight);
    return flight;
  }
}

/**
 * The memo of checked cache entries. A check's verdict depends only on the
 * entry's JSON text, so the text of the last entry that passed is kept per
 * key with its frozen answer: the same text again is the same answer, for a
 * string comparison instead of a parse and a decode on the hot path. A
 * changed entry is decoded and checked again.
 */
class CheckedTexts {
  readonly #passed = new Map<string, { text: string; value: unknown }>();

  /** The answer already checked for exactly this text, or `undefined`. */
  known(key: string, text: string | undefined): unknown {
    const known = text === undefined ? undefined : this.#passed.get(key);
    return known !== undefined && known.text === text ? known.value : undefined;
  }

  /** Decodes and checks an entry; `null` when it is not JSON (the backend reported it). */
  async check<T>(key: string, entry: RemoteEntry, check: (value: unknown) => Decoded<T>): Promise<Decoded<T> | null> {
    const decoded = await entry.decode();
    if (decoded === null || decoded === undefined) return null;
    const checked = check(decoded);
    if (checked.ok) {
      deepFreeze(checked.value);
      if (entry.text !== undefined) this.remember(key, entry.text, checked.value);
    }
    return checked;
  }

  /** Remembers a checked answer (frozen) and its text. */
  remember(key: string, text: string, value: unknown): void {
    if (this.#passed.size >= MEMO_LIMIT) this.#passed.clear();
    this.#passed.set(key, { text, value });
  }
}

/** An entry the remote tier found: its text when known (`undefined`: a value JSON cannot hold). */
interface RemoteEntry {
  readonly text: string | undefined;
  readonly ttlMs: number;
  decode(): Promise<unknown>;
}

/** A `get` answer as an entry, for a backend without `getEntry`. */
function entryOf(value: unknown): RemoteEntry | null {
  if (value === null || value === undefined) return null;
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch {
    text = undefined; // A cycle or a bigint: the check rejects it.
  }
  return { text, ttlMs: Infinity, decode: () => Promise.resolve(value) };
}

/** A cache call waiting for its answer until its deadline. */
class PendingCall extends Pending {
  constructor(
    readonly operation: CacheOperation,
    readonly kind: CacheKind,
    readonly key: string,
    readonly resolve: (answer: unknown) => void,
  ) {
    super();
  }
}

/**
 * The cache backend behind ONE guarded call path: every operation is
 * bounded by the timeout (the deadlines share one timer, so a hit pays for
 * no timer of its own), and every failure, thrown, rejected or late, is
 * reported once as a `cache.error` and answers `FAILED`, so no cache failure
 * reaches a reader.
 */
class RemoteTier {
  readonly #backend: ICacheBackend;
  readonly #ttlSeconds: number;
  readonly #timeoutMs: number;
  readonly #report: (event: ReadThroughEvent) => void;
  readonly #deadlines: Deadlines<PendingCall>;

  constructor(
    backend: ICacheBackend,
    options: { ttlSeconds: number; timeoutMs: number; report: (event: ReadThroughEvent) => void; clock: Clock },
  ) {
    this.#backend = backend;
    this.#ttlSeconds = options.ttlSeconds;
    this.#timeoutMs = options.timeoutMs;
    this.#report = options.report;
    this.#deadlines = new Deadlines(this.#expire, options.clock);
  }

  /** The cached entry, `null` on a miss, `FAILED` when the call failed; `withTtl`: learn its remaining TTL. */
  get(kind: CacheKind, key: string, withTtl: boolean): Promise<RemoteEntry | null | typeof FAILED> {
    return this.#call("get", kind, key, withTtl) as Promise<RemoteEntry | null | typeof FAILED>;
  }

  /** Caches a value for the TTL; resolves whether or not it landed. */
  setex(kind: CacheKind, key: string, value: unknown): Promise<unknown> {
    return this.#call("setex", kind, key, value);
  }

  /** Deletes a key; resolves whether or not it was deleted. */
  delete(kind: CacheKind, key: string): Promise<unknown> {
    return this.#call("delete", kind, key, undefined);
  }

  #call(operation: CacheOperation, kind: CacheKind, key: string, value: unknown): Promise<unknown> {
    let answer: Promise<unknown>;
    try {
      answer = Promise.resolve(this.#send(operation, key, value));
    } catch (error) {
      this.#fail(operation, kind, key, failure(operation, key, error));
      return Promise.resolve(FAILED);
    }
    return new Promise((resolve) => {
      const pending = new PendingCall(operation, kind, key, resolve);
      const deadlines = this.#deadlines;
      deadlines.track(pending, this.#deadlineOf(operation));
      answer.then(
        (reply) => {
          if (deadlines.settle(pending)) resolve(reply);
        },
        (error: unknown) => {
          if (!deadlines.settle(pending)) return;
          this.#fail(operation, kind, key, failure(operation, key, error));
          resolve(FAILED);
        },
      );
    });
  }

  #deadlineOf(operation: CacheOperation): number {
    return operation === "delete" ? Math.max(MIN_DELETE_TIMEOUT_MS, this.#timeoutMs) : this.#timeoutMs;
  }

  #send(operation: CacheOperation, key: string, value: unknown): Promise<unknown> {
    const backend = this.#backend;
    if (operation === "setex") return backend.setex(key, this.#ttlSeconds, value);
    if (operation === "delete") return backend.delete(key);
    if (backend.getEntry !== undefined) return backend.getEntry(key, value as boolean) as Promise<CachedEntry | null>;
    return backend.get(key).then(entryOf);
  }

  #fail(operation: CacheOperation, kind: CacheKind, key: string, error: CacheError): void {
    this.#report({ type: "cache.error", kind, key, operation, error });
  }

  /** Fails a call past its deadline (called by the sweep). */
  readonly #expire = (pending: PendingCall): void => {
    const { operation, kind, key } = pending;
    const reason = `no answer within ${this.#deadlineOf(operation)} ms`;
    this.#fail(operation, kind, key, new CacheError(`Failed to ${operation} cache key ${quote(key)}: ${reason}`));
    pending.resolve(FAILED);
  };
}

/** A failed cache call as a `CacheError` naming the call and the key; the backend's own `CacheError` stays as it is. */
function failure(operation: CacheOperation, key: string, error: unknown): CacheError {
  return error instanceof CacheError
    ? error
    : new CacheError(`Failed to ${operation} cache key ${quote(key)}: ${describeAwsError(error)}`, { cause: error });
}
