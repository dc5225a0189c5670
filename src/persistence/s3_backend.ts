/**
 * The S3 {@linkcode IFileStore}: payroll input files, payment files and
 * archives in one bucket, with the same behaviour as the in-memory
 * reference (`MemoryFileStore`).
 *
 * - Every path is checked before any request (`checkPath` / `checkPrefix`).
 * - Every write stores the content's SHA-256 (`x-amz-meta-sha256`, and as
 *   S3's checksum of each request); every read verifies it. Reads go range
 *   by range, pulled by the consumer; a streamed write over the threshold is
 *   staged and copied into place with its checksum (see `writeStream`).
 * - Large payloads go up in parts and a failed multipart upload is aborted,
 *   so no orphaned parts stay behind.
 * - A move creates the destination only where nothing is, confirms the copy,
 *   and only then deletes the source, on condition that it is still the
 *   object copied: of concurrent moves of one source, or to one destination,
 *   exactly one lands, and a move that lost removes the copy it made.
 * - Listings skip keys the store would refuse (written by other tools:
 *   `dir/` folder markers, `a//b`, `./x`, control characters) and report each
 *   through the event hook, so every listed path can be read.
 * - `read` fills one buffer of the file's size, with BYOB reads where the
 *   HTTP layer's bodies are byte streams (the client the store creates on
 *   Deno sends its `GET`s through `fetch` for that, see `s3_http.ts`).
 * - Every SDK error comes out as a {@linkcode FileStoreError} (or
 *   {@linkcode FileNotFoundError}, or for a move that lost to a file in its
 *   way {@linkcode ConflictError}) with the SDK error as `cause`.
 *
 * @module
 */

import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  type GetObjectCommandOutput,
  GetObjectLockConfigurationCommand,
  HeadObjectCommand,
  type HeadObjectCommandOutput,
  ListObjectsV2Command,
  ListObjectVersionsCommand,
  PutObjectCommand,
  type PutObjectCommandInput,
  type PutObjectCommandOutput,
  S3Client,
  UploadPartCommand,
  UploadPartCopyCommand,
} from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { Buffer } from "node:buffer";
import { createHash, type Hash } from "node:crypto";
import {
  BlueStarError,
  ConfigError,
  ConflictError,
  FileNotFoundError,
  FileStoreError,
  InvalidInputError,
  quote,
} from "../core/errors.ts";
import { guardHook } from "../core/hooks.ts";
import { mapConcurrently } from "../core/concurrency.ts";
import { type CallOutcome, endedWith } from "../core/call_end.ts";
import { elapsedMs } from "../core/time.ts";
import {
  checkPath,
  checkPrefix,
  comparePaths,
  MAX_PAGE_SIZE,
  pageSizeProblem,
  pathProblem,
  stagingKey,
} from "../core/keys.ts";
import type { FileSource, FileStat, IFileStore } from "../core/protocols.ts";
import type { FileWriteOptions } from "../core/types.ts";
import {
  integrityError,
  pullStream,
  SHA256_HEX,
  sourceChunks,
  SourceFailure,
  verifiedChunks,
} from "../core/streams.ts";
import { checkRetainUntil, objectLockProblem, toBytes } from "../core/values.ts";
import {
  awsAttempts,
  awsErrorName,
  awsHttpStatus,
  classifyAwsError,
  redactCredentials,
  safeCause,
} from "./aws_errors.ts";
import {
  bucketProblems,
  clashProblems,
  endpointUrlProblems,
  hookProblems,
  integerProblems,
  type OptionProblem,
  optionProblemsText,
  reasonProblems,
  regionProblems,
} from "./options.ts";
import { createOwnS3Client } from "./s3_http.ts";

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/** S3's smallest part (every part but the last). */
const MIN_PART_BYTES = 5 * MiB;
/** S3's largest part, and the largest object one CopyObject can copy. */
const MAX_PART_BYTES = 5 * GiB;
/** S3's most parts in one multipart upload. */
const MAX_PARTS = 10_000;
/** The longest a presigned URL may live: S3's limit for Signature Version 4 (7 days). */
const MAX_PRESIGN_SECONDS = 7 * 24 * 60 * 60;
/** How long a presigned URL lives unless told otherwise (15 minutes). */
const DEFAULT_PRESIGN_SECONDS = 15 * 60;

/** Options of {@linkcode S3FileStore}. */
export interface S3FileStoreOptions {
  /** The bucket every path lives in: a name S3's naming rules for general purpose buckets allow. */
  bucket: string;
  /**
   * The AWS region, a region name (`"us-east-1"`). Not with `client`: given
   * together, they are a `ConfigError` (configure the client instead).
   *
   * @default {undefined} The SDK's chain: `AWS_REGION`, then the shared config file.
   */
  region?: string;
  /**
   * A custom endpoint (LocalStack, moto, MinIO), addressed path-style
   * (`forcePathStyle: true`): an http or https URL without userinfo
   * (credentials come from the AWS chain). Not with `client`: given
   * together, they are a `ConfigError` (configure the client instead).
   *
   * @default {undefined} The region's AWS endpoint, virtual-hosted style.
   */
  endpointUrl?: string;
  /**
   * An existing client to use instead of creating one. {@linkcode S3FileStore.close}
   * leaves it open: whoever made it closes it.
   *
   * @default {undefined} A client is created from `region` and `endpointUrl`, with credentials from the standard AWS chain
   *   (on Deno, its `GET`s go through `fetch`, whose byte-stream bodies `read` fills its buffer from directly).
   */
  client?: S3Client;
  /**
   * Server-side encryption of every object written, copied or moved.
   *
   * @default {"AES256"} (`"aws:kms"` when `kmsKeyId` is given)
   */
  serverSideEncryption?: "AES256" | "aws:kms";
  /**
   * The KMS key (id, alias or ARN) for `aws:kms` encryption.
   *
   * @default {undefined} S3's AWS-managed key when `serverSideEncryption` is `"aws:kms"`.
   */
  kmsKeyId?: string;
  /**
   * Payloads larger than this go up as a multipart upload, a part at a time.
   *
   * @default {16777216} (16 MiB)
   */
  multipartThresholdBytes?: number;
  /**
   * The size of each part of a multipart upload: 5 MiB to 5 GiB. Raised
   * automatically when a payload would need more than 10,000 parts.
   *
   * @default {8388608} (8 MiB)
   */
  partSizeBytes?: number;
  /**
   * How many parts are uploaded or copied at once.
   *
   * @default {4}
   */
  partConcurrency?: number;
  /**
   * How many bytes each request of `read` and `readStream` asks for (a
   * ranged `GetObject`): 64 KiB to 1 GiB. A stream holds about one range at
   * a time, however much the HTTP layer reads ahead.
   *
   * @default {8388608} (8 MiB)
   */
  rangeSizeBytes?: number;
  /**
   * How many keys a listing page holds: 1 to 1000.
   *
   * @default {1000}
   */
  pageSize?: number;
  /**
   * The size of each part a move copies (`UploadPartCopy`): 5 MiB to 5 GiB.
   * A file up to this size is copied in one part. Raised automatically when
   * an object would need more than 10,000 parts.
   *
   * @default {536870912} (512 MiB)
   */
  copyPartSizeBytes?: number;
  /**
   * Called after every operation and on every failure. A hook that throws
   * or returns a rejected promise changes nothing: the operation's outcome
   * stands.
   *
   * @default {undefined}
   */
  onEvent?: (event: FileStoreEvent) => void;
}

/** What {@linkcode S3FileStore} reports through `onEvent`. */
export type FileStoreEvent =
  | {
    /** A file was read. */
    type: "read";
    /** The bucket. */
    bucket: string;
    /** The key read. */
    key: string;
    /** Bytes read. */
    bytes: number;
    /** How long the read took, in milliseconds. */
    durationMs: number;
    /** How it ended: a failed read is an `"error"` event. */
    outcome: "ok";
  }
  | {
    /** A file was written. */
    type: "write";
    /** The bucket. */
    bucket: string;
    /** The key written. */
    key: string;
    /** Bytes written. */
    bytes: number;
    /** Whether it went up as a multipart upload. */
    multipart: boolean;
    /** How many parts it went up in (1 for a single `PutObject`). */
    parts: number;
    /** How long the write took, in milliseconds. */
    durationMs: number;
    /** How it ended: a failed write is an `"error"` event. */
    outcome: "ok";
  }
  | {
    /** A file was moved (copied, confirmed, source deleted). */
    type: "move";
    /** The bucket. */
    bucket: string;
    /** The source key, now gone. */
    src: string;
    /** The destination key. */
    dst: string;
    /** Bytes moved. */
    bytes: number;
    /** How many parts it was copied in (`UploadPartCopy`; 0 for an empty file or a move onto itself). */
    parts: number;
    /** How long the move took, in milliseconds. */
    durationMs: number;
    /** How it ended: a failed move is an `"error"` event. */
    outcome: "ok";
  }
  | {
    /** A file was deleted (or was not there). */
    type: "delete";
    /** The bucket. */
    bucket: string;
    /** The key deleted. */
    key: string;
    /** Whether there was a file to delete. */
    existed: boolean;
    /** How long the delete took, in milliseconds. */
    durationMs: number;
    /** How it ended: a failed delete is an `"error"` event. */
    outcome: "ok";
  }
  | {
    /**
     * A streamed write's staging object could not be removed after the write
     * (which stands); a lifecycle rule on the staging prefix removes it.
     */
    type: "staging-left";
    /** The bucket. */
    bucket: string;
    /** The staging key left behind. */
    key: string;
    /** The path the write was for. */
    path: string;
  }
  | {
    /** A listing finished (every page was read). */
    type: "list";
    /** The bucket. */
    bucket: string;
    /** The prefix listed. */
    prefix: string;
    /** Keys listed. */
    keys: number;
    /** Keys skipped because the store refuses them as paths (each reported by a `"skipped"` event). */
    skipped: number;
    /** Pages requested. */
    pages: number;
    /** How long the listing took, in milliseconds. */
    durationMs: number;
    /** How it ended: a failed listing is an `"error"` event. */
    outcome: "ok";
  }
  | {
    /**
     * A listing met a key that is not a valid path (written by another tool:
     * a `dir/` folder marker, `a//b`, `./x`, a control character) and left it
     * out, so that every listed path can be read.
     */
    type: "skipped";
    /** The bucket. */
    bucket: string;
    /** The key left out. */
    key: string;
    /** Why it is not a valid path (`it has an empty segment`). */
    reason: string;
  }
  | {
    /** A multipart upload or copy was aborted after a failure, so no parts remain. */
    type: "multipart-aborted";
    /** The bucket. */
    bucket: string;
    /** The key the upload was for. */
    key: string;
    /** The aborted upload. */
    uploadId: string;
  }
  | {
    /** An operation failed; `error` is what the caller receives. */
    type: "error";
    /** The operation. */
    action: FileStoreAction;
    /** The bucket. */
    bucket: string;
    /** The key or prefix the operation was on (for a move, the source). */
    key: string;
    /** The error thrown to the caller. */
    error: FileStoreError | ConflictError;
    /** How long the operation ran until it failed, in milliseconds (a listing: since it began). */
    durationMs: number;
    /** How it ended: `"not_found"` (no such file), `"conflict"` or `"error"`. */
    outcome: CallOutcome;
    /** The error's `code` (`"FILE_NOT_FOUND"`, `"FILE_STORE_ERROR"`, ...). */
    errorCode?: string;
  };

/** The operations of {@linkcode S3FileStore}, as its error events name them. */
export type FileStoreAction = "read" | "write" | "move" | "list" | "stat" | "delete" | "presign";

/** Options of {@linkcode S3FileStore.presignRead}. */
export interface PresignReadOptions {
  /**
   * How long the URL works, in seconds: an integer from 1 to 604,800 (7 days, S3's limit).
   *
   * @default {900} (15 minutes)
   */
  expiresInSeconds?: number;
}

/** Options of {@linkcode S3FileStore.presignWrite}. */
export interface PresignWriteOptions extends PresignReadOptions {
  /**
   * The exact size of the upload in bytes, signed: S3 refuses a body of any other size.
   *
   * @default {undefined} Any size.
   */
  contentLength?: number;
  /**
   * The SHA-256 of the content (64 hex digits), signed as the file's stored
   * checksum (so `read` verifies it) and as S3's `x-amz-checksum-sha256`
   * (so S3 refuses a body that does not match it).
   *
   * @default {undefined} No checksum: the file lands without one and its reads are not verified.
   */
  sha256?: string;
}

/** A presigned request: what a bank's or a browser's HTTP client sends, without credentials of its own. */
export interface PresignedRequest {
  /** The URL, signature and expiry in its query. */
  url: string;
  /** The HTTP method. */
  method: "GET" | "PUT";
  /** Headers the request must carry exactly as given (they are signed); `{}` for a read. */
  headers: Record<string, string>;
  /** When the URL stops working. */
  expiresAt: Date;
}

/**
 * An {@linkcode IFileStore} on Amazon S3 (or LocalStack, moto, MinIO).
 *
 * @example Store, move and list payroll files
 * ```ts
 * import { S3FileStore } from "@bluestar/persistence";
 *
 * const files = new S3FileStore({
 *   bucket: "acme-payroll",
 *   region: "us-east-1",
 *   onEvent: (event) => {
 *     if (event.type === "error") console.error(event.error.message);
 *   },
 * });
 * try {
 *   await files.write("in/batch-1.csv", "id,hours\n1,80\n");
 *   await files.move("in/batch-1.csv", "archive/batch-1.csv");
 *   console.log(await files.listFiles("archive/"));
 * } finally {
 *   await files.close();
 * }
 * ```
 */
export class S3FileStore implements IFileStore {
  readonly #client: S3Client;
  readonly #ownsClient: boolean;
  readonly #bucket: string;
  readonly #encryption: { ServerSideEncryption: "AES256" | "aws:kms"; SSEKMSKeyId?: string };
  readonly #multipartThreshold: number;
  readonly #partSize: number;
  readonly #partConcurrency: number;
  readonly #pageSize: number;
  readonly #copyPartSize: number;
  readonly #rangeSize: number;
  readonly #emit: (event: FileStoreEvent) => void;
  /** Whether the bucket has Object Lock enabled, asked once, on the first retained write. */
  #objectLock: Promise<boolean> | undefined;
  #closed = false;

  /**
   * Creates a store. Nothing is sent until the first call: a missing bucket
   * or bad credentials show up as a `FileStoreError` then.
   *
   * @param options The bucket, the client or how to make one, encryption, part sizes and the event hook.
   * @throws {ConfigError} When an option is missing or out of range; the message lists every problem.
   */
  constructor(options: S3FileStoreOptions) {
    const problems = storeOptionProblems(options);
    if (problems.length > 0) {
      throw new ConfigError(`Invalid S3 file store options: ${optionProblemsText(problems)}`);
    }
    this.#bucket = options.bucket;
    const kms = options.kmsKeyId !== undefined || options.serverSideEncryption === "aws:kms";
    this.#encryption = kms
      ? {
        ServerSideEncryption: "aws:kms",
        ...(options.kmsKeyId === undefined ? {} : { SSEKMSKeyId: options.kmsKeyId }),
      }
      : { ServerSideEncryption: "AES256" };
    this.#multipartThreshold = options.multipartThresholdBytes ?? 16 * MiB;
    this.#partSize = options.partSizeBytes ?? 8 * MiB;
    this.#partConcurrency = options.partConcurrency ?? 4;
    this.#pageSize = options.pageSize ?? MAX_PAGE_SIZE;
    this.#copyPartSize = options.copyPartSizeBytes ?? 512 * MiB;
    this.#rangeSize = options.rangeSizeBytes ?? 8 * MiB;
    this.#emit = guardHook(options.onEvent);
    if (options.client !== undefined) {
      this.#client = options.client;
      this.#ownsClient = false;
    } else {
      this.#client = createOwnS3Client({
        ...(options.region === undefined ? {} : { region: options.region }),
        ...(options.endpointUrl === undefined ? {} : { endpoint: options.endpointUrl, forcePathStyle: true }),
      });
      this.#ownsClient = true;
    }
  }

  /** The bucket this store works in. */
  get bucket(): string {
    return this.#bucket;
  }

  /**
   * A file's bytes, checked against the SHA-256 stored with them. The file
   * is read range by range (`rangeSizeBytes` per request) straight into one
   * buffer of its size, so a read peaks at about the file's size plus one
   * range.
   *
   * @param path The path, e.g. `"in/batch-1.csv"`.
   * @returns A copy of the bytes.
   * @throws {InvalidInputError} When the path is not a valid relative key; nothing is sent.
   * @throws {FileNotFoundError} When there is no such file.
   * @throws {IntegrityError} When the bytes do not match the file's stored SHA-256.
   * @throws {FileStoreError} When S3 fails or refuses the read, or the file is replaced during it.
   */
  async read(path: string): Promise<Uint8Array> {
    checkPath(path);
    const context = `Failed to read file ${quote(path)} from bucket ${quote(this.#bucket)}`;
    return await this.#failing("read", path, performance.now(), async () => {
      this.#checkOpen(context);
      const started = performance.now();
      const file = await this.#open(path, context, undefined, true);
      // The chunks land in the file's one buffer as they are taken: nothing else holds the file.
      for await (const _ of file.chunks);
      const bytes = file.buffer!.bytes;
      this.#emit({
        type: "read",
        bucket: this.#bucket,
        key: path,
        bytes: bytes.length,
        durationMs: elapsedMs(started),
        outcome: "ok",
      });
      return bytes;
    });
  }

  /**
   * A file's bytes as a web stream, pulled one range (`rangeSizeBytes`) at a
   * time: the next range is requested only when the consumer has read the
   * last, so memory stays bounded however slow the consumer and however far
   * the HTTP layer reads ahead. The content is checked against its stored
   * SHA-256 on the way; when it differs the stream errors with an
   * {@linkcode IntegrityError} instead of delivering its last chunk.
   * Where the HTTP layer's bodies are byte streams (the store's own client
   * on Deno), the chunks are 8 KiB each, which keeps the memory of a long
   * stream bounded; elsewhere they are the HTTP layer's own.
   * Cancelling the stream aborts the request in flight. A file replaced
   * during the read errors the stream (each range asks for the first one's
   * ETag).
   *
   * @param path The path.
   * @returns The stream, once the first range has arrived.
   * @throws {InvalidInputError} When the path is not valid; nothing is sent.
   * @throws {FileNotFoundError} When there is no such file, before any byte.
   * @throws {FileStoreError} When S3 fails or refuses the first request.
   */
  async readStream(path: string): Promise<ReadableStream<Uint8Array>> {
    checkPath(path);
    const context = `Failed to read file ${quote(path)} from bucket ${quote(this.#bucket)}`;
    return await this.#failing("read", path, performance.now(), async () => {
      this.#checkOpen(context);
      const started = performance.now();
      const abort = new AbortController();
      const file = await this.#open(path, context, abort.signal, false);
      const done = () =>
        this.#emit({
          type: "read",
          bucket: this.#bucket,
          key: path,
          bytes: file.size,
          durationMs: elapsedMs(started),
          outcome: "ok",
        });
      const failed = (error: unknown) => {
        // After a cancel the aborted request's error reaches no one: it is not a failure to report.
        const wrapped = toStoreError(error, context, undefined);
        if (!abort.signal.aborted) {
          const end = endedWith(started, wrapped);
          this.#emit({ type: "error", action: "read", bucket: this.#bucket, key: path, error: wrapped, ...end });
        }
        return wrapped;
      };
      return pullStream(thenCall(file.chunks, done), () => abort.abort(), failed);
    });
  }

  /**
   * Writes a file, replacing any file at the path, with the SHA-256 of its
   * content: in the metadata (`x-amz-meta-sha256`, which reads verify and
   * moves keep) and as S3's own checksum of the request (`ChecksumSHA256`,
   * per part for a multipart upload), which S3 checks on arrival. A string
   * is written as UTF-8. A payload over `multipartThresholdBytes` goes up
   * in parts; if any part fails the upload is aborted, so neither a partial
   * file nor orphaned parts remain.
   *
   * With `retainUntil`, the file goes up in one `PutObject` with
   * `If-None-Match: *` (create-only), and where the bucket has Object Lock
   * enabled (asked once per store with `GetObjectLockConfiguration`) with
   * `ObjectLockMode: COMPLIANCE` and `ObjectLockRetainUntilDate`: S3 then
   * refuses to delete or overwrite that version before the date, to
   * everyone. A bucket without Object Lock keeps no retention: only the
   * create-only write holds. Read it back with {@linkcode readRetained}.
   *
   * @param path The path.
   * @param data The content: bytes or a string. Bytes are sent as they are,
   *   without a copy, so leave them unchanged until the returned promise settles.
   * @param options Retention.
   * @returns Nothing, once the file is stored.
   * @throws {InvalidInputError} When the path, the content or `retainUntil` is not valid; nothing is sent.
   * @throws {ConflictError} When `retainUntil` is given and a file is at the path.
   * @throws {FileStoreError} When the write fails; the file at the path is as it was.
   */
  async write(path: string, data: Uint8Array | string, options: FileWriteOptions = {}): Promise<void> {
    checkPath(path);
    const retainUntil = checkRetainUntil(path, options?.retainUntil);
    // Bytes go up as they are, not copied: a copy would double the memory of a
    // large write. A string is encoded; anything else is an InvalidInputError.
    const bytes = data instanceof Uint8Array ? data : toBytes(data, path);
    const context = `Failed to write file ${quote(path)} to bucket ${quote(this.#bucket)}`;
    await this.#failing("write", path, performance.now(), async () => {
      this.#checkOpen(context);
      const started = performance.now();
      const digest = createHash("sha256").update(bytes).digest();
      // A retained file goes up in one PutObject: S3 takes the retention and the create-only condition there.
      if (retainUntil !== undefined || bytes.length <= this.#multipartThreshold) {
        await this.#put(path, bytes, digest, context, retainUntil);
        this.#emitWrite(path, bytes.length, 1, started);
        return;
      }
      const partSize = Math.max(this.#partSize, Math.ceil(bytes.length / MAX_PARTS));
      await this.#upload(path, bytes, { sha256: digest.toString("hex") }, partSize, context);
      this.#emitWrite(path, bytes.length, Math.ceil(bytes.length / partSize), started);
    });
  }

  /**
   * A retained file's bytes as first written: the oldest version of the key
   * (`ListObjectVersions`, then `GetObject` of that version). In a bucket
   * with Object Lock (which needs versioning) a plain write over a retained
   * file adds a newer version and a delete adds a delete marker, but the
   * locked version stays, and this reads it. In a bucket without versions
   * it is the file.
   *
   * @param path The path.
   * @returns A copy of the bytes.
   * @throws {InvalidInputError} When the path is not valid; nothing is sent.
   * @throws {FileNotFoundError} When the key has no version.
   * @throws {FileStoreError} When S3 fails or refuses.
   */
  async readRetained(path: string): Promise<Uint8Array> {
    checkPath(path);
    const context = `Failed to read retained file ${quote(path)} from bucket ${quote(this.#bucket)}`;
    return await this.#failing("read", path, performance.now(), async () => {
      this.#checkOpen(context);
      let oldest: string | undefined;
      let keyMarker: string | undefined;
      let versionMarker: string | undefined;
      try {
        do {
          const page = await this.#client.send(
            new ListObjectVersionsCommand({
              Bucket: this.#bucket,
              Prefix: path,
              KeyMarker: keyMarker,
              VersionIdMarker: versionMarker,
            }),
          );
          // Versions of a key are listed newest first: the last one seen is the oldest.
          for (const version of page.Versions ?? []) if (version.Key === path) oldest = version.VersionId;
          keyMarker = page.IsTruncated ? page.NextKeyMarker : undefined;
          versionMarker = page.IsTruncated ? page.NextVersionIdMarker : undefined;
        } while (keyMarker !== undefined);
      } catch (error) {
        throw toStoreError(error, context, undefined);
      }
      if (oldest === undefined) throw new FileNotFoundError(`${context}: it does not exist`);
      try {
        const response = await this.#client.send(
          new GetObjectCommand({
            Bucket: this.#bucket,
            Key: path,
            ...(oldest === "null" ? {} : { VersionId: oldest }),
          }),
        );
        return response.Body === undefined ? new Uint8Array() : await response.Body.transformToByteArray();
      } catch (error) {
        throw toStoreError(error, context, `${context}: it does not exist`);
      }
    });
  }

  /**
   * Writes a file from a web stream or an async iterable of bytes, replacing
   * any file at the path, with its SHA-256 as {@linkcode S3FileStore.write}
   * stores it. A source of at most `multipartThresholdBytes` goes up in one
   * `PutObject`. A longer one goes up in parts of `partSizeBytes`, at most
   * `partConcurrency` in flight (so at most about `(partConcurrency + 1) *
   * partSizeBytes` of it is held), to a staging key under
   * {@linkcode STAGING_PREFIX}; its SHA-256 is known only at the end, and S3
   * takes metadata only when an object is created, so it is then copied
   * server-side (`UploadPartCopy`) into place with the checksum in its
   * metadata, and the staging object is removed. Readers see the old file
   * until the copy completes, then the new one, never a part of it.
   *
   * On any failure (the source throws, a chunk is not bytes, a request
   * fails) the upload is aborted and the staging object removed: the file
   * at the path is as it was and no multipart upload is left open. The
   * longest source is 10,000 parts (80 GiB at the default part size).
   *
   * @param path The path.
   * @param source The content, chunk by chunk. Each chunk is copied (or sent) before the next is asked for.
   * @returns Nothing, once the file is stored.
   * @throws {InvalidInputError} When the path or the source is not valid, or a chunk is not a `Uint8Array`; the
   *   file is as it was.
   * @throws {FileStoreError} When the source throws (its error is the `cause`) or the write fails; the file at the
   *   path is as it was.
   */
  async writeStream(path: string, source: FileSource): Promise<void> {
    checkPath(path);
    const chunks = sourceChunks(source, path)[Symbol.asyncIterator]();
    const context = `Failed to write file ${quote(path)} to bucket ${quote(this.#bucket)}`;
    await this.#failing("write", path, performance.now(), async () => {
      try {
        this.#checkOpen(context);
        const started = performance.now();
        // Up to the threshold the source is held (copied, straight into the buffers of the parts it would go up
        // in: a producer may reuse its buffer) and goes up in one PutObject, as `write` would send it.
        const parts = new PartBuffers(this.#partSize, this.#partConcurrency + 1);
        let next = await chunks.next();
        for (; next.done !== true && parts.size <= this.#multipartThreshold; next = await chunks.next()) {
          parts.append(next.value, 0, next.value.length);
        }
        if (next.done === true) {
          const bytes = parts.contents();
          await this.#put(path, bytes, parts.hash.digest(), context);
          this.#emitWrite(path, bytes.length, 1, started);
          return;
        }
        const staged = await this.#stagedUpload(path, parts, prepended(next.value, chunks), context);
        this.#emitWrite(path, staged.size, staged.parts, started);
      } catch (error) {
        // The producer learns the write is off (a source that failed, or ended, ignores it). Not awaited: a
        // source stuck in a read would hold the write's failure back.
        chunks.return?.().catch(() => {});
        if (error instanceof SourceFailure) {
          throw new FileStoreError(`${context}: the source failed`, { cause: error.cause });
        }
        throw error;
      }
    });
  }

  /** Whether the bucket has Object Lock enabled; a failed answer is asked again next time. */
  #hasObjectLock(context: string): Promise<boolean> {
    this.#objectLock ??= this.#client.send(new GetObjectLockConfigurationCommand({ Bucket: this.#bucket })).then(
      (output) => output.ObjectLockConfiguration?.ObjectLockEnabled === "Enabled",
      (error) => {
        if (awsErrorName(error) === "ObjectLockConfigurationNotFoundError") return false;
        this.#objectLock = undefined;
        throw toStoreError(error, `${context}: cannot tell whether the bucket has Object Lock`, undefined);
      },
    );
    return this.#objectLock;
  }

  /**
   * What is known of a file: its size, the SHA-256 stored with it, when it
   * was last written, its ETag (one `HeadObject`).
   *
   * @param path The path.
   * @returns The file's details; `sha256` is `undefined` for a file another tool wrote without one.
   * @throws {InvalidInputError} When the path is not valid; nothing is sent.
   * @throws {FileNotFoundError} When there is no such file.
   * @throws {FileStoreError} When S3 fails or refuses the request.
   */
  async stat(path: string): Promise<FileStat> {
    checkPath(path);
    const context = `Failed to stat file ${quote(path)} in bucket ${quote(this.#bucket)}`;
    return await this.#failing("stat", path, performance.now(), async () => {
      const head = await this.#head(path, context);
      if (head === undefined) throw new FileNotFoundError(`${context}: it does not exist`);
      return fileStat(path, head);
    });
  }

  /**
   * Whether a file is at the path (one `HeadObject`).
   *
   * @param path The path.
   * @returns `true` when there is.
   * @throws {InvalidInputError} When the path is not valid; nothing is sent.
   * @throws {FileStoreError} When S3 fails or refuses the request.
   */
  async exists(path: string): Promise<boolean> {
    checkPath(path);
    const context = `Failed to check whether file ${quote(path)} exists in bucket ${quote(this.#bucket)}`;
    return await this.#failing(
      "stat",
      path,
      performance.now(),
      async () => (await this.#head(path, context)) !== undefined,
    );
  }

  /**
   * Deletes a file; a missing file is not an error. A file under an Object
   * Lock retention that has not run out, or a legal hold, is refused and
   * stays readable: on a versioned bucket (every bucket with Object Lock
   * is) S3 itself would let a plain delete through as a delete marker that
   * hides the file. The delete asks for the ETag it checked, so a file
   * rewritten meanwhile stays too.
   *
   * @param path The path.
   * @returns Nothing, once the file is gone.
   * @throws {InvalidInputError} When the path is not valid; nothing is sent.
   * @throws {FileStoreError} When the file is under a retention or legal hold (the message says until when), was
   *   rewritten during the delete, or S3 fails or refuses; the file stays.
   */
  async delete(path: string): Promise<void> {
    checkPath(path);
    const context = `Failed to delete file ${quote(path)} from bucket ${quote(this.#bucket)}`;
    await this.#failing("delete", path, performance.now(), async () => {
      const started = performance.now();
      const head = await this.#head(path, context);
      const existed = head !== undefined;
      if (head !== undefined) {
        const locked = objectLockProblem(head, new Date());
        if (locked !== undefined) throw new FileStoreError(`${context}: ${locked}; it is kept`);
        try {
          await this.#client.send(new DeleteObjectCommand({ Bucket: this.#bucket, Key: path, IfMatch: head.ETag }));
        } catch (error) {
          if (isConditionFailure(error)) {
            throw new FileStoreError(`${context}: it was rewritten during the delete and is kept`, {
              cause: safeCause(error),
            });
          }
          // A 404: someone else deleted it first, which is what was asked.
          if (!isMissingObject(error)) throw toStoreError(error, context, undefined);
        }
      }
      this.#emit({
        type: "delete",
        bucket: this.#bucket,
        key: path,
        existed,
        durationMs: elapsedMs(started),
        outcome: "ok",
      });
    });
  }

  /**
   * A URL that reads a file without credentials (a `GET`), for a bank or a
   * browser, working for `expiresInSeconds`. Nothing is sent to S3: a
   * missing file shows when the URL is used (HTTP 404).
   *
   * @param path The path.
   * @param options How long the URL works.
   * @returns The URL, with no headers to send, and when it expires.
   * @throws {InvalidInputError} When the path or the expiry is not valid.
   * @throws {FileStoreError} When the store is closed or the URL cannot be signed (no credentials).
   *
   * @example Hand a bank a download link for 10 minutes
   * ```ts
   * import { S3FileStore } from "@bluestar/persistence";
   *
   * const files = new S3FileStore({ bucket: "acme-payroll", region: "us-east-1" });
   * const { url, expiresAt } = await files.presignRead("out/ach-2026-06-30.txt", { expiresInSeconds: 600 });
   * console.log(`${url} works until ${expiresAt.toISOString()}`);
   * files.close();
   * ```
   */
  async presignRead(path: string, options: PresignReadOptions = {}): Promise<PresignedRequest> {
    checkPath(path);
    const context = `Failed to presign a read of file ${quote(path)} in bucket ${quote(this.#bucket)}`;
    const expiresIn = presignExpiry(options?.expiresInSeconds, context);
    return await this.#presign(path, context, "GET", expiresIn, {});
  }

  /**
   * A URL that writes a file without credentials (a `PUT` carrying the
   * returned headers), working for `expiresInSeconds`. The URL signs this
   * store's encryption and, when given, the exact size and the SHA-256:
   * S3 refuses an upload whose body is of another size or does not match
   * the checksum, and the file lands with the checksum in its metadata, so
   * `read` verifies it like any write of the store.
   *
   * @param path The path.
   * @param options How long the URL works; the size and SHA-256 of the content.
   * @returns The URL, the headers the upload must carry, and when it expires.
   * @throws {InvalidInputError} When the path, the expiry, the size or the SHA-256 is not valid.
   * @throws {FileStoreError} When the store is closed or the URL cannot be signed (no credentials).
   *
   * @example Let a client upload a file of known content for 15 minutes
   * ```ts
   * import { S3FileStore } from "@bluestar/persistence";
   *
   * const files = new S3FileStore({ bucket: "acme-payroll", region: "us-east-1" });
   * const body = new TextEncoder().encode("id,hours\n1,80\n");
   * const sha256 = Array.from(
   *   new Uint8Array(await crypto.subtle.digest("SHA-256", body)),
   *   (byte) => byte.toString(16).padStart(2, "0"),
   * ).join("");
   * const upload = await files.presignWrite("in/batch-1.csv", { contentLength: body.length, sha256 });
   * await fetch(upload.url, { method: upload.method, headers: upload.headers, body });
   * files.close();
   * ```
   */
  async presignWrite(path: string, options: PresignWriteOptions = {}): Promise<PresignedRequest> {
    checkPath(path);
    const context = `Failed to presign a write of file ${quote(path)} in bucket ${quote(this.#bucket)}`;
    const expiresIn = presignExpiry(options?.expiresInSeconds, context);
    const { contentLength, sha256 } = options ?? {};
    if (contentLength !== undefined && (!Number.isSafeInteger(contentLength) || contentLength < 0)) {
      throw new InvalidInputError(`${context}: contentLength ${quote(contentLength)} is not a whole number of bytes`);
    }
    if (sha256 !== undefined && (typeof sha256 !== "string" || !SHA256_HEX.test(sha256))) {
      throw new InvalidInputError(`${context}: sha256 ${quote(sha256)} is not 64 lowercase hex digits`);
    }
    const headers: Record<string, string> = {
      "x-amz-server-side-encryption": this.#encryption.ServerSideEncryption,
      ...(this.#encryption.SSEKMSKeyId === undefined
        ? {}
        : { "x-amz-server-side-encryption-aws-kms-key-id": this.#encryption.SSEKMSKeyId }),
      ...(contentLength === undefined ? {} : { "content-length": String(contentLength) }),
      ...(sha256 === undefined ? {} : {
        "x-amz-meta-sha256": sha256,
        "x-amz-checksum-sha256": Buffer.from(sha256, "hex").toString("base64"),
      }),
    };
    return await this.#presign(path, context, "PUT", expiresIn, headers);
  }

  /**
   * Moves a file, server-side and with this store's encryption, so that of
   * moves that run at once exactly one lands:
   *
   * 1. The destination is created only where nothing is: a part copy
   *    (`UploadPartCopy` of the source's ETag) completed with
   *    `If-None-Match: *`, or for an empty file a `PutObject` with it. A move
   *    never replaces a file, and of two moves to one destination one lands.
   * 2. The copy is confirmed (its size and ETag).
   * 3. The source is deleted with `If-Match` its ETag: only one move of a
   *    source can delete it. A move whose delete is refused lost (another
   *    move or a delete took the source, or it was rewritten meanwhile): it
   *    removes its own copy (`If-Match` the copy's ETag, so a file someone
   *    else put there stays) and fails.
   *
   * Moving a file onto itself changes nothing.
   *
   * @param src The file to move.
   * @param dst Where it goes; no file may be there.
   * @returns Nothing, once the source is gone.
   * @throws {InvalidInputError} When either path is not valid; nothing is sent.
   * @throws {FileNotFoundError} When `src` does not exist, or another move or a delete took it first; this move
   * leaves no copy.
   * @throws {ConflictError} When `dst` exists, or `src` was rewritten during the move; the source is kept and this
   * move leaves no copy.
   * @throws {FileStoreError} When a request fails. Before the copy exists the source is kept; after, the message
   * says which keys exist (a source that cannot be deleted leaves both).
   */
  async move(src: string, dst: string): Promise<void> {
    checkPath(src, "source path");
    checkPath(dst, "destination path");
    const context = `Failed to move file ${quote(src)} to ${quote(dst)} in bucket ${quote(this.#bucket)}`;
    await this.#failing("move", src, performance.now(), async () => {
      this.#checkOpen(context);
      const started = performance.now();
      let source: HeadObjectCommandOutput;
      try {
        source = await this.#client.send(new HeadObjectCommand({ Bucket: this.#bucket, Key: src }));
      } catch (error) {
        throw toStoreError(error, context, `${context}: the source does not exist`);
      }
      const size = source.ContentLength ?? 0;
      if (src === dst) {
        this.#emitMove(src, dst, size, 0, started);
        return;
      }
      // Without the source's ETag neither the copy nor the delete could be made conditional.
      if (source.ETag === undefined) throw new FileStoreError(`${context}: S3 gave no ETag for the source`);
      const copy = await this.#copyToNewKey(src, dst, source, context);
      await this.#confirmCopy(dst, size, copy.etag, context);
      try {
        await this.#client.send(new DeleteObjectCommand({ Bucket: this.#bucket, Key: src, IfMatch: source.ETag }));
      } catch (error) {
        throw await this.#failedDelete(error, src, dst, copy.etag, context);
      }
      this.#emitMove(src, dst, size, copy.parts, started);
    });
  }

  /**
   * Every path under a prefix, following every listing page, sorted by code
   * point (the UTF-8 byte order S3 lists in). Keys that are not valid paths
   * (written by other tools) are left out, each reported by a `"skipped"`
   * event, as in {@linkcode S3FileStore.listFilePages}.
   *
   * @param prefix The prefix: `""` for all, `"in/"` for a folder.
   * @returns The paths; `[]` when none match.
   * @throws {InvalidInputError} When the prefix could never match a valid path; nothing is sent.
   * @throws {FileStoreError} When a listing request fails.
   */
  async listFiles(prefix: string): Promise<string[]> {
    const paths: string[] = [];
    for await (const page of this.listFilePages(prefix)) {
      for (const path of page) paths.push(path);
    }
    return paths.sort(comparePaths);
  }

  /**
   * Every path under a prefix, one listing page (`pageSize` keys) at a time,
   * in S3's order (UTF-8 byte order, the order `listFiles` returns). Only one
   * page is held at a time, so a folder of millions of files fits in memory.
   * A key that is not a valid path (a `dir/` folder marker, `a//b`, `./x`, a
   * backslash or a control character, written by another tool) is left out
   * and reported by a `"skipped"` event, so every listed path can be read;
   * a page can hold fewer than `pageSize` paths.
   *
   * @param prefix The prefix: `""` for all, `"in/"` for a folder.
   * @returns The pages; none when nothing matches.
   * @throws {InvalidInputError} When the prefix could never match a valid path; nothing is sent.
   * @throws {FileStoreError} When a listing request fails (pages already yielded stay valid).
   */
  async *listFilePages(prefix: string): AsyncIterable<string[]> {
    checkPrefix(prefix);
    const context = `Failed to list files under prefix ${quote(prefix)} in bucket ${quote(this.#bucket)}`;
    const started = performance.now();
    let token: string | undefined;
    let pages = 0;
    let keys = 0;
    let skipped = 0;
    do {
      const page = await this.#failing("list", prefix, started, async () => {
        this.#checkOpen(context);
        try {
          return await this.#client.send(
            new ListObjectsV2Command({
              Bucket: this.#bucket,
              Prefix: prefix === "" ? undefined : prefix,
              MaxKeys: this.#pageSize,
              ContinuationToken: token,
            }),
          );
        } catch (error) {
          throw toStoreError(error, context, undefined);
        }
      });
      pages++;
      const paths: string[] = [];
      for (const { Key: key } of page.Contents ?? []) {
        if (key === undefined) continue;
        // A key another tool wrote that is no valid path could never be read back through this store.
        const reason = pathProblem(key);
        if (reason === undefined) {
          paths.push(key);
        } else {
          skipped++;
          this.#emit({ type: "skipped", bucket: this.#bucket, key, reason });
        }
      }
      token = page.IsTruncated === true ? page.NextContinuationToken : undefined;
      if (page.IsTruncated === true && token === undefined) {
        const error = new FileStoreError(`${context}: S3 said the listing goes on but gave no continuation token`);
        this.#emit({
          type: "error",
          action: "list",
          bucket: this.#bucket,
          key: prefix,
          error,
          ...endedWith(started, error),
        });
        throw error;
      }
      keys += paths.length;
      if (paths.length > 0) yield paths;
    } while (token !== undefined);
    const end = { durationMs: elapsedMs(started), outcome: "ok" } as const;
    this.#emit({ type: "list", bucket: this.#bucket, prefix, keys, skipped, pages, ...end });
  }

  /**
   * Closes the store: destroys the client it created (a client passed in
   * through `client` stays open). Later calls fail with a `FileStoreError`.
   * Closing twice is harmless.
   *
   * @returns When the store is closed.
   */
  close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      if (this.#ownsClient) this.#client.destroy();
    }
    return Promise.resolve();
  }

  /**
   * Creates `dst` as a copy of the source only if no object is there, and
   * aborts the upload on any failure. S3 also honours `If-None-Match` on
   * `CopyObject`, but moto ignores it there (and `CopySourceIfMatch`) while
   * it honours it on `CompleteMultipartUpload` and `PutObject`: a part copy,
   * which also copies over 5 GiB, works alike on both.
   *
   * With `metadata`, this is a streamed write's copy from its staging key:
   * it replaces any file at `dst` (no `If-None-Match`) and gives the copy
   * these metadata.
   */
  async #copyToNewKey(
    src: string,
    dst: string,
    source: HeadObjectCommandOutput,
    context: string,
    metadata?: Record<string, string>,
  ): Promise<{ etag: string | undefined; parts: number }> {
    const size = source.ContentLength ?? 0;
    const object = {
      Bucket: this.#bucket,
      Key: dst,
      ...this.#encryption,
      ContentType: source.ContentType,
      ContentEncoding: source.ContentEncoding,
      ContentDisposition: source.ContentDisposition,
      ContentLanguage: source.ContentLanguage,
      CacheControl: source.CacheControl,
      Metadata: metadata ?? source.Metadata,
    };
    const onlyWhereNothingIs = metadata === undefined ? { IfNoneMatch: "*" } : {};
    // Which condition a refusal is about: the source's ETag (a part copy) or the empty destination.
    let refused: "source" | "destination" = "destination";
    let uploadId: string | undefined;
    try {
      if (size === 0) {
        // No byte to copy (a part copy needs one); the delete's If-Match still checks the source is unchanged.
        const put = await this.#client.send(
          new PutObjectCommand({ ...object, Body: new Uint8Array(), ...onlyWhereNothingIs }),
        );
        return { etag: put.ETag, parts: 0 };
      }
      const created = await this.#client.send(new CreateMultipartUploadCommand(object));
      uploadId = created.UploadId;
      if (uploadId === undefined) throw new FileStoreError(`${context}: S3 gave no upload id`);
      const id = uploadId;
      const ranges = copyRanges(size, Math.max(this.#copyPartSize, Math.ceil(size / MAX_PARTS)));
      refused = "source";
      const etags = await mapConcurrently(ranges, this.#partConcurrency, async ([first, last], index) => {
        const response = await this.#client.send(
          new UploadPartCopyCommand({
            Bucket: this.#bucket,
            Key: dst,
            UploadId: id,
            PartNumber: index + 1,
            CopySource: copySource(this.#bucket, src),
            CopySourceRange: `bytes=${first}-${last}`,
            CopySourceIfMatch: source.ETag,
          }),
        );
        const etag = response.CopyPartResult?.ETag;
        if (etag === undefined) throw new FileStoreError(`${context}: S3 gave no ETag for part ${index + 1}`);
        return etag;
      });
      refused = "destination";
      const completed = await this.#client.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.#bucket,
          Key: dst,
          UploadId: id,
          ...onlyWhereNothingIs,
          MultipartUpload: { Parts: etags.map((ETag, index) => ({ ETag, PartNumber: index + 1 })) },
        }),
      );
      return { etag: completed.ETag, parts: ranges.length };
    } catch (error) {
      const kept = uploadId === undefined ? undefined : await this.#abort(dst, uploadId);
      const note = kept === undefined ? "" : ` (${kept})`;
      if (metadata !== undefined) {
        throw toStoreError(error, `${context}: copying it into place from its staging key failed${note}`, undefined);
      }
      if (!isConditionFailure(error)) {
        throw toStoreError(
          error,
          `${context}: the copy failed and the source is kept${note}`,
          `${context}: the source does not exist${note}`,
        );
      }
      const cause = safeCause(error);
      if (refused === "source") {
        throw new ConflictError(`${context}: the source changed during the copy and is kept${note}`, { cause });
      }
      // A refusal after a retry may answer an earlier attempt of this very request that landed unseen.
      if (awsAttempts(error) !== 1) {
        throw toStoreError(
          error,
          `${context}: the destination exists, and as the request was retried it may be this move's own copy; ` +
            `the source is kept${note}`,
          undefined,
        );
      }
      throw new ConflictError(`${context}: the destination exists; the source is kept${note}`, { cause });
    }
  }

  /**
   * What a move whose conditional delete of the source failed throws, once
   * it has removed its copy where it certainly lost. Refused at the first
   * attempt, the delete did not happen: the source was taken (a 404: another
   * move or a delete) or rewritten (a 412), so this move did not happen and
   * its copy goes. A refusal after a retry may answer an earlier attempt of
   * this very delete that landed unseen, and any other failure may have
   * landed too: then nothing more is deleted (a wrong guess would lose the
   * file) and the message says what exists.
   */
  async #failedDelete(
    error: unknown,
    src: string,
    dst: string,
    copyEtag: string | undefined,
    context: string,
  ): Promise<BlueStarError> {
    const gone = isMissingObject(error);
    const deleteContext = `${context}: copied to ${quote(dst)} but failed to delete ${quote(src)}`;
    if (!gone && !isConditionFailure(error)) {
      return toStoreError(error, `${deleteContext}, so both keys now exist`, undefined);
    }
    if (awsAttempts(error) !== 1) {
      return toStoreError(
        error,
        `${deleteContext} after a retry, which an earlier attempt may have done; the copy is kept`,
        undefined,
      );
    }
    const copy = await this.#removeCopy(dst, copyEtag);
    const cause = safeCause(error);
    return gone
      ? new FileNotFoundError(`${context}: another move or a delete took the source first; ${copy}`, { cause })
      : new ConflictError(`${context}: the source changed during the move and is kept; ${copy}`, { cause });
  }

  /**
   * Removes the copy a move made at `dst` while it is still that copy
   * (`If-Match` its ETag): a file someone else has put there since stays.
   * Returns what became of it, for the message.
   */
  async #removeCopy(dst: string, etag: string | undefined): Promise<string> {
    if (etag === undefined) return `its copy at ${quote(dst)} remains (S3 gave no ETag to delete it by)`;
    try {
      await this.#client.send(new DeleteObjectCommand({ Bucket: this.#bucket, Key: dst, IfMatch: etag }));
    } catch (error) {
      if (isConditionFailure(error)) return `its copy at ${quote(dst)} had been replaced meanwhile and is left alone`;
      // A 404: the copy is gone already (removed by someone, or by an earlier attempt of this delete).
      if (!isMissingObject(error)) {
        return `its copy at ${quote(dst)} could not be removed (${errorTag(error)}) and remains`;
      }
    }
    return `its copy at ${quote(dst)} was removed`;
  }

  /**
   * Opens a file for reading range by range: its first range, then the
   * others as they are asked for, each `If-Match` the first one's ETag, all
   * checked against the stored SHA-256 (see `verifiedChunks`). `buffered`
   * reads every range into one {@linkcode FileBuffer} of the file's size
   * (the chunks are views of it); otherwise each chunk is the consumer's to
   * keep (see `bodyChunks`).
   */
  async #open(
    path: string,
    context: string,
    signal: AbortSignal | undefined,
    buffered: boolean,
  ): Promise<{ size: number; chunks: AsyncGenerator<Uint8Array>; buffer: FileBuffer | undefined }> {
    const first = await this.#range(path, 0, undefined, context, signal);
    const buffer = buffered ? new FileBuffer(first.size) : undefined;
    const rest = this.#ranges(path, first.length, first.size, first.etag, context, signal, buffer);
    const chunks = verifiedChunks(
      chain(bodyChunks(first.body, first.length, context, buffer), rest),
      first.size,
      first.sha256,
      (found) => integrityError(context, found),
    );
    return { size: first.size, chunks, buffer };
  }

  /** The ranges of a file from `offset` on, each requested when the last has been taken. */
  async *#ranges(
    path: string,
    offset: number,
    size: number,
    etag: string | undefined,
    context: string,
    signal: AbortSignal | undefined,
    buffer: FileBuffer | undefined,
  ): AsyncGenerator<Uint8Array> {
    for (let first = offset; first < size;) {
      const range = await this.#range(path, first, etag ?? "*", context, signal);
      if (range.length === 0) throw new FileStoreError(`${context}: S3 sent no bytes from offset ${first}`);
      yield* bodyChunks(range.body, range.length, context, buffer);
      first += range.length;
    }
  }

  /**
   * One ranged `GetObject` from `first`: its body, the file's size (from
   * `Content-Range`, or the whole body's length when the range was
   * ignored), ETag and stored SHA-256. `etag` makes every range after the
   * first ask for the file the first one came from. An empty file (a 416
   * for any range) is looked at with `HeadObject`.
   */
  async #range(
    path: string,
    first: number,
    etag: string | undefined,
    context: string,
    signal: AbortSignal | undefined,
  ): Promise<
    {
      body: GetObjectCommandOutput["Body"];
      length: number;
      size: number;
      etag: string | undefined;
      sha256: string | undefined;
    }
  > {
    let response: GetObjectCommandOutput;
    try {
      response = await this.#client.send(
        new GetObjectCommand({
          Bucket: this.#bucket,
          Key: path,
          Range: `bytes=${first}-${first + this.#rangeSize - 1}`,
          ...(etag === undefined || etag === "*" ? {} : { IfMatch: etag }),
        }),
        { abortSignal: signal },
      );
    } catch (error) {
      if (etag === undefined && awsErrorName(error) === "InvalidRange") {
        const head = await this.#head(path, context);
        if (head === undefined) throw new FileNotFoundError(`${context}: it does not exist`);
        return {
          body: undefined,
          length: 0,
          size: head.ContentLength ?? 0,
          etag: head.ETag,
          sha256: head.Metadata?.sha256,
        };
      }
      if (etag !== undefined && (isConditionFailure(error) || isMissingObject(error))) {
        const what = isMissingObject(error) ? "deleted" : "replaced";
        throw new FileStoreError(`${context}: it was ${what} during the read`, { cause: safeCause(error) });
      }
      throw toStoreError(error, context, `${context}: it does not exist`);
    }
    const length = response.ContentLength ?? 0;
    const total = /\/(\d+)$/.exec(response.ContentRange ?? "")?.[1];
    return {
      body: response.Body,
      length,
      size: total === undefined ? first + length : Number(total),
      etag: response.ETag,
      sha256: response.Metadata?.sha256,
    };
  }

  /** A file's `HeadObject`, or `undefined` when there is no such file. */
  async #head(path: string, context: string): Promise<HeadObjectCommandOutput | undefined> {
    this.#checkOpen(context);
    try {
      return await this.#client.send(new HeadObjectCommand({ Bucket: this.#bucket, Key: path }));
    } catch (error) {
      if (isMissingObject(error)) return undefined;
      throw toStoreError(error, context, undefined);
    }
  }

  /** One `PutObject` of a whole file, its SHA-256 in the metadata and as S3's checksum of the request. */
  async #put(path: string, bytes: Uint8Array, digest: Buffer, context: string, retainUntil?: Date): Promise<void> {
    // Retained: create-only, and where the bucket has Object Lock, compliance-mode retention until the date.
    const lock = retainUntil !== undefined && await this.#hasObjectLock(context);
    try {
      await this.#client.send(
        new PutObjectCommand({
          Bucket: this.#bucket,
          Key: path,
          Body: bytes,
          ...this.#encryption,
          Metadata: { sha256: digest.toString("hex") },
          ChecksumSHA256: digest.toString("base64"),
          ...(retainUntil === undefined ? {} : { IfNoneMatch: "*" }),
          // S3 wants the checksum algorithm named on a locked upload; a given ChecksumSHA256 alone does not name it.
          ...(lock
            ? { ChecksumAlgorithm: "SHA256", ObjectLockMode: "COMPLIANCE", ObjectLockRetainUntilDate: retainUntil }
            : {}),
        }),
      );
    } catch (error) {
      if (retainUntil === undefined || !isConditionFailure(error)) throw toStoreError(error, context, undefined);
      throw new ConflictError(`${context}: a file is at the path`, { cause: safeCause(error) });
    }
  }

  /**
   * A multipart upload (lib-storage's `Upload`: `partConcurrency` parts in
   * flight, each with S3's SHA-256 checksum), aborted on any failure.
   * Returns the ETag of what it stored.
   */
  async #upload(
    key: string,
    body: Uint8Array,
    metadata: Record<string, string> | undefined,
    partSize: number,
    context: string,
  ): Promise<string | undefined> {
    const upload = new Upload({
      client: this.#client,
      params: {
        Bucket: this.#bucket,
        Key: key,
        Body: body,
        ...this.#encryption,
        ChecksumAlgorithm: "SHA256",
        ...(metadata === undefined ? {} : { Metadata: metadata }),
      },
      partSize,
      queueSize: this.#partConcurrency,
      leavePartsOnError: false,
    });
    try {
      return (await upload.done()).ETag;
    } catch (error) {
      // Upload aborts on failure, but when that abort fails its error is the
      // one we see: abort again so no parts stay behind (a second abort of a
      // gone upload is a NoSuchUpload, which is fine).
      const uploadId = upload.uploadId;
      const kept = uploadId === undefined ? undefined : await this.#abort(key, uploadId);
      throw toStoreError(error, kept === undefined ? context : `${context} (${kept})`, undefined);
    }
  }

  /**
   * The multipart half of `writeStream`: uploads the chunks to a fresh
   * staging key (see `#uploadParts`), copies it into place with its SHA-256
   * in the metadata, and removes the staging object whatever happened.
   */
  async #stagedUpload(
    path: string,
    held: PartBuffers,
    chunks: AsyncIterable<Uint8Array>,
    context: string,
  ): Promise<{ size: number; parts: number }> {
    const staging = stagingKey(crypto.randomUUID());
    try {
      const uploaded = await this.#uploadParts(staging, held, chunks, context);
      const source = { $metadata: {}, ContentLength: uploaded.size, ETag: uploaded.etag };
      await this.#copyToNewKey(staging, path, source, context, { sha256: uploaded.sha256 });
      return uploaded;
    } finally {
      try {
        await this.#client.send(new DeleteObjectCommand({ Bucket: this.#bucket, Key: staging }));
      } catch {
        this.#emit({ type: "staging-left", bucket: this.#bucket, key: staging, path });
      }
    }
  }

  /**
   * A multipart upload of chunks of unknown total length, after those
   * already in `parts`: they are copied into parts of `partSizeBytes`, each
   * sent with its SHA-256 (`ChecksumSHA256`, which S3 checks) as soon as it
   * is full, at most `partConcurrency` at once; reading the source waits for
   * a free slot, so at most `partConcurrency + 1` parts are held (their
   * buffers reused). On any failure the parts in flight are let settle and
   * the upload is aborted. What the source threw (a `SourceFailure`, an
   * `InvalidInputError`) comes out as it is.
   */
  async #uploadParts(
    key: string,
    parts: PartBuffers,
    chunks: AsyncIterable<Uint8Array>,
    context: string,
  ): Promise<{ etag: string | undefined; size: number; parts: number; sha256: string }> {
    let uploadId: string | undefined;
    const inFlight = new Set<Promise<void>>();
    const completed: Array<{ PartNumber: number; ETag?: string; ChecksumSHA256: string }> = [];
    let failure: { error: unknown } | undefined;
    try {
      const created = await this.#client.send(
        new CreateMultipartUploadCommand({
          Bucket: this.#bucket,
          Key: key,
          ...this.#encryption,
          ChecksumAlgorithm: "SHA256",
        }),
      );
      uploadId = created.UploadId;
      if (uploadId === undefined) throw new FileStoreError(`${context}: S3 gave no upload id`);
      const id = uploadId;
      const send = (bytes: Uint8Array, partNumber: number) => {
        const checksum = createHash("sha256").update(bytes).digest("base64");
        const part = this.#client.send(
          new UploadPartCommand({
            Bucket: this.#bucket,
            Key: key,
            UploadId: id,
            PartNumber: partNumber,
            Body: bytes,
            ChecksumSHA256: checksum,
          }),
        ).then(
          (response) => {
            completed.push({ PartNumber: partNumber, ETag: response.ETag, ChecksumSHA256: checksum });
            parts.release(bytes);
          },
          (error: unknown) => void (failure ??= { error }),
        ).finally(() => inFlight.delete(part));
        inFlight.add(part);
      };
      let sent = 0;
      const flush = async (bytes: Uint8Array) => {
        if (++sent > MAX_PARTS) {
          throw new FileStoreError(
            `${context}: the source is longer than ${MAX_PARTS} parts of ${this.#partSize} bytes (raise partSizeBytes)`,
          );
        }
        send(bytes, sent);
        while (inFlight.size >= this.#partConcurrency && failure === undefined) await Promise.race(inFlight);
        if (failure !== undefined) throw failure.error;
      };
      const flushFull = async () => {
        for (let full = parts.takeFull(); full !== undefined; full = parts.takeFull()) await flush(full);
      };
      await flushFull();
      for await (const chunk of chunks) {
        // A part at a time, so a long chunk does not fill more buffers than the parts in flight.
        for (let offset = 0; offset < chunk.length;) {
          offset = parts.append(chunk, offset, parts.room(chunk.length - offset));
          await flushFull();
        }
      }
      const last = parts.takeRest();
      // The source is longer than the threshold, so there is at least one part.
      if (last !== undefined) await flush(last);
      await Promise.all(inFlight);
      if (failure !== undefined) throw failure.error;
      completed.sort((a, b) => a.PartNumber - b.PartNumber);
      const done = await this.#client.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.#bucket,
          Key: key,
          UploadId: id,
          MultipartUpload: { Parts: completed },
        }),
      );
      return { etag: done.ETag, size: parts.size, parts: sent, sha256: parts.hash.digest("hex") };
    } catch (error) {
      // No part may land after the abort: let those in flight settle first.
      await Promise.allSettled(inFlight);
      const kept = uploadId === undefined ? undefined : await this.#abort(key, uploadId);
      if (error instanceof SourceFailure || error instanceof InvalidInputError) throw error;
      throw toStoreError(error, kept === undefined ? context : `${context} (${kept})`, undefined);
    }
  }

  /** Signs a `GET` or `PUT` of `path`; every header in `headers` is signed, as the URL's `X-Amz-SignedHeaders` shows. */
  async #presign(
    path: string,
    context: string,
    method: "GET" | "PUT",
    expiresIn: number,
    headers: Record<string, string>,
  ): Promise<PresignedRequest> {
    return await this.#failing("presign", path, performance.now(), async () => {
      this.#checkOpen(context);
      const input = { Bucket: this.#bucket, Key: path };
      const sha256 = headers["x-amz-meta-sha256"];
      const length = headers["content-length"];
      let command: GetObjectCommand | PutObjectCommand = new GetObjectCommand(input);
      if (method === "PUT") {
        const put = new PutObjectCommand({
          ...input,
          ...this.#encryption,
          ...(length === undefined ? {} : { ContentLength: Number(length) }),
          ...(sha256 === undefined ? {} : { Metadata: { sha256 }, ChecksumSHA256: headers["x-amz-checksum-sha256"] }),
        });
        // The SDK adds a checksum of its own to a PUT that has none (a CRC32 of the empty body it sees when
        // signing), which S3 would hold the upload to: only the headers given here are signed.
        put.middlewareStack.addRelativeTo((next: PutHandler) => (args: Parameters<PutHandler>[0]) => {
          const request = args.request as { headers?: Record<string, string> };
          for (const name of Object.keys(request.headers ?? {})) {
            const sdkChecksum = name === "x-amz-sdk-checksum-algorithm" || name.startsWith("x-amz-checksum-");
            if (sdkChecksum && !(name in headers)) delete request.headers![name];
          }
          return next(args);
        }, { name: "bluestarPresignHeaders", relation: "before", toMiddleware: "presignInterceptMiddleware" });
        command = put;
      }
      const signingDate = new Date();
      let url: string;
      try {
        url = await getSignedUrl(this.#client, command, {
          expiresIn,
          signingDate,
          // Sent as headers, not hoisted into the query: S3 takes encryption only as headers.
          unhoistableHeaders: new Set(Object.keys(headers).filter((name) => name.startsWith("x-amz-"))),
          signableHeaders: new Set(Object.keys(headers)),
        });
      } catch (error) {
        throw toStoreError(error, `${context}: it could not be signed`, undefined);
      }
      const signed = new URL(url).searchParams.get("X-Amz-SignedHeaders")?.split(";") ?? [];
      const unsigned = Object.keys(headers).filter((name) => !signed.includes(name));
      if (unsigned.length > 0) {
        throw new FileStoreError(`${context}: the signer left ${unsigned.map(quote).join(", ")} unsigned`);
      }
      return { url, method, headers, expiresAt: new Date(signingDate.getTime() + expiresIn * 1000) };
    });
  }

  /** Confirms that `dst` is the copy just made: its size is the source's and its ETag the copy's. */
  async #confirmCopy(dst: string, size: number, etag: string | undefined, context: string): Promise<void> {
    let copy: HeadObjectCommandOutput;
    try {
      copy = await this.#client.send(new HeadObjectCommand({ Bucket: this.#bucket, Key: dst }));
    } catch (error) {
      throw toStoreError(error, `${context}: the copy could not be confirmed and the source is kept`, undefined);
    }
    const problems: string[] = [];
    if (copy.ContentLength !== size) problems.push(`it has ${copy.ContentLength} bytes, not ${size}`);
    if (etag !== undefined && copy.ETag !== undefined && copy.ETag !== etag) {
      problems.push(`its ETag is ${copy.ETag}, not ${etag}`);
    }
    if (problems.length > 0) {
      throw new FileStoreError(
        `${context}: the copy at ${quote(dst)} does not match (${problems.join(", ")}) and the source is kept`,
      );
    }
  }

  /**
   * Aborts a multipart upload, best effort. Returns `undefined` when no
   * parts remain, else a note for the error message.
   */
  async #abort(key: string, uploadId: string): Promise<string | undefined> {
    try {
      await this.#client.send(new AbortMultipartUploadCommand({ Bucket: this.#bucket, Key: key, UploadId: uploadId }));
    } catch (error) {
      // Already aborted (by lib-storage) or completed: nothing is left over.
      if (awsErrorName(error) !== "NoSuchUpload") {
        return `the abort also failed, so parts of upload ${
          quote(uploadId)
        } may remain until a lifecycle rule removes them`;
      }
    }
    this.#emit({ type: "multipart-aborted", bucket: this.#bucket, key, uploadId });
    return undefined;
  }

  /** Runs an operation begun at `started` (a `performance.now()` reading), reporting its failure (already a BlueStar error) through the hook. */
  async #failing<T>(action: FileStoreAction, key: string, started: number, body: () => Promise<T>): Promise<T> {
    try {
      return await body();
    } catch (error) {
      // Bad input a stream's source gave (a chunk that is not bytes) stays an InvalidInputError.
      if (error instanceof InvalidInputError) throw error;
      const wrapped = error instanceof FileStoreError || error instanceof ConflictError
        ? error
        : toStoreError(error, `Failed to ${action} ${quote(key)} in bucket ${quote(this.#bucket)}`, undefined);
      this.#emit({ type: "error", action, bucket: this.#bucket, key, error: wrapped, ...endedWith(started, wrapped) });
      throw wrapped;
    }
  }

  #checkOpen(context: string): void {
    if (this.#closed) throw new FileStoreError(`${context}: the store is closed`);
  }

  #emitWrite(key: string, bytes: number, parts: number, started: number): void {
    this.#emit({
      type: "write",
      bucket: this.#bucket,
      key,
      bytes,
      multipart: bytes > this.#multipartThreshold,
      parts,
      durationMs: elapsedMs(started),
      outcome: "ok",
    });
  }

  #emitMove(src: string, dst: string, bytes: number, parts: number, started: number): void {
    this.#emit({
      type: "move",
      bucket: this.#bucket,
      src,
      dst,
      bytes,
      parts,
      durationMs: elapsedMs(started),
      outcome: "ok",
    });
  }
}

/**
 * The one place an SDK (or network) error becomes a BlueStar error. The
 * message names the action, bucket and key (in `context`) and the S3 error
 * name and HTTP status, never the SDK's own message text or any credential.
 * The SDK error is the `cause`, or a redacted copy of it when it shows
 * signing material (a `SignatureDoesNotMatch` body's `CanonicalRequest`
 * carries the session token; see `safeCause`).
 *
 * @param error What the SDK threw.
 * @param context `Failed to <action> <key> ... bucket <bucket>`, followed by the reason.
 * @param missing The whole message when the object does not exist, making the
 *   error a FileNotFoundError; `undefined` when a 404 is just a failure.
 * @returns The error to throw, with `error` as its cause.
 */
function toStoreError(error: unknown, context: string, missing: string | undefined): FileStoreError {
  if (error instanceof FileStoreError) return error;
  if (error instanceof BlueStarError) return new FileStoreError(`${context}: ${error.message}`, { cause: error });
  const cause = safeCause(error);
  if (missing !== undefined && isMissingObject(error)) return new FileNotFoundError(missing, { cause });
  return new FileStoreError(`${context}: ${s3Reason(error)}`, { cause });
}

/** Why an S3 request failed, from the one classification (`classifyAwsError`), naming the S3 error and status. */
function s3Reason(error: unknown): string {
  const name = awsErrorName(error);
  const tag = errorTag(error);
  switch (classifyAwsError(error)) {
    case "no-such-bucket":
      return "the bucket does not exist";
    case "credentials-rejected":
      return `the credentials were rejected (${tag})`;
    case "access-denied":
      return `access denied (${tag})`;
    case "precondition":
      return `the object changed meanwhile (${tag})`;
    case "throttled":
      return `S3 is throttling requests (${tag})`;
    case "no-credentials":
      return `no AWS credentials were found (${name})`;
    case "timed-out":
    case "aborted":
      return `the request was aborted or timed out (${name})`;
  }
  if (awsHttpStatus(error) !== undefined) return `S3 refused the request (${tag})`;
  // A client-side failure (network, configuration): its code or message says what broke.
  const code = (error as { code?: unknown } | null)?.code;
  const message = redactCredentials(error instanceof Error ? error.message : String(error));
  return `the request failed (${typeof code === "string" ? `${name} ${code}` : name}: ${quote(message)})`;
}

/** Whether the error says the object (not the bucket or an upload) does not exist. */
function isMissingObject(error: unknown): boolean {
  const name = awsErrorName(error);
  return name === "NoSuchKey" || name === "NotFound" || (awsHttpStatus(error) === 404 && !NOT_KEY_404.has(name));
}

/**
 * Whether S3 refused a conditional request: a precondition failed (412), or
 * a conflicting request on the key ran at the same time (409
 * `ConditionalRequestConflict`).
 */
function isConditionFailure(error: unknown): boolean {
  const name = awsErrorName(error);
  return name === "PreconditionFailed" || awsHttpStatus(error) === 412 || name === "ConditionalRequestConflict";
}

/** 404s that are not about the object itself. */
const NOT_KEY_404 = new Set(["NoSuchBucket", "NoSuchUpload"]);

/** The S3 error name and HTTP status, for a message (`NoSuchKey, HTTP 404`). */
function errorTag(error: unknown): string {
  const status = awsHttpStatus(error);
  return status === undefined ? awsErrorName(error) : `${awsErrorName(error)}, HTTP ${status}`;
}

/** `bucket/key`, each key segment URL-encoded, as CopySource expects. */
function copySource(bucket: string, key: string): string {
  return `${bucket}/${key.split("/").map(encodeURIComponent).join("/")}`;
}

/** Inclusive byte ranges of `partSize` covering `size` bytes (one empty range for an empty object). */
function copyRanges(size: number, partSize: number): Array<[number, number]> {
  const ranges: Array<[number, number]> = [];
  for (let first = 0; first < size; first += partSize) ranges.push([first, Math.min(first + partSize, size) - 1]);
  return ranges;
}

/** Every problem with the options. */
function storeOptionProblems(options: S3FileStoreOptions): OptionProblem[] {
  if (options === null || typeof options !== "object") return [{ option: "options", problem: "are not an object" }];
  const problems = bucketProblems("bucket", options.bucket);
  if (options.client !== undefined) {
    if (!(options.client instanceof S3Client)) problems.push({ option: "client", problem: "is not an S3Client" });
    problems.push(...clashProblems(options, ["region", "endpointUrl"], "client", "configure the client instead"));
  }
  if (options.region !== undefined) problems.push(...regionProblems("region", options.region));
  if (options.endpointUrl !== undefined) problems.push(...endpointUrlProblems("endpointUrl", options.endpointUrl));
  if (
    options.serverSideEncryption !== undefined && options.serverSideEncryption !== "AES256" &&
    options.serverSideEncryption !== "aws:kms"
  ) {
    problems.push({
      option: "serverSideEncryption",
      value: String(options.serverSideEncryption),
      problem: 'is not "AES256" or "aws:kms"',
    });
  }
  if (options.kmsKeyId !== undefined) {
    if (typeof options.kmsKeyId !== "string" || options.kmsKeyId === "") {
      problems.push({ option: "kmsKeyId", problem: "is empty" });
    }
    if (options.serverSideEncryption === "AES256") {
      problems.push({ option: "kmsKeyId", problem: 'needs serverSideEncryption "aws:kms"' });
    }
  }
  const integer = (name: keyof S3FileStoreOptions & string, min: number, max: number) => {
    if (options[name] !== undefined) problems.push(...integerProblems(name, options[name], min, max));
  };
  integer("multipartThresholdBytes", 0, Number.MAX_SAFE_INTEGER);
  integer("partSizeBytes", MIN_PART_BYTES, MAX_PART_BYTES);
  integer("partConcurrency", 1, 64);
  if (options.pageSize !== undefined) {
    problems.push(...reasonProblems("pageSize", options.pageSize, pageSizeProblem(options.pageSize)));
  }
  integer("copyPartSizeBytes", MIN_PART_BYTES, MAX_PART_BYTES);
  integer("rangeSizeBytes", 64 * 1024, GiB);
  problems.push(...hookProblems("onEvent", options.onEvent));
  return problems;
}

/** What the middleware of a `PutObject` is handed on to (the SDK's `BuildHandler`). */
type PutHandler = (
  args: { input: PutObjectCommandInput; request: unknown },
) => Promise<{ output: PutObjectCommandOutput; response: unknown }>;

/** The chunks of `first`, then those of `rest`. */
async function* chain(
  first: Iterable<Uint8Array> | AsyncIterable<Uint8Array>,
  rest: AsyncIterable<Uint8Array>,
): AsyncGenerator<Uint8Array> {
  yield* first;
  yield* rest;
}

/**
 * The size of the chunks a stream reads a byte-stream body into, each
 * filled before it is handed out. The chunks are the consumer's to keep,
 * so each is fresh memory that V8 frees only at a collection, and small
 * ones bring collections sooner: on Deno, with `bench/read_stream_loopback.ts`,
 * a 1 GiB `readStream` peaked at +108 MiB with `fetch`'s own chunks and at
 * about +60 MiB with these, in twice the time (2.1 s instead of 1.1 to 1.3).
 */
const STREAM_CHUNK_BYTES = 8 * 1024;

/**
 * The one buffer a whole-file read fills, range after range. A BYOB read
 * hands its buffer back as a new `ArrayBuffer` over the same memory (the
 * one passed in is detached): `buffer` is always the live one.
 */
class FileBuffer {
  buffer: ArrayBuffer;
  /** How many bytes from the start are filled. */
  filled = 0;

  constructor(size: number) {
    this.buffer = new ArrayBuffer(size);
  }

  /** The bytes filled so far. */
  get bytes(): Uint8Array {
    return new Uint8Array(this.buffer, 0, this.filled);
  }

  /** How many bytes are left to fill. */
  get free(): number {
    return this.buffer.byteLength - this.filled;
  }
}

/**
 * A response body's chunks, checked to add up to its `Content-Length`: a
 * body that ends short or sends more fails with a {@linkcode FileStoreError}
 * (and one that sends more is cancelled before the excess is kept). Where
 * the body is a byte stream (Deno's `fetch` bodies are) it is read with
 * BYOB reads (see {@linkcode byobChunks}), else as the HTTP layer hands it
 * out (see {@linkcode plainChunks}). With `into`, every chunk is a view of
 * it. Ended early, it cancels the body, which closes the connection.
 */
async function* bodyChunks(
  body: GetObjectCommandOutput["Body"],
  length: number,
  context: string,
  into?: FileBuffer,
): AsyncGenerator<Uint8Array> {
  const stream = body?.transformToWebStream();
  const progress: BodyProgress = { received: 0, finished: stream === undefined };
  const byob = stream === undefined ? undefined : byobReader(stream);
  const plain = stream === undefined || byob !== undefined ? undefined : stream.getReader();
  try {
    if (byob !== undefined) yield* byobChunks(byob, length, context, into, progress);
    else if (plain !== undefined) yield* plainChunks(plain, length, context, into, progress);
  } finally {
    if (!progress.finished) await (byob ?? plain)?.cancel().catch(() => {});
  }
  if (progress.received !== length) {
    throw new FileStoreError(`${context}: the body was cut short (${progress.received} of ${length} bytes)`);
  }
}

/** How far a body was read, and whether it ended (or failed), so it needs no cancel. */
interface BodyProgress {
  received: number;
  finished: boolean;
}

/**
 * A body's chunks as the HTTP layer hands them out (plain views, not
 * copies), or, with `into`, copied into it.
 */
async function* plainChunks(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  length: number,
  context: string,
  into: FileBuffer | undefined,
  progress: BodyProgress,
): AsyncGenerator<Uint8Array> {
  for (;;) {
    const next = await readBody(() => reader.read(), context, progress);
    if (next.done) {
      progress.finished = true;
      return;
    }
    const chunk = next.value;
    if (progress.received + chunk.length > length || chunk.length > (into?.free ?? Infinity)) {
      throw tooLong(context, length);
    }
    progress.received += chunk.length;
    if (into === undefined) {
      yield new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length);
      continue;
    }
    new Uint8Array(into.buffer, into.filled, chunk.length).set(chunk);
    into.filled += chunk.length;
    yield new Uint8Array(into.buffer, into.filled - chunk.length, chunk.length);
  }
}

/**
 * A byte-stream body read with BYOB reads: with `into`, straight into it
 * (a chunk per range); without, into fresh chunks of
 * {@linkcode STREAM_CHUNK_BYTES}. Each chunk is filled before it is handed
 * out, since a part-filled one would hold its whole size. Once the body's
 * length is in, a one-byte read sees it end, or finds it longer.
 */
async function* byobChunks(
  reader: ReadableStreamBYOBReader,
  length: number,
  context: string,
  into: FileBuffer | undefined,
  progress: BodyProgress,
): AsyncGenerator<Uint8Array> {
  while (progress.received < length) {
    const size = Math.min(length - progress.received, into?.free ?? STREAM_CHUNK_BYTES);
    if (size === 0) break;
    // Every read hands the buffer back as a new ArrayBuffer (the one passed in is detached): keep the last.
    let buffer = into?.buffer ?? new ArrayBuffer(size);
    const start = into?.filled ?? 0;
    let filled = 0;
    let done = false;
    while (filled < size && !done) {
      const view = new Uint8Array(buffer, start + filled, size - filled);
      const next = await readBody(() => reader.read(view), context, progress);
      if (next.value !== undefined) buffer = next.value.buffer as ArrayBuffer;
      done = next.done;
      filled += next.value?.length ?? 0;
    }
    progress.received += filled;
    if (into !== undefined) {
      into.buffer = buffer;
      into.filled += filled;
    }
    if (filled > 0) yield new Uint8Array(buffer, start, filled);
    if (done) {
      progress.finished = true;
      return;
    }
  }
  const end = await readBody(() => reader.read(new Uint8Array(1)), context, progress);
  if (!end.done) throw tooLong(context, length);
  progress.finished = true;
}

/** One read of a body; a failure is a FileStoreError saying how far it got, and the body needs no cancel. */
async function readBody<R>(read: () => Promise<R>, context: string, progress: BodyProgress): Promise<R> {
  try {
    return await read();
  } catch (error) {
    progress.finished = true;
    throw toStoreError(error, `${context}: the body failed after ${progress.received} bytes`, undefined);
  }
}

/** The error of a body that sent more than its `Content-Length` (or than the file has). */
function tooLong(context: string, length: number): FileStoreError {
  return new FileStoreError(`${context}: the body sent more than its ${length} bytes`);
}

/** A BYOB reader of the stream, or `undefined` when it is not a byte stream (Node's bodies are not). */
function byobReader(stream: ReadableStream<Uint8Array>): ReadableStreamBYOBReader | undefined {
  try {
    return stream.getReader({ mode: "byob" });
  } catch {
    return undefined;
  }
}

/** The same chunks; `done` is called once the last has been taken. */
async function* thenCall(chunks: AsyncIterable<Uint8Array>, done: () => void): AsyncGenerator<Uint8Array> {
  yield* chunks;
  done();
}

/** The `first` chunk, then the rest of the source. */
async function* prepended(first: Uint8Array, rest: AsyncIterator<Uint8Array>): AsyncGenerator<Uint8Array> {
  yield first;
  for (let next = await rest.next(); next.done !== true; next = await rest.next()) yield next.value;
}

/**
 * Bytes copied into buffers of one part's size (the first grows to it),
 * with their SHA-256 so far:
 * the parts of a multipart upload. A buffer handed back once its part is
 * sent is reused (up to `keep` buffers): a fresh one per part would be
 * garbage the collector frees late (it is memory outside the JS heap), so
 * several parts' worth beyond those in flight would stay resident.
 */
class PartBuffers {
  /** The SHA-256 of every byte appended. */
  readonly hash: Hash = createHash("sha256");
  /** How many bytes were appended. */
  size = 0;
  readonly #partSize: number;
  readonly #keep: number;
  readonly #full: Uint8Array[] = [];
  readonly #free: Uint8Array[] = [];
  #current: Uint8Array | undefined;
  #filled = 0;
  /** How many parts were filled so far. */
  #filledParts = 0;

  constructor(partSize: number, keep: number) {
    this.#partSize = partSize;
    this.#keep = keep;
  }

  /** How many of `wanted` bytes fit in the part being filled. */
  room(wanted: number): number {
    return Math.min(wanted, this.#partSize - this.#filled);
  }

  /** Copies `length` bytes of `chunk` from `offset` on; returns the offset after them. */
  append(chunk: Uint8Array, offset: number, length: number): number {
    this.hash.update(chunk.subarray(offset, offset + length));
    this.size += length;
    for (const end = offset + length; offset < end;) {
      const taken = Math.min(end - offset, this.#partSize - this.#filled);
      const current = this.#bufferFor(this.#filled + taken);
      current.set(chunk.subarray(offset, offset + taken), this.#filled);
      this.#filled += taken;
      offset += taken;
      if (this.#filled === this.#partSize) {
        this.#full.push(current);
        this.#current = undefined;
        this.#filled = 0;
        this.#filledParts++;
      }
    }
    return offset;
  }

  /**
   * The buffer of the part being filled, with room for `needed` bytes. Until
   * a first part is full it starts small and doubles up to a part's size, so
   * a small file never costs a whole part's buffer; later parts take a spare
   * buffer or a full-size one.
   */
  #bufferFor(needed: number): Uint8Array {
    const current = this.#current;
    if (current !== undefined && current.length >= needed) return current;
    let buffer: Uint8Array;
    if (current !== undefined) {
      buffer = new Uint8Array(Math.min(this.#partSize, Math.max(needed, 2 * current.length)));
      buffer.set(current.subarray(0, this.#filled));
    } else {
      buffer = this.#free.pop() ??
        new Uint8Array(this.#filledParts > 0 ? this.#partSize : Math.min(this.#partSize, Math.max(needed, 64 * 1024)));
    }
    this.#current = buffer;
    return buffer;
  }

  /** The oldest full part not yet taken. */
  takeFull(): Uint8Array | undefined {
    return this.#full.shift();
  }

  /** The part being filled, if it has any bytes (taken once). */
  takeRest(): Uint8Array | undefined {
    const rest = this.#filled === 0 ? undefined : this.#current?.subarray(0, this.#filled);
    this.#current = undefined;
    this.#filled = 0;
    return rest;
  }

  /** Hands back the buffer of a part that was sent (a view of it). */
  release(part: Uint8Array): void {
    // The last part (shorter) is not reused: nothing follows it.
    if (part.length === this.#partSize && this.#free.length < this.#keep) this.#free.push(part);
  }

  /** Every byte appended, in one buffer (the part being filled itself when that is all). */
  contents(): Uint8Array {
    const rest = this.takeRest() ?? new Uint8Array();
    if (this.#full.length === 0) return rest;
    const bytes = new Uint8Array(this.size);
    let offset = 0;
    for (const part of [...this.#full.splice(0), rest]) {
      bytes.set(part, offset);
      offset += part.length;
    }
    return bytes;
  }
}

/** A {@linkcode FileStat} from a `HeadObject`. */
function fileStat(path: string, head: HeadObjectCommandOutput): FileStat {
  return {
    path,
    size: head.ContentLength ?? 0,
    sha256: head.Metadata?.sha256,
    lastModified: head.LastModified ?? new Date(0),
    etag: head.ETag ?? "",
  };
}

/** The expiry of a presigned URL, in seconds: the default, or one S3 allows. */
function presignExpiry(value: unknown, context: string): number {
  if (value === undefined) return DEFAULT_PRESIGN_SECONDS;
  if (!Number.isSafeInteger(value) || (value as number) < 1 || (value as number) > MAX_PRESIGN_SECONDS) {
    throw new InvalidInputError(
      `${context}: expiresInSeconds ${quote(value)} is not an integer from 1 to ${MAX_PRESIGN_SECONDS} (7 days)`,
    );
  }
  return value as number;
}
