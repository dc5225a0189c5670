/**
 * Configuration: explicit options first, then environment variables,
 * validated at once. A missing or malformed setting is one `ConfigError`
 * that lists every problem.
 *
 * @module
 */

import process from "node:process";
import { ConfigError, quote, redactUrl } from "../core/errors.ts";
import { bucketNameProblem } from "../core/keys.ts";
import { MAX_TTL_SECONDS } from "../core/values.ts";
import { tableName, TABLES } from "./tables.ts";

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
  /** The Redis Cluster nodes; present only when a cluster is configured. */
  redisClusterNodes?: string[];
  /**
   * The in-process tier, present only when set (an option or its variable)
   * with a cache; absent, the default applies: on with a cache, 10,000
   * entries for 60 seconds. `null`: off.
   */
  localCache?: { maxEntries: number; ttlSeconds: number } | null;
}

/** The cache TTL when none is configured, in seconds. */
export const DEFAULT_CACHE_TTL_SECONDS = 300;
/** The in-process tier's size when none is configured. */
const DEFAULT_LOCAL_CACHE_MAX_ENTRIES = 10_000;
/** The in-process tier's TTL when none is configured, in seconds. */
const DEFAULT_LOCAL_CACHE_TTL_SECONDS = 60;

const SUFFIX_CHARACTERS = /^[A-Za-z0-9_.-]*$/;
const LONGEST_TABLE_NAME = Math.max(...TABLES.map((table) => tableName(table.name, "").length));
const REGION = /^[a-z]{2}(-[a-z]+)+-\d+$/;
/** Integers in the environment: plain decimal digits ("1e3" and "0x10" are not). */
const DIGITS = /^\d+$/;

/**
 * The problem with a table suffix, or `undefined` when it is valid: empty,
 * or a separator (`-`, `_` or `.`) then letters, digits, `_`, `-` and `.`
 * (DynamoDB's table-name characters), short enough for every table name to
 * stay within 255 characters. Without the separator, `"dev"` would make
 * `bluestar-validation-rulesdev`. The configuration, the DynamoDB store and
 * the seed all check suffixes with it.
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
  if (typeof suffix !== "string") return "it is not a string";
  if (!SUFFIX_CHARACTERS.test(suffix)) return 'it may hold only letters, digits, "_", "-" and "."';
  if (suffix !== "" && !/^[-_.]/.test(suffix)) {
    return `it does not start with "-", "_" or "." (did you mean ${quote(`-${suffix}`)}?)`;
  }
  if (LONGEST_TABLE_NAME + suffix.length > 255) return "table names would be over 255 characters";
  return undefined;
}

/**
 * The problem with an AWS region name, or `undefined` when it is one
 * (`us-east-1`, `eu-central-2`, `us-gov-west-1`).
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
  return typeof region === "string" && REGION.test(region) ? undefined : 'it is not a region name (like "us-east-1")';
}

/**
 * The problem with a Redis Cluster node given as `host:port` (IPv6 as
 * `[::1]:7001`), or `undefined` when it is one.
 *
 * @param node The candidate node.
 * @returns Why it is not `host:port`, or `undefined`.
 *
 * @example Check a node
 * ```ts
 * import { clusterNodeProblem } from "./config.ts";
 *
 * console.assert(clusterNodeProblem("127.0.0.1:7001") === undefined);
 * console.assert(clusterNodeProblem("127.0.0.1") !== undefined);
 * ```
 */
export function clusterNodeProblem(node: unknown): string | undefined {
  const match = typeof node === "string" ? /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(node) : null;
  if (match === null) return "it is not host:port";
  const port = Number(match[2]);
  return port >= 1 && port <= 65535 ? undefined : `port ${port} is not from 1 to 65535`;
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
  const problems: string[] = [];
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
    problems.push(`${backendSetting.name} ${quote(backendText)} is not "aws" or "memory"`);
  }
  const backend: BackendKind = backendText === "memory" ? "memory" : "aws";

  const suffixSetting = read("tableSuffix", "BLUESTAR_TABLE_SUFFIX");
  const tableSuffix = (suffixSetting.value ?? "") as string;
  const suffixProblem = tableSuffixProblem(tableSuffix);
  if (suffixProblem !== undefined) problems.push(`${suffixSetting.name} ${quote(tableSuffix)}: ${suffixProblem}`);

  const endpointSetting = read("endpointUrl", "BLUESTAR_AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL");
  const endpointUrl = (endpointSetting.value ?? null) as string | null;
  if (endpointUrl !== null && !isUrl(endpointUrl, ["http:", "https:"])) {
    problems.push(`${endpointSetting.name} ${quote(redactUrl(endpointUrl))} is not an http or https URL`);
  } else if (endpointUrl !== null && backend === "aws" && hasUserinfo(endpointUrl)) {
    // The S3 store refuses them too: requests are signed with the AWS credential chain, never with userinfo.
    problems.push(
      `${endpointSetting.name} ${
        quote(redactUrl(endpointUrl))
      } carries credentials (AWS credentials come from the environment, a profile or a role)`,
    );
  }

  const regionSetting = read("region", "AWS_REGION");
  let region = (regionSetting.value ?? (endpointUrl === null ? null : "us-east-1")) as string | null;
  const bucketSetting = read("s3Bucket", "BLUESTAR_S3_BUCKET");
  const s3Bucket = (bucketSetting.value ?? null) as string | null;
  if (backend === "aws") {
    if (region === null) problems.push(`${regionSetting.name} is not set`);
    else if (regionProblem(region) !== undefined) {
      problems.push(`${regionSetting.name} ${quote(region)} is not a region name`);
    }
    const bucketProblem = s3Bucket === null ? undefined : bucketNameProblem(s3Bucket);
    if (s3Bucket === null) problems.push(`${bucketSetting.name} is not set`);
    else if (bucketProblem !== undefined) {
      problems.push(`${bucketSetting.name} ${quote(s3Bucket)} is not a bucket name: ${bucketProblem}`);
    }
  } else {
    region = null;
  }

  // An explicit null: no cache, whatever the environment says.
  const redisSetting = read("redisUrl", "BLUESTAR_REDIS_URL");
  const redisUrl = (redisSetting.value ?? null) as string | null;
  if (redisUrl !== null && !isUrl(redisUrl, ["redis:", "rediss:"])) {
    problems.push(`${redisSetting.name} ${quote(redactUrl(redisUrl))} is not a redis:// or rediss:// URL`);
  }

  const ttlSetting = read("cacheTtlSeconds", "BLUESTAR_CACHE_TTL_SECONDS");
  const ttl = ttlSetting.value;
  const cacheTtlSeconds = ttl === undefined
    ? DEFAULT_CACHE_TTL_SECONDS
    : typeof ttl === "string" && !DIGITS.test(ttl)
    ? Number.NaN
    : Number(ttl);
  if (!Number.isInteger(cacheTtlSeconds) || cacheTtlSeconds < 1 || cacheTtlSeconds > MAX_TTL_SECONDS) {
    problems.push(`${ttlSetting.name} ${quote(String(ttl))} is not a positive integer of seconds`);
  }

  const clusterSetting = read("redisClusterNodes", "BLUESTAR_REDIS_CLUSTER_NODES");
  const clusterValue = clusterSetting.value as string | readonly string[] | null | undefined;
  const clusterNodes = clusterValue === undefined || clusterValue === null
    ? null
    : typeof clusterValue === "string"
    ? clusterValue.split(",").map((node) => node.trim())
    : [...clusterValue];
  if (clusterNodes !== null) {
    if (clusterNodes.length === 0) problems.push(`${clusterSetting.name} lists no node`);
    for (const node of clusterNodes) {
      const problem = clusterNodeProblem(node);
      if (problem !== undefined) problems.push(`${clusterSetting.name} node ${quote(node)}: ${problem}`);
    }
    if (redisUrl !== null) problems.push(`${clusterSetting.name} cannot be combined with ${redisSetting.name}`);
  }
  let localCacheSet = false;
  const integer = (option: keyof PersistenceSettings, variable: string, fallback: number, least: number) => {
    const setting = read(option, variable);
    localCacheSet ||= setting.value !== undefined;
    const value = setting.value === undefined
      ? fallback
      : typeof setting.value === "string" && !DIGITS.test(setting.value)
      ? Number.NaN
      : Number(setting.value);
    if (!Number.isInteger(value) || value < least || value > MAX_TTL_SECONDS) {
      problems.push(`${setting.name} ${quote(String(setting.value))} is not an integer from ${least}`);
    }
    return value;
  };
  const maxEntries = integer(
    "localCacheMaxEntries",
    "BLUESTAR_LOCAL_CACHE_MAX_ENTRIES",
    DEFAULT_LOCAL_CACHE_MAX_ENTRIES,
    0,
  );
  const localTtl = integer(
    "localCacheTtlSeconds",
    "BLUESTAR_LOCAL_CACHE_TTL_SECONDS",
    DEFAULT_LOCAL_CACHE_TTL_SECONDS,
    1,
  );
  const cached = localCacheSet && (redisUrl !== null || clusterNodes !== null);

  if (problems.length > 0) throw new ConfigError(`Invalid persistence configuration: ${problems.join("; ")}`);
  return {
    config: {
      backend,
      tableSuffix,
      region,
      endpointUrl: backend === "aws" ? endpointUrl : null,
      s3Bucket: backend === "aws" ? s3Bucket : null,
      redisUrl: redisUrl === null ? null : redactUrl(redisUrl),
      cacheTtlSeconds,
      ...(clusterNodes === null ? {} : { redisClusterNodes: clusterNodes }),
      ...(cached ? { localCache: maxEntries === 0 ? null : { maxEntries, ttlSeconds: localTtl } } : {}),
    },
    redisUrl,
  };
}

function hasUserinfo(value: string): boolean {
  const { username, password } = new URL(value);
  return username !== "" || password !== "";
}

function isUrl(value: string, protocols: string[]): boolean {
  try {
    return protocols.includes(new URL(value).protocol);
  } catch {
    return false;
  }
}
