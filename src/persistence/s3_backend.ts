/**
 * The S3 {@linkcode IFileStore}: payroll input files, payment files and
 * archives in one bucket, with the same behaviour as the in-memory
 * reference (`MemoryFileStore`).
 *
 * - Every path is checked before any request (`checkPath` / `checkPrefix`).
 * - Large payloads go up in parts and a failed multipart upload is aborted,
 *   so no orphaned parts stay behind.
 * - A move copies, confirms the copy, and only then deletes the source; a
 *   failure at any step leaves the source in place and says what exists.
 * - Every SDK error comes out as a {@linkcode FileStoreError} (or
 *   {@linkcode FileNotFoundError}) with the SDK error as `cause`.
 *
 * @module
 */

import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  type CopyObjectCommandInput,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  type HeadObjectCommandOutput,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCopyCommand,
} from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { BlueStarError, ConfigError, FileNotFoundError, FileStoreError, quote, redactUrl } from "../core/errors.ts";
import { mapConcurrently } from "../core/concurrency.ts";
import { checkPath, checkPrefix, comparePaths } from "../core/keys.ts";
import type { IFileStore } from "../core/protocols.ts";
import { toBytes } from "../core/values.ts";
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
  /** The bucket every path lives in. */
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
   * Objects larger than this are moved with a multipart copy
   * (`UploadPartCopy`) rather than one `CopyObject`. S3 cannot copy more than
   * 5 GiB at once; a lower value only makes moves use part copies sooner.
   *
   * @default {5368709120} (5 GiB)
   */
  maxSingleCopyBytes?: number;
  /**
   * The size of each part of a multipart copy: 5 MiB to 5 GiB. Raised
   * automatically when an object would need more than 10,000 parts.
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
    /** Whether it was copied in parts (`UploadPartCopy`). */
    multipartCopy: boolean;
    /** How many parts it was copied in (1 for a single `CopyObject`, 0 for a move onto itself). */
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
    /** Pages requested. */
    pages: number;
    /** How long the listing took, in milliseconds. */
    durationMs: number;
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
    error: FileStoreError;
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
  readonly #maxSingleCopy: number;
  readonly #copyPartSize: number;
  readonly #onEvent: ((event: FileStoreEvent) => void) | undefined;
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
    this.#pageSize = options.pageSize ?? 1000;
    this.#maxSingleCopy = options.maxSingleCopyBytes ?? MAX_PART_BYTES;
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
   * @param data The content: bytes or a string. Bytes are sent as they are,
   *   without a copy, so leave them unchanged until the returned promise settles.
   * @returns Nothing, once the file is stored.
   * @throws {InvalidInputError} When the path or the content is not valid; nothing is sent.
   * @throws {FileStoreError} When the write fails; the file at the path is as it was.
   */
  async write(path: string, data: Uint8Array | string): Promise<void> {
    checkPath(path);
    // Bytes go up as they are, not copied: a copy would double the memory of a
    // large write. A string is encoded; anything else is an InvalidInputError.
    const bytes = data instanceof Uint8Array ? data : toBytes(data, path);
    const context = `Failed to write file ${quote(path)} to bucket ${quote(this.#bucket)}`;
    await this.#failing("write", path, async () => {
      this.#checkOpen(context);
      const started = performance.now();
      const params = { Bucket: this.#bucket, Key: path, Body: bytes, ...this.#encryption };
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
   * Moves a file: copies it (server-side, with this store's encryption),
   * confirms the copy, then deletes the source. Afterwards `dst` has the
   * content and `src` is gone. An object over `maxSingleCopyBytes` (5 GiB)
   * is copied in parts. Moving a file onto itself changes nothing.
   *
   * @param src The file to move.
   * @param dst Where it goes; a file there is replaced.
   * @returns Nothing, once the source is gone.
   * @throws {InvalidInputError} When either path is not valid; nothing is sent.
   * @throws {FileNotFoundError} When `src` does not exist; nothing changes.
   * @throws {FileStoreError} When the copy fails or cannot be confirmed (the source is kept), or when the
   * source cannot be deleted after the copy (the message says both keys now exist).
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
      if (src === dst) {
        this.#emitMove(src, dst, source.ContentLength ?? 0, 0, started);
        return;
      }
      const size = source.ContentLength ?? 0;
      const copyContext = `${context}: the copy failed and the source is kept`;
      let copied: { etag: string | undefined; parts: number };
      if (size > this.#maxSingleCopy) {
        copied = await this.#copyInParts(src, dst, source, copyContext, `${context}: the source does not exist`);
      } else {
        try {
          const response = await this.#client.send(
            new CopyObjectCommand({ ...this.#copyParams(src, dst), CopySourceIfMatch: source.ETag }),
          );
          copied = { etag: response.CopyObjectResult?.ETag, parts: 1 };
        } catch (error) {
          throw toStoreError(error, copyContext, `${context}: the source does not exist`);
        }
      }
      await this.#confirmCopy(dst, size, copied.etag, context);
      try {
        // IfMatch: a source rewritten since the copy is a new file, never deleted unseen.
        await this.#client.send(new DeleteObjectCommand({ Bucket: this.#bucket, Key: src, IfMatch: source.ETag }));
      } catch (error) {
        const deleteContext = `${context}: copied to ${quote(dst)} but failed to delete ${quote(src)}`;
        // Already gone (deleted meanwhile): the move's outcome holds, dst has the content and src is gone.
        if (!isMissingObject(error)) {
          throw toStoreError(error, `${deleteContext}, so both keys now exist`, undefined);
        }
      }
      this.#emitMove(src, dst, size, copied.parts, started);
    });
  }

  /**
   * Every path under a prefix, following every listing page, sorted by code
   * point (the UTF-8 byte order S3 lists in).
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
      for (const object of page.Contents ?? []) {
        if (object.Key !== undefined) paths.push(object.Key);
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
    this.#emit({ type: "list", bucket: this.#bucket, prefix, keys, pages, durationMs: since(started) });
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
   * CopyObject parameters: the per-segment URL-encoded source, this store's
   * encryption, and a fresh full-object CRC32 for the copy (without it, a
   * copy of a multipart object can carry the source's composite checksum,
   * which moto then serves as a full-object one and the SDK rejects).
   */
  #copyParams(src: string, dst: string): CopyObjectCommandInput {
    return {
      Bucket: this.#bucket,
      Key: dst,
      CopySource: copySource(this.#bucket, src),
      ChecksumAlgorithm: "CRC32",
      ...this.#encryption,
    };
  }

  /** Copies an object too large for one CopyObject with UploadPartCopy; aborts on any failure. */
  async #copyInParts(
    src: string,
    dst: string,
    source: HeadObjectCommandOutput,
    context: string,
    missing: string,
  ): Promise<{ etag: string | undefined; parts: number }> {
    const size = source.ContentLength ?? 0;
    let uploadId: string | undefined;
    try {
      const created = await this.#client.send(
        new CreateMultipartUploadCommand({
          Bucket: this.#bucket,
          Key: dst,
          ...this.#encryption,
          ContentType: source.ContentType,
          ContentEncoding: source.ContentEncoding,
          ContentDisposition: source.ContentDisposition,
          ContentLanguage: source.ContentLanguage,
          CacheControl: source.CacheControl,
          Metadata: source.Metadata,
        }),
      );
      uploadId = created.UploadId;
      if (uploadId === undefined) throw new FileStoreError(`${context}: S3 gave no upload id`);
      const id = uploadId;
      const ranges = copyRanges(size, Math.max(this.#copyPartSize, Math.ceil(size / MAX_PARTS)));
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
      const completed = await this.#client.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.#bucket,
          Key: dst,
          UploadId: id,
          MultipartUpload: { Parts: etags.map((ETag, index) => ({ ETag, PartNumber: index + 1 })) },
        }),
      );
      return { etag: completed.ETag, parts: ranges.length };
    } catch (error) {
      const kept = uploadId === undefined ? undefined : await this.#abort(dst, uploadId);
      throw toStoreError(error, kept === undefined ? context : `${context} (${kept})`, missing);
    }
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
      const wrapped = error instanceof FileStoreError
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
      multipartCopy: bytes > this.#maxSingleCopy && src !== dst,
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
  const tag = status === undefined ? name : `${name}, HTTP ${status}`;
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
  const { bucket } = options;
  // deno-lint-ignore no-control-regex
  if (typeof bucket !== "string" || bucket === "" || /[\s\u0000-\u001f\u007f]/.test(bucket)) {
    problems.push(`bucket ${quote(bucket)} is not a bucket name`);
  }
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
  integer("pageSize", options.pageSize, 1, 1000);
  integer("maxSingleCopyBytes", options.maxSingleCopyBytes, 0, MAX_PART_BYTES);
  integer("copyPartSizeBytes", options.copyPartSizeBytes, MIN_PART_BYTES, MAX_PART_BYTES);
  if (options.onEvent !== undefined && typeof options.onEvent !== "function") {
    problems.push("onEvent is not a function");
  }
  return problems;
}
