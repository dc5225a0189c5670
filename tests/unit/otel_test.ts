// The OpenTelemetry adapter on the SDK's in-memory exporters: the events of
// the rules store (mocked DynamoDB), the Redis backend (a fake client) and the
// S3 file store (mocked S3) become the metrics and spans its documentation
// names, and a failing meter never reaches a caller.
import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { after, afterEach, before, describe, it } from "node:test";
import { ResourceNotFoundException } from "@aws-sdk/client-dynamodb";
import { GetObjectCommand, NoSuchKey, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { BatchGetCommand, DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { context, createNoopMeter, type MeterProvider, SpanKind, SpanStatusCode } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { mockClient } from "aws-sdk-client-mock";
import {
  type CalculationRuleRecord,
  DynamoDBRulesStore,
  FileNotFoundError,
  MemoryCacheBackend,
  type PersistenceEvent,
  RedisCacheBackend,
  type RedisCacheClient,
  RuleNotFoundError,
  RulesStoreError,
  S3FileStore,
} from "../../mod.ts";
import { calculationRuleItem } from "../support/dynamodb.ts";
import { openTelemetryHook } from "../../src/otel.ts";
import { RULES_FIXTURE } from "../contract/fixtures.ts";
import { matching, recorded, recordingTelemetry, type Telemetry, total } from "../support/otel.ts";

const SUFFIX = "-otel";
const CALC_TABLE = `bluestar-calculation-rules${SUFFIX}`;
const CREDENTIALS = { accessKeyId: "test", secretAccessKey: "test" };
const GLOBAL_FICA = RULES_FIXTURE.calculationRules!.find((r) => r.ruleId === "FICA_SS" && r.clientId === "GLOBAL")!;
const ruleItem = (rule: CalculationRuleRecord) => calculationRuleItem(rule);

/** A node-redis stand-in answering from a map. */
class MapRedisClient extends EventEmitter implements RedisCacheClient {
  isOpen = true;
  isReady = true;
  readonly values = new Map<string, string>();
  connect(): Promise<unknown> {
    return Promise.resolve(this);
  }
  get(key: string): Promise<unknown> {
    return Promise.resolve(this.values.get(key) ?? null);
  }
  set(key: string, value: string): Promise<unknown> {
    this.values.set(key, value);
    return Promise.resolve("OK");
  }
  del(key: string): Promise<unknown> {
    return Promise.resolve(this.values.delete(key) ? 1 : 0);
  }
}

describe("openTelemetryHook() on the OpenTelemetry SDK's in-memory exporters", () => {
  const ddb = mockClient(DynamoDBDocumentClient);
  const s3 = mockClient(S3Client);
  let telemetry: Telemetry;
  before(() => {
    telemetry = recordingTelemetry();
  });
  afterEach(async () => {
    ddb.reset();
    s3.reset();
    await telemetry.shutdown();
    telemetry = recordingTelemetry();
  });
  after(async () => {
    ddb.restore();
    s3.restore();
    await telemetry.shutdown();
  });

  const openRules = (
    onEvent: (event: PersistenceEvent) => void = telemetry.onEvent,
    cache: MemoryCacheBackend = new MemoryCacheBackend(),
  ) => new DynamoDBRulesStore({ region: "us-east-1", credentials: CREDENTIALS, tableSuffix: SUFFIX, cache, onEvent });

  it("a DynamoDB request is a db.client.operation.duration point in seconds and a CLIENT span", async () => {
    ddb.on(BatchGetCommand).resolves({ Responses: { [CALC_TABLE]: [ruleItem(GLOBAL_FICA)] } });
    const rules = openRules();
    await rules.getCalculationRule("ACME", "FICA_SS");
    await rules.close();

    const request = {
      "db.system.name": "aws.dynamodb",
      "db.operation.name": "BatchGetItem",
      "db.collection.name": CALC_TABLE,
    };
    const durations = await telemetry.points("db.client.operation.duration");
    assert.equal(recorded(durations, request), 1);
    assert.equal((await telemetry.units()).get("db.client.operation.duration"), "s");
    assert.equal(total(await telemetry.points("bluestar.requests"), { ...request, "bluestar.outcome": "ok" }), 1);
    assert.deepEqual(await telemetry.points("bluestar.errors"), []);
    const span = telemetry.spans().find((span) => span.name === `BatchGetItem ${CALC_TABLE}`);
    assert.ok(span !== undefined, telemetry.spans().map((span) => span.name).join(", "));
    assert.equal(span.kind, SpanKind.CLIENT);
    assert.deepEqual(span.attributes["aws.dynamodb.table_names"], [CALC_TABLE]);
    assert.equal(span.attributes["db.system.name"], "aws.dynamodb");
    assert.equal(span.status.code, SpanStatusCode.UNSET);
  });

  it("every rules-store call is a bluestar.rules_store.call.duration point and an INTERNAL span", async () => {
    ddb.on(BatchGetCommand).resolves({ Responses: { [CALC_TABLE]: [ruleItem(GLOBAL_FICA)] } });
    const rules = openRules();
    await rules.getCalculationRule("ACME", "FICA_SS");
    await rules.getCalculationRule("ACME", "FICA_SS");
    await rules.close();

    const method = { "bluestar.rules_store.method": "getCalculationRule" };
    assert.equal(recorded(await telemetry.points("bluestar.rules_store.call.duration"), method), 2);
    const calls = telemetry.spans().filter((span) => span.name === "getCalculationRule");
    assert.equal(calls.length, 2);
    assert.ok(calls.every((span) => span.kind === SpanKind.INTERNAL));
  });

  it("cache lookups are counted per tier and result: a miss, then a hit, of each owner's entry in the redis tier", async () => {
    ddb.on(BatchGetCommand).resolves({ Responses: { [CALC_TABLE]: [ruleItem(GLOBAL_FICA)] } });
    const cache = new MemoryCacheBackend();
    const rules = openRules(telemetry.onEvent, cache);
    await rules.getCalculationRule("ACME", "FICA_SS");
    await rules.close(); // the write-back has landed
    const reopened = openRules(telemetry.onEvent, cache);
    await reopened.getCalculationRule("ACME", "FICA_SS");
    await reopened.close();

    const lookups = await telemetry.points("bluestar.cache.lookups");
    const tier = { "bluestar.cache.tier": "redis", "bluestar.cache.kind": "calculation" };
    // Two entries a read: ACME's own versions (none) and GLOBAL's.
    assert.equal(total(lookups, { ...tier, "bluestar.cache.result": "miss" }), 2);
    assert.equal(total(lookups, { ...tier, "bluestar.cache.result": "hit" }), 2);
    assert.equal(total(lookups), 4);
  });

  it("a failed request counts as an error, with the service's error name as error.type and an ERROR span", async () => {
    ddb.on(BatchGetCommand).rejects(
      new ResourceNotFoundException({ $metadata: { httpStatusCode: 400 }, message: "Requested resource not found" }),
    );
    const rules = openRules();
    await assert.rejects(rules.getCalculationRule("ACME", "FICA_SS"), RulesStoreError);
    await rules.close();

    const failed = { "db.operation.name": "BatchGetItem", "error.type": "ResourceNotFoundException" };
    assert.equal(total(await telemetry.points("bluestar.errors"), { ...failed, "bluestar.outcome": "error" }), 1);
    assert.equal(recorded(await telemetry.points("db.client.operation.duration"), failed), 1);
    const call = { "bluestar.rules_store.method": "getCalculationRule", "error.type": "RULES_STORE_ERROR" };
    assert.equal(total(await telemetry.points("bluestar.errors"), call), 1);
    const span = telemetry.spans().find((span) => span.name === `BatchGetItem ${CALC_TABLE}`);
    assert.equal(span?.status.code, SpanStatusCode.ERROR);
    assert.equal(span?.attributes["error.type"], "ResourceNotFoundException");
  });

  it("a rule that does not exist is outcome not_found, error.type RULE_NOT_FOUND; its request is ok", async () => {
    ddb.on(BatchGetCommand).resolves({ Responses: { [CALC_TABLE]: [] } });
    const rules = openRules();
    await assert.rejects(rules.getCalculationRule("ACME", "NO_SUCH_RULE"), RuleNotFoundError);
    await rules.close();

    const errors = await telemetry.points("bluestar.errors");
    assert.equal(
      total(errors, { "bluestar.rules_store.method": "getCalculationRule", "bluestar.outcome": "not_found" }),
      1,
    );
    assert.equal(matching(errors, { "error.type": "RULE_NOT_FOUND" }).length, 1);
    assert.equal(total(errors, { "db.system.name": "aws.dynamodb" }), 0);
  });

  it("Redis commands are db.client.operation.duration points of db.system.name redis and CLIENT spans", async () => {
    const cache = new RedisCacheBackend({ client: new MapRedisClient(), onEvent: telemetry.onEvent });
    await cache.setex("k", 60, { rate: "0.062" });
    assert.deepEqual(await cache.get("k"), { rate: "0.062" });
    await cache.delete("k");
    await cache.close();

    const durations = await telemetry.points("db.client.operation.duration");
    for (const command of ["GET", "SET", "DEL"]) {
      assert.equal(recorded(durations, { "db.system.name": "redis", "db.operation.name": command }), 1, command);
    }
    assert.deepEqual(telemetry.spans().map((span) => [span.name, span.kind]), [
      ["SET", SpanKind.CLIENT],
      ["GET", SpanKind.CLIENT],
      ["DEL", SpanKind.CLIENT],
    ]);
  });

  it("S3 operations are bluestar.file_store.operation.duration points and spans with aws.s3.bucket and aws.s3.key", async () => {
    s3.on(PutObjectCommand).resolves({});
    s3.on(GetObjectCommand).rejects(new NoSuchKey({ $metadata: { httpStatusCode: 404 }, message: "No such key" }));
    const client = new S3Client({ region: "us-east-1", credentials: CREDENTIALS });
    const files = new S3FileStore({ bucket: "bkt", client, onEvent: telemetry.onEvent });
    await files.write("in/a.csv", "id,amount\n");
    await assert.rejects(files.read("in/missing.csv"), FileNotFoundError);
    files.close();
    client.destroy();

    const durations = await telemetry.points("bluestar.file_store.operation.duration");
    const write = { "bluestar.file_store.operation": "write", "aws.s3.bucket": "bkt" };
    assert.equal(recorded(durations, write), 1);
    const missing = { "bluestar.file_store.operation": "read", "error.type": "FILE_NOT_FOUND" };
    assert.equal(recorded(durations, missing), 1);
    assert.equal(total(await telemetry.points("bluestar.errors"), { ...missing, "bluestar.outcome": "not_found" }), 1);
    const [written, read] = telemetry.spans();
    assert.equal(written.name, "S3 write");
    assert.equal(written.attributes["aws.s3.bucket"], "bkt");
    assert.equal(written.attributes["aws.s3.key"], "in/a.csv");
    assert.equal(read.name, "S3 read");
    assert.equal(read.attributes["aws.s3.key"], "in/missing.csv");
    assert.equal(read.status.code, SpanStatusCode.ERROR);
  });

  it("a span covers the event's durationMs and the histogram records it in seconds", async () => {
    telemetry.onEvent({ type: "call", method: "getIrsLimits", durationMs: 1_500, outcome: "ok" });
    const [span] = telemetry.spans();
    assert.deepEqual(span.duration, [1, 500_000_000]);
    const [point] = await telemetry.points("bluestar.rules_store.call.duration");
    assert.equal((point.value as { sum: number }).sum, 1.5);
  });

  it("with a context manager registered, the spans of a call are children of the span active where it was made", async () => {
    ddb.on(BatchGetCommand).resolves({ Responses: { [CALC_TABLE]: [ruleItem(GLOBAL_FICA)] } });
    const manager = new AsyncLocalStorageContextManager().enable();
    context.setGlobalContextManager(manager);
    try {
      const rules = openRules();
      const tracer = telemetry.tracer();
      const parent = await tracer.startActiveSpan("agent step", async (step) => {
        await rules.getCalculationRule("ACME", "FICA_SS");
        step.end();
        return step.spanContext();
      });
      await rules.close();
      const children = telemetry.spans().filter((span) => span.name !== "agent step");
      assert.deepEqual(children.map((span) => span.name).sort(), [`BatchGetItem ${CALC_TABLE}`, "getCalculationRule"]);
      for (const span of children) {
        assert.equal(span.parentSpanContext?.spanId, parent.spanId, span.name);
        assert.equal(span.spanContext().traceId, parent.traceId, span.name);
      }
    } finally {
      context.disable();
      manager.disable();
    }
  });

  it("the hook never throws, even when the meter does", () => {
    const broken = createNoopMeter();
    broken.createHistogram = () => ({
      record: () => {
        throw new Error("exporter down");
      },
    });
    const meterProvider: MeterProvider = { getMeter: () => broken };
    const onEvent = openTelemetryHook({ meterProvider });
    assert.doesNotThrow(() => onEvent({ type: "call", method: "getIrsLimits", durationMs: 1, outcome: "ok" }));
  });
});
