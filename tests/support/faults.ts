// Fault injection through SDK middleware on a real client: errors thrown
// inside the SDK's retry loop (so its standard retry strategy sees them and
// retries), answers lost after the request landed, and requests the service
// only partly processes.
import { InternalServerError, ProvisionedThroughputExceededException } from "@aws-sdk/client-dynamodb";

/**
 * What to do to one attempt: throw `error` instead of sending it, or after it
 * landed (`after: true`). `during` runs first, before the attempt is sent (or
 * after it landed, with `after: true`): another writer acting between this
 * attempt and the SDK's retry of it, or, without `error`, just before it.
 */
export interface Fault {
  error?: Error;
  after?: boolean;
  during?: () => Promise<unknown>;
}

/** Decides the fault of one attempt of one operation (`"PutItem"`), attempts counted from 1 by the SDK. */
export type FaultPlan = (operation: string, attempt: number) => Fault | undefined;

/** What the injector saw and did. */
export interface FaultLog {
  /** Attempts sent per operation, injected ones included. */
  attempts: Map<string, number>;
  /** Faults injected per operation. */
  injected: Map<string, number>;
  /** The plan; replace it to change the faults. */
  plan: FaultPlan;
  /** Clears both counters. */
  reset(): void;
}

interface Stack {
  add(middleware: unknown, options: { step: string; name: string; priority?: string }): void;
}

interface Args {
  request?: { headers?: Record<string, string> };
  input?: Record<string, unknown>;
}

function bump(map: Map<string, number>, key: string): void {
  map.set(key, (map.get(key) ?? 0) + 1);
}

/**
 * Adds a middleware in the deserialize step, which runs inside the retry
 * middleware (finalizeRequest): once per attempt on the wire. The attempt
 * number comes from the `amz-sdk-request` header the retry middleware sets.
 *
 * @param client A DynamoDB or S3 client.
 * @param plan Which attempts fail, and how.
 */
export function injectFaults(client: { middlewareStack: unknown }, plan: FaultPlan): FaultLog {
  const log: FaultLog = {
    attempts: new Map(),
    injected: new Map(),
    plan,
    reset() {
      log.attempts.clear();
      log.injected.clear();
    },
  };
  (client.middlewareStack as Stack).add(
    (next: (args: Args) => Promise<unknown>, context: { commandName?: string }) => async (args: Args) => {
      const operation = String(context.commandName ?? "unknown").replace(/Command$/, "");
      const header = args.request?.headers?.["amz-sdk-request"] ?? "";
      const attempt = Number(/attempt=(\d+)/.exec(header)?.[1] ?? 1);
      bump(log.attempts, operation);
      const fault = log.plan(operation, attempt);
      if (fault === undefined) return next(args);
      bump(log.injected, operation);
      const landed = fault.after ? await next(args) : undefined;
      await fault.during?.();
      if (fault.error !== undefined) throw fault.error;
      return fault.after ? landed : next(args);
    },
    { step: "deserialize", name: "injectFaults", priority: "low" },
  );
  return log;
}

/** DynamoDB's throttling answer: the SDK retries it with its throttling backoff. */
export function throttled(): Error {
  return new ProvisionedThroughputExceededException({
    message: "The level of configured provisioned throughput for the table was exceeded (injected)",
    $metadata: { httpStatusCode: 400 },
  });
}

/** DynamoDB's HTTP 500: a transient error the SDK retries. */
export function serverError(): Error {
  return new InternalServerError({ message: "Internal server error (injected)", $metadata: { httpStatusCode: 500 } });
}

/** A connection reset, as Node reports it: a transient network error the SDK retries, the request maybe never sent. */
export function networkError(): Error {
  return Object.assign(new Error("socket hang up (injected)"), { code: "ECONNRESET" });
}

/** A deterministic random source (xorshift32), so a failing run can be replayed. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 2 ** 32;
  };
}

/**
 * Makes DynamoDB leave part of each batch request unprocessed: a middleware
 * before serialization sends only the items or keys `keep` keeps and hands
 * the rest back as `UnprocessedItems` / `UnprocessedKeys`, as DynamoDB does
 * under load. Returns how many items or keys it held back.
 *
 * @param client A DynamoDB client.
 * @param keep Given the operation and a request's entries for one table, how many to send (0: none; nothing is sent).
 */
export function leaveUnprocessed(
  client: { middlewareStack: unknown },
  keep: (operation: "BatchWriteItem" | "BatchGetItem", count: number) => number,
): { heldBack: () => number } {
  let heldBack = 0;
  (client.middlewareStack as Stack).add(
    (next: (args: Args) => Promise<{ output: Record<string, unknown> }>, context: { commandName?: string }) =>
    async (args: Args) => {
      const operation = String(context.commandName ?? "").replace(/Command$/, "");
      if (operation !== "BatchWriteItem" && operation !== "BatchGetItem") return next(args);
      const requestItems = args.input!.RequestItems as Record<string, unknown>;
      const [table] = Object.keys(requestItems);
      const entries = operation === "BatchWriteItem"
        ? requestItems[table] as unknown[]
        : (requestItems[table] as { Keys: unknown[] }).Keys;
      const sent = Math.max(0, Math.min(entries.length, keep(operation, entries.length)));
      const back = entries.slice(sent);
      heldBack += back.length;
      const unprocessed = operation === "BatchWriteItem"
        ? { UnprocessedItems: back.length > 0 ? { [table]: back } : {} }
        : { UnprocessedKeys: back.length > 0 ? { [table]: { ...(requestItems[table] as object), Keys: back } } : {} };
      if (sent === 0) return { response: {}, output: { $metadata: {}, ...unprocessed } };
      const sentItems = operation === "BatchWriteItem"
        ? entries.slice(0, sent)
        : { ...(requestItems[table] as object), Keys: entries.slice(0, sent) };
      const result = await next({ ...args, input: { ...args.input, RequestItems: { [table]: sentItems } } });
      return { ...result, output: { ...result.output, ...unprocessed } };
    },
    { step: "serialize", name: "leaveUnprocessed", priority: "high" },
  );
  return { heldBack: () => heldBack };
}
