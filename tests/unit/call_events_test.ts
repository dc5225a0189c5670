// The events that end a call: each backend's carry durationMs, an outcome
// and, when the call failed, the error's code; outcomes classify the library's
// errors one way everywhere.
import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { after, afterEach, describe, it } from "node:test";
import { ConditionalCheckFailedException } from "@aws-sdk/client-dynamodb";
import { ListObjectsV2Command, NoSuchKey, S3Client } from "@aws-sdk/client-s3";
import { DynamoDBDocumentClient, GetCommand, PutCommand, QueryCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { mockClient } from "aws-sdk-client-mock";
import {
  CacheError,
  type CacheEvent,
  type CallEnd,
  ConflictError,
  CorruptItemError,
  DynamoDBRulesStore,
  FileNotFoundError,
  type FileStoreEvent,
  InvalidInputError,
  IrsLimitsNotFoundError,
  PipelineNotFoundError,
  RedisCacheBackend,
  type RedisCacheClient,
  RuleNotFoundError,
  RulesStoreError,
  type RulesStoreEvent,
  S3FileStore,
} from "../../mod.ts";
import { endedOk, endedWith } from "../../src/core/call_end.ts";
import { batchState } from "../contract/fixtures.ts";

/** Asserts the fields every end event carries; a duration is a non-negative number, never a particular one. */
function assertEnd(event: Partial<CallEnd> | undefined, outcome: CallEnd["outcome"], errorCode?: string): void {
  assert.ok(event !== undefined, "no end event");
  assert.equal(typeof event.durationMs, "number");
  assert.ok(event.durationMs! >= 0);
  assert.equal(event.outcome, outcome);
  assert.equal(event.errorCode, errorCode);
}

describe("the end of a call", () => {
  it("classifies not-found errors as not_found, a conflict as conflict, anything else as error", () => {
    const started = performance.now();
    assertEnd(endedOk(started), "ok");
    for (const error of [new RuleNotFoundError("x"), new PipelineNotFoundError("x"), new IrsLimitsNotFoundError("x")]) {
      assertEnd(endedWith(started, error), "not_found", error.code);
    }
    assertEnd(endedWith(started, new FileNotFoundError("x")), "not_found", "FILE_NOT_FOUND");
    assertEnd(endedWith(started, new ConflictError("x")), "conflict", "CONFLICT");
    assertEnd(endedWith(started, new CorruptItemError("x")), "error", "CORRUPT_ITEM");
    assertEnd(endedWith(started, new TypeError("x")), "error", "TypeError");
    assertEnd(endedWith(started, "a string"), "error", "string");
  });
});

describe("DynamoDBRulesStore call and response events", () => {
  const ddb = mockClient(DynamoDBDocumentClient);
  const events: RulesStoreEvent[] = [];
  afterEach(() => {
    ddb.reset();
    events.length = 0;
  });
  after(() => ddb.restore());
  const openStore = () =>
    new DynamoDBRulesStore({
      region: "us-east-1",
      credentials: { accessKeyId: "test", secretAccessKey: "test" },
      tableSuffix: "-ut",
      onEvent: (event) => events.push(event),
    });
  const ofType = <T extends RulesStoreEvent["type"]>(type: T) =>
    events.filter((event): event is Extract<RulesStoreEvent, { type: T }> => event.type === type);

  it("a lost condition ends its request and its call as conflict, naming DynamoDB's exception", async () => {
    ddb.on(PutCommand).rejects(
      new ConditionalCheckFailedException({
        message: "The conditional request failed",
        $metadata: {},
        Item: { PK: { S: "BATCH#B1" }, version: { N: "7" } },
      }),
    );
    const store = openStore();
    await assert.rejects(store.saveBatchState("B1", batchState("B1", { version: 4 }), { expectedVersion: 3 }));
    const [response] = ofType("dynamodb.response");
    assert.equal(response.operation, "PutItem");
    assert.equal(response.table, "bluestar-batch-state-ut");
    assert.equal(response.awsError, "ConditionalCheckFailedException");
    assertEnd(response, "conflict", "CONFLICT");
    const [call] = ofType("call");
    assert.equal(call.method, "saveBatchState");
    assertEnd(call, "conflict", "CONFLICT");
    assert.deepEqual(events.map((event) => event.type), ["dynamodb.request", "dynamodb.response", "call"]);
  });

  it("a successful request ends ok with no error code", async () => {
    ddb.on(PutCommand).resolves({});
    const store = openStore();
    await store.saveBatchState("B1", batchState("B1", { version: 1 }));
    const [response] = ofType("dynamodb.response");
    assertEnd(response, "ok");
    assert.equal(response.awsError, undefined);
    assertEnd(ofType("call")[0], "ok");
  });

  it("sealAuditTrail() and verifyAuditTrail() end with a call event of their own name; the seal's UpdateItems too", async () => {
    ddb.on(UpdateCommand).resolves({ Attributes: {} });
    ddb.on(QueryCommand).resolves({ Items: [] });
    ddb.on(GetCommand).resolves({});
    const store = openStore();
    await store.sealAuditTrail("B1", { actor: "auditor" });
    const updates = ofType("dynamodb.response").filter((event) => event.operation === "UpdateItem");
    assert.equal(updates.length, 2, "the seal started and finished");
    for (const update of updates) assertEnd(update, "ok");
    await store.verifyAuditTrail("B1");
    const calls = ofType("call");
    assert.deepEqual(calls.map((call) => call.method), ["sealAuditTrail", "verifyAuditTrail"]);
    for (const call of calls) assertEnd(call, "ok");
  });

  it("a call refused before any request, or on a closed store, still reports its end", async () => {
    const store = openStore();
    await assert.rejects(store.getBatchState(""), InvalidInputError);
    await store.close();
    await assert.rejects(store.getIrsLimits(2026), RulesStoreError);
    assert.deepEqual(ofType("dynamodb.request"), []);
    const [refused, closed] = ofType("call");
    assert.equal(refused.method, "getBatchState");
    assertEnd(refused, "error", "INVALID_INPUT");
    assert.equal(closed.method, "getIrsLimits");
    assertEnd(closed, "error", "RULES_STORE_ERROR");
  });
});

/** A node-redis stand-in whose every command fails with `failure`. */
class FailingRedisClient extends EventEmitter implements RedisCacheClient {
  isOpen = true;
  isReady = true;
  constructor(readonly failure: Error) {
    super();
  }
  connect(): Promise<unknown> {
    return Promise.resolve(this);
  }
  get(): Promise<unknown> {
    return Promise.reject(this.failure);
  }
  set(): Promise<unknown> {
    return Promise.reject(this.failure);
  }
  del(): Promise<unknown> {
    return Promise.reject(this.failure);
  }
}

describe("RedisCacheBackend command events", () => {
  it("a failed command ends as error with CACHE_ERROR, the caller's key and the command", async () => {
    const events: CacheEvent[] = [];
    const cache = new RedisCacheBackend({
      client: new FailingRedisClient(new Error("READONLY")),
      keyPrefix: "ns:",
      onEvent: (event) => events.push(event),
    });
    await assert.rejects(cache.setex("k", 60, 1), CacheError);
    await cache.close();
    const [command] = events;
    assert.ok(command.type === "redis.command");
    assert.equal(command.command, "SET");
    assert.equal(command.key, "k");
    assertEnd(command, "error", "CACHE_ERROR");
  });
});

describe("S3FileStore end events", () => {
  const s3 = mockClient(S3Client);
  after(() => s3.restore());

  it("a missing file's error event ends as not_found; a listing's event ends ok", async () => {
    const events: FileStoreEvent[] = [];
    const client = new S3Client({ region: "us-east-1", credentials: { accessKeyId: "test", secretAccessKey: "test" } });
    const files = new S3FileStore({ bucket: "bkt", client, onEvent: (event) => events.push(event) });
    s3.rejects(new NoSuchKey({ $metadata: { httpStatusCode: 404 }, message: "No such key" }));
    await assert.rejects(files.read("in/missing.csv"), FileNotFoundError);
    s3.reset();
    s3.on(ListObjectsV2Command).resolves({ Contents: [{ Key: "in/a.csv" }], IsTruncated: false });
    assert.deepEqual(await files.listFiles("in/"), ["in/a.csv"]);
    files.close();
    client.destroy();
    const [failed, listed] = events;
    assert.ok(failed.type === "error" && failed.action === "read");
    assertEnd(failed, "not_found", "FILE_NOT_FOUND");
    assert.ok(listed.type === "list");
    assertEnd(listed, "ok");
  });
});
