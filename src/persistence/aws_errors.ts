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

import { quote } from "../core/errors.ts";

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
  let redacted = text;
  for (const secret of secrets) {
    // Real secrets are long (a secret access key is 40 characters); a short one ("test" for a local endpoint)
    // would only blank out ordinary words.
    if (secret.length < MIN_SECRET_LENGTH) continue;
    redacted = redacted.replaceAll(secret, "[redacted]").replaceAll(encodeURIComponent(secret), "[redacted]");
  }
  return redacted.replace(SIGNING_FIELD, "$1$2[redacted]").replace(SIGNING_ELEMENT, "<$1>[redacted]")
    .replace(ACCESS_KEY_ID, "[redacted]");
}

/**
 * An SDK error as message text: its name (or Node's error code), the
 * attempts it took, and its message on one line without a final period, cut
 * to 300 characters, with signing material and the given secrets removed.
 *
 * @param error What the SDK threw.
 * @param secrets Values known to be secret.
 * @returns The text.
 */
export function describeAwsError(error: unknown, secrets: readonly string[] = []): string {
  if (!(error instanceof Error)) return `non-error thrown: ${quote(redactCredentials(String(error), secrets))}`;
  const attempts = (error as { $metadata?: { attempts?: number } }).$metadata?.attempts;
  const code = (error as { code?: unknown }).code;
  const name = error.name !== "Error" ? error.name : typeof code === "string" ? code : "";
  const message = redactCredentials(error.message, secrets).replace(/\s+/g, " ").trim().replace(/\.+$/, "");
  const shown = message.length > 300 ? `${message.slice(0, 297)}...` : message;
  const head = [name, attempts !== undefined && attempts > 1 ? `after ${attempts} attempts` : ""]
    .filter((part) => part !== "").join(" ");
  return head === "" ? shown : shown === "" ? head : `${head}: ${shown}`;
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
  return redactedCopy(error, secrets, 0);
}

function redactedCopy(error: object, secrets: readonly string[], depth: number): Error {
  const source = error as { name?: unknown; message?: unknown; cause?: unknown };
  const name = typeof source.name === "string" ? source.name : "Error";
  const message = redactCredentials(typeof source.message === "string" ? source.message : "", secrets);
  const nested = source.cause;
  const cause = typeof nested === "object" && nested !== null && depth < MAX_DEPTH
    ? redactedCopy(nested, secrets, depth + 1)
    : undefined;
  const copy = new Error(message, cause === undefined ? undefined : { cause });
  copy.name = name;
  copy.stack = `${name}: ${message}`;
  for (const property of KEPT_PROPERTIES) {
    if (property in error) {
      (copy as unknown as Record<string, unknown>)[property] = (error as Record<string, unknown>)[property];
    }
  }
  return copy;
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
