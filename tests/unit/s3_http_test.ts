// The HTTP layer of the store's own S3 client: GETs through fetch on Deno,
// everything else through node:http, network failures retried either way.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import type net from "node:net";
import { describe, it } from "node:test";
import { FileStoreError, S3FileStore } from "../../mod.ts";
import { GetThroughFetchHandler, ownRequestHandler, type RoutedHandlers } from "../../src/persistence/s3_http.ts";
import { useLocalAwsCredentials } from "../support/gate.ts";
import { FakeServer, freePort } from "../support/net.ts";

useLocalAwsCredentials();

type Request = Parameters<GetThroughFetchHandler["handle"]>[0];

const request = (method: string) => ({ method, protocol: "http:", hostname: "h", path: "/", headers: {} }) as Request;

/** Two fake handlers that record what reached them; `get` throws `getFails` when given. */
function fakeHandlers(getFails?: unknown): { handlers: RoutedHandlers; log: string[] } {
  const log: string[] = [];
  const answer = (name: string) => (request: Request) => {
    log.push(`${name} ${request.method}`);
    if (name === "get" && getFails !== undefined) return Promise.reject(getFails);
    return Promise.resolve({ response: { statusCode: 200, headers: {} } } as never);
  };
  const handler = (name: string) => ({
    handle: answer(name),
    destroy: () => log.push(`${name} destroy`),
    updateHttpClientConfig: (key: string, value: unknown) => log.push(`${name} ${key}=${value}`),
    httpHandlerConfigs: () => ({ requestTimeout: 7 }),
  });
  return { handlers: { get: handler("get"), other: handler("other") }, log };
}

/** A fake S3 that resets its first `resets` connections, then answers every ranged GET of `body` with a 206. */
function flakyS3(body: Uint8Array, resets: number): FakeServer {
  const sha256 = createHash("sha256").update(body).digest("hex");
  return new FakeServer((socket: net.Socket, index: number) => {
    socket.once("data", () => {
      if (index < resets) return socket.resetAndDestroy();
      socket.write(
        "HTTP/1.1 206 Partial Content\r\n" +
          `Content-Length: ${body.length}\r\nContent-Range: bytes 0-${body.length - 1}/${body.length}\r\n` +
          `ETag: "e1"\r\nx-amz-meta-sha256: ${sha256}\r\nConnection: close\r\n\r\n`,
      );
      socket.end(body);
    });
  });
}

describe("GetThroughFetchHandler", () => {
  it("sends GETs to the fetch handler and every other method to the node:http one", async () => {
    const { handlers, log } = fakeHandlers();
    const handler = new GetThroughFetchHandler(handlers);
    for (const method of ["GET", "PUT", "HEAD", "POST", "DELETE"]) await handler.handle(request(method));
    assert.deepEqual(log, ["get GET", "other PUT", "other HEAD", "other POST", "other DELETE"]);
  });

  it("turns fetch's TypeError into a retryable NetworkError that keeps it as cause and says why", async () => {
    const cause = new Error("error sending request for url (http://h/b/k): tcp connect error: Connection refused");
    const refused = new TypeError("fetch failed", { cause });
    const handler = new GetThroughFetchHandler(fakeHandlers(refused).handlers);
    await assert.rejects(handler.handle(request("GET")), (error: Error & { $retryable?: unknown }) => {
      assert.equal(error.name, "NetworkError");
      assert.equal(error.message, "tcp connect error: Connection refused");
      assert.equal(error.cause, refused);
      assert.deepEqual(error.$retryable, {});
      return true;
    });
  });

  it("passes any other failure of the fetch handler on as it is", async () => {
    const aborted = Object.assign(new Error("Request aborted"), { name: "AbortError" });
    const handler = new GetThroughFetchHandler(fakeHandlers(aborted).handlers);
    await assert.rejects(handler.handle(request("GET")), (error) => error === aborted);
  });

  it("passes settings to both handlers, reads the node:http one's, and destroys both", () => {
    const { handlers, log } = fakeHandlers();
    const handler = new GetThroughFetchHandler(handlers);
    handler.updateHttpClientConfig("requestTimeout", 5);
    assert.deepEqual(handler.httpHandlerConfigs(), { requestTimeout: 7 });
    handler.destroy();
    assert.deepEqual(log, ["get requestTimeout=5", "other requestTimeout=5", "get destroy", "other destroy"]);
  });

  it("ownRequestHandler() routes GETs through fetch on Deno only", () => {
    const handler = ownRequestHandler();
    assert.equal(handler instanceof GetThroughFetchHandler, "Deno" in globalThis);
    handler?.destroy();
  });
});

describe("S3FileStore's own client, against a fake S3", () => {
  it("read() retries a GET whose connection was reset and returns the verified bytes", async () => {
    const body = new TextEncoder().encode("id,hours\n1,40\n");
    const server = flakyS3(body, 1);
    const port = await server.listen();
    const files = new S3FileStore({ bucket: "bkt", region: "us-east-1", endpointUrl: `http://127.0.0.1:${port}` });
    try {
      assert.deepEqual(await files.read("in/a.csv"), body);
      assert.equal(server.accepted, 2, "the reset attempt, then the retry");
    } finally {
      files.close();
      await server.close();
    }
  });

  it("read() from an endpoint where nothing listens fails with a FileStoreError after the SDK's retries", async () => {
    const port = await freePort();
    const files = new S3FileStore({ bucket: "bkt", region: "us-east-1", endpointUrl: `http://127.0.0.1:${port}` });
    try {
      await assert.rejects(files.read("in/a.csv"), (error: Error) => {
        assert.equal(error.constructor, FileStoreError);
        assert.match(error.message, /^Failed to read file "in\/a\.csv" from bucket "bkt": the request failed \(/);
        assert.match(error.message, /refused/i);
        assert.ok(error.cause instanceof Error);
        return true;
      });
    } finally {
      files.close();
    }
  });
});
