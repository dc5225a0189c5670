// Item 7: hostile input, property-based. Generated ids, fields, paths, keys
// and values (unicode with astral characters, "#", "/", "..", control
// characters, lone surrogates, strings at and past the byte limits, huge and
// tiny decimal strings, numbers where decimals belong, bigints, NaN, deep
// nesting) go to the in-memory reference backends and to the real ones side
// by side: DynamoDBRulesStore on moto, RedisCacheBackend, S3FileStore. Both
// accept or both reject with the same error code, and what one stores the
// other returns identically.
//
// Records are valid-but-hostile (every id, text and payload full of awkward
// characters, yet acceptable) with, half the time, one field replaced by a
// hostile value that may well be invalid: so both the storage paths and the
// validation paths are exercised.
import assert from "node:assert/strict";
import process from "node:process";
import { after, before, describe, it } from "node:test";
import { inspect } from "node:util";
import fc from "fast-check";
import { createClient, type RedisClientType } from "redis";
import {
  AGENT_NAMES,
  BATCH_STATUSES,
  BlueStarError,
  type CalculationRuleRecord,
  decimalProblem,
  MemoryCacheBackend,
  MemoryFileStore,
  RedisCacheBackend,
  type S3FileStore,
  tableName,
} from "../../mod.ts";
import { idProblem, itemKeys } from "../../src/core/keys.ts";
import type { DynamoDBRulesStore } from "../../src/persistence/dynamodb_backend.ts";
import { MemoryRulesStore } from "../../src/persistence/memory_backend.ts";
import { rulesDataItems, writeItems } from "../../src/persistence/provision.ts";
import { DECIMAL_38, uniqueId } from "../contract/fixtures.ts";
import { decodeSeed, openStore } from "../support/dynamodb.ts";
import { AWS_ENDPOINT_URL, integrationSuite, probe, REDIS_URL } from "../support/gate.ts";
import { outcome } from "../support/rules_data.ts";
import { openFileStore } from "../support/s3.ts";
import {
  CacheError,
  cacheKey,
  type CacheKind,
  MAX_ID_BYTES,
  type RulesStoreEvent,
  type ValidationRuleRecord,
} from "../../mod.ts";
import { checkCacheKey, MAX_CACHE_KEY_BYTES } from "../../src/core/keys.ts";
import { eventually, fakeRedis, FakeServer } from "../support/net.ts";

const unreachable = (await probe(AWS_ENDPOINT_URL)) ?? (await probe(REDIS_URL));

/** Runs per property: enough to meet every kind of hostile value, few enough to stay fast on two cores. */
const RUNS = 80;
/** A fixed seed, so a failure replays; set BLUESTAR_FC_SEED to explore others. */
const SEED = Number(process.env.BLUESTAR_FC_SEED ?? 20261127);

// ---- text ------------------------------------------------------------------

// deno-fmt-ignore
const SPECIAL = [
  "#", "/", ".", "..", " ", "%", "%2F", "+", "?", "&", "*", ":", "\\", '"', "'", "<", ">", "{", "}", "=",
  "\u0000", "\u0007", "\n", "\r", "\t", "\u001b", "\u007f", "\u0085", "\u009f", "\u00a0", "\u2028", "\u2029",
  "\ufeff", "\ufffe", "\uffff", "\ud800", "\udbff", "\udc00", "\udfff", "\u{1F600}", "\u{10FFFF}", "é", "e\u0301",
  "ß", "İ", "中", "ع", "GLOBAL", "__proto__", "constructor", "toString",
];

/** One piece of text: a special character or word, ASCII, any UTF-16 unit (lone surrogates too), any astral code point. */
const unit = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...SPECIAL) },
  { weight: 4, arbitrary: fc.string({ unit: "grapheme-ascii", minLength: 1, maxLength: 3 }) },
  { weight: 2, arbitrary: fc.integer({ min: 0, max: 0xffff }).map((code) => String.fromCharCode(code)) },
  { weight: 1, arbitrary: fc.integer({ min: 0x10000, max: 0x10ffff }).map((code) => String.fromCodePoint(code)) },
);

const shortText = fc.array(unit, { maxLength: 8 }).map((parts) => parts.join(""));
const someText = fc.array(unit, { minLength: 1, maxLength: 8 }).map((parts) => parts.join(""));

/** Text of `limit` bytes give or take two, of 1- to 4-byte characters: the edge of every byte limit. */
function atLimit(limit: number): fc.Arbitrary<string> {
  return fc.tuple(fc.constantFrom("a", "é", "€", "\u{1F600}"), fc.integer({ min: -2, max: 2 })).map(([char, delta]) => {
    const bytes = new TextEncoder().encode(char).length;
    const target = limit + delta;
    return char.repeat(Math.floor(target / bytes)) + "a".repeat(target % bytes);
  });
}

/** Text for an id, key or path: short and hostile, at the byte limit, or far past it. */
function hostileText(limit: number): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 8, arbitrary: shortText },
    { weight: 2, arbitrary: atLimit(limit) },
    { weight: 1, arbitrary: fc.constant("x".repeat(100_000)) },
  );
}

/** What is not a string at all. */
const notAString = fc.constantFrom<unknown>(42, 0, -0, NaN, null, undefined, 10n, true, {}, ["a"], Symbol.for("x"));

/** Any id a caller might pass: often invalid. */
const anyId: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 6, arbitrary: hostileText(256) },
  { weight: 1, arbitrary: notAString },
);

/** A valid id that is still awkward: astral characters, "%", "/", "..", "__proto__", 256 bytes. */
const validId = fc.oneof(hostileText(256), atLimit(256)).filter((text) => idProblem(text) === undefined);

// ---- decimals and JSON -----------------------------------------------------

const digits = (min: number, max: number) =>
  fc.string({ unit: fc.constantFrom(..."0123456789"), minLength: min, maxLength: max });

const decimalText = (whole: number, fraction: number) =>
  fc.tuple(fc.constantFrom("", "-"), digits(1, whole), fc.option(digits(1, fraction))).map(([sign, integer, part]) =>
    part === null ? `${sign}${integer}` : `${sign}${integer}.${part}`
  );

// deno-fmt-ignore
const EDGE_DECIMALS = [
  "0", "-0", "0.0", "-0.000", "00012.3400", DECIMAL_38, `-${DECIMAL_38}`, "9".repeat(38), "9".repeat(39),
  `${"9".repeat(38)}${"0".repeat(88)}`, `1${"0".repeat(126)}`, `0.${"0".repeat(129)}1`, `0.${"0".repeat(130)}1`,
  `0.${"0".repeat(92)}${"9".repeat(38)}`, "1e5", "1E-7", "0x1F", "Infinity", "NaN", "", " 1", "1 ", "+1", "--1",
  ".5", "5.", "١٢٣", "1_000", "1,5", "０",
];

/** Decimal strings (short, huge, tiny, at DynamoDB's limits), numbers where decimals belong, look-alikes. */
const hostileDecimal: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: decimalText(6, 6) },
  { weight: 2, arbitrary: decimalText(130, 140) },
  { weight: 3, arbitrary: fc.constantFrom(...EDGE_DECIMALS) },
  { weight: 2, arbitrary: fc.oneof(fc.double(), fc.integer()).map(String) },
  { weight: 2, arbitrary: fc.constantFrom<unknown>(1.5, 0, -0, NaN, Infinity, 10n, null, undefined, true, {}, []) },
);

const validDecimal = hostileDecimal.filter((value) => decimalProblem(value) === undefined);

/** Nested `depth` levels deep, objects and arrays in turn. */
function nested(depth: number): unknown {
  let value: unknown = "leaf";
  for (let level = 0; level < depth; level++) value = level % 2 === 0 ? { a: value } : [value];
  return value;
}

/** JSON with awkward keys and strings (lone surrogates, "__proto__"), -0, huge and tiny numbers. */
const jsonValue: fc.Arbitrary<unknown> = fc.anything({
  key: shortText,
  values: [
    shortText,
    fc.integer(),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.boolean(),
    fc.constantFrom<unknown>(null, -0, Number.MAX_VALUE, Number.MIN_VALUE, 2 ** 53 + 1),
  ],
  maxDepth: 3,
  maxKeys: 4,
});

/** What a caller might pass as JSON that is not: NaN, bigints, dates, maps, sparse arrays, deep nesting. */
const notJson: fc.Arbitrary<unknown> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.anything({
      key: shortText,
      maxDepth: 3,
      maxKeys: 4,
      withBigInt: true,
      withBoxedValues: true,
      withDate: true,
      withMap: true,
      withSet: true,
      withNullPrototype: true,
      withSparseArray: true,
      withTypedArray: true,
    }),
  },
  { weight: 2, arbitrary: fc.integer({ min: 90, max: 4000 }).map(nested) },
);

const anyValue = fc.oneof({ weight: 2, arbitrary: jsonValue }, { weight: 1, arbitrary: notJson });

/** An object payload (batch data, audit details) of JSON, sometimes large. */
const payload: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 8, arbitrary: fc.array(fc.tuple(shortText, jsonValue), { maxLength: 4 }).map(Object.fromEntries) },
  { weight: 1, arbitrary: fc.constantFrom({ big: "y".repeat(50_000) }, { astral: "\u{1F4B5}".repeat(5_000) }) },
);

/** A payload that is not a JSON object. */
const badPayload: fc.Arbitrary<unknown> = fc.oneof(
  fc.array(fc.tuple(shortText, notJson), { minLength: 1, maxLength: 3 }).map(Object.fromEntries),
  notJson,
  jsonValue,
);

// ---- dates -----------------------------------------------------------------

const validTimestamp = fc.oneof(
  fc.date({ min: new Date("0001-01-01T00:00:00Z"), max: new Date("9999-12-31T23:59:59Z"), noInvalidDate: true })
    .map((date) => date.toISOString()),
  fc.constantFrom("2026-11-27T10:00:00+14:00", "2026-11-27T10:00:00-12:00", "2026-11-27T10:00:00.1Z"),
);

const badTimestamp = fc.constantFrom<unknown>(
  "2026-11-27T10:00:00.123456Z",
  "2026-02-30T00:00:00Z",
  "2026-11-27",
  "",
  "now",
  0,
  null,
);

// ---- records: valid-but-hostile, then maybe one field made hostile ---------

/**
 * Records from `valid`, half of them with one field replaced by a value from
 * `hostileFields` (which may or may not be valid).
 */
function mutated(
  valid: fc.Arbitrary<Record<string, unknown>>,
  hostileFields: Record<string, fc.Arbitrary<unknown>>,
): fc.Arbitrary<Record<string, unknown>> {
  const change = fc.oneof(
    ...Object.entries(hostileFields).map(([name, value]) => value.map((v) => [name, v] as const)),
  );
  return fc.tuple(valid, fc.option(change, { freq: 2 })).map(([record, edit]) =>
    edit === null ? record : { ...record, [edit[0]]: edit[1] }
  );
}

const parameterName = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom("amount", "wageBase", "__proto__", "constructor", "toString") },
  { weight: 2, arbitrary: validId.filter((id) => id !== "rate" && !id.endsWith("Rate")) },
);

const calculationRule = mutated(
  fc.record({
    clientId: fc.oneof(fc.constantFrom("GLOBAL", "ACME"), validId),
    ruleId: fc.oneof(fc.constantFrom("R1", "R2"), validId),
    ruleType: someText,
    description: someText,
    parameters: fc.array(fc.tuple(parameterName, validDecimal), { maxLength: 4 }).map(Object.fromEntries),
    effectiveFrom: fc.constantFrom("2026-01-01", "0001-01-01", "9999-12-31"),
    effectiveTo: fc.constantFrom(null, "2026-12-31"),
  }),
  {
    clientId: anyId,
    ruleId: anyId,
    ruleType: fc.oneof(notAString, fc.constant("")),
    parameters: fc.oneof(
      fc.array(fc.tuple(fc.oneof(parameterName, anyId.map(String), fc.constant("rate")), hostileDecimal), {
        minLength: 1,
        maxLength: 3,
      }).map(Object.fromEntries),
      anyValue,
      fc.constantFrom<unknown>(new Map([["amount", "1"]]), new Uint16Array(0), new Date(0), ["1"]),
    ),
    effectiveFrom: fc.constantFrom<unknown>("2026-02-30", "26-01-01", "", 20260101, null),
    effectiveTo: fc.constantFrom<unknown>("2026-13-01", "", 0),
  },
);

const batchState = mutated(
  fc.record({
    batchId: fc.oneof(fc.constantFrom("B1", "B2"), validId),
    clientId: fc.oneof(fc.constant("ACME"), validId),
    planId: fc.oneof(fc.constant("PLAN_A"), validId),
    status: fc.constantFrom(...BATCH_STATUSES),
    currentStep: fc.oneof(fc.constant(null), fc.integer({ min: 1, max: 9999 })),
    version: fc.integer({ min: 1, max: 6 }),
    updatedAt: validTimestamp,
    data: payload,
  }),
  {
    batchId: anyId,
    clientId: anyId,
    planId: anyId,
    status: fc.constantFrom<unknown>("RUNNING", "", "done", 1, null),
    currentStep: fc.constantFrom<unknown>(0, -1, 10_000, 1.5, NaN, "100", 10n),
    version: fc.constantFrom<unknown>(0, -1, 1.5, NaN, "2", 10n, 2 ** 53 - 1, 2 ** 53),
    updatedAt: badTimestamp,
    data: badPayload,
  },
);

const auditEntry = mutated(
  fc.record({
    entryId: fc.oneof(fc.constantFrom("E1", "E2", "E3"), validId),
    batchId: fc.oneof(fc.constantFrom("B1", "B2"), validId),
    timestamp: validTimestamp,
    agent: fc.constantFrom(...AGENT_NAMES),
    action: fc.oneof(fc.constant("rule_resolved"), someText, atLimit(5_000)),
    actor: fc.oneof(fc.constant("svc-compliance"), someText),
    details: payload,
  }),
  {
    entryId: anyId,
    batchId: anyId,
    timestamp: badTimestamp,
    agent: fc.constantFrom<unknown>("auditor", "", null),
    action: fc.oneof(notAString, fc.constant("")),
    actor: notAString,
    details: badPayload,
  },
);

/** Cache TTLs: valid (kept long, so nothing expires between the two backends' reads) and not. */
const ttl: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: 60, max: 2_147_483_647 }) },
  {
    weight: 1,
    arbitrary: fc.constantFrom<unknown>(0, -1, 1.5, NaN, Infinity, 2_147_483_648, "60", 60n, null, undefined),
  },
);

const segment = fc.oneof(
  { weight: 6, arbitrary: someText },
  { weight: 1, arbitrary: fc.constantFrom(".", "..", "...", " ", "", "a.", ".a", "~", "%00", "%2e%2e") },
);

/** File paths: segments joined by "/" (empty, "." and ".." ones included), long ones, and non-strings. */
const hostilePath: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 6, arbitrary: fc.array(segment, { minLength: 1, maxLength: 4 }).map((parts) => parts.join("/")) },
  {
    weight: 1,
    arbitrary: fc.constantFrom("/etc/passwd", "a/", "/a", "a//b", "a/./b", "a/../b", "..", ".", "a\\b", "C:\\x"),
  },
  { weight: 1, arbitrary: atLimit(1020).map((text) => `dir/${text}`) },
  { weight: 1, arbitrary: notAString },
);

/** File contents: bytes, strings, and what is neither. */
const hostileData: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: fc.uint8Array({ maxLength: 2_000 }) },
  { weight: 3, arbitrary: shortText },
  {
    weight: 1,
    arbitrary: fc.constantFrom<unknown>(
      new Uint8Array(),
      "",
      42,
      null,
      undefined,
      [1, 2],
      new Uint16Array([1, 2]),
      new ArrayBuffer(4),
      { length: 1 },
    ),
  },
);

// ---- comparing outcomes ----------------------------------------------------

type Outcome = Awaited<ReturnType<typeof outcome<unknown>>>;

/** Bytes as a plain Uint8Array, so a Buffer and a Uint8Array with the same bytes compare equal. */
function normalise(value: unknown): unknown {
  return value instanceof Uint8Array ? Uint8Array.from(value) : value;
}

/** A value, briefly, whatever it is (bigints, symbols, cycles, lone surrogates). */
function show(value: unknown): string {
  return inspect(value, { depth: 3, breakLength: Infinity, maxStringLength: 120, maxArrayLength: 8 });
}

/** Both accepted and returned equal values, or both rejected with the same error code; every rejection is the library's. */
function assertSame(reference: Outcome, real: Outcome, context: string): void {
  const summary = (result: Outcome) => (result.ok ? `ok ${show(result.value)}` : `rejected ${show(result.error)}`);
  assert.equal(real.ok, reference.ok, `${context}: reference ${summary(reference)}, real ${summary(real)}`);
  if (!reference.ok && !real.ok) {
    assert.ok(reference.error instanceof BlueStarError, `${context}: the reference threw ${show(reference.error)}`);
    assert.ok(real.error instanceof BlueStarError, `${context}: the real backend threw ${show(real.error)}`);
    assert.equal(
      real.error.code,
      reference.error.code,
      `${context}: ${reference.error.message} / ${real.error.message}`,
    );
  } else if (reference.ok && real.ok) {
    assert.deepEqual(normalise(real.value), normalise(reference.value), context);
  }
}

/** Runs the call on the reference, then on the real backend, and asserts the same outcome; returns the reference's. */
async function both(
  context: string,
  reference: () => Promise<unknown>,
  real: () => Promise<unknown>,
): Promise<Outcome> {
  const expected = await outcome(Promise.resolve().then(reference));
  const actual = await outcome(Promise.resolve().then(real));
  assertSame(expected, actual, context);
  return expected;
}

const params = { numRuns: RUNS, seed: SEED, endOnFailure: true };

integrationSuite("Reliability: hostile input, memory and real backends side by side", unreachable, () => {
  describe("DynamoDBRulesStore on moto and MemoryRulesStore", () => {
    let subject: Awaited<ReturnType<typeof openStore>>;
    let store: DynamoDBRulesStore;
    const reference = new MemoryRulesStore();

    before(async () => {
      subject = await openStore({});
      store = subject.store;
    });

    after(() => subject?.cleanup());

    it("getCalculationRule(): hostile rules seeded on both, hostile ids read from both", async () => {
      /** What both stores hold, by key: the memory store is rebuilt from it, as DynamoDB keeps every write. */
      const seeded = new Map<string, unknown>();
      let memory = reference;
      await fc.assert(
        fc.asyncProperty(calculationRule, anyId, anyId, async (record, client, ruleId) => {
          const data = { calculationRules: [record as unknown as CalculationRuleRecord] };
          const context = `rule ${show(record)}`;
          const seed = await both(
            `${context}: seeding`,
            () => Promise.resolve(void new MemoryRulesStore(data)),
            async () => {
              for (const { table, items } of rulesDataItems(decodeSeed(data))) {
                await writeItems(subject.client, tableName(table, subject.suffix), items);
              }
            },
          );
          if (seed.ok) {
            const { PK, SK } = itemKeys.calculationRule(record.clientId as string, record.ruleId as string);
            seeded.set(`${PK}\u0000${SK}`, record);
            memory = new MemoryRulesStore({ calculationRules: [...seeded.values()] as CalculationRuleRecord[] });
            // Only a plain object of parameters is accepted, and every parameter comes back by its name.
            const prototype = Object.getPrototypeOf(record.parameters);
            assert.ok(prototype === Object.prototype || prototype === null, `${context}: parameters accepted as is`);
            const read = await memory.getCalculationRule(record.clientId as string, record.ruleId as string);
            assert.deepEqual(Object.keys(read.parameters).sort(), Object.keys(record.parameters as object).sort());
          }
          for (
            const [who, what] of [[record.clientId, record.ruleId], ["SOMEONE_ELSE", record.ruleId], [client, ruleId]]
          ) {
            await both(
              `${context}: getCalculationRule(${show(who)}, ${show(what)})`,
              () => memory.getCalculationRule(who as string, what as string),
              () => store.getCalculationRule(who as string, what as string),
            );
          }
        }),
        params,
      );
    });

    it("saveBatchState() and getBatchState(): hostile ids, fields, versions, options and payloads", async () => {
      const options = fc.oneof(
        fc.constant(undefined),
        fc.constant(null),
        fc.record({ expectedVersion: fc.oneof(fc.integer({ min: 0, max: 6 }), notAString) }),
      );
      await fc.assert(
        fc.asyncProperty(batchState, fc.boolean(), anyId, options, async (state, sameId, other, option) => {
          const batchId = sameId ? state.batchId : other;
          const context = `saveBatchState(${show(batchId)}, ${show(state)}, ${show(option)})`;
          await both(
            context,
            () => reference.saveBatchState(batchId as string, state as never, option as never),
            () => store.saveBatchState(batchId as string, state as never, option as never),
          );
          for (const id of new Set([batchId, state.batchId])) {
            await both(
              `${context}: getBatchState(${show(id)})`,
              () => reference.getBatchState(id as string),
              () => store.getBatchState(id as string),
            );
          }
        }),
        params,
      );
    });

    it("appendAuditEntry() and listAuditEntries(): hostile ids, fields and details", async () => {
      await fc.assert(
        fc.asyncProperty(auditEntry, async (entry) => {
          const context = `appendAuditEntry(${show(entry)})`;
          await both(
            context,
            () => reference.appendAuditEntry(entry as never),
            () => store.appendAuditEntry(entry as never),
          );
          await both(
            `${context}: listAuditEntries`,
            () => reference.listAuditEntries(entry.batchId as string),
            () => store.listAuditEntries(entry.batchId as string),
          );
        }),
        params,
      );
    });
  });

  describe("RedisCacheBackend and MemoryCacheBackend", () => {
    const prefix = `${uniqueId("bluestar-test-hostile")}:`;
    const reference = new MemoryCacheBackend();
    let cache: RedisCacheBackend;
    let raw: RedisClientType;

    before(async () => {
      cache = await RedisCacheBackend.connect({ url: REDIS_URL, keyPrefix: prefix });
      raw = createClient({ url: REDIS_URL });
      raw.on("error", () => {});
      await raw.connect();
    });

    after(async () => {
      await cache?.close();
      if (raw !== undefined) {
        for await (const keys of raw.scanIterator({ MATCH: `${prefix}*`, COUNT: 100 })) {
          if (keys.length > 0) await raw.del(keys);
        }
        raw.destroy();
      }
    });

    it("setex(), get() and delete(): hostile keys, TTLs and values", async () => {
      const key = fc.oneof({ weight: 2, arbitrary: fc.constantFrom("k1", "k2") }, {
        weight: 5,
        arbitrary: hostileText(1024),
      }, {
        weight: 1,
        arbitrary: notAString,
      });
      const value = fc.oneof(anyValue, fc.constantFrom({ big: "y".repeat(50_000) }, "\ud800", -0, undefined));
      await fc.assert(
        fc.asyncProperty(key, ttl, value, key, async (name, seconds, stored, other) => {
          const context = `setex(${show(name)}, ${show(seconds)}, ${show(stored)})`;
          const [k, o, s] = [name as string, other as string, seconds as number];
          await both(context, () => reference.setex(k, s, stored), () => cache.setex(k, s, stored));
          await both(`${context}: get`, () => reference.get(k), () => cache.get(k));
          await both(`${context}: get(${show(other)})`, () => reference.get(o), () => cache.get(o));
          await both(`${context}: delete(${show(other)})`, () => reference.delete(o), () => cache.delete(o));
          await both(`${context}: get after delete`, () => reference.get(k), () => cache.get(k));
        }),
        params,
      );
    });
  });

  describe("S3FileStore on moto and MemoryFileStore", () => {
    const reference = new MemoryFileStore();
    let files: S3FileStore;
    let cleanup = () => Promise.resolve();

    // A small page size, so listings cross pages.
    before(async () => {
      ({ files, cleanup } = await openFileStore({ pageSize: 7 }));
    });

    after(() => cleanup());

    it("write(), read(), move() and listFiles(): hostile paths, prefixes and bytes", async () => {
      const prefix = fc.oneof(
        fc.constant(""),
        hostilePath,
        hostilePath.map((path) => `${String(path).split("/")[0]}/`),
      );
      await fc.assert(
        fc.asyncProperty(hostilePath, hostileData, hostilePath, prefix, async (path, data, destination, listed) => {
          const context = `write(${show(path)}, ${show(data)}), move to ${show(destination)}`;
          const [p, d, l] = [path as string, destination as string, listed as string];
          await both(context, () => reference.write(p, data as string), () => files.write(p, data as string));
          await both(`${context}: read`, () => reference.read(p), () => files.read(p));
          await both(`${context}: move`, () => reference.move(p, d), () => files.move(p, d));
          await both(`${context}: read the destination`, () => reference.read(d), () => files.read(d));
          await both(`${context}: listFiles(${show(listed)})`, () => reference.listFiles(l), () => files.listFiles(l));
          await both(`${context}: listFiles("")`, () => reference.listFiles(""), () => files.listFiles(""));
        }),
        params,
      );
    });
  });
});

// ---- the cache: ids near the byte limit in every script, close() at each point of a connection ----

integrationSuite("Reliability: hostile cache keys and connections, generated", unreachable, () => {
  const utf8 = new TextEncoder();

  /** Characters of many scripts, of 1 to 4 UTF-8 bytes, and ASCII that percent-encoding triples. */
  // deno-fmt-ignore
  const SCRIPT_CHARS = [
    "a", "Z", "0", "_", "%", ":", "{", "é", "ß", "ø", "Ω", "Ж", "ա", "ע", "ع", "ह", "ক", "ท", "ᄀ", "中", "한", "あ",
    "€", "\u0301", "\u{1F4B5}", "\u{1F468}\u200D\u{1F469}", "\u{10348}", "\u{20000}", "\u{1F1FA}\u{1F1F8}",
  ];

  /** A valid id of a repeated pattern of those characters, `limit` bytes or up to 6 under. */
  const nearLimit = (limit: number) =>
    fc.tuple(fc.array(fc.constantFrom(...SCRIPT_CHARS), { minLength: 1, maxLength: 4 }), fc.integer({ min: 0, max: 6 }))
      .map(([pattern, slack]) => {
        let text = "";
        for (let index = 0;; index++) {
          const next = text + pattern[index % pattern.length];
          if (utf8.encode(next).length > limit - slack) return text;
          text = next;
        }
      })
      .filter((id) => idProblem(id) === undefined);

  /** Ids for cache keys: mostly near the byte limit, some half as long, some short. */
  const keyId = (limit: number) =>
    fc.oneof(
      { weight: 4, arbitrary: nearLimit(limit) },
      { weight: 1, arbitrary: nearLimit(limit / 2) },
      { weight: 1, arbitrary: fc.constantFrom("ACME", "R1", "ssn") },
    );

  it("cacheKey(): ids near the byte limit in every script make usable keys, distinct for distinct ids", () => {
    const id = keyId(MAX_ID_BYTES);
    fc.assert(
      fc.property(fc.constantFrom<CacheKind>("validation", "calculation"), id, id, id, (kind, a, b, c) => {
        const key = cacheKey("-hostile", kind, a, b);
        const context = `cacheKey(${show(kind)}, ${show(a)}, ${show(b)}) = ${show(key)}`;
        assert.equal(checkCacheKey(key), key, context);
        assert.ok(utf8.encode(key).length <= MAX_CACHE_KEY_BYTES, context);
        assert.equal(cacheKey("-hostile", kind, a, b), key, context);
        if (c !== b) assert.notEqual(cacheKey("-hostile", kind, a, c), key, `${context} and ${show(c)}`);
        if (c !== a) assert.notEqual(cacheKey("-hostile", kind, c, b), key, `${context} and ${show(c)}`);
      }),
      { ...params, numRuns: 500 },
    );
  });

  describe("DynamoDBRulesStore on moto through RedisCacheBackend, and MemoryRulesStore", () => {
    const prefix = `${uniqueId("bluestar-test-hostile-keys")}:`;
    const events: RulesStoreEvent[] = [];
    let subject: Awaited<ReturnType<typeof openStore>>;
    let cache: RedisCacheBackend;
    let raw: RedisClientType;

    before(async () => {
      // Generous timeouts: a cache error here is a defect, never a slow machine.
      cache = await RedisCacheBackend.connect({ url: REDIS_URL, keyPrefix: prefix, commandTimeoutMs: 5_000 });
      subject = await openStore({}, { cache, cacheTimeoutMs: 5_000, onEvent: (event) => events.push(event) });
      raw = createClient({ url: REDIS_URL });
      raw.on("error", () => {});
      await raw.connect();
    });

    after(async () => {
      await subject?.cleanup();
      await cache?.close();
      if (raw !== undefined) {
        for await (const keys of raw.scanIterator({ MATCH: `${prefix}*`, COUNT: 100 })) {
          if (keys.length > 0) await raw.del(keys);
        }
        raw.destroy();
      }
    });

    it("rules of ids near the byte limit read as the reference reads them, and the second read is a cache hit", async () => {
      let run = 0;
      await fc.assert(
        fc.asyncProperty(
          keyId(MAX_ID_BYTES),
          keyId(MAX_ID_BYTES - 6),
          keyId(MAX_ID_BYTES - 6),
          fc.boolean(),
          async (clientId, ruleText, fieldText, override) => {
            // Ids of their own per run, so an entry cached by an earlier run never answers a later one.
            const tag = `${String(run++).padStart(5, "0")}.`;
            const [ruleId, field] = [tag + ruleText, tag + fieldText];
            const calculation = (owner: string): CalculationRuleRecord => ({
              clientId: owner,
              ruleId,
              ruleType: "percentage",
              description: `rule of ${owner === "GLOBAL" ? "GLOBAL" : "the client"}`,
              parameters: { rate: owner === "GLOBAL" ? "0.062" : "0.07" },
              effectiveFrom: "2026-01-01",
              effectiveTo: null,
            });
            const validation = (owner: string): ValidationRuleRecord => ({
              clientId: owner,
              field,
              ruleId: "V1",
              ruleType: "required",
              severity: "error",
              message: `rule of ${owner === "GLOBAL" ? "GLOBAL" : "the client"}`,
            });
            const owners = override ? ["GLOBAL", clientId] : ["GLOBAL"];
            const data = { calculationRules: owners.map(calculation), validationRules: owners.map(validation) };
            for (const { table, items } of rulesDataItems(decodeSeed(data))) {
              await writeItems(subject.client, tableName(table, subject.suffix), items);
            }
            const memory = new MemoryRulesStore(data);
            const context = `client ${show(clientId)}, rule ${show(ruleId)}, field ${show(field)}`;
            const readBoth = async () => {
              await both(
                `${context}: getCalculationRule`,
                () => memory.getCalculationRule(clientId, ruleId),
                () => subject.store.getCalculationRule(clientId, ruleId),
              );
              await both(
                `${context}: getValidationRules`,
                () => memory.getValidationRules(clientId, field),
                () => subject.store.getValidationRules(clientId, field),
              );
            };
            events.length = 0;
            await readBoth();
            const failed = events.filter((event) => event.type === "cache.error");
            assert.deepEqual(failed.map((event) => event.type === "cache.error" && event.error.message), [], context);
            // Write-backs are not awaited by reads: the second reads are hits once they landed.
            await eventually(
              async () => {
                events.length = 0;
                subject.requests.clear();
                await readBoth();
                assert.deepEqual(events.map((event) => event.type), ["cache.hit", "cache.hit"], context);
                assert.equal(subject.total(), 0, context);
              },
              40,
              50,
            );
          },
        ),
        params,
      );
    });
  });

  it("close() at each point of a connection: every call settles, later calls fail as closed, no socket outlives it", async () => {
    /** Where the connection is held: the TLS handshake, a handshake command, ready, or a reconnection's handshake. */
    const stage = fc.constantFrom("TLS", "HELLO", "SELECT", "CLIENT", "ready", "reconnection");
    /** When close() is called, after the calls started: same tick, a few event-loop turns, after the first call, at the stage. */
    const moment = fc.oneof(
      fc.constantFrom("same tick", "after the first call", "at the stage"),
      fc.integer({ min: 1, max: 5 }).map((turns) => `${turns} turns`),
    );
    const call = fc.constantFrom("get", "setex", "delete");
    const HUNG = Symbol("hung");
    /** A call's outcome, or HUNG when it did not settle within 10 s (every call is bounded far below that). */
    const bounded = (promise: Promise<unknown>) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const hung = new Promise<typeof HUNG>((resolve) => (timer = setTimeout(() => resolve(HUNG), 10_000)));
      return Promise.race([outcome(promise), hung]).finally(() => clearTimeout(timer));
    };
    await fc.assert(
      fc.asyncProperty(stage, moment, fc.array(call, { minLength: 1, maxLength: 3 }), async (at, when, calls) => {
        const context = `close() ${when} with the connection at ${at}, calls ${calls.join(", ")}`;
        const held = at === "reconnection" ? "HELLO" : at === "TLS" || at === "ready" ? undefined : at;
        const fake = at === "TLS"
          ? { server: new FakeServer((socket) => socket.resume()), commands: [] as string[][] }
          : fakeRedis((index) => (at === "reconnection" && index === 0 ? undefined : held));
        const { server, commands } = fake;
        const port = await server.listen();
        // A password and a database, so the handshake has AUTH (in HELLO) and SELECT.
        const options = {
          url: `${at === "TLS" ? "rediss" : "redis"}://default:pw@127.0.0.1:${port}/3`,
          connectTimeoutMs: 2_147_483_647,
          commandTimeoutMs: 50,
        };
        const cache = at === "reconnection" ? await RedisCacheBackend.connect(options) : new RedisCacheBackend(options);
        try {
          if (at === "reconnection") server.drop();
          const reached = () =>
            at === "TLS"
              ? server.accepted > 0
              : at === "ready"
              ? (commands[0] ?? []).some((name) => ["GET", "SET", "DEL"].includes(name))
              : (commands[at === "reconnection" ? 1 : 0] ?? []).includes(held as string);
          const started = calls.map((name) =>
            bounded(
              name === "get" ? cache.get("k") : name === "setex" ? cache.setex("k", 60, { v: 1 }) : cache.delete("k"),
            )
          );
          if (when === "after the first call") await started[0];
          else if (when === "at the stage") {
            await eventually(() => Promise.resolve(assert.ok(reached(), context)), 100, 20);
          } else if (when !== "same tick") {
            for (let turn = 0; turn < Number.parseInt(when); turn++) {
              await new Promise((resolve) => setImmediate(resolve));
            }
          }
          await cache.close();
          const late = await outcome(cache.get("k"));
          for (const result of await Promise.all(started)) {
            assert.notEqual(result, HUNG, `${context}: a call never settled`);
            if (result !== HUNG && !result.ok) {
              assert.ok(result.error instanceof CacheError, `${context}: ${result.error}`);
            }
          }
          assert.ok(!late.ok && late.error instanceof CacheError && /the cache is closed$/.test(late.error.message));
          // A connect under way when close() ran lands within a few milliseconds; then none may stay open.
          await new Promise((resolve) => setTimeout(resolve, 50));
          await eventually(
            () => Promise.resolve(assert.equal(server.open, 0, `${context}: a socket outlived close()`)),
            100,
            50,
          );
        } finally {
          await cache.close();
          await server.close();
        }
      }),
      params,
    );
  });
});
