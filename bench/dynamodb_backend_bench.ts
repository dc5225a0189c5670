// DynamoDBRulesStore against the raw clients, on moto and the local Redis:
//
//   deno bench -A bench/dynamodb_backend_bench.ts
//
// - cache hit: getCalculationRule() through RedisCacheBackend, against a raw
//   node-redis GET + JSON.parse of the same value (target: at most 10% more).
// - cache hit through an in-memory cache against that cache's get() alone:
//   the store's own CPU per hit, without the network.
// - cold fallback (no cache): getCalculationRule() for a client without an
//   override (one BatchGetItem), against two sequential raw GetItem calls.
//
// DynamoDB requests per call are counted on the wire (SDK middleware, retries
// included) and printed before the benches run. The tables are created once
// under the suffix "-bench" and left in place (moto keeps them in memory).
import { DynamoDBClient, GetItemCommand } from "@aws-sdk/client-dynamodb";
import { createClient } from "redis";
import { cacheKey } from "../src/core/keys.ts";
import { decodeRulesData, problemText } from "../src/core/schema.ts";
import { DynamoDBRulesStore } from "../src/persistence/dynamodb_backend.ts";
import { MemoryCacheBackend } from "../src/persistence/memory_backend.ts";
import { ensureTables, rulesDataItems, writeItems } from "../src/persistence/provision.ts";
import { RedisCacheBackend } from "../src/persistence/redis_backend.ts";
import { tableName } from "../src/persistence/tables.ts";
import { AWS_ENDPOINT_URL, REDIS_URL, useLocalAwsCredentials } from "../tests/support/gate.ts";
import { RULES_FIXTURE } from "../tests/contract/fixtures.ts";

const SUFFIX = "-bench";
const CLIENT = "ACME";
const RULE = "FICA_SS"; // GLOBAL's only: ACME falls back

useLocalAwsCredentials();

// One DynamoDB client for the store and the raw baseline, counting requests on the wire.
let requests = 0;
const dynamodb = new DynamoDBClient({ endpoint: AWS_ENDPOINT_URL });
dynamodb.middlewareStack.add((next) => (args) => {
  requests++;
  return next(args);
}, { step: "deserialize", name: "countRequests", priority: "high" });

await ensureTables(dynamodb, SUFFIX, { pollIntervalMs: 20 });
const decoded = decodeRulesData(RULES_FIXTURE);
if (!decoded.ok) throw new Error(decoded.problems.map(problemText).join("; "));
for (const { table, items } of rulesDataItems(decoded.value)) {
  await writeItems(dynamodb, tableName(table, SUFFIX), items);
}

const cache = await RedisCacheBackend.connect({ url: REDIS_URL });
const raw = createClient({ url: REDIS_URL });
await raw.connect();

const cached = new DynamoDBRulesStore({ client: dynamodb, tableSuffix: SUFFIX, cache });
const uncached = new DynamoDBRulesStore({ client: dynamodb, tableSuffix: SUFFIX });
const key = cacheKey(SUFFIX, "calculation", CLIENT, RULE);
await cache.delete(key);
await cached.getCalculationRule(CLIENT, RULE); // cold: fills the cache
await cached.close(); // settles the write-back; the cache stays open
const hot = new DynamoDBRulesStore({ client: dynamodb, tableSuffix: SUFFIX, cache });

const calcTable = tableName("calculation-rules", SUFFIX);
async function rawTwoGets(): Promise<unknown> {
  const own = await dynamodb.send(
    new GetItemCommand({ TableName: calcTable, Key: { PK: { S: `CLIENT#${CLIENT}` }, SK: { S: `RULE#${RULE}` } } }),
  );
  if (own.Item !== undefined) return own.Item;
  const global = await dynamodb.send(
    new GetItemCommand({ TableName: calcTable, Key: { PK: { S: "CLIENT#GLOBAL" }, SK: { S: `RULE#${RULE}` } } }),
  );
  return global.Item;
}

async function rawGetParse(): Promise<unknown> {
  const text = await raw.get(key);
  if (text === null) throw new Error(`Cache key ${key} is missing`);
  return JSON.parse(text as string);
}

async function perCall(label: string, call: () => Promise<unknown>, calls = 50): Promise<void> {
  requests = 0;
  for (let index = 0; index < calls; index++) await call();
  console.log(`${label}: ${(requests / calls).toFixed(2)} DynamoDB requests per call`);
}

const rule = await hot.getCalculationRule(CLIENT, RULE);
if (rule.scope !== "GLOBAL" || rule.parameters.rate !== "0.062") throw new Error("Unexpected rule");
await perCall("cache hit  store.getCalculationRule (RedisCacheBackend)", () => hot.getCalculationRule(CLIENT, RULE));
await perCall("cache hit  raw Redis GET + JSON.parse", rawGetParse);
await perCall("cold       store.getCalculationRule (no cache)", () => uncached.getCalculationRule(CLIENT, RULE));
await perCall("cold       raw GetItem (client) + GetItem (GLOBAL)", rawTwoGets);

/**
 * Interleaved A/B timing: the two calls alternate, so load from other
 * processes hits both alike (Deno.bench runs them one after the other, and on
 * a busy machine their ratio swings with the load). Prints p10, p50, p90.
 */
async function interleaved(label: string, base: () => Promise<unknown>, candidate: () => Promise<unknown>) {
  const samples: [number[], number[]] = [[], []];
  for (let index = 0; index < 22_000; index++) {
    for (const [slot, call] of [base, candidate].entries()) {
      const started = performance.now();
      await call();
      if (index >= 2_000) samples[slot].push(performance.now() - started);
    }
  }
  const quantile = (list: number[], q: number) => list[Math.floor(list.length * q)] * 1000;
  const [a, b] = samples.map((list) => list.sort((x, y) => x - y));
  const row = (q: number) =>
    `p${q * 100} ${quantile(a, q).toFixed(1)} µs vs ${quantile(b, q).toFixed(1)} µs (${
      ((quantile(b, q) / quantile(a, q) - 1) * 100).toFixed(1)
    }%)`;
  console.log(`${label}, interleaved: ${[0.1, 0.5, 0.9].map(row).join("; ")}`);
}

await interleaved(
  "cache hit: raw GET + JSON.parse vs getCalculationRule",
  rawGetParse,
  () => hot.getCalculationRule(CLIENT, RULE),
);

Deno.bench({
  name: "raw Redis GET + JSON.parse",
  group: "cache hit",
  baseline: true,
  n: 20_000,
  warmup: 2_000,
  fn: async () => {
    await rawGetParse();
  },
});

Deno.bench({
  name: "getCalculationRule, cache hit (RedisCacheBackend)",
  group: "cache hit",
  n: 20_000,
  warmup: 2_000,
  fn: async () => {
    await hot.getCalculationRule(CLIENT, RULE);
  },
});

// The store's own CPU per hit, without the network: the same read through an
// in-memory cache against that cache's get() alone.
const memoryCache = new MemoryCacheBackend();
const inMemory = new DynamoDBRulesStore({ client: dynamodb, tableSuffix: SUFFIX, cache: memoryCache });
await inMemory.getCalculationRule(CLIENT, RULE);

Deno.bench({
  name: "MemoryCacheBackend.get",
  group: "cache hit, in-memory cache (library CPU only)",
  baseline: true,
  n: 50_000,
  warmup: 5_000,
  fn: async () => {
    await memoryCache.get(key);
  },
});

Deno.bench({
  name: "getCalculationRule, cache hit (MemoryCacheBackend)",
  group: "cache hit, in-memory cache (library CPU only)",
  n: 50_000,
  warmup: 5_000,
  fn: async () => {
    await inMemory.getCalculationRule(CLIENT, RULE);
  },
});

Deno.bench({
  name: "raw GetItem x2 (client, then GLOBAL)",
  group: "cold fallback",
  baseline: true,
  n: 300,
  warmup: 20,
  fn: async () => {
    await rawTwoGets();
  },
});

Deno.bench({
  name: "getCalculationRule, no cache (1 BatchGetItem)",
  group: "cold fallback",
  n: 300,
  warmup: 20,
  fn: async () => {
    await uncached.getCalculationRule(CLIENT, RULE);
  },
});

globalThis.addEventListener("unload", () => {
  void hot.close();
  void uncached.close();
  void inMemory.close();
  void cache.close();
  void raw.close();
  dynamodb.destroy();
});
