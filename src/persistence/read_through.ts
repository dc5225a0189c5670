/**
 * The read-through cache in front of a store's reads: single flight, the
 * cache lookup bounded by a deadline, the check of cached values, the
 * write-back. A store says what to read (`kind`, `key`), how to tell a
 * cached value is an answer (`check`) and how to load one (`load`); this
 * module decides where the answer comes from.
 *
 * Parts, each in one place: {@linkcode ReadThroughCache} only orchestrates
 * (flight, then tier, then load, then write-back, and which event says so);
 * `RemoteTier` is the ONE guarded call path to the {@linkcode ICacheBackend}
 * (every operation bounded, every failure reported and made harmless);
 * `CheckedTexts` is the memo of checked entries; `SingleFlight` shares
 * identical concurrent reads.
 *
 * @module
 */

import { CacheError, quote } from "../core/errors.ts";
import type { CacheKind } from "../core/keys.ts";
import type { CacheEntry, ICacheBackend } from "../core/protocols.ts";
import { guardHook } from "../core/hooks.ts";
import { type Decoded, problemText } from "../core/schema.ts";
import { type Clock, Deadlines, elapsedMs, Pending, SYSTEM_CLOCK } from "../core/time.ts";
import { type CacheTier, type CallEnd, endedOk, endedWith } from "../core/call_end.ts";
import { describeAwsError } from "./aws_errors.ts";

/** A call the read-through cache sends to its cache backend. */
export type CacheOperation = "get" | "setex" | "getMany" | "setexIfGeneration" | "invalidate";

/**
 * What a {@linkcode ReadThroughCache} reports. Each lookup reports exactly
 * one of `cache.hit`, `cache.miss`, `cache.corrupt` and `cache.error` (with
 * `operation: "get"`); a failed write-back reports one `cache.error` (with
 * `operation: "setex"`).
 *
 * - `cache.hit`: a cached value was served; nothing was loaded.
 * - `cache.miss`: the cache had no value; the read was loaded.
 * - `cache.corrupt`: the cache held a value that does not decode into what
 *   was asked for; it counts as a miss and the read was loaded.
 * - `cache.error`: a cache call failed or took longer than its timeout
 *   (`get`: the read was loaded; `setex`: the value was not cached).
 *
 * Each ends a cache call: `tier` is the tier that answered (the cache
 * backend is the `"redis"` tier), with the {@linkcode CallEnd} fields:
 * `durationMs` of the cache call, `outcome` `"ok"` for a hit or a miss,
 * `"error"` for a corrupt value or a failed call.
 */
export type ReadThroughEvent =
  | ({ type: "cache.hit"; kind: CacheKind; key: string; tier: CacheTier } & CallEnd)
  | ({ type: "cache.miss"; kind: CacheKind; key: string; tier: CacheTier } & CallEnd)
  | ({ type: "cache.corrupt"; kind: CacheKind; key: string; tier: CacheTier; problems: string[] } & CallEnd)
  | ({
    type: "cache.error";
    kind: CacheKind;
    key: string;
    tier: CacheTier;
    operation: CacheOperation;
    error: CacheError;
  } & CallEnd);

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
   * The clock of the cache calls' deadlines.
   *
   * @default {SYSTEM_CLOCK}
   */
  clock?: Clock;
}

/** How many checked entries the memo keeps before it starts over. */
const MEMO_LIMIT = 10_000;

/** What a failed cache call yields, once it is reported. */
const FAILED: unique symbol = Symbol("cache call failed");

/** The tier behind the cache backend: the shared one, Redis in production. */
const REMOTE: CacheTier = "redis";

/**
 * A read-through cache: `read()` answers from the cache when it holds a
 * value that passes `check`, else from `load()`, and writes a loaded answer
 * back (`null` is never written: "not found" is never cached). The cache is
 * never a point of failure: a cache that throws, rejects, hangs past the
 * timeout or holds garbage makes the read load, and is reported.
 *
 * Identical concurrent reads (the same key) share one lookup and one load;
 * each caller gets its own copy, and a failure reaches every one of them.
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
  readonly #checked = new CheckedTexts();
  readonly #flights = new SingleFlight();
  readonly #pendingWrites = new Set<Promise<void>>();
  readonly #onEvent: ((event: ReadThroughEvent) => void) | undefined;

  /**
   * Creates the cache; nothing is sent until the first read.
   *
   * @param options The cache tier, its TTL and timeout, the event sink and the clock.
   */
  constructor(options: ReadThroughOptions) {
    // The store passes a guarded hook; one given directly is guarded here.
    this.#onEvent = options.onEvent === undefined ? undefined : guardHook(options.onEvent);
    this.#remote = options.cache === undefined ? undefined : new RemoteTier(options.cache, {
      ttlSeconds: options.ttlSeconds,
      timeoutMs: options.timeoutMs,
      report: (event) => this.#onEvent?.(event),
      clock: options.clock,
    });
  }

  /**
   * Reads through the cache.
   *
   * @param kind What is read (named in events).
   * @param key The cache key; identical concurrent reads are those with the same key.
   * @param check Decodes a cached value into the answer, or says why it is not one.
   * @param load Loads the answer from the source of truth.
   * @returns The answer: the caller's own copy when the read was shared.
   * @throws {Error} Whatever `load` throws (every caller sharing the read gets it); never a cache failure.
   */
  read<T>(kind: CacheKind, key: string, check: (value: unknown) => Decoded<T>, load: () => Promise<T>): Promise<T> {
    return this.#flights.run(key, () => this.#cachedOrLoaded(kind, key, check, load));
  }

  /**
   * Reads several entries that make one answer (a client's versions of a
   * rule and GLOBAL's) through the cache, in one round trip: when every
   * entry is cached and passes its check, they are the answer; otherwise
   * `load()` loads them all and the entries that were not cached are written
   * back, each only if its key was not invalidated since it was looked up
   * (see {@linkcode ReadThroughCache.invalidate}). Nothing is written back
   * when `cacheable` says the answer is not to be cached.
   *
   * @param kind What is read (named in events).
   * @param keys The cache keys, one per entry; identical concurrent reads are those with the same keys.
   * @param check Decodes a cached value of the entry at an index, or says why it is not one.
   * @param load Loads every entry from the source of truth, in the order of `keys`.
   * @param cacheable Whether a loaded answer may be written back.
   * @returns The entries: the caller's own copy when the read was shared.
   * @throws {Error} Whatever `load` throws; never a cache failure.
   */
  readMany<T>(
    kind: CacheKind,
    keys: readonly string[],
    check: (value: unknown, index: number) => Decoded<T>,
    load: () => Promise<T[]>,
    cacheable: (values: readonly T[]) => boolean,
  ): Promise<T[]> {
    return this.#flights.run(keys.join("\n"), () => this.#cachedOrLoadedMany(kind, keys, check, load, cacheable), keys);
  }

  /**
   * Invalidates entries after their source of truth changed: reads that
   * start afterwards in this process never join a read that started before,
   * and the cache tier drops the entries and raises their generations, so no
   * reader anywhere writes back a value it loaded before the change. Every
   * invalidation of the library goes through this one method.
   *
   * @param kind What changed (named in events).
   * @param keys The cache keys.
   * @returns When the cache tier has dropped the entries, or the call failed (reported as `cache.error`, operation `invalidate`).
   */
  async invalidate(kind: CacheKind, keys: readonly string[]): Promise<void> {
    this.#flights.forget(keys);
    await this.#remote?.invalidate(kind, keys);
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

  async #cachedOrLoaded<T>(
    kind: CacheKind,
    key: string,
    check: (value: unknown) => Decoded<T>,
    load: () => Promise<T>,
  ): Promise<T> {
    const remote = this.#remote;
    if (remote === undefined) return await load();
    // Each lookup reports exactly one event: a failed one was reported by the tier.
    const started = performance.now();
    const cached = await remote.get(kind, key);
    if (cached === null || cached === undefined) {
      this.#onEvent?.({ type: "cache.miss", kind, key, tier: REMOTE, ...endedOk(started) });
    } else if (cached !== FAILED) {
      const checked = this.#checked.check(key, cached, check);
      if (checked.ok) {
        this.#onEvent?.({ type: "cache.hit", kind, key, tier: REMOTE, ...endedOk(started) });
        return checked.value;
      }
      const problems = checked.problems.map(problemText);
      const end: CallEnd = { durationMs: elapsedMs(started), outcome: "error" };
      this.#onEvent?.({ type: "cache.corrupt", kind, key, tier: REMOTE, problems, ...end });
    }
    const value = await load();
    // A snapshot: a cache may serialise later, after the caller changed its copy.
    if (value !== null) this.#writeBack(remote, kind, key, structuredClone(value));
    return value;
  }

  async #cachedOrLoadedMany<T>(
    kind: CacheKind,
    keys: readonly string[],
    check: (value: unknown, index: number) => Decoded<T>,
    load: () => Promise<T[]>,
    cacheable: (values: readonly T[]) => boolean,
  ): Promise<T[]> {
    const remote = this.#remote;
    if (remote === undefined) return await load();
    const started = performance.now();
    const entries = await remote.getMany(kind, keys);
    const answers: Array<T | undefined> = keys.map((key, index) => {
      const entry = entries === FAILED ? undefined : entries[index];
      if (entry === undefined) return undefined; // The failure was reported by the tier.
      if (entry.value === null || entry.value === undefined) {
        this.#onEvent?.({ type: "cache.miss", kind, key, tier: REMOTE, ...endedOk(started) });
        return undefined;
      }
      const checked = this.#checked.check(key, entry.value, (value) => check(value, index));
      if (checked.ok) {
        this.#onEvent?.({ type: "cache.hit", kind, key, tier: REMOTE, ...endedOk(started) });
        return checked.value;
      }
      const problems = checked.problems.map(problemText);
      const end: CallEnd = { durationMs: elapsedMs(started), outcome: "error" };
      this.#onEvent?.({ type: "cache.corrupt", kind, key, tier: REMOTE, problems, ...end });
      return undefined;
    });
    if (answers.every((answer) => answer !== undefined)) return answers as T[];
    const values = await load();
    if (!cacheable(values)) return values;
    keys.forEach((key, index) => {
      if (answers[index] !== undefined) return;
      // Without the lookup's generation (the lookup failed), a write-back could undo a change: none is made.
      const generation = entries === FAILED ? undefined : entries[index].generation;
      if (generation !== undefined) {
        this.#track(remote.setexIfGeneration(kind, key, structuredClone(values[index]), generation));
      }
    });
    return values;
  }

  /** Caches a value without waiting for it; `close()` waits for it. */
  #writeBack(remote: RemoteTier, kind: CacheKind, key: string, value: unknown): void {
    this.#track(remote.setex(kind, key, value));
  }

  /** Keeps a write-back until it lands, so that `close()` can wait for it. */
  #track(call: Promise<unknown>): void {
    const write: Promise<void> = call.then(() => {
      this.#pendingWrites.delete(write);
    });
    this.#pendingWrites.add(write);
  }
}

/** An in-flight read that identical concurrent reads join. */
interface Flight {
  promise: Promise<unknown>;
  joiners: number;
  /** The cache keys the read covers. */
  keys: readonly string[];
}

/** Identical concurrent reads share one run; each caller gets its own copy. */
class SingleFlight {
  readonly #flights = new Map<string, Flight>();

  run<T>(key: string, start: () => Promise<T>, keys: readonly string[] = [key]): Promise<T> {
    const existing = this.#flights.get(key);
    if (existing !== undefined) {
      existing.joiners++;
      return existing.promise.then((value) => structuredClone(value) as T);
    }
    const flight: Flight = { promise: Promise.resolve(), joiners: 0, keys };
    flight.promise = (async () => {
      try {
        return await start();
      } finally {
        // Before the promise settles, so nobody joins a finished flight; a forgotten one may have a successor.
        if (this.#flights.get(key) === flight) this.#flights.delete(key);
      }
    })();
    this.#flights.set(key, flight);
    // The first caller keeps the value itself unless others share it.
    return flight.promise.then((value) => (flight.joiners > 0 ? structuredClone(value) : value) as T);
  }

  /** Reads that start from now on never join a flight covering any of the keys (it may answer from before). */
  forget(keys: readonly string[]): void {
    for (const [id, flight] of this.#flights) {
      if (flight.keys.some((key) => keys.includes(key))) this.#flights.delete(id);
    }
  }
}

/**
 * The memo of checked cache entries. A check's verdict depends only on the
 * value's JSON, so the JSON text of the last value that passed is kept per
 * key: the same text again gets the same verdict and the same decoded value
 * (a fresh copy), for a `JSON.stringify` instead of a full decode on the hot
 * path. A changed entry is checked again.
 */
class CheckedTexts {
  readonly #passed = new Map<string, { text: string; decoded: string }>();

  check<T>(key: string, cached: unknown, check: (value: unknown) => Decoded<T>): Decoded<T> {
    let text: string | undefined;
    try {
      text = JSON.stringify(cached);
    } catch {
      text = undefined; // A cycle or a bigint: the check rejects it below.
    }
    const known = text === undefined ? undefined : this.#passed.get(key);
    if (known !== undefined && known.text === text) return { ok: true, value: JSON.parse(known.decoded) as T };
    const checked = check(cached);
    if (checked.ok && text !== undefined) {
      if (this.#passed.size >= MEMO_LIMIT) this.#passed.clear();
      this.#passed.set(key, { text, decoded: JSON.stringify(checked.value) });
    }
    return checked;
  }
}

/** A cache call waiting for its answer until its deadline. */
class PendingCall extends Pending {
  constructor(
    readonly operation: CacheOperation,
    readonly kind: CacheKind,
    readonly key: string,
    readonly started: number,
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
    options: { ttlSeconds: number; timeoutMs: number; report: (event: ReadThroughEvent) => void; clock?: Clock },
  ) {
    this.#backend = backend;
    this.#ttlSeconds = options.ttlSeconds;
    this.#timeoutMs = options.timeoutMs;
    this.#report = options.report;
    this.#deadlines = new Deadlines(this.#expire, options.clock ?? SYSTEM_CLOCK);
  }

  /** The cached value, `null` (or `undefined`) on a miss, `FAILED` when the call failed. */
  get(kind: CacheKind, key: string): Promise<unknown> {
    return this.#call("get", kind, key, undefined);
  }

  /** Caches a value for the TTL; resolves whether or not it landed. */
  setex(kind: CacheKind, key: string, value: unknown): Promise<unknown> {
    return this.#call("setex", kind, key, value);
  }

  /**
   * The values and generations of several keys in one round trip, or
   * `FAILED`. A backend without `getMany` is asked key by key, every
   * generation 0.
   */
  getMany(kind: CacheKind, keys: readonly string[]): Promise<Array<CacheEntry<unknown>> | typeof FAILED> {
    const backend = this.#backend;
    const send = backend.getMany === undefined
      ? () =>
        Promise.all(keys.map(async (key) => ({ value: await backend.get(key), generation: 0 } as CacheEntry<unknown>)))
      : () => backend.getMany!(keys);
    return this.#call("getMany", kind, keys.join(", "), send) as Promise<Array<CacheEntry<unknown>> | typeof FAILED>;
  }

  /** Caches a value for the TTL if the key's generation is unchanged (a backend without the method: unconditionally). */
  setexIfGeneration(kind: CacheKind, key: string, value: unknown, generation: number): Promise<unknown> {
    const backend = this.#backend;
    const send = backend.setexIfGeneration === undefined
      ? () => backend.setex(key, this.#ttlSeconds, value)
      : () => backend.setexIfGeneration!(key, this.#ttlSeconds, value, generation);
    return this.#call("setexIfGeneration", kind, key, send);
  }

  /** Drops entries and raises their generations (a backend without the method: deletes them). */
  invalidate(kind: CacheKind, keys: readonly string[]): Promise<unknown> {
    const backend = this.#backend;
    const send = backend.invalidate === undefined
      ? () => Promise.all(keys.map((key) => backend.delete(key)))
      : () => backend.invalidate!(keys);
    return this.#call("invalidate", kind, keys.join(", "), send);
  }

  #call(operation: CacheOperation, kind: CacheKind, key: string, value: unknown): Promise<unknown> {
    const started = performance.now();
    let answer: Promise<unknown>;
    try {
      answer = Promise.resolve(this.#send(operation, key, value));
    } catch (error) {
      this.#fail(operation, kind, key, started, failure(operation, key, error));
      return Promise.resolve(FAILED);
    }
    return new Promise((resolve) => {
      const pending = new PendingCall(operation, kind, key, started, resolve);
      const deadlines = this.#deadlines;
      deadlines.track(pending, this.#timeoutMs);
      answer.then(
        (reply) => {
          if (deadlines.settle(pending)) resolve(reply);
        },
        (error: unknown) => {
          if (!deadlines.settle(pending)) return;
          this.#fail(operation, kind, key, started, failure(operation, key, error));
          resolve(FAILED);
        },
      );
    });
  }

  /** Sends a call: `get` and `setex` by name, the others as the function the caller built. */
  #send(operation: CacheOperation, key: string, value: unknown): Promise<unknown> {
    if (operation === "get") return this.#backend.get(key);
    if (operation === "setex") return this.#backend.setex(key, this.#ttlSeconds, value);
    return (value as () => Promise<unknown>)();
  }

  #fail(operation: CacheOperation, kind: CacheKind, key: string, started: number, error: CacheError): void {
    this.#report({ type: "cache.error", kind, key, tier: REMOTE, operation, error, ...endedWith(started, error) });
  }

  /** Fails a call past its deadline (called by the sweep). */
  readonly #expire = (pending: PendingCall): void => {
    const { operation, kind, key, started } = pending;
    const reason = `no answer within ${this.#timeoutMs} ms`;
    this.#fail(
      operation,
      kind,
      key,
      started,
      new CacheError(`Failed to ${operation} cache key ${quote(key)}: ${reason}`),
    );
    pending.resolve(FAILED);
  };
}

/** A failed cache call as a `CacheError` naming the call and the key; the backend's own `CacheError` stays as it is. */
function failure(operation: CacheOperation, key: string, error: unknown): CacheError {
  return error instanceof CacheError
    ? error
    : new CacheError(`Failed to ${operation} cache key ${quote(key)}: ${describeAwsError(error)}`, { cause: error });
}
