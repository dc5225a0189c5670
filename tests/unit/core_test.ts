// The contract's building blocks: errors, keys, decimals, JSON values.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  BlueStarError,
  cacheKey,
  canonicalDecimal,
  compareDecimals,
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
import { quote, redactUrl } from "../../src/core/errors.ts";
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
import {
  auditEntrySchema,
  batchStateSchema,
  calculationRuleRecordSchema,
  type Decoded,
  decodeRulesData,
  irsLimitsSchema,
  problemText,
  validationRuleRecordSchema,
} from "../../src/core/schema.ts";
import { auditEntry, batchState } from "../contract/fixtures.ts";

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

  it("redactUrl() replaces the userinfo of a URL and keeps scheme, host, port and path", () => {
    const cases: Array<[string, string]> = [
      ["ftp://admin:pw@host", "ftp://[redacted]@host"],
      ["http://admin:pw@127.0.0.1:4566", "http://[redacted]@127.0.0.1:4566"],
      ["rediss://user:p%40ss@cache.example:6380/2", "rediss://[redacted]@cache.example:6380/2"],
      ["redis://:pw@with@at@host/0", "redis://[redacted]@host/0"],
      ["redis://user@host", "redis://[redacted]@host"],
      ["http://127.0.0.1:4566", "http://127.0.0.1:4566"],
      ["http://host/a@b?c@d", "http://host/a@b?c@d"],
      ["HTTP://u:p@h\\x@y", "HTTP://[redacted]@h\\x@y"],
    ];
    for (const [url, shown] of cases) assert.equal(redactUrl(url), shown, url);
  });

  it("redactUrl() shows nothing but the scheme of text that is not a URL with a host", () => {
    const cases: Array<[unknown, string]> = [
      ["redis://user:s3cret", "redis://[redacted]"],
      ["http://user:pa/ss@host", "http://[redacted]"],
      ["redis://user:s3cret@127.0.0.1:99999", "redis://[redacted]"],
      ["admin:s3cret@host", "[redacted]"],
      ["not a url s3cret", "[redacted]"],
      ["localhost:4566", "[redacted]"],
      [42, "[redacted]"],
    ];
    for (const [url, shown] of cases) assert.equal(redactUrl(url), shown, String(url));
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
    assert.equal(cacheKey("-dev", "calculation", "ACME", "FICA"), "bluestar:v2:-dev:calculation:ACME:FICA");
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
        assert.ok(key.startsWith(`bluestar:v2:${namespace}:`), key);
        keys.add(key);
      }
    }
    assert.equal(keys.size, longest.length * (2 + longest.length * 3));
    assert.equal(cacheKey(namespace, "irs", 2026), `bluestar:v2:${namespace}:irs:2026`);
  });

  it("cacheKey() keeps a key within the limit readable and hashes only one past it", () => {
    const head = "bluestar:v2::calculation:";
    const fits = "a".repeat(MAX_CACHE_KEY_BYTES - head.length - 2);
    assert.equal(cacheKey("", "calculation", fits, "b"), `${head}${fits}:b`);
    const over = cacheKey("", "calculation", fits, "bc");
    assert.equal(over.length, MAX_CACHE_KEY_BYTES);
    assert.match(over, /^bluestar:v2::calculation:a+#[0-9a-f]{64}$/);
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

  it("compareDecimals() compares exactly, however many digits", () => {
    const ordered = [
      `-${"9".repeat(38)}`,
      "-1",
      "-0.00000000000000000001",
      "0",
      "0.00000000000000000001",
      "0.99999999999999999999",
      "1",
      "1.00000000000000000001",
      "10",
      "9".repeat(38),
    ];
    for (const [i, a] of ordered.entries()) {
      for (const [j, b] of ordered.entries()) {
        assert.equal(Math.sign(compareDecimals(a, b)), Math.sign(i - j), `${a} ${b}`);
      }
    }
    assert.equal(compareDecimals("-0.000", "0"), 0);
    assert.equal(compareDecimals("001.500", "1.5"), 0);
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
  const problems = (decoded: Decoded<unknown>) => (decoded.ok ? [] : decoded.problems.map(problemText));

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

  it("a rate is compared with 0 and 1 exactly, not through a float", () => {
    for (const rate of ["1.00000000000000000001", "-0.00000000000000000001", `1.${"0".repeat(36)}1`]) {
      assert.deepEqual(problems(calculationRuleRecordSchema.decode({ ...rule, parameters: { rate } })), [
        `calculation_rule.parameters.rate: the rate ${JSON.stringify(rate)} is outside [0, 1]`,
      ]);
    }
    for (const rate of ["0", "-0.000", "1", "1.000000000000000000000", "0.99999999999999999999"]) {
      assert.deepEqual(
        problems(calculationRuleRecordSchema.decode({ ...rule, parameters: { employerRate: rate } })),
        [],
      );
    }
  });

  it("a field named like a built-in property is unknown, and an inherited field is not the caller's", () => {
    for (const name of ["toString", "constructor", "hasOwnProperty", "valueOf", "__proto__"]) {
      assert.deepEqual(problems(auditEntrySchema.decode({ ...auditEntry("B1", "e1"), [name]: "x" })), [
        `audit_entry.${name}: it is not a field of this type`,
      ]);
    }
    const inherited = Object.create(batchState("B1"));
    inherited.batchId = "B1";
    assert.deepEqual(problems(batchStateSchema.decode(inherited)).length, 7);
    assert.match(problems(batchStateSchema.decode(inherited))[0], /batch_state\.clientId: it is missing/);
  });

  it("dates and timestamps name real days: nothing rolls over to the next month", () => {
    for (const effectiveFrom of ["2024-02-30", "2023-02-29", "2100-02-29", "2024-04-31", "2024-13-01", "2024-00-01"]) {
      assert.deepEqual(problems(calculationRuleRecordSchema.decode({ ...rule, effectiveFrom })), [
        `calculation_rule.effectiveFrom: the day ${JSON.stringify(effectiveFrom)} does not exist`,
      ]);
    }
    for (const effectiveTo of ["2024-02-29", "2000-02-29", "0000-02-29", "9999-12-31"]) {
      assert.deepEqual(problems(calculationRuleRecordSchema.decode({ ...rule, effectiveTo })), []);
    }
    const decoded = batchStateSchema.decode(batchState("B1", { updatedAt: "2024-02-30T10:00:00Z" }));
    assert.deepEqual(problems(decoded), ['batch_state.updatedAt: the day "2024-02-30" does not exist']);
  });

  it("a timestamp's stored form is what a read accepts: UTC, milliseconds, years 0000 to 9999", () => {
    const stored = (updatedAt: string) => {
      const decoded = batchStateSchema.decode(batchState("B1", { updatedAt }));
      return decoded.ok ? decoded.value.updatedAt : decoded.problems.map(problemText);
    };
    assert.equal(stored("2026-11-27T11:00:00+01:00"), "2026-11-27T10:00:00.000Z");
    assert.equal(stored("0001-01-01T00:00:00.5-00:30"), "0001-01-01T00:30:00.500Z");
    assert.deepEqual(stored("9999-12-31T23:30:00-01:00"), [
      'batch_state.updatedAt: it is "+010000-01-01T00:30:00.000Z" in UTC, outside the years 0000 to 9999',
    ]);
    assert.deepEqual(stored("0000-01-01T00:00:00+01:00"), [
      'batch_state.updatedAt: it is "-000001-12-31T23:00:00.000Z" in UTC, outside the years 0000 to 9999',
    ]);
    // Decoding the stored form again changes nothing: what was written is what a read accepts.
    for (const updatedAt of ["9999-12-31T23:59:59.999Z", "0000-01-01T00:00:00.000Z", "2024-02-29T12:00:00.000Z"]) {
      assert.equal(stored(updatedAt), updatedAt);
    }
  });

  it("free text is limited per field, in UTF-8 bytes", () => {
    const entry = (fields: Record<string, unknown>) =>
      problems(auditEntrySchema.decode({ ...auditEntry("B1", "e1"), ...fields }));
    assert.deepEqual(entry({ action: "€".repeat(1365) + "a" }), []);
    assert.deepEqual(entry({ actor: "€".repeat(1366) }), [
      "audit_entry.actor: it is 4098 bytes of UTF-8, over the limit of 4096",
    ]);
    const validation = {
      clientId: "GLOBAL",
      field: "ssn",
      ruleId: "r1",
      ruleType: "pattern",
      severity: "error",
      message: "m".repeat(16 * 1024 + 1),
      pattern: "p".repeat(16 * 1024),
    };
    assert.deepEqual(problems(validationRuleRecordSchema.decode(validation)), [
      "validation_rule.message: it is 16385 bytes of UTF-8, over the limit of 16384",
    ]);
  });

  it("a reference data set refuses a record, or the rules sharing an item, larger than a DynamoDB item", () => {
    const ruleOf = (ruleId: string) => ({
      clientId: "GLOBAL",
      field: "state",
      ruleId,
      ruleType: "enum",
      severity: "error",
      message: "m".repeat(16 * 1024),
      allowedValues: Array.from({ length: 30 }, (_, index) => `${index}`.padEnd(4000, "v")),
    });
    // Each rule is about 136 KB; the third one of the field makes its item too big.
    const decoded = decodeRulesData({ validationRules: [ruleOf("a"), ruleOf("b"), ruleOf("c")] as never });
    assert.equal(decoded.ok, false);
    assert.deepEqual(problems(decoded).length, 1);
    assert.match(
      problems(decoded)[0],
      /^validationRules\[2\]: it is \d+ bytes of JSON with the records before it that share its item, over the 400000/,
    );
    assert.equal(decodeRulesData({ validationRules: [ruleOf("a"), ruleOf("b")] as never }).ok, true);
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
