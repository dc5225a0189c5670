// RedisCacheBackend against the raw node-redis client it wraps, on the local
// Redis and on the same connection (the raw client is passed in as `client`):
// `deno bench -A bench/redis_backend_bench.ts`.
//
// The baseline does what a caller would do by hand with the raw client
// (JSON.stringify / JSON.parse around SET EX / GET); "raw client, no JSON"
// shows the cost of the JSON itself. Keys live 5 minutes and then expire.
import { createClient } from "redis";
import { RedisCacheBackend } from "../mod.ts";
import { probe, REDIS_URL } from "../tests/support/gate.ts";

const unreachable = await probe(REDIS_URL);
if (unreachable !== undefined) throw new Error(`The bench needs the local Redis: ${unreachable}`);

const raw = createClient({ url: REDIS_URL, disableOfflineQueue: true });
raw.on("error", () => {});
await raw.connect();

const prefix = `bluestar-bench-${crypto.randomUUID()}:`;
const cache = new RedisCacheBackend({ client: raw, keyPrefix: prefix });
const TTL = 300;
const RULE = {
  ruleId: "FICA_SOCIAL_SECURITY",
  ruleType: "percentage_up_to_wage_base",
  description: "Social Security, employee share",
  parameters: { rate: "0.062", wageBase: "184500" },
  effectiveFrom: "2026-01-01",
  effectiveTo: "2026-12-31",
  clientId: "GLOBAL",
  scope: "GLOBAL",
};
const GET_KEY = "bluestar:v1:prod:calculation:ACME:FICA_SOCIAL_SECURITY";
const SET_KEY = "bluestar:v1:prod:calculation:ACME:FICA_MEDICARE";
await cache.setex(GET_KEY, TTL, RULE);
if ((await cache.get<typeof RULE>(GET_KEY))?.ruleId !== RULE.ruleId) {
  throw new Error("the bench key did not round-trip");
}

Deno.bench({
  name: "raw client: GET + JSON.parse",
  group: "get (hit)",
  baseline: true,
  async fn() {
    const text = await raw.get(prefix + GET_KEY);
    if (JSON.parse(text!).ruleId === undefined) throw new Error("miss");
  },
});

Deno.bench({
  name: "RedisCacheBackend.get",
  group: "get (hit)",
  async fn() {
    const rule = await cache.get<typeof RULE>(GET_KEY);
    if (rule === null) throw new Error("miss");
  },
});

Deno.bench({
  name: "raw client: GET, no JSON",
  group: "get (hit)",
  async fn() {
    if (await raw.get(prefix + GET_KEY) === null) throw new Error("miss");
  },
});

Deno.bench({
  name: "raw client: JSON.stringify + SET EX",
  group: "setex",
  baseline: true,
  async fn() {
    await raw.set(prefix + SET_KEY, JSON.stringify(RULE), { expiration: { type: "EX", value: TTL } });
  },
});

Deno.bench({
  name: "RedisCacheBackend.setex",
  group: "setex",
  async fn() {
    await cache.setex(SET_KEY, TTL, RULE);
  },
});

Deno.bench({
  name: "raw client: SET EX, no JSON",
  group: "setex",
  async fn() {
    await raw.set(prefix + SET_KEY, '{"ruleId":"FICA_MEDICARE"}', { expiration: { type: "EX", value: TTL } });
  },
});
