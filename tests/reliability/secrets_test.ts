// Item 8: secrets stay secret. An AWS secret key and session token are planted
// as explicit credentials of the DynamoDB store, the seed's writer and the S3
// store, pointed at fake servers that answer 403 (echoing the request, as
// AWS' signature-mismatch answers do) or garbage, and at moto; a Redis
// password is planted in the URL of a cache whose server answers -WRONGPASS
// or hangs up. No error message, String(error), JSON of any error in the cause
// chain, its message or stack, no inspected error and no event passed to
// onEvent may contain a planted value.
//
// Issue 11, item 6: the same for URLs the library shows. A password planted
// in the userinfo of an endpoint or Redis URL reaches no ConfigError (of the
// configuration, the DynamoDB, S3 and Redis options, the seed's usage), no
// line the seed prints, and no view of `createPersistence().config`
// (console.log under Node and Deno, util.inspect, JSON.stringify), while the
// backends still connect with it.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Socket } from "node:net";
import { format, inspect } from "node:util";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { S3Client } from "@aws-sdk/client-s3";
import {
  type CacheEvent,
  ConfigError,
  createPersistence,
  type FileStoreEvent,
  MemoryCacheBackend,
  RedisCacheBackend,
  resolveConfig,
  S3FileStore,
} from "../../mod.ts";
import { main as seedMain, type SeedIo } from "../../scripts/seed_dynamodb.ts";
import { DynamoDBRulesStore, type RulesStoreEvent } from "../../src/persistence/dynamodb_backend.ts";
import { calculationRuleHistoryCodec, groupCalculationRules } from "../../src/persistence/items.ts";
import { ensureTables, writeItems } from "../../src/persistence/provision.ts";
import { createSeedClient, runSeed } from "../../src/persistence/seed.ts";
import { auditEntry, batchState, RULES_FIXTURE, uniqueId } from "../contract/fixtures.ts";
import { decodeSeed } from "../support/dynamodb.ts";
import { AWS_ENDPOINT_URL, integrationSuite, probe } from "../support/gate.ts";
import { FakeServer } from "../support/net.ts";
import { REGION } from "../support/s3.ts";
import { CONFIG_DIR } from "../support/seed_script.ts";

const unique = crypto.randomUUID().replaceAll("-", "");
/** What an AWS secret key looks like: 40 characters of base64, `/` and `+` included. */
const SECRET_KEY = `PLANTED/Secret+Key${unique}`.slice(0, 40);
/** What an STS session token looks like: long base64 with `/`, `+` and `=`. */
const SESSION_TOKEN = `PLANTED//Session+Token${unique}${
  "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJH".repeat(4)
}==`;
const ACCESS_KEY_ID = "ASIAPLANTED000000001";
const REDIS_PASSWORD = `PLANTED-redis-${unique}`;
const CREDENTIALS = { accessKeyId: ACCESS_KEY_ID, secretAccessKey: SECRET_KEY, sessionToken: SESSION_TOKEN };

/** Every planted value, as sent and as a URL or a query string would carry it. */
const SECRETS = [SECRET_KEY, SESSION_TOKEN, REDIS_PASSWORD].flatMap((secret) => [
  secret,
  encodeURIComponent(secret),
  // A fragment long enough to be a leak on its own (a message cut short still leaks what it shows).
  secret.slice(0, 24),
]);

/** Text of a value as JSON would show it, with bytes decoded, cycles and bigints tolerated. */
function jsonText(value: unknown): string {
  const seen = new WeakSet<object>();
  return JSON.stringify(value, (_key, item) => {
    if (typeof item === "bigint") return item.toString();
    if (item instanceof Uint8Array) return new TextDecoder().decode(item);
    if (typeof item === "object" && item !== null) {
      // Buffers reach the replacer already turned into { type: "Buffer", data: [...] }.
      if ((item as { type?: unknown }).type === "Buffer" && Array.isArray((item as { data?: unknown }).data)) {
        return new TextDecoder().decode(Uint8Array.from((item as { data: number[] }).data));
      }
      if (seen.has(item)) return "[cycle]";
      seen.add(item);
    }
    return item;
  }) ?? "";
}

/** Everything an error shows: per error of its cause chain, String(), message, stack, JSON; and the inspected whole. */
function errorTexts(error: unknown): string[] {
  const texts = [inspect(error, { depth: 12 })];
  const seen = new Set<unknown>();
  const pending: unknown[] = [error];
  while (pending.length > 0) {
    const current = pending.shift();
    if (current === undefined || current === null || seen.has(current)) continue;
    seen.add(current);
    texts.push(String(current), jsonText(current));
    if (typeof current === "object") {
      const { message, stack, cause, errors } = current as {
        message?: unknown;
        stack?: unknown;
        cause?: unknown;
        errors?: unknown;
      };
      texts.push(String(message), String(stack));
      pending.push(cause);
      if (Array.isArray(errors)) pending.push(...errors);
    }
  }
  return texts;
}

/** Where each text shows a planted value, with a little context. */
function leaksIn(texts: string[], where: string): string[] {
  const found: string[] = [];
  for (const text of texts) {
    for (const secret of SECRETS) {
      const at = text.indexOf(secret);
      if (at !== -1) found.push(`${where}: ...${text.slice(Math.max(0, at - 60), at + secret.length + 10)}...`);
    }
  }
  return [...new Set(found)];
}

/** Where the error, or an event (or the error it carries), shows a planted value. */
function leaks(error: unknown, events: readonly unknown[], where: string): string[] {
  assert.ok(error instanceof Error, `${where}: expected an error, got ${error}`);
  const found = leaksIn(errorTexts(error), where);
  for (const event of events) {
    const texts = [jsonText(event)];
    const carried = (event as { error?: unknown }).error;
    if (carried !== undefined) texts.push(...errorTexts(carried));
    found.push(...leaksIn(texts, `${where}: event ${(event as { type?: string }).type}`));
  }
  return [...new Set(found)];
}

async function failure(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  assert.fail("expected a rejection");
}

/** An HTTP server that answers every request with what `answer` builds from the request head. */
function httpServer(answer: (head: string, socket: Socket) => void): FakeServer {
  return new FakeServer((socket) => {
    let buffered = "";
    socket.on("data", (chunk: Uint8Array) => {
      buffered += new TextDecoder().decode(chunk);
      const end = buffered.indexOf("\r\n\r\n");
      if (end === -1) return;
      const head = buffered.slice(0, end);
      const length = Number(/content-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
      if (buffered.length < end + 4 + length) return;
      buffered = "";
      answer(head, socket);
    });
  });
}

function respond(socket: Socket, status: string, type: string, body: string): void {
  const bytes = new TextEncoder().encode(body);
  socket.write(`HTTP/1.1 ${status}\r\nContent-Type: ${type}\r\nContent-Length: ${bytes.length}\r\n\r\n`);
  socket.write(bytes);
}

/** The canonical request AWS echoes in a signature mismatch: every signed header, the session token included. */
function canonical(head: string): string {
  const [requestLine, ...headers] = head.split("\r\n");
  const [method, path] = requestLine.split(" ");
  const signed = headers.map((line) => line.replace(/:\s*/, ":").toLowerCase().replace(/^([^:]+):/, "$1:"))
    .map((line, index) => `${line.split(":")[0]}:${headers[index].replace(/^[^:]+:\s*/, "")}`);
  return `${method}\n${path}\n\n${signed.join("\n")}\n\nhost;x-amz-date;x-amz-security-token\nUNSIGNED-PAYLOAD`;
}

const xmlEscape = (text: string) => text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");

/** DynamoDB's (JSON protocol) answers: a signature mismatch that echoes the request, and a rejected token. */
const dynamoAnswers: Record<string, (head: string, socket: Socket) => void> = {
  "403 InvalidSignatureException echoing the canonical request": (head, socket) =>
    respond(
      socket,
      "400 Bad Request",
      "application/x-amz-json-1.0",
      JSON.stringify({
        __type: "com.amazon.coral.service#InvalidSignatureException",
        message: "The request signature we calculated does not match the signature you provided. " +
          "Check your AWS Secret Access Key and signing method. Consult the service documentation for details." +
          `\n\nThe Canonical String for this request should have been\n'${canonical(head)}'` +
          `\n\nThe String-to-Sign should have been\n'AWS4-HMAC-SHA256\n20260101T000000Z\n${head}'\n`,
      }),
    ),
  "403 UnrecognizedClientException naming the token": (_head, socket) =>
    respond(
      socket,
      "403 Forbidden",
      "application/x-amz-json-1.0",
      JSON.stringify({
        __type: "com.amazon.coral.service#UnrecognizedClientException",
        message: `The security token included in the request is invalid: X-Amz-Security-Token=${
          encodeURIComponent(SESSION_TOKEN)
        }&X-Amz-Credential=${ACCESS_KEY_ID}`,
      }),
    ),
  "a 200 whose body is garbage echoing the request": (head, socket) =>
    respond(socket, "200 OK", "application/x-amz-json-1.0", `<<not json>> ${head}`),
  "bytes that are not HTTP, echoing the request": (head, socket) => socket.end(`GARBAGE ${head}\r\n\r\n`),
};

/** S3's (XML) answers. */
const s3Answers: Record<string, (head: string, socket: Socket) => void> = {
  "403 SignatureDoesNotMatch echoing the canonical request": (head, socket) =>
    respond(
      socket,
      "403 Forbidden",
      "application/xml",
      `<?xml version="1.0" encoding="UTF-8"?><Error><Code>SignatureDoesNotMatch</Code>` +
        `<Message>The request signature we calculated does not match the signature you provided.</Message>` +
        `<AWSAccessKeyId>${ACCESS_KEY_ID}</AWSAccessKeyId><StringToSign>${xmlEscape(head)}</StringToSign>` +
        `<CanonicalRequest>${xmlEscape(canonical(head))}</CanonicalRequest><RequestId>R1</RequestId></Error>`,
    ),
  "403 InvalidToken naming the token": (_head, socket) =>
    respond(
      socket,
      "400 Bad Request",
      "application/xml",
      `<?xml version="1.0" encoding="UTF-8"?><Error><Code>InvalidToken</Code>` +
        `<Message>The provided token is malformed or otherwise invalid.</Message>` +
        `<Token-0>${xmlEscape(SESSION_TOKEN)}</Token-0><RequestId>R2</RequestId></Error>`,
    ),
  "a 500 whose body is garbage echoing the request": (head, socket) =>
    respond(socket, "500 Internal Server Error", "text/html", `<html><pre>${head}`),
  "bytes that are not HTTP, echoing the request": (head, socket) => socket.end(`GARBAGE ${head}\r\n\r\n`),
};

integrationSuite("Reliability: secrets stay secret", await probe(AWS_ENDPOINT_URL), () => {
  describe("AWS credentials against fake servers", () => {
    for (const [label, answer] of Object.entries(dynamoAnswers)) {
      it(`DynamoDB store and seed writer, ${label}: no error, cause or event shows the secret key or token`, async () => {
        const server = httpServer(answer);
        const port = await server.listen();
        const events: RulesStoreEvent[] = [];
        const endpointUrl = `http://127.0.0.1:${port}`;
        const store = new DynamoDBRulesStore({
          endpointUrl,
          region: REGION,
          credentials: CREDENTIALS,
          maxAttempts: 2,
          cache: new MemoryCacheBackend(),
          onEvent: (event) => events.push(event),
        });
        const client = new DynamoDBClient({
          endpoint: endpointUrl,
          region: REGION,
          credentials: CREDENTIALS,
          maxAttempts: 2,
        });
        try {
          const batchId = uniqueId("batch");
          const calls: Array<[string, () => Promise<unknown>]> = [
            ["getCalculationRule", () => store.getCalculationRule("ACME", "FICA_SS")],
            ["getPipeline", () => store.getPipeline("PLAN_A")],
            ["getIrsLimits", () => store.getIrsLimits(2026)],
            ["getBatchState", () => store.getBatchState(batchId)],
            ["saveBatchState", () => store.saveBatchState(batchId, batchState(batchId), { expectedVersion: 0 })],
            ["appendAuditEntry", () => store.appendAuditEntry(auditEntry(batchId, "e1"))],
            ["listAuditEntries", () => store.listAuditEntries(batchId)],
            [
              "writeItems",
              () =>
                writeItems(
                  client,
                  "bluestar-calculation-rules",
                  groupCalculationRules(RULES_FIXTURE.calculationRules!).map(calculationRuleHistoryCodec.toItem),
                ),
            ],
            ["ensureTables", () => ensureTables(client, "-secrets", { pollIntervalMs: 1, activeTimeoutMs: 100 })],
            ["runSeed", () => runSeed(client, decodeSeed(RULES_FIXTURE), { suffix: "-secrets" })],
          ];
          const found: string[] = [];
          for (const [name, call] of calls) found.push(...leaks(await failure(call()), events, `${name} (${label})`));
          assert.deepEqual(found, []);
          assert.ok(events.some((event) => event.type === "dynamodb.request"));
        } finally {
          await store.close();
          client.destroy();
          await server.close();
        }
      });
    }

    for (const [label, answer] of Object.entries(s3Answers)) {
      it(`S3 store, ${label}: no error, cause or event shows the secret key or token`, async () => {
        const server = httpServer(answer);
        const port = await server.listen();
        const events: FileStoreEvent[] = [];
        const client = new S3Client({
          endpoint: `http://127.0.0.1:${port}`,
          region: REGION,
          forcePathStyle: true,
          credentials: CREDENTIALS,
          maxAttempts: 2,
        });
        const files = new S3FileStore({ bucket: "secrets-bucket", client, onEvent: (event) => events.push(event) });
        try {
          const calls: Array<[string, () => Promise<unknown>]> = [
            ["read", () => files.read("in/a.csv")],
            ["write", () => files.write("in/a.csv", "id,amount\n1,2.50\n")],
            ["move", () => files.move("in/a.csv", "archive/a.csv")],
            ["listFiles", () => files.listFiles("in/")],
          ];
          const found: string[] = [];
          for (const [name, call] of calls) found.push(...leaks(await failure(call()), events, `${name} (${label})`));
          assert.deepEqual(found, []);
          assert.ok(events.some((event) => event.type === "error"));
        } finally {
          files.close();
          client.destroy();
          await server.close();
        }
      });
    }
  });

  describe("AWS credentials against moto", () => {
    it("the DynamoDB store on tables that do not exist and the S3 store on a missing bucket show no secret", async () => {
      const events: unknown[] = [];
      const store = new DynamoDBRulesStore({
        endpointUrl: AWS_ENDPOINT_URL,
        region: REGION,
        credentials: CREDENTIALS,
        tableSuffix: uniqueSuffixForSecrets(),
        onEvent: (event) => events.push(event),
      });
      const client = new S3Client({
        endpoint: AWS_ENDPOINT_URL,
        region: REGION,
        forcePathStyle: true,
        credentials: CREDENTIALS,
      });
      const files = new S3FileStore({
        bucket: uniqueId("no-such-bucket"),
        client,
        onEvent: (event) => events.push(event),
      });
      try {
        const batchId = uniqueId("batch");
        const calls: Array<[string, () => Promise<unknown>]> = [
          ["getCalculationRule", () => store.getCalculationRule("ACME", "FICA_SS")],
          ["saveBatchState", () => store.saveBatchState(batchId, batchState(batchId), { expectedVersion: 0 })],
          ["appendAuditEntry", () => store.appendAuditEntry(auditEntry(batchId, "e1"))],
          ["read", () => files.read("in/a.csv")],
          ["write", () => files.write("in/a.csv", "x")],
          ["move", () => files.move("in/a.csv", "out/a.csv")],
          ["listFiles", () => files.listFiles("")],
        ];
        const found: string[] = [];
        for (const [name, call] of calls) found.push(...leaks(await failure(call()), events, `${name} (moto)`));
        assert.deepEqual(found, []);
      } finally {
        await store.close();
        files.close();
        client.destroy();
      }
    });
  });

  describe("a Redis password", () => {
    const url = (port: number) => `redis://bluestar:${encodeURIComponent(REDIS_PASSWORD)}@127.0.0.1:${port}/0`;
    let wrongPass: FakeServer;
    let hangsUp: FakeServer;
    let wrongPassPort: number;
    let hangsUpPort: number;

    before(async () => {
      wrongPass = new FakeServer((socket) => {
        socket.on("data", () => socket.write("-WRONGPASS invalid username-password pair or user is disabled.\r\n"));
      });
      // Reads the HELLO / AUTH command (which carries the password), then closes the connection.
      hangsUp = new FakeServer((socket) => socket.once("data", () => socket.destroy()));
      wrongPassPort = await wrongPass.listen();
      hangsUpPort = await hangsUp.listen();
    });

    after(async () => {
      await wrongPass?.close();
      await hangsUp?.close();
    });

    for (
      const [label, port] of [["-WRONGPASS", () => wrongPassPort], [
        "a server that hangs up",
        () => hangsUpPort,
      ]] as const
    ) {
      it(`${label}: connect(), get, setex, delete and the store reading through the cache show no password`, async () => {
        const cacheEvents: CacheEvent[] = [];
        const storeEvents: RulesStoreEvent[] = [];
        const found = leaks(
          await failure(RedisCacheBackend.connect({ url: url(port()), connectTimeoutMs: 500 })),
          [],
          `connect (${label})`,
        );
        const cache = new RedisCacheBackend({
          url: url(port()),
          commandTimeoutMs: 200,
          connectTimeoutMs: 200,
          onEvent: (event) => cacheEvents.push(event),
        });
        const store = new DynamoDBRulesStore({
          endpointUrl: AWS_ENDPOINT_URL,
          region: REGION,
          credentials: CREDENTIALS,
          tableSuffix: uniqueSuffixForSecrets(),
          cache,
          cacheTimeoutMs: 300,
          onEvent: (event) => storeEvents.push(event),
        });
        try {
          found.push(...leaks(await failure(cache.get("k")), cacheEvents, `get (${label})`));
          found.push(...leaks(await failure(cache.setex("k", 60, { v: 1 })), cacheEvents, `setex (${label})`));
          found.push(...leaks(await failure(cache.delete("k")), cacheEvents, `delete (${label})`));
          // The store reads through the failing cache; its table does not exist, so the read fails too.
          found.push(...leaks(await failure(store.getIrsLimits(2026)), storeEvents, `store read (${label})`));
          assert.deepEqual(found, []);
          assert.ok(cacheEvents.some((event) => event.type === "cache.error"), "the cache reported its failures");
          assert.ok(
            storeEvents.some((event) => event.type === "cache.error"),
            "the store reported the cache's failure",
          );
        } finally {
          await store.close();
          await cache.close();
        }
      });
    }
  });
});

function uniqueSuffixForSecrets(): string {
  return `-secrets-${crypto.randomUUID().slice(0, 8)}`;
}

/** A password planted in URLs: it must show nowhere. */
const URL_PASSWORD = `PLANTED-url-password-${unique}`;

/** Deno's own inspect, which its console.log uses (absent under Node). */
const denoInspect = (globalThis as { Deno?: { inspect(value: unknown, options?: object): string } }).Deno?.inspect;

/** Every way a program shows a value: Node's and Deno's console.log, util.inspect (hidden fields too), JSON, String. */
function shownTexts(value: unknown): string[] {
  const texts = [
    format("%s %o %O", value, value, value),
    inspect(value, { depth: 8, showHidden: true }),
    JSON.stringify(value) ?? "",
    String(value),
  ];
  if (denoInspect !== undefined) texts.push(denoInspect(value, { depth: 8, showHidden: true }));
  return texts;
}

/** The message of what `call` throws, checked to be a ConfigError. */
function configErrorOf(call: () => unknown): string {
  try {
    call();
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${error}`);
    assert.equal(leaksOf(errorTexts(error)).length, 0, `the error shows the password: ${error.message}`);
    return error.message;
  }
  assert.fail("expected a ConfigError");
}

const leaksOf = (texts: string[]) => texts.filter((text) => text.includes(URL_PASSWORD));

describe("Reliability: no URL, configuration or seed line shows a password", () => {
  const env = { AWS_REGION: "us-east-1", BLUESTAR_S3_BUCKET: "bluestar-files-dev" };

  it("a configuration error shows a URL with its userinfo redacted, under the variable it came from", () => {
    const message = configErrorOf(() =>
      resolveConfig({}, {
        ...env,
        BLUESTAR_AWS_ENDPOINT_URL: `ftp://admin:${URL_PASSWORD}@host`,
        BLUESTAR_REDIS_URL: `http://user:${URL_PASSWORD}@cache:6379`,
      })
    );
    assert.match(message, /BLUESTAR_AWS_ENDPOINT_URL "ftp:\/\/\[redacted\]@host" is not an http or https URL/);
    assert.match(message, /BLUESTAR_REDIS_URL "http:\/\/\[redacted\]@cache:6379" is not a redis/);
    // A URL that does not parse could hold the password anywhere: none of it is shown.
    const unparsed = configErrorOf(() =>
      resolveConfig({}, { ...env, AWS_ENDPOINT_URL: `http://admin:${URL_PASSWORD}@host:port` })
    );
    assert.match(unparsed, /AWS_ENDPOINT_URL "http:\/\/\[redacted\]" is not/);
    configErrorOf(() => resolveConfig({ redisUrl: `redis://:${URL_PASSWORD}` }, env));
    assert.match(
      configErrorOf(() => resolveConfig({ endpointUrl: `http://admin:${URL_PASSWORD}@127.0.0.1:4566` }, env)),
      /endpointUrl "http:\/\/\[redacted\]@127\.0\.0\.1:4566" carries credentials/,
    );
  });

  it("the DynamoDB, S3 and Redis option errors show the URL with its userinfo redacted", () => {
    assert.match(
      configErrorOf(() => new DynamoDBRulesStore({ endpointUrl: `ftp://admin:${URL_PASSWORD}@host` })),
      /endpointUrl "ftp:\/\/\[redacted\]@host" is not an http or https URL/,
    );
    // An http(s) endpoint with userinfo is refused too (AWS endpoints never take it), shown redacted.
    for (
      const open of [
        (endpointUrl: string) => new DynamoDBRulesStore({ endpointUrl }),
        (endpointUrl: string) => new S3FileStore({ bucket: "bluestar-files", endpointUrl }),
      ]
    ) {
      assert.match(
        configErrorOf(() => open(`http://admin:${URL_PASSWORD}@127.0.0.1:4566`)),
        /endpointUrl "http:\/\/\[redacted\]@127\.0\.0\.1:4566" carries credentials/,
      );
    }
    assert.match(
      configErrorOf(() => new S3FileStore({ bucket: "bluestar-files", endpointUrl: `ftp://admin:${URL_PASSWORD}@h` })),
      /endpointUrl "ftp:\/\/\[redacted\]@h" is not an http or https URL/,
    );
    assert.match(
      configErrorOf(() => new RedisCacheBackend({ url: `redis://user:${URL_PASSWORD}@127.0.0.1:99999` })),
      /url "redis:\/\/\[redacted\]" is not a valid URL/,
    );
  });

  it("createPersistence().config shows no password however it is printed, and the cache connects with it", async () => {
    const received: string[] = [];
    const server = new FakeServer((socket) => {
      socket.on("data", (chunk: Uint8Array) => {
        received.push(new TextDecoder().decode(chunk));
        socket.write("-WRONGPASS invalid username-password pair or user is disabled.\r\n");
      });
    });
    const port = await server.listen();
    const redisUrl = `redis://bluestar:${URL_PASSWORD}@127.0.0.1:${port}/0`;
    const persistence = createPersistence({ backend: "memory", env: { BLUESTAR_REDIS_URL: redisUrl } });
    try {
      assert.equal(persistence.config.redisUrl, `redis://[redacted]@127.0.0.1:${port}/0`);
      assert.deepEqual(leaksOf(shownTexts(persistence.config)), []);
      assert.deepEqual(leaksOf(shownTexts({ ...persistence.config })), []);
      assert.deepEqual(leaksOf(shownTexts(persistence)), []);
      const aws = createPersistence({ env: { ...env, BLUESTAR_REDIS_URL: redisUrl } });
      try {
        assert.equal(aws.config.redisUrl, `redis://[redacted]@127.0.0.1:${port}/0`);
        assert.deepEqual(leaksOf(shownTexts(aws.config)), []);
        assert.deepEqual(leaksOf(shownTexts(aws)), []);
      } finally {
        await aws.close();
      }
      // The cache authenticates with the password as given.
      const error = await failure(persistence.cache!.get("k"));
      assert.deepEqual(leaks(error, [], "get"), []);
      assert.ok(received.join("").includes(URL_PASSWORD), "the password was sent to Redis");
    } finally {
      await persistence.close();
      await server.close();
    }
  });

  it("the seed refuses an endpoint with userinfo, for a plan and a run, showing it redacted; nothing is sent", async () => {
    const endpointUrl = `http://admin:${URL_PASSWORD}@127.0.0.1:4566`;
    const targets: Array<string | undefined> = [];
    const io = () => {
      const lines: string[] = [];
      const recorder: SeedIo & { lines: string[] } = {
        lines,
        out: (line) => lines.push(line),
        err: (line) => lines.push(line),
        env: {},
        createClient: (target) => {
          targets.push(target.endpointUrl);
          // Refuses every request, so the run stops at its first one.
          return { send: () => Promise.reject(new Error("refused")), destroy: () => {} } as unknown as DynamoDBClient;
        },
      };
      return recorder;
    };
    // AWS endpoints never take userinfo (requests are signed with the credential chain's): refused, not ignored.
    const refused = /^Invalid endpoint URL "http:\/\/\[redacted\]@127\.0\.0\.1:4566": it carries credentials/;
    const plan = io();
    assert.equal(await seedMain(["--config-dir", CONFIG_DIR, "--endpoint-url", endpointUrl, "--dry-run"], plan), 2);
    assert.match(plan.lines[0], refused);
    const run = io();
    assert.equal(await seedMain(["--config-dir", CONFIG_DIR, "--endpoint-url", endpointUrl], run), 2);
    assert.match(run.lines[0], refused);
    assert.deepEqual(targets, [], "no client is created");
    assert.throws(() => createSeedClient({ region: "us-east-1", endpointUrl }), { message: refused });
    const usage = io();
    assert.equal(await seedMain(["--endpoint-url", `ftp://admin:${URL_PASSWORD}@host`], usage), 2);
    assert.match(usage.lines[0], /^Invalid endpoint URL "ftp:\/\/\[redacted\]@host"/);
    assert.deepEqual(leaksOf([...plan.lines, ...run.lines, ...usage.lines]), []);
  });
});
