/**
 * The HTTP layer of the S3 clients `S3FileStore` creates for itself. On
 * Node it is the SDK's default (`node:http`). On Deno, `GET`s go through
 * `fetch` instead: its bodies are byte streams, which the store reads into
 * buffers of its own (BYOB reads), while Deno's `node:http` hands out a
 * fresh 64 KiB chunk per read that V8 frees late (with `bench/file_streams.ts`,
 * a 1 GiB `readStream` kept over 100 MiB resident that way, under 50 MiB
 * through `fetch`). Every other request stays on `node:http`, because
 * `fetch` copies a request body, and those copies are freed late too (a
 * 1 GiB `writeStream` grew by 250 MiB through `fetch`).
 *
 * @module
 */
import { S3Client, type S3ClientConfig } from "@aws-sdk/client-s3";
import { FetchHttpHandler } from "@smithy/fetch-http-handler";
import { NodeHttpHandler } from "@smithy/node-http-handler";

type HttpRequest = Parameters<NodeHttpHandler["handle"]>[0];
type HttpHandlerOptions = Parameters<NodeHttpHandler["handle"]>[1];
type HttpAnswer = Awaited<ReturnType<NodeHttpHandler["handle"]>>;
type FetchSetting = Parameters<FetchHttpHandler["updateHttpClientConfig"]>[0];
type NodeSetting = Parameters<NodeHttpHandler["updateHttpClientConfig"]>[0];

/** The two handlers a {@linkcode GetThroughFetchHandler} sends requests to. */
export interface RoutedHandlers {
  /** Takes the `GET`s. */
  get: Pick<FetchHttpHandler, "handle" | "destroy" | "updateHttpClientConfig">;
  /** Takes every other request. */
  other: Pick<NodeHttpHandler, "handle" | "destroy" | "updateHttpClientConfig" | "httpHandlerConfigs">;
}

/**
 * An SDK request handler that sends `GET`s through `fetch` and every other
 * request through `node:http`. A network failure of `fetch` (it rejects
 * with a bare `TypeError`, which the SDK would not retry) becomes a
 * `NetworkError` the SDK retries, as it retries `node:http`'s `ECONNRESET`
 * and kin.
 *
 * @example Give an S3 client the handler
 * ```ts
 * import { S3Client } from "@aws-sdk/client-s3";
 * import { GetThroughFetchHandler } from "./s3_http.ts";
 *
 * const client = new S3Client({ region: "us-east-1", requestHandler: new GetThroughFetchHandler() });
 * client.destroy();
 * ```
 */
export class GetThroughFetchHandler {
  /** What the SDK reads to tell the protocol. */
  readonly metadata: { handlerProtocol: string } = { handlerProtocol: "http/1.1" };
  readonly #handlers: RoutedHandlers;

  /**
   * @param handlers The two handlers.
   * @default {{ get: new FetchHttpHandler(), other: new NodeHttpHandler() }}
   */
  constructor(handlers: RoutedHandlers = { get: new FetchHttpHandler(), other: new NodeHttpHandler() }) {
    this.#handlers = handlers;
  }

  /**
   * Sends one request.
   *
   * @param request The signed request.
   * @param options The abort signal and timeout.
   * @returns The response.
   * @throws {Error} What the handler threw; a `fetch` network failure as a retryable `NetworkError` keeping it as cause.
   */
  async handle(request: HttpRequest, options?: HttpHandlerOptions): Promise<HttpAnswer> {
    if (request.method !== "GET") return await this.#handlers.other.handle(request, options);
    try {
      return await this.#handlers.get.handle(request, options);
    } catch (error) {
      // fetch rejects with a TypeError only when the request failed on the network.
      if (error instanceof TypeError) throw fetchNetworkError(error);
      throw error;
    }
  }

  /**
   * Passes a setting on to both handlers.
   *
   * @param key The setting.
   * @param value Its value.
   */
  updateHttpClientConfig(key: string, value: unknown): void {
    this.#handlers.get.updateHttpClientConfig(key as FetchSetting, value as never);
    this.#handlers.other.updateHttpClientConfig(key as NodeSetting, value as never);
  }

  /**
   * The settings of the `node:http` handler.
   *
   * @returns Them.
   */
  httpHandlerConfigs(): ReturnType<NodeHttpHandler["httpHandlerConfigs"]> {
    return this.#handlers.other.httpHandlerConfigs();
  }

  /** Closes both handlers' connections. */
  destroy(): void {
    this.#handlers.get.destroy();
    this.#handlers.other.destroy();
  }
}

/**
 * The request handler an `S3FileStore` gives the client it creates:
 * {@linkcode GetThroughFetchHandler} on Deno, the SDK's default elsewhere.
 *
 * @returns The handler, or `undefined` for the SDK's default.
 *
 * @example Configure a client
 * ```ts
 * import { S3Client } from "@aws-sdk/client-s3";
 * import { ownRequestHandler } from "./s3_http.ts";
 *
 * const handler = ownRequestHandler();
 * const client = new S3Client({ region: "us-east-1", ...(handler === undefined ? {} : { requestHandler: handler }) });
 * client.destroy();
 * ```
 */
export function ownRequestHandler(): GetThroughFetchHandler | undefined {
  return "Deno" in globalThis ? new GetThroughFetchHandler() : undefined;
}

/**
 * An S3 client with the HTTP layer of {@linkcode ownRequestHandler}: what
 * an `S3FileStore` creates when it is given no client.
 *
 * @param config The client's settings (no `requestHandler`).
 * @returns The client; whoever created it destroys it.
 *
 * @example Create the client a store would
 * ```ts
 * import { createOwnS3Client } from "./s3_http.ts";
 *
 * const client = createOwnS3Client({ region: "us-east-1" });
 * client.destroy();
 * ```
 */
export function createOwnS3Client(config: Omit<S3ClientConfig, "requestHandler">): S3Client {
  const requestHandler = ownRequestHandler();
  return new S3Client(requestHandler === undefined ? config : { ...config, requestHandler });
}

/**
 * `fetch`'s network failure as an error the SDK retries (`$retryable`).
 * Its message is why, from the cause: Deno's says "error sending request
 * for url (…): client error (Connect): tcp connect error: Connection
 * refused", and the URL, which the store's own errors name, goes.
 */
function fetchNetworkError(error: TypeError): Error {
  const why = error.cause instanceof Error
    ? error.cause.message.replace(/^error sending request for url \(.*?\): /, "")
    : "";
  const message = why === "" ? error.message : why;
  return Object.assign(new Error(message, { cause: error }), { name: "NetworkError", $retryable: {} });
}
