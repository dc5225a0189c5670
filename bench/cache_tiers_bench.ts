// The two cache tiers, measured against BentoCache and the raw Redis client on
// the local Redis and the local AWS endpoint (a few KB of tables):
//
//   deno run -A --v8-flags=--expose-gc bench/cache_tiers_bench.ts
//
// 1. In-process hit of getCalculationRule vs BentoCache's getOrSet hit on its
//    memory + Redis + bus stack (its defaults: the L1 entry is serialized).
// 2. Redis-tier hit (in-process tier off) vs raw MGET of the rule's two
//    per-owner entries (the client's and GLOBAL's) + JSON.parse of each: the
//    same round trip a hand-written read of the same answer makes; and against
//    the round trip alone (no parse), since a hit whose texts the store
//    checked before parses nothing.
// 3. 64 concurrent callers on one warm rule: ops/s, the store vs the raw client.
// 4. Invalidation latency between two processes (rule_writer.ts as the writer; in a fresh process):
//    from the writer's change returning to this process serving the new value.
// 5. Heap growth for 10,000 rules held in the in-process tier, in a fresh process.
//
// Per-call times are taken over batches (the mean of a batch of calls, so the
// clock's resolution does not dominate a sub-microsecond call); p50 and p99
// are over the batches (in 2, over the rounds' means). Ratios compare calls
// of one process, in interleaved rounds, so the load of the shared machine
// falls on all alike. Nothing is asserted: the figures are printed.
import { spawnSync } from "node:child_process";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { setImmediate } from "node:timers";
import { BentoCache, bentostore } from "bentocache";
import { memoryDriver } from "bentocache/drivers/memory";
import { redisBusDriver, redisDriver } from "bentocache/drivers/redis";
import { createClient } from "redis";
import { RedisCacheBackend, RedisInvalidationBus, ruleVersionsCacheKey } from "../mod.ts";
import { DynamoDBRulesStore } from "../src/persistence/dynamodb_backend.ts";
import { RULES_FIXTURE } from "../tests/contract/fixtures.ts";
import { countingClient, createTables, deleteTables, uniqueSuffix } from "../tests/support/dynamodb.ts";
import { AWS_ENDPOINT_URL, probe, REDIS_URL } from "../tests/support/gate.ts";
import { RuleWriter, wallNow } from "../tests/support/two_processes.ts";

for (const url of [REDIS_URL, AWS_ENDPOINT_URL]) {
  const unreachable = await probe(url);
  if (unreachable !== undefined) throw new Error(`The bench needs the local services: ${unreachable}`);
}
const redisAddress = new URL(REDIS_URL);
const connection = { host: redisAddress.hostname, port: Number(redisAddress.port || 6379) };
const { client: dynamo } = countingClient();
/** Set in the child processes of sections 4 and 5: which section to run, on the tables the parent made. */
const childSection = process.env.CACHE_TIERS_SECTION;
const suffix = process.env.CACHE_TIERS_SUFFIX ?? uniqueSuffix("bench-tiers");
if (childSection === undefined) await createTables(dynamo, suffix, RULES_FIXTURE);

/** Per-call microseconds of `call`, one figure per batch: `batches` batches of `size` calls each, after a warm-up. */
async function perCall(call: () => Promise<unknown>, batches: number, size: number): Promise<number[]> {
  for (let warm = 0; warm < size * 10; warm++) await call();
  const samples: number[] = [];
  for (let batch = 0; batch < batches; batch++) {
    // Between batches, untimed: I/O runs (the bus's heartbeats; a process that never yields cannot hear its bus).
    if (batch % 8 === 0) await new Promise((resolve) => setImmediate(resolve));
    const start = performance.now();
    for (let index = 0; index < size; index++) await call();
    samples.push(((performance.now() - start) * 1000) / size);
  }
  return samples;
}

/** Per-call microseconds of each call in `rounds` interleaved rounds (the load of the shared machine falls on all alike). */
async function interleaved(
  calls: Record<string, () => Promise<unknown>>,
  rounds: number,
  batches: number,
  size: number,
  perRound: (samples: number[]) => number[] = (samples) => samples,
): Promise<Record<string, ReturnType<typeof summary>>> {
  const samples: Record<string, number[]> = {};
  for (let round = 0; round < rounds; round++) {
    for (const [name, call] of Object.entries(calls)) {
      (samples[name] ??= []).push(...perRound(await perCall(call, batches, size)));
    }
  }
  return Object.fromEntries(Object.entries(samples).map(([name, times]) => [name, summary(times)]));
}

function summary(samples: number[]) {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  return { p50: at(0.5), p99: at(0.99), mean: samples.reduce((sum, x) => sum + x, 0) / samples.length };
}

const fmt = (value: number, digits = 3) => value.toFixed(digits);
function report(title: string, ours: ReturnType<typeof summary>, theirs: ReturnType<typeof summary>, names: string[]) {
  console.log(`\n${title} (µs per call)`);
  console.log(`  ${names[0]}: p50 ${fmt(ours.p50)}  p99 ${fmt(ours.p99)}  mean ${fmt(ours.mean)}`);
  console.log(`  ${names[1]}: p50 ${fmt(theirs.p50)}  p99 ${fmt(theirs.p99)}  mean ${fmt(theirs.mean)}`);
  console.log(`  ratio: p50 ${fmt(ours.p50 / theirs.p50, 2)}x  p99 ${fmt(ours.p99 / theirs.p99, 2)}x`);
}

/** A store on the bench tables through Redis; `local`: with its in-process tier and bus. */
const tieredEvents: unknown[] = [];
function openStore(local: boolean) {
  const cache = new RedisCacheBackend({ url: REDIS_URL });
  const bus = local
    ? new RedisInvalidationBus({ url: REDIS_URL, namespace: suffix, onEvent: (event) => tieredEvents.push(event) })
    : undefined;
  const store = new DynamoDBRulesStore({
    client: dynamo,
    tableSuffix: suffix,
    cache,
    invalidationBus: bus,
    localCache: local ? { maxEntries: 20_000, ttlSeconds: 300 } : false,
  });
  return {
    store,
    bus,
    close: async () => {
      await store.close();
      await Promise.all([cache.close(), bus?.close()]);
    },
  };
}

/** The per-owner entry of an owner's versions of FICA_SS. */
const ruleKey = (owner: string) => ruleVersionsCacheKey(suffix, "calculation", "FICA_SS", owner);
const RULE_KEYS = [ruleKey("ACME"), ruleKey("GLOBAL")];

// ---- 4. invalidation latency between two processes -------------------------
// In a fresh process too: this process's reads spin on the rule while the writer works, and in a heap that
// sections 1-3 left large (the raw client's 64 callers leave some 25 MB) its young-generation collections
// take milliseconds, which would be measured as the bus's latency.
async function invalidationLatency(): Promise<void> {
  const reader = openStore(true);
  await reader.store.getCalculationRule("ACME", "FICA_SS");
  for (let tries = 0; tries < 500 && !reader.bus!.isLive(); tries++) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  const writer = new RuleWriter(suffix, { url: REDIS_URL });
  const latencies: number[] = [];
  const deliveries: number[] = [];
  let droppedAt = 0;
  reader.bus!.listen({ dropped: () => (droppedAt = wallNow()), restored: () => {} });
  let early = 0;
  // 200 changes, so that the p99 is not simply the slowest one; the first (the writer's first write) is a warm-up.
  const CHANGES = 200;
  for (let change = -1; change < CHANGES; change++) {
    // Canonical decimals (no trailing zero): the store returns exactly what was written.
    const rate = `0.07${String(change + 1).padStart(3, "0")}1`;
    // Warm: the old value is in this process's tier.
    await reader.store.getCalculationRule("ACME", "FICA_SS");
    const returned = writer.change("ACME", "FICA_SS", rate);
    let servedAt = 0;
    const giveUp = performance.now() + 10_000;
    while ((await reader.store.getCalculationRule("ACME", "FICA_SS")).parameters.rate !== rate) {
      if (performance.now() > giveUp) break;
      await new Promise((resolve) => setImmediate(resolve));
    }
    servedAt = wallNow();
    const at = await returned;
    if (performance.now() > giveUp) {
      console.log(`  change ${change}: not served within 10 s (events: ${JSON.stringify(tieredEvents.slice(-6))})`);
      continue;
    }
    if (change < 0) continue;
    if (servedAt < at) early++;
    latencies.push(Math.max(0, servedAt - at));
    deliveries.push(Math.max(0, droppedAt - at));
  }
  const invalidation = summary(latencies);
  console.log(`\n4. Invalidation latency between two processes (${CHANGES} changes, ms)`);
  console.log(
    `  write returned -> other process serves the new value: p50 ${fmt(invalidation.p50)}  p99 ${
      fmt(invalidation.p99)
    }  max ${fmt(Math.max(...latencies))}  mean ${fmt(invalidation.mean)}`,
  );
  const delivery = summary(deliveries);
  console.log(
    `  of which the bus (write returned -> key dropped here): p50 ${fmt(delivery.p50)}  p99 ${
      fmt(delivery.p99)
    }; the rest is the re-read of the dropped key (a Redis hit: the writer wrote the entry through)`,
  );
  console.log(`  served before the writer's call returned: ${early} of ${CHANGES} (counted as 0 ms)`);
  await writer.close();
  await reader.close();
}

// ---- 5. heap growth for 10,000 rules in the in-process tier ----------------
// In a fresh process (this file again, on the same tables): the heap of the sections before it, their
// clients' buffers and the other stores' tiers, would blur a figure of a few MiB.
async function heapGrowth(): Promise<void> {
  const raw = createClient({ url: REDIS_URL, disableOfflineQueue: true });
  raw.on("error", () => {});
  await raw.connect();
  const gc = (globalThis as { gc?: () => void }).gc;
  // Settled first: what the client still buffers from its writes is let go before the heap is read.
  const heap = async () => {
    await new Promise((resolve) => setTimeout(resolve, 200));
    gc?.();
    gc?.();
    return process.memoryUsage().heapUsed;
  };
  const heapStore = openStore(true);
  const RULES = 10_000;
  // A read caches GLOBAL's entry (its write-back lands within the cache timeout).
  await heapStore.store.getCalculationRule("ACME", "FICA_SS");
  let global: string | null = null;
  for (let tries = 0; tries < 100 && global === null; tries++) {
    await new Promise((resolve) => setTimeout(resolve, 10));
    global = await raw.get(ruleKey("GLOBAL"));
  }
  // Each client's own entry: GLOBAL's versions as the client's override (so 10,000 distinct rules), beside GLOBAL's.
  const template = JSON.parse(global!) as { versions: Record<string, unknown>[] };
  for (let index = 0; index < RULES; index += 500) {
    await Promise.all(Array.from({ length: 500 }, (_, offset) => {
      const clientId = `C${index + offset}`;
      const versions = template.versions.map((version) => ({ ...version, clientId }));
      return raw.set(ruleKey(clientId), JSON.stringify({ ...template, clientId, versions }), { EX: 300 });
    }));
  }
  await heapStore.store.getCalculationRule("ACME", "FICA_SS");
  await new Promise((resolve) => setTimeout(resolve, 100));
  const before = await heap();
  for (let index = 0; index < RULES; index++) await heapStore.store.getCalculationRule(`C${index}`, "FICA_SS");
  const after = await heap();
  let localHits = 0;
  for (let index = 0; index < 100; index++) {
    const start = performance.now();
    await heapStore.store.getCalculationRule(`C${index}`, "FICA_SS");
    if (performance.now() - start < 0.05) localHits++;
  }
  console.log(
    `\n5. Heap growth for ${RULES} rules in the in-process tier${gc === undefined ? " (no --expose-gc)" : ""}`,
  );
  console.log(
    `  ${((after - before) / 1024 / 1024).toFixed(1)} MiB, ${Math.round((after - before) / RULES)} bytes per rule`,
  );
  console.log(`  (${localHits} of 100 re-reads under 50 µs: served in process)`);
  await heapStore.close();
  await raw.close();
}

if (childSection !== undefined) {
  await (childSection === "invalidation" ? invalidationLatency() : heapGrowth());
  dynamo.destroy();
  process.exit(0);
}

/** Runs one section in a fresh process: this file again, on the same tables. */
function inFreshProcess(section: "invalidation" | "heap"): void {
  spawnSync(process.execPath, ["run", "-A", "--v8-flags=--expose-gc", fileURLToPath(import.meta.url)], {
    stdio: "inherit",
    env: { ...process.env, CACHE_TIERS_SECTION: section, CACHE_TIERS_SUFFIX: suffix },
  });
}

// ---- 1. in-process hit vs BentoCache getOrSet hit --------------------------
const tiered = openStore(true);
const warmRule = await tiered.store.getCalculationRule("ACME", "FICA_SS");
await new Promise((resolve) => setTimeout(resolve, 100)); // the bus live, the entry kept
const bento = new BentoCache({
  default: "tiered",
  stores: {
    tiered: bentostore()
      .useL1Layer(memoryDriver({ maxItems: 20_000 }))
      .useL2Layer(redisDriver({ connection }))
      .useBus(redisBusDriver({ connection })),
  },
});
const bentoKey = `bench-${suffix}:FICA_SS`;
const bentoRead = () => bento.getOrSet({ key: bentoKey, ttl: "5m", factory: () => warmRule });
await bentoRead();
const ourRead = () => tiered.store.getCalculationRule("ACME", "FICA_SS");
const l1 = await interleaved({ ourRead, bentoRead }, 20, 100, 200);
report("1. In-process hit: getCalculationRule vs BentoCache getOrSet", l1.ourRead, l1.bentoRead, [
  "bluestar local tier",
  "BentoCache memory+redis+bus",
]);

// ---- 2. Redis-tier hit vs raw MGET + JSON.parse ----------------------------
const redisOnly = openStore(false);
await redisOnly.store.getCalculationRule("ACME", "FICA_SS");
await redisOnly.store.close(); // the write-back has landed
const redisTier = openStore(false);
const raw = createClient({ url: REDIS_URL, disableOfflineQueue: true });
raw.on("error", () => {});
await raw.connect();
const rawRead = async () => (await raw.mGet(RULE_KEYS)).map((text) => JSON.parse(text!) as unknown);
// The same client without node-redis' own command timeout (an AbortSignal timer per command, 5 s by default),
// as the store's backend runs it: the store bounds every command itself.
const untimed = createClient({ url: REDIS_URL, disableOfflineQueue: true, commandOptions: { timeout: 0 } });
untimed.on("error", () => {});
await untimed.connect();
const untimedRead = async () => (await untimed.mGet(RULE_KEYS)).map((text) => JSON.parse(text!) as unknown);
// The round trip alone: a hit whose texts the store checked before parses nothing, so this is its floor.
const roundTrip = () => untimed.mGet(RULE_KEYS);
const redisRead = () => redisTier.store.getCalculationRule("ACME", "FICA_SS");
// One figure per round, its mean: the rounds' spread is the machine's.
const redis = await interleaved(
  { redisRead, rawRead, untimedRead, roundTrip },
  30,
  20,
  50,
  (samples) => [summary(samples).mean],
);
report("2. Redis-tier hit (in-process tier off) vs raw MGET + JSON.parse", redis.redisRead, redis.rawRead, [
  "bluestar Redis tier",
  "raw node-redis MGET of both entries + JSON.parse (client defaults)",
]);
report("2b. The same, against the raw client without its command timeout", redis.redisRead, redis.untimedRead, [
  "bluestar Redis tier",
  "raw node-redis MGET + JSON.parse, commandOptions { timeout: 0 }",
]);
report(
  "2c. The same, against the round trip alone (raw MGET, no JSON.parse)",
  redis.redisRead,
  redis.roundTrip,
  [
    "bluestar Redis tier",
    "raw node-redis MGET, commandOptions { timeout: 0 }",
  ],
);
await untimed.close();

// ---- 3. 64 concurrent callers on one warm rule -----------------------------
async function opsPerSecond(call: () => Promise<unknown>, callers = 64, durationMs = 1000): Promise<number> {
  let ops = 0;
  const end = performance.now() + durationMs;
  await Promise.all(Array.from({ length: callers }, async () => {
    while (performance.now() < end) {
      await call();
      ops++;
      // Yield to I/O now and then: a local hit never leaves the microtask queue.
      if (ops % 1024 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
  }));
  return ops / (durationMs / 1000);
}
console.log("\n3. 64 concurrent callers on one warm rule (ops/s)");
const concurrentLocal = await opsPerSecond(ourRead);
const concurrentRedis = await opsPerSecond(redisRead);
const concurrentRaw = await opsPerSecond(rawRead);
console.log(`  bluestar local tier: ${Math.round(concurrentLocal)}`);
console.log(`  bluestar Redis tier (in-process off): ${Math.round(concurrentRedis)}`);
console.log(`  raw node-redis MGET + JSON.parse: ${Math.round(concurrentRaw)}`);
console.log(
  `  local / raw: ${fmt(concurrentLocal / concurrentRaw, 1)}x; Redis tier / raw: ${
    fmt(concurrentRedis / concurrentRaw, 2)
  }x`,
);

await Promise.all([tiered.close(), redisTier.close(), redisOnly.close()]);
await raw.close();
inFreshProcess("invalidation");
inFreshProcess("heap");
await bento.disconnect();
await deleteTables(dynamo, suffix);
dynamo.destroy();
