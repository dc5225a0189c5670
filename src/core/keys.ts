/**
 * The one place that builds partition, sort and cache keys, and validates the
 * ids and paths they are made of.
 *
 * An id that could forge another key (empty, containing `#`, a control
 * character or a lone surrogate, or longer than {@linkcode MAX_ID_BYTES}) is
 * an {@linkcode InvalidInputError}, raised before any network call.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { InvalidInputError, quote } from "./errors.ts";

/** The longest id, in UTF-8 bytes. */
export const MAX_ID_BYTES = 256;

/** The longest file path or prefix, in UTF-8 bytes (the S3 key limit). */
export const MAX_PATH_BYTES = 1024;

/** The longest cache key, in UTF-8 bytes. */
export const MAX_CACHE_KEY_BYTES = 1024;

/** The partition of the rules every client falls back to. */
export const GLOBAL_CLIENT_ID = "GLOBAL";

/** The version of the cached value shapes; bump it when a cached shape changes. */
export const CACHE_SCHEMA_VERSION = 2;

// C0, DEL and C1 controls; lone surrogates cannot be encoded as UTF-8 at all.
// deno-lint-ignore no-control-regex -- matching control characters is the point
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const encoder = new TextEncoder();

/**
 * Whether text holds a lone surrogate: half of a UTF-16 pair, which is not
 * Unicode and cannot be encoded as UTF-8 (DynamoDB, S3 and Redis keys are UTF-8).
 *
 * @param text The text.
 * @returns Whether it holds one.
 */
export function hasLoneSurrogate(text: string): boolean {
  return LONE_SURROGATE.test(text);
}

/**
 * The problem with a piece of text that every key and path shares, or
 * `undefined`.
 */
function textProblem(value: unknown, maxBytes: number): string | undefined {
  if (typeof value !== "string") return `it is a ${value === null ? "null" : typeof value}, not a string`;
  if (CONTROL.test(value)) return "it contains a control character";
  if (LONE_SURROGATE.test(value)) return "it contains a lone surrogate";
  // A UTF-16 unit is at most 3 UTF-8 bytes: short text needs no encoding (the cache hot path).
  if (value.length * 3 <= maxBytes) return undefined;
  const bytes = encoder.encode(value).length;
  if (bytes > maxBytes) return `it is ${bytes} bytes long, over the limit of ${maxBytes}`;
  return undefined;
}

/**
 * The problem with an id, or `undefined` when it is valid.
 *
 * @param value The candidate id.
 * @returns Why it is not a valid id, or `undefined`.
 */
export function idProblem(value: unknown): string | undefined {
  if (value === "") return "it is empty";
  const problem = textProblem(value, MAX_ID_BYTES);
  if (problem !== undefined) return problem;
  if ((value as string).includes("#")) return 'it contains "#"';
  if ((value as string).trim() !== value) return "it has leading or trailing white space";
  return undefined;
}

/**
 * Checks an id and returns it.
 *
 * @param kind What the id names, for the message (`"client id"`).
 * @param value The candidate id.
 * @returns The id.
 * @throws {InvalidInputError} When the id could forge another key.
 */
export function checkId(kind: string, value: unknown): string {
  const problem = idProblem(value);
  if (problem !== undefined) throw new InvalidInputError(`Invalid ${kind} ${quote(value)}: ${problem}`);
  return value as string;
}

/**
 * Checks a calendar year (1900 to 9999) and returns it.
 *
 * @param value The candidate year.
 * @returns The year.
 * @throws {InvalidInputError} When it is not an integer year.
 */
export function checkYear(value: unknown): number {
  if (!Number.isInteger(value) || (value as number) < 1900 || (value as number) > 9999) {
    throw new InvalidInputError(`Invalid year ${quote(value)}: it is not an integer from 1900 to 9999`);
  }
  return value as number;
}

/**
 * The id of a pipeline step number: zero-padded to four digits, so that text
 * order is step order (`100` -> `"0100"`).
 *
 * @param step A step number, 1 to 9999.
 * @returns The step id.
 * @throws {InvalidInputError} When the step is not an integer from 1 to 9999.
 */
export function stepId(step: number): string {
  if (!Number.isInteger(step) || step < 1 || step > 9999) {
    throw new InvalidInputError(`Invalid step ${quote(step)}: it is not an integer from 1 to 9999`);
  }
  return String(step).padStart(4, "0");
}

/** A DynamoDB primary key. */
export interface ItemKey {
  /** Partition key. */
  PK: string;
  /** Sort key. */
  SK: string;
}

/** Key builders for every table; each validates its ids. */
export const itemKeys = {
  /** Partition of a plan's steps: `CLIENT#{planId}`. */
  pipelinePartition(planId: string): string {
    return `CLIENT#${checkId("plan id", planId)}`;
  },
  /** A pipeline step: `CLIENT#{planId}` / `STEP#0100`. */
  pipelineStep(planId: string, step: number): ItemKey {
    return { PK: itemKeys.pipelinePartition(planId), SK: `STEP#${stepId(step)}` };
  },
  /** The validation rules of one client (or GLOBAL) for one field: `CLIENT#{clientId}` / `FIELD#{field}`. */
  validationRules(clientId: string, field: string): ItemKey {
    return { PK: `CLIENT#${checkId("client id", clientId)}`, SK: `FIELD#${checkId("field", field)}` };
  },
  /** A calculation rule of one client (or GLOBAL): `CLIENT#{clientId}` / `RULE#{ruleId}`. */
  calculationRule(clientId: string, ruleId: string): ItemKey {
    return { PK: `CLIENT#${checkId("client id", clientId)}`, SK: `RULE#${checkId("rule id", ruleId)}` };
  },
  /** The IRS limits of a year: `YEAR#{year}` / `LIMITS`. */
  irsLimits(year: number): ItemKey {
    return { PK: `YEAR#${checkYear(year)}`, SK: "LIMITS" };
  },
  /** Partition of everything about one batch: `BATCH#{batchId}`. */
  batchPartition(batchId: string): string {
    return `BATCH#${checkId("batch id", batchId)}`;
  },
  /** A batch's state: `BATCH#{batchId}` / `STATE`. */
  batchState(batchId: string): ItemKey {
    return { PK: itemKeys.batchPartition(batchId), SK: "STATE" };
  },
  /** One step's result: `BATCH#{batchId}` / `STEP#{step}`. */
  processingResult(batchId: string, step: string): ItemKey {
    return { PK: itemKeys.batchPartition(batchId), SK: `STEP#${checkId("step", step)}` };
  },
  /** One audit entry: `BATCH#{batchId}` / `ENTRY#{entryId}`. */
  auditEntry(batchId: string, entryId: string): ItemKey {
    return { PK: itemKeys.batchPartition(batchId), SK: `${AUDIT_ENTRY_PREFIX}${checkId("audit entry id", entryId)}` };
  },
  /**
   * The seal of a batch's audit trail: `BATCH#{batchId}` / `SEAL`, beside its
   * entries (`ENTRY#...`), so a batch id can never reach another partition
   * kind of the audit-log table (rule changes live under `RULES#...`).
   */
  auditSeal(batchId: string): ItemKey {
    return { PK: itemKeys.batchPartition(batchId), SK: "SEAL" };
  },
  /** Partition of the audited changes of one owner's rules (a client or GLOBAL): `RULES#{clientId}`. */
  ruleChangesPartition(clientId: string): string {
    return `RULES#${checkId("client id", clientId)}`;
  },
  /**
   * One audited rule change: `RULES#{clientId}` / `CHANGE#{at}#{changeId}`.
   * `at` is a stored UTC timestamp, so sort-key order is time order, then id order.
   */
  ruleChange(clientId: string, at: string, changeId: string): ItemKey {
    return { PK: itemKeys.ruleChangesPartition(clientId), SK: `CHANGE#${at}#${checkId("change id", changeId)}` };
  },
  /** An agent's configuration: `AGENT#{agent}` / `CONFIG`. */
  agentConfig(agent: string): ItemKey {
    return { PK: `AGENT#${checkId("agent", agent)}`, SK: "CONFIG" };
  },
} as const;

/** The sort-key prefix of audit entries: what a listing of a batch's trail queries. */
export const AUDIT_ENTRY_PREFIX = "ENTRY#";

/**
 * Where the seal copy of a batch lives in a file store:
 * `audit-seals/{batchId}.json`, the id percent-encoded (a `/` in it would
 * otherwise make folders, and `..` a path stores refuse).
 *
 * @param batchId The batch.
 * @returns The path.
 * @throws {InvalidInputError} When the batch id is not valid.
 *
 * @example A batch id with a slash stays one file
 * ```ts
 * import { auditSealPath } from "@bluestar/persistence";
 *
 * console.assert(auditSealPath("B1") === "audit-seals/B1.json");
 * console.assert(auditSealPath("2026/11") === "audit-seals/2026%2F11.json");
 * ```
 */
export function auditSealPath(batchId: string): string {
  return `audit-seals/${encodeURIComponent(checkId("batch id", batchId))}.json`;
}

/** What a cache key caches. */
export type CacheKind = "pipeline" | "validation" | "calculation" | "irs" | "agent";

/** The length of a SHA-256 digest in hex. */
const DIGEST_CHARS = 64;

/**
 * A cache key, namespaced by schema version and environment so two
 * environments sharing one Redis never read each other's entries:
 * `bluestar:v2:{namespace}:{kind}:{part}:...`. Each part is
 * percent-encoded, so no id can forge a separator or a Redis Cluster hash tag.
 *
 * Every valid id makes a usable key: a key that would be longer than
 * {@linkcode MAX_CACHE_KEY_BYTES} (percent-encoding triples a non-ASCII
 * byte, so two 256-byte ids can be 1,536 bytes) keeps as much of its start
 * as fits, then `#` and the SHA-256 of the whole key in hex. A part never
 * holds a raw `#`, so a hashed key never equals a readable one.
 *
 * @param namespace The environment, usually the table suffix (may be empty).
 * @param kind What is cached.
 * @param parts The ids that identify it, already validated.
 * @returns The cache key, at most {@linkcode MAX_CACHE_KEY_BYTES} bytes.
 *
 * @example Keys of short and of long ids
 * ```ts
 * import { cacheKey } from "@bluestar/persistence";
 *
 * console.assert(cacheKey("-dev", "calculation", "ACME", "FICA") === "bluestar:v2:-dev:calculation:ACME:FICA");
 * const long = cacheKey("-dev", "calculation", "é".repeat(128), "é".repeat(128));
 * console.assert(long.length === 1024 && /#[0-9a-f]{64}$/.test(long));
 * ```
 */
export function cacheKey(namespace: string, kind: CacheKind, ...parts: Array<string | number>): string {
  return versionedKey([namespace, kind, ...parts].map((part) => encodeURIComponent(String(part))));
}

/** The cache key of parts already encoded: versioned, and hashed when too long (see {@linkcode cacheKey}). */
function versionedKey(encoded: readonly string[]): string {
  const key = `bluestar:v${CACHE_SCHEMA_VERSION}:${encoded.join(":")}`;
  // Percent-encoded text is ASCII: its length is its size in bytes. Short keys (nearly all) are not hashed.
  if (key.length <= MAX_CACHE_KEY_BYTES) return key;
  const digest = createHash("sha256").update(key).digest("hex");
  return `${key.slice(0, MAX_CACHE_KEY_BYTES - DIGEST_CHARS - 1)}#${digest}`;
}

/** The longest percent-encoded subject a hash tag holds as it is; a longer one is hashed. */
const MAX_TAG_SUBJECT_CHARS = 128;

/**
 * The cache key of one owner's versions of a rule (calculation: the rule
 * id; validation: the field): `bluestar:v2:{namespace}:{kind}:{<kind>:<subject>}:{owner}`.
 * The braces are a Redis Cluster hash tag on the rule, so a client's key
 * and GLOBAL's key of one rule live in one slot and are read in one `MGET`.
 * A subject too long to keep the tag within the first bytes of a hashed key
 * is tagged by its SHA-256 instead (`#` then hex, which no encoded id holds).
 *
 * @param namespace The environment, usually the table suffix (may be empty).
 * @param kind What is cached.
 * @param subject The rule id (calculation) or the field (validation), already validated.
 * @param owner The owner: a client id or `"GLOBAL"`, already validated.
 * @returns The cache key, at most {@linkcode MAX_CACHE_KEY_BYTES} bytes.
 *
 * @example The keys of one rule share a hash tag
 * ```ts
 * import { ruleVersionsCacheKey } from "./keys.ts";
 *
 * const own = ruleVersionsCacheKey("-dev", "calculation", "FICA", "ACME");
 * const global = ruleVersionsCacheKey("-dev", "calculation", "FICA", "GLOBAL");
 * console.assert(own === "bluestar:v2:-dev:calculation:{calculation:FICA}:ACME");
 * console.assert(own.slice(0, own.indexOf("}")) === global.slice(0, global.indexOf("}")));
 * ```
 */
export function ruleVersionsCacheKey(
  namespace: string,
  kind: "calculation" | "validation",
  subject: string,
  owner: string,
): string {
  const encoded = encodeURIComponent(subject);
  const tagged = encoded.length <= MAX_TAG_SUBJECT_CHARS
    ? encoded
    : `#${createHash("sha256").update(subject).digest("hex")}`;
  return versionedKey([encodeURIComponent(namespace), kind, `{${kind}:${tagged}}`, encodeURIComponent(owner)]);
}

/**
 * The Redis pub/sub channel that carries a namespace's cache invalidations:
 * `bluestar:v1:{namespace}:invalidate`. It holds no hash tag, so on a Redis
 * Cluster it reaches every node (`PUBLISH` is broadcast).
 *
 * @param namespace The environment, usually the table suffix (may be empty).
 * @returns The channel name.
 *
 * @example The channel of an environment
 * ```ts
 * import { invalidationChannel } from "./keys.ts";
 *
 * console.assert(invalidationChannel("-dev") === "bluestar:v1:-dev:invalidate");
 * ```
 */
export function invalidationChannel(namespace: string): string {
  return `bluestar:v${CACHE_SCHEMA_VERSION}:${encodeURIComponent(namespace)}:invalidate`;
}

/**
 * The problem with a file path, or `undefined` when it is valid. A path is a
 * relative, `/`-separated key: not empty, no leading `/`, no empty, `.` or
 * `..` segment, no backslash, no control character, at most
 * {@linkcode MAX_PATH_BYTES} bytes.
 *
 * @param value The candidate path.
 * @returns Why it is not a valid path, or `undefined`.
 */
export function pathProblem(value: unknown): string | undefined {
  if (value === "") return "it is empty";
  const problem = textProblem(value, MAX_PATH_BYTES);
  if (problem !== undefined) return problem;
  const path = value as string;
  if (path.startsWith("/")) return 'it starts with "/"';
  if (path.includes("\\")) return "it contains a backslash";
  for (const segment of path.split("/")) {
    if (segment === "") return "it has an empty segment";
    if (segment === "." || segment === "..") return `it has a ${quote(segment)} segment`;
  }
  return undefined;
}

/**
 * Checks a file path and returns it.
 *
 * @param value The candidate path.
 * @param kind What the path is, for the message.
 * @returns The path.
 * @throws {InvalidInputError} When the path is not a valid relative key.
 */
export function checkPath(value: unknown, kind = "path"): string {
  const problem = pathProblem(value);
  if (problem !== undefined) throw new InvalidInputError(`Invalid ${kind} ${quote(value)}: ${problem}`);
  return value as string;
}

/**
 * Checks a listing prefix and returns it. A prefix is a path that may be
 * empty (everything) and may end with `/`.
 *
 * @param value The candidate prefix.
 * @returns The prefix.
 * @throws {InvalidInputError} When the prefix could never match a valid path.
 */
export function checkPrefix(value: unknown): string {
  if (value === "") return "";
  const trimmed = typeof value === "string" && value.endsWith("/") ? value.slice(0, -1) : value;
  const problem = trimmed === "" ? 'it is "/"' : pathProblem(trimmed);
  if (problem !== undefined) throw new InvalidInputError(`Invalid prefix ${quote(value)}: ${problem}`);
  return value as string;
}

/**
 * The prefix under which `S3FileStore` stages a streamed write before it
 * copies it into place (its SHA-256 is known only at the end, and S3 takes
 * metadata only when an object is created). The empty segment makes every
 * staging key an invalid path: no store call can read, write or collide
 * with one, and listings skip them. A lifecycle rule on this prefix removes
 * what a process that died mid-write left.
 */
export const STAGING_PREFIX = ".bluestar-staging//";

/**
 * The staging key of one streamed write.
 *
 * @param id A unique id (a UUID).
 * @returns The key, under {@linkcode STAGING_PREFIX}.
 *
 * @example A key no path can be
 * ```ts
 * import { pathProblem, stagingKey } from "./keys.ts";
 *
 * console.assert(pathProblem(stagingKey(crypto.randomUUID())) !== undefined);
 * ```
 */
export function stagingKey(id: string): string {
  return `${STAGING_PREFIX}${id}`;
}

/** The most paths a listing page may hold: S3's limit on one `ListObjectsV2` page. */
export const MAX_PAGE_SIZE = 1000;

/**
 * The problem with a listing page size, or `undefined` when it is valid: an
 * integer from 1 to {@linkcode MAX_PAGE_SIZE}. Every file store checks its
 * `pageSize` option with this rule, so none loops on empty pages or loses
 * paths where another lists them.
 *
 * @param value The candidate page size.
 * @returns Why it is not a valid page size, or `undefined`.
 *
 * @example Check a page size
 * ```ts
 * import { pageSizeProblem } from "./keys.ts";
 *
 * console.assert(pageSizeProblem(1000) === undefined);
 * console.assert(pageSizeProblem(0) === "it is not an integer from 1 to 1000");
 * ```
 */
export function pageSizeProblem(value: unknown): string | undefined {
  return Number.isInteger(value) && (value as number) >= 1 && (value as number) <= MAX_PAGE_SIZE
    ? undefined
    : `it is not an integer from 1 to ${MAX_PAGE_SIZE}`;
}

// S3's rules for general purpose bucket names: reserved prefixes and suffixes.
const BUCKET_PREFIXES = ["xn--", "sthree-", "amzn-s3-demo-"];
const BUCKET_SUFFIXES = ["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"];

/**
 * The problem with an S3 bucket name, or `undefined` when it follows S3's
 * naming rules for general purpose buckets: 3 to 63 characters of lowercase
 * letters, digits, dots and hyphens; a letter or digit first and last; no
 * two adjacent dots; not an IP address; none of the reserved prefixes
 * (`xn--`, `sthree-`, `amzn-s3-demo-`) or suffixes (`-s3alias`, `--ol-s3`,
 * `.mrap`, `--x-s3`, `--table-s3`). Checked before any request, so a bad
 * name is a configuration error rather than an S3 error later.
 *
 * @param value The candidate bucket name.
 * @returns Why it is not a valid bucket name, or `undefined`.
 *
 * @example Check a bucket name
 * ```ts
 * import { bucketNameProblem } from "./keys.ts";
 *
 * console.assert(bucketNameProblem("bluestar-files-dev") === undefined);
 * console.assert(bucketNameProblem("a..b") === "it has two adjacent dots");
 * ```
 */
export function bucketNameProblem(value: unknown): string | undefined {
  if (typeof value !== "string") return `it is a ${value === null ? "null" : typeof value}, not a string`;
  if (value.length < 3 || value.length > 63) return `it is ${value.length} characters long, not 3 to 63`;
  if (!/^[a-z0-9.-]+$/.test(value)) return "it has characters other than lowercase letters, digits, dots and hyphens";
  if (!/^[a-z0-9]/.test(value) || !/[a-z0-9]$/.test(value)) return "it does not begin and end with a letter or digit";
  if (value.includes("..")) return "it has two adjacent dots";
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(value)) return "it is formatted as an IP address";
  const prefix = BUCKET_PREFIXES.find((reserved) => value.startsWith(reserved));
  if (prefix !== undefined) return `it starts with the reserved prefix ${quote(prefix)}`;
  const suffix = BUCKET_SUFFIXES.find((reserved) => value.endsWith(reserved));
  if (suffix !== undefined) return `it ends with the reserved suffix ${quote(suffix)}`;
  return undefined;
}

/**
 * Checks a cache key: a non-empty string of at most
 * {@linkcode MAX_CACHE_KEY_BYTES} UTF-8 bytes with no control character.
 * Every key {@linkcode cacheKey} makes passes.
 *
 * @param value The candidate key.
 * @returns The key.
 * @throws {InvalidInputError} When the key is not usable.
 */
export function checkCacheKey(value: unknown): string {
  const problem = value === "" ? "it is empty" : textProblem(value, MAX_CACHE_KEY_BYTES);
  if (problem !== undefined) throw new InvalidInputError(`Invalid cache key ${quote(value)}: ${problem}`);
  return value as string;
}

/**
 * Orders paths by code point, which is the UTF-8 byte order S3 lists keys
 * in (plain `sort()` orders by UTF-16 code unit and puts `"\u{1F600}"` before
 * `"\uFFFD"`).
 *
 * @param a A path.
 * @param b Another path.
 * @returns Negative, zero or positive, as for `Array.prototype.sort`.
 */
export function comparePaths(a: string, b: string): number {
  const length = Math.min(a.length, b.length);
  for (let index = 0; index < length; index++) {
    const x = a.charCodeAt(index);
    const y = b.charCodeAt(index);
    if (x === y) continue;
    const xIsSurrogate = x >= 0xd800 && x <= 0xdfff;
    const yIsSurrogate = y >= 0xd800 && y <= 0xdfff;
    // A surrogate starts a code point above U+FFFF, so it outranks any BMP unit.
    if (xIsSurrogate !== yIsSurrogate) return xIsSurrogate ? 1 : -1;
    return x - y;
  }
  return a.length - b.length;
}
