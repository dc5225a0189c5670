/**
 * The error hierarchy of BlueStar persistence.
 *
 * Every error the library throws is a {@linkcode BlueStarError} with a stable
 * {@linkcode BlueStarError.code} (catch by `code`, it survives bundling and
 * realms where `instanceof` does not) and the underlying `cause`, when there
 * is one. No raw AWS SDK or Redis error escapes a backend.
 *
 * ```
 * BlueStarError
 * ├── RulesStoreError            RULES_STORE_ERROR
 * │   ├── RuleNotFoundError      RULE_NOT_FOUND
 * │   ├── PipelineNotFoundError  PIPELINE_NOT_FOUND
 * │   ├── IrsLimitsNotFoundError IRS_LIMITS_NOT_FOUND
 * │   ├── ConflictError          CONFLICT
 * │   └── CorruptItemError       CORRUPT_ITEM
 * ├── CacheError                 CACHE_ERROR
 * ├── FileStoreError             FILE_STORE_ERROR
 * │   ├── FileNotFoundError      FILE_NOT_FOUND
 * │   └── IntegrityError         INTEGRITY_ERROR
 * ├── InvalidInputError          INVALID_INPUT
 * └── ConfigError                CONFIG_ERROR
 * ```
 *
 * @module
 */

/** The stable code of every error class, one per class. */
export type BlueStarErrorCode =
  | "BLUESTAR_ERROR"
  | "RULES_STORE_ERROR"
  | "RULE_NOT_FOUND"
  | "PIPELINE_NOT_FOUND"
  | "IRS_LIMITS_NOT_FOUND"
  | "CONFLICT"
  | "CORRUPT_ITEM"
  | "CACHE_ERROR"
  | "FILE_STORE_ERROR"
  | "FILE_NOT_FOUND"
  | "INTEGRITY_ERROR"
  | "INVALID_INPUT"
  | "CONFIG_ERROR";

/** Options every BlueStar error takes. */
export interface BlueStarErrorOptions {
  /** The error that caused this one, kept as `cause`. */
  cause?: unknown;
}

/**
 * The root of the hierarchy. Catch it to handle every failure of the library.
 *
 * @example Catch by code
 * ```ts
 * import { BlueStarError } from "@bluestar/persistence";
 *
 * try {
 *   throw new BlueStarError("Failed to do something");
 * } catch (error) {
 *   if (error instanceof BlueStarError && error.code === "BLUESTAR_ERROR") {
 *     // handle it
 *   }
 * }
 * ```
 */
export class BlueStarError extends Error {
  /** The stable code of this kind of error. */
  readonly code: BlueStarErrorCode;

  /**
   * Creates the error; its `code` comes from its class.
   *
   * @param message Sentence case, no final period, names the action and the value.
   * @param options The `cause` to keep.
   */
  constructor(message: string, options?: BlueStarErrorOptions) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = codeOf(new.target);
  }
}

/**
 * A rules-store operation failed (DynamoDB unreachable, throttled past the
 * retries, access denied, ...).
 *
 * @example Catch a store failure
 * ```ts
 * import { RulesStoreError } from "@bluestar/persistence";
 *
 * const error = new RulesStoreError('Failed to read pipeline "P1"');
 * console.assert(error.code === "RULES_STORE_ERROR");
 * ```
 */
export class RulesStoreError extends BlueStarError {}

/**
 * Neither the client nor GLOBAL has the calculation rule asked for.
 *
 * @example
 * ```ts
 * import { RuleNotFoundError } from "@bluestar/persistence";
 *
 * const error = new RuleNotFoundError('Calculation rule "FICA_SS" not found for client "ACME" or GLOBAL');
 * console.assert(error.code === "RULE_NOT_FOUND");
 * ```
 */
export class RuleNotFoundError extends RulesStoreError {}

/**
 * The plan has no pipeline steps.
 *
 * @example
 * ```ts
 * import { PipelineNotFoundError } from "@bluestar/persistence";
 *
 * const error = new PipelineNotFoundError('Pipeline "P1" not found');
 * console.assert(error.code === "PIPELINE_NOT_FOUND");
 * ```
 */
export class PipelineNotFoundError extends RulesStoreError {}

/**
 * No IRS limits are stored for the year asked for.
 *
 * @example
 * ```ts
 * import { IrsLimitsNotFoundError } from "@bluestar/persistence";
 *
 * const error = new IrsLimitsNotFoundError('IRS limits not found for year "1999"');
 * console.assert(error.code === "IRS_LIMITS_NOT_FOUND");
 * ```
 */
export class IrsLimitsNotFoundError extends RulesStoreError {}

/**
 * A conditional write lost: a stale batch-state version, or an audit entry id
 * that is already taken. Nothing was written.
 *
 * @example
 * ```ts
 * import { ConflictError } from "@bluestar/persistence";
 *
 * const error = new ConflictError('Failed to append audit entry "E1": the id is taken');
 * console.assert(error.code === "CONFLICT");
 * ```
 */
export class ConflictError extends RulesStoreError {}

/**
 * A stored item does not decode into its domain type (a missing attribute,
 * a wrong type). The message names the table and the key.
 *
 * @example
 * ```ts
 * import { CorruptItemError } from "@bluestar/persistence";
 *
 * const error = new CorruptItemError('Item "CLIENT#GLOBAL/RULE#X" in table "bluestar-calculation-rules" is corrupt');
 * console.assert(error.code === "CORRUPT_ITEM");
 * ```
 */
export class CorruptItemError extends RulesStoreError {}

/**
 * A cache operation failed (Redis down, timed out, refused the command).
 * The rules store never lets it fail a read.
 *
 * @example
 * ```ts
 * import { CacheError } from "@bluestar/persistence";
 *
 * const error = new CacheError('Failed to get cache key "k"');
 * console.assert(error.code === "CACHE_ERROR");
 * ```
 */
export class CacheError extends BlueStarError {}

/**
 * A file-store operation failed.
 *
 * @example
 * ```ts
 * import { FileStoreError } from "@bluestar/persistence";
 *
 * const error = new FileStoreError('Failed to write file "in/a.csv"');
 * console.assert(error.code === "FILE_STORE_ERROR");
 * ```
 */
export class FileStoreError extends BlueStarError {}

/**
 * The file asked for does not exist.
 *
 * @example
 * ```ts
 * import { FileNotFoundError } from "@bluestar/persistence";
 *
 * const error = new FileNotFoundError('File "in/a.csv" not found');
 * console.assert(error.code === "FILE_NOT_FOUND");
 * ```
 */
export class FileNotFoundError extends FileStoreError {}

/**
 * A file's bytes do not match the SHA-256 stored when it was written: it was
 * changed or damaged outside the store, or in transit. A stream that meets
 * it errors before its last chunk, so no consumer sees a complete stream of
 * wrong bytes.
 *
 * @example Tell damaged content from a failed request
 * ```ts
 * import { FileStoreError, IntegrityError } from "@bluestar/persistence";
 *
 * const error = new IntegrityError('Failed to read file "in/a.csv": its content does not match its SHA-256');
 * console.assert(error instanceof FileStoreError && error.code === "INTEGRITY_ERROR");
 * ```
 */
export class IntegrityError extends FileStoreError {}

/**
 * An id, key, path or value was rejected before any network call.
 *
 * @example
 * ```ts
 * import { InvalidInputError } from "@bluestar/persistence";
 *
 * const error = new InvalidInputError('Invalid client id "A#B": it contains "#"');
 * console.assert(error.code === "INVALID_INPUT");
 * ```
 */
export class InvalidInputError extends BlueStarError {}

/**
 * The configuration is missing or malformed. The message lists every problem.
 *
 * @example
 * ```ts
 * import { ConfigError } from "@bluestar/persistence";
 *
 * const error = new ConfigError('Invalid configuration: BLUESTAR_BACKEND "x" is not "aws" or "memory"');
 * console.assert(error.code === "CONFIG_ERROR");
 * ```
 */
export class ConfigError extends BlueStarError {}

const CODES = new Map<unknown, BlueStarErrorCode>([
  [BlueStarError, "BLUESTAR_ERROR"],
  [RulesStoreError, "RULES_STORE_ERROR"],
  [RuleNotFoundError, "RULE_NOT_FOUND"],
  [PipelineNotFoundError, "PIPELINE_NOT_FOUND"],
  [IrsLimitsNotFoundError, "IRS_LIMITS_NOT_FOUND"],
  [ConflictError, "CONFLICT"],
  [CorruptItemError, "CORRUPT_ITEM"],
  [CacheError, "CACHE_ERROR"],
  [FileStoreError, "FILE_STORE_ERROR"],
  [FileNotFoundError, "FILE_NOT_FOUND"],
  [IntegrityError, "INTEGRITY_ERROR"],
  [InvalidInputError, "INVALID_INPUT"],
  [ConfigError, "CONFIG_ERROR"],
]);

/** The code of the nearest library class in the prototype chain, so a caller's subclass keeps its parent's code. */
function codeOf(target: unknown): BlueStarErrorCode {
  for (let current: unknown = target; typeof current === "function"; current = Object.getPrototypeOf(current)) {
    const code = CODES.get(current);
    if (code !== undefined) return code;
  }
  return "BLUESTAR_ERROR";
}

/**
 * Quotes a value for an error message: JSON string syntax, so control
 * characters and quotes stay visible, cut to 80 characters so a hostile
 * megabyte id never becomes a megabyte message.
 *
 * @param value The value to quote.
 * @returns The quoted value.
 */
export function quote(value: unknown): string {
  const text = typeof value === "string" ? value : String(value);
  const shown = text.length > 80 ? `${text.slice(0, 77)}...` : text;
  return JSON.stringify(shown);
}

/** What every message and inspectable object shows in place of a secret. */
export const REDACTED = "[redacted]";

const HIERARCHICAL_URL = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//;
/** Schemes whose authority also ends at a backslash (the WHATWG URL standard's "special" schemes). */
const SPECIAL_SCHEMES = new Set(["http", "https", "ws", "wss", "ftp", "file"]);

/**
 * A URL as the library shows it (in a message, a log line, a configuration
 * object): its userinfo (`user:password@`) replaced by `[redacted]`, the rest
 * as given, so the scheme, host and port stay visible. Text that does not
 * parse as a URL with a host could hold a password anywhere: only its scheme
 * is shown (`redis://[redacted]`), or nothing of it (`[redacted]`).
 *
 * @param url The URL, or any value (shown as text).
 * @returns The text to show.
 *
 * @example Redact a password
 * ```ts
 * import { redactUrl } from "./errors.ts";
 *
 * console.assert(redactUrl("redis://user:s3cret@cache:6379/0") === "redis://[redacted]@cache:6379/0");
 * console.assert(redactUrl("http://127.0.0.1:4566") === "http://127.0.0.1:4566");
 * console.assert(redactUrl("s3cret") === "[redacted]");
 * ```
 */
export function redactUrl(url: unknown): string {
  const text = String(url);
  const scheme = HIERARCHICAL_URL.exec(text);
  let parsed: URL | undefined;
  try {
    parsed = new URL(text);
  } catch {
    parsed = undefined;
  }
  if (scheme === null || parsed === undefined) return `${scheme?.[0] ?? ""}${REDACTED}`;
  if (parsed.username === "" && parsed.password === "") return text;
  // As the URL parser reads it: the authority ends at the first "/", "?" or "#" (or "\" for special schemes),
  // and the userinfo at the authority's last "@".
  const rest = text.slice(scheme[0].length);
  const end = rest.search(SPECIAL_SCHEMES.has(scheme[1].toLowerCase()) ? /[/?#\\]/ : /[/?#]/);
  const at = (end === -1 ? rest : rest.slice(0, end)).lastIndexOf("@");
  return `${scheme[0]}${REDACTED}${at === -1 ? "" : rest.slice(at)}`;
}

/**
 * Text with each secret, as given and URL-encoded, replaced by `[redacted]`:
 * the one scrubbing scheme of every message and cause the library keeps.
 *
 * @param text The text.
 * @param secrets Values that must not be shown (empty ones are skipped).
 * @returns The redacted text.
 *
 * @example Redact a password
 * ```ts
 * import { redactSecrets } from "./errors.ts";
 *
 * console.assert(redactSecrets("WRONGPASS for p@ss", ["p@ss"]) === "WRONGPASS for [redacted]");
 * ```
 */
export function redactSecrets(text: string, secrets: readonly string[]): string {
  let redacted = text;
  for (const secret of secrets) {
    if (secret === "") continue;
    redacted = redacted.replaceAll(secret, REDACTED).replaceAll(encodeURIComponent(secret), REDACTED);
  }
  return redacted;
}

/**
 * A copy of an error to keep as a `cause` in place of one that shows a
 * secret: its name, its message through `redact`, a stack of only those,
 * the listed properties, and its own cause copied the same way (`depth`
 * levels down). Nothing else of the original (its other properties, its
 * stack frames, raw bytes) is kept.
 *
 * @param error The error.
 * @param redact Removes secrets from a text (see {@linkcode redactSecrets}).
 * @param kept The properties to copy as they are (status fields that show no secret).
 * @default {[]}
 * @param depth How many levels of nested causes are copied.
 * @default {4}
 * @returns The copy.
 *
 * @example Keep a redacted cause
 * ```ts
 * import { redactedError, redactSecrets } from "./errors.ts";
 *
 * const copy = redactedError(new Error("auth failed for s3cret"), (text) => redactSecrets(text, ["s3cret"]));
 * console.assert(copy.message === "auth failed for [redacted]" && !String(copy.stack).includes("s3cret"));
 * ```
 */
export function redactedError(
  error: object,
  redact: (text: string) => string,
  kept: readonly string[] = [],
  depth = 4,
): Error {
  const source = error as { name?: unknown; message?: unknown; cause?: unknown };
  const name = typeof source.name === "string" ? source.name : "Error";
  const message = redact(typeof source.message === "string" ? source.message : "");
  const nested = source.cause;
  const cause = typeof nested === "object" && nested !== null && depth > 0
    ? redactedError(nested, redact, kept, depth - 1)
    : undefined;
  const copy = new Error(message, cause === undefined ? undefined : { cause });
  copy.name = name;
  copy.stack = `${name}: ${message}`;
  for (const property of kept) {
    if (property in error) {
      (copy as unknown as Record<string, unknown>)[property] = (error as Record<string, unknown>)[property];
    }
  }
  return copy;
}
