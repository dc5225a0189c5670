/**
 * The read-through cache in front of a store's reads: the in-process tier,
 * single flight, the cache lookup bounded by a deadline, the check of cached
 * values, the write-back fenced by generation, and the one invalidation
 * entry point. A store says what to read (`kind`, `key` or `keys`), how to
 * tell a cached value is an answer (`check`) and how to load one (`load`);
 * this module decides where the answer comes from.
 *
 * Parts, each in one place: {@linkcode ReadThroughCache} only orchestrates
 * (in-process tier, then flight, then Redis tier, then load, then
 * write-back, and which event says so); `LocalTier` (`local_tier.ts`) is the
 * in-process LRU; an {@linkcode IInvalidationBus} carries invalidations
 * between processes; `RemoteTier` is the ONE guarded call path to the
 * {@linkcode ICacheBackend} (every operation bounded, every failure reported
 * and made harmless); `CheckedTexts` is the memo of checked entries;
 * `SingleFlight` shares identical concurrent reads.
 *
 * @module
 */

import { CacheError, quote } from "../core/errors.ts";
import type { CacheKind } from "../core/keys.ts";
import type { CachedEntry, ICacheBackend, IInvalidationBus } from "../core/protocols.ts";
import { guardHook } from "../core/hooks.ts";
import { type Decoded, problemText } from "../core/schema.ts";
import { type Clock, Deadlines, elapsedMs, Pending, SYSTEM_CLOCK } from "../core/time.ts";
import { type CacheTier, type CallEnd, endedOk, endedWith } from "../core/call_end.ts";
import { deepFreeze } from "../core/values.ts";
import { describeAwsError } from "./aws_errors.ts";
import { LocalTier } from "./local_tier.ts";

/** A call the read-through cache sends to its cache backend. */
export type CacheOperation = "get" | "setex" | "getMany" | "setexIfGeneration" | "invalidate" | "writeThrough";

/**
 * What a {@linkcode ReadThroughCache} reports. Each lookup reports exactly
 * one of `cache.hit`, `cache.miss`, `cache.corrupt` and `cache.error` (with
 * `operation: "get"` or `"getMany"`) per key; a lookup that must load
 * reads the generations in a second `getMany`, whose failure reports one
 * more `cache.error`; a failed write-back reports one `cache.error`
 * (`"setex"` or `"setexIfGeneration"`), a failed invalidation one
 * (`"invalidate"` or `"writeThrough"`).
 *
 * - `cache.hit`: a cached value was served; nothing was loaded. `tier` says
 *   which tier answered: `"local"` (in-process) or `"redis"` (the cache backend).
 * - `cache.miss`: the cache had no value; the read was loaded.
 * - `cache.corrupt`: the cache held a value that does not decode into what
 *   was asked for; it counts as a miss and the read was loaded.
 * - `cache.error`: a cache call failed or took longer than its timeout
 *   (`get`: the read was loaded; `setex`: the value was not cached).
 * - `cache.stale`: the load failed and `staleIfErrorSeconds` allowed the
 *   last value this process read, `ageMs` old, to be served instead
 *   (`tier: "local"`).
 *
 * Each ends a cache call, with the {@linkcode CallEnd} fields: `durationMs`
 * of the cache call, `outcome` `"ok"` for a hit, a miss or a stale answer,
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
  } & CallEnd)
  | ({ type: "cache.stale"; kind: CacheKind; key: string; tier: CacheTier; ageMs: number; error: unknown } & CallEnd);

/** The in-process tier's settings; the caller has checked them. */
export interface LocalCacheSettings {
  /** How many entries it holds at most: a positive integer. */
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
 * The least time an invalidation may take, in milliseconds: it is on the
 * write path, not a read's, and one that fails leaves the old value in the
 * cache for its TTL, so it gets longer than a lookup (a first connection
 * included).
 */
const MIN_INVALIDATE_TIMEOUT_MS = 1000;

/** How many last-read values `staleIfError` keeps at most. */
const STALE_LIMIT = 10_000;

/** How many checked entries the memo keeps before it starts over. */
const MEMO_LIMIT = 10_000;

/** What a failed cache call yields, once it is reported. */
const FAILED: unique symbol = Symbol("cache call failed");

/** The tier behind the cache backend: the shared one, Redis in production. */
const REMOTE: CacheTier = "redis";

/** The in-process tier. */
const LOCAL: CacheTier = "local";

/** A remote lookup's entry of one key, as `readMany` sees it: the value, its generation, how long it has left. */
interface ManyEntry {
  value: unknown;
  /** `undefined`: not read (every entry was a hit), or its read failed. */
  generation: number | undefined;
  ttlMs: number;
}

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
  readonly #clock: Clock;
  /** Moves on every invalidation: a read that started before one keeps nothing in process. */
  #epoch = 0;
  /** Moves when the bus comes back after a silence: a read that started before keeps nothing in process. */
  #restores = 0;

  /**
   * Creates the cache; nothing is sent until the first read.
   *
   * @param options The cache tiers, TTL and timeout, the bus, the event sink and the clock.
   */
  constructor(options: ReadThroughOptions) {
    // The store passes a guarded hook; one given directly is guarded here.
    this.#onEvent = options.onEvent === undefined ? undefined : guardHook(options.onEvent);
    const clock = options.clock ?? SYSTEM_CLOCK;
    this.#clock = clock;
    this.#remote = options.cache === undefined ? undefined : new RemoteTier(options.cache, {
      ttlSeconds: options.ttlSeconds,
      timeoutMs: options.timeoutMs,
      report: this.#onEvent,
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
    const hit = this.local<T>(kind, key);
    if (hit !== undefined) return Promise.resolve(hit);
    return this.#flights.run([key], () => this.#cachedOrLoaded(kind, key, check, load));
  }

  /**
   * Reads several entries that make one answer (a client's versions of a
   * rule and GLOBAL's) through the tiers: from the in-process tier when it
   * holds every one, else in one round trip to the cache; when an entry is
   * missing or fails its check, `load()` loads them all and the entries that
   * were not cached are written back, each only if its key was not
   * invalidated since it was looked up (see
   * {@linkcode ReadThroughCache.invalidate}). Nothing is written back, nor
   * kept in process, when `cacheable` says the answer is not to be cached.
   * Every entry is deeply frozen.
   *
   * @param kind What is read (named in events).
   * @param keys The cache keys, one per entry; identical concurrent reads are those with the same keys.
   * @param check Decodes a cached value of the entry at an index, or says why it is not one.
   * @param load Loads every entry from the source of truth, in the order of `keys`.
   * @param cacheable Whether a loaded answer may be cached.
   * @returns The entries, frozen.
   * @throws {Error} Whatever `load` throws; never a cache failure.
   */
  readMany<T>(
    kind: CacheKind,
    keys: readonly string[],
    check: (value: unknown, index: number) => Decoded<T>,
    load: () => Promise<T[]>,
    cacheable: (values: readonly T[]) => boolean,
  ): Promise<T[]> {
    const hits = this.#localMany<T>(kind, keys);
    if (hits !== undefined) return Promise.resolve(hits);
    return this.#flights.run(keys, () => this.#cachedOrLoadedMany(kind, keys, check, load, cacheable));
  }

  /**
   * The in-process tier's answer, if it has one and may give it (no tier,
   * or a bus that is not live: never): the hot path, which a caller tries
   * before building what `read` needs. Reports the hit.
   *
   * @param kind What is read (named in the event).
   * @param key The cache key.
   * @returns The frozen answer, or `undefined`.
   */
  local<T>(kind: CacheKind, key: string): T | undefined {
    const now = this.localNow();
    return now === undefined ? undefined : this.localAt<T>(kind, key, now);
  }

  /**
   * The clock reading of an in-process hit, when the in-process tier may
   * answer now (there is one, and its bus is live), else `undefined`. A hit
   * of several entries reads the clock once: this, then
   * {@linkcode ReadThroughCache.localAt} per entry.
   *
   * @returns The clock's `now()`, or `undefined`.
   */
  localNow(): number | undefined {
    if (this.#local === undefined) return undefined;
    const now = this.#clock.now();
    const bus = this.#bus;
    // The bus's deadline first: asking it whether it is live reads its clock again.
    return bus === undefined || now <= bus.liveUntil() || bus.isLive() ? now : undefined;
  }

  /**
   * The in-process tier's answer at a clock reading from
   * {@linkcode ReadThroughCache.localNow}, reported as a hit.
   *
   * @param kind What is read (named in the event).
   * @param key The cache key.
   * @param now The reading `localNow()` returned.
   * @returns The frozen answer, or `undefined`.
   */
  localAt<T>(kind: CacheKind, key: string, now: number): T | undefined {
    const started = this.#onEvent === undefined ? 0 : performance.now();
    const value = this.#local?.get(key, now);
    if (value === undefined) return undefined;
    if (this.#onEvent !== undefined) this.#onEvent({ type: "cache.hit", kind, key, tier: LOCAL, ...endedOk(started) });
    return value as T;
  }

  /**
   * Invalidates entries after their source of truth changed, in every tier:
   * reads that start afterwards in this process never join a read that
   * started before, nor keep what such a read found; this process's
   * in-process tier drops the entries; the cache tier drops them and raises
   * their generations (a backend without `invalidate`: deletes them), so no
   * reader anywhere writes back a value it loaded before the change; and the
   * bus tells every other process to drop them from its in-process tier.
   * Every invalidation of the library goes through this one method. The
   * cache call may take `timeoutMs` or 1 second, whichever is longer.
   * Failures are reported, never thrown: a key the cache could not drop keeps
   * its old value there until its TTL ends.
   *
   * @param kind What changed (named in events).
   * @param keys The cache keys.
   * @returns When the cache tier has dropped the entries and the bus published, or the calls failed (reported as `cache.error`, operation `invalidate`).
   */
  async invalidate(kind: CacheKind, keys: readonly string[]): Promise<void> {
    this.#flights.forget(keys);
    this.#drop(keys);
    await Promise.all([this.#remote?.invalidate(kind, keys), this.#bus?.publish(keys)]);
  }

  /**
   * Invalidates one entry after its writer stored a new value in the source
   * of truth, as {@linkcode ReadThroughCache.invalidate} does, except that
   * the cache tier keeps the new value (fenced by `version`, see
   * `ICacheBackend.writeThrough`; a backend without it just invalidates),
   * and the bus publishes only once the cache call is over: the processes
   * that drop the key read the new value back from the cache tier, not from
   * the source of truth. This process's in-process tier does not keep the
   * value: a late writer's older value must never land in it.
   *
   * @param kind What changed (named in events).
   * @param key The cache key.
   * @param value The value as the source of truth now holds it (what a load would return).
   * @param version Its version there: a positive integer that grows with every change.
   * @returns When the cache call is over and the bus published; failures are reported (`cache.error`, operation `writeThrough`), never thrown.
   */
  async writeThrough(kind: CacheKind, key: string, value: unknown, version: number): Promise<void> {
    this.#flights.forget([key]);
    this.#drop([key]);
    await this.#remote?.writeThrough(kind, key, value, version);
    await this.#bus?.publish([key]);
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

  /** Drops keys from this process's tiers; reads in flight keep nothing of theirs. */
  #drop(keys: readonly string[]): void {
    this.#epoch++;
    this.#local?.delete(keys);
    this.#stale?.tier.delete(keys);
  }

  /** Every entry from the in-process tier, or `undefined` when one is missing (or the tier may not answer). */
  #localMany<T>(kind: CacheKind, keys: readonly string[]): T[] | undefined {
    const now = this.localNow();
    if (now === undefined) return undefined;
    for (const key of keys) {
      if (!this.#local!.has(key, now)) return undefined;
    }
    return keys.map((key) => this.localAt<T>(kind, key, now)!);
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
      const started = this.#onEvent === undefined ? 0 : performance.now();
      const cached = await remote.get(kind, key, this.#local !== undefined);
      if (cached !== FAILED) {
        const value = this.#known<T>(kind, key, cached, started) ??
          await this.#decoded(kind, key, cached, check, started);
        if (value !== undefined) return this.#keep(epoch, restores, key, value, cached!.ttlMs);
      }
    }
    let value: T;
    try {
      value = deepFreeze(await load());
    } catch (error) {
      return this.#staleOr(kind, [key], error)[0] as T;
    }
    if (value === null) return value;
    if (remote !== undefined && epoch === this.#epoch) {
      // Frozen, so the write-back serialises what the caller got; the text is remembered as checked.
      this.#rememberText(key, value);
      this.#track(remote.setex(kind, key, value));
    }
    return this.#keep(epoch, restores, key, value, Infinity);
  }

  async #cachedOrLoadedMany<T>(
    kind: CacheKind,
    keys: readonly string[],
    check: (value: unknown, index: number) => Decoded<T>,
    load: () => Promise<T[]>,
    cacheable: (values: readonly T[]) => boolean,
  ): Promise<T[]> {
    const epoch = this.#epoch;
    const restores = this.#restores;
    const remote = this.#remote;
    const entries = remote === undefined ? FAILED : await this.#lookUpMany(remote, kind, keys, check);
    if (entries !== FAILED && entries.every((entry) => entry.value !== undefined)) {
      return keys.map((key, index) =>
        this.#keep(epoch, restores, key, entries[index].value as T, entries[index].ttlMs)
      );
    }
    let values: T[];
    try {
      values = deepFreeze(await load());
    } catch (error) {
      return this.#staleOr(kind, keys, error) as T[];
    }
    if (!cacheable(values)) return values;
    keys.forEach((key, index) => {
      const entry = entries === FAILED ? undefined : entries[index];
      if (entry?.value !== undefined) {
        this.#keep(epoch, restores, key, entry.value, entry.ttlMs);
        return;
      }
      // Without the lookup's generation (no cache, or the lookup failed), a write-back could undo a change: none is made.
      if (remote !== undefined && entry?.generation !== undefined && epoch === this.#epoch) {
        this.#rememberText(key, values[index]);
        this.#track(remote.setexIfGeneration(kind, key, values[index], entry.generation));
      }
      this.#keep(epoch, restores, key, values[index], Infinity);
    });
    return values;
  }

  /**
   * One round trip for every key: each entry checked (a hit's `value` is
   * the frozen answer, else `undefined`), each key reporting one event;
   * when one is not a hit, a second for the generations; or `FAILED`
   * (reported by the tier).
   */
  async #lookUpMany<T>(
    remote: RemoteTier,
    kind: CacheKind,
    keys: readonly string[],
    check: (value: unknown, index: number) => Decoded<T>,
  ): Promise<ManyEntry[] | typeof FAILED> {
    const started = this.#onEvent === undefined ? 0 : performance.now();
    const found = await remote.getMany(kind, keys, this.#local !== undefined, false);
    if (found === FAILED) return FAILED;
    const entries: ManyEntry[] = [];
    for (let index = 0; index < keys.length; index++) {
      // Only a text the memo does not know is decoded and checked: a hit costs no parse.
      const key = keys[index];
      const { entry } = found[index];
      const value = this.#known(kind, key, entry, started) ??
        await this.#decoded(kind, key, entry, (candidate) => check(candidate, index), started);
      entries.push({ value, generation: undefined, ttlMs: entry?.ttlMs ?? Infinity });
    }
    if (entries.every((entry) => entry.value !== undefined)) return entries;
    // A hit needs no generation, a write-back does: read them only now, still before the load, so that an
    // invalidation after this read refuses the write-back. Failed (reported): nothing is written back.
    const generations = await remote.getMany(kind, keys, false, true);
    if (generations !== FAILED) entries.forEach((entry, index) => (entry.generation = generations[index].generation));
    return entries;
  }

  /** The answer for an entry whose exact text was checked before, its hit reported; else `undefined`, nothing reported. */
  #known<T>(kind: CacheKind, key: string, entry: RemoteEntry | null, started: number): T | undefined {
    const known = entry === null ? undefined : this.#checked.known(key, entry.text) as T | undefined;
    if (known !== undefined) this.#onEvent?.({ type: "cache.hit", kind, key, tier: REMOTE, ...endedOk(started) });
    return known;
  }

  /** Decodes and checks an entry the memo does not know, its one event reported: the answer, or `undefined` (a miss, or corrupt). */
  async #decoded<T>(
    kind: CacheKind,
    key: string,
    entry: RemoteEntry | null,
    check: (value: unknown) => Decoded<T>,
    started: number,
  ): Promise<T | undefined> {
    const checked = entry === null ? null : await this.#checked.check(key, entry, check);
    if (checked === null) {
      this.#onEvent?.({ type: "cache.miss", kind, key, tier: REMOTE, ...endedOk(started) });
    } else if (checked.ok) {
      this.#onEvent?.({ type: "cache.hit", kind, key, tier: REMOTE, ...endedOk(started) });
      return checked.value;
    } else {
      this.#corrupt(kind, key, checked.problems.map(problemText), started);
    }
    return undefined;
  }

  #corrupt(kind: CacheKind, key: string, problems: string[], started: number): void {
    const end: CallEnd = { durationMs: elapsedMs(started), outcome: "error" };
    this.#onEvent?.({ type: "cache.corrupt", kind, key, tier: REMOTE, problems, ...end });
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

  /** The last values read within `staleIfErrorSeconds` of every key, reported, when the failure allows it; else the failure. */
  #staleOr(kind: CacheKind, keys: readonly string[], error: unknown): unknown[] {
    const stale = this.#stale;
    if (stale === undefined || !stale.settings.when(error)) throw error;
    const kept = keys.map((key) => stale.tier.peek(key));
    if (kept.some((entry) => entry === undefined)) throw error;
    const now = stale.clock.now();
    return keys.map((key, index) => {
      const { value, storedAt } = kept[index]!;
      this.#onEvent?.({
        type: "cache.stale",
        kind,
        key,
        tier: LOCAL,
        ageMs: now - storedAt,
        error,
        durationMs: 0,
        outcome: "ok",
      });
      return value;
    });
  }

  /** Remembers the text of a value about to be written back as checked: reading it back skips the decode. */
  #rememberText(key: string, value: unknown): void {
    let text: string | undefined;
    try {
      text = JSON.stringify(value);
    } catch {
      text = undefined; // Not JSON: the backend refuses it and the refusal is reported.
    }
    if (text !== undefined) this.#checked.remember(key, text, value);
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
  /** The cache keys the read covers. */
  keys: readonly string[];
}

/**
 * Identical concurrent reads (the same keys, in order) share one run, and
 * its (frozen) answer. A flight is found by its first key: no id is built
 * per read (a joined id is a new string to hash on every hit, where the
 * stores' keys are the same strings each time, their hashes cached).
 */
class SingleFlight {
  /** At most one flight per first key: a read whose first key another read in flight holds runs unshared. */
  readonly #flights = new Map<string, Flight>();

  run<T>(keys: readonly string[], start: () => Promise<T>): Promise<T> {
    const first = keys[0];
    const existing = this.#flights.get(first);
    if (existing !== undefined && sameKeys(existing.keys, keys)) return existing.promise as Promise<T>;
    let started: Promise<T>;
    try {
      started = start();
    } catch (error) {
      started = Promise.reject(error);
    }
    if (existing !== undefined) return started;
    const flight: Flight = { promise: started, keys };
    this.#flights.set(first, flight);
    // Left as the read settles, before its readers resume (the first reaction registered on it), so nobody joins a
    // finished flight; a forgotten one may have a successor. The readers get the read's own promise: no extra hop.
    const leave = (): void => {
      if (this.#flights.get(first) === flight) this.#flights.delete(first);
    };
    started.then(leave, leave);
    return started;
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
    return this.#checked(key, entry.text, decoded, check);
  }

  /** Remembers a checked answer (frozen) and its text. */
  remember(key: string, text: string, value: unknown): void {
    if (this.#passed.size >= MEMO_LIMIT) this.#passed.clear();
    this.#passed.set(key, { text, value });
  }

  #checked<T>(
    key: string,
    text: string | undefined,
    value: unknown,
    check: (value: unknown) => Decoded<T>,
  ): Decoded<T> {
    const checked = check(value);
    if (checked.ok) {
      deepFreeze(checked.value);
      if (text !== undefined) this.remember(key, text, checked.value);
    }
    return checked;
  }
}

/** A value's JSON text, or `undefined` when JSON cannot hold it (a cycle, a bigint: the check rejects it). */
function textOf(value: unknown): string | undefined {
  try {
    return JSON.stringify(value);
  } catch {
    return undefined;
  }
}

/** An entry the remote tier found: its text when known (`undefined`: a value JSON cannot hold). */
interface RemoteEntry {
  readonly text: string | undefined;
  readonly ttlMs: number;
  decode(): Promise<unknown>;
}

/** A key's entry as a remote lookup of several keys found it (`null`: a miss), and its generation. */
interface RemoteLookup {
  readonly entry: RemoteEntry | null;
  readonly generation: number;
}

/** A decoded value as an entry, for a backend without `getEntry` or `getEntries`. */
function entryOf(value: unknown, ttlMs: number = Infinity): RemoteEntry | null {
  if (value === null || value === undefined) return null;
  return { text: textOf(value), ttlMs, decode: () => Promise.resolve(value) };
}

/** A cache call waiting for its answer until its deadline. */
class PendingCall extends Pending {
  constructor(
    readonly operation: CacheOperation,
    readonly kind: CacheKind,
    readonly keys: CallKeys,
    readonly started: number,
    readonly resolve: (answer: unknown) => void,
  ) {
    super();
  }
}

/**
 * The cache backend behind ONE guarded call path: every operation is
 * bounded by the timeout (the deadlines share one timer, so a hit pays for
 * no timer of its own; a `getEntries` lookup is given the timeout and
 * bounded by the backend, as its contract says), and every failure,
 * thrown, rejected or late, is reported once as a `cache.error` and answers
 * `FAILED`, so no cache failure reaches a reader.
 */
class RemoteTier {
  readonly #backend: ICacheBackend;
  readonly #ttlSeconds: number;
  readonly #timeoutMs: number;
  /** The hook, when one was given: without it, no call is timed. */
  readonly #report: ((event: ReadThroughEvent) => void) | undefined;
  readonly #deadlines: Deadlines<PendingCall>;

  constructor(
    backend: ICacheBackend,
    options: {
      ttlSeconds: number;
      timeoutMs: number;
      report: ((event: ReadThroughEvent) => void) | undefined;
      clock: Clock;
    },
  ) {
    this.#backend = backend;
    this.#ttlSeconds = options.ttlSeconds;
    this.#timeoutMs = options.timeoutMs;
    this.#report = options.report;
    this.#deadlines = new Deadlines(this.#expire, options.clock);
  }

  /** The cached entry, `null` on a miss, `FAILED` when the call failed; `withTtl`: learn its remaining TTL. */
  get(kind: CacheKind, key: string, withTtl: boolean): Promise<RemoteEntry | null | typeof FAILED> {
    const backend = this.#backend;
    const send = backend.getEntry === undefined
      ? () => backend.get(key).then(entryOf)
      : () => backend.getEntry!(key, withTtl) as Promise<CachedEntry | null>;
    return this.#call("get", kind, key, send) as Promise<RemoteEntry | null | typeof FAILED>;
  }

  /** Caches a value for the TTL; resolves whether or not it landed. */
  setex(kind: CacheKind, key: string, value: unknown): Promise<unknown> {
    return this.#call("setex", kind, key, () => this.#backend.setex(key, this.#ttlSeconds, value));
  }

  /**
   * The entries of several keys as stored, in one round trip, with
   * `generations` their generations, with `withTtl` how long each has left;
   * or `FAILED`. A backend without `getEntries` is asked with `getMany` (its
   * values as entries), one without that key by key, every generation 0.
   */
  getMany(
    kind: CacheKind,
    keys: readonly string[],
    withTtl: boolean,
    generations: boolean,
  ): Promise<RemoteLookup[] | typeof FAILED> {
    const backend = this.#backend;
    // A backend's `getEntries` fails within the timeout it is given (its contract): a hit pays for one deadline,
    // the backend's.
    const boundedHere = backend.getEntries === undefined;
    const details = { ttl: withTtl, generations, timeoutMs: this.#timeoutMs };
    const send = !boundedHere
      ? () => backend.getEntries!(keys, details)
      : backend.getMany !== undefined
      ? () =>
        backend.getMany!(keys, details).then((found) =>
          found.map(({ value, generation, ttlMs }) => ({ entry: entryOf(value, ttlMs), generation }))
        )
      : () => Promise.all(keys.map(async (key) => ({ entry: entryOf(await backend.get(key)), generation: 0 })));
    return this.#call("getMany", kind, keys, send, boundedHere) as Promise<RemoteLookup[] | typeof FAILED>;
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
    return this.#call("invalidate", kind, keys, send);
  }

  /** Replaces an entry with its writer's value, fenced by version (a backend without the method: invalidates it). */
  writeThrough(kind: CacheKind, key: string, value: unknown, version: number): Promise<unknown> {
    const backend = this.#backend;
    if (backend.writeThrough === undefined) return this.invalidate(kind, [key]);
    return this.#call("writeThrough", kind, key, () => backend.writeThrough!(key, this.#ttlSeconds, value, version));
  }

  /**
   * `keys`: the call's key, or its keys (joined only when a failure names
   * them); `bounded`: whether to bound the call by the timeout (`false`: the
   * backend does, as it was asked to).
   */
  #call(
    operation: CacheOperation,
    kind: CacheKind,
    keys: CallKeys,
    send: () => Promise<unknown>,
    bounded = true,
  ): Promise<unknown> {
    const started = this.#report === undefined ? 0 : performance.now();
    let answer: Promise<unknown>;
    try {
      answer = Promise.resolve(send());
    } catch (error) {
      this.#fail(operation, kind, keys, started, error);
      return Promise.resolve(FAILED);
    }
    if (!bounded) {
      return answer.catch((error: unknown) => {
        this.#fail(operation, kind, keys, started, error);
        return FAILED;
      });
    }
    return new Promise((resolve) => {
      const pending = new PendingCall(operation, kind, keys, started, resolve);
      const deadlines = this.#deadlines;
      deadlines.track(pending, this.#deadlineOf(operation));
      answer.then(
        (reply) => {
          if (deadlines.settle(pending)) resolve(reply);
        },
        (error: unknown) => {
          if (!deadlines.settle(pending)) return;
          this.#fail(operation, kind, keys, started, error);
          resolve(FAILED);
        },
      );
    });
  }

  #deadlineOf(operation: CacheOperation): number {
    return operation === "invalidate" || operation === "writeThrough"
      ? Math.max(MIN_INVALIDATE_TIMEOUT_MS, this.#timeoutMs)
      : this.#timeoutMs;
  }

  /** Reports a failed call: `error` as a `CacheError` naming the call and its keys (a backend's own `CacheError` as it is). */
  #fail(operation: CacheOperation, kind: CacheKind, keys: CallKeys, started: number, error: unknown): void {
    if (this.#report === undefined) return;
    const key = keysText(keys);
    const failed = error instanceof CacheError
      ? error
      : new CacheError(`Failed to ${operation} cache key ${quote(key)}: ${describeAwsError(error)}`, { cause: error });
    this.#report({
      type: "cache.error",
      kind,
      key,
      tier: REMOTE,
      operation,
      error: failed,
      ...endedWith(started, failed),
    });
  }

  /** Fails a call past its deadline (called by the sweep). */
  readonly #expire = (pending: PendingCall): void => {
    const { operation, kind, keys, started } = pending;
    const key = keysText(keys);
    const reason = `no answer within ${this.#deadlineOf(operation)} ms`;
    this.#fail(
      operation,
      kind,
      keys,
      started,
      new CacheError(`Failed to ${operation} cache key ${quote(key)}: ${reason}`),
    );
    pending.resolve(FAILED);
  };
}

/** Whether two reads cover the same keys, in the same order. */
function sameKeys(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let index = 0; index < a.length; index++) {
    if (a[index] !== b[index]) return false;
  }
  return true;
}

/** A cache call's key, or its keys. */
type CallKeys = string | readonly string[];

/** How events and errors name a call's keys. */
function keysText(keys: CallKeys): string {
  return typeof keys === "string" ? keys : keys.join(", ");
}
