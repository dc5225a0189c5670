// AWS SDK errors without credentials: redacted messages, and causes kept as
// they are unless they show signing material.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { describeAwsError, redactCredentials, safeCause } from "../../src/persistence/aws_errors.ts";

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
});
