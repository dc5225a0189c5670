/**
 * The Redis {@linkcode ICacheBackend}, over node-redis v6 (the `redis`
 * package), which runs unchanged on Deno and Node.
 *
 * The cache never hangs and never throws a raw client error: every command
 * is bounded by a deadline, and every failure is a {@linkcode CacheError}
 * whose message names the action and the key, never a credential.
 *
 * @module
 */

import { clearTimeout, setTimeout } from "node:timers";
import { ClientClosedError, ClientOfflineError, createClient, createCluster, ErrorReply } from "redis";
import { CacheError, ConfigError, quote, redactedError, redactSecrets } from "../core/errors.ts";
import { guardHook } from "../core/hooks.ts";
import { checkCacheKey, MAX_CACHE_KEY_BYTES } from "../core/keys.ts";
import { type Backoff, backoffDelay, Deadlines, Pending } from "../core/time.ts";
import type { CachedEntry, CacheEntry, CacheEntryDetails, ICacheBackend, StoredEntry } from "../core/protocols.ts";
import { type CallEnd, reportEnd } from "../core/call_end.ts";
import { cacheVersionText, checkCacheTimeoutMs, encodeCacheWrite } from "../core/values.ts";
import {
  clusterNodesProblems,
  hookProblems,
  integerProblems,
  type OptionProblem,
  optionProblemsText,
  redisDbProblems,
  redisUrlProblems,
  timeoutMsProblems,
} from "./options.ts";

/**
 * What a {@linkcode RedisCacheBackend} reports through its `onEvent` hook.
 * The library never prints; route these to your logger or metrics.
 *
 * - `cache.corrupt`: a stored value was not valid JSON. It was treated as a
 *   miss and deleted; `key` is the caller's key, `error` the `SyntaxError`.
 * - `cache.error`: the connection failed or a background clean-up failed;
 *   `error` is a {@linkcode CacheError} with the client's error as `cause`.
 *   While Redis is down this repeats once per reconnection attempt (attempts
 *   are at most 2 seconds apart, randomly spread below that).
 * - `cache.reconnect`: the connection was lost and is back.
 * - `redis.command`: a command ended: `command` (see {@linkcode RedisCommand}),
 *   the caller's `key`, and the {@linkcode CallEnd} fields (the time spent
 *   waiting for a connection included).
 *
 * The `cache.*` events carry `tier: "redis"`.
 *
 * No event ever carries a password or a URL's credentials.
 *
 * @example Log cache events
 * ```ts
 * import type { CacheEvent } from "@bluestar/persistence";
 *
 * const onEvent = (event: CacheEvent): void => {
 *   if (event.type === "cache.corrupt") console.warn(`dropped corrupt cache entry ${event.key}`);
 *   else if (event.type === "cache.error") console.warn(event.error.message);
 * };
 * onEvent({ type: "cache.reconnect", tier: "redis" });
 * ```
 */
export type CacheEvent =
  | { type: "cache.corrupt"; tier: "redis"; key: string; error: unknown }
  | { type: "cache.error"; tier: "redis"; key?: string; error: CacheError }
  | { type: "cache.reconnect"; tier: "redis" }
  | ({ type: "redis.command"; command: RedisCommand; key: string } & CallEnd);

/** The Redis commands the backend sends, as `redis.command` events name them. */
export type RedisCommand = "GET" | "SET" | "DEL" | "MGET" | "EVAL" | "PTTL";

/**
 * The slice of the node-redis v6 client and cluster API the backend uses:
 * every `RedisClientType` and `RedisClusterType` (any modules, RESP 2 or 3)
 * from the `redis` package satisfies it. Single-key `GET`, `SET ... EX`
 * and `DEL` are sent through it, and for the fenced calls `MGET` and `EVAL`
 * of a key with its generation key (one hash slot).
 *
 * @example Pass the application's own client
 * ```ts
 * import { createClient } from "redis";
 * import { RedisCacheBackend, type RedisCacheClient } from "@bluestar/persistence";
 *
 * const client: RedisCacheClient = createClient({ url: "redis://127.0.0.1:6379", disableOfflineQueue: true });
 * const cache = new RedisCacheBackend({ client });
 * ```
 */
export interface RedisCacheClient {
  /** Whether the client has been connected and not closed. */
  readonly isOpen: boolean;
  /** Whether the client can send commands now. */
  readonly isReady: boolean;
  /** Opens the connection. */
  connect(): Promise<unknown>;
  /** `GET key`. */
  get(key: string): Promise<unknown>;
  /** `SET key value EX ttl`. */
  set(key: string, value: string, options: { expiration: { type: "EX"; value: number } }): Promise<unknown>;
  /** `DEL key`. */
  del(key: string): Promise<unknown>;
  /** `MGET key ...`: needed by `getMany` and `getEntries` (every node-redis client has it). */
  mGet?(keys: string[]): Promise<unknown>;
  /** `EVAL script numkeys key ... arg ...`: needed by `setexIfGeneration` and `invalidate` (every node-redis client has it). */
  eval?(script: string, options: { keys: string[]; arguments: string[] }): Promise<unknown>;
  /** `PTTL key`; without it an entry's remaining TTL counts as unknown. */
  pTTL?(key: string): Promise<unknown>;
  /** Adds an event listener (`error`, `ready`, `connect`). */
  on(event: "error" | "ready" | "connect", listener: (...args: unknown[]) => void): unknown;
  /** Removes an event listener. */
  off(event: "error" | "ready" | "connect", listener: (...args: unknown[]) => void): unknown;
}

/**
 * Options of {@linkcode RedisCacheBackend}. Give either `client`, or a
 * `url`, or `host` / `port` / `db` / `username` / `password` / `tls`.
 */
export interface RedisCacheOptions {
  /**
   * Where Redis is: `redis://[user:password@]host[:port][/db]`, or
   * `rediss://...` for TLS. Credentials are percent-decoded and never
   * appear in a message or an event.
   *
   * @default {undefined}
   */
  url?: string;
  /**
   * Redis' host name or IP address (when no `url` is given).
   *
   * @default {"127.0.0.1"}
   */
  host?: string;
  /**
   * Redis' port (when no `url` is given).
   *
   * @default {6379}
   */
  port?: number;
  /**
   * The database number (when no `url` is given).
   *
   * @default {0}
   */
  db?: number;
  /**
   * The ACL user name (when no `url` is given).
   *
   * @default {undefined}
   */
  username?: string;
  /**
   * The password (when no `url` is given). Never appears in a message or an event.
   *
   * @default {undefined}
   */
  password?: string;
  /**
   * Whether to connect with TLS (when no `url` is given).
   *
   * @default {false}
   */
  tls?: boolean;
  /**
   * A namespace prepended to every key (`"payroll:"` makes key `"k"` the
   * Redis key `"payroll:k"`). Messages and events name the caller's key.
   *
   * @default {""}
   */
  keyPrefix?: string;
  /**
   * How long one TCP connection attempt may take, in milliseconds. Also
   * bounds {@linkcode RedisCacheBackend.connect}.
   *
   * @default {1000}
   */
  connectTimeoutMs?: number;
  /**
   * How long one call (`get`, `setex`, `delete`) may take in all, waiting
   * for the first connection included, in milliseconds. Past it the call
   * fails with a {@linkcode CacheError}.
   *
   * @default {250}
   */
  commandTimeoutMs?: number;
  /**
   * The nodes of a Redis Cluster to start from, as `host:port`: the backend
   * creates a node-redis cluster client (`createCluster`) that discovers the
   * others, owns it and closes it. Not with `url`, `host`, `port`, `db`,
   * `tls` or `client`; `username` and `password` apply to every node.
   *
   * @default {undefined}
   */
  clusterNodes?: readonly string[];
  /**
   * An existing node-redis client or cluster to use instead of creating one.
   * The backend does not own it: {@linkcode RedisCacheBackend.close} leaves
   * it open. A client that is not open yet is connected on first use.
   *
   * @default {undefined}
   */
  client?: RedisCacheClient;
  /**
   * Receives corrupt entries, connection errors and reconnections. A hook
   * that throws or returns a rejected promise changes nothing.
   *
   * @default {undefined}
   */
  onEvent?: (event: CacheEvent) => void;
}

/** The default of {@linkcode RedisCacheOptions.commandTimeoutMs}. */
const DEFAULT_COMMAND_TIMEOUT_MS = 250;
/** The default of {@linkcode RedisCacheOptions.connectTimeoutMs}. */
const DEFAULT_CONNECT_TIMEOUT_MS = 1000;
/** Reconnection waits: exponential from 100 ms, at most 2 s between attempts, with full jitter. */
const RECONNECT_BACKOFF: Backoff = { baseDelayMs: 100, maxDelayMs: 2000 };

/** A client the backend created, which it may destroy. */
interface CommandClient extends RedisCacheClient {
  destroy(): void;
  /** Adds an event listener; `terminated`: the client gave up its connection for good. */
  on(event: "error" | "ready" | "connect" | "terminated", listener: (...args: unknown[]) => void): unknown;
}

/** The commands, dispatched without a per-call closure. */
const GET = 0;
const SET = 1;
const DEL = 2;
const MGET = 3;
const SET_IF_GENERATION = 4;
const INVALIDATE = 5;
const PTTL = 6;
const WRITE_THROUGH = 7;
const MGET_VALUES = 8;
type Op =
  | typeof GET
  | typeof SET
  | typeof DEL
  | typeof MGET
  | typeof SET_IF_GENERATION
  | typeof INVALIDATE
  | typeof PTTL
  | typeof WRITE_THROUGH
  | typeof MGET_VALUES;

/** The action each command performs, for messages. */
const ACTIONS: readonly string[] = [
  "get cache key",
  "cache key",
  "delete cache key",
  "get cache keys",
  "cache key",
  "invalidate cache key",
  "get the TTL of cache key",
  "write through cache key",
  "get cache keys",
];
const COMMANDS: readonly RedisCommand[] = ["GET", "SET", "DEL", "MGET", "EVAL", "EVAL", "PTTL", "EVAL", "MGET"];

/**
 * Where a key's generation lives: the key, then NUL (which no cache key
 * holds, so it names no other entry), then `gen`. It keeps the key's hash
 * tag, so on a Redis Cluster it shares the key's slot.
 */
const GENERATION_SUFFIX = "\u0000gen";

/** Where the highest version written through for a key lives, as its generation does (same hash tag). */
const VERSION_SUFFIX = "\u0000ver";

/** How long a generation outlives its last invalidation: far longer than any read between a lookup and its write-back. */
const GENERATION_TTL_SECONDS = 86_400;

/** Stores the value only when the generation is still the one read (absent counts as 0). */
const SET_IF_GENERATION_SCRIPT = `if (redis.call("GET", KEYS[2]) or "0") == ARGV[1] then
  redis.call("SET", KEYS[1], ARGV[2], "EX", ARGV[3])
  return 1
end
return 0`;

/**
 * Raises the generation, then stores the value and its version when the
 * version is above the highest one written through, else drops the value;
 * in one step. The version outlives the value as the generation does.
 */
const WRITE_THROUGH_SCRIPT = `redis.call("INCR", KEYS[2])
redis.call("EXPIRE", KEYS[2], ARGV[4])
if tonumber(ARGV[1]) > tonumber(redis.call("GET", KEYS[3]) or "0") then
  redis.call("SET", KEYS[1], ARGV[2], "EX", ARGV[3])
  redis.call("SET", KEYS[3], ARGV[1], "EX", ARGV[4])
  return 1
end
redis.call("DEL", KEYS[1])
return 0`;

/** Drops the value and raises the generation, in one step. */
const INVALIDATE_SCRIPT = `redis.call("DEL", KEYS[1])
redis.call("INCR", KEYS[2])
redis.call("EXPIRE", KEYS[2], ARGV[1])
return 1`;

/**
 * The command options of the clients the backend creates: no node-redis
 * timeout of its own (5 s by default, an `AbortSignal.timeout` timer per
 * command, a cost on every hit), since every command is already bounded by
 * `commandTimeoutMs` here.
 */
const NO_CLIENT_TIMEOUT = { timeout: 0 };

/** Why a call could not be sent. */
type NotReady = "closed" | "offline" | "timeout";

/** Where to connect, resolved from the options. */
interface Target {
  host: string;
  port: number;
  db: number;
  tls: boolean;
  username?: string;
  password?: string;
}

/**
 * An {@linkcode ICacheBackend} on Redis. Values are stored as JSON text with
 * `SET key json EX ttl`; a value that does not decode is a miss, reported
 * through `onEvent` and deleted.
 *
 * The backend connects on first use (or eagerly, through
 * {@linkcode RedisCacheBackend.connect}) and reconnects by itself, with a
 * backoff of at most 2 seconds, when Redis comes back. No call waits longer
 * than `commandTimeoutMs`: while Redis is down, calls fail at once with a
 * {@linkcode CacheError} (the offline queue is disabled).
 *
 * Each command touches one hash slot (single keys, or a key and its
 * generation; `getMany`'s keys share a hash tag), so the backend works on a
 * Redis Cluster as on a single server: pass a cluster client as `client`.
 *
 * @example Cache a rule on a local Redis
 * ```ts
 * import { RedisCacheBackend } from "@bluestar/persistence";
 *
 * const cache = new RedisCacheBackend({ url: "redis://127.0.0.1:6379/0", keyPrefix: "payroll:" });
 * try {
 *   await cache.setex("rule:FICA_SS", 300, { rate: "0.062", wageBase: "184500" });
 *   const rule = await cache.get<{ rate: string }>("rule:FICA_SS");
 *   console.assert(rule?.rate === "0.062");
 * } finally {
 *   await cache.close();
 * }
 * ```
 *
 * @example Share a Redis Cluster client the application owns
 * ```ts
 * import { createCluster } from "redis";
 * import { RedisCacheBackend } from "@bluestar/persistence";
 *
 * const cluster = createCluster({
 *   rootNodes: [{ url: "redis://10.0.0.1:6379" }, { url: "redis://10.0.0.2:6379" }],
 *   defaults: { disableOfflineQueue: true },
 * });
 * cluster.on("error", () => {});
 * await cluster.connect();
 *
 * const cache = new RedisCacheBackend({ client: cluster, keyPrefix: "payroll:" });
 * await cache.setex("rule:FICA_SS", 300, { rate: "0.062" });
 * await cache.close(); // leaves the cluster open: the application owns it
 * await cluster.close();
 * ```
 */
export class RedisCacheBackend implements ICacheBackend {
  /** The client in use; a backend that owns its clients replaces a terminated one (see #newClient). */
  #client: CommandClient;
  readonly #owned: boolean;
  /** The nodes of a cluster the backend created (and owns), for messages; `undefined`: no such cluster. */
  #clusterNodes: string | undefined = undefined;
  /** Where a backend that owns its clients connects them; `undefined` for a client passed in. */
  readonly #target: Target | undefined;
  /** Ends the socket of the current owned client, also one still connecting. */
  #abort: AbortController | undefined = undefined;
  /** The wait before the next connection attempt of an owned client. */
  #retryTimer: ReturnType<typeof setTimeout> | undefined = undefined;
  /** Failed connection attempts since the connection was last ready. */
  #attempts = 0;
  readonly #prefix: string;
  readonly #commandTimeoutMs: number;
  readonly #connectTimeoutMs: number;
  /** Whether a hook was given: events that cost something to build are built only then. */
  readonly #reporting: boolean;
  readonly #emit: (event: CacheEvent) => void;
  /** Where Redis is, without credentials, for connection messages. */
  readonly #where: string;
  /** Text that must never leave the backend: the password, the URL, its user info. */
  readonly #secrets: string[];
  /** Callbacks of calls waiting for the connection; each is called on any connection event. */
  readonly #waiters = new Set<() => void>();
  /** The deadlines of the commands in flight. */
  readonly #deadlines: Deadlines<PendingCommand>;
  #connectStarted = false;
  #everReady: boolean;
  /** Whether an error was seen since the connection was last ready: calls then fail at once. */
  #offline = false;
  #lastError: unknown = undefined;
  #closed = false;

  /**
   * Creates the backend. Nothing is sent until the first call.
   *
   * @param options Where Redis is (or the client to use), the key prefix, the timeouts and the event hook.
   * @throws {ConfigError} Listing every problem, when the options are malformed or contradict each other.
   */
  constructor(options: RedisCacheOptions = {}) {
    this.#deadlines = new Deadlines(this.#expire);
    const problems = cacheOptionProblems(options);
    if (problems.length > 0) throw new ConfigError(`Invalid Redis cache options: ${optionProblemsText(problems)}`);
    this.#commandTimeoutMs = options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
    this.#connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    this.#prefix = options.keyPrefix ?? "";
    this.#reporting = options.onEvent !== undefined;
    this.#emit = guardHook(options.onEvent);
    this.#secrets = [];
    let target: Target | undefined;
    let cluster: CommandClient | undefined;
    if (options.clusterNodes !== undefined) {
      if (options.password !== undefined) this.#secrets.push(String(options.password));
      cluster = createCluster({
        rootNodes: options.clusterNodes.map((node) => ({ url: `redis://${node}` })),
        commandOptions: NO_CLIENT_TIMEOUT,
        defaults: {
          username: options.username,
          password: options.password,
          disableOfflineQueue: true,
          socket: {
            connectTimeout: this.#connectTimeoutMs,
            reconnectStrategy: (retries: number) => backoffDelay(RECONNECT_BACKOFF, retries + 1),
          },
        },
      }) as unknown as CommandClient;
      this.#clusterNodes = options.clusterNodes.join(", ");
    } else if (options.client === undefined) {
      target = resolveTarget(options, this.#secrets);
    }

    this.#target = target;
    if (target === undefined) {
      this.#client = cluster ?? options.client as unknown as CommandClient;
      this.#owned = false;
      this.#where = cluster === undefined ? "Redis" : `Redis Cluster (nodes ${this.#clusterNodes})`;
      this.#client.on("error", this.#onClientError);
      this.#client.on("ready", this.#onClientReady);
      this.#client.on("connect", this.#onClientReady);
    } else {
      this.#owned = true;
      this.#client = this.#newClient(target);
      const host = target.host.includes(":") ? `[${target.host}]` : target.host;
      this.#where = `Redis at ${target.tls ? "rediss" : "redis"}://${host}:${target.port}/${target.db}`;
    }
    this.#everReady = this.#client.isReady;
  }

  /**
   * Creates the backend and waits for its first connection, so a wrong
   * address or password fails at start-up rather than as cache misses.
   *
   * @param options As for the constructor.
   * @returns The connected backend.
   * @throws {ConfigError} When the options are malformed.
   * @throws {CacheError} When Redis cannot be reached within `connectTimeoutMs` (the client is closed).
   *
   * @example Fail fast at start-up
   * ```ts
   * import { RedisCacheBackend } from "@bluestar/persistence";
   *
   * const cache = await RedisCacheBackend.connect({ url: "redis://127.0.0.1:6379", connectTimeoutMs: 2000 });
   * await cache.close();
   * ```
   */
  static async connect(options: RedisCacheOptions = {}): Promise<RedisCacheBackend> {
    const backend = new RedisCacheBackend(options);
    const notReady = await backend.#whenReady(backend.#connectTimeoutMs);
    if (notReady !== undefined) {
      const reason = notReady === "offline"
        ? backend.#describe(backend.#lastError)
        : backend.#reason(notReady, backend.#connectTimeoutMs);
      const cause = notReady === "offline" ? backend.#lastError : undefined;
      await backend.close();
      throw new CacheError(`Failed to connect to ${backend.#where}: ${reason}`, scrubbed(cause, backend.#secrets));
    }
    return backend;
  }

  /**
   * A cached value. A stored value that is not valid JSON is a miss: it is
   * reported as a `cache.corrupt` event and deleted.
   *
   * @param key The key (the prefix is added).
   * @returns The value, or `null` on a miss.
   * @throws {CacheError} When Redis cannot be reached, refuses or does not answer within `commandTimeoutMs`.
   * @throws {InvalidInputError} When the key is empty, over 1024 bytes or has a control character.
   */
  async get<T = unknown>(key: string): Promise<T | null> {
    checkCacheKey(key);
    const reply = await this.#exec(GET, key, "", 0);
    if (reply === null || reply === undefined) return null;
    return await this.#decode(key, typeof reply === "string" ? reply : textOf(reply)) as T | null;
  }

  /**
   * An entry as stored, not yet decoded (see {@linkcode ICacheBackend.getEntry}):
   * `GET`, and with `withTtl` also `PTTL` in the same round trip (node-redis
   * pipelines commands sent in one tick).
   *
   * @param key The key (the prefix is added).
   * @param withTtl Whether to ask for the entry's remaining TTL.
   * @returns The entry, or `null` on a miss.
   * @throws {CacheError} When Redis cannot be reached, refuses or does not answer within `commandTimeoutMs`.
   * @throws {InvalidInputError} When the key is empty, over 1024 bytes or has a control character.
   */
  async getEntry(key: string, withTtl: boolean): Promise<CachedEntry | null> {
    checkCacheKey(key);
    let reply: unknown;
    let ttlMs = Infinity;
    if (withTtl) {
      const [value, pttl] = await Promise.all([this.#exec(GET, key, "", 0), this.#exec(PTTL, key, "", 0)]);
      reply = value;
      ttlMs = remainingMs(pttl);
    } else {
      reply = await this.#exec(GET, key, "", 0);
    }
    if (reply === null || reply === undefined) return null;
    const text = typeof reply === "string" ? reply : textOf(reply);
    return { text, ttlMs, decode: () => this.#decode(key, text) };
  }

  /** A stored text as a value; one that is not JSON is a miss, reported and deleted. */
  async #decode(key: string, text: string): Promise<unknown> {
    try {
      return JSON.parse(text);
    } catch (error) {
      await this.#dropCorrupt(key, error);
      return null;
    }
  }

  /**
   * Stores a value for a number of seconds: `SET key json EX ttl`.
   *
   * @param key The key (the prefix is added).
   * @param ttlSeconds How long the value lives: a positive integer.
   * @param value A JSON value.
   * @returns Once Redis has stored it.
   * @throws {CacheError} When Redis cannot be reached, refuses (`READONLY`, `OOM`) or does not answer in time.
   * @throws {InvalidInputError} When the key, the TTL or the value is not usable; nothing is sent.
   */
  async setex(key: string, ttlSeconds: number, value: unknown): Promise<void> {
    const json = encodeCacheWrite(key, ttlSeconds, value);
    await this.#exec(SET, key, json, ttlSeconds);
  }

  /**
   * Removes a value; removing a missing key is not an error.
   *
   * @param key The key (the prefix is added).
   * @returns Once Redis has removed it.
   * @throws {CacheError} When Redis cannot be reached, refuses or does not answer in time.
   * @throws {InvalidInputError} When the key is not usable; nothing is sent.
   */
  async delete(key: string): Promise<void> {
    checkCacheKey(key);
    await this.#exec(DEL, key, "", 0);
  }

  /**
   * Several values and the generation of each key in ONE `MGET` (of the
   * keys and their generation keys; of the keys alone without
   * `generations`). A value that is not JSON is a miss,
   * reported and deleted. On a Redis Cluster the keys of one call must share
   * a hash tag (`{...}`), as the rules store's keys of one read do.
   *
   * @param keys The keys (the prefix is added).
   * @param details `ttl`: learn each entry's remaining TTL (`PTTL`, pipelined with the `MGET`); `generations: false`: read no generation (each is 0); `timeoutMs`: bound the call tighter than `commandTimeoutMs`.
   * @returns One entry per key, in order.
   * @throws {CacheError} When Redis cannot be reached, refuses (`CROSSSLOT`) or does not answer in time (`details.timeoutMs`, or `commandTimeoutMs` when shorter).
   * @throws {InvalidInputError} When a key or `details.timeoutMs` is not usable; nothing is sent.
   */
  async getMany<T = unknown>(keys: readonly string[], details: CacheEntryDetails = {}): Promise<Array<CacheEntry<T>>> {
    const stored = await this.#readMany(keys, details);
    const corrupt: Array<Promise<void>> = [];
    const entries = stored.map(({ text, generation, ttlMs }, index): CacheEntry<T> => {
      const entry: CacheEntry<T> = { value: null, generation };
      if (ttlMs !== undefined) entry.ttlMs = ttlMs;
      if (text === undefined) return entry;
      try {
        entry.value = JSON.parse(text) as T;
      } catch (error) {
        corrupt.push(this.#dropCorrupt(keys[index], error));
      }
      return entry;
    });
    if (corrupt.length > 0) await Promise.all(corrupt);
    return entries;
  }

  /**
   * What {@linkcode RedisCacheBackend.getMany} reads, in the same ONE round
   * trip, with each entry's text not yet decoded (see
   * {@linkcode ICacheBackend.getEntries}): an entry that is not JSON decodes
   * to `null`, reported and deleted.
   *
   * @param keys The keys (the prefix is added).
   * @param details `ttl`: learn each entry's remaining TTL (`PTTL`, pipelined with the `MGET`); `generations: false`: read no generation (each is 0); `timeoutMs`: bound the call tighter than `commandTimeoutMs`.
   * @returns One entry per key, in order.
   * @throws {CacheError} When Redis cannot be reached, refuses (`CROSSSLOT`) or does not answer in time (`details.timeoutMs`, or `commandTimeoutMs` when shorter).
   * @throws {InvalidInputError} When a key or `details.timeoutMs` is not usable; nothing is sent.
   */
  async getEntries(keys: readonly string[], details: CacheEntryDetails = {}): Promise<StoredEntry[]> {
    const stored = await this.#readMany(keys, details);
    return stored.map(({ text, generation, ttlMs }, index) => ({
      entry: text === undefined
        ? null
        : { text, ttlMs: ttlMs ?? Infinity, decode: () => this.#decode(keys[index], text) },
      generation,
    }));
  }

  /** Each key's stored text (`undefined` on a miss), generation and, with `ttl`, remaining TTL: one `MGET` (and `PTTL`s) round trip. */
  async #readMany(keys: readonly string[], details: CacheEntryDetails): Promise<StoredText[]> {
    const withTtl = details.ttl === true;
    const mget = details.generations === false ? MGET_VALUES : MGET;
    const given = checkCacheTimeoutMs(details.timeoutMs);
    const timeoutMs = given === undefined ? this.#commandTimeoutMs : Math.min(given, this.#commandTimeoutMs);
    keys.forEach(checkCacheKey);
    if (keys.length === 0) return [];
    // The PTTLs go out in the same tick as the MGET: node-redis pipelines them into one round trip.
    const [reply, ...pttls] = withTtl
      ? await Promise.all([
        this.#exec(mget, keys[0], "", 0, keys, timeoutMs),
        ...keys.map((key) => this.#exec(PTTL, key, "", 0, undefined, timeoutMs)),
      ])
      : [await this.#exec(mget, keys[0], "", 0, keys, timeoutMs)];
    const replies = Array.isArray(reply) ? reply : [];
    return keys.map((_, index) => {
      const stored = replies[index];
      return {
        text: stored === null || stored === undefined
          ? undefined
          : typeof stored === "string"
          ? stored
          : textOf(stored),
        generation: Number(replies[keys.length + index] ?? 0),
        ttlMs: withTtl ? remainingMs(pttls[index]) : undefined,
      };
    });
  }

  /**
   * Stores a value only when the key's generation is still the one given,
   * in one script run (`EVAL`), so no invalidation can come in between.
   *
   * @param key The key (the prefix is added).
   * @param ttlSeconds How long the value lives: a positive integer.
   * @param value A JSON value.
   * @param generation The generation read with {@linkcode RedisCacheBackend.getMany}.
   * @returns Whether the value was stored.
   * @throws {CacheError} When Redis cannot be reached, refuses or does not answer in time.
   * @throws {InvalidInputError} When the key, the TTL or the value is not usable; nothing is sent.
   */
  async setexIfGeneration(key: string, ttlSeconds: number, value: unknown, generation: number): Promise<boolean> {
    const json = encodeCacheWrite(key, ttlSeconds, value);
    return Number(await this.#exec(SET_IF_GENERATION, key, json, ttlSeconds, [String(generation)])) === 1;
  }

  /**
   * Drops values and raises their generations, one script run (`EVAL`) per
   * key: a reader that looked a key up before cannot write its value back.
   *
   * @param keys The keys (the prefix is added).
   * @returns Once Redis has dropped every one.
   * @throws {CacheError} When Redis cannot be reached, refuses or does not answer in time.
   * @throws {InvalidInputError} When a key is not usable; nothing is sent.
   */
  async invalidate(keys: readonly string[]): Promise<void> {
    keys.forEach(checkCacheKey);
    await Promise.all(keys.map((key) => this.#exec(INVALIDATE, key, "", GENERATION_TTL_SECONDS)));
  }

  /**
   * {@linkcode ICacheBackend.writeThrough} in one script run (`EVAL`): the
   * generation raised, then the value stored when its version is above the
   * highest one written through for the key (kept beside the generation,
   * in the key's slot), else the value dropped.
   *
   * @param key The key (the prefix is added).
   * @param ttlSeconds How long the value lives: a positive integer.
   * @param value A JSON value.
   * @param version The value's version in the source of truth: a positive integer.
   * @returns Whether the value was stored.
   * @throws {CacheError} When Redis cannot be reached, refuses or does not answer in time.
   * @throws {InvalidInputError} When the key, the TTL, the value or the version is not usable; nothing is sent.
   */
  async writeThrough(key: string, ttlSeconds: number, value: unknown, version: number): Promise<boolean> {
    const json = encodeCacheWrite(key, ttlSeconds, value);
    const versionText = cacheVersionText(key, version);
    return Number(await this.#exec(WRITE_THROUGH, key, json, ttlSeconds, [versionText])) === 1;
  }

  /**
   * Closes the backend: later calls fail with a {@linkcode CacheError}. A
   * client the backend created is destroyed (calls still in flight fail) and
   * its socket ended at any point of a connection: still connecting (TCP,
   * TLS), during the handshake, ready, or waiting to reconnect; nothing of
   * it keeps the process alive. A client passed in as `client` is left open.
   * Closing twice is a no-op.
   *
   * @returns Once closed.
   */
  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    this.#notify();
    if (this.#owned) {
      clearTimeout(this.#retryTimer);
      // Our listeners stay on our own client, so an error it emits while
      // being torn down is never unhandled; #closed mutes them.
      this.#client.destroy();
      // destroy() ends the socket node-redis holds, which it has only once
      // the TCP (and TLS) connect completed; the signal ends one still connecting.
      this.#abort?.abort();
    } else if (this.#clusterNodes !== undefined) {
      clearTimeout(this.#retryTimer);
      this.#client.destroy();
    } else {
      this.#client.off("error", this.#onClientError);
      this.#client.off("ready", this.#onClientReady);
      this.#client.off("connect", this.#onClientReady);
    }
    return Promise.resolve();
  }

  /**
   * Sends one command, bounded by `timeoutMs` (the command timeout unless a
   * call gives a shorter one); any failure becomes a CacheError. The hot
   * path (client ready) allocates one promise, one deadline entry and the
   * two settle callbacks; no timer per call.
   */
  #exec(
    op: Op,
    key: string,
    json: string,
    ttl: number,
    extra?: readonly string[],
    timeoutMs: number = this.#commandTimeoutMs,
  ): Promise<unknown> {
    const started = this.#reporting ? performance.now() : 0;
    const sent = this.#closed || !this.#client.isReady
      ? this.#execWhenReady(op, key, json, ttl, extra, timeoutMs)
      : this.#bounded(op, key, json, ttl, extra, timeoutMs, timeoutMs);
    if (!this.#reporting) return sent;
    return reportEnd(sent, started, (end) => this.#emit({ type: "redis.command", command: COMMANDS[op], key, ...end }));
  }

  /** The slow path: waits for the connection within the deadline, then sends with what is left of it. */
  async #execWhenReady(
    op: Op,
    key: string,
    json: string,
    ttl: number,
    extra: readonly string[] | undefined,
    timeoutMs: number,
  ): Promise<unknown> {
    const started = performance.now();
    const notReady = await this.#whenReady(timeoutMs);
    if (notReady !== undefined) {
      throw this.#failure(
        op,
        key,
        this.#reason(notReady, timeoutMs),
        notReady === "offline" ? this.#lastError : undefined,
      );
    }
    return this.#bounded(op, key, json, ttl, extra, timeoutMs, Math.max(1, timeoutMs - (performance.now() - started)));
  }

  /** Sends a command that may take `leftMs` more (of the call's `timeoutMs`, which a timeout's message names). */
  #bounded(
    op: Op,
    key: string,
    json: string,
    ttl: number,
    extra: readonly string[] | undefined,
    timeoutMs: number,
    leftMs: number,
  ): Promise<unknown> {
    return new Promise<unknown>((resolve, reject) => {
      const pending = new PendingCommand(op, key, timeoutMs, reject);
      const deadlines = this.#deadlines;
      deadlines.track(pending, leftMs);
      let sent: Promise<unknown>;
      try {
        sent = this.#send(op, this.#prefix + key, json, ttl, extra);
      } catch (error) {
        sent = Promise.reject(error);
      }
      sent.then(
        (reply) => {
          if (deadlines.settle(pending)) resolve(reply);
        },
        (error: unknown) => {
          if (deadlines.settle(pending)) reject(this.#failure(op, key, this.#describe(error), error));
        },
      );
    });
  }

  /** Rejects a command past its deadline (called by the sweep). */
  readonly #expire = (pending: PendingCommand): void => {
    pending.reject(this.#failure(pending.op, pending.key, this.#reason("timeout", pending.timeoutMs), undefined));
  };

  #send(op: Op, redisKey: string, json: string, ttl: number, extra?: readonly string[]): Promise<unknown> {
    switch (op) {
      case GET:
        return this.#client.get(redisKey);
      case SET:
        return this.#client.set(redisKey, json, { expiration: { type: "EX", value: ttl } });
      case PTTL:
        return this.#client.pTTL === undefined ? Promise.resolve(-1) : this.#client.pTTL(redisKey);
      case DEL:
        return this.#client.del(redisKey);
      case MGET: {
        const keys = extra!.map((key) => this.#prefix + key);
        return this.#command("mGet")([...keys, ...keys.map((key) => key + GENERATION_SUFFIX)]);
      }
      case MGET_VALUES:
        return this.#command("mGet")(extra!.map((key) => this.#prefix + key));
      case SET_IF_GENERATION:
        return this.#command("eval")(SET_IF_GENERATION_SCRIPT, {
          keys: [redisKey, redisKey + GENERATION_SUFFIX],
          arguments: [extra![0], json, String(ttl)],
        });
      case WRITE_THROUGH:
        return this.#command("eval")(WRITE_THROUGH_SCRIPT, {
          keys: [redisKey, redisKey + GENERATION_SUFFIX, redisKey + VERSION_SUFFIX],
          arguments: [extra![0], json, String(ttl), String(GENERATION_TTL_SECONDS)],
        });
      default:
        return this.#command("eval")(INVALIDATE_SCRIPT, {
          keys: [redisKey, redisKey + GENERATION_SUFFIX],
          arguments: [String(ttl)],
        });
    }
  }

  /** A command a client passed in may lack (`mGet`, `eval`), bound to it; a missing one fails the call. */
  #command<K extends "mGet" | "eval">(name: K): NonNullable<RedisCacheClient[K]> {
    const command = this.#client[name];
    if (typeof command !== "function") {
      throw new TypeError(`the Redis client has no ${name}() command`);
    }
    return command.bind(this.#client) as NonNullable<RedisCacheClient[K]>;
  }

  /**
   * Waits until the client is ready, at most `timeoutMs`, starting the first
   * connection if need be. Resolves at once when Redis is known to be down.
   */
  async #whenReady(timeoutMs: number): Promise<NotReady | undefined> {
    if (this.#closed) return "closed";
    if (!this.#client.isOpen) {
      if (!this.#connectStarted) this.#startConnect();
      // A client passed in that is no longer open was closed by its owner; ours is between two attempts.
      else if (!this.#owned && this.#clusterNodes === undefined) return "closed";
    }
    const end = Date.now() + timeoutMs;
    while (!this.#client.isReady) {
      if (this.#closed) return "closed";
      if (this.#offline) return "offline";
      const left = end - Date.now();
      if (left <= 0) return "timeout";
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          this.#waiters.delete(done);
          resolve();
        };
        const timer = setTimeout(done, left);
        this.#waiters.add(done);
      });
    }
    return undefined;
  }

  #startConnect(): void {
    this.#connectStarted = true;
    this.#offline = false;
    this.#connectClient();
  }

  #connectClient(): void {
    const client = this.#client;
    client.connect().then(
      // A cluster client emits no "ready" of its own.
      () => {
        if (this.#clusterNodes !== undefined && !this.#everReady) this.#onClientReady();
      },
      (error: unknown) => {
        // The client gave up (ours after one attempt, see #newClient) or was closed.
        if (this.#closed || client !== this.#client) return;
        this.#lastError = error;
        this.#offline = true;
        this.#notify();
        // A cluster the backend owns gave up on its first connection: try again after a backoff.
        if (this.#clusterNodes !== undefined) this.#onClusterConnectFailed(error);
      },
    );
  }

  /** Reports a failed first connection of an owned cluster and tries again after a backoff. */
  #onClusterConnectFailed(error: unknown): void {
    this.#emit({
      type: "cache.error",
      tier: "redis",
      error: new CacheError(`Failed to connect to ${this.#where}: ${this.#describe(error)}`, {
        ...scrubbed(error, this.#secrets),
      }),
    });
    clearTimeout(this.#retryTimer);
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      if (!this.#closed) this.#connectClient();
    }, backoffDelay(RECONNECT_BACKOFF, ++this.#attempts));
  }

  /**
   * A node-redis client for the target that makes one connection and never
   * reconnects by itself: the backend replaces it when it terminates. Each
   * client has its own abort signal, which reaches its socket before node-redis
   * hands it over (a socket still connecting cannot be destroyed otherwise),
   * and so holds one abort listener (Node never removes it), released with
   * the client instead of piling up on one signal while Redis stays down.
   */
  #newClient(target: Target): CommandClient {
    const abort = new AbortController();
    this.#abort = abort;
    const socket = {
      host: target.host,
      port: target.port,
      connectTimeout: this.#connectTimeoutMs,
      reconnectStrategy: false as const,
      signal: abort.signal,
    };
    const client = createClient({
      socket: target.tls ? { ...socket, tls: true } : socket,
      username: target.username,
      password: target.password,
      database: target.db,
      disableOfflineQueue: true,
      commandOptions: NO_CLIENT_TIMEOUT,
    }) as unknown as CommandClient;
    client.on("error", this.#onClientError);
    client.on("ready", this.#onClientReady);
    client.on("connect", this.#onClientReady);
    client.on("terminated", this.#onClientTerminated);
    return client;
  }

  /** The owned client gave up its connection (node-redis emits `error` next): try again after a backoff. */
  readonly #onClientTerminated = (): void => {
    if (this.#closed) return;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = setTimeout(this.#reconnect, backoffDelay(RECONNECT_BACKOFF, ++this.#attempts));
  };

  readonly #reconnect = (): void => {
    this.#retryTimer = undefined;
    if (this.#closed) return;
    // Releases what node-redis registered for the terminated client (its metrics entry).
    this.#client.destroy();
    this.#client = this.#newClient(this.#target as Target);
    this.#connectClient();
  };

  #notify(): void {
    for (const waiter of this.#waiters) waiter();
  }

  readonly #onClientError = (error: unknown): void => {
    if (this.#closed) return;
    this.#lastError = error;
    this.#offline = true;
    this.#notify();
    if (this.#reporting) {
      const reason = this.#describe(error);
      const message = this.#everReady
        ? `Lost connection to ${this.#where}: ${reason}`
        : `Failed to connect to ${this.#where}: ${reason}`;
      this.#emit({
        type: "cache.error",
        tier: "redis",
        error: new CacheError(message, scrubbed(error, this.#secrets)),
      });
    }
  };

  readonly #onClientReady = (): void => {
    if (this.#closed || !this.#client.isReady) return;
    this.#offline = false;
    this.#lastError = undefined;
    this.#attempts = 0;
    this.#notify();
    if (this.#everReady) this.#emit({ type: "cache.reconnect", tier: "redis" });
    this.#everReady = true;
  };

  /** Reports and deletes an entry that is not JSON; a failed delete is reported, not thrown. */
  async #dropCorrupt(key: string, error: unknown): Promise<void> {
    this.#emit({ type: "cache.corrupt", tier: "redis", key, error });
    try {
      await this.#exec(DEL, key, "", 0);
    } catch (failure) {
      this.#emit({ type: "cache.error", tier: "redis", key, error: failure as CacheError });
    }
  }

  #failure(op: Op, key: string, reason: string, cause: unknown): CacheError {
    return new CacheError(`Failed to ${ACTIONS[op]} ${quote(key)}: ${reason}`, scrubbed(cause, this.#secrets));
  }

  #reason(notReady: NotReady, timeoutMs: number): string {
    if (notReady === "closed") return this.#closed ? "the cache is closed" : "the Redis client is closed";
    if (notReady === "timeout") return `Redis did not answer within ${timeoutMs} ms`;
    if (clusterDisabled(this.#lastError)) return `${this.#where} ${CLUSTER_DISABLED}`;
    const code = codeOf(this.#lastError);
    return code === undefined ? "Redis is not connected" : `Redis is not connected (${code})`;
  }

  /** A short account of a client error, from its class and code only: never its message, which could carry anything. */
  #describe(error: unknown): string {
    if (this.#closed) return "the cache is closed";
    if (error instanceof ClientOfflineError || className(error) === "ClientOfflineError") {
      return this.#reason("offline", 0);
    }
    if (error instanceof ClientClosedError || className(error) === "ClientClosedError") {
      return this.#reason("closed", 0);
    }
    const code = codeOf(error);
    if (clusterDisabled(error)) return CLUSTER_DISABLED;
    if (isReply(error)) {
      return code === undefined ? "Redis refused the command" : `Redis refused the command (${code})`;
    }
    return code === undefined
      ? `the Redis client failed (${className(error) || "unknown error"})`
      : `Redis is unreachable (${code})`;
  }
}

/** A command in flight, tracked by the deadlines until it settles. */
class PendingCommand extends Pending {
  constructor(
    readonly op: Op,
    readonly key: string,
    /** The call's whole timeout, which its failure names. */
    readonly timeoutMs: number,
    readonly reject: (error: unknown) => void,
  ) {
    super();
  }
}

/** The connection options, which a URL or a client replaces. */
const CONNECTION_OPTIONS = ["host", "port", "db", "username", "password", "tls"] as const;

/** Every problem with the options. */
function cacheOptionProblems(options: RedisCacheOptions): OptionProblem[] {
  const problems: OptionProblem[] = [];
  const given = <K extends keyof RedisCacheOptions>(
    name: K,
    check: (value: RedisCacheOptions[K]) => OptionProblem[],
  ) => {
    if (options[name] !== undefined) problems.push(...check(options[name]));
  };
  given("commandTimeoutMs", (value) => timeoutMsProblems("commandTimeoutMs", value));
  given("connectTimeoutMs", (value) => timeoutMsProblems("connectTimeoutMs", value));
  given("keyPrefix", (value) => keyPrefixProblems(value));
  problems.push(...hookProblems("onEvent", options.onEvent));
  if (options.clusterNodes !== undefined) {
    // username and password apply to every node of the cluster.
    problems.push(...combinedProblems(options, "clusterNodes", ["client", "url", "host", "port", "db", "tls"]));
    problems.push(...clusterNodesProblems("clusterNodes", options.clusterNodes));
    return problems;
  }
  if (options.client !== undefined) {
    problems.push(...combinedProblems(options, "client", ["url", ...CONNECTION_OPTIONS]));
    if (!isClient(options.client)) {
      problems.push({ option: "client", problem: "is not a node-redis client or cluster" });
    }
    return problems;
  }
  if (options.url !== undefined) {
    problems.push(...combinedProblems(options, "url", CONNECTION_OPTIONS));
    problems.push(...redisUrlProblems("url", options.url));
    return problems;
  }
  given(
    "host",
    (host) =>
      typeof host !== "string" || host === "" || /[\s\p{Cc}]/u.test(host)
        ? [{ option: "host", value: String(host), problem: "is not a host name or IP address" }]
        : [],
  );
  given("port", (port) => integerProblems("port", port, 1, 65535));
  given("db", (db) => redisDbProblems("db", db));
  given(
    "username",
    (username) => typeof username === "string" ? [] : [{ option: "username", problem: "is not a string" }],
  );
  given(
    "password",
    (password) => typeof password === "string" ? [] : [{ option: "password", problem: "is not a string" }],
  );
  given(
    "tls",
    (tls) => typeof tls === "boolean" ? [] : [{ option: "tls", value: String(tls), problem: "is not a boolean" }],
  );
  return problems;
}

/** `client cannot be combined with url, host`: the options one replaces, when given with it. */
function combinedProblems(
  options: RedisCacheOptions,
  owner: string,
  names: readonly (keyof RedisCacheOptions)[],
): OptionProblem[] {
  const given = names.filter((name) => options[name] !== undefined);
  return given.length === 0 ? [] : [{ option: owner, problem: `cannot be combined with ${given.join(", ")}` }];
}

function keyPrefixProblems(value: unknown): OptionProblem[] {
  if (value === "") return [];
  try {
    checkCacheKey(value);
    return [];
  } catch {
    const problem = `is not a string of at most ${MAX_CACHE_KEY_BYTES} bytes without control characters`;
    return [{ option: "keyPrefix", value: String(value), problem }];
  }
}

function isClient(value: unknown): boolean {
  const client = value as Partial<Record<keyof CommandClient, unknown>> | null;
  return typeof client === "object" && client !== null && typeof client.get === "function" &&
    typeof client.set === "function" && typeof client.del === "function" && typeof client.on === "function" &&
    typeof client.connect === "function";
}

/** Where to connect, from a URL or from host / port / db (all checked); collects the secrets to keep out of messages. */
function resolveTarget(options: RedisCacheOptions, secrets: string[]): Target {
  const target: Target = { host: "127.0.0.1", port: 6379, db: 0, tls: false };
  if (options.url !== undefined) {
    const url = new URL(options.url);
    secrets.push(options.url);
    target.tls = url.protocol === "rediss:";
    target.host = url.hostname.replace(/^\[(.*)\]$/, "$1");
    if (url.port !== "") target.port = Number(url.port);
    if (url.username !== "") target.username = decodeURIComponent(url.username);
    if (url.password !== "") target.password = decodeURIComponent(url.password);
    secrets.push(...[url.username, url.password].filter((secret) => secret !== ""));
    const path = url.pathname.replace(/^\//, "");
    if (path !== "") target.db = Number(path);
  } else {
    if (options.host !== undefined) target.host = options.host.replace(/^\[(.*)\]$/, "$1");
    target.port = options.port ?? target.port;
    target.db = options.db ?? target.db;
    target.username = options.username;
    target.password = options.password;
    target.tls = options.tls ?? false;
  }
  for (const secret of [target.username, target.password]) if (secret) secrets.push(secret);
  return target;
}

/** A key as one `MGET` found it: its text (`undefined` on a miss), its generation and, when asked for, its remaining TTL. */
interface StoredText {
  text: string | undefined;
  generation: number;
  ttlMs: number | undefined;
}

/** A `PTTL` reply in milliseconds: -1 is no expiry; -2 (gone since the read) is 0, keep it nowhere. */
function remainingMs(pttl: unknown): number {
  return typeof pttl === "number" && pttl >= 0 ? pttl : pttl === -1 ? Infinity : 0;
}

/** Whether the error is a server's answer that it is no cluster node ("ERR This instance has cluster support disabled"). */
function clusterDisabled(error: unknown): boolean {
  const message = (error as { message?: unknown } | null | undefined)?.message;
  return isReply(error) && typeof message === "string" && /cluster support disabled/i.test(message);
}

/** Why a cluster client cannot use a server that is no cluster node. */
const CLUSTER_DISABLED =
  'answered "cluster support disabled": it is a single Redis server, not a cluster node (give its URL instead of clusterNodes)';

/** Whether the error is Redis' error reply (`-READONLY ...`), also from another copy of node-redis. */
function isReply(error: unknown): boolean {
  return error instanceof ErrorReply || /^(?:ErrorReply|SimpleError|BlobError|MultiErrorReply)$/.test(className(error));
}

function className(error: unknown): string {
  return typeof error === "object" && error !== null ? (error.constructor?.name ?? "") : "";
}

/**
 * A stable, secret-free code for an error: a Node system error code
 * (`ECONNREFUSED`) or the first word of a Redis error reply (`READONLY`,
 * `OOM`, `WRONGPASS`).
 */
function codeOf(error: unknown): string | undefined {
  if (typeof error !== "object" || error === null) return undefined;
  const code = (error as { code?: unknown }).code;
  if (typeof code === "string" && /^[A-Z][A-Z0-9_]{0,31}$/.test(code)) return code;
  const message = (error as { message?: unknown }).message;
  if (typeof message === "string") {
    const word = /^([A-Z][A-Z0-9_]{1,31})(?:\s|$)/.exec(message);
    if (word !== null && isReply(error)) {
      return word[1];
    }
  }
  if (className(error) === "ConnectionTimeoutError") return "ETIMEDOUT";
  if (className(error) === "SocketClosedUnexpectedlyError") return "ECONNRESET";
  return undefined;
}

/**
 * The `cause` to keep: the error itself, unless its message or stack holds a
 * secret, in which case a redacted copy (see `redactedError`).
 */
function scrubbed(cause: unknown, secrets: readonly string[]): { cause?: unknown } | undefined {
  if (cause === undefined) return undefined;
  if (secrets.length === 0 || typeof cause !== "object" || cause === null) return { cause };
  const error = cause as { message?: unknown; stack?: unknown };
  const text = `${String(error.message)}\n${String(error.stack)}`;
  if (redactSecrets(text, secrets) === text) return { cause };
  return { cause: redactedError(cause, (message) => redactSecrets(message, secrets)) };
}

const utf8 = new TextDecoder();

/** A reply that is not a string (a client with a Buffer type mapping), as text. */
function textOf(reply: unknown): string {
  if (reply instanceof Uint8Array) return utf8.decode(reply);
  return String(reply);
}
