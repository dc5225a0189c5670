// The OpenTelemetry SDK with its in-memory exporters, for the adapter's tests:
// an onEvent hook recording into private meter and tracer providers (the
// global ones stay untouched), and readers of what it recorded.
import type { Attributes, Tracer } from "@opentelemetry/api";
import {
  AggregationTemporality,
  type DataPoint,
  type Histogram,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from "@opentelemetry/sdk-metrics";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import type { PersistenceEvent } from "../../mod.ts";
import { openTelemetryHook } from "../../src/otel.ts";

/** A data point of a counter (`value` a number) or a histogram (`value` a count, sum, buckets). */
export type Point = DataPoint<number> | DataPoint<Histogram>;

/** An OpenTelemetry SDK recording in memory, and the adapter's hook wired to it. */
export interface Telemetry {
  /** The adapter's hook, recording into this SDK. */
  onEvent: (event: PersistenceEvent) => void;
  /** The data points of a metric, as collected now (cumulative). */
  points(metric: string): Promise<Point[]>;
  /** The metrics' names and units, as collected now. */
  units(): Promise<Map<string, string>>;
  /** A tracer of the same tracer provider, for the spans a test starts itself. */
  tracer(): Tracer;
  /** The spans ended so far. */
  spans(): ReadableSpan[];
  /** Shuts both providers down. */
  shutdown(): Promise<void>;
}

/** A fresh SDK with in-memory exporters and the adapter's hook on it. */
export function recordingTelemetry(): Telemetry {
  const metricExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  // Exports on forceFlush only: the interval is longer than any test.
  const reader = new PeriodicExportingMetricReader({ exporter: metricExporter, exportIntervalMillis: 3_600_000 });
  const meterProvider = new MeterProvider({ readers: [reader] });
  const spanExporter = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spanExporter)] });
  const collect = async () => {
    metricExporter.reset();
    await reader.forceFlush();
    return metricExporter.getMetrics().flatMap((resource) => resource.scopeMetrics).flatMap((scope) => scope.metrics);
  };
  return {
    onEvent: openTelemetryHook({ meterProvider, tracerProvider }),
    points: async (metric) =>
      (await collect()).filter((data) => data.descriptor.name === metric).flatMap((data) => data.dataPoints as Point[]),
    units: async () => new Map((await collect()).map((data) => [data.descriptor.name, data.descriptor.unit])),
    tracer: () => tracerProvider.getTracer("test"),
    spans: () => spanExporter.getFinishedSpans(),
    shutdown: async () => {
      await meterProvider.shutdown();
      await tracerProvider.shutdown();
    },
  };
}

/** The points whose attributes include every given one. */
export function matching(points: Point[], attributes: Attributes): Point[] {
  return points.filter((point) =>
    Object.entries(attributes).every(([name, value]) =>
      JSON.stringify(point.attributes[name]) === JSON.stringify(value)
    )
  );
}

/** The sum of a counter's matching points. */
export function total(points: Point[], attributes: Attributes = {}): number {
  return matching(points, attributes).reduce((sum, point) => sum + (point.value as number), 0);
}

/** How many values a histogram's matching points recorded. */
export function recorded(points: Point[], attributes: Attributes = {}): number {
  return matching(points, attributes).reduce((sum, point) => sum + (point.value as Histogram).count, 0);
}
