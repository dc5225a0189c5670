// Item 2: cache poisoning. Garbage, truncated JSON, values of the wrong
// shape and values of another schema version are planted with a raw
// node-redis client under the keys DynamoDBRulesStore reads (computed with
// cacheKey, and ruleVersionsCacheKey for rules: one entry per owner, the
// client's own versions and GLOBAL's); every read still returns the right
// value, from DynamoDB, and the entry is repaired.
import assert from "node:assert/strict";
import { after, before, it } from "node:test";
import { createClient, type RedisClientType } from "redis";
import type { CacheEvent, RulesData } from "../../mod.ts";
import { cacheKey, type CacheKind, ruleVersionsCacheKey } from "../../src/core/keys.ts";
import { DynamoDBRulesStore, type RulesStoreEvent } from "../../src/persistence/dynamodb_backend.ts";
import { MemoryRulesStore } from "../../src/persistence/memory_backend.ts";
import { RedisCacheBackend } from "../../src/persistence/redis_backend.ts";
import { RULES_FIXTURE } from "../contract/fixtures.ts";
import { countingClient, createTables, deleteTables, uniqueSuffix } from "../support/dynamodb.ts";
import { AWS_ENDPOINT_URL, integrationSuite, probe, REDIS_URL } from "../support/gate.ts";
import { eventually } from "../support/net.ts";
import { overrideData } from "../support/rules_data.ts";

const unreachable = (await probe(REDIS_URL)) ?? (await probe(AWS_ENDPOINT_URL));

/** One cached entry: its kind and key, the read that looks it up, what the read returns and what the entry holds. */
interface Target {
  name: string;
  kind: CacheKind;
  key: string;
  read: (store: DynamoDBRulesStore) => Promise<unknown>;
  expected: unknown;
  /** What the entry holds: the answer itself, or for rules the owner's versions. */
  cached: unknown;
}

/**
 * A poison: the raw text (or bytes) to plant, given the right value and its
 * kind; `undefined` where it does not apply to that kind.
 */
type Poison = [label: string, (right: unknown, kind: CacheKind) => string | Uint8Array | undefined];

/**
 * The right value, changed by `change` (applied to each element of a list,
 * and to each version of an owner's versions of a rule); as JSON, or
 * `undefined` when the change changes nothing (an owner without versions).
 */
function edit(right: unknown, change: (value: Record<string, unknown>) => void): string | undefined {
  const copy = structuredClone(right) as Record<string, unknown>;
  const versions = copy !== null && typeof copy === "object" && !Array.isArray(copy)
    ? (copy.versions ?? copy.rules) as unknown[] | undefined
    : undefined;
  for (const value of versions ?? (Array.isArray(copy) ? copy : [copy])) change(value as Record<string, unknown>);
  const text = JSON.stringify(copy);
  return text === JSON.stringify(right) ? undefined : text;
}

/** Turns every decimal string of a record into a number. */
function numbers(record: unknown): void {
  const values = record as Record<string, unknown>;
  for (const key of Object.keys(values)) values[key] = Number(values[key]);
}

const deep = (depth: number, leaf: string) => `${'{"a":'.repeat(depth)}${leaf}${"}".repeat(depth)}`;

/** Wrong shapes that fit every kind: scalars, the wrong container, an empty one. */
const WRONG_SHAPES: Poison[] = [
  ["a number", () => "42"],
  ["a string", () => '"FICA_SS"'],
  ["a boolean", () => "true"],
  ["an empty object", () => "{}"],
  // An empty rule list is a valid (cached) answer for validation rules: not a wrong shape there.
  ["an empty array", (_, kind) => (kind === "validation" ? undefined : "[]")],
  ["the value wrapped in an array", (right) => JSON.stringify([right])],
  ["the value wrapped in an object", (right) => JSON.stringify({ value: right })],
  ["an object with a __proto__ key", (right) => `{"__proto__":{"polluted":true},"value":${JSON.stringify(right)}}`],
];

const GARBAGE: Poison[] = [
  ["plain text", () => "not json at all"],
  ["an empty string", () => ""],
  ["invalid UTF-8 bytes", () => new Uint8Array([0xff, 0xfe, 0x00, 0xc3, 0x28, 0x7b])],
  ["a lone surrogate escape", () => '"\\ud800'],
  ["control characters", () => "\u0000\u0001\u001b[31m"],
  ["half an escape", () => '{"ruleId":"\\u00'],
];

integrationSuite("Reliability: cache poisoning", unreachable, () => {
  const dynamo = countingClient();
  const suffix = uniqueSuffix("rel-poison");
  const storeEvents: RulesStoreEvent[] = [];
  const cacheEvents: CacheEvent[] = [];
  const targets: Target[] = [];
  let raw: RedisClientType;
  let cache: RedisCacheBackend;
  let store: DynamoDBRulesStore;

  /**
   * Plants each poison under every target's key, reads, and checks the read
   * is right, came from DynamoDB, was reported, and repaired the entry.
   */
  async function poisonEveryTarget(poisons: Poison[], expectedReport: "store" | "cache"): Promise<void> {
    for (const [label, poison] of poisons) {
      let applied = 0;
      for (const target of targets) {
        const key = target.key;
        const planted = poison(target.cached, target.kind);
        if (planted === undefined) continue;
        assert.notEqual(planted, JSON.stringify(target.cached), `${label} under ${target.name} changes nothing`);
        applied++;
        await raw.set(key, typeof planted === "string" ? planted : Buffer.from(planted), {
          expiration: { type: "EX", value: 300 },
        });
        storeEvents.length = 0;
        cacheEvents.length = 0;
        dynamo.requests.clear();
        const value = await target.read(store);
        const context = `${label} under ${target.name}`;
        assert.deepEqual(value, target.expected, context);
        assert.equal(dynamo.total(), 1, `${context}: the read went to DynamoDB once`);
        assert.ok(!storeEvents.some((event) => event.type === "cache.hit" && event.key === key), context);
        if (expectedReport === "store") {
          assert.ok(storeEvents.some((event) => event.type === "cache.corrupt" && event.key === key), context);
        } else {
          assert.ok(cacheEvents.some((event) => event.type === "cache.corrupt" && event.key === key), context);
        }
        // The write-back replaces the poison with the right value.
        await eventually(
          async () => {
            const text = await raw.get(key);
            assert.notEqual(text, null, context);
            assert.deepEqual(JSON.parse(text!), target.cached, context);
          },
          40,
          25,
        );
        dynamo.requests.clear();
        assert.deepEqual(await target.read(store), target.expected, context);
        assert.equal(dynamo.total(), 0, `${context}: repaired, so the next read is a cache hit`);
      }
      assert.ok(applied > 0, `${label} applied to no target`);
    }
  }

  before(async () => {
    const overrides = await overrideData(2, 4);
    const data: RulesData = {
      ...RULES_FIXTURE,
      calculationRules: [...RULES_FIXTURE.calculationRules!, ...overrides.data.calculationRules!],
    };
    await createTables(dynamo.client, suffix, data);
    const reference = new MemoryRulesStore(data);
    const add = async (
      name: string,
      kind: CacheKind,
      ids: Array<string | number>,
      read: (store: MemoryRulesStore | DynamoDBRulesStore) => Promise<unknown>,
    ) => {
      const expected = await read(reference);
      targets.push({ name, kind, key: cacheKey(suffix, kind, ...ids), read, expected, cached: expected });
    };
    /** A read of a rule whose entry under test is the owner's versions of it. */
    const addRule = async (
      name: string,
      kind: "calculation" | "validation",
      [owner, subject]: [string, string],
      read: (store: MemoryRulesStore | DynamoDBRulesStore) => Promise<unknown>,
    ) => {
      const listed = kind === "calculation"
        ? await reference.listCalculationRuleVersions(owner, subject)
        : await reference.listValidationRuleVersions(owner, subject);
      const versions = listed.map(({ scope: _, ...version }) => version);
      const cached = kind === "calculation"
        ? { clientId: owner, ruleId: subject, revision: versions.length === 0 ? 0 : 1, versions }
        : { clientId: owner, field: subject, revision: versions.length === 0 ? 0 : 1, rules: versions };
      const key = ruleVersionsCacheKey(suffix, kind, subject, owner);
      targets.push({ name, kind, key, read, expected: await read(reference), cached });
    };
    await addRule(
      "a client override",
      "calculation",
      ["CLIENT_0", "RULE_0"],
      (s) => s.getCalculationRule("CLIENT_0", "RULE_0"),
    );
    await addRule(
      "a GLOBAL fallback (GLOBAL's versions)",
      "calculation",
      ["GLOBAL", "RULE_1"],
      (s) => s.getCalculationRule("CLIENT_0", "RULE_1"),
    );
    await addRule(
      "a GLOBAL fallback (the client's cached emptiness)",
      "calculation",
      ["CLIENT_0", "RULE_3"],
      (s) => s.getCalculationRule("CLIENT_0", "RULE_3"),
    );
    await addRule(
      "a GLOBAL rule read as GLOBAL",
      "calculation",
      ["GLOBAL", "FICA_SS"],
      (s) => s.getCalculationRule("GLOBAL", "FICA_SS"),
    );
    await add("a pipeline", "pipeline", ["PLAN_A"], (s) => s.getPipeline("PLAN_A"));
    await addRule(
      "validation rules (override)",
      "validation",
      ["ACME", "hours"],
      (s) => s.getValidationRules("ACME", "hours"),
    );
    await addRule(
      "validation rules (fallback)",
      "validation",
      ["GLOBAL", "ssn"],
      (s) => s.getValidationRules("ACME", "ssn"),
    );
    await add("IRS limits", "irs", [2026], (s) => s.getIrsLimits(2026));
    await add("an agent config", "agent", ["calculation"], (s) => s.getAgentConfig("calculation"));

    raw = createClient({ url: REDIS_URL });
    raw.on("error", () => {});
    await raw.connect();
    cache = await RedisCacheBackend.connect({ url: REDIS_URL, onEvent: (event) => cacheEvents.push(event) });
    store = new DynamoDBRulesStore({
      client: dynamo.client,
      tableSuffix: suffix,
      cache,
      cacheTimeoutMs: 500,
      onEvent: (event) => storeEvents.push(event),
    });
  });

  after(async () => {
    await store?.close();
    await cache?.close();
    if (raw !== undefined) {
      for (const pattern of [`bluestar:v*:${encodeURIComponent(suffix)}:*`]) {
        for await (const keys of raw.scanIterator({ MATCH: pattern, COUNT: 100 })) {
          if (keys.length > 0) await raw.del(keys);
        }
      }
      raw.destroy();
    }
    await deleteTables(dynamo.client, suffix);
    dynamo.client.destroy();
  });

  it("garbage (text, empty, invalid UTF-8, control characters): every read is right, from DynamoDB", async () => {
    await poisonEveryTarget(GARBAGE, "cache");
  });

  it("truncated JSON: every read is right, from DynamoDB", async () => {
    await poisonEveryTarget([
      [
        "the first half of the right value",
        (right) => JSON.stringify(right).slice(0, JSON.stringify(right).length / 2),
      ],
      ["all but the last character", (right) => JSON.stringify(right).slice(0, -1)],
      ["an unterminated string", () => '{"ruleId":"FICA'],
    ], "cache");
  });

  it("values of the wrong shape: every read is right, from DynamoDB", async () => {
    await poisonEveryTarget(WRONG_SHAPES, "store");
  });

  it("values that are almost right (another id, client or scope, numbers for decimals): every read is right", async () => {
    await poisonEveryTarget([
      ["an extra field", (right) => edit(right, (value) => value.injected = "yes")],
      ["a missing field", (right) => edit(right, (value) => delete value[Object.keys(value)[0]])],
      ["numbers where decimals or ids belong", (right, kind) =>
        edit(right, (value) => {
          if (kind === "calculation") numbers(value.parameters);
          if (kind === "irs") numbers(value.limits);
          if (kind === "validation") value.min = Number(value.min ?? 0);
          if (kind === "pipeline") value.step = String(value.step).padStart(4, "0");
          if (kind === "agent") value.maxConcurrency = String(value.maxConcurrency);
        })],
      ["another rule, field, plan, year or agent", (right, kind) =>
        edit(right, (value) => {
          if (kind === "calculation") value.ruleId = "OTHER_RULE";
          if (kind === "validation") value.field = "other_field";
          if (kind === "pipeline") value.planId = "PLAN_B";
          if (kind === "irs") value.year = 2025;
          if (kind === "agent") value.agent = "compliance";
        })],
      ["another client's rule, steps out of order, a bad key, a string for a boolean", (right, kind) => {
        if (kind === "pipeline") return JSON.stringify([...(right as unknown[])].reverse());
        return edit(right, (value) => {
          if (kind === "calculation" || kind === "validation") {
            value.clientId = "INTRUDER";
            value.scope = "CLIENT";
          }
          if (kind === "irs") (value.limits as Record<string, string>)["bad#key"] = "1";
          if (kind === "agent") value.enabled = "true";
        });
      }],
      [
        "the wrong scope, a step out of range, an exponent, a zero concurrency",
        (right, kind) =>
          edit(right, (value) => {
            if (kind === "calculation" || kind === "validation") {
              value.scope = value.scope === "GLOBAL" ? "CLIENT" : "GLOBAL";
            }
            if (kind === "pipeline") value.step = -1;
            if (kind === "irs") value.limits = { tiny: "1e-5" };
            if (kind === "agent") value.maxConcurrency = 0;
          }),
      ],
    ], "store");
  });

  it("values of another schema version under the current key (old shapes): every read is right, from DynamoDB", async () => {
    await poisonEveryTarget([
      // What an older version might have cached: the answer itself (v1's rule entries), the stored record, or
      // the item's encoding.
      ["the old shape of the kind", (right, kind) =>
        edit(right, (value) => {
          if (kind === "calculation" || kind === "validation") {
            value.scope = value.clientId === "GLOBAL" ? "GLOBAL" : "CLIENT";
          }
          if (kind === "pipeline") value.step = `STEP#${String(value.step).padStart(4, "0")}`;
          if (kind === "irs") numbers(value.limits);
          if (kind === "agent") value.settings = JSON.stringify(value.settings);
        })],
      ["a v0 envelope", (right) => JSON.stringify({ v: 0, data: right, cachedAt: 1_700_000_000 })],
      // The fields of the shape renamed (free-form keys such as limit names are data, not shape).
      ["snake_case field names", (right) => {
        const snake = (value: Record<string, unknown>) =>
          Object.fromEntries(
            Object.entries(value).map(([name, item]) => [name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`), item]),
          );
        const renamed = Array.isArray(right) ? right.map(snake) : snake(right as Record<string, unknown>);
        const text = JSON.stringify(renamed);
        return text === JSON.stringify(right) ? undefined : text;
      }],
    ], "store");
  });

  it("a value nested 10,000 levels deep: every read is right, from DynamoDB (no stack overflow)", async () => {
    await poisonEveryTarget([
      ["an object nested 10,000 deep", () => deep(10_000, "1")],
      ["an array nested 10,000 deep", () => `${"[".repeat(10_000)}${"]".repeat(10_000)}`],
      // Free-form JSON (agent settings) is checked all the way down.
      [
        "settings nested 10,000 deep",
        (right, kind) =>
          // Spliced in as text: JSON.stringify of the deep value would overflow Node's smaller stack.
          kind === "agent"
            ? edit(right, (value) => value.settings = "DEEP")?.replace(
              '"settings":"DEEP"',
              `"settings":${deep(10_000, "1")}`,
            )
            : undefined,
      ],
    ], "store");
  });

  it("a poisoned key of the previous schema version (v1) is never read and left alone; the current key gets the right value", async () => {
    for (const target of targets) {
      const current = target.key;
      const old = current.replace(/^bluestar:v2:/, "bluestar:v1:");
      assert.notEqual(old, current);
      await raw.del(current);
      await raw.set(old, '{"poisoned":true}', { expiration: { type: "EX", value: 300 } });
      storeEvents.length = 0;
      dynamo.requests.clear();
      assert.deepEqual(await target.read(store), target.expected, target.name);
      assert.equal(dynamo.total(), 1);
      assert.ok(storeEvents.some((event) => event.type === "cache.miss" && event.key === current), target.name);
      assert.ok(storeEvents.every((event) => !("key" in event) || event.key !== old), target.name);
      assert.equal(await raw.get(old), '{"poisoned":true}');
      await eventually(async () => assert.deepEqual(JSON.parse((await raw.get(current)) ?? "null"), target.cached));
    }
  });
});
