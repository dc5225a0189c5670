/**
 * Event hooks, guarded: a backend reports through a caller's hook, and
 * nothing the hook does (throw, return a promise that rejects) changes the
 * backend's outcome or becomes an unhandled rejection.
 *
 * @module
 */

/**
 * A hook as the caller gave it: called with each event; what it returns is
 * not used.
 */
export type EventHook<E> = (event: E) => unknown;

/**
 * A hook wrapped so that calling it never throws and never leaves a
 * rejected promise unhandled: an exception is dropped, and a returned
 * thenable gets a rejection handler. Without a hook, a function that does
 * nothing. Events are information only: a hook's failure is the hook's
 * business.
 *
 * @param hook The caller's hook, if any.
 * @returns A function to report events through.
 *
 * @example A hook that rejects changes nothing
 * ```ts
 * import { guardHook } from "./hooks.ts";
 *
 * const report = guardHook((_event: string) => Promise.reject(new Error("log service down")));
 * report("read"); // no exception, no unhandled rejection
 * guardHook<string>(undefined)("read"); // no hook: nothing happens
 * ```
 */
export function guardHook<E>(hook: EventHook<E> | undefined): (event: E) => void {
  if (hook === undefined) return ignore;
  return (event) => {
    try {
      const result = hook(event) as { then?: unknown } | null | undefined;
      if (typeof result?.then === "function") (result as PromiseLike<unknown>).then(undefined, ignore);
    } catch {
      // Information only: a throwing hook never breaks the operation that reported.
    }
  };
}

function ignore(): void {}
