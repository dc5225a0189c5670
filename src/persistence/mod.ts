/**
 * `createPersistence()`: the three backends wired from configuration in one
 * call, the rules store reading through the cache.
 *
 * @module
 */

import type { ICacheBackend, IFileStore, IRulesStore } from "../core/protocols.ts";
import type { RulesData } from "../core/types.ts";
import { type PersistenceConfig, type PersistenceSettings, resolveConnections } from "./config.ts";
import { DynamoDBRulesStore, type RulesStoreEvent } from "./dynamodb_backend.ts";
import { MemoryCacheBackend, MemoryFileStore, MemoryRulesStore } from "./memory_backend.ts";
import { type CacheEvent, RedisCacheBackend } from "./redis_backend.ts";
import { type BusEvent, RedisInvalidationBus } from "./invalidation_bus.ts";
import { type FileStoreEvent, S3FileStore } from "./s3_backend.ts";

/** The in-process tier when a cache is configured and the tier's settings are not. */
const DEFAULT_LOCAL_CACHE = { maxEntries: 10_000, ttlSeconds: 60 };

/** Any event a backend reports. */
export type PersistenceEvent = RulesStoreEvent | CacheEvent | FileStoreEvent | BusEvent;

/** Options of {@linkcode createPersistence}: settings, plus what only code can pass. */
export interface PersistenceOptions extends PersistenceSettings {
  /**
   * The environment to read unset settings from.
   *
   * @default {process.env}
   */
  env?: Record<string, string | undefined>;
  /**
   * For `memory`: the reference data to serve (for example `await loadSeedData("config")`).
   *
   * @default {no data}
   */
  data?: RulesData;
  /** Receives every backend's events (cache fallbacks, corrupt entries, retries). */
  onEvent?: (event: PersistenceEvent) => void;
  /**
   * How long seal copies of audit trails are retained, in days (see
   * `AuditSealOptions.sealRetentionDays`). Seal copies go to `files`, at
   * `audit-seals/{batchId}.json`.
   *
   * @default {1552}
   */
  sealRetentionDays?: number;
}

/** The wired backends. */
export interface Persistence {
  /** The configuration they were built from, safe to print: URLs show no credentials. */
  config: PersistenceConfig;
  /** Pipelines, rules, limits, batch state, results, audit (reads through `cache`). */
  rules: IRulesStore;
  /** The cache, or `null` when none is configured. */
  cache: ICacheBackend | null;
  /** Payroll files. */
  files: IFileStore;
  /** Releases every connection, so the process can exit. */
  close(): Promise<void>;
}

/**
 * Wires the rules store, the cache and the file store from explicit options,
 * then environment variables (see the README's configuration table).
 *
 * - `aws`: `DynamoDBRulesStore` reading through `RedisCacheBackend` (when a
 *   Redis URL or Redis Cluster nodes are set), with an in-process tier
 *   (`localCacheMaxEntries`, `0` for none) kept fresh by a
 *   `RedisInvalidationBus` on the same Redis, and `S3FileStore`.
 * - `memory`: the reference backends, optionally loaded with `data`; the cache
 *   is Redis when a URL is set, else a `MemoryCacheBackend`.
 *
 * Nothing connects until first use.
 *
 * @param options Settings, the environment, reference data for `memory`, an event hook.
 * @returns The backends and `close()`.
 * @throws {ConfigError} Listing every missing or malformed setting.
 *
 * @example Wire the in-memory backends
 * ```ts
 * import { createPersistence } from "@bluestar/persistence";
 *
 * const persistence = createPersistence({
 *   backend: "memory",
 *   data: { irsLimits: [{ year: 2026, limits: { electiveDeferral: "24500" } }] },
 * });
 * const limits = await persistence.rules.getIrsLimits(2026);
 * console.assert(limits.limits.electiveDeferral === "24500");
 * await persistence.close();
 * ```
 *
 * @example Wire AWS from the environment
 * ```ts
 * import { createPersistence } from "@bluestar/persistence";
 *
 * // BLUESTAR_BACKEND=aws AWS_REGION=us-east-1 BLUESTAR_S3_BUCKET=bluestar-files
 * // BLUESTAR_REDIS_URL=redis://127.0.0.1:6379
 * const persistence = createPersistence();
 * const rule = await persistence.rules.getCalculationRule("ACME_CORP", "FICA_SOCIAL_SECURITY");
 * await persistence.close();
 * ```
 */
export function createPersistence(options?: PersistenceOptions): Persistence {
  const { env, data, onEvent, sealRetentionDays, ...settings }: PersistenceOptions = options ?? {};
  // The configuration shows the Redis URL redacted; the cache connects with it as given.
  const { config, redisUrl } = resolveConnections(settings, env);
  const cluster = config.redisClusterNodes;
  const where = cluster === undefined ? (redisUrl === null ? null : { url: redisUrl }) : { clusterNodes: cluster };
  const redis = where === null ? null : new RedisCacheBackend({ ...where, keyPrefix: "", onEvent });

  if (config.backend === "memory") {
    const cache = redis ?? new MemoryCacheBackend();
    const files = new MemoryFileStore();
    return {
      config,
      rules: new MemoryRulesStore(data, { sealFiles: files, sealRetentionDays }),
      cache,
      files,
      close: async () => {
        await redis?.close();
      },
    };
  }

  const aws = { region: config.region ?? undefined, endpointUrl: config.endpointUrl ?? undefined };
  // The bus keeps the in-process tier fresh; without an in-process tier there is nothing for it to do.
  const localCache = config.localCache === undefined ? DEFAULT_LOCAL_CACHE : config.localCache;
  const bus = where === null || localCache === null
    ? undefined
    : new RedisInvalidationBus({ ...where, namespace: config.tableSuffix, onEvent });
  const files = new S3FileStore({ ...aws, bucket: config.s3Bucket!, onEvent });
  const rules = new DynamoDBRulesStore({
    ...aws,
    tableSuffix: config.tableSuffix,
    cache: redis ?? undefined,
    cacheTtlSeconds: config.cacheTtlSeconds,
    cacheTimeoutMs: config.cacheTimeoutMs,
    localCache: localCache ?? false,
    invalidationBus: bus,
    onEvent,
    sealFiles: files,
    sealRetentionDays,
  });
  return {
    config,
    rules,
    cache: redis,
    files,
    close: async () => {
      const results = await Promise.allSettled([rules.close(), files.close(), redis?.close(), bus?.close()]);
      const failed = results.find((result): result is PromiseRejectedResult => result.status === "rejected");
      if (failed !== undefined) throw failed.reason;
    },
  };
}
