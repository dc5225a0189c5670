/**
 * AWS SDK errors turned into library messages and causes without credentials.
 *
 * AWS answers a signature mismatch by echoing what it expected to be signed:
 * the canonical request, with every signed header, the session token
 * (`x-amz-security-token`) among them. An S3 error body's fields become
 * properties of the SDK error (`CanonicalRequest`, `StringToSign`, an
 * `InvalidToken`'s `Token-0`), and a response that is not HTTP at all can
 * come back inside a parse error. So neither an SDK error's message nor the
 * error itself (its JSON, what `console.log` shows) may reach a caller as it
 * is: messages are redacted, and a cause that shows signing material (or
 * carries raw bytes from the wire) is replaced by a redacted copy.
 *
 * @module
 */

import { quote, REDACTED, redactedError, redactSecrets } from "../core/errors.ts";

/** Access key ids: not secret, but they name the key, so they are not shown either. */
const ACCESS_KEY_ID = /\b(?:AKIA|ASIA|AROA|AIDA)[A-Z0-9]{12,}\b/g;

/**
 * Signing material as header lines (`x-amz-security-token: ...`), query
 * parameters (`X-Amz-Security-Token=...`) or `Authorization` fields
 * (`Credential=...`, `Signature=...`): the name is kept, the value goes.
 */
const SIGNING_FIELD =
  /\b(x-amz-security-token|x-amz-credential|x-amz-signature|authorization|credential|signature|sessiontoken|security-token|token)(\s*[:=]\s*)[^\s,&"'<]+/gi;

/** The same fields as XML elements of an S3 error body (`<Token-0>...</Token-0>`, `<CanonicalRequest>...`). */
const SIGNING_ELEMENT = /<((?:[\w-]*token[\w-]*|canonicalrequest|stringtosign|signatureprovided))>[^<]*/gi;

/** Property names of an error that hold signing material (S3 copies its error body's fields onto the error). */
const SIGNING_PROPERTY = /token|secret|password|credential|signature|canonical|stringtosign|authorization/i;

/** The properties a redacted copy keeps: what retries, callers and tests read, none of it from the answer's body. */
const KEPT_PROPERTIES = ["$fault", "$metadata", "$retryable", "code", "errno", "syscall"] as const;

/** The shortest value treated as a secret. */
const MIN_SECRET_LENGTH = 16;

/** How deep the search for signing material goes into an error's properties and causes. */
const MAX_DEPTH = 4;

/**
 * Text with signing material and the given secrets replaced by
 * `[redacted]`.
 *
 * @param text The text.
 * @param secrets Values known to be secret (a secret access key, a session token); those under 16 characters are ignored.
 * @returns The redacted text.
 */
export function redactCredentials(text: string, secrets: readonly string[] = []): string {
  // Real secrets are long (a secret access key is 40 characters); a short one ("test" for a local endpoint)
  // would only blank out ordinary words.
  const redacted = redactSecrets(text, secrets.filter((secret) => secret.length >= MIN_SECRET_LENGTH));
  return redacted.replace(SIGNING_FIELD, `$1$2${REDACTED}`).replace(SIGNING_ELEMENT, `<$1>${REDACTED}`)
    .replace(ACCESS_KEY_ID, REDACTED);
}

/**
 * What an AWS SDK (or network) failure was, as every backend tells it:
 * the one classification the DynamoDB store, the S3 store and the seed
 * word their messages from.
 *
 * - `no-credentials`: the SDK's credential chain found none.
 * - `credentials-rejected`: AWS refused the key, the signature or the token.
 * - `access-denied`: the credentials are valid but not allowed (HTTP 403).
 * - `no-such-bucket`, `no-such-table`: the bucket or the DynamoDB table does not exist.
 * - `precondition`: a conditional request's condition failed (HTTP 412).
 * - `throttled`: S3 asked to slow down (HTTP 503).
 * - `timed-out`, `aborted`: the request took too long, or was aborted.
 * - `unreachable`: the endpoint refused or dropped the connection, or its host does not resolve.
 * - `foreign-answer`: something answered that is not the service (a web server, a proxy).
 * - `refused`: any other answer of the service (an HTTP status).
 * - `client`: anything else that failed before an answer (configuration, a bug).
 */
export type AwsFailure =
  | "no-credentials"
  | "credentials-rejected"
  | "access-denied"
  | "no-such-bucket"
  | "no-such-table"
  | "precondition"
  | "throttled"
  | "timed-out"
  | "aborted"
  | "unreachable"
  | "foreign-answer"
  | "refused"
  | "client";

/** Errors that mean the credentials, not the permissions, are wrong (S3's names, then DynamoDB's and STS's). */
const CREDENTIAL_ERRORS = new Set([
  "InvalidAccessKeyId",
  "SignatureDoesNotMatch",
  "ExpiredToken",
  "InvalidToken",
  "TokenRefreshRequired",
  "UnrecognizedClientException",
  "InvalidSignatureException",
  "ExpiredTokenException",
  "InvalidClientTokenId",
]);

/** Node's codes for an endpoint that cannot be reached. */
const UNREACHABLE_CODES = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "ECONNRESET",
  "ETIMEDOUT",
  "EHOSTUNREACH",
]);

/**
 * Classifies what the SDK threw (see {@linkcode AwsFailure}).
 *
 * @param error What the SDK threw.
 * @returns What kind of failure it is.
 *
 * @example Classify an S3 refusal
 * ```ts
 * import { classifyAwsError } from "./aws_errors.ts";
 *
 * const denied = Object.assign(new Error("Access Denied"), { name: "AccessDenied", $metadata: { httpStatusCode: 403 } });
 * console.assert(classifyAwsError(denied) === "access-denied");
 * console.assert(classifyAwsError(Object.assign(new Error("x"), { code: "ECONNREFUSED" })) === "unreachable");
 * ```
 */
export function classifyAwsError(error: unknown): AwsFailure {
  const name = awsErrorName(error);
  const status = awsHttpStatus(error);
  const code = (error as { code?: unknown } | null)?.code;
  if (name === "CredentialsProviderError") return "no-credentials";
  if (name === "NoSuchBucket") return "no-such-bucket";
  if (name === "ResourceNotFoundException") return "no-such-table";
  if (CREDENTIAL_ERRORS.has(name)) return "credentials-rejected";
  if (name === "AccessDenied" || name === "AccessDeniedException" || status === 403) return "access-denied";
  if (name === "PreconditionFailed" || status === 412) return "precondition";
  if (name === "SlowDown" || status === 503) return "throttled";
  if (name === "TimeoutError") return "timed-out";
  if (name === "AbortError") return "aborted";
  if (typeof code === "string" && UNREACHABLE_CODES.has(code)) return "unreachable";
  if (error instanceof Error && isForeignAnswer(error)) return "foreign-answer";
  return status === undefined ? "client" : "refused";
}

/**
 * Whether a failed request got a 5xx answer the SDK could not read as the
 * service's (no `$fault`): the SDK's retry strategy does not retry it (moto
 * answers so when concurrent updates of one DynamoDB item race inside it).
 *
 * @param error What the SDK threw.
 * @returns Whether it is such an answer.
 *
 * @example An unread 500
 * ```ts
 * import { isUnreadServerAnswer } from "./aws_errors.ts";
 *
 * console.assert(isUnreadServerAnswer(Object.assign(new Error("x"), { $response: { statusCode: 500 } })));
 * console.assert(!isUnreadServerAnswer(Object.assign(new Error("x"), { $fault: "server", $response: { statusCode: 500 } })));
 * ```
 */
export function isUnreadServerAnswer(error: unknown): boolean {
  const answer = error as { $fault?: unknown; $response?: { statusCode?: unknown } } | null | undefined;
  const status = answer?.$response?.statusCode;
  return answer?.$fault === undefined && typeof status === "number" && status >= 500;
}

/**
 * An SDK error's name (the service's exception name, such as
 * `"ProvisionedThroughputExceededException"`), or `"Error"` when it has none.
 *
 * @param error What the SDK threw.
 * @returns The name.
 */
export function awsErrorName(error: unknown): string {
  const name = (error as { name?: unknown } | null)?.name;
  return typeof name === "string" && name !== "" ? name : "Error";
}

/**
 * The HTTP status of the answer an SDK error came from, if any.
 *
 * @param error What the SDK threw.
 * @returns The status, or `undefined`.
 */
export function awsHttpStatus(error: unknown): number | undefined {
  const status = (error as { $metadata?: { httpStatusCode?: unknown } } | null)?.$metadata?.httpStatusCode;
  return typeof status === "number" ? status : undefined;
}

/**
 * How many attempts the SDK's retry strategy made for a failed request, or
 * `undefined` when it does not say. Above 1, an earlier attempt may have
 * landed with its answer lost.
 *
 * @param error What the SDK threw.
 * @returns The attempts, or `undefined`.
 */
export function awsAttempts(error: unknown): number | undefined {
  const attempts = (error as { $metadata?: { attempts?: unknown } } | null)?.$metadata?.attempts;
  return typeof attempts === "number" ? attempts : undefined;
}

/**
 * Where a request went, for messages. Nothing in it is secret: the endpoint
 * is rebuilt from the SDK's parse of it (see {@linkcode clientTarget}).
 */
export interface AwsTarget {
  /** The service, as messages name it. */
  service: "DynamoDB" | "S3";
  /** The endpoint the client sends to, without user info; absent for AWS's own endpoint of the region. */
  endpoint?: string;
  /** The region the client signs for. */
  region?: string;
  /** The DynamoDB table of the request. */
  table?: string;
  /** The suffix the table's name was built with (`bluestar-{name}{suffix}`). */
  tableSuffix?: string;
}

/** What a client's resolved configuration holds: providers (or values) of its endpoint and region. */
interface ClientConfig {
  endpoint?: unknown;
  region?: unknown;
}

/**
 * The endpoint and region a client sends to, from its resolved
 * configuration. The endpoint is rebuilt from the SDK's parse of the URL
 * (protocol, host, port, path), which keeps no user info, so credentials
 * in an endpoint URL never reach a message. What does not resolve is left
 * out.
 *
 * @param service The service, as messages name it.
 * @param config The client's `config`.
 * @returns The target, without table.
 */
export async function clientTarget(service: AwsTarget["service"], config: ClientConfig): Promise<AwsTarget> {
  const target: AwsTarget = { service };
  const resolve = async (provider: unknown): Promise<unknown> => {
    try {
      return typeof provider === "function" ? await provider() : provider;
    } catch {
      return undefined; // A region that does not resolve is the error itself, already in the message.
    }
  };
  const region = await resolve(config.region);
  if (typeof region === "string" && region !== "") target.region = region;
  const endpoint = await resolve(config.endpoint) as
    | { protocol?: unknown; hostname?: unknown; port?: unknown; path?: unknown }
    | undefined;
  if (typeof endpoint?.protocol === "string" && typeof endpoint.hostname === "string") {
    const port = endpoint.port === undefined ? "" : `:${String(endpoint.port)}`;
    const path = typeof endpoint.path === "string" && endpoint.path !== "/" ? endpoint.path : "";
    target.endpoint = `${endpoint.protocol}//${endpoint.hostname}${port}${path}`;
  }
  return target;
}

/**
 * An SDK error as message text: its name (or Node's error code), the
 * attempts it took, and its message on one line without a final period, cut
 * to 300 characters, with signing material and the given secrets removed.
 *
 * With the request's target, two answers a new user meets are said in
 * full: a DynamoDB table that does not exist names the table, its suffix,
 * where it was looked for, and the seed command that creates it; and an
 * endpoint that answered with something the SDK could not read as the
 * service's response (a web server, a proxy, a region the endpoint does not
 * serve) says so, naming the endpoint and the region.
 *
 * @param error What the SDK threw.
 * @param secrets Values known to be secret.
 * @param target Where the request went.
 * @returns The text.
 */
export function describeAwsError(error: unknown, secrets: readonly string[] = [], target?: AwsTarget): string {
  if (!(error instanceof Error)) return `non-error thrown: ${quote(redactCredentials(String(error), secrets))}`;
  const attempts = awsAttempts(error);
  const failure = classifyAwsError(error);
  const code = (error as { code?: unknown }).code;
  const name = error.name !== "Error" ? error.name : typeof code === "string" ? code : "";
  const after = attempts !== undefined && attempts > 1 ? `after ${attempts} attempts` : "";
  if (target?.service === "DynamoDB" && target.table !== undefined && failure === "no-such-table") {
    return `table ${quote(target.table)} does not exist ${where(target)} (${joined(name, after)}); ` +
      `create the tables of table suffix ${quote(target.tableSuffix ?? "")} with \`${seedCommand(target)}\``;
  }
  if (target !== undefined && failure === "foreign-answer") {
    const { statusCode, headers } = (error as { $response?: { statusCode?: unknown; headers?: unknown } }).$response!;
    const type = (headers as Record<string, unknown> | undefined)?.["content-type"];
    const answer = [
      typeof statusCode === "number" ? `HTTP ${statusCode}` : "",
      typeof type === "string" ? `content type ${quote(type)}` : "",
      // The SDK's own line only: what follows it is its hint to inspect `$response`.
      cut(`${joined(name, after)}: ${redactCredentials(error.message.split("\n")[0], secrets).trim()}`, 120),
    ].filter((part) => part !== "").join("; ");
    const endpoint = target.endpoint === undefined ? "AWS's endpoint" : `the endpoint ${quote(target.endpoint)}`;
    return `${endpoint} (region ${quote(target.region ?? "")}) answered with something that is not ` +
      `a ${target.service} response (${answer}); check the endpoint URL and the region`;
  }
  const message = redactCredentials(error.message, secrets).replace(/\s+/g, " ").trim().replace(/\.+$/, "");
  const shown = cut(message, 300);
  const head = joined(name, after);
  return head === "" ? shown : shown === "" ? head : `${head}: ${shown}`;
}

function joined(...parts: string[]): string {
  return parts.filter((part) => part !== "").join(" ");
}

function cut(text: string, length: number): string {
  return text.length > length ? `${text.slice(0, length - 3)}...` : text;
}

/**
 * Whether the SDK failed to read the answer as the service's: it kept the
 * response (`$response`) but no service error came of it (`$fault`, which
 * every modeled and unmodeled service error carries).
 */
function isForeignAnswer(error: Error): boolean {
  const response = (error as { $response?: unknown }).$response;
  return typeof response === "object" && response !== null && !("$fault" in error);
}

/** `at endpoint "http://127.0.0.1:4566" in region "us-east-1"`, or only the region for AWS's own endpoint. */
function where(target: AwsTarget): string {
  const region = `in region ${quote(target.region ?? "")}`;
  return target.endpoint === undefined ? region : `at endpoint ${quote(target.endpoint)} ${region}`;
}

/** The seed command that creates the tables of a target. */
function seedCommand(target: AwsTarget): string {
  const options = [
    ...(target.endpoint === undefined ? [] : ["--endpoint-url", target.endpoint]),
    ...(target.region === undefined ? [] : ["--region", target.region]),
    ...(target.tableSuffix === undefined || target.tableSuffix === "" ? [] : ["--table-suffix", target.tableSuffix]),
  ];
  return ["deno task seed", ...options.map(shellWord)].join(" ");
}

/** A word as a POSIX shell reads it back: as it is when plain, else single-quoted. */
function shellWord(word: string): string {
  return /^[A-Za-z0-9_.:/@%+=,-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}

/**
 * The `cause` to keep for an SDK error: the error itself when nothing in it
 * (message, stack, properties, nested causes) shows signing material or a
 * given secret; otherwise a redacted copy with its name, message and the
 * fields retries read (`$metadata`, `$fault`, `$retryable`, `code`), and a
 * redacted copy of its own cause.
 *
 * @param error What the SDK threw.
 * @param secrets Values known to be secret.
 * @returns The error, or its redacted copy.
 */
export function safeCause(error: unknown, secrets: readonly string[] = []): unknown {
  if (typeof error !== "object" || error === null || !showsSecrets(error, secrets, 0, new Set())) return error;
  return redactedError(error, (text) => redactCredentials(text, secrets), KEPT_PROPERTIES, MAX_DEPTH);
}

/** Whether a value, searched `MAX_DEPTH` deep, shows signing material or a secret. */
function showsSecrets(value: unknown, secrets: readonly string[], depth: number, seen: Set<unknown>): boolean {
  if (typeof value === "string") return textShowsSecrets(value, secrets);
  // Raw bytes from the wire (an HTTP parse error's `rawPacket`) are whatever the server sent: never kept.
  if (value instanceof Uint8Array) return value.length > 0;
  if (typeof value !== "object" || value === null || seen.has(value) || depth > MAX_DEPTH) return false;
  seen.add(value);
  const { message, stack, cause } = value as { message?: unknown; stack?: unknown; cause?: unknown };
  if (showsSecrets(message, secrets, depth, seen) || showsSecrets(stack, secrets, depth, seen)) return true;
  if (showsSecrets(cause, secrets, depth + 1, seen)) return true;
  for (const [name, property] of Object.entries(value)) {
    if (SIGNING_PROPERTY.test(name) && property !== undefined && property !== null && property !== "") return true;
    if (showsSecrets(property, secrets, depth + 1, seen)) return true;
  }
  return false;
}

function textShowsSecrets(text: string, secrets: readonly string[]): boolean {
  return redactCredentials(text, secrets) !== text;
}
