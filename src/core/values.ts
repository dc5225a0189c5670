/**
 * Exact decimals and JSON values: the two value kinds the library stores.
 *
 * @module
 */

import { InvalidInputError, quote } from "./errors.ts";
import { checkCacheKey } from "./keys.ts";
import { MAX_TIMER_MS } from "./time.ts";
import type { Decimal } from "./types.ts";

/** The most significant digits a {@linkcode Decimal} may have (DynamoDB's precision). */
export const MAX_DECIMAL_DIGITS = 38;

const DECIMAL = /^(-?)(\d+)(?:\.(\d+))?$/;

/**
 * The problem with a decimal string, or `undefined` when it is a valid
 * {@linkcode Decimal}: plain notation, at most 38 significant digits, within
 * DynamoDB's range (1E-130 to below 1E126).
 *
 * @param value The candidate decimal.
 * @returns Why it is not a valid decimal, or `undefined`.
 */
export function decimalProblem(value: unknown): string | undefined {
  if (typeof value !== "string") {
    return typeof value === "number"
      ? "it is a number, not a decimal string (a number cannot hold money exactly)"
      : `it is a ${value === null ? "null" : typeof value}, not a decimal string`;
  }
  const match = DECIMAL.exec(value);
  if (match === null) return "it is not a decimal in plain notation";
  const [, , whole, fraction = ""] = match;
  const digits = (whole + fraction).replace(/^0+/, "").replace(/0+$/, "");
  if (digits.length > MAX_DECIMAL_DIGITS) {
    return `it has ${digits.length} significant digits, over the limit of ${MAX_DECIMAL_DIGITS}`;
  }
  const integerDigits = whole.replace(/^0+/, "").length;
  if (integerDigits > 126) return "it is 1E126 or larger";
  if (integerDigits === 0 && digits.length > 0) {
    const leadingZeros = fraction.length - fraction.replace(/^0+/, "").length;
    if (leadingZeros >= 130) return "it is smaller than 1E-130";
  }
  return undefined;
}

/**
 * The canonical form of a valid decimal: no leading zeros, no trailing
 * fractional zeros, no `-0`. Two decimals are equal exactly when their
 * canonical forms are.
 *
 * @param value A valid decimal (see {@linkcode decimalProblem}).
 * @returns The canonical form.
 */
export function canonicalDecimal(value: Decimal): Decimal {
  const [, sign, whole, fraction = ""] = DECIMAL.exec(value)!;
  const integer = whole.replace(/^0+(?=\d)/, "");
  const decimals = fraction.replace(/0+$/, "");
  const body = decimals === "" ? integer : `${integer}.${decimals}`;
  return body === "0" ? "0" : `${sign}${body}`;
}

/**
 * Compares two valid decimals exactly, digit by digit: never through a
 * float, where `"1.00000000000000000001"` would equal `"1"`.
 *
 * @param a A valid decimal (see {@linkcode decimalProblem}).
 * @param b A valid decimal.
 * @returns A negative number when `a < b`, zero when they are equal, a positive number when `a > b`.
 *
 * @example Compare a rate with 1
 * ```ts
 * import { compareDecimals } from "./values.ts";
 *
 * console.assert(compareDecimals("1.00000000000000000001", "1") > 0);
 * console.assert(compareDecimals("-0.0", "0") === 0);
 * ```
 */
export function compareDecimals(a: Decimal, b: Decimal): number {
  const [x, y] = [canonicalDecimal(a), canonicalDecimal(b)];
  const negative = x.startsWith("-");
  if (negative !== y.startsWith("-")) return negative ? -1 : 1;
  const [xWhole, xFraction = ""] = x.replace("-", "").split(".");
  const [yWhole, yFraction = ""] = y.replace("-", "").split(".");
  // Canonical whole parts have no leading zeros: the longer one is the larger magnitude.
  let magnitude = Math.sign(xWhole.length - yWhole.length);
  if (magnitude === 0) {
    const width = Math.max(xFraction.length, yFraction.length);
    const [xDigits, yDigits] = [xWhole + xFraction.padEnd(width, "0"), yWhole + yFraction.padEnd(width, "0")];
    magnitude = xDigits < yDigits ? -1 : xDigits > yDigits ? 1 : 0;
  }
  return negative && magnitude !== 0 ? -magnitude : magnitude;
}

/**
 * The deepest a JSON value may nest: arrays and objects inside each other,
 * at most this many levels. Deeper values are refused: reading or copying
 * them (`structuredClone`, recursive checks) would overflow the stack, so a
 * backend would fail on them where another does not.
 */
export const MAX_JSON_DEPTH = 100;

/**
 * The largest free-form payload (batch data, result output, audit details,
 * agent settings), in UTF-8 bytes of its JSON. DynamoDB refuses items over
 * 400 KB; every backend refuses a payload over this limit, so none keeps what
 * another cannot.
 */
export const MAX_PAYLOAD_BYTES: number = 256 * 1024;

/**
 * The most UTF-8 bytes of a short free-text field: a pipeline step's `name`
 * and `action`, a calculation rule's `ruleType`, each of a validation rule's
 * `allowedValues`, an audit entry's `action` and `actor`.
 */
export const MAX_LABEL_BYTES: number = 4 * 1024;

/**
 * The most UTF-8 bytes of a descriptive free-text field: a calculation
 * rule's `description`, a validation rule's `message` and `pattern`.
 */
export const MAX_DESCRIPTION_BYTES: number = 16 * 1024;

/**
 * The most UTF-8 bytes of a processing result's `error`. With a payload of
 * {@linkcode MAX_PAYLOAD_BYTES} and ids at their limit, a result stays well
 * within DynamoDB's 400 KB item limit.
 */
export const MAX_ERROR_BYTES: number = 64 * 1024;

/**
 * The problem with a JSON value, or `undefined` when it round-trips through
 * JSON unchanged: `null`, booleans, finite numbers, strings, arrays and plain
 * objects, with no cycle, nested at most {@linkcode MAX_JSON_DEPTH} levels.
 * `undefined`, `bigint`, functions, symbols, `NaN`, `Infinity`, dates, maps
 * and class instances are rejected rather than silently changed.
 *
 * @param value The candidate value.
 * @returns Why it is not a JSON value (with the path to the bad part), or `undefined`.
 */
export function jsonProblem(value: unknown): string | undefined {
  return jsonProblemAt(value, "value", new Set());
}

function jsonProblemAt(value: unknown, path: string, ancestors: Set<object>): string | undefined {
  if (value === null || typeof value === "boolean" || typeof value === "string") return undefined;
  if (typeof value === "number") {
    return Number.isFinite(value) ? undefined : `${path} is ${value}, which JSON cannot hold`;
  }
  if (typeof value !== "object") return `${path} is a ${typeof value}, which JSON cannot hold`;
  if (ancestors.has(value)) return `${path} is a cycle`;
  // The ancestors are the containers above this one: the check never recurses deeper than the limit.
  if (ancestors.size >= MAX_JSON_DEPTH) return `${path} nests deeper than ${MAX_JSON_DEPTH} levels`;
  const isArray = Array.isArray(value);
  const prototype = Object.getPrototypeOf(value);
  if (!isArray && prototype !== Object.prototype && prototype !== null) {
    return `${path} is a ${value.constructor?.name ?? "class instance"}, not a plain object`;
  }
  ancestors.add(value);
  try {
    if (isArray) {
      for (let index = 0; index < value.length; index++) {
        const problem = jsonProblemAt(value[index], `${path}[${index}]`, ancestors);
        if (problem !== undefined) return problem;
      }
    } else {
      for (const [key, item] of Object.entries(value)) {
        const problem = jsonProblemAt(item, `${path}.${key}`, ancestors);
        if (problem !== undefined) return problem;
      }
    }
  } finally {
    ancestors.delete(value);
  }
  return undefined;
}

/** The longest cache TTL, in seconds (68 years: Redis' and every timer's safe range). */
export const MAX_TTL_SECONDS = 2_147_483_647;

/**
 * Checks the version of a write-through (see `ICacheBackend.writeThrough`):
 * a positive safe integer, so that it compares exactly in Redis' Lua.
 *
 * @param key The cache key, for the message.
 * @param version The version.
 * @returns The version as decimal text.
 * @throws {InvalidInputError} When the version is not a positive safe integer.
 */
export function cacheVersionText(key: string, version: number): string {
  if (!Number.isSafeInteger(version) || version < 1) {
    throw new InvalidInputError(
      `Failed to write through cache key ${quote(key)}: version ${quote(version)} is not a positive integer`,
    );
  }
  return String(version);
}

/**
 * Checks a cache write and encodes its value, before anything is sent.
 *
 * @param key The cache key.
 * @param ttlSeconds The TTL: a positive integer of seconds.
 * @param value The value: JSON.
 * @returns The value as JSON text.
 * @throws {InvalidInputError} When the key, the TTL or the value is not usable.
 */
export function encodeCacheWrite(key: string, ttlSeconds: number, value: unknown): string {
  checkCacheKey(key);
  if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1 || ttlSeconds > MAX_TTL_SECONDS) {
    throw new InvalidInputError(
      `Failed to cache key ${quote(key)}: TTL ${quote(ttlSeconds)} is not a positive integer of seconds`,
    );
  }
  if (value === undefined) {
    throw new InvalidInputError(`Failed to cache key ${quote(key)}: the value is undefined, which JSON cannot hold`);
  }
  const problem = jsonProblem(value);
  if (problem !== undefined) throw new InvalidInputError(`Failed to cache key ${quote(key)}: ${problem}`);
  return JSON.stringify(value);
}

/**
 * Checks the `timeoutMs` of a cache read (see `CacheEntryDetails.timeoutMs`).
 *
 * @param timeoutMs The candidate, `undefined` when none is given.
 * @returns It, when it is usable (or `undefined`).
 * @throws {InvalidInputError} When it is not a positive number of milliseconds a timer can wait.
 *
 * @example Check a read's timeout
 * ```ts
 * import { checkCacheTimeoutMs } from "./values.ts";
 *
 * console.assert(checkCacheTimeoutMs(50) === 50);
 * console.assert(checkCacheTimeoutMs(undefined) === undefined);
 * ```
 */
export function checkCacheTimeoutMs(timeoutMs: unknown): number | undefined {
  if (timeoutMs === undefined) return undefined;
  if (typeof timeoutMs === "number" && timeoutMs > 0 && timeoutMs <= MAX_TIMER_MS) return timeoutMs;
  throw new InvalidInputError(
    `Failed to read the cache: timeout ${quote(timeoutMs)} is not a positive number of milliseconds`,
  );
}

const utf8 = new TextEncoder();

/**
 * A copy of the bytes a `Uint8Array` shows, as a plain `Uint8Array` with a
 * buffer of its own: the one way bytes cross a store's boundary, in and out.
 * `slice()` is not enough: on a Node `Buffer` it returns a view that shares
 * the caller's memory (and a small `Buffer` shares a pool with others).
 *
 * @param data The bytes: a `Uint8Array`, a `Buffer` or any other subclass, or a view on a larger buffer.
 * @returns A plain `Uint8Array` holding the same bytes, sharing no memory with `data`.
 *
 * @example Copy a view on a larger buffer
 * ```ts
 * import { copyBytes } from "./values.ts";
 *
 * const backing = Uint8Array.of(1, 2, 3, 4);
 * const copy = copyBytes(backing.subarray(1, 3));
 * backing.fill(0);
 * console.assert(copy.length === 2 && copy[0] === 2 && copy.buffer.byteLength === 2);
 * ```
 */
export function copyBytes(data: Uint8Array): Uint8Array {
  // The Uint8Array constructor copies element by element into a new buffer, whatever the subclass.
  return new Uint8Array(data);
}

/**
 * The bytes of a file's content: a copy of a `Uint8Array` (see
 * {@linkcode copyBytes}), or a string as UTF-8.
 *
 * @param data The content.
 * @param path The path, for the message.
 * @returns The bytes, sharing no memory with `data`.
 * @throws {InvalidInputError} When the content is neither.
 *
 * @example Encode a string or copy bytes
 * ```ts
 * import { toBytes } from "./values.ts";
 *
 * console.assert(toBytes("é", "in/a.csv").length === 2);
 * ```
 */
export function toBytes(data: Uint8Array | string, path: string): Uint8Array {
  if (typeof data === "string") return utf8.encode(data);
  if (data instanceof Uint8Array) return copyBytes(data);
  throw new InvalidInputError(
    `Failed to write file ${quote(path)}: the content is not a Uint8Array or a string`,
  );
}

/**
 * Freezes a JSON value and everything it holds, in place, so that a value
 * several readers share cannot be changed by any of them: in strict mode a
 * write throws a `TypeError`. Rule reads return values frozen this way.
 *
 * @param value A JSON value (objects, arrays, primitives).
 * @returns The same value, frozen all the way down.
 *
 * @example Freeze a rule
 * ```ts
 * import { deepFreeze } from "./values.ts";
 *
 * const rule = deepFreeze({ ruleId: "FICA_SS", parameters: { rate: "0.062" } });
 * console.assert(Object.isFrozen(rule.parameters));
 * ```
 */
export function deepFreeze<T>(value: T): T {
  if (typeof value !== "object" || value === null || Object.isFrozen(value)) return value;
  Object.freeze(value);
  for (const key of Object.keys(value)) deepFreeze((value as Record<string, unknown>)[key]);
  return value;
}

/**
 * Checks a `retainUntil` write option.
 *
 * @param path The path, for the message.
 * @param retainUntil The candidate.
 * @returns The date, or `undefined` for none.
 * @throws {InvalidInputError} When it is not a valid `Date`.
 */
export function checkRetainUntil(path: string, retainUntil: unknown): Date | undefined {
  if (retainUntil === undefined) return undefined;
  if (!(retainUntil instanceof Date) || Number.isNaN(retainUntil.getTime())) {
    throw new InvalidInputError(`Failed to write file ${quote(path)}: retainUntil ${quote(retainUntil)} is not a Date`);
  }
  return retainUntil;
}

/** What S3 says about an object's Object Lock (`HeadObject`, `GetObject`). */
export interface ObjectLockState {
  /** The retention mode, when the object has one. */
  ObjectLockMode?: string;
  /** Until when the retention holds. */
  ObjectLockRetainUntilDate?: Date;
  /** `"ON"` under a legal hold. */
  ObjectLockLegalHoldStatus?: string;
}

/**
 * Why an object may not be deleted or replaced now, from its Object Lock
 * state: a retention that has not run out, or a legal hold. The one place
 * that reads the lock, so every refusal says the same: `S3FileStore` judges
 * S3's answer with it, `MemoryFileStore` the lock a retained write left.
 *
 * A versioned bucket (every bucket with Object Lock is) lets a plain
 * `DeleteObject` through even then: it only adds a delete marker, so the
 * file vanishes from reads while its bytes stay locked. The store checks
 * this first and refuses instead, so a locked file stays readable.
 *
 * @param state The object's lock fields.
 * @param now The time to judge the retention at.
 * @returns The reason (`it is under an Object Lock retention (COMPLIANCE mode) until ...`), or `undefined`.
 *
 * @example A retention that has not run out
 * ```ts
 * import { objectLockProblem } from "./values.ts";
 *
 * const state = { ObjectLockMode: "COMPLIANCE", ObjectLockRetainUntilDate: new Date("2033-01-01T00:00:00Z") };
 * console.assert(objectLockProblem(state, new Date("2026-01-01T00:00:00Z"))?.includes("2033-01-01") === true);
 * ```
 */
export function objectLockProblem(state: ObjectLockState, now: Date): string | undefined {
  const reasons: string[] = [];
  const until = state.ObjectLockRetainUntilDate;
  if (state.ObjectLockMode !== undefined && until !== undefined && until.getTime() > now.getTime()) {
    reasons.push(
      `an Object Lock retention (${quote(state.ObjectLockMode)} mode) until ${quote(until.toISOString())}`,
    );
  }
  if (state.ObjectLockLegalHoldStatus === "ON") reasons.push("an Object Lock legal hold");
  return reasons.length === 0 ? undefined : `it is under ${reasons.join(" and ")}`;
}
