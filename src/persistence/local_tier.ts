/**
 * The in-process tier of the read-through cache: a bounded LRU of decoded,
 * checked, deeply frozen values, each with its own expiry on an injected
 * clock. A hit is one `Map` lookup and one comparison with the clock: no
 * copy (the value is frozen), no decode, no allocation; it moves the entry to
 * the recent end only when it has drifted into the older half, so a hot
 * entry costs no `Map` reordering per hit.
 *
 * @module
 */

import { type Clock, SYSTEM_CLOCK } from "../core/time.ts";
import { deepFreeze } from "../core/values.ts";

/** Options of {@linkcode LocalTier}; the caller has checked them. */
export interface LocalTierOptions {
  /** How many entries the tier holds at most: a positive integer. Past it the least recently used goes. */
  maxEntries: number;
  /** How long an entry lives at most, in milliseconds: a positive number. */
  ttlMs: number;
  /**
   * The clock of the expiries.
   *
   * @default {SYSTEM_CLOCK}
   */
  clock?: Clock;
}

/** One value and when it expires. */
interface Entry {
  value: unknown;
  storedAt: number;
  expiresAt: number;
  /** When it last moved to the recent end, counted in moves. */
  seq: number;
}

/** A live entry, as {@linkcode LocalTier.peek} shows it. */
export interface LocalEntry {
  /** The frozen value. */
  readonly value: unknown;
  /** When it was stored, on the tier's clock. */
  readonly storedAt: number;
  /** When it expires, on the tier's clock. */
  readonly expiresAt: number;
}

/**
 * A bounded LRU of frozen values with per-entry expiry. An entry lives for
 * the tier's TTL or for the lifetime it is given, whichever is shorter, so
 * an entry copied from a Redis entry never outlives it.
 *
 * @example Keep a rule for a second
 * ```ts
 * import { LocalTier } from "./local_tier.ts";
 *
 * const tier = new LocalTier({ maxEntries: 1000, ttlMs: 1000 });
 * const rule = tier.set("calculation:FICA", { rate: "0.062" }, 60_000);
 * console.assert(tier.get("calculation:FICA") === rule && Object.isFrozen(rule));
 * ```
 */
export class LocalTier {
  readonly #entries = new Map<string, Entry>();
  readonly #maxEntries: number;
  readonly #ttlMs: number;
  readonly #clock: Clock;
  /** Moves to the recent end so far (stores and reorderings). */
  #seq = 0;

  /**
   * Creates an empty tier.
   *
   * @param options The bound, the TTL and the clock.
   */
  constructor(options: LocalTierOptions) {
    this.#maxEntries = options.maxEntries;
    this.#ttlMs = options.ttlMs;
    this.#clock = options.clock ?? SYSTEM_CLOCK;
  }

  /** How many entries the tier holds (expired ones not yet dropped included). */
  get size(): number {
    return this.#entries.size;
  }

  /**
   * The live value of a key, and marks it most recently used.
   *
   * @param key The key.
   * @param now The tier's clock now, when the caller has read it (a hit of several keys reads it once).
   * @returns The frozen value, or `undefined` when there is none or it expired (it is dropped).
   */
  get(key: string, now: number = this.#clock.now()): unknown {
    const entries = this.#entries;
    const entry = entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt <= now) {
      entries.delete(key);
      return undefined;
    }
    // Most recently used last (Map keeps insertion order), once the entry is in the older half:
    // every entry used since the last `maxEntries / 2` moves stays ahead of those not used.
    if (this.#seq - entry.seq >= this.#maxEntries / 2) {
      entries.delete(key);
      entry.seq = ++this.#seq;
      entries.set(key, entry);
    }
    return entry.value;
  }

  /**
   * Stores a value, deeply frozen, evicting the least recently used entry
   * when the tier is full.
   *
   * @param key The key.
   * @param value A JSON value; it is frozen in place.
   * @param lifetimeMs How long the value may live at most (the Redis entry's remaining TTL); `Infinity`: the tier's TTL.
   * @returns The frozen value.
   */
  set<T>(key: string, value: T, lifetimeMs: number): T {
    const frozen = deepFreeze(value);
    const lifetime = Math.min(this.#ttlMs, lifetimeMs);
    const entries = this.#entries;
    entries.delete(key);
    if (lifetime <= 0) return frozen;
    if (entries.size >= this.#maxEntries) entries.delete(entries.keys().next().value as string);
    const now = this.#clock.now();
    entries.set(key, { value: frozen, storedAt: now, expiresAt: now + lifetime, seq: ++this.#seq });
    return frozen;
  }

  /**
   * The live entry of a key, without marking it used.
   *
   * @param key The key.
   * @returns The entry, or `undefined` when there is none or it expired.
   */
  peek(key: string): LocalEntry | undefined {
    const entry = this.#live(key);
    return entry === undefined
      ? undefined
      : { value: entry.value, storedAt: entry.storedAt, expiresAt: entry.expiresAt };
  }

  /**
   * Whether a key has a live entry, without marking it used.
   *
   * @param key The key.
   * @param now The tier's clock now, when the caller has read it.
   * @returns Whether {@linkcode LocalTier.get} would answer it now.
   */
  has(key: string, now: number = this.#clock.now()): boolean {
    return this.#live(key, now) !== undefined;
  }

  #live(key: string, now: number = this.#clock.now()): Entry | undefined {
    const entry = this.#entries.get(key);
    return entry === undefined || entry.expiresAt <= now ? undefined : entry;
  }

  /**
   * Drops keys.
   *
   * @param keys The keys; a missing key is ignored.
   */
  delete(keys: Iterable<string>): void {
    for (const key of keys) this.#entries.delete(key);
  }

  /** Drops every entry. */
  clear(): void {
    this.#entries.clear();
  }
}
