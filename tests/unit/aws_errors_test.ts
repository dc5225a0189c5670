// AWS SDK errors without credentials: redacted messages, and causes kept as
// they are unless they show signing material.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConditionalCheckFailedException, DynamoDBClient, ResourceNotFoundException } from "@aws-sdk/client-dynamodb";
import {
  awsAttempts,
  awsErrorName,
  type AwsFailure,
  awsHttpStatus,
  type AwsTarget,
  classifyAwsError,
  clientTarget,
  describeAwsError,
  redactCredentials,
  safeCause,
} from "../../src/persistence/aws_errors.ts";
import { redactedError, redactSecrets } from "../../src/core/errors.ts";

const TOKEN = "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJH+token==";

describe("aws_errors", () => {
  it("redactCredentials() removes header, query and XML forms of signing material, keeping the names", () => {
    assert.equal(
      redactCredentials(`x-amz-security-token:${TOKEN}\nx-amz-date:20260101T000000Z`),
      "x-amz-security-token:[redacted]\nx-amz-date:20260101T000000Z",
    );
    assert.equal(
      redactCredentials(`?X-Amz-Security-Token=${encodeURIComponent(TOKEN)}&X-Amz-Credential=AKIAABCDEFGHIJKLMNOP`),
      "?X-Amz-Security-Token=[redacted]&X-Amz-Credential=[redacted]",
    );
    assert.equal(
      redactCredentials("Credential=ASIAABCDEFGHIJKLMNOP/20260101/us-east-1, Signature=abc123"),
      "Credential=[redacted], Signature=[redacted]",
    );
    assert.equal(redactCredentials(`<Token-0>${TOKEN}</Token-0>`), "<Token-0>[redacted]</Token-0>");
    assert.equal(
      redactCredentials("The security token included in the request is invalid"),
      "The security token included in the request is invalid",
    );
  });

  it("redactCredentials() removes known secrets, plain and URL-encoded, but not short ones", () => {
    const secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    assert.equal(
      redactCredentials(`a ${secret} b ${encodeURIComponent(secret)}`, [secret]),
      "a [redacted] b [redacted]",
    );
    assert.equal(redactCredentials("latest test", ["test"]), "latest test");
  });

  it("describeAwsError() names the error and its attempts on one redacted line", () => {
    const error = Object.assign(new Error(`The signature does not match.\n\nx-amz-security-token:${TOKEN}\n`), {
      name: "InvalidSignatureException",
      $metadata: { attempts: 2 },
    });
    assert.equal(
      describeAwsError(error),
      "InvalidSignatureException after 2 attempts: The signature does not match. x-amz-security-token:[redacted]",
    );
  });

  it("safeCause() keeps a clean error as it is", () => {
    const error = Object.assign(new Error("Rate exceeded"), {
      name: "ThrottlingException",
      $metadata: { attempts: 3 },
    });
    assert.equal(safeCause(error), error);
    assert.equal(safeCause("text"), "text");
  });

  it("safeCause() replaces an error showing signing material by a redacted copy keeping name and $metadata", () => {
    const error = Object.assign(new Error("The request signature we calculated does not match"), {
      name: "SignatureDoesNotMatch",
      $fault: "client",
      $metadata: { httpStatusCode: 403, attempts: 1 },
      CanonicalRequest: `GET\n/\n\nx-amz-security-token:${TOKEN}`,
    });
    const copy = safeCause(error) as Error & Record<string, unknown>;
    assert.notEqual(copy, error);
    assert.equal(copy.name, "SignatureDoesNotMatch");
    assert.equal(copy.message, "The request signature we calculated does not match");
    assert.deepEqual(copy.$metadata, { httpStatusCode: 403, attempts: 1 });
    assert.equal(copy.$fault, "client");
    assert.equal(copy.CanonicalRequest, undefined);
    assert.ok(!JSON.stringify(copy).includes(TOKEN) && !String(copy.stack).includes(TOKEN));
  });

  it("safeCause() replaces an error carrying raw bytes, or a credential-named field, or a dirty nested cause", () => {
    const parse = Object.assign(new Error("Parse Error: Expected HTTP/"), {
      code: "HPE_INVALID_CONSTANT",
      rawPacket: new TextEncoder().encode(`x-amz-security-token: ${TOKEN}`),
    });
    const copy = safeCause(parse) as Error & Record<string, unknown>;
    assert.equal(copy.code, "HPE_INVALID_CONSTANT");
    assert.equal(copy.rawPacket, undefined);

    const token = Object.assign(new Error("The provided token is malformed"), {
      name: "InvalidToken",
      "Token-0": TOKEN,
    });
    assert.equal((safeCause(token) as Record<string, unknown>)["Token-0"], undefined);

    const outer = new Error("socket hang up", { cause: parse });
    const outerCopy = safeCause(outer) as Error;
    assert.notEqual(outerCopy, outer);
    assert.equal((outerCopy.cause as Error).message, "Parse Error: Expected HTTP/");
    assert.equal((outerCopy.cause as Record<string, unknown>).rawPacket, undefined);
  });

  describe("with the request's target", () => {
    const LOCAL: AwsTarget = {
      service: "DynamoDB",
      endpoint: "http://127.0.0.1:4566",
      region: "us-east-1",
      table: "bluestar-processing-pipeline-dev",
      tableSuffix: "-dev",
    };
    const missing = () => new ResourceNotFoundException({ message: "Requested resource not found", $metadata: {} });

    /** What the SDK throws when an answer does not parse: the response kept as `$response`, no `$fault`. */
    function foreignAnswer(attempts: number): Error {
      const error = Object.assign(
        new SyntaxError(
          `Unexpected token '<', "<!doctype "... is not valid JSON\n  Deserialization error: to see the raw response, ` +
            "inspect the hidden field {error}.$response on this object.",
        ),
        { $metadata: { httpStatusCode: 500, attempts } },
      );
      Object.defineProperty(error, "$response", {
        value: { statusCode: 500, headers: { "content-type": "text/html; charset=utf-8" }, body: "<!doctype html>" },
        enumerable: false,
      });
      return error;
    }

    it("a missing table names the table, the suffix, where it was looked for, and the seed command", () => {
      assert.equal(
        describeAwsError(missing(), [], LOCAL),
        'table "bluestar-processing-pipeline-dev" does not exist at endpoint "http://127.0.0.1:4566" in region ' +
          '"us-east-1" (ResourceNotFoundException); create the tables of table suffix "-dev" with ' +
          "`deno task seed --endpoint-url http://127.0.0.1:4566 --region us-east-1 --table-suffix -dev`",
      );
      // On AWS itself, without a suffix: only the region.
      assert.equal(
        describeAwsError(missing(), [], { service: "DynamoDB", region: "eu-west-1", table: "bluestar-audit-log" }),
        'table "bluestar-audit-log" does not exist in region "eu-west-1" (ResourceNotFoundException); ' +
          'create the tables of table suffix "" with `deno task seed --region eu-west-1`',
      );
      // A word the shell would split or unquote is quoted.
      assert.match(
        describeAwsError(missing(), [], { ...LOCAL, endpoint: "http://127.0.0.1:4566/it's" }),
        /`deno task seed --endpoint-url 'http:\/\/127\.0\.0\.1:4566\/it'\\''s' --region us-east-1 --table-suffix -dev`$/,
      );
      // Without the target, or without a table, the SDK's words as before.
      assert.equal(describeAwsError(missing()), "ResourceNotFoundException: Requested resource not found");
      assert.equal(
        describeAwsError(missing(), [], { ...LOCAL, table: undefined }),
        "ResourceNotFoundException: Requested resource not found",
      );
    });

    it("an answer that is not DynamoDB's says the endpoint answered, naming the endpoint and the region", () => {
      const target: AwsTarget = { ...LOCAL, region: "xx-fake-9" };
      assert.equal(
        describeAwsError(foreignAnswer(3), [], target),
        'the endpoint "http://127.0.0.1:4566" (region "xx-fake-9") answered with something that is not a DynamoDB ' +
          'response (HTTP 500; content type "text/html; charset=utf-8"; SyntaxError after 3 attempts: Unexpected ' +
          `token '<', "<!doctype "... is not valid JSON); check the endpoint URL and the region`,
      );
      assert.match(
        describeAwsError(foreignAnswer(1), [], { service: "DynamoDB", region: "xx-fake-9" }),
        /^AWS's endpoint \(region "xx-fake-9"\) answered with something that is not a DynamoDB response \(HTTP 500;/,
      );
      // A service error keeps its response too, but it is DynamoDB's answer: described as before.
      const lost = new ConditionalCheckFailedException({ message: "The conditional request failed", $metadata: {} });
      Object.defineProperty(lost, "$response", { value: { statusCode: 400, headers: {} }, enumerable: false });
      assert.equal(
        describeAwsError(lost, [], target),
        "ConditionalCheckFailedException: The conditional request failed",
      );
      assert.match(describeAwsError(foreignAnswer(3)), /^SyntaxError after 3 attempts: Unexpected token/);
    });

    it("clientTarget() names the endpoint as the SDK parsed it, without user info, and the region", async () => {
      const local = new DynamoDBClient({ endpoint: "http://admin:pw@127.0.0.1:4566", region: "xx-fake-9" });
      assert.deepEqual(await clientTarget("DynamoDB", local.config), {
        service: "DynamoDB",
        endpoint: "http://127.0.0.1:4566",
        region: "xx-fake-9",
      });
      const aws = new DynamoDBClient({ region: "eu-west-1" });
      assert.deepEqual(await clientTarget("DynamoDB", aws.config), { service: "DynamoDB", region: "eu-west-1" });
      // A region that does not resolve is left out.
      const failing = () => Promise.reject(new Error("Region is missing"));
      assert.deepEqual(await clientTarget("S3", { region: failing }), { service: "S3" });
      local.destroy();
      aws.destroy();
    });
  });
});

describe("classifyAwsError(): one classification for the store, S3 and the seed", () => {
  const sdk = (name: string, status?: number, extra: Record<string, unknown> = {}) =>
    Object.assign(new Error(`${name} happened`), {
      name,
      ...(status === undefined ? {} : { $fault: "client", $metadata: { httpStatusCode: status, attempts: 2 } }),
      ...extra,
    });

  it("names each kind of failure", () => {
    const cases: Array<[unknown, AwsFailure]> = [
      [sdk("CredentialsProviderError"), "no-credentials"],
      [sdk("NoSuchBucket", 404), "no-such-bucket"],
      [sdk("ResourceNotFoundException", 400), "no-such-table"],
      [sdk("SignatureDoesNotMatch", 403), "credentials-rejected"],
      [sdk("UnrecognizedClientException", 400), "credentials-rejected"],
      [sdk("ExpiredTokenException", 400), "credentials-rejected"],
      [sdk("AccessDenied", 403), "access-denied"],
      [sdk("AccessDeniedException", 400), "access-denied"],
      [sdk("Forbidden", 403), "access-denied"],
      [sdk("PreconditionFailed", 412), "precondition"],
      [sdk("SlowDown", 503), "throttled"],
      [sdk("TimeoutError"), "timed-out"],
      [sdk("AbortError"), "aborted"],
      [sdk("Error", undefined, { code: "ECONNREFUSED" }), "unreachable"],
      [sdk("Error", undefined, { code: "ENOTFOUND" }), "unreachable"],
      [sdk("SyntaxError", undefined, { $response: { statusCode: 500 } }), "foreign-answer"],
      [sdk("InternalError", 500), "refused"],
      [new TypeError("bad config"), "client"],
      ["a string", "client"],
      [null, "client"],
    ];
    for (const [error, failure] of cases) assert.equal(classifyAwsError(error), failure, String(failure));
  });

  it("reads the name, status and attempts an SDK error carries, and none from what is not one", () => {
    const error = sdk("SlowDown", 503);
    assert.equal(awsErrorName(error), "SlowDown");
    assert.equal(awsHttpStatus(error), 503);
    assert.equal(awsAttempts(error), 2);
    for (const value of [null, undefined, "x", {}]) {
      assert.equal(awsErrorName(value), "Error");
      assert.equal(awsHttpStatus(value), undefined);
      assert.equal(awsAttempts(value), undefined);
    }
  });
});

describe("core secret scrubbing: redactSecrets() and redactedError()", () => {
  it("replaces each secret, as given and URL-encoded, by [redacted]; skips empty ones", () => {
    assert.equal(redactSecrets("pw p@ss p%40ss", ["p@ss", ""]), "pw [redacted] [redacted]");
    assert.equal(redactSecrets("nothing here", []), "nothing here");
  });

  it("copies an error with its message redacted, a bare stack, the kept fields and a redacted cause", () => {
    const inner = Object.assign(new Error("inner s3cret"), { code: "E1", rawPacket: new Uint8Array(4) });
    const outer = Object.assign(new Error("outer s3cret", { cause: inner }), { name: "AuthError", code: "E2" });
    const copy = redactedError(outer, (text) => redactSecrets(text, ["s3cret"]), ["code"]);
    assert.equal(copy.name, "AuthError");
    assert.equal(copy.message, "outer [redacted]");
    assert.equal(copy.stack, "AuthError: outer [redacted]");
    assert.equal((copy as { code?: unknown }).code, "E2");
    const cause = copy.cause as Error & { code?: unknown; rawPacket?: unknown };
    assert.equal(cause.message, "inner [redacted]");
    assert.equal(cause.code, "E1");
    assert.equal(cause.rawPacket, undefined);
    assert.equal(redactedError(outer, (text) => text, [], 0).cause, undefined);
  });
});
