// The contract's building blocks: errors, keys, decimals, JSON values.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  BlueStarError,
  cacheKey,
  canonicalDecimal,
  ConflictError,
  decimalProblem,
  FileNotFoundError,
  FileStoreError,
  InvalidInputError,
  RuleNotFoundError,
  RulesStoreError,
  stepId,
} from "../../mod.ts";
import { mapConcurrently } from "../../src/core/concurrency.ts";
import { quote } from "../../src/core/errors.ts";
import {
  checkCacheKey,
  checkPrefix,
  comparePaths,
  idProblem,
  itemKeys,
  MAX_CACHE_KEY_BYTES,
  MAX_ID_BYTES,
  pathProblem,
} from "../../src/core/keys.ts";
import { encodeCacheWrite, jsonProblem, MAX_JSON_DEPTH } from "../../src/core/values.ts";
import { calculationRuleRecordSchema, irsLimitsSchema } from "../../src/core/schema.ts";

describe("errors", () => {
  it("each error carries its class's stable code, its name and the cause", () => {
    const cause = new Error("socket hang up");
    const error = new RuleNotFoundError('Calculation rule "X" not found', { cause });
    assert.equal(error.code, "RULE_NOT_FOUND");
    assert.equal(error.name, "RuleNotFoundError");
    assert.equal(error.cause, cause);
    assert.ok(error instanceof RulesStoreError && error instanceof BlueStarError && error instanceof Error);
    assert.equal(new FileNotFoundError("x").code, "FILE_NOT_FOUND");
    assert.ok(new FileNotFoundError("x") instanceof FileStoreError);
    assert.equal(new BlueStarError("x").cause, undefined);
  });

  it("a caller's subclass keeps its parent's code", () => {
    class StaleBatchError extends ConflictError {}
    assert.equal(new StaleBatchError("x").code, "CONFLICT");
    assert.equal(new StaleBatchError("x").name, "StaleBatchError");
  });

  it("quote() shows control characters and cuts long values", () => {
    assert.equal(quote("a\u0000b"), '"a\\u0000b"');
    assert.equal(quote(42), '"42"');
    const long = quote("x".repeat(10_000));
    assert.ok(long.length <= 82 && long.endsWith('..."'));
  });
});

describe("keys", () => {
  it("idProblem() accepts ordinary ids and rejects forgeable ones", () => {
    for (const id of ["ACME_CORP", "client-42", "Zoë", "a:b", "x".repeat(256), "GLOBAL"]) {
      assert.equal(idProblem(id), undefined, id);
    }
    for (const id of ["", "A#B", "a\tb", "a\u007fb", "\ud800", "x".repeat(257), " a", "a ", undefined, {}]) {
      assert.notEqual(idProblem(id), undefined, JSON.stringify(id));
    }
  });

  it("itemKeys build the documented keys", () => {
    assert.deepEqual(itemKeys.pipelineStep("DEFAULT_BiWeeklyFri", 100), {
      PK: "CLIENT#DEFAULT_BiWeeklyFri",
      SK: "STEP#0100",
    });
    assert.deepEqual(itemKeys.calculationRule("GLOBAL", "FICA"), { PK: "CLIENT#GLOBAL", SK: "RULE#FICA" });
    assert.deepEqual(itemKeys.irsLimits(2026), { PK: "YEAR#2026", SK: "LIMITS" });
    assert.throws(() => itemKeys.calculationRule("A#B", "FICA"), InvalidInputError);
  });

  it("stepId() zero-pads so that text order is step order", () => {
    assert.equal(stepId(100), "0100");
    assert.equal(stepId(2600), "2600");
    for (const bad of [0, 10_000, 1.5, Number.NaN]) assert.throws(() => stepId(bad), InvalidInputError);
  });

  it("cacheKey() namespaces by schema version and environment, and parts cannot forge separators", () => {
    assert.equal(cacheKey("-dev", "calculation", "ACME", "FICA"), "bluestar:v1:-dev:calculation:ACME:FICA");
    assert.notEqual(cacheKey("", "calculation", "a:b", "c"), cacheKey("", "calculation", "a", "b:c"));
    assert.notEqual(cacheKey("-dev", "irs", 2026), cacheKey("-prod", "irs", 2026));
    assert.doesNotMatch(cacheKey("", "calculation", "{tag}", "x"), /[{}]/);
  });

  it("cacheKey() makes a usable key of max-length ids of every kind and script, distinct for distinct ids", () => {
    // 256 bytes of 1-, 2-, 3- and 4-byte characters, and of "%", which percent-encoding also triples.
    const longest = ["a", "é", "€", "\u{1F600}", "%"].map((char) => {
      const size = new TextEncoder().encode(char).length;
      const id = char.repeat(Math.floor(MAX_ID_BYTES / size));
      assert.equal(idProblem(id), undefined, char);
      return id;
    });
    const namespace = "-" + "n".repeat(200);
    const keys = new Set<string>();
    for (const a of longest) {
      const one = [cacheKey(namespace, "pipeline", a), cacheKey(namespace, "agent", a)];
      const two = longest.flatMap((b) => [
        cacheKey(namespace, "validation", a, b),
        cacheKey(namespace, "calculation", a, b),
        // The same ids differing only at the end, where a truncated readable part cannot tell them apart.
        cacheKey(namespace, "calculation", a, `${[...b].slice(0, -1).join("")}b`),
      ]);
      for (const key of [...one, ...two]) {
        assert.equal(checkCacheKey(key), key);
        assert.ok(new TextEncoder().encode(key).length <= MAX_CACHE_KEY_BYTES, key);
        assert.ok(key.startsWith(`bluestar:v1:${namespace}:`), key);
        keys.add(key);
      }
    }
    assert.equal(keys.size, longest.length * (2 + longest.length * 3));
    assert.equal(cacheKey(namespace, "irs", 2026), `bluestar:v1:${namespace}:irs:2026`);
  });

  it("cacheKey() keeps a key within the limit readable and hashes only one past it", () => {
    const head = "bluestar:v1::calculation:";
    const fits = "a".repeat(MAX_CACHE_KEY_BYTES - head.length - 2);
    assert.equal(cacheKey("", "calculation", fits, "b"), `${head}${fits}:b`);
    const over = cacheKey("", "calculation", fits, "bc");
    assert.equal(over.length, MAX_CACHE_KEY_BYTES);
    assert.match(over, /^bluestar:v1::calculation:a+#[0-9a-f]{64}$/);
    // A hashed key holds "#", which every part percent-encodes: it never equals a readable key.
    assert.doesNotMatch(cacheKey("", "calculation", "#", "a#b"), /#/);
  });

  it("pathProblem() rejects every unsafe path and accepts unicode", () => {
    assert.equal(pathProblem("in/pay roll #1+2 Zoë.csv"), undefined);
    for (const path of ["", "/a", "a/../b", "..", "a/./b", "a//b", "a/", "a\\b", "a\u0000", "é".repeat(513)]) {
      assert.notEqual(pathProblem(path), undefined, path);
    }
    assert.equal(checkPrefix(""), "");
    assert.equal(checkPrefix("in/"), "in/");
    assert.throws(() => checkPrefix("/"), InvalidInputError);
  });

  it("comparePaths() orders by code point, as S3 lists", () => {
    const paths = ["\u{1F600}", "\uFFFD", "b", "a", "ab", "\u00e9"];
    assert.deepEqual(paths.sort(comparePaths), ["a", "ab", "b", "\u00e9", "\uFFFD", "\u{1F600}"]);
  });
});

describe("decimals", () => {
  it("decimalProblem() accepts plain decimals up to 38 significant digits", () => {
    for (const value of ["0", "-0.5", "0.062", "184500.00", "12345678901234567890", "1".repeat(38), "0.0000001"]) {
      assert.equal(decimalProblem(value), undefined, value);
    }
    assert.equal(decimalProblem(`1${"0".repeat(125)}`), undefined);
  });

  it("decimalProblem() rejects floats, exponents, a 39th digit and values outside DynamoDB's range", () => {
    assert.match(decimalProblem(0.062)!, /a number cannot hold money exactly/);
    for (const value of ["1e5", "1.", ".5", "+1", "1,000", "", "NaN", "1".repeat(39), `1${"0".repeat(126)}`]) {
      assert.notEqual(decimalProblem(value), undefined, value);
    }
    assert.match(decimalProblem(`0.${"0".repeat(130)}1`)!, /smaller than 1E-130/);
  });

  it("canonicalDecimal() drops insignificant zeros and the sign of zero", () => {
    const cases: Array<[string, string]> = [
      ["184500.00", "184500"],
      ["007.50", "7.5"],
      ["-0.000", "0"],
      ["0.062", "0.062"],
      ["-12.340", "-12.34"],
      ["100", "100"],
    ];
    for (const [input, canonical] of cases) assert.equal(canonicalDecimal(input), canonical);
  });
});

describe("JSON values", () => {
  it("jsonProblem() names the path to the first value JSON cannot hold", () => {
    assert.equal(jsonProblem({ a: [1, "x", null, true, { b: -0.5 }] }), undefined);
    assert.match(jsonProblem({ a: [1, 2n] })!, /value\.a\[1\] is a bigint/);
    assert.match(jsonProblem({ a: { b: Infinity } })!, /value\.a\.b is Infinity/);
    assert.match(jsonProblem({ when: new Date(0) })!, /value\.when is a Date, not a plain object/);
    assert.match(jsonProblem({ u: undefined })!, /value\.u is a undefined/);
    const cyclic: unknown[] = [];
    cyclic.push(cyclic);
    assert.match(jsonProblem(cyclic)!, /value\[0\] is a cycle/);
    const shared = { x: 1 };
    assert.equal(jsonProblem({ a: shared, b: shared }), undefined);
  });

  it("jsonProblem() refuses nesting deeper than MAX_JSON_DEPTH, without overflowing the stack", () => {
    const nest = (depth: number) => {
      let value: unknown = 1;
      for (let level = 0; level < depth; level++) value = { a: value };
      return value;
    };
    assert.equal(jsonProblem(nest(MAX_JSON_DEPTH)), undefined);
    assert.match(jsonProblem(nest(MAX_JSON_DEPTH + 1))!, new RegExp(`nests deeper than ${MAX_JSON_DEPTH} levels$`));
    assert.match(jsonProblem(nest(100_000))!, /nests deeper than/);
  });

  it("encodeCacheWrite() checks key, TTL and value before anything is sent", () => {
    assert.equal(encodeCacheWrite("k", 1, { a: "0.1" }), '{"a":"0.1"}');
    assert.throws(() => encodeCacheWrite("", 1, 1), InvalidInputError);
    assert.throws(() => encodeCacheWrite("k", 2 ** 31, 1), InvalidInputError);
    assert.throws(() => encodeCacheWrite("k", 1, undefined), InvalidInputError);
  });
});

describe("schemas", () => {
  const rule = {
    clientId: "GLOBAL",
    ruleId: "R1",
    ruleType: "flat",
    description: "A rule",
    parameters: { amount: "1.50" },
    effectiveFrom: "2026-01-01",
    effectiveTo: null,
  };
  const problems = (decoded: { ok: boolean; problems?: string[] }) => (decoded.ok ? [] : decoded.problems!);

  it("text with a lone surrogate is refused (DynamoDB stores UTF-8); a surrogate pair is fine", () => {
    assert.deepEqual(problems(calculationRuleRecordSchema.decode({ ...rule, description: "pay \u{1F4B5}" })), []);
    assert.deepEqual(problems(calculationRuleRecordSchema.decode({ ...rule, description: "pay \ud83d" })), [
      "calculation_rule.description: it contains a lone surrogate",
    ]);
  });

  it("a record of decimals is a plain object whose names are not built-in property names", () => {
    for (const name of ["__proto__", "constructor", "toString", "hasOwnProperty"]) {
      const parameters = Object.fromEntries([["amount", "1"], [name, "2"]]);
      assert.deepEqual(problems(calculationRuleRecordSchema.decode({ ...rule, parameters })), [
        `calculation_rule.parameters key ${JSON.stringify(name)}: it is a built-in property name`,
      ]);
    }
    for (const parameters of [new Map([["amount", "1"]]), new Uint8Array(0), new Date(0)]) {
      assert.deepEqual(problems(calculationRuleRecordSchema.decode({ ...rule, parameters })), [
        "calculation_rule.parameters: it is not a plain object",
      ]);
    }
    assert.deepEqual(
      problems(irsLimitsSchema.decode({ year: 2026, limits: Object.assign(Object.create(null), { cap: "1" }) })),
      [],
    );
  });
});

describe("mapConcurrently()", () => {
  it("keeps at most `limit` calls in flight and returns results in input order", async () => {
    let inFlight = 0;
    let most = 0;
    const results = await mapConcurrently([5, 1, 4, 2, 3], 2, async (value, index) => {
      most = Math.max(most, ++inFlight);
      await new Promise((resolve) => setTimeout(resolve, value));
      inFlight--;
      return `${index}:${value}`;
    });
    assert.deepEqual(results, ["0:5", "1:1", "2:4", "3:2", "4:3"]);
    assert.equal(most, 2);
  });

  it("after a failure starts nothing new and rejects with it once started calls settle", async () => {
    const started: number[] = [];
    let settled = 0;
    await assert.rejects(
      mapConcurrently([1, 2, 3, 4, 5, 6], 2, async (value) => {
        started.push(value);
        await new Promise((resolve) => setTimeout(resolve, value === 1 ? 1 : 5));
        settled++;
        if (value === 1) throw new Error("first failed");
      }),
      /first failed/,
    );
    assert.deepEqual(started, [1, 2]);
    assert.equal(settled, 2);
  });
});
