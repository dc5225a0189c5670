/**
 * An agent with OpenTelemetry: the application registers an SDK's meter and
 * tracer providers globally, hands `openTelemetryHook()` to
 * `createPersistence`, and every DynamoDB request, Redis command, cache
 * lookup, S3 operation and rules-store call becomes metrics and spans. Here
 * the SDK exports to memory and the agent prints what it recorded; an
 * application would register OTLP exporters instead.
 *
 * The in-memory backends report no events, so this runs on the AWS backends:
 * a local endpoint and Redis, after
 * `deno task seed --endpoint-url http://127.0.0.1:4566 --table-suffix -dev --s3-bucket bluestar-files-dev`:
 *   BLUESTAR_AWS_ENDPOINT_URL=http://127.0.0.1:4566 AWS_REGION=us-east-1 BLUESTAR_TABLE_SUFFIX=-dev \
 *   BLUESTAR_S3_BUCKET=bluestar-files-dev BLUESTAR_REDIS_URL=redis://127.0.0.1:6379 \
 *   deno run -A examples/otel_agent.ts
 * It exits 1 when a kind of telemetry it expects is missing.
 *
 * @module
 */

import process from "node:process";
import { metrics, trace } from "@opentelemetry/api";
import {
  AggregationTemporality,
  type DataPoint,
  type Histogram,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from "@opentelemetry/sdk-metrics";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { createPersistence } from "../mod.ts";
import { openTelemetryHook } from "../src/otel.ts";

// The application's SDK, registered globally once at start-up.
const metricExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
const reader = new PeriodicExportingMetricReader({ exporter: metricExporter, exportIntervalMillis: 60_000 });
const meterProvider = new MeterProvider({ readers: [reader] });
const spanExporter = new InMemorySpanExporter();
const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spanExporter)] });
metrics.setGlobalMeterProvider(meterProvider);
trace.setGlobalTracerProvider(tracerProvider);

// The one line that wires the persistence layer in: the hook records into the global providers.
const persistence = createPersistence({ onEvent: openTelemetryHook() });
try {
  const { rules, files } = persistence;
  await rules.getPipeline("DEFAULT_BiWeeklyFri");
  await rules.getCalculationRule("ACME_CORP", "OVERTIME");
  await rules.getCalculationRule("GLOBEX", "OVERTIME");
  await rules.getIrsLimits(2026);
  const path = `results/otel-example-${crypto.randomUUID()}/summary.json`;
  await files.write(path, JSON.stringify({ ok: true }));
  await files.read(path);
} finally {
  await persistence.close();
}

await reader.forceFlush();
const recorded = metricExporter.getMetrics().flatMap((resource) => resource.scopeMetrics)
  .flatMap((scope) => scope.metrics);
const label = (attributes: Record<string, unknown>) =>
  Object.entries(attributes).map(([name, value]) => `${name}=${value}`).join(" ");
for (const metric of recorded) {
  console.log(`${metric.descriptor.name} (${metric.descriptor.unit})`);
  for (const point of metric.dataPoints as Array<DataPoint<number> | DataPoint<Histogram>>) {
    const value = typeof point.value === "number"
      ? String(point.value)
      : `${point.value.count} recorded, ${(point.value.sum ?? 0).toFixed(4)} s in all`;
    console.log(`  ${label(point.attributes)}: ${value}`);
  }
}
const spans = spanExporter.getFinishedSpans();
console.log(`${spans.length} spans: ${[...new Set(spans.map((span) => span.name))].join(", ")}`);

const names = new Set(recorded.map((metric) => metric.descriptor.name));
const expected = [
  "db.client.operation.duration",
  "bluestar.file_store.operation.duration",
  "bluestar.rules_store.call.duration",
  "bluestar.requests",
];
const missing = expected.filter((name) => !names.has(name));
const systems = new Set(
  recorded.filter((metric) => metric.descriptor.name === "db.client.operation.duration")
    .flatMap((metric) => metric.dataPoints.map((point) => point.attributes["db.system.name"])),
);
if (!systems.has("aws.dynamodb")) missing.push("db.client.operation.duration of aws.dynamodb");
if (persistence.cache !== null && !systems.has("redis")) missing.push("db.client.operation.duration of redis");
if (spans.length === 0) missing.push("spans");
await meterProvider.shutdown();
await tracerProvider.shutdown();
if (missing.length > 0) {
  console.error(`Missing telemetry: ${missing.join(", ")}`);
  process.exit(1);
}
