// A clock whose time moves only when a test says so, for the deadline tests:
// timers fire in `advance()`, in deadline order, and each remembers whether
// it is ref'd, so a test can see what would keep a process alive.
import type { Clock, Timer } from "../../src/core/time.ts";

/** A timer of a {@linkcode ManualClock}. */
export class ManualTimer implements Timer {
  /** Whether it would keep the process alive. */
  refed = true;
  /** Whether it fired or was cleared. */
  done = false;

  constructor(readonly at: number, readonly callback: () => void) {}

  ref(): void {
    this.refed = true;
  }

  unref(): void {
    this.refed = false;
  }
}

/** A {@linkcode Clock} that stands still until {@linkcode ManualClock.advance}. */
export class ManualClock implements Clock {
  #now = 0;
  readonly #timers: ManualTimer[] = [];

  now(): number {
    return this.#now;
  }

  setTimer(callback: () => void, milliseconds: number): ManualTimer {
    const timer = new ManualTimer(this.#now + milliseconds, callback);
    this.#timers.push(timer);
    return timer;
  }

  clearTimer(timer: Timer): void {
    (timer as ManualTimer).done = true;
  }

  /** The timers armed and not yet fired or cleared. */
  get armed(): ManualTimer[] {
    return this.#timers.filter((timer) => !timer.done);
  }

  /** How many timers were ever set, fired and cleared ones included. */
  get created(): number {
    return this.#timers.length;
  }

  /** Moves the time forward, firing each timer that comes due, in order, at its own time. */
  advance(milliseconds: number): void {
    const end = this.#now + milliseconds;
    for (;;) {
      const due = this.armed.filter((timer) => timer.at <= end).sort((a, b) => a.at - b.at)[0];
      if (due === undefined) break;
      this.#now = Math.max(this.#now, due.at);
      due.done = true;
      due.callback();
    }
    this.#now = end;
  }
}
