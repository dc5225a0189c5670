// The time and retry primitives: backoff with full jitter, sleep, and many
// deadlines on one timer (on a manual clock, so no test waits for a deadline).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { backoffDelay, Deadlines, MAX_TIMER_MS, Pending, sleep } from "../../src/core/time.ts";
import { ManualClock } from "../support/clock.ts";

/** A call that records its expiry. */
class Call extends Pending {
  expired = 0;
  constructor(readonly name: string) {
    super();
  }
}

/** A tracker on a manual clock, and the names of the calls it expired, in order. */
function tracker() {
  const clock = new ManualClock();
  const expired: string[] = [];
  const deadlines = new Deadlines<Call>((call) => {
    call.expired++;
    expired.push(call.name);
  }, clock);
  return { clock, deadlines, expired };
}

describe("backoffDelay()", () => {
  it("doubles the ceiling per retry from baseDelayMs up to maxDelayMs, and draws below it (full jitter)", () => {
    const backoff = { baseDelayMs: 25, maxDelayMs: 1000 };
    const half = () => 0.5;
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6, 7, 8].map((retry) => backoffDelay(backoff, retry, half)),
      [12.5, 25, 50, 100, 200, 400, 500, 500],
    );
    assert.equal(backoffDelay(backoff, 3, () => 0), 0);
    const highest = backoffDelay(backoff, 3, () => 0.999_999);
    assert.ok(highest < 100 && highest > 99.99, `${highest}`);
  });

  it("stays a finite number for a retry count past any doubling, a zero base included", () => {
    assert.equal(backoffDelay({ baseDelayMs: 50, maxDelayMs: 2000 }, 5000, () => 0.5), 1000);
    assert.equal(backoffDelay({ baseDelayMs: 0, maxDelayMs: 2000 }, 5000, () => 0.5), 0);
  });

  it("draws from Math.random by default", () => {
    const delays = Array.from({ length: 200 }, () => backoffDelay({ baseDelayMs: 100, maxDelayMs: 100 }, 1));
    assert.ok(delays.every((delay) => delay >= 0 && delay < 100));
    assert.ok(new Set(delays).size > 1, "every draw was the same");
  });
});

describe("sleep()", () => {
  it("resolves after a timer, not in the current turn", async () => {
    const order: string[] = [];
    const slept = sleep(0).then(() => order.push("slept"));
    await Promise.resolve().then(() => order.push("microtask"));
    await slept;
    assert.deepEqual(order, ["microtask", "slept"]);
  });
});

describe("MAX_TIMER_MS", () => {
  it("is the longest delay a timer honours, 2^31 - 1 ms", () => {
    assert.equal(MAX_TIMER_MS, 2 ** 31 - 1);
  });
});

describe("Deadlines", () => {
  it("expires a call past its deadline once, and its late answer is then ignored", () => {
    const { clock, deadlines, expired } = tracker();
    const call = new Call("a");
    deadlines.track(call, 50);
    clock.advance(49);
    assert.deepEqual(expired, []);
    clock.advance(1);
    assert.deepEqual(expired, ["a"]);
    assert.equal(deadlines.settle(call), false);
    clock.advance(1000);
    assert.equal(call.expired, 1);
  });

  it("a call that settles in time never expires", () => {
    const { clock, deadlines, expired } = tracker();
    const call = new Call("a");
    deadlines.track(call, 50);
    assert.equal(deadlines.settle(call), true);
    assert.equal(deadlines.settle(call), false);
    clock.advance(1000);
    assert.deepEqual(expired, []);
  });

  it("one timer serves a thousand calls: a call does not pay for a timer of its own", () => {
    const { clock, deadlines, expired } = tracker();
    for (let index = 0; index < 1000; index++) {
      const call = new Call(`c${index}`);
      deadlines.track(call, 50);
      deadlines.settle(call);
    }
    const calls = Array.from({ length: 1000 }, (_, index) => new Call(`d${index}`));
    for (const call of calls) deadlines.track(call, 50);
    assert.equal(clock.created, 1);
    clock.advance(50);
    assert.equal(expired.length, 1000);
    assert.deepEqual(expired, calls.map((call) => call.name));
    assert.equal(clock.created, 1);
    assert.deepEqual(clock.armed, []);
  });

  it("calls started at different times each expire on their own deadline", () => {
    const { clock, deadlines, expired } = tracker();
    deadlines.track(new Call("R1"), 30);
    clock.advance(20);
    deadlines.track(new Call("R2"), 30);
    clock.advance(20);
    deadlines.track(new Call("R3"), 30);
    // R1 is due at 30, R2 at 50, R3 at 70: each waits its own 30 ms, none is cut short by another's deadline.
    assert.deepEqual(expired, ["R1"]);
    clock.advance(9);
    assert.deepEqual(expired, ["R1"]);
    clock.advance(1);
    assert.deepEqual(expired, ["R1", "R2"]);
    clock.advance(19);
    assert.deepEqual(expired, ["R1", "R2"]);
    clock.advance(1);
    assert.deepEqual(expired, ["R1", "R2", "R3"]);
  });

  it("deadlines may differ per call: a shorter one tracked later moves the timer earlier", () => {
    const { clock, deadlines, expired } = tracker();
    deadlines.track(new Call("long"), 100);
    deadlines.track(new Call("short"), 10);
    deadlines.track(new Call("middle"), 40);
    assert.equal(clock.armed.length, 1);
    assert.equal(clock.armed[0].at, 10);
    clock.advance(10);
    assert.deepEqual(expired, ["short"]);
    assert.equal(clock.armed[0].at, 40);
    clock.advance(30);
    assert.deepEqual(expired, ["short", "middle"]);
    clock.advance(60);
    assert.deepEqual(expired, ["short", "middle", "long"]);
    assert.deepEqual(clock.armed, []);
  });

  it("a call settled at the head, in the middle or at the tail leaves the others tracked", () => {
    const { clock, deadlines, expired } = tracker();
    const calls = ["a", "b", "c", "d", "e"].map((name) => new Call(name));
    for (const call of calls) deadlines.track(call, 50);
    deadlines.settle(calls[0]);
    deadlines.settle(calls[2]);
    deadlines.settle(calls[4]);
    clock.advance(50);
    assert.deepEqual(expired, ["b", "d"]);
  });

  it("the timer keeps the process alive only while a call is in flight", () => {
    const { clock, deadlines } = tracker();
    const first = new Call("first");
    deadlines.track(first, 50);
    const [timer] = clock.armed;
    assert.equal(timer.refed, true);
    deadlines.settle(first);
    assert.equal(timer.refed, false);
    const second = new Call("second");
    deadlines.track(second, 50);
    assert.deepEqual(clock.armed, [timer]);
    assert.equal(timer.refed, true);
    deadlines.settle(second);
    assert.equal(timer.refed, false);
  });

  it("after a sweep, the timer is armed for the earliest call left, and none is left with nothing in flight", () => {
    const { clock, deadlines, expired } = tracker();
    deadlines.track(new Call("a"), 10);
    clock.advance(5);
    const b = new Call("b");
    deadlines.track(b, 10);
    clock.advance(5);
    assert.deepEqual(expired, ["a"]);
    assert.deepEqual(clock.armed.map((timer) => timer.at), [15]);
    deadlines.settle(b);
    clock.advance(5);
    assert.deepEqual(expired, ["a"]);
    assert.deepEqual(clock.armed, []);
  });

  it("an expiry may settle and track calls: each call still expires at most once, on its own deadline", () => {
    const clock = new ManualClock();
    const expired: string[] = [];
    const settled: boolean[] = [];
    const second = new Call("second");
    const later = new Call("later");
    const retried = new Call("retried");
    const deadlines: Deadlines<Call> = new Deadlines<Call>((call) => {
      expired.push(call.name);
      if (call.name === "first") {
        settled.push(deadlines.settle(second)); // due at the same time: already expired
        settled.push(deadlines.settle(later)); // still in flight: it answered
        deadlines.track(retried, 30);
      }
    }, clock);
    deadlines.track(new Call("first"), 10);
    deadlines.track(second, 10);
    deadlines.track(later, 20);
    clock.advance(10);
    assert.deepEqual(expired, ["first", "second"]);
    assert.deepEqual(settled, [false, true]);
    clock.advance(29);
    assert.deepEqual(expired, ["first", "second"]);
    clock.advance(1);
    assert.deepEqual(expired, ["first", "second", "retried"]);
    assert.deepEqual(clock.armed, []);
  });

  it("runs on the system clock by default", async () => {
    const expired: string[] = [];
    const deadlines = new Deadlines<Call>((call) => expired.push(call.name));
    deadlines.track(new Call("a"), 1);
    while (expired.length === 0) await sleep(1);
    assert.deepEqual(expired, ["a"]);
  });
});
