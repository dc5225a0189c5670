// Schemas: each is typed by its domain type, so the two cannot drift (the
// `@ts-expect-error` cases fail `deno check` and `deno test` if they compile),
// and decoding reports each problem's path and message apart.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  decodeRulesData,
  type Field,
  pipelineStepSchema,
  type Problem,
  problemText,
  type Schema,
  schema,
} from "../../src/core/schema.ts";
import { RULES_FIXTURE } from "../contract/fixtures.ts";

interface Point {
  x: number;
  y: number;
  label?: string;
}

const finite: Field<number> = (value, path, problems) => {
  if (!Number.isFinite(value)) problems.push({ path, message: "it is not a finite number" });
  return value as number;
};
const text: Field<string> = (value, path, problems) => {
  if (typeof value !== "string") problems.push({ path, message: "it is not a string" });
  return value as string;
};

describe("schema(): typed by its record type", () => {
  it("a shape with every field of the type, and only those, compiles and decodes", () => {
    const pointSchema: Schema<Point> = schema("point", { x: finite, y: finite, label: { optional: text } });
    assert.deepEqual(pointSchema.decode({ x: 1, y: 2 }), { ok: true, value: { x: 1, y: 2 } });
  });

  it("a shape missing a field of its type does not compile (it would reject every valid value)", () => {
    // @ts-expect-error `y` is a field of Point.
    const pointSchema: Schema<Point> = schema("point", { x: finite, label: { optional: text } });
    assert.deepEqual(pointSchema.decode({ x: 1, y: 2 }), {
      ok: false,
      problems: [{ path: "point.y", message: "it is not a field of this type" }],
    });
  });

  it("a shape with a field its type does not have does not compile", () => {
    // @ts-expect-error `z` is not a field of Point.
    const pointSchema: Schema<Point> = schema("point", { x: finite, y: finite, z: finite, label: { optional: text } });
    assert.equal(pointSchema.decode({ x: 1, y: 2 }).ok, false);
  });

  it("a field whose check returns another type than the field's does not compile", () => {
    // @ts-expect-error `y` is a number, `text` checks a string.
    const pointSchema: Schema<Point> = schema("point", { x: finite, y: text, label: { optional: text } });
    assert.equal(pointSchema.decode({ x: 1, y: 2 }).ok, false);
  });

  it("an optional field checked as required, or a required one as optional, does not compile", () => {
    // @ts-expect-error `label` is optional in Point.
    const required: Schema<Point> = schema("point", { x: finite, y: finite, label: text });
    // @ts-expect-error `y` is required in Point.
    const optional: Schema<Point> = schema("point", { x: finite, y: { optional: finite }, label: { optional: text } });
    assert.equal(required.decode({ x: 1, y: 2 }).ok, false);
    assert.equal(optional.decode({ x: 1 }).ok, true);
  });
});

describe("decoding: structured problems", () => {
  const step = RULES_FIXTURE.pipelineSteps![0];

  it("each problem has its path and its message apart; the text joins them as before", () => {
    const decoded = pipelineStepSchema.decode({ ...step, retry: { maxAttempts: 0, backoffSeconds: 5 }, extra: 1 });
    const expected: Problem[] = [
      { path: "pipeline_step.retry.maxAttempts", message: "it is not an integer from 1 to 100" },
      { path: "pipeline_step.extra", message: "it is not a field of this type" },
    ];
    assert.deepEqual(decoded, { ok: false, problems: expected });
    assert.deepEqual(expected.map(problemText), [
      "pipeline_step.retry.maxAttempts: it is not an integer from 1 to 100",
      "pipeline_step.extra: it is not a field of this type",
    ]);
  });

  it('decoded under the name "", paths are relative to the value', () => {
    assert.deepEqual(pipelineStepSchema.decode({ ...step, step: 0 }, ""), {
      ok: false,
      problems: [{ path: "step", message: "it is not an integer from 1 to 9999" }],
    });
    assert.deepEqual(pipelineStepSchema.decode(null, ""), {
      ok: false,
      problems: [{ path: "", message: "it is not an object" }],
    });
    assert.equal(problemText({ path: "", message: "it is not an object" }), "it is not an object");
  });

  it("a data set's problem names its record: collection, index and the field within it", () => {
    const steps = [step, { ...step, retry: { maxAttempts: 1 } }, step];
    const decoded = decodeRulesData({ pipelineSteps: steps as never });
    assert.deepEqual(decoded, {
      ok: false,
      problems: [
        {
          path: "pipelineSteps[1].retry.backoffSeconds",
          message: "it is missing",
          entry: { collection: "pipelineSteps", index: 1, field: "retry.backoffSeconds" },
        },
        {
          path: "pipelineSteps[2]",
          message: "it repeats the key of pipelineSteps[0]",
          entry: { collection: "pipelineSteps", index: 2, field: "" },
        },
      ],
    });
    assert.deepEqual(decodeRulesData({ pipelineSteps: {} as never }), {
      ok: false,
      problems: [{ path: "pipelineSteps", message: "it is not an array" }],
    });
  });

  it("a data set's records are named as the caller names them, in paths and in messages", () => {
    const decoded = decodeRulesData({ pipelineSteps: [step, step] }, (_, index) => `entry [${index}]`);
    assert.deepEqual(decoded, {
      ok: false,
      problems: [{
        path: "entry [1]",
        message: "it repeats the key of entry [0]",
        entry: { collection: "pipelineSteps", index: 1, field: "" },
      }],
    });
  });
});
