/**
 * Configuration: explicit options first, then environment variables,
 * validated at once. A missing or malformed setting is one `ConfigError`
 * that lists every problem.
 *
 * @module
 */

import process from "node:process";
import { ConfigError, redactUrl } from "../core/errors.ts";
import {
  bucketProblems,
  clusterNodeList,
  clusterNodesProblems,
  DEFAULT_CACHE_TIMEOUT_MS,
  DEFAULT_CACHE_TTL_SECONDS,
  endpointUrlProblems,
  localCacheMaxEntriesProblems,
  type OptionProblem,
  optionProblemsText,
  problemClause,
  redisUrlProblems,
  regionProblems,
  tableSuffixProblems,
  timeoutMsProblems,
  ttlSecondsProblems,
} from "./options.ts";

export { DEFAULT_CACHE_TIMEOUT_MS, DEFAULT_CACHE_TTL_SECONDS };

/** Which backends {@linkcode resolveConfig} wires. */
export type BackendKind = "aws" | "memory";

/** Settings, each overriding its environment variable. */
export interface PersistenceSettings {
  /**
   * `aws` (DynamoDB, S3, Redis when a URL is set) or `memory` (tests, demos).
   * Never chosen silently: `memory` must be asked for.
   *
   * @default {env BLUESTAR_BACKEND, else "aws"}
   */
  backend?: BackendKind;
  /**
   * Appended to every table name (`bluestar-{name}{suffix}`) and namespacing the cache:
   * empty, or starting with `-`, `_` or `.` (see {@linkcode tableSuffixProblem}).
   *
   * @default {env BLUESTAR_TABLE_SUFFIX, else ""}
   */
  tableSuffix?: string;
  /**
   * The AWS region.
   *
   * @default {env AWS_REGION; "us-east-1" when an endpoint URL is set}
   */
  region?: string;
  /**
   * A local AWS endpoint (moto_server, LocalStack).
   *
   * @default {env BLUESTAR_AWS_ENDPOINT_URL, else AWS_ENDPOINT_URL, else none}
   */
  endpointUrl?: string;
  /**
   * The S3 bucket for files; required for `aws`.
   *
   * @default {env BLUESTAR_S3_BUCKET}
   */
  s3Bucket?: string;
  /**
   * The Redis URL (`redis://` or `rediss://`); `null` or unset: no cache.
   *
   * @default {env BLUESTAR_REDIS_URL, else none}
   */
  redisUrl?: string | null;
  /**
   * How long cached rules live, in seconds: the staleness window after a rule changes.
   *
   * @default {env BLUESTAR_CACHE_TTL_SECONDS, else 300}
   */
  cacheTtlSeconds?: number;
  /**
   * How long a rule read waits for the cache, in milliseconds, before it
   * goes to DynamoDB (the variable is plain decimal digits).
   *
   * @default {env BLUESTAR_CACHE_TIMEOUT_MS, else 50}
   */
  cacheTimeoutMs?: number;
  /**
   * The nodes of a Redis Cluster to cache on, as `host:port` (the
   * environment variable lists them comma-separated); not with `redisUrl`.
   *
   * @default {env BLUESTAR_REDIS_CLUSTER_NODES, else none}
   */
  redisClusterNodes?: readonly string[] | null;
  /**
   * How many rule reads the in-process tier holds (with a cache); `0`: no in-process tier.
   *
   * @default {env BLUESTAR_LOCAL_CACHE_MAX_ENTRIES, else 10000}
   */
  localCacheMaxEntries?: number;
  /**
   * How long an in-process entry lives at most, in seconds (never longer than its Redis entry).
   *
   * @default {env BLUESTAR_LOCAL_CACHE_TTL_SECONDS, else 60}
   */
  localCacheTtlSeconds?: number;
}

/**
 * A validated configuration, safe to print: the Redis URL's userinfo is
 * `[redacted]` (the cache connects with the URL as given), and an AWS
 * endpoint never carries credentials.
 */
export interface PersistenceConfig {
  /** The backends. */
  backend: BackendKind;
  /** The table suffix. */
  tableSuffix: string;
  /** The AWS region (`aws` only). */
  region: string | null;
  /** The AWS endpoint, or `null` for AWS itself. */
  endpointUrl: string | null;
  /** The S3 bucket (`aws` only). */
  s3Bucket: string | null;
  /** The Redis URL (userinfo redacted), or `null` for no cache. */
  redisUrl: string | null;
  /** The cache TTL in seconds. */
  cacheTtlSeconds: number;
  /** How long a rule read waits for the cache, in milliseconds. */
  cacheTimeoutMs: number;
  /** The Redis Cluster nodes; present only when a cluster is configured. */
  redisClusterNodes?: string[];
  /**
   * The in-process tier, present only when set (an option or its variable)
   * with a cache; absent, the default applies: on with a cache, 10,000
   * entries for 60 seconds. `null`: off.
   */
  localCache?: { maxEntries: number; ttlSeconds: number } | null;
}

/** The in-process tier's size when none is configured. */
const DEFAULT_LOCAL_CACHE_MAX_ENTRIES = 10_000;
/** The in-process tier's TTL when none is configured, in seconds. */
const DEFAULT_LOCAL_CACHE_TTL_SECONDS = 60;

/**
 * The problem with a table suffix, or `undefined` when it is valid (the
 * rule is {@linkcode tableSuffixProblems}): empty, or a separator (`-`, `_`
 * or `.`) then letters, digits, `_`, `-` and `.`, short enough for every
 * table name to stay within 255 characters.
 *
 * @param suffix The candidate suffix.
 * @returns Why it is not a valid suffix, or `undefined`.
 *
 * @example Check a suffix
 * ```ts
 * import { tableSuffixProblem } from "./config.ts";
 *
 * console.assert(tableSuffixProblem("-dev") === undefined);
 * console.assert(tableSuffixProblem("dev")?.includes('did you mean "-dev"?'));
 * ```
 */
export function tableSuffixProblem(suffix: unknown): string | undefined {
  return reason(tableSuffixProblems("tableSuffix", suffix));
}

/**
 * The problem with an AWS region name, or `undefined` when it is one
 * (the rule is {@linkcode regionProblems}).
 *
 * @param region The candidate region.
 * @returns Why it is not a region name, or `undefined`.
 *
 * @example Check a region
 * ```ts
 * import { regionProblem } from "./config.ts";
 *
 * console.assert(regionProblem("us-east-1") === undefined);
 * console.assert(regionProblem("us east 1") !== undefined);
 * ```
 */
export function regionProblem(region: unknown): string | undefined {
  return reason(regionProblems("region", region));
}

/** The first problem as a clause about the value ("it is not ..."), or `undefined`. */
function reason(problems: readonly OptionProblem[]): string | undefined {
  return problems.length === 0 ? undefined : problemClause(problems[0]);
}

/** A configuration and the Redis URL the cache connects with, its password included. */
export interface ResolvedConfig {
  /** The configuration, safe to print. */
  config: PersistenceConfig;
  /** The Redis URL as given, or `null` for no cache. */
  redisUrl: string | null;
}

/**
 * Resolves the configuration: each setting from `settings` when given, else
 * from the environment. The Redis URL in the result is redacted (its
 * userinfo is `[redacted]`), so the configuration can be printed or logged.
 *
 * @param settings Explicit settings.
 * @param env The environment.
 * @default {process.env}
 * @returns The validated configuration.
 * @throws {ConfigError} Listing every missing or malformed setting, each named by the option or variable it came from.
 *
 * @example Configure from explicit settings
 * ```ts
 * import { resolveConfig } from "@bluestar/persistence";
 *
 * const config = resolveConfig({ backend: "memory" }, {});
 * console.assert(config.backend === "memory" && config.cacheTtlSeconds === 300);
 * ```
 */
export function resolveConfig(
  settings: PersistenceSettings = {},
  env: Record<string, string | undefined> = process.env,
): PersistenceConfig {
  return resolveConnections(settings, env).config;
}

/**
 * Resolves the configuration as {@linkcode resolveConfig} does, and also
 * returns the Redis URL as given, for the cache to connect with.
 *
 * @param settings Explicit settings.
 * @param env The environment.
 * @default {process.env}
 * @returns The configuration and the Redis URL.
 * @throws {ConfigError} Listing every missing or malformed setting.
 *
 * @example Connect with the password, print without it
 * ```ts
 * import { resolveConnections } from "./config.ts";
 *
 * const { config, redisUrl } = resolveConnections({ backend: "memory", redisUrl: "redis://:pw@cache:6379" }, {});
 * console.assert(config.redisUrl === "redis://[redacted]@cache:6379" && redisUrl === "redis://:pw@cache:6379");
 * ```
 */
export function resolveConnections(
  settings: PersistenceSettings = {},
  env: Record<string, string | undefined> = process.env,
): ResolvedConfig {
  const problems: OptionProblem[] = [];
  const text = (value: string | undefined) => (value === undefined || value.trim() === "" ? undefined : value.trim());
  /** A setting and the name it came by: the option when given, else the first variable set (a problem names it). */
  const read = (option: keyof PersistenceSettings, ...variables: string[]) => {
    if (settings[option] !== undefined) return { value: settings[option], name: option as string };
    const variable = variables.find((name) => text(env[name]) !== undefined) ?? variables[0];
    return { value: text(env[variable]), name: variable };
  };

  const backendSetting = read("backend", "BLUESTAR_BACKEND");
  const backendText = backendSetting.value ?? "aws";
  if (backendText !== "aws" && backendText !== "memory") {
    problems.push({ option: backendSetting.name, value: String(backendText), problem: 'is not "aws" or "memory"' });
  }
  const backend: BackendKind = backendText === "memory" ? "memory" : "aws";

  const suffixSetting = read("tableSuffix", "BLUESTAR_TABLE_SUFFIX");
  const tableSuffix = (suffixSetting.value ?? "") as string;
  problems.push(...tableSuffixProblems(suffixSetting.name, tableSuffix));

  const endpointSetting = read("endpointUrl", "BLUESTAR_AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL");
  const endpointUrl = (endpointSetting.value ?? null) as string | null;
  if (endpointUrl !== null) {
    // The memory backend drops the endpoint, and so never sends its userinfo anywhere: only its form is checked.
    const endpoint = endpointUrlProblems(endpointSetting.name, endpointUrl);
    problems.push(...endpoint.filter((found) => backend === "aws" || !found.problem.startsWith("carries credentials")));
  }

  const regionSetting = read("region", "AWS_REGION");
  let region = (regionSetting.value ?? (endpointUrl === null ? null : "us-east-1")) as string | null;
  const bucketSetting = read("s3Bucket", "BLUESTAR_S3_BUCKET");
  const s3Bucket = (bucketSetting.value ?? null) as string | null;
  if (backend === "aws") {
    if (region === null) problems.push({ option: regionSetting.name, problem: "is not set" });
    else problems.push(...regionProblems(regionSetting.name, region));
    if (s3Bucket === null) problems.push({ option: bucketSetting.name, problem: "is not set" });
    else problems.push(...bucketProblems(bucketSetting.name, s3Bucket));
  } else {
    region = null;
  }

  // An explicit null: no cache, whatever the environment says.
  const redisSetting = read("redisUrl", "BLUESTAR_REDIS_URL");
  const redisUrl = (redisSetting.value ?? null) as string | null;
  if (redisUrl !== null) problems.push(...redisUrlProblems(redisSetting.name, redisUrl));

  const ttlSetting = read("cacheTtlSeconds", "BLUESTAR_CACHE_TTL_SECONDS");
  const ttlProblems = ttlSetting.value === undefined ? [] : ttlSecondsProblems(ttlSetting.name, ttlSetting.value);
  problems.push(...ttlProblems);
  const cacheTtlSeconds = ttlSetting.value === undefined || ttlProblems.length > 0
    ? DEFAULT_CACHE_TTL_SECONDS
    : Number(ttlSetting.value);

  const timeoutSetting = read("cacheTimeoutMs", "BLUESTAR_CACHE_TIMEOUT_MS");
  const timeoutValue = typeof timeoutSetting.value === "string" && /^\d+$/.test(timeoutSetting.value)
    ? Number(timeoutSetting.value)
    : timeoutSetting.value;
  const timeoutProblems = timeoutValue === undefined ? [] : timeoutMsProblems(timeoutSetting.name, timeoutValue);
  problems.push(...timeoutProblems);
  const cacheTimeoutMs = timeoutValue === undefined || timeoutProblems.length > 0
    ? DEFAULT_CACHE_TIMEOUT_MS
    : Number(timeoutValue);

  const clusterSetting = read("redisClusterNodes", "BLUESTAR_REDIS_CLUSTER_NODES");
  const clusterValue = clusterSetting.value as string | readonly string[] | null | undefined;
  const clusterNodes = clusterValue === undefined || clusterValue === null
    ? null
    : typeof clusterValue === "string"
    ? clusterNodeList(clusterValue)
    : [...clusterValue];
  if (clusterNodes !== null) {
    problems.push(...clusterNodesProblems(clusterSetting.name, clusterValue));
    if (redisUrl !== null) {
      problems.push({ option: clusterSetting.name, problem: `cannot be combined with ${redisSetting.name}` });
    }
  }
  const maxEntriesSetting = read("localCacheMaxEntries", "BLUESTAR_LOCAL_CACHE_MAX_ENTRIES");
  const maxEntriesProblems = maxEntriesSetting.value === undefined
    ? []
    : localCacheMaxEntriesProblems(maxEntriesSetting.name, maxEntriesSetting.value);
  problems.push(...maxEntriesProblems);
  const localTtlSetting = read("localCacheTtlSeconds", "BLUESTAR_LOCAL_CACHE_TTL_SECONDS");
  const localTtlProblems = localTtlSetting.value === undefined
    ? []
    : ttlSecondsProblems(localTtlSetting.name, localTtlSetting.value);
  problems.push(...localTtlProblems);
  const maxEntries = maxEntriesSetting.value === undefined || maxEntriesProblems.length > 0
    ? DEFAULT_LOCAL_CACHE_MAX_ENTRIES
    : Number(maxEntriesSetting.value);
  const localTtl = localTtlSetting.value === undefined || localTtlProblems.length > 0
    ? DEFAULT_LOCAL_CACHE_TTL_SECONDS
    : Number(localTtlSetting.value);
  const localCacheSet = maxEntriesSetting.value !== undefined || localTtlSetting.value !== undefined;
  const cached = localCacheSet && (redisUrl !== null || clusterNodes !== null);

  if (problems.length > 0) throw new ConfigError(`Invalid persistence configuration: ${optionProblemsText(problems)}`);
  return {
    config: {
      backend,
      tableSuffix,
      region,
      endpointUrl: backend === "aws" ? endpointUrl : null,
      s3Bucket: backend === "aws" ? s3Bucket : null,
      redisUrl: redisUrl === null ? null : redactUrl(redisUrl),
      cacheTtlSeconds,
      cacheTimeoutMs,
      ...(clusterNodes === null ? {} : { redisClusterNodes: clusterNodes }),
      ...(cached ? { localCache: maxEntries === 0 ? null : { maxEntries, ttlSeconds: localTtl } } : {}),
    },
    redisUrl,
  };
}
