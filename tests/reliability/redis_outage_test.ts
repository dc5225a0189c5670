// Item 1: Redis goes away in the middle of rule reads. DynamoDBRulesStore
// reads through RedisCacheBackend, which reaches the real Redis through a
// TCP proxy the test stops and restarts on the same port.
import assert from "node:assert/strict";
import { after, before, it } from "node:test";
import { createClient } from "redis";
import { type CacheEvent, RedisCacheBackend } from "../../mod.ts";
import { DynamoDBRulesStore, type RulesStoreEvent } from "../../src/persistence/dynamodb_backend.ts";
import { countingClient, createTables, deleteTables, uniqueSuffix } from "../support/dynamodb.ts";
import { AWS_ENDPOINT_URL, integrationSuite, probe, REDIS_URL } from "../support/gate.ts";
import { eventually, TcpProxy } from "../support/net.ts";
import { mapConcurrently } from "../../src/core/concurrency.ts";
import { outcome, overrideData, readKey, type RuleRead } from "../support/rules_data.ts";

const unreachable = (await probe(REDIS_URL)) ?? (await probe(AWS_ENDPOINT_URL));
const redisAddress = new URL(REDIS_URL);

/** How long a cache call may take before the store goes to DynamoDB, in milliseconds. */
const CACHE_TIMEOUT_MS = 500;
/** A read that takes longer than the cache timeout plus this has hung, not merely waited on DynamoDB. */
const HANG_BOUND_MS = 10_000;

integrationSuite("Reliability: Redis outage during rule reads", unreachable, () => {
  const dynamo = countingClient();
  const suffix = uniqueSuffix("rel-outage");
  const proxy = new TcpProxy(redisAddress.hostname.replace(/^\[|\]$/g, ""), Number(redisAddress.port || 6379));
  const storeEvents: RulesStoreEvent[] = [];
  const cacheEvents: CacheEvent[] = [];
  let fixture: Awaited<ReturnType<typeof overrideData>>;
  let cache: RedisCacheBackend;
  let store: DynamoDBRulesStore;

  /** Reads each pair, 50 at a time; each read's outcome and latency, in order. */
  const readAll = (reads: readonly RuleRead[], onDone?: () => void) =>
    mapConcurrently(reads, 50, async (read) => {
      const started = performance.now();
      const result = await outcome(store.getCalculationRule(read.clientId, read.ruleId));
      onDone?.();
      return { read, result, elapsedMs: performance.now() - started };
    });

  const count = (type: RulesStoreEvent["type"]) => storeEvents.filter((event) => event.type === type).length;

  before(async () => {
    fixture = await overrideData(5, 10);
    await createTables(dynamo.client, suffix, fixture.data);
    await proxy.start();
    cache = await RedisCacheBackend.connect({
      port: proxy.port,
      commandTimeoutMs: CACHE_TIMEOUT_MS,
      onEvent: (event) => cacheEvents.push(event),
    });
    store = new DynamoDBRulesStore({
      client: dynamo.client,
      tableSuffix: suffix,
      cache,
      cacheTimeoutMs: CACHE_TIMEOUT_MS,
      onEvent: (event) => storeEvents.push(event),
    });
  });

  after(async () => {
    await store?.close();
    await cache?.close();
    await proxy.stop();
    const raw = createClient({ url: REDIS_URL });
    raw.on("error", () => {});
    await raw.connect();
    for await (const keys of raw.scanIterator({ MATCH: `bluestar:v2:${encodeURIComponent(suffix)}:*`, COUNT: 100 })) {
      if (keys.length > 0) await raw.del(keys);
    }
    raw.destroy();
    await deleteTables(dynamo.client, suffix);
    dynamo.client.destroy();
  });

  it("warms the cache: a second pass over every rule is all cache hits and sends nothing to DynamoDB", async () => {
    const cold = await readAll(fixture.reads);
    for (const { read, result } of cold) {
      assert.ok(result.ok, `cold read ${read.clientId}/${read.ruleId} failed`);
      assert.deepEqual(result.value, fixture.expected.get(readKey(read)));
    }
    assert.ok(cold.some(({ result }) => result.ok && result.value.scope === "CLIENT"));
    assert.ok(cold.some(({ result }) => result.ok && result.value.scope === "GLOBAL"));
    // Write-backs are not awaited by reads: wait until every entry is in Redis.
    await eventually(
      async () => {
        dynamo.requests.clear();
        storeEvents.length = 0;
        const warm = await readAll(fixture.reads);
        assert.ok(warm.every(({ result }) => result.ok));
        assert.equal(dynamo.total(), 0);
        // Two entries per read: the client's own versions and GLOBAL's.
        assert.equal(count("cache.hit"), 2 * fixture.reads.length);
      },
      40,
      50,
    );
  });

  it("the proxy stops while 1,000 reads (overrides and GLOBAL fallbacks) run: every read is right, none throws", async () => {
    storeEvents.length = 0;
    cacheEvents.length = 0;
    dynamo.requests.clear();
    const reads = Array.from({ length: 1_000 }, (_, index) => fixture.reads[(index * 7) % fixture.reads.length]);
    let completed = 0;
    let stopped: Promise<void> | undefined;
    const results = await readAll(reads, () => {
      // Redis goes away under load: 200 reads done, 50 in flight, 750 still to come.
      if (++completed === 200) stopped = proxy.stop();
    });
    await stopped;

    const failures = results.filter(({ result }) => !result.ok);
    assert.deepEqual(
      failures.map(({ read, result }) => `${read.clientId}/${read.ruleId}: ${!result.ok && result.error}`),
      [],
    );
    for (const { read, result } of results) {
      assert.ok(result.ok);
      assert.deepEqual(result.value, fixture.expected.get(readKey(read)));
    }
    assert.ok(results.some(({ result }) => result.ok && result.value.scope === "CLIENT"));
    assert.ok(results.some(({ result }) => result.ok && result.value.scope === "GLOBAL"));

    // Before the stop the cache answered; after it every lookup failed over to DynamoDB, and the cache said why.
    const lookupErrors = storeEvents.filter((event) => event.type === "cache.error" && event.operation === "getMany");
    assert.ok(count("cache.hit") >= 150, `only ${count("cache.hit")} cache hits before the stop`);
    // (Identical concurrent reads share one lookup, so there are fewer lookups than reads; every rule had some.)
    assert.ok(lookupErrors.length >= fixture.reads.length, `only ${lookupErrors.length} failed lookups after the stop`);
    const failedOver = new Set(lookupErrors.map((event) => "key" in event && event.key));
    assert.equal(failedOver.size, fixture.reads.length, "every rule's lookup failed over to DynamoDB");
    assert.ok(lookupErrors.every((event) => event.type === "cache.error" && event.error.code === "CACHE_ERROR"));
    assert.ok(cacheEvents.some((event) => event.type === "cache.error"), "the cache reported the lost connection");
    // A lookup reports one event per entry, one right after the other: two per read here.
    const entries = storeEvents.filter((event) => ["cache.hit", "cache.miss", "cache.corrupt"].includes(event.type));
    let unanswered = 0;
    for (let index = 0; index < entries.length; index += 2) {
      if (entries[index].type !== "cache.hit" || entries[index + 1].type !== "cache.hit") unanswered++;
    }
    assert.equal(
      dynamo.requests.get("BatchGetItem"),
      lookupErrors.length + unanswered,
      "one BatchGetItem per lookup the cache did not answer",
    );

    // A bound on hanging, not a timing claim: no read waited on the dead cache past its timeout.
    const slowest = Math.max(...results.map(({ elapsedMs }) => elapsedMs));
    assert.ok(slowest < CACHE_TIMEOUT_MS + HANG_BOUND_MS, `a read took ${Math.round(slowest)} ms`);
  });

  it("when the proxy is back on the same port, reads are served from the cache again with no DynamoDB request", async () => {
    await proxy.start();
    await eventually(
      () => Promise.resolve(assert.ok(cacheEvents.some((event) => event.type === "cache.reconnect"))),
      100,
      50,
    );
    // The entries cached before the outage are still there.
    await eventually(
      async () => {
        storeEvents.length = 0;
        dynamo.requests.clear();
        const results = await readAll(fixture.reads);
        for (const { read, result } of results) {
          assert.ok(result.ok);
          assert.deepEqual(result.value, fixture.expected.get(readKey(read)));
        }
        assert.equal(dynamo.total(), 0);
        // Two entries per read: the client's own versions and GLOBAL's.
        assert.equal(count("cache.hit"), 2 * fixture.reads.length);
        assert.equal(count("cache.error"), 0);
      },
      20,
      100,
    );
  });
});
