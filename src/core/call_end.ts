/**
 * How the events that end a call say how it ended: the same two fields,
 * `durationMs` and `outcome` (with `errorCode` when it failed), on every
 * backend's end events, so one metrics or tracing sink reads them all.
 *
 * @module
 */

import {
  BlueStarError,
  ConflictError,
  FileNotFoundError,
  IrsLimitsNotFoundError,
  PipelineNotFoundError,
  RuleNotFoundError,
} from "./errors.ts";
import { elapsedMs } from "./time.ts";

/**
 * How a call ended:
 *
 * - `"ok"`: it succeeded (a cache miss and a `null` answer included).
 * - `"not_found"`: it failed because what it asked for does not exist
 *   (`RULE_NOT_FOUND`, `PIPELINE_NOT_FOUND`, `IRS_LIMITS_NOT_FOUND`,
 *   `FILE_NOT_FOUND`): an answer, not a fault of the service.
 * - `"conflict"`: an optimistic write lost to another writer (`CONFLICT`).
 * - `"error"`: any other failure.
 */
export type CallOutcome = "ok" | "not_found" | "conflict" | "error";

/** The fields every event that ends a call carries. */
export interface CallEnd {
  /** How long the call took, in milliseconds (to 0.01). */
  durationMs: number;
  /** How it ended. */
  outcome: CallOutcome;
  /**
   * When it failed: the library error's `code` (`"CONFLICT"`,
   * `"RULES_STORE_ERROR"`, ...), else the error's `name`.
   *
   * @default {undefined: it succeeded}
   */
  errorCode?: string;
}

/**
 * Which cache tier answered a cache call: the shared Redis tier, or a
 * process-local one in front of it.
 */
export type CacheTier = "redis" | "local";

/**
 * The end of a call that succeeded.
 *
 * @param started A `performance.now()` reading taken when the call began.
 * @returns Its duration and the outcome `"ok"`.
 *
 * @example Report a call's end
 * ```ts
 * import { endedOk } from "./call_end.ts";
 *
 * console.assert(endedOk(performance.now()).outcome === "ok");
 * ```
 */
export function endedOk(started: number): CallEnd {
  return { durationMs: elapsedMs(started), outcome: "ok" };
}

/**
 * The end of a call that failed.
 *
 * @param started A `performance.now()` reading taken when the call began.
 * @param error What it failed with.
 * @returns Its duration, its outcome (see {@linkcode CallOutcome}) and the error's code.
 *
 * @example Classify a lost optimistic write
 * ```ts
 * import { ConflictError } from "./errors.ts";
 * import { endedWith } from "./call_end.ts";
 *
 * const end = endedWith(performance.now(), new ConflictError("Failed to save batch state \"B1\": expected version 1"));
 * console.assert(end.outcome === "conflict" && end.errorCode === "CONFLICT");
 * ```
 */
export function endedWith(started: number, error: unknown): CallEnd {
  return { durationMs: elapsedMs(started), outcome: outcomeOf(error), errorCode: errorCodeOf(error) };
}

/**
 * Reports the end of a call when it settles; the call's result or failure
 * passes through unchanged.
 *
 * @param call The call in flight.
 * @param started A `performance.now()` reading taken when it began.
 * @param report Receives its end; it must not throw (pass a guarded hook).
 * @returns The call's own promise result.
 *
 * @example Time a call
 * ```ts
 * import { type CallEnd, reportEnd } from "./call_end.ts";
 *
 * const ends: CallEnd[] = [];
 * const answer = await reportEnd(Promise.resolve(42), performance.now(), (end) => ends.push(end));
 * console.assert(answer === 42 && ends[0].outcome === "ok");
 * ```
 */
export function reportEnd<T>(call: Promise<T>, started: number, report: (end: CallEnd) => void): Promise<T> {
  return call.then(
    (value) => {
      report(endedOk(started));
      return value;
    },
    (error: unknown) => {
      report(endedWith(started, error));
      throw error;
    },
  );
}

function outcomeOf(error: unknown): CallOutcome {
  if (error instanceof ConflictError) return "conflict";
  if (
    error instanceof RuleNotFoundError || error instanceof PipelineNotFoundError ||
    error instanceof IrsLimitsNotFoundError || error instanceof FileNotFoundError
  ) return "not_found";
  return "error";
}

function errorCodeOf(error: unknown): string {
  if (error instanceof BlueStarError) return error.code;
  return error instanceof Error ? error.name : typeof error;
}
