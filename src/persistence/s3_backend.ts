/**
 * The S3 {@linkcode IFileStore}: payroll input files, payment files and
 * archives in one bucket, with the same behaviour as the in-memory
 * reference (`MemoryFileStore`).
 *
 * - Every path is checked before any request (`checkPath` / `checkPrefix`).
 * - Large payloads go up in parts and a failed multipart upload is aborted,
 *   so no orphaned parts stay behind.
 * - A move creates the destination only where nothing is, confirms the copy,
 *   and only then deletes the source, on condition that it is still the
 *   object copied: of concurrent moves of one source, or to one destination,
 *   exactly one lands, and a move that lost removes the copy it made.
 * - Listings skip keys the store would refuse (written by other tools:
 *   `dir/` folder markers, `a//b`, `./x`, control characters) and report each
 *   through the event hook, so every listed path can be read.
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
  GetObjectLockConfigurationCommand,
  HeadObjectCommand,
  type HeadObjectCommandOutput,
  ListObjectsV2Command,
  ListObjectVersionsCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCopyCommand,
} from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import {
  BlueStarError,
  ConfigError,
  ConflictError,
  FileNotFoundError,
  FileStoreError,
  quote,
  redactUrl,
} from "../core/errors.ts";
import { mapConcurrently } from "../core/concurrency.ts";
import {
  bucketNameProblem,
  checkPath,
  checkPrefix,
  comparePaths,
  MAX_PAGE_SIZE,
  pageSizeProblem,
  pathProblem,
} from "../core/keys.ts";
import type { IFileStore } from "../core/protocols.ts";
import type { FileWriteOptions } from "../core/types.ts";
import { checkRetainUntil, toBytes } from "../core/values.ts";
import { redactCredentials, safeCause } from "./aws_errors.ts";

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/** S3's smallest part (every part but the last). */
const MIN_PART_BYTES = 5 * MiB;
/** S3's largest part, and the largest object one CopyObject can copy. */
const MAX_PART_BYTES = 5 * GiB;
/** S3's most parts in one multipart upload. */
const MAX_PARTS = 10_000;

/** Options of {@linkcode S3FileStore}. */
export interface S3FileStoreOptions {
  /** The bucket every path lives in: a name S3's naming rules for general purpose buckets allow. */
  bucket: string;
  /**
   * The AWS region. Ignored when `client` is given.
   *
   * @default {undefined} The SDK's chain: `AWS_REGION`, then the shared config file.
   */
  region?: string;
  /**
   * A custom endpoint (LocalStack, moto, MinIO), addressed path-style
   * (`forcePathStyle: true`). Ignored when `client` is given.
   *
   * @default {undefined} The region's AWS endpoint, virtual-hosted style.
   */
  endpointUrl?: string;
  /**
   * An existing client to use instead of creating one. {@linkcode S3FileStore.close}
   * leaves it open: whoever made it closes it.
   *
   * @default {undefined} A client is created from `region` and `endpointUrl`, with credentials from the standard AWS chain.
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
   * Called after every operation and on every failure. It must not throw;
   * if it does, the error is ignored and the operation's outcome stands.
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
    action: "read" | "write" | "move" | "list";
    /** The bucket. */
    bucket: string;
    /** The key or prefix the operation was on (for a move, the source). */
    key: string;
    /** The error thrown to the caller. */
    error: FileStoreError | ConflictError;
  };

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
 *   files.close();
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
  readonly #onEvent: ((event: FileStoreEvent) => void) | undefined;
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
    const problems = optionProblems(options);
    if (problems.length > 0) {
      throw new ConfigError(`Invalid S3 file store options: ${problems.join("; ")}`);
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
    this.#onEvent = options.onEvent;
    if (options.client !== undefined) {
      this.#client = options.client;
      this.#ownsClient = false;
    } else {
      this.#client = new S3Client({
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
   * A file's bytes.
   *
   * @param path The path, e.g. `"in/batch-1.csv"`.
   * @returns A copy of the bytes.
   * @throws {InvalidInputError} When the path is not a valid relative key; nothing is sent.
   * @throws {FileNotFoundError} When there is no such file.
   * @throws {FileStoreError} When S3 fails or refuses the read.
   */
  async read(path: string): Promise<Uint8Array> {
    checkPath(path);
    const context = `Failed to read file ${quote(path)} from bucket ${quote(this.#bucket)}`;
    return await this.#failing("read", path, async () => {
      this.#checkOpen(context);
      const started = performance.now();
      let bytes: Uint8Array;
      let expected: number | undefined;
      try {
        const response = await this.#client.send(new GetObjectCommand({ Bucket: this.#bucket, Key: path }));
        expected = response.ContentLength;
        bytes = response.Body === undefined ? new Uint8Array() : await response.Body.transformToByteArray();
      } catch (error) {
        throw toStoreError(error, context, `${context}: it does not exist`);
      }
      if (expected !== undefined && bytes.length !== expected) {
        throw new FileStoreError(`${context}: the body was cut short (${bytes.length} of ${expected} bytes)`);
      }
      this.#emit({ type: "read", bucket: this.#bucket, key: path, bytes: bytes.length, durationMs: since(started) });
      return bytes;
    });
  }

  /**
   * Writes a file, replacing any file at the path. A string is written as
   * UTF-8. A payload over `multipartThresholdBytes` goes up in parts; if any
   * part fails the upload is aborted, so neither a partial file nor orphaned
   * parts remain.
   *
   * @param path The path.
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
    await this.#failing("write", path, async () => {
      this.#checkOpen(context);
      const started = performance.now();
      const params = { Bucket: this.#bucket, Key: path, Body: bytes, ...this.#encryption };
      if (retainUntil !== undefined) {
        const lock = await this.#hasObjectLock(context);
        try {
          await this.#client.send(
            new PutObjectCommand({
              ...params,
              IfNoneMatch: "*",
              ...(lock ? { ObjectLockMode: "COMPLIANCE", ObjectLockRetainUntilDate: retainUntil } : {}),
            }),
          );
        } catch (error) {
          if (!isConditionFailure(error)) throw toStoreError(error, context, undefined);
          throw new ConflictError(`${context}: a file is at the path`, { cause: safeCause(error) });
        }
        this.#emitWrite(path, bytes.length, 1, started);
        return;
      }
      if (bytes.length <= this.#multipartThreshold) {
        try {
          await this.#client.send(new PutObjectCommand(params));
        } catch (error) {
          throw toStoreError(error, context, undefined);
        }
        this.#emitWrite(path, bytes.length, 1, started);
        return;
      }
      const partSize = Math.max(this.#partSize, Math.ceil(bytes.length / MAX_PARTS));
      const upload = new Upload({
        client: this.#client,
        params,
        partSize,
        queueSize: this.#partConcurrency,
        leavePartsOnError: false,
      });
      try {
        await upload.done();
      } catch (error) {
        // Upload aborts on failure, but when that abort fails its error is the
        // one we see: abort again so no parts stay behind (a second abort of a
        // gone upload is a NoSuchUpload, which is fine).
        const uploadId = upload.uploadId;
        const kept = uploadId === undefined ? undefined : await this.#abort(path, uploadId);
        throw toStoreError(error, kept === undefined ? context : `${context} (${kept})`, undefined);
      }
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
    return await this.#failing("read", path, async () => {
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

  /** Whether the bucket has Object Lock enabled; a failed answer is asked again next time. */
  #hasObjectLock(context: string): Promise<boolean> {
    this.#objectLock ??= this.#client.send(new GetObjectLockConfigurationCommand({ Bucket: this.#bucket })).then(
      (output) => output.ObjectLockConfiguration?.ObjectLockEnabled === "Enabled",
      (error) => {
        if (errorName(error) === "ObjectLockConfigurationNotFoundError") return false;
        this.#objectLock = undefined;
        throw toStoreError(error, `${context}: cannot tell whether the bucket has Object Lock`, undefined);
      },
    );
    return this.#objectLock;
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
    await this.#failing("move", src, async () => {
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
      const page = await this.#failing("list", prefix, async () => {
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
        this.#emit({ type: "error", action: "list", bucket: this.#bucket, key: prefix, error });
        throw error;
      }
      keys += paths.length;
      if (paths.length > 0) yield paths;
    } while (token !== undefined);
    this.#emit({ type: "list", bucket: this.#bucket, prefix, keys, skipped, pages, durationMs: since(started) });
  }

  /**
   * Closes the store: destroys the client it created (a client passed in
   * through `client` stays open). Later calls fail with a `FileStoreError`.
   * Closing twice is harmless.
   *
   * @returns Nothing.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#ownsClient) this.#client.destroy();
  }

  /**
   * Creates `dst` as a copy of the source only if no object is there, and
   * aborts the upload on any failure. S3 also honours `If-None-Match` on
   * `CopyObject`, but moto ignores it there (and `CopySourceIfMatch`) while
   * it honours it on `CompleteMultipartUpload` and `PutObject`: a part copy,
   * which also copies over 5 GiB, works alike on both.
   */
  async #copyToNewKey(
    src: string,
    dst: string,
    source: HeadObjectCommandOutput,
    context: string,
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
      Metadata: source.Metadata,
    };
    // Which condition a refusal is about: the source's ETag (a part copy) or the empty destination.
    let refused: "source" | "destination" = "destination";
    let uploadId: string | undefined;
    try {
      if (size === 0) {
        // No byte to copy (a part copy needs one); the delete's If-Match still checks the source is unchanged.
        const put = await this.#client.send(
          new PutObjectCommand({ ...object, Body: new Uint8Array(), IfNoneMatch: "*" }),
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
          IfNoneMatch: "*",
          MultipartUpload: { Parts: etags.map((ETag, index) => ({ ETag, PartNumber: index + 1 })) },
        }),
      );
      return { etag: completed.ETag, parts: ranges.length };
    } catch (error) {
      const kept = uploadId === undefined ? undefined : await this.#abort(dst, uploadId);
      const note = kept === undefined ? "" : ` (${kept})`;
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
      if (attemptsOf(error) !== 1) {
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
    if (attemptsOf(error) !== 1) {
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
      if (errorName(error) !== "NoSuchUpload") {
        return `the abort also failed, so parts of upload ${
          quote(uploadId)
        } may remain until a lifecycle rule removes them`;
      }
    }
    this.#emit({ type: "multipart-aborted", bucket: this.#bucket, key, uploadId });
    return undefined;
  }

  /** Runs an operation, reporting its failure (already a BlueStar error) through the hook. */
  async #failing<T>(action: "read" | "write" | "move" | "list", key: string, body: () => Promise<T>): Promise<T> {
    try {
      return await body();
    } catch (error) {
      const wrapped = error instanceof FileStoreError || error instanceof ConflictError
        ? error
        : toStoreError(error, `Failed to ${action} ${quote(key)} in bucket ${quote(this.#bucket)}`, undefined);
      this.#emit({ type: "error", action, bucket: this.#bucket, key, error: wrapped });
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
      durationMs: since(started),
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
      durationMs: since(started),
    });
  }

  /** Calls the hook; a hook that throws or rejects never changes an operation's outcome. */
  #emit(event: FileStoreEvent): void {
    if (this.#onEvent === undefined) return;
    try {
      const result: unknown = this.#onEvent(event);
      if (result instanceof Promise) result.catch(() => {});
    } catch {
      // The hook's failure is the hook's business.
    }
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
  const name = errorName(error);
  const status = httpStatus(error);
  const tag = errorTag(error);
  const cause = safeCause(error);
  if (missing !== undefined && isMissingObject(error)) return new FileNotFoundError(missing, { cause });
  let reason: string;
  if (name === "NoSuchBucket") reason = "the bucket does not exist";
  else if (CREDENTIAL_ERRORS.has(name)) reason = `the credentials were rejected (${tag})`;
  else if (name === "AccessDenied" || status === 403) reason = `access denied (${tag})`;
  else if (name === "PreconditionFailed" || status === 412) reason = `the object changed meanwhile (${tag})`;
  else if (name === "SlowDown" || status === 503) reason = `S3 is throttling requests (${tag})`;
  else if (name === "CredentialsProviderError") reason = `no AWS credentials were found (${name})`;
  else if (name === "AbortError" || name === "TimeoutError") reason = `the request was aborted or timed out (${name})`;
  else if (status !== undefined) reason = `S3 refused the request (${tag})`;
  else {
    // A client-side failure (network, configuration): its code or message says what broke.
    const code = (error as { code?: unknown } | null)?.code;
    const message = redactCredentials(error instanceof Error ? error.message : String(error));
    reason = `the request failed (${typeof code === "string" ? `${name} ${code}` : name}: ${quote(message)})`;
  }
  return new FileStoreError(`${context}: ${reason}`, { cause });
}

/** Whether the error says the object (not the bucket or an upload) does not exist. */
function isMissingObject(error: unknown): boolean {
  const name = errorName(error);
  return name === "NoSuchKey" || name === "NotFound" || (httpStatus(error) === 404 && !NOT_KEY_404.has(name));
}

/**
 * Whether S3 refused a conditional request: a precondition failed (412), or
 * a conflicting request on the key ran at the same time (409
 * `ConditionalRequestConflict`).
 */
function isConditionFailure(error: unknown): boolean {
  const name = errorName(error);
  return name === "PreconditionFailed" || httpStatus(error) === 412 || name === "ConditionalRequestConflict";
}

/**
 * How many attempts the SDK's retry strategy made for a failed request, or
 * `undefined` when it does not say. Above 1, an earlier attempt may have
 * landed with its answer lost, so a refusal may answer this request itself.
 */
function attemptsOf(error: unknown): number | undefined {
  const attempts = (error as { $metadata?: { attempts?: unknown } } | null)?.$metadata?.attempts;
  return typeof attempts === "number" ? attempts : undefined;
}

/** 404s that are not about the object itself. */
const NOT_KEY_404 = new Set(["NoSuchBucket", "NoSuchUpload"]);

/** Errors that mean the credentials, not the permissions, are wrong. */
const CREDENTIAL_ERRORS = new Set([
  "InvalidAccessKeyId",
  "SignatureDoesNotMatch",
  "ExpiredToken",
  "InvalidToken",
  "TokenRefreshRequired",
]);

function errorName(error: unknown): string {
  const name = (error as { name?: unknown } | null)?.name;
  return typeof name === "string" && name !== "" ? name : "Error";
}

/** The S3 error name and HTTP status, for a message (`NoSuchKey, HTTP 404`). */
function errorTag(error: unknown): string {
  const status = httpStatus(error);
  return status === undefined ? errorName(error) : `${errorName(error)}, HTTP ${status}`;
}

function httpStatus(error: unknown): number | undefined {
  const status = (error as { $metadata?: { httpStatusCode?: unknown } } | null)?.$metadata?.httpStatusCode;
  return typeof status === "number" ? status : undefined;
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

function since(started: number): number {
  return Math.round((performance.now() - started) * 100) / 100;
}

/** Every problem with the options, as message fragments. */
function optionProblems(options: S3FileStoreOptions): string[] {
  const problems: string[] = [];
  if (options === null || typeof options !== "object") return ["the options are not an object"];
  const bucket = bucketNameProblem(options.bucket);
  if (bucket !== undefined) problems.push(`bucket ${quote(options.bucket)} is not a bucket name: ${bucket}`);
  if (options.client !== undefined) {
    if (!(options.client instanceof S3Client)) problems.push("client is not an S3Client");
    if (options.region !== undefined || options.endpointUrl !== undefined) {
      problems.push("region and endpointUrl cannot be given with client (configure the client instead)");
    }
  }
  if (options.region !== undefined && (typeof options.region !== "string" || options.region === "")) {
    problems.push(`region ${quote(options.region)} is not a region name`);
  }
  if (options.endpointUrl !== undefined) {
    let url: URL | undefined;
    try {
      url = new URL(options.endpointUrl);
    } catch {
      url = undefined;
    }
    if (url === undefined || (url.protocol !== "http:" && url.protocol !== "https:")) {
      problems.push(`endpointUrl ${quote(redactUrl(options.endpointUrl))} is not an http(s) URL`);
    } else if (url.username !== "" || url.password !== "") {
      problems.push("endpointUrl must not carry credentials");
    }
  }
  if (
    options.serverSideEncryption !== undefined && options.serverSideEncryption !== "AES256" &&
    options.serverSideEncryption !== "aws:kms"
  ) {
    problems.push(`serverSideEncryption ${quote(options.serverSideEncryption)} is not "AES256" or "aws:kms"`);
  }
  if (options.kmsKeyId !== undefined) {
    if (typeof options.kmsKeyId !== "string" || options.kmsKeyId === "") problems.push("kmsKeyId is empty");
    if (options.serverSideEncryption === "AES256") problems.push('kmsKeyId needs serverSideEncryption "aws:kms"');
  }
  const integer = (name: string, value: number | undefined, min: number, max: number) => {
    if (value !== undefined && (!Number.isSafeInteger(value) || value < min || value > max)) {
      problems.push(`${name} ${quote(value)} is not an integer from ${min} to ${max}`);
    }
  };
  integer("multipartThresholdBytes", options.multipartThresholdBytes, 0, Number.MAX_SAFE_INTEGER);
  integer("partSizeBytes", options.partSizeBytes, MIN_PART_BYTES, MAX_PART_BYTES);
  integer("partConcurrency", options.partConcurrency, 1, 64);
  const pageSize = options.pageSize === undefined ? undefined : pageSizeProblem(options.pageSize);
  if (pageSize !== undefined) problems.push(`pageSize ${quote(options.pageSize)}: ${pageSize}`);
  integer("copyPartSizeBytes", options.copyPartSizeBytes, MIN_PART_BYTES, MAX_PART_BYTES);
  if (options.onEvent !== undefined && typeof options.onEvent !== "function") {
    problems.push("onEvent is not a function");
  }
  return problems;
}
