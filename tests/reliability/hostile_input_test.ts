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
  MAX_ERROR_BYTES,
  MAX_LABEL_BYTES,
  MAX_PAYLOAD_BYTES,
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
// For the retried conditional writes at the end of the file.
import { type AuditEntry, type BatchState, type IRulesStore, RulesStoreError, updateBatchState } from "../../mod.ts";
import { batchState as fixtureState } from "../contract/fixtures.ts";
import { storeWithFaults } from "../support/dynamodb.ts";
import { type Fault, networkError, serverError, throttled } from "../support/faults.ts";
// Issue 11, files: Buffers and views as inputs, racing moves, keys other tools wrote, page sizes.
import { Buffer } from "node:buffer";
import { ConfigError, type FileStoreEvent, type IFileStore } from "../../mod.ts";
import { hasLoneSurrogate, pathProblem } from "../../src/core/keys.ts";
import { putRaw } from "../support/s3.ts";
import { ListMultipartUploadsCommand } from "@aws-sdk/client-s3";
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
            // As of its first day: a version applies only within its dates.
            const read = await memory.getCalculationRule(record.clientId as string, record.ruleId as string, {
              asOf: record.effectiveFrom as string,
            });
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

// ---- retried conditional writes from two writers (issue 11, item 4) --------
//
// Two writers send the same generated payload under the same condition; the
// second writer's first PutItem attempt is interfered with: the first writer
// writes during it, and the attempt then fails before it is sent (throttled,
// a reset connection, a 500), or lands and loses its answer (a 500 after it),
// or goes through. The reference applies the writes in the order they landed
// on DynamoDB; both stores must give each writer the same outcome and end
// with the same stored records. The one answer the reference cannot give is
// "unknown": a retried write whose first attempt landed and was replaced by
// the other writer's next version before the retry; then the stored records
// must still be the reference's, and the writer is told the outcome is
// unknown (never a conflict its caller would retry into a double update).

/** What happens to the second writer's first attempt, the first writer's write running during it. */
const INTERFERENCES = ["none", "throttled", "network error", "500 before it is sent", "500 after it landed"] as const;
type Interference = (typeof INTERFERENCES)[number];

/** The fault for an interference; `during` is the first writer's write. */
function interference(kind: Interference, during: () => Promise<unknown>): Fault {
  switch (kind) {
    case "none":
      return { during };
    case "throttled":
      return { error: throttled(), during };
    case "network error":
      return { error: networkError(), during };
    case "500 before it is sent":
      return { error: serverError(), during };
    case "500 after it landed":
      return { error: serverError(), after: true, during };
  }
}

/** Which call both writers make. */
const RETRIED_CALLS = ["saveBatchState", "appendAuditEntry", "updateBatchState"] as const;

integrationSuite(
  "Reliability: hostile input, retried conditional writes from two writers",
  await probe(AWS_ENDPOINT_URL),
  () => {
    describe("DynamoDBRulesStore on moto and MemoryRulesStore: identical payloads, the second writer's first attempt failing", () => {
      let subject: Awaited<ReturnType<typeof openStore>>;

      before(async () => {
        subject = await openStore({});
      });

      after(() => subject?.cleanup());

      it("each writer gets the reference's outcome and the stored records are the reference's", async () => {
        await fc.assert(
          fc.asyncProperty(
            fc.oneof(
              ...RETRIED_CALLS.map((call) =>
                fc.tuple(fc.constant(call), call === "appendAuditEntry" ? auditEntry : batchState)
              ),
            ),
            fc.constantFrom(...INTERFERENCES),
            // Mostly the version before the record's (a write that can land), else any small one.
            fc.option(fc.integer({ min: 0, max: 3 }), { freq: 3 }),
            async ([call, record], kind, chosenVersion) => {
              const batchId = uniqueId("retried");
              const payload = { ...record, batchId } as unknown as BatchState;
              const appended = { ...record, batchId } as unknown as AuditEntry;
              const previous = Number.isSafeInteger(payload.version) && payload.version > 0 ? payload.version - 1 : 0;
              const expectedVersion = chosenVersion ?? previous;
              /** The same update from either writer: identical states when both read the same one. */
              const update = (current: BatchState | null) => ({
                ...payload,
                data: { payload: payload.data, count: ((current?.data.count as number | undefined) ?? 0) + 1 },
              });
              const write = (store: IRulesStore): Promise<unknown> => {
                switch (call) {
                  case "saveBatchState":
                    return store.saveBatchState(batchId, payload, { expectedVersion });
                  case "appendAuditEntry":
                    return store.appendAuditEntry(appended);
                  case "updateBatchState":
                    return updateBatchState(store, batchId, update, { baseDelayMs: 1 });
                }
              };
              const stored = async (store: IRulesStore) => ({
                state: await store.getBatchState(batchId),
                trail: await store.listAuditEntries(batchId),
              });
              const context = `${call}, ${kind}, ${show(call === "appendAuditEntry" ? appended : payload)}`;

              const reference = new MemoryRulesStore();
              const first = subject.store;
              let fired = false;
              let firstOutcome: Outcome | undefined;
              const second = storeWithFaults(subject.suffix, (operation, attempt) => {
                if (operation !== "PutItem" || attempt !== 1 || fired) return undefined;
                fired = true;
                return interference(kind, async () => (firstOutcome = await outcome(write(first))));
              });
              try {
                if (call === "saveBatchState" && expectedVersion > 0) {
                  const before = fixtureState(batchId, { version: expectedVersion });
                  await reference.saveBatchState(batchId, before);
                  await first.saveBatchState(batchId, before);
                }
                const secondOutcome = await outcome(write(second.store));
                // A call refused before any request never reached its first attempt: the first writer goes after it.
                firstOutcome ??= await outcome(write(first));
                // The order the writes landed in: the second writer's first when its attempt landed before the other's.
                const secondFirst = kind === "500 after it landed";
                const earlier = await outcome(write(reference));
                const later = await outcome(write(reference));
                const [referenceFirst, referenceSecond] = secondFirst ? [later, earlier] : [earlier, later];
                assertSame(referenceFirst, firstOutcome, `${context}: the first writer`);
                const unknown = !secondOutcome.ok && secondOutcome.error instanceof RulesStoreError &&
                  / the outcome is unknown: /.test(secondOutcome.error.message);
                if (unknown) {
                  // Only a retried write whose attempt landed, replaced by the other's next version, may not know.
                  assert.ok(
                    kind === "500 after it landed" && call === "updateBatchState",
                    `${context}: ${secondOutcome}`,
                  );
                  assert.ok(referenceSecond.ok, context);
                } else {
                  assertSame(referenceSecond, secondOutcome, `${context}: the second writer`);
                }
                assert.deepEqual(await stored(first), await stored(reference), `${context}: stored`);
              } finally {
                await second.close();
              }
            },
          ),
          { ...params, numRuns: RUNS / 2 },
        );
      });
    });
  },
);

// ---- issue 11: timestamps, calendar days, free-text sizes, exact rates, prototype names ----
//
// Each class is checked two ways: the memory and DynamoDB stores side by side
// (a value one keeps and the other cannot read, or refuses after the request,
// is a difference), and against an oracle written here without the library's
// code (calendar arithmetic on integers, decimals as BigInts, UTF-8 byte
// counts), so that a defect both backends share is found too.

/** Days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant's algorithm: integers only, no Date). */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yearOfEra = y - era * 400;
  const dayOfYear = Math.floor((153 * (month + (month > 2 ? -3 : 9)) + 2) / 5) + day - 1;
  return era * 146_097 + yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) + dayOfYear -
    719_468;
}

/** The date of a day count: the inverse of daysFromCivil. */
function civilFromDays(days: number): [number, number, number] {
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const dayOfEra = z - era * 146_097;
  const yearOfEra = Math.floor(
    (dayOfEra - Math.floor(dayOfEra / 1460) + Math.floor(dayOfEra / 36_524) -
      Math.floor(dayOfEra / 146_096)) / 365,
  );
  const dayOfYear = dayOfEra - (365 * yearOfEra + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100));
  const monthIndex = Math.floor((5 * dayOfYear + 2) / 153);
  const day = dayOfYear - Math.floor((153 * monthIndex + 2) / 5) + 1;
  const month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9;
  return [yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day];
}

/** Whether the day exists: it survives the round trip through a day count unchanged. */
function dayExists(year: number, month: number, day: number): boolean {
  if (month < 1 || month > 12 || day < 1 || day > 31) return false;
  const [y, m, d] = civilFromDays(daysFromCivil(year, month, day));
  return y === year && m === month && d === day;
}

const pad = (value: number, width: number) => String(value).padStart(width, "0");

/** The parts of a generated timestamp, some out of range on purpose. */
interface TimeParts {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
  fraction: string;
  /** Minutes east of UTC, or null for "Z". */
  offset: { sign: 1 | -1; hours: number; minutes: number } | null;
}

function timeText(parts: TimeParts): string {
  const { year, month, day, hour, minute, second, fraction, offset } = parts;
  const zone = offset === null
    ? "Z"
    : `${offset.sign < 0 ? "-" : "+"}${pad(offset.hours, 2)}:${pad(offset.minutes, 2)}`;
  return `${pad(year, 4)}-${pad(month, 2)}-${pad(day, 2)}T${pad(hour, 2)}:${pad(minute, 2)}:${pad(second, 2)}${
    fraction === "" ? "" : `.${fraction}`
  }${zone}`;
}

/** What a store must keep for a timestamp: its UTC form with milliseconds, or null when it must refuse it. */
function expectedUtc(parts: TimeParts): string | null {
  const { year, month, day, hour, minute, second, fraction, offset } = parts;
  if (!dayExists(year, month, day) || hour > 23 || minute > 59 || second > 59) return null;
  if (offset !== null && (offset.hours > 23 || offset.minutes > 59)) return null;
  const offsetMinutes = offset === null ? 0 : offset.sign * (offset.hours * 60 + offset.minutes);
  const millis = ((daysFromCivil(year, month, day) * 24 + hour) * 60 + minute - offsetMinutes) * 60_000 +
    second * 1000 + Number(fraction.padEnd(3, "0"));
  const days = Math.floor(millis / 86_400_000);
  const rest = millis - days * 86_400_000;
  const [y, m, d] = civilFromDays(days);
  if (y < 0 || y > 9999) return null;
  return `${pad(y, 4)}-${pad(m, 2)}-${pad(d, 2)}T${pad(Math.floor(rest / 3_600_000), 2)}:${
    pad(Math.floor(rest / 60_000) % 60, 2)
  }:${pad(Math.floor(rest / 1000) % 60, 2)}.${pad(rest % 1000, 3)}Z`;
}

/** Offsets from -23:59 to +23:59, every one as likely, and now and then an hour or minute out of range. */
const offsetParts: fc.Arbitrary<TimeParts["offset"]> = fc.option(
  fc.record({
    sign: fc.constantFrom<1 | -1>(1, -1),
    hours: fc.oneof({ weight: 12, arbitrary: fc.integer({ min: 0, max: 23 }) }, {
      weight: 1,
      arbitrary: fc.constant(24),
    }),
    minutes: fc.oneof({ weight: 12, arbitrary: fc.integer({ min: 0, max: 59 }) }, {
      weight: 1,
      arbitrary: fc.constant(60),
    }),
  }),
  { freq: 8 },
);

/**
 * A local time on the first or the last day of the range (0000-01-01,
 * 9999-12-31) with any offset: about one in four leaves the range in UTC.
 */
const edgeParts: fc.Arbitrary<TimeParts> = fc.tuple(
  fc.boolean(),
  fc.integer({ min: 0, max: 86_399_999 }),
  offsetParts,
).map(([last, millis, offset]) => {
  const inDay = last ? 86_399_999 - millis : millis;
  return {
    year: last ? 9999 : 0,
    month: last ? 12 : 1,
    day: last ? 31 : 1,
    hour: Math.floor(inDay / 3_600_000),
    minute: Math.floor(inDay / 60_000) % 60,
    second: Math.floor(inDay / 1000) % 60,
    fraction: pad(inDay % 1000, 3),
    offset,
  };
});

/** Any time of the range, with days that do not exist (the 29th to 31st of every month) and fields out of range. */
const anyParts: fc.Arbitrary<TimeParts> = fc.record({
  year: fc.oneof(
    { weight: 1, arbitrary: fc.constantFrom(0, 1, 1900, 2000, 2024, 2100, 9999) },
    { weight: 2, arbitrary: fc.integer({ min: 0, max: 9999 }) },
  ),
  month: fc.oneof(
    { weight: 8, arbitrary: fc.integer({ min: 1, max: 12 }) },
    { weight: 1, arbitrary: fc.constantFrom(0, 13) },
  ),
  day: fc.oneof(
    { weight: 3, arbitrary: fc.integer({ min: 28, max: 31 }) },
    { weight: 4, arbitrary: fc.integer({ min: 1, max: 31 }) },
    { weight: 1, arbitrary: fc.constantFrom(0, 32) },
  ),
  hour: fc.oneof({ weight: 8, arbitrary: fc.integer({ min: 0, max: 23 }) }, { weight: 1, arbitrary: fc.constant(24) }),
  minute: fc.oneof({ weight: 8, arbitrary: fc.integer({ min: 0, max: 59 }) }, {
    weight: 1,
    arbitrary: fc.constant(60),
  }),
  second: fc.oneof({ weight: 8, arbitrary: fc.integer({ min: 0, max: 59 }) }, {
    weight: 1,
    arbitrary: fc.constant(60),
  }),
  fraction: fc.oneof(fc.constant(""), digits(1, 3)),
  offset: offsetParts,
});

/** The 29th to the 31st of the short months, in leap and common years (2000 is leap, 1900 and 2100 are not). */
const shortMonthEnd = fc.record({
  year: fc.constantFrom(1900, 2000, 2023, 2024, 2100),
  month: fc.constantFrom(2, 4, 6, 9, 11),
  day: fc.integer({ min: 29, max: 31 }),
});

/** Timestamps: at the two ends of the range more often than not, at the ends of short months, anywhere. */
const timeParts: fc.Arbitrary<TimeParts> = fc.oneof(
  { weight: 3, arbitrary: edgeParts },
  { weight: 1, arbitrary: fc.tuple(shortMonthEnd, anyParts).map(([day, parts]) => ({ ...parts, ...day })) },
  { weight: 2, arbitrary: anyParts },
);

/** Text of about `bytes` UTF-8 bytes: either side of a limit, of 1- to 4-byte characters. */
const aroundLimits = (...limits: number[]) => fc.oneof(...limits.map((limit) => atLimit(limit)));

/** Free text around the library's limits and around what DynamoDB can hold (an item is at most 400 KB). */
const labelText = fc.oneof(
  { weight: 3, arbitrary: fc.constant("rule_resolved") },
  { weight: 3, arbitrary: aroundLimits(MAX_LABEL_BYTES) },
  { weight: 2, arbitrary: aroundLimits(300 * 1024, 450 * 1024) },
);
const errorText = fc.oneof(
  { weight: 2, arbitrary: fc.constant(null) },
  { weight: 3, arbitrary: aroundLimits(MAX_ERROR_BYTES) },
  { weight: 2, arbitrary: aroundLimits(150 * 1024, 300 * 1024) },
);
const bigPayload = fc.oneof(
  { weight: 3, arbitrary: fc.constant({ n: 1 }) },
  { weight: 1, arbitrary: fc.constant({ blob: "é".repeat(MAX_PAYLOAD_BYTES / 2 - 20) }) },
);

const utf8Bytes = (text: string) => new TextEncoder().encode(text).length;

/** A decimal's value as a BigInt scaled by 10^scale: the oracle's exact comparison. */
function scaled(decimal: string, scale: number): bigint {
  const [, sign, whole, fraction = ""] = /^(-?)(\d+)(?:\.(\d+))?$/.exec(decimal)!;
  const magnitude = BigInt(whole + fraction.padEnd(scale, "0").slice(0, scale));
  return sign === "-" ? -magnitude : magnitude;
}

/** Rates with many digits just above 1 and just below 0, and the exact edges. */
const edgeRate = fc.oneof(
  fc.integer({ min: 0, max: 36 }).map((zeros) => `1.${"0".repeat(zeros)}1`),
  fc.integer({ min: 0, max: 36 }).map((zeros) => `-0.${"0".repeat(zeros)}1`),
  fc.integer({ min: 1, max: 37 }).map((nines) => `0.${"9".repeat(nines)}`),
  fc.constantFrom("0", "1", "-0.000", "1.00000000000000000000", "0.062", "1.0000000000000000000000000000000000001"),
);

/** Calendar days, some that do not exist (the 29th to 31st of every month, leap and common years). */
const calendarDay = fc.tuple(
  fc.constantFrom(0, 1900, 2000, 2023, 2024, 2100, 9999),
  fc.integer({ min: 1, max: 12 }),
  fc.oneof(fc.integer({ min: 28, max: 31 }), fc.integer({ min: 1, max: 31 })),
).map(([year, month, day]) => ({
  text: `${pad(year, 4)}-${pad(month, 2)}-${pad(day, 2)}`,
  exists: dayExists(year, month, day),
}));

/** An extra field: a name Object.prototype has, or another unknown name. */
const unknownField = fc.tuple(
  fc.constantFrom(...Object.getOwnPropertyNames(Object.prototype), "extra", "Status"),
  jsonValue,
);

integrationSuite("Reliability: hostile input, issue 11 classes (memory and DynamoDB side by side)", unreachable, () => {
  describe("timestamps, calendar days, free-text sizes, exact rates and prototype names", () => {
    let subject: Awaited<ReturnType<typeof openStore>>;
    let store: DynamoDBRulesStore;
    const reference = new MemoryRulesStore();

    before(async () => {
      subject = await openStore({});
      store = subject.store;
    });

    after(() => subject?.cleanup());

    /** The same call on both stores: the same outcome, and that outcome. */
    const onBoth = (context: string, call: (rules: MemoryRulesStore | DynamoDBRulesStore) => Promise<unknown>) =>
      both(context, () => call(reference), () => call(store));

    it("timestamps over the years 0000 to 9999 at every offset: kept as the oracle's UTC form, or refused by both", async () => {
      let index = 0;
      await fc.assert(
        fc.asyncProperty(timeParts, fc.constantFrom(...BATCH_STATUSES), async (parts, status) => {
          const time = timeText(parts);
          const expected = expectedUtc(parts);
          const batchId = `ts-${index++}`;
          const context = `timestamp ${time} (oracle: ${expected ?? "refused"})`;
          const writes: Array<[string, (rules: MemoryRulesStore | DynamoDBRulesStore) => Promise<unknown>]> = [
            ["saveBatchState", (rules) =>
              rules.saveBatchState(batchId, {
                batchId,
                clientId: "ACME",
                planId: "PLAN_A",
                status,
                currentStep: null,
                version: 1,
                updatedAt: time,
                data: {},
              })],
            ["appendAuditEntry", (rules) =>
              rules.appendAuditEntry({
                entryId: "e1",
                batchId,
                timestamp: time,
                agent: "compliance",
                action: "a",
                actor: "b",
                details: {},
              })],
            ["saveProcessingResult", (rules) =>
              rules.saveProcessingResult(batchId, "0100", {
                batchId,
                step: "0100",
                status: "succeeded",
                output: {},
                error: null,
                startedAt: time,
                completedAt: time,
              })],
          ];
          for (const [name, write] of writes) {
            const written = await onBoth(`${context}: ${name}`, write);
            assert.equal(written.ok, expected !== null, `${context}: ${name} ${written.ok ? "accepted" : "refused"}`);
          }
          const state = await onBoth(`${context}: getBatchState`, (rules) => rules.getBatchState(batchId));
          const entries = await onBoth(`${context}: listAuditEntries`, (rules) => rules.listAuditEntries(batchId));
          const results = await onBoth(
            `${context}: getProcessingResults`,
            (rules) => rules.getProcessingResults(batchId),
          );
          await onBoth(`${context}: listBatchesByStatus`, (rules) => rules.listBatchesByStatus(status));
          const read = [
            (state as { value?: { updatedAt?: string } | null }).value?.updatedAt,
            (entries as { value?: Array<{ timestamp: string }> }).value?.[0]?.timestamp,
            (results as { value?: Array<{ completedAt: string }> }).value?.[0]?.completedAt,
          ];
          assert.deepEqual(
            read,
            expected === null ? [undefined, undefined, undefined] : [expected, expected, expected],
          );
        }),
        params,
      );
    });

    it("free text around its limits and around what DynamoDB holds: both keep it whole, or both refuse it first", async () => {
      let index = 0;
      await fc.assert(
        fc.asyncProperty(labelText, labelText, errorText, bigPayload, async (action, actor, error, payload) => {
          const batchId = `text-${index++}`;
          const context = `action ${utf8Bytes(action)} B, actor ${utf8Bytes(actor)} B, error ${
            error === null ? "null" : `${utf8Bytes(error)} B`
          }`;
          const entry = {
            entryId: "e1",
            batchId,
            timestamp: "2026-11-27T10:00:00.000Z",
            agent: "compliance",
            action,
            actor,
            details: payload,
          };
          const appended = await onBoth(
            `${context}: appendAuditEntry`,
            (rules) => rules.appendAuditEntry(entry as never),
          );
          const fits = utf8Bytes(action) <= MAX_LABEL_BYTES && utf8Bytes(actor) <= MAX_LABEL_BYTES;
          assert.equal(appended.ok, fits, `${context}: the audit entry was ${appended.ok ? "kept" : "refused"}`);
          if (!appended.ok) {
            assert.equal(
              (appended.error as BlueStarError).code,
              "INVALID_INPUT",
              `${context}: refused before the request`,
            );
          }
          await onBoth(`${context}: listAuditEntries`, (rules) => rules.listAuditEntries(batchId));
          const result = {
            batchId,
            step: "0100",
            status: "failed",
            output: payload,
            error,
            startedAt: "2026-11-27T10:00:00.000Z",
            completedAt: "2026-11-27T10:00:01.000Z",
          };
          const saved = await onBoth(
            `${context}: saveProcessingResult`,
            (rules) => rules.saveProcessingResult(batchId, "0100", result as never),
          );
          assert.equal(saved.ok, error === null || utf8Bytes(error) <= MAX_ERROR_BYTES, `${context}: the result`);
          if (!saved.ok) assert.equal((saved.error as BlueStarError).code, "INVALID_INPUT", context);
          await onBoth(`${context}: getProcessingResults`, (rules) => rules.getProcessingResults(batchId));
        }),
        { ...params, numRuns: RUNS / 2 },
      );
    });

    it("rates just outside [0, 1] with many digits and days that do not exist: refused as the oracle says", async () => {
      const seeded = new Map<string, unknown>();
      let memory = new MemoryRulesStore();
      let index = 0;
      await fc.assert(
        fc.asyncProperty(edgeRate, calendarDay, fc.option(calendarDay), async (rate, from, to) => {
          const ruleId = `R${index++}`;
          const record = {
            clientId: "GLOBAL",
            ruleId,
            ruleType: "percentage",
            description: "d",
            parameters: { rate, wageBase: "184500" },
            effectiveFrom: from.text,
            effectiveTo: to === null ? null : to.text,
          };
          const data = { calculationRules: [record] };
          const context = `rule ${show(record)}`;
          const scale = 60;
          const inRange = scaled(rate, scale) >= 0n && scaled(rate, scale) <= 10n ** BigInt(scale);
          const seed = await both(
            `${context}: seeding`,
            () => Promise.resolve(void new MemoryRulesStore(data)),
            async () => {
              for (const { table, items } of rulesDataItems(decodeSeed(data))) {
                await writeItems(subject.client, tableName(table, subject.suffix), items);
              }
            },
          );
          // A range that ends before it starts is no range: refused like a day that does not exist.
          const ordered = to === null || (to.exists && to.text >= from.text);
          assert.equal(seed.ok, inRange && from.exists && ordered, `${context}: the oracle`);
          if (seed.ok) {
            seeded.set(ruleId, record);
            memory = new MemoryRulesStore({ calculationRules: [...seeded.values()] as CalculationRuleRecord[] });
          }
          await both(
            `${context}: getCalculationRule`,
            () => memory.getCalculationRule("ACME", ruleId),
            () => store.getCalculationRule("ACME", ruleId),
          );
        }),
        params,
      );
    });

    it("a field named like Object.prototype's (toString, constructor, __proto__, ...) is refused by both, and nothing is stored", async () => {
      let index = 0;
      await fc.assert(
        fc.asyncProperty(unknownField, fc.constantFrom(0, 1, 2), async ([name, value], which) => {
          const batchId = `unknown-${index++}`;
          const records = [
            {
              batchId,
              clientId: "ACME",
              planId: "PLAN_A",
              status: "running",
              currentStep: null,
              version: 1,
              updatedAt: "2026-11-27T10:00:00Z",
              data: {},
            },
            {
              entryId: "e1",
              batchId,
              timestamp: "2026-11-27T10:00:00Z",
              agent: "intake",
              action: "a",
              actor: "b",
              details: {},
            },
            {
              batchId,
              step: "0100",
              status: "succeeded",
              output: {},
              error: null,
              startedAt: "2026-11-27T10:00:00Z",
              completedAt: "2026-11-27T10:00:00Z",
            },
          ];
          // A computed key is an own property, even "__proto__".
          const record = { ...records[which], [name]: value };
          const context = `${show(record)}`;
          const written = await onBoth(
            context,
            (rules) =>
              which === 0
                ? rules.saveBatchState(batchId, record as never)
                : which === 1
                ? rules.appendAuditEntry(record as never)
                : rules.saveProcessingResult(batchId, "0100", record as never),
          );
          assert.equal(
            written.ok,
            false,
            `${context}: the unknown field ${JSON.stringify(name)} was dropped in silence`,
          );
          assert.equal((written.error as BlueStarError).code, "INVALID_INPUT", context);
          const stored = [
            await onBoth(`${context}: getBatchState`, (rules) => rules.getBatchState(batchId)),
            await onBoth(`${context}: listAuditEntries`, (rules) => rules.listAuditEntries(batchId)),
            await onBoth(`${context}: getProcessingResults`, (rules) => rules.getProcessingResults(batchId)),
          ].map((read) => (read as { value: unknown }).value);
          assert.deepEqual(stored, [null, [], []], context);
        }),
        params,
      );
    });
  });
});

// ---- issue 11, files: Buffers and views, racing moves, keys other tools wrote, page sizes ----

/** How a caller may hold bytes: a plain array, a Node Buffer (a view on a shared pool), a view into a larger buffer. */
type Holding = "plain" | "buffer" | "view" | "buffer-view";

/** `bytes` held the way `holding` says, padded with `before` and `after` bytes of junk in the larger buffer. */
function hold(bytes: Uint8Array, holding: Holding, before: number, after: number): Uint8Array {
  if (holding === "plain") return Uint8Array.from(bytes);
  // Buffer.from() of a small array copies it into the shared pool: a view at an offset.
  if (holding === "buffer") return Buffer.from(bytes);
  const backing = holding === "view"
    ? new Uint8Array(before + bytes.length + after)
    : Buffer.alloc(before + bytes.length + after);
  backing.fill(0xee);
  backing.set(bytes, before);
  return backing.subarray(before, before + bytes.length);
}

/** File content and how it is held; `make()` gives a fresh input each call, so no two backends share one. */
const heldBytes = fc.record({
  bytes: fc.oneof(fc.uint8Array({ maxLength: 600 }), shortText.map((text) => new TextEncoder().encode(text))),
  holding: fc.constantFrom<Holding>("plain", "buffer", "view", "buffer-view"),
  before: fc.nat({ max: 24 }),
  after: fc.nat({ max: 24 }),
}).map((held) => ({ ...held, make: () => hold(held.bytes, held.holding, held.before, held.after) }));

/** A valid relative path of one to three awkward segments. */
const validPath = fc.array(someText, { minLength: 1, maxLength: 3 }).map((parts) => parts.join("/"))
  .filter((path) => pathProblem(path) === undefined && new TextEncoder().encode(path).length < 600);

/**
 * A key another tool can write that is no valid path: empty, ".", ".." and
 * awkward segments. Not a lone surrogate (no UTF-8 key holds one), and not a
 * carriage return: XML turns it into a line feed in a listing, so no listing
 * without `EncodingType=url` can name such a key exactly.
 */
const foreignKey = fc.array(segment, { minLength: 1, maxLength: 4 }).map((parts) => parts.join("/"))
  .filter((key) => pathProblem(key) !== undefined && !hasLoneSurrogate(key) && !key.includes("\r") && key.length < 300);

/** What a store holds under a prefix: every path with its bytes. */
async function contentsOf(files: IFileStore, prefix: string): Promise<Array<[string, number[]]>> {
  const paths = await files.listFiles(prefix);
  return await Promise.all(paths.map(async (path) => [path, [...await files.read(path)]] as [string, number[]]));
}

/** A move's outcome, as a code: "ok" or the error's code. */
async function moveOutcome(files: IFileStore, src: string, dst: string): Promise<string> {
  const result = await outcome(files.move(src, dst));
  if (result.ok) return "ok";
  return result.error instanceof BlueStarError ? result.error.code : `not the library's: ${show(result.error)}`;
}

/** Two moves and the files they start from, relative to a root. */
interface Race {
  label: string;
  initial: Array<[string, string]>;
  moves: [[string, string], [string, string]];
}

/**
 * Races of two moves: of one source (to two destinations, to one, onto itself
 * and away), and of two sources to one destination (which may exist, or be
 * one of the sources).
 */
const race: fc.Arbitrary<Race> = fc.tuple(
  fc.uniqueArray(validPath, { minLength: 3, maxLength: 3 }),
  fc.constantFrom("two destinations", "one destination", "onto itself", "destination exists"),
  fc.constantFrom("one source", "two sources"),
  someText,
  someText,
).map(([[a, b, c], variant, sources, first, second]) => {
  const initial: Array<[string, string]> = [[a, first]];
  if (sources === "two sources") initial.push([b, second]);
  if (variant === "destination exists") initial.push([c, "already there"]);
  const from2 = sources === "two sources" ? b : a;
  const moves: Race["moves"] = variant === "two destinations"
    ? [[a, b === from2 ? c : b], [from2, c]]
    : variant === "onto itself"
    ? [[a, a], [from2, a]]
    : [[a, c], [from2, c]];
  return { label: `${sources}, ${variant}`, initial, moves };
});

/**
 * Runs a race on `files` under `root`: the files, then both moves at once.
 * Returns each move's outcome and what is stored afterwards.
 */
async function runRace(files: IFileStore, root: string, { initial, moves }: Race) {
  for (const [path, text] of initial) await files.write(`${root}/${path}`, text);
  const outcomes = await Promise.all(moves.map(([src, dst]) => moveOutcome(files, `${root}/${src}`, `${root}/${dst}`)));
  return { outcomes, stored: await contentsOf(files, `${root}/`) };
}

/**
 * Asserts the outcome of a race is one the reference gives for the two moves
 * run one after the other, in one order or the other: every move lands or
 * fails as if alone, so no race duplicates, merges or loses a file. Two
 * identical moves may lose with either FILE_NOT_FOUND (the source went
 * first) or CONFLICT (the destination came first): both left nothing.
 */
async function assertSerial(
  context: string,
  observed: { outcomes: string[]; stored: Array<[string, number[]]> },
  scenario: Race,
  root: string,
) {
  const identical = scenario.moves[0][0] === scenario.moves[1][0] && scenario.moves[0][1] === scenario.moves[1][1];
  const same = (a: string, b: string) => a === b || (identical && a !== "ok" && b !== "ok");
  const tried: string[] = [];
  for (const order of [[0, 1], [1, 0]]) {
    const model = new MemoryFileStore();
    for (const [path, text] of scenario.initial) await model.write(`${root}/${path}`, text);
    const outcomes: string[] = [];
    for (const index of order) {
      const [src, dst] = scenario.moves[index];
      outcomes[index] = await moveOutcome(model, `${root}/${src}`, `${root}/${dst}`);
    }
    const stored = await contentsOf(model, `${root}/`);
    if (outcomes.every((code, index) => same(code, observed.outcomes[index]))) {
      assert.deepEqual(observed.stored, stored, `${context}: the files after outcomes ${show(outcomes)}`);
      return;
    }
    tried.push(show(outcomes));
  }
  assert.fail(
    `${context}: outcomes ${show(observed.outcomes)}, but one move after the other gives ${tried.join(" or ")}`,
  );
}

/** Half the runs: each of these costs a dozen S3 requests (a move alone is six). */
const fileParams = { ...params, numRuns: RUNS / 2 };

integrationSuite(
  "Reliability: hostile file inputs, races and foreign keys, memory and S3 side by side",
  unreachable,
  () => {
    describe("S3FileStore on moto and MemoryFileStore: issue 11", () => {
      const reference = new MemoryFileStore();
      const events: FileStoreEvent[] = [];
      const root = uniqueId("issue-11");
      let admin: Awaited<ReturnType<typeof openFileStore>>["admin"];
      let bucket: string;
      let files: S3FileStore;
      let withPageSize: (pageSize: number) => S3FileStore;
      let cleanup = () => Promise.resolve();
      let run = 0;

      // A small page size, so listings cross pages.
      before(async () => {
        ({ admin, bucket, files, withPageSize, cleanup } = await openFileStore({
          pageSize: 3,
          onEvent: (event) => events.push(event),
        }));
      });

      after(() => cleanup());

      it("write(), read() and move() of Buffers and views: what was written comes back, whatever the caller changes after", async () => {
        await fc.assert(
          fc.asyncProperty(validPath, validPath, heldBytes, async (path, destination, held) => {
            const prefix = `${root}/held-${run++}`;
            const [p, d] = [`${prefix}/${path}`, `${prefix}/${destination}`];
            const context = `write(${show(p)}, ${held.holding} of ${show(held.bytes)}), move to ${show(d)}`;
            const [mine, theirs] = [held.make(), held.make()];
            await both(`${context}: write`, () => reference.write(p, mine), () => files.write(p, theirs));
            // The caller reuses its buffer: nothing it does may reach either store.
            mine.fill(0x78);
            theirs.fill(0x78);
            for (const at of p === d ? [p] : [p, d]) {
              if (at === d) await both(`${context}: move`, () => reference.move(p, d), () => files.move(p, d));
              const [fromReference, fromReal] = [await outcome(reference.read(at)), await outcome(files.read(at))];
              assertSame(fromReference, fromReal, `${context}: read ${show(at)}`);
              assert.ok(fromReference.ok && fromReal.ok, `${context}: read ${show(at)}`);
              assert.deepEqual(normalise(fromReference.value), held.bytes, `${context}: the reference kept the bytes`);
              // Nor may changing what a read returned.
              fromReference.value.fill(0x79);
              fromReal.value.fill(0x79);
              await both(`${context}: read ${show(at)} again`, () => reference.read(at), () => files.read(at));
              assert.deepEqual(
                normalise(await reference.read(at)),
                held.bytes,
                `${context}: a read returned the store's own bytes`,
              );
            }
          }),
          fileParams,
        );
      });

      it("move() races: two moves of one source or to one destination end as if run one after the other, on both", async () => {
        await fc.assert(
          fc.asyncProperty(race, async (scenario) => {
            const prefix = `${root}/race-${run++}`;
            const context = `${scenario.label}: ${show(scenario.moves)} from ${show(scenario.initial)}`;
            for (const [name, store] of [["MemoryFileStore", reference], ["S3FileStore", files]] as const) {
              const observed = await runRace(store, prefix, scenario);
              await assertSerial(`${context} on ${name}`, observed, scenario, prefix);
            }
          }),
          fileParams,
        );
        const uploads = await admin.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
        assert.deepEqual(uploads.Uploads ?? [], [], "every copy that lost was aborted");
      });

      it("listFiles() and listFilePages() with keys other tools wrote: list what the reference lists, each listed path reads", async () => {
        await fc.assert(
          fc.asyncProperty(
            fc.uniqueArray(validPath, { maxLength: 3 }),
            fc.uniqueArray(foreignKey, { minLength: 1, maxLength: 4 }),
            async (valid, foreign) => {
              const prefix = `${root}/foreign-${run++}`;
              const context = `files ${show(valid)} and foreign keys ${show(foreign)}`;
              for (const path of valid) {
                await both(
                  `${context}: write ${show(path)}`,
                  () => reference.write(`${prefix}/${path}`, path),
                  () => files.write(`${prefix}/${path}`, path),
                );
              }
              const written: string[] = [];
              for (const key of foreign) {
                // moto refuses a few keys S3 takes (a line feed before a backslash): those cannot be met there.
                const put = await outcome(putRaw(admin, bucket, `${prefix}/${key}`, "another tool's"));
                if (put.ok) written.push(`${prefix}/${key}`);
              }
              events.length = 0;
              const listed = await both(
                `${context}: listFiles`,
                () => reference.listFiles(`${prefix}/`),
                () => files.listFiles(`${prefix}/`),
              );
              const skipped = events.filter((event) => event.type === "skipped").map((event) => event.key).sort();
              assert.deepEqual(
                skipped,
                written.sort(),
                `${context}: each skipped key reported once`,
              );
              const paged = async (store: IFileStore) => {
                const pages: string[] = [];
                for await (const page of store.listFilePages(`${prefix}/`)) pages.push(...page);
                return pages;
              };
              await both(`${context}: listFilePages`, () => paged(reference), () => paged(files));
              for (const path of listed.ok ? listed.value as string[] : []) {
                await both(`${context}: read ${show(path)}`, () => reference.read(path), () => files.read(path));
              }
            },
          ),
          fileParams,
        );
      });

      it("pageSize: hostile page sizes are accepted or refused alike, and pages hold every path once", async () => {
        const pageSize = fc.oneof(
          fc.integer({ min: 1, max: 1000 }),
          fc.constantFrom<unknown>(0, -1, 1001, 1.5, NaN, Infinity, -Infinity, "7", null, 10n, true),
        );
        await fc.assert(
          fc.asyncProperty(pageSize, fc.uniqueArray(validPath, { maxLength: 5 }), async (size, paths) => {
            const prefix = `${root}/pages-${run++}`;
            const context = `pageSize ${show(size)}, paths ${show(paths)}`;
            const made = await both(
              `${context}: new`,
              () => Promise.resolve().then(() => void new MemoryFileStore({ pageSize: size as number })),
              () => Promise.resolve().then(() => void withPageSize(size as number)),
            );
            if (!made.ok) {
              assert.ok(made.error instanceof ConfigError, `${context}: ${show(made.error)}`);
              return;
            }
            const memory = new MemoryFileStore({ pageSize: size as number });
            const real = withPageSize(size as number);
            for (const path of paths) {
              await memory.write(`${prefix}/${path}`, path);
              await real.write(`${prefix}/${path}`, path);
            }
            const pages = async (store: IFileStore) => {
              const all: string[][] = [];
              for await (const page of store.listFilePages(`${prefix}/`)) all.push(page);
              assert.ok(
                all.every((page) => page.length >= 1 && page.length <= (size as number)),
                `${context}: page sizes`,
              );
              return all.flat();
            };
            await both(`${context}: listFilePages`, () => pages(memory), () => pages(real));
            assert.equal((await pages(memory)).length, paths.length, `${context}: every path once`);
          }),
          fileParams,
        );
      });
    });
  },
);

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
                // One entry per owner: the client's own and GLOBAL's (GLOBAL reads its own only).
                const entries = clientId === "GLOBAL" ? 2 : 4;
                const cacheEvents = events.filter((event) => event.type.startsWith("cache."));
                assert.deepEqual(cacheEvents.map((event) => event.type), Array(entries).fill("cache.hit"), context);
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
