/**
 * Time and retry primitives, once: the longest timer, sleeping, backoff
 * with full jitter, and many deadlines on one timer.
 *
 * @module
 */

import { clearTimeout, setTimeout } from "node:timers";

/**
 * The longest delay `setTimeout` honours, in milliseconds (2^31 - 1): a
 * longer one fires at once. The upper bound of every timeout option.
 */
export const MAX_TIMER_MS = 2_147_483_647;

/**
 * Waits.
 *
 * @param milliseconds How long.
 * @returns A promise that resolves after that long.
 *
 * @example Wait a little between two polls
 * ```ts
 * import { sleep } from "./time.ts";
 *
 * await sleep(1);
 * ```
 */
export function sleep(milliseconds: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, milliseconds));
}

/** An exponential backoff: the delay ceiling starts at `baseDelayMs` and doubles per retry up to `maxDelayMs`. */
export interface Backoff {
  /** The first retry's delay ceiling, in milliseconds. */
  readonly baseDelayMs: number;
  /** The largest delay ceiling, in milliseconds. */
  readonly maxDelayMs: number;
}

/** Doublings past this change no ceiling (they would only overflow `2 ** n` into a `NaN` with a zero base). */
const MAX_DOUBLINGS = 64;

/**
 * The delay before a retry, with full jitter: uniformly random below the
 * ceiling `min(maxDelayMs, baseDelayMs * 2 ** (retry - 1))`, so that
 * clients failing together do not retry together.
 *
 * @param backoff The ceilings.
 * @param retry Which retry: 1 for the first.
 * @param random The random source, in [0, 1).
 * @returns The delay, in milliseconds.
 *
 * @example The third retry of a 25 ms backoff waits below 100 ms
 * ```ts
 * import { backoffDelay } from "./time.ts";
 *
 * const delay = backoffDelay({ baseDelayMs: 25, maxDelayMs: 1000 }, 3);
 * console.assert(delay >= 0 && delay < 100);
 * ```
 */
export function backoffDelay(backoff: Backoff, retry: number, random: () => number = Math.random): number {
  return random() * Math.min(backoff.maxDelayMs, backoff.baseDelayMs * 2 ** Math.min(retry - 1, MAX_DOUBLINGS));
}

/** A timer of a {@linkcode Clock}. */
export interface Timer {
  /** Makes the timer keep the process alive while it is armed (the default). */
  ref(): unknown;
  /** Lets the process exit while the timer is armed. */
  unref(): unknown;
}

/** A monotonic clock and its timers; inject one so tests need not wait. */
export interface Clock {
  /** The time, in milliseconds, on a monotonic clock. */
  now(): number;
  /** Calls `callback` once, `milliseconds` from now. */
  setTimer(callback: () => void, milliseconds: number): Timer;
  /** Disarms a timer. */
  clearTimer(timer: Timer): void;
}

/** `performance.now()` and the timers of `node:timers` (which can be unref'd on Deno and on Node). */
export const SYSTEM_CLOCK: Clock = {
  now: () => performance.now(),
  setTimer: (callback, milliseconds) => setTimeout(callback, milliseconds),
  clearTimer: (timer) => clearTimeout(timer as ReturnType<typeof setTimeout>),
};

/**
 * Something waiting for an answer until its deadline, tracked by
 * {@linkcode Deadlines}. Extend it with what its expiry needs (the request,
 * how to reject it), so a call allocates no closure for its deadline. The
 * fields are the tracker's: read them, never set them.
 */
export class Pending {
  /** When it expires, on the clock of the {@linkcode Deadlines} tracking it. */
  deadline: number = Infinity;
  /** Set when it answered, failed or expired: later outcomes are to be ignored. */
  settled: boolean = false;
  /** The previous one in the tracker's list. */
  prev: Pending | undefined = undefined;
  /** The next one in the tracker's list. */
  next: Pending | undefined = undefined;
}

/**
 * Many deadlines on one timer: the calls in flight, in a linked list, and
 * one timer armed for the earliest deadline, instead of a timer per call (a
 * timer costs more than the rest of a fast call). Deadlines may differ per
 * call. A call leaves the list as soon as it settles, so the list holds only
 * what is in flight; the timer keeps the process alive only while a call is
 * in flight (it is unref'd when the list empties, rather than cleared and
 * re-created on every call).
 *
 * @example Bound calls by their own deadlines
 * ```ts
 * import { Deadlines, Pending } from "./time.ts";
 *
 * class Call extends Pending {
 *   constructor(readonly reject: (error: Error) => void) {
 *     super();
 *   }
 * }
 * const deadlines = new Deadlines<Call>((call) => call.reject(new Error("No answer in time")));
 *
 * function bounded<T>(answer: Promise<T>, timeoutMs: number): Promise<T> {
 *   return new Promise<T>((resolve, reject) => {
 *     const call = new Call(reject);
 *     deadlines.track(call, timeoutMs);
 *     answer.then((value) => {
 *       if (deadlines.settle(call)) resolve(value);
 *     }, (error) => {
 *       if (deadlines.settle(call)) reject(error);
 *     });
 *   });
 * }
 * console.assert((await bounded(Promise.resolve(42), 50)) === 42);
 * ```
 */
export class Deadlines<P extends Pending = Pending> {
  #head: P | undefined = undefined;
  #tail: P | undefined = undefined;
  #timer: Timer | undefined = undefined;
  #armedFor = Infinity;
  readonly #expire: (pending: P) => void;
  readonly #clock: Clock;

  /**
   * Creates an empty tracker; no timer is armed until the first call.
   *
   * @param expire Called once for each call past its deadline, after it left the list. It must not throw.
   * @param clock The clock and its timers.
   */
  constructor(expire: (pending: P) => void, clock: Clock = SYSTEM_CLOCK) {
    this.#expire = expire;
    this.#clock = clock;
  }

  /**
   * Tracks a call until it settles or its deadline passes.
   *
   * @param pending The call, not tracked yet.
   * @param timeoutMs How long it may take from now, in milliseconds.
   */
  track(pending: P, timeoutMs: number): void {
    pending.deadline = this.#clock.now() + timeoutMs;
    if (this.#tail === undefined) {
      this.#head = pending;
      this.#timer?.ref();
    } else {
      this.#tail.next = pending;
      pending.prev = this.#tail;
    }
    this.#tail = pending;
    if (pending.deadline < this.#armedFor) this.#arm(pending.deadline);
  }

  /**
   * Takes a call out of the list: call it when the call answers or fails.
   *
   * @param pending A tracked call.
   * @returns `false` when it had already settled (expired), so its outcome is to be ignored.
   */
  settle(pending: P): boolean {
    if (pending.settled) return false;
    pending.settled = true;
    const prev = pending.prev as P | undefined;
    const next = pending.next as P | undefined;
    if (prev === undefined) this.#head = next;
    else prev.next = next;
    if (next === undefined) this.#tail = prev;
    else next.prev = prev;
    pending.prev = pending.next = undefined;
    if (this.#head === undefined) this.#timer?.unref();
    return true;
  }

  #arm(deadline: number): void {
    if (this.#timer !== undefined) this.#clock.clearTimer(this.#timer);
    this.#armedFor = deadline;
    this.#timer = this.#clock.setTimer(this.#sweep, Math.max(0, deadline - this.#clock.now()));
  }

  /**
   * Expires every call past its deadline and arms the timer for the earliest
   * one left. The expired calls leave the list before any expiry runs, so an
   * expiry may settle or track calls freely.
   */
  readonly #sweep = (): void => {
    this.#timer = undefined;
    this.#armedFor = Infinity;
    const now = this.#clock.now();
    const expired: P[] = [];
    let next = Infinity;
    for (let pending = this.#head; pending !== undefined; pending = pending.next as P | undefined) {
      if (pending.deadline <= now) expired.push(pending);
      else if (pending.deadline < next) next = pending.deadline;
    }
    for (const pending of expired) this.settle(pending);
    if (next !== Infinity) this.#arm(next);
    for (const pending of expired) this.#expire(pending);
  };
}

/**
 * The milliseconds since a `performance.now()` reading, to a hundredth: the
 * `durationMs` of the events that end a call.
 *
 * @param started A `performance.now()` reading taken when the call began.
 * @returns The elapsed time in milliseconds, rounded to 0.01.
 *
 * @example Time a call
 * ```ts
 * import { elapsedMs, sleep } from "./time.ts";
 *
 * const started = performance.now();
 * await sleep(1);
 * console.assert(elapsedMs(started) >= 0);
 * ```
 */
export function elapsedMs(started: number): number {
  return Math.round((performance.now() - started) * 100) / 100;
}
