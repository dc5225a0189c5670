/**
 * OpenTelemetry for BlueStar persistence: an `onEvent` hook that turns the
 * events of the three backends into metrics and spans. It needs
 * `@opentelemetry/api` (an optional peer dependency: the core package never
 * loads it) and whatever SDK the application registers.
 *
 * Metrics (durations in seconds, the semantic conventions' unit):
 *
 * - `db.client.operation.duration` (histogram): each DynamoDB request and
 *   Redis command, by `db.system.name` (`"aws.dynamodb"`, `"redis"`),
 *   `db.operation.name` (`"GetItem"`, `"GET"`), `db.collection.name` (the
 *   table) and `error.type` when it failed.
 * - `bluestar.file_store.operation.duration` (histogram): each S3 read,
 *   write, move and listing, by `bluestar.file_store.operation`,
 *   `aws.s3.bucket` and `error.type`.
 * - `bluestar.rules_store.call.duration` (histogram): each public call of
 *   the rules store, by `bluestar.rules_store.method` and `error.type`.
 * - `bluestar.requests` and `bluestar.errors` (counters): every operation
 *   above, with the same attributes and its `bluestar.outcome`; errors are
 *   the operations whose outcome is not `"ok"`.
 * - `bluestar.cache.lookups` (counter): each read-through cache lookup, by
 *   `bluestar.cache.tier` (`"redis"`, `"local"`), `bluestar.cache.result`
 *   (`"hit"`, `"miss"`, `"corrupt"`, `"error"`) and `bluestar.cache.kind`:
 *   the hit ratio of a tier is its hits over its lookups.
 *
 * Spans: one `CLIENT` span per DynamoDB request (`GetItem bluestar-irs-limits`),
 * Redis command (`GET`) and S3 operation (`S3 read`), and one `INTERNAL` span
 * per rules-store call (`getCalculationRule`), each spanning the operation's
 * `durationMs` and ending when its end event arrives; a failed one has status
 * `ERROR` and `error.type`. With a context manager registered (such as
 * `AsyncLocalStorageContextManager`), they are children of the span active
 * where the call was made; a call's span is a sibling of its requests' spans. Events that end nothing (`dynamodb.request`,
 * `dynamodb.unprocessed`, `cache.reconnect`, `skipped`, `multipart-aborted`,
 * a lost Redis connection) are not recorded.
 *
 * @example Record the events of every backend
 * ```ts
 * import { createPersistence } from "@bluestar/persistence";
 * import { openTelemetryHook } from "@bluestar/persistence/otel";
 *
 * // Records into the meter and tracer providers the application's SDK registered globally.
 * // (The in-memory backends report no events; the AWS backends and Redis do.)
 * const persistence = createPersistence({ backend: "memory", onEvent: openTelemetryHook() });
 * await persistence.close();
 * ```
 *
 * @module
 */

import {
  type Attributes,
  type Counter,
  type Histogram,
  type MeterProvider,
  metrics,
  SpanKind,
  SpanStatusCode,
  trace,
  type Tracer,
  type TracerProvider,
} from "@opentelemetry/api";
import type { CallEnd } from "./core/call_end.ts";
import type { PersistenceEvent } from "./persistence/mod.ts";
import type { FileStoreAction } from "./persistence/s3_backend.ts";

/** The instrumentation scope of the meter and the tracer. */
const SCOPE = "@bluestar/persistence";

/** The semantic conventions' buckets for `db.client.operation.duration`, in seconds. */
const DURATION_BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10];

/** Options of {@linkcode openTelemetryHook}. */
export interface OpenTelemetryHookOptions {
  /**
   * Where the metrics go.
   *
   * @default {the global meter provider (`metrics.getMeterProvider()`)}
   */
  meterProvider?: MeterProvider;
  /**
   * Where the spans go.
   *
   * @default {the global tracer provider (`trace.getTracerProvider()`)}
   */
  tracerProvider?: TracerProvider;
}

/** An operation an end event reports, as the metrics and the span see it. */
interface Operation {
  /** Its duration histogram. */
  histogram: Histogram;
  /** Its span's name and kind. */
  span: string;
  kind: SpanKind;
  /** The attributes of its metrics and of its span. */
  attributes: Attributes;
  /** Attributes of the span only (too many values for a metric). */
  spanAttributes?: Attributes;
  /** The `error.type` when it failed. */
  errorType?: string;
  end: CallEnd;
}

/**
 * An `onEvent` hook recording the events of the rules store, the Redis
 * cache and the S3 file store as OpenTelemetry metrics and spans (see the
 * module documentation for their names and attributes). Pass the same hook
 * to every backend, or once to `createPersistence`. It never throws.
 *
 * @param options The meter and tracer providers.
 * @returns The hook.
 *
 * @example Record into the application's own providers
 * ```ts
 * import { metrics, trace } from "@opentelemetry/api";
 * import { DynamoDBRulesStore, type PersistenceEvent } from "@bluestar/persistence";
 * import { openTelemetryHook } from "@bluestar/persistence/otel";
 *
 * const record = openTelemetryHook({
 *   meterProvider: metrics.getMeterProvider(),
 *   tracerProvider: trace.getTracerProvider(),
 * });
 * // Keep logging as well: a hook can call another.
 * const onEvent = (event: PersistenceEvent): void => {
 *   record(event);
 *   if (event.type === "cache.error") console.warn(event.error.message);
 * };
 * const rules = new DynamoDBRulesStore({ tableSuffix: "-dev", onEvent });
 * await rules.close();
 * ```
 */
export function openTelemetryHook(options: OpenTelemetryHookOptions = {}): (event: PersistenceEvent) => void {
  const meter = (options.meterProvider ?? metrics.getMeterProvider()).getMeter(SCOPE);
  const tracer = (options.tracerProvider ?? trace.getTracerProvider()).getTracer(SCOPE);
  const seconds = (name: string, description: string) =>
    meter.createHistogram(name, { description, unit: "s", advice: { explicitBucketBoundaries: DURATION_BUCKETS } });
  const instruments: Instruments = {
    database: seconds("db.client.operation.duration", "Duration of DynamoDB requests and Redis commands"),
    files: seconds("bluestar.file_store.operation.duration", "Duration of S3 file store operations"),
    calls: seconds("bluestar.rules_store.call.duration", "Duration of rules store calls"),
    requests: meter.createCounter("bluestar.requests", {
      description: "Operations ended, by outcome",
      unit: "{request}",
    }),
    errors: meter.createCounter("bluestar.errors", {
      description: "Operations that did not end ok",
      unit: "{error}",
    }),
    lookups: meter.createCounter("bluestar.cache.lookups", {
      description: "Read-through cache lookups, by tier and result",
      unit: "{lookup}",
    }),
  };
  return (event) => {
    try {
      record(event, instruments, tracer);
    } catch {
      // Telemetry is information only: its failure is never the caller's.
    }
  };
}

/** The instruments the hook records into. */
interface Instruments {
  database: Histogram;
  files: Histogram;
  calls: Histogram;
  requests: Counter;
  errors: Counter;
  lookups: Counter;
}

function record(event: PersistenceEvent, instruments: Instruments, tracer: Tracer): void {
  // A read-through lookup (it has a `kind`); the Redis backend's own cache events are in `redis.command`.
  if ("kind" in event) {
    if (event.type === "cache.error" && event.operation !== "get") return;
    instruments.lookups.add(1, {
      "bluestar.cache.tier": event.tier,
      "bluestar.cache.result": event.type.slice("cache.".length),
      "bluestar.cache.kind": event.kind,
    });
    return;
  }
  const operation = operationOf(event, instruments);
  if (operation === undefined) return;
  const attributes = { ...operation.attributes, ...errorAttributes(operation.errorType) };
  operation.histogram.record(operation.end.durationMs / 1000, attributes);
  const counted = { ...attributes, "bluestar.outcome": operation.end.outcome };
  instruments.requests.add(1, counted);
  if (operation.end.outcome !== "ok") instruments.errors.add(1, counted);
  const now = Date.now();
  const span = tracer.startSpan(operation.span, {
    kind: operation.kind,
    startTime: now - operation.end.durationMs,
    attributes: { ...attributes, ...operation.spanAttributes, "bluestar.outcome": operation.end.outcome },
  });
  if (operation.errorType !== undefined) span.setStatus({ code: SpanStatusCode.ERROR });
  span.end(now);
}

function errorAttributes(errorType: string | undefined): Attributes {
  return errorType === undefined ? {} : { "error.type": errorType };
}

/** The operation an end event reports; `undefined` for an event that ends none. */
function operationOf(event: PersistenceEvent, instruments: Instruments): Operation | undefined {
  switch (event.type) {
    case "dynamodb.response":
      return {
        histogram: instruments.database,
        span: `${event.operation} ${event.table}`,
        kind: SpanKind.CLIENT,
        attributes: {
          "db.system.name": "aws.dynamodb",
          "db.operation.name": event.operation,
          "db.collection.name": event.table,
        },
        spanAttributes: {
          "aws.dynamodb.table_names": [event.table],
          "rpc.system": "aws-api",
          "rpc.service": "DynamoDB",
          "rpc.method": event.operation,
        },
        errorType: failedWith(event, event.awsError),
        end: event,
      };
    case "redis.command":
      return {
        histogram: instruments.database,
        span: event.command,
        kind: SpanKind.CLIENT,
        attributes: { "db.system.name": "redis", "db.operation.name": event.command },
        errorType: failedWith(event),
        end: event,
      };
    case "call":
      return {
        histogram: instruments.calls,
        span: event.method,
        kind: SpanKind.INTERNAL,
        attributes: { "bluestar.rules_store.method": event.method },
        errorType: failedWith(event),
        end: event,
      };
    case "read":
    case "write":
    case "delete":
      return s3Operation(instruments, event.type, event.bucket, event, { "aws.s3.key": event.key });
    case "list":
      return s3Operation(instruments, "list", event.bucket, event, { "bluestar.file_store.prefix": event.prefix });
    case "move":
      return s3Operation(instruments, "move", event.bucket, event, {
        "aws.s3.key": event.dst,
        "aws.s3.copy_source": `${event.bucket}/${event.src}`,
      });
    case "error":
      return s3Operation(instruments, event.action, event.bucket, event, {
        [event.action === "list" ? "bluestar.file_store.prefix" : "aws.s3.key"]: event.key,
      });
    default:
      return undefined;
  }
}

function s3Operation(
  instruments: Instruments,
  action: FileStoreAction,
  bucket: string,
  end: CallEnd,
  spanAttributes: Attributes,
): Operation {
  return {
    histogram: instruments.files,
    span: `S3 ${action}`,
    kind: SpanKind.CLIENT,
    attributes: { "bluestar.file_store.operation": action, "aws.s3.bucket": bucket },
    spanAttributes: { "rpc.system": "aws-api", "rpc.service": "S3", ...spanAttributes },
    errorType: failedWith(end),
    end,
  };
}

/** The `error.type` of a failed operation: the service's name for the failure if known, else the library's code. */
function failedWith(end: CallEnd, serviceError?: string): string | undefined {
  return end.outcome === "ok" ? undefined : serviceError ?? end.errorCode ?? "_OTHER";
}
