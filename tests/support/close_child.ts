// A process that starts a Redis connection, closes it at the point the parent
// chose, and must then exit by itself: a socket or timer left open keeps it
// alive (the parent runs it with runUntilExit from net.ts). It prints the
// call's outcome as one line of JSON.
//
//   close_child '{"cache": RedisCacheOptions, "close": "same-tick" | "after-call"}'
//   close_child '{"persistence": PersistenceOptions, "close": "same-tick" | "after-call"}'
//
// With `cache` the call is `get("k")`, with `persistence` (createPersistence)
// a rules read, `getPipeline("DEFAULT_BiWeeklyFri")`. `same-tick` calls
// close() right after starting the call, `after-call` once it settled.
import process from "node:process";
import { createPersistence, type PersistenceOptions, RedisCacheBackend, type RedisCacheOptions } from "../../mod.ts";
import { useLocalAwsCredentials } from "./gate.ts";

/** What the parent asks for. */
export interface CloseScenario {
  cache?: RedisCacheOptions;
  persistence?: PersistenceOptions;
  close: "same-tick" | "after-call";
}

/** How the call ended, as printed. */
export type CallOutcome = { ok: true } | { ok: false; code: unknown; message: string };

const scenario = JSON.parse(process.argv[2]) as CloseScenario;
let call: () => Promise<unknown>;
let close: () => Promise<void>;
if (scenario.persistence !== undefined) {
  useLocalAwsCredentials();
  const persistence = createPersistence(scenario.persistence);
  call = () => persistence.rules.getPipeline("DEFAULT_BiWeeklyFri");
  close = () => persistence.close();
} else {
  const cache = new RedisCacheBackend(scenario.cache);
  call = () => cache.get("k");
  close = () => cache.close();
}

const settle = (promise: Promise<unknown>): Promise<CallOutcome> =>
  promise.then(
    () => ({ ok: true }),
    (error: { code?: unknown; message?: unknown }) => ({ ok: false, code: error.code, message: String(error.message) }),
  );

let outcome: CallOutcome;
if (scenario.close === "same-tick") {
  const pending = settle(call());
  await close();
  outcome = await pending;
} else {
  outcome = await settle(call());
  await close();
}
console.log(JSON.stringify(outcome));
