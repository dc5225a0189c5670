/**
 * What every file store does with streams and checksums alike: reading a
 * caller's source, chunk by chunk and checked; verifying content against
 * its SHA-256 as it goes; handing chunks out as a pull-based web stream.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { IntegrityError, InvalidInputError, quote } from "./errors.ts";
import type { FileSource } from "./protocols.ts";

/** A SHA-256 as a file store keeps it: 64 lowercase hex digits. */
export const SHA256_HEX: RegExp = /^[0-9a-f]{64}$/;

/**
 * The SHA-256 of some bytes, as 64 lowercase hex digits.
 *
 * @param data The bytes.
 * @returns The digest.
 *
 * @example Hash a file's content
 * ```ts
 * import { sha256Hex } from "./streams.ts";
 *
 * console.assert(sha256Hex(new Uint8Array()).startsWith("e3b0c442"));
 * ```
 */
export function sha256Hex(data: Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

/**
 * What a caller's source threw, wrapped so a backend can tell it from its
 * own failures (and say "the source failed", with the error as `cause`).
 */
export class SourceFailure extends Error {
  /**
   * Wraps what the source threw.
   *
   * @param cause What the source threw.
   */
  constructor(cause: unknown) {
    super("The source failed", { cause });
    this.name = "SourceFailure";
  }
}

/**
 * The chunks of a source, each checked to be a `Uint8Array`. What the source
 * throws comes out as a {@linkcode SourceFailure}. Ending early (a `break`,
 * a failure downstream) cancels a web stream and returns an iterator, so the
 * producer learns the write is off.
 *
 * @param source A web stream or an async iterable of bytes.
 * @param path The path written, for messages.
 * @returns The chunks, as the source gave them (not copied).
 * @throws {InvalidInputError} At once when the source is neither; on iteration when a chunk is not a `Uint8Array`.
 *
 * @example Read a stream's chunks
 * ```ts
 * import { sourceChunks } from "./streams.ts";
 *
 * const source = ReadableStream.from([Uint8Array.of(1), Uint8Array.of(2, 3)]);
 * let bytes = 0;
 * for await (const chunk of sourceChunks(source, "in/a.bin")) bytes += chunk.length;
 * console.assert(bytes === 3);
 * ```
 */
export function sourceChunks(source: FileSource, path: string): AsyncIterable<Uint8Array> {
  if (source instanceof ReadableStream) return checkedChunks(readerChunks(source), path);
  const iterate = (source as { [Symbol.asyncIterator]?: unknown } | null)?.[Symbol.asyncIterator];
  if (typeof iterate !== "function") {
    throw new InvalidInputError(
      `Failed to write file ${quote(path)}: the source is not a ReadableStream or an async iterable`,
    );
  }
  return checkedChunks(source as AsyncIterable<unknown>, path);
}

async function* readerChunks(stream: ReadableStream<unknown>): AsyncGenerator<unknown> {
  const reader = stream.getReader();
  let done = false;
  try {
    while (true) {
      const next = await reader.read();
      if (next.done) break;
      yield next.value;
    }
    done = true;
  } finally {
    // Ended early by the consumer, or the stream failed: tell the producer (a failed stream ignores it).
    if (!done) await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
}

async function* checkedChunks(chunks: AsyncIterable<unknown>, path: string): AsyncGenerator<Uint8Array> {
  const iterator = chunks[Symbol.asyncIterator]();
  let finished = false;
  try {
    for (let index = 0;; index++) {
      let next: IteratorResult<unknown>;
      try {
        next = await iterator.next();
      } catch (error) {
        finished = true; // An iterator that threw is done; returning it again is not called for.
        throw new SourceFailure(error);
      }
      if (next.done === true) {
        finished = true;
        return;
      }
      if (!(next.value instanceof Uint8Array)) {
        throw new InvalidInputError(
          `Failed to write file ${quote(path)}: chunk ${index} of the source is not a Uint8Array`,
        );
      }
      yield next.value;
    }
  } finally {
    if (!finished) await closeIterator(iterator);
  }
}

/** Returns an iterator ended early, ignoring its failure to (the write has already failed). */
async function closeIterator(iterator: Iterator<unknown> | AsyncIterator<unknown>): Promise<void> {
  try {
    await iterator.return?.();
  } catch {
    // The write fails with its own error.
  }
}

/**
 * Passes chunks through while hashing them; before handing out the chunk
 * that completes `size` bytes, compares the hash with `expected` and throws
 * instead when they differ, so a consumer never sees all of a file's bytes
 * when they are wrong. More or fewer bytes than `size` is an error too.
 *
 * @param chunks The content, in order.
 * @param size How many bytes the content has.
 * @param expected The SHA-256 stored with the content (hex), or `undefined` for none: then nothing is checked.
 * @param mismatch Makes the error thrown, from what was found (`an SHA-256 of ...`, `7 bytes more than ...`).
 * @returns The same chunks.
 *
 * @example Verify content on the way
 * ```ts
 * import { sha256Hex, verifiedChunks } from "./streams.ts";
 *
 * const data = Uint8Array.of(1, 2, 3);
 * const fail = (found: string) => new Error(found);
 * for await (const _ of verifiedChunks([data], 3, sha256Hex(data), fail));
 * ```
 */
export async function* verifiedChunks(
  chunks: Iterable<Uint8Array> | AsyncIterable<Uint8Array>,
  size: number,
  expected: string | undefined,
  mismatch: (found: string) => Error,
): AsyncGenerator<Uint8Array> {
  const hash = expected === undefined ? undefined : createHash("sha256");
  let seen = 0;
  for await (const chunk of chunks) {
    seen += chunk.length;
    if (seen > size) throw mismatch(`more than the ${size} bytes it has`);
    hash?.update(chunk);
    if (seen === size && hash !== undefined) {
      const actual = hash.digest("hex");
      if (actual !== expected) throw mismatch(`content whose SHA-256 is ${actual}, not the stored ${expected}`);
    }
    yield chunk;
  }
  if (seen !== size) throw mismatch(`${seen} of the ${size} bytes it has`);
  // An empty file yields no chunk: check it here.
  if (size === 0 && hash !== undefined && hash.digest("hex") !== expected) {
    throw mismatch(`no bytes, whose SHA-256 is not the stored ${expected}`);
  }
}

/**
 * The error of content that does not match its checksum.
 *
 * @param context `Failed to read file ...`.
 * @param found What was found instead (see {@linkcode verifiedChunks}).
 * @returns The error.
 *
 * @example Name the path and what differs
 * ```ts
 * import { integrityError } from "./streams.ts";
 *
 * const error = integrityError('Failed to read file "in/a.csv"', "3 of the 4 bytes it has");
 * console.assert(error.code === "INTEGRITY_ERROR");
 * ```
 */
export function integrityError(context: string, found: string): IntegrityError {
  return new IntegrityError(`${context}: the stored file does not match its SHA-256 (read ${found})`);
}

/**
 * A web stream of an iterator's chunks that asks for the next chunk only
 * when the consumer reads (a high-water mark of 0), so nothing is read ahead
 * of a slow consumer. Cancelling it calls `cancel` (to abort a request in
 * flight) and returns the iterator.
 *
 * @param chunks The chunks.
 * @param cancel Called first when the consumer cancels.
 * @param failure Turns what the iterator threw into the stream's error.
 * @returns The stream.
 *
 * @example Hand chunks out as a stream
 * ```ts
 * import { pullStream } from "./streams.ts";
 *
 * const stream = pullStream([Uint8Array.of(1)][Symbol.iterator](), () => {}, (error) => error);
 * console.assert((await stream.getReader().read()).value?.[0] === 1);
 * ```
 */
export function pullStream(
  chunks: Iterator<Uint8Array> | AsyncIterator<Uint8Array>,
  cancel: () => void,
  failure: (error: unknown) => unknown,
): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      let next: IteratorResult<Uint8Array>;
      try {
        next = await chunks.next();
      } catch (error) {
        controller.error(failure(error));
        return;
      }
      if (next.done === true) controller.close();
      else controller.enqueue(next.value);
    },
    async cancel() {
      cancel();
      await closeIterator(chunks);
    },
  }, { highWaterMark: 0 });
}
