/**
 * Configuration: explicit options first, then environment variables,
 * validated at once. A missing or malformed setting is one `ConfigError`
 * that lists every problem.
 *
 * @module
 */

import process from "node:process";
import { ConfigError } from "../core/errors.ts";
import { bucketNameProblem } from "../core/keys.ts";
import { MAX_TTL_SECONDS } from "../core/values.ts";

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
   * Appended to every table name (`bluestar-{name}{suffix}`) and namespacing the cache.
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
}

/** A validated configuration. */
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
  /** The Redis URL, or `null` for no cache. */
  redisUrl: string | null;
  /** The cache TTL in seconds. */
  cacheTtlSeconds: number;
}

/** The cache TTL when none is configured, in seconds. */
export const DEFAULT_CACHE_TTL_SECONDS = 300;

const SUFFIX = /^[A-Za-z0-9_.-]{0,200}$/;
const REGION = /^[a-z]{2}(-[a-z]+)+-\d+$/;

/**
 * Resolves the configuration: each setting from `settings` when given, else
 * from the environment.
 *
 * @param settings Explicit settings.
 * @param env The environment.
 * @default {process.env}
 * @returns The validated configuration.
 * @throws {ConfigError} Listing every missing or malformed setting.
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
  const problems: string[] = [];
  const text = (value: string | undefined) => (value === undefined || value.trim() === "" ? undefined : value.trim());

  const backendText = settings.backend ?? text(env.BLUESTAR_BACKEND) ?? "aws";
  if (backendText !== "aws" && backendText !== "memory") {
    problems.push(`BLUESTAR_BACKEND ${JSON.stringify(backendText)} is not "aws" or "memory"`);
  }
  const backend: BackendKind = backendText === "memory" ? "memory" : "aws";

  const tableSuffix = settings.tableSuffix ?? text(env.BLUESTAR_TABLE_SUFFIX) ?? "";
  if (!SUFFIX.test(tableSuffix)) {
    problems.push(
      `BLUESTAR_TABLE_SUFFIX ${
        JSON.stringify(tableSuffix)
      } has characters other than letters, digits, "_", "-" and "."`,
    );
  }

  const endpointUrl = settings.endpointUrl ?? text(env.BLUESTAR_AWS_ENDPOINT_URL) ?? text(env.AWS_ENDPOINT_URL) ??
    null;
  if (endpointUrl !== null && !isUrl(endpointUrl, ["http:", "https:"])) {
    problems.push(`BLUESTAR_AWS_ENDPOINT_URL ${JSON.stringify(endpointUrl)} is not an http or https URL`);
  }

  let region = settings.region ?? text(env.AWS_REGION) ?? (endpointUrl === null ? null : "us-east-1");
  const s3Bucket = settings.s3Bucket ?? text(env.BLUESTAR_S3_BUCKET) ?? null;
  if (backend === "aws") {
    if (region === null) problems.push("AWS_REGION is not set");
    else if (!REGION.test(region)) problems.push(`AWS_REGION ${JSON.stringify(region)} is not a region name`);
    const bucketProblem = s3Bucket === null ? undefined : bucketNameProblem(s3Bucket);
    if (s3Bucket === null) problems.push("BLUESTAR_S3_BUCKET is not set");
    else if (bucketProblem !== undefined) {
      problems.push(`BLUESTAR_S3_BUCKET ${JSON.stringify(s3Bucket)} is not a bucket name: ${bucketProblem}`);
    }
  } else {
    region = null;
  }

  const redisUrl = settings.redisUrl === undefined ? text(env.BLUESTAR_REDIS_URL) ?? null : settings.redisUrl;
  if (redisUrl !== null && !isUrl(redisUrl, ["redis:", "rediss:"])) {
    // The URL may hold a password: name the variable, not the value.
    problems.push("BLUESTAR_REDIS_URL is not a redis:// or rediss:// URL");
  }

  const ttlText = settings.cacheTtlSeconds ?? text(env.BLUESTAR_CACHE_TTL_SECONDS);
  const cacheTtlSeconds = ttlText === undefined ? DEFAULT_CACHE_TTL_SECONDS : Number(ttlText);
  if (!Number.isInteger(cacheTtlSeconds) || cacheTtlSeconds < 1 || cacheTtlSeconds > MAX_TTL_SECONDS) {
    problems.push(`BLUESTAR_CACHE_TTL_SECONDS ${JSON.stringify(String(ttlText))} is not a positive integer`);
  }

  if (problems.length > 0) throw new ConfigError(`Invalid persistence configuration: ${problems.join("; ")}`);
  return {
    backend,
    tableSuffix,
    region,
    endpointUrl: backend === "aws" ? endpointUrl : null,
    s3Bucket: backend === "aws" ? s3Bucket : null,
    redisUrl,
    cacheTtlSeconds,
  };
}

function isUrl(value: string, protocols: string[]): boolean {
  try {
    return protocols.includes(new URL(value).protocol);
  } catch {
    return false;
  }
}
