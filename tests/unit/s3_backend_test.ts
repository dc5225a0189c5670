// S3FileStore against a mocked S3Client: the failure paths moto cannot produce.
import assert from "node:assert/strict";
import { after, afterEach, before, describe, it, mock } from "node:test";
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  NoSuchKey,
  NotFound,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
  UploadPartCommand,
  UploadPartCopyCommand,
} from "@aws-sdk/client-s3";
import { mockClient } from "aws-sdk-client-mock";
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import {
  ConfigError,
  ConflictError,
  FileNotFoundError,
  FileStoreError,
  type FileStoreEvent,
  InvalidInputError,
  S3FileStore,
  type S3FileStoreOptions,
} from "../../mod.ts";
import { BAD_PATHS, streamOf } from "../contract/fixtures.ts";
import { bucketNameProblem } from "../../src/core/keys.ts";
import { resolveConfig } from "../../src/persistence/config.ts";
import { parseSeedArgs } from "../../scripts/seed_dynamodb.ts";

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

function serviceError(name: string, status: number, message = `${name} from S3`): S3ServiceException {
  return new S3ServiceException({
    name,
    $fault: status >= 500 ? "server" : "client",
    $metadata: { httpStatusCode: status },
    message,
  });
}

const accessDenied = () => serviceError("AccessDenied", 403, "Access Denied");
const noSuchKey = () =>
  new NoSuchKey({ $metadata: { httpStatusCode: 404 }, message: "The specified key does not exist." });
const notFound = () => new NotFound({ $metadata: { httpStatusCode: 404 }, message: "Not Found" });

/** Asserts a rejection is exactly `type` (not a subclass), with the SDK error kept as cause. */
async function rejectsWith(
  promise: Promise<unknown>,
  type: typeof FileStoreError | typeof FileNotFoundError | typeof ConflictError,
  cause: unknown,
  message: RegExp | string,
): Promise<FileStoreError | ConflictError> {
  let caught: unknown;
  await assert.rejects(promise, (error: unknown) => {
    caught = error;
    return true;
  });
  assert.ok(caught instanceof type, `expected ${type.name}, got ${caught}`);
  assert.equal((caught as Error).constructor, type);
  assert.ok(!(caught instanceof S3ServiceException));
  if (cause !== undefined) assert.equal((caught as Error).cause, cause);
  if (typeof message === "string") assert.equal((caught as Error).message, message);
  else assert.match((caught as Error).message, message);
  return caught as FileStoreError | ConflictError;
}

const mockS3 = () => mockClient(S3Client);

/**
 * A byte stream of `bytes`, at most `chunk` bytes per read, as Deno's
 * `fetch` bodies are: it fills a BYOB reader's own buffer, else enqueues
 * copies. `served` counts each, and the cancels.
 */
function byteStreamOf(
  bytes: Uint8Array,
  chunk: number,
  served: { byob: number; enqueued: number; cancelled: number },
): ReadableStream<Uint8Array> {
  let offset = 0;
  return new ReadableStream({
    type: "bytes",
    pull(controller) {
      const request = controller.byobRequest;
      if (offset >= bytes.length) {
        controller.close();
        request?.respond(0);
        return;
      }
      const length = Math.min(chunk, bytes.length - offset, request?.view?.byteLength ?? chunk);
      const next = bytes.subarray(offset, offset + length);
      offset += length;
      if (request?.view) {
        new Uint8Array(request.view.buffer, request.view.byteOffset, length).set(next);
        request.respond(length);
        served.byob++;
      } else {
        controller.enqueue(next.slice());
        served.enqueued++;
      }
    },
    cancel() {
      served.cancelled++;
    },
  });
}

describe("S3FileStore with a mocked S3Client", () => {
  let s3: ReturnType<typeof mockS3>;
  let client: S3Client;
  const events: FileStoreEvent[] = [];

  before(() => {
    s3 = mockS3();
    client = new S3Client({ region: "us-east-1", credentials: { accessKeyId: "AKIDTEST", secretAccessKey: "SECRET" } });
  });
  afterEach(() => {
    s3.reset();
    events.length = 0;
  });
  after(() => {
    s3.restore();
    client.destroy();
  });

  const open = (options: Partial<S3FileStoreOptions> = {}) =>
    new S3FileStore({ bucket: "bkt", client, onEvent: (event) => events.push(event), ...options });

  describe("read()", () => {
    it("maps NoSuchKey to FileNotFoundError naming bucket and key, with the cause", async () => {
      const sdkError = noSuchKey();
      s3.on(GetObjectCommand).rejects(sdkError);
      await rejectsWith(
        open().read("in/a.csv"),
        FileNotFoundError,
        sdkError,
        'Failed to read file "in/a.csv" from bucket "bkt": it does not exist',
      );
      assert.equal(events.at(-1)?.type, "error");
    });

    it("maps any 404 on the object to FileNotFoundError", async () => {
      s3.on(GetObjectCommand).rejects(serviceError("Unknown", 404));
      await assert.rejects(open().read("in/a.csv"), FileNotFoundError);
    });

    it("maps access denied to a FileStoreError with code FILE_STORE_ERROR", async () => {
      const sdkError = accessDenied();
      s3.on(GetObjectCommand).rejects(sdkError);
      const error = await rejectsWith(
        open().read("in/a.csv"),
        FileStoreError,
        sdkError,
        'Failed to read file "in/a.csv" from bucket "bkt": access denied (AccessDenied, HTTP 403)',
      );
      assert.equal(error.code, "FILE_STORE_ERROR");
    });

    it("maps a missing bucket to a FileStoreError, not FileNotFoundError", async () => {
      s3.on(GetObjectCommand).rejects(serviceError("NoSuchBucket", 404));
      await rejectsWith(open().read("a"), FileStoreError, undefined, /: the bucket does not exist$/);
    });

    it("never puts the SDK's message (which may echo credentials) in its own", async () => {
      const sdkError = serviceError("SignatureDoesNotMatch", 403, "AWSAccessKeyId AKIDTEST StringToSign ... SECRET");
      s3.on(GetObjectCommand).rejects(sdkError);
      const error = await rejectsWith(open().read("a"), FileStoreError, sdkError, /credentials were rejected/);
      assert.ok(!error.message.includes("AKIDTEST") && !error.message.includes("SECRET"), error.message);
    });

    it("wraps a network failure (no HTTP status) too", async () => {
      const network = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:4566"), { code: "ECONNREFUSED" });
      s3.on(GetObjectCommand).rejects(network);
      await rejectsWith(open().read("a"), FileStoreError, network, /the request failed \(Error ECONNREFUSED/);
    });

    it("rejects a body shorter than its Content-Length", async () => {
      s3.on(GetObjectCommand).resolves({
        ContentLength: 10,
        Body: { transformToWebStream: () => streamOf([Uint8Array.of(1, 2)]) } as never,
      });
      await rejectsWith(open().read("a"), FileStoreError, undefined, /cut short \(2 of 10 bytes\)/);
    });

    it("rejects a body longer than its Content-Length, before it overruns the file's buffer", async () => {
      s3.on(GetObjectCommand).resolves({
        ContentLength: 4,
        Body: { transformToWebStream: () => streamOf([Uint8Array.of(1, 2, 3), Uint8Array.of(4, 5, 6)]) } as never,
      });
      await rejectsWith(open().read("a"), FileStoreError, undefined, /: the body sent more than its 4 bytes$/);
    });

    it("fills its buffer straight from a byte-stream body (BYOB reads), range by range, verified", async () => {
      const data = new Uint8Array(100 * 1024).map((_, index) => index % 251);
      const served = { byob: 0, enqueued: 0, cancelled: 0 };
      s3.on(GetObjectCommand).callsFake((input: { Range: string }) => {
        const [first, last] = /bytes=(\d+)-(\d+)/.exec(input.Range)!.slice(1).map(Number);
        const body = data.subarray(first, Math.min(last + 1, data.length));
        return {
          ContentLength: body.length,
          ContentRange: `bytes ${first}-${first + body.length - 1}/${data.length}`,
          ETag: '"e1"',
          Metadata: { sha256: createHash("sha256").update(data).digest("hex") },
          Body: { transformToWebStream: () => byteStreamOf(body, 16 * 1024, served) } as never,
        };
      });
      assert.deepEqual(await open({ rangeSizeBytes: 64 * 1024 }).read("a"), data);
      assert.equal(s3.commandCalls(GetObjectCommand).length, 2);
      assert.deepEqual(served, { byob: 7, enqueued: 0, cancelled: 0 });
    });

    it("readStream() reads a byte-stream body into fresh 8 KiB chunks, each filled (BYOB reads), verified", async () => {
      const data = new Uint8Array(20 * 1024).map((_, index) => index % 253);
      const served = { byob: 0, enqueued: 0, cancelled: 0 };
      s3.on(GetObjectCommand).resolves({
        ContentLength: data.length,
        ContentRange: `bytes 0-${data.length - 1}/${data.length}`,
        Metadata: { sha256: createHash("sha256").update(data).digest("hex") },
        Body: { transformToWebStream: () => byteStreamOf(data, 3 * 1024, served) } as never,
      });
      const chunks: Uint8Array[] = [];
      for await (const chunk of await open().readStream("a")) chunks.push(chunk);
      // 3 KiB a read: a chunk is handed out only once its 8 KiB are in.
      assert.deepEqual(chunks.map((chunk) => chunk.length), [8_192, 8_192, 4_096]);
      assert.deepEqual(Buffer.concat(chunks), Buffer.from(data));
      assert.deepEqual(served, { byob: 8, enqueued: 0, cancelled: 0 });
    });

    it("rejects a byte-stream body shorter or longer than its Content-Length; a longer one is cancelled", async () => {
      const served = { byob: 0, enqueued: 0, cancelled: 0 };
      const answer = (length: number, bytes: number) => ({
        ContentLength: length,
        Body: { transformToWebStream: () => byteStreamOf(new Uint8Array(bytes), 4, served) } as never,
      });
      s3.on(GetObjectCommand).resolves(answer(10, 2));
      await rejectsWith(open().read("a"), FileStoreError, undefined, /cut short \(2 of 10 bytes\)/);
      assert.equal(served.cancelled, 0);
      s3.on(GetObjectCommand).resolves(answer(4, 6));
      await rejectsWith(open().read("a"), FileStoreError, undefined, /: the body sent more than its 4 bytes$/);
      assert.equal(served.cancelled, 1, "the rest of the body is not read");
    });
  });

  describe("write()", () => {
    it("sends PutObject with AES256 by default, aws:kms with a key when given", async () => {
      s3.on(PutObjectCommand).resolves({});
      await open().write("in/a.csv", "Zoë");
      await open({ kmsKeyId: "alias/payroll" }).write("in/b.csv", Uint8Array.of(0, 255));
      const [first, second] = s3.commandCalls(PutObjectCommand).map((call) => call.args[0].input);
      assert.equal(first.ServerSideEncryption, "AES256");
      assert.equal(first.SSEKMSKeyId, undefined);
      assert.deepEqual(first.Body, new TextEncoder().encode("Zoë"));
      assert.equal(second.ServerSideEncryption, "aws:kms");
      assert.equal(second.SSEKMSKeyId, "alias/payroll");
      assert.deepEqual(events.map((event) => event.type), ["write", "write"]);
    });

    it("maps a failed PutObject to FileStoreError with the cause", async () => {
      const sdkError = accessDenied();
      s3.on(PutObjectCommand).rejects(sdkError);
      await rejectsWith(
        open().write("in/a.csv", "x"),
        FileStoreError,
        sdkError,
        'Failed to write file "in/a.csv" to bucket "bkt": access denied (AccessDenied, HTTP 403)',
      );
    });

    it("aborts a multipart upload whose part fails, leaving no parts", async () => {
      const sdkError = serviceError("InternalError", 500);
      s3.on(CreateMultipartUploadCommand).resolves({ UploadId: "upload-1" });
      s3.on(UploadPartCommand).resolvesOnce({ ETag: '"p1"' }).rejects(sdkError);
      s3.on(AbortMultipartUploadCommand).resolves({});
      const store = open({ multipartThresholdBytes: 5 * MiB, partSizeBytes: 5 * MiB, partConcurrency: 1 });
      await rejectsWith(
        store.write("out/big.bin", new Uint8Array(11 * MiB)),
        FileStoreError,
        sdkError,
        'Failed to write file "out/big.bin" to bucket "bkt": S3 refused the request (InternalError, HTTP 500)',
      );
      const aborts = s3.commandCalls(AbortMultipartUploadCommand).map((call) => call.args[0].input);
      assert.ok(aborts.length >= 1);
      for (const abort of aborts) assert.deepEqual(abort, { Bucket: "bkt", Key: "out/big.bin", UploadId: "upload-1" });
      assert.equal(s3.commandCalls(CompleteMultipartUploadCommand).length, 0);
      assert.equal(s3.commandCalls(PutObjectCommand).length, 0);
      const create = s3.commandCalls(CreateMultipartUploadCommand)[0].args[0].input;
      assert.equal(create.ServerSideEncryption, "AES256");
      assert.ok(events.some((event) => event.type === "multipart-aborted" && event.uploadId === "upload-1"));
    });

    it("says parts may remain when even the abort fails", async () => {
      s3.on(CreateMultipartUploadCommand).resolves({ UploadId: "upload-2" });
      s3.on(UploadPartCommand).rejects(serviceError("InternalError", 500));
      s3.on(AbortMultipartUploadCommand).rejects(serviceError("InternalError", 500));
      const store = open({ multipartThresholdBytes: 5 * MiB, partSizeBytes: 5 * MiB });
      await rejectsWith(
        store.write("out/big.bin", new Uint8Array(11 * MiB)),
        FileStoreError,
        undefined,
        /parts of upload "upload-2" may remain/,
      );
    });

    it("completes a multipart upload of the parts in order", async () => {
      s3.on(CreateMultipartUploadCommand).resolves({ UploadId: "upload-3" });
      s3.on(UploadPartCommand).callsFake((input) => ({ ETag: `"p${input.PartNumber}"` }));
      s3.on(CompleteMultipartUploadCommand).resolves({ ETag: '"x-3"' });
      const store = open({ multipartThresholdBytes: 5 * MiB, partSizeBytes: 5 * MiB });
      await store.write("out/big.bin", new Uint8Array(11 * MiB));
      const complete = s3.commandCalls(CompleteMultipartUploadCommand)[0].args[0].input;
      assert.deepEqual(complete.MultipartUpload?.Parts?.map((part) => [part.PartNumber, part.ETag]), [
        [1, '"p1"'],
        [2, '"p2"'],
        [3, '"p3"'],
      ]);
      assert.equal(s3.commandCalls(AbortMultipartUploadCommand).length, 0);
      assert.deepEqual(events.at(-1), { ...events.at(-1), type: "write", multipart: true, parts: 3 });
    });
  });

  describe("writeStream()", () => {
    const sha256 = (data: Uint8Array, encoding: "hex" | "base64") => createHash("sha256").update(data).digest(encoding);

    it("stages a long stream in parts with their SHA-256, at most partConcurrency in flight, then copies it into place with the file's SHA-256", async () => {
      let inFlight = 0;
      let most = 0;
      s3.on(CreateMultipartUploadCommand).callsFake((input) => ({ UploadId: `up-${input.Key}` }));
      s3.on(UploadPartCommand).callsFake(async (input) => {
        most = Math.max(most, ++inFlight);
        await new Promise((resolve) => setTimeout(resolve, 5));
        inFlight--;
        return { ETag: `"p${input.PartNumber}"` };
      });
      s3.on(CompleteMultipartUploadCommand).resolves({ ETag: '"staged-5"' });
      s3.on(UploadPartCopyCommand).callsFake((input) => ({ CopyPartResult: { ETag: `"c${input.PartNumber}"` } }));
      s3.on(DeleteObjectCommand).resolves({});
      const data = Uint8Array.from({ length: 21 * MiB + 1 }, (_, index) => (index * 31) & 0xff);
      const store = open({ multipartThresholdBytes: 5 * MiB, partSizeBytes: 5 * MiB, partConcurrency: 2 });
      async function* source() {
        for (let start = 0; start < data.length; start += 777_777) yield data.subarray(start, start + 777_777);
      }
      await store.writeStream("out/big.bin", source());

      const [staging, final] = s3.commandCalls(CreateMultipartUploadCommand).map((call) => call.args[0].input);
      assert.match(staging.Key!, /^\.bluestar-staging\/\/[0-9a-f-]{36}$/);
      assert.equal(staging.ChecksumAlgorithm, "SHA256");
      assert.equal(staging.ServerSideEncryption, "AES256");
      const parts = s3.commandCalls(UploadPartCommand).map((call) => call.args[0].input);
      assert.deepEqual(parts.map((part) => (part.Body as Uint8Array).length), [
        5 * MiB,
        5 * MiB,
        5 * MiB,
        5 * MiB,
        MiB + 1,
      ]);
      for (const part of parts) {
        const start = (part.PartNumber! - 1) * 5 * MiB;
        assert.equal(part.ChecksumSHA256, sha256(data.subarray(start, start + 5 * MiB), "base64"));
      }
      assert.equal(most, 2, "parts in flight");
      const complete = s3.commandCalls(CompleteMultipartUploadCommand)[0].args[0].input;
      assert.deepEqual(complete.MultipartUpload?.Parts?.map((part) => part.PartNumber), [1, 2, 3, 4, 5]);
      assert.ok(complete.MultipartUpload?.Parts?.every((part) => part.ChecksumSHA256 !== undefined));
      assert.equal(final.Key, "out/big.bin");
      assert.deepEqual(final.Metadata, { sha256: sha256(data, "hex") });
      const copyComplete = s3.commandCalls(CompleteMultipartUploadCommand)[1].args[0].input;
      assert.equal(copyComplete.IfNoneMatch, undefined, "a write replaces the file");
      assert.equal(s3.commandCalls(UploadPartCopyCommand)[0].args[0].input.CopySourceIfMatch, '"staged-5"');
      assert.deepEqual(s3.commandCalls(DeleteObjectCommand).map((call) => call.args[0].input.Key), [staging.Key]);
      assert.deepEqual(events.at(-1), { ...events.at(-1), type: "write", bytes: data.length, parts: 5 });
    });

    it("a short stream goes up in one PutObject with its SHA-256, no staging", async () => {
      s3.on(PutObjectCommand).resolves({});
      await open().writeStream("in/a.csv", streamOf([Uint8Array.of(1, 2), Uint8Array.of(3)]));
      const put = s3.commandCalls(PutObjectCommand)[0].args[0].input;
      assert.equal(put.Key, "in/a.csv");
      assert.deepEqual(put.Metadata, { sha256: sha256(Uint8Array.of(1, 2, 3), "hex") });
      assert.equal(put.ChecksumSHA256, sha256(Uint8Array.of(1, 2, 3), "base64"));
      assert.equal(s3.commandCalls(CreateMultipartUploadCommand).length, 0);
    });

    it("reports a staging object it could not delete, and the write stands", async () => {
      s3.on(CreateMultipartUploadCommand).resolves({ UploadId: "up" });
      s3.on(UploadPartCommand).resolves({ ETag: '"p"' });
      s3.on(CompleteMultipartUploadCommand).resolves({ ETag: '"x"' });
      s3.on(UploadPartCopyCommand).resolves({ CopyPartResult: { ETag: '"c"' } });
      s3.on(DeleteObjectCommand).rejects(accessDenied());
      await open({ multipartThresholdBytes: 0 }).writeStream(
        "in/a.csv",
        streamOf([Uint8Array.of(1), Uint8Array.of(2)]),
      );
      assert.ok(events.some((event) => event.type === "staging-left" && event.path === "in/a.csv"));
      assert.equal(events.at(-1)?.type, "write");
    });
  });

  describe("delete()", () => {
    it("refuses a file under a retention (checked first), and sends no delete", async () => {
      s3.on(HeadObjectCommand).resolves({
        ETag: '"e"',
        ObjectLockMode: "COMPLIANCE",
        ObjectLockRetainUntilDate: new Date("2099-01-01T00:00:00Z"),
      });
      await rejectsWith(
        open().delete("audit/seal.json"),
        FileStoreError,
        undefined,
        'Failed to delete file "audit/seal.json" from bucket "bkt": it is under an Object Lock retention ' +
          '("COMPLIANCE" mode) until "2099-01-01T00:00:00.000Z"; it is kept',
      );
      assert.equal(s3.commandCalls(DeleteObjectCommand).length, 0);
    });

    it("deletes only the file it checked (If-Match its ETag); a rewrite meanwhile keeps the file", async () => {
      s3.on(HeadObjectCommand).resolves({
        ETag: '"e"',
        ObjectLockMode: "GOVERNANCE",
        ObjectLockRetainUntilDate: new Date(0),
      });
      s3.on(DeleteObjectCommand).rejects(serviceError("PreconditionFailed", 412));
      await rejectsWith(
        open().delete("a.csv"),
        FileStoreError,
        undefined,
        /it was rewritten during the delete and is kept/,
      );
      assert.deepEqual(s3.commandCalls(DeleteObjectCommand)[0].args[0].input, {
        Bucket: "bkt",
        Key: "a.csv",
        IfMatch: '"e"',
      });
    });
  });

  describe("move()", () => {
    const src = "in/pay roll #1+2 100% Zoë 中文.csv";
    const dst = "archive/ready #1.csv";
    const encodedSource = "bkt/in/pay%20roll%20%231%2B2%20100%25%20Zo%C3%AB%20%E4%B8%AD%E6%96%87.csv";
    /** S3's answer to a conditional request whose condition failed, after `attempts` attempts. */
    const preconditionFailed = (attempts = 1) =>
      new S3ServiceException({
        name: "PreconditionFailed",
        $fault: "client",
        $metadata: { httpStatusCode: 412, attempts },
        message: "At least one of the pre-conditions you specified did not hold",
      });
    /** S3's answer to a conditional delete of a missing key; `attempts: null` for a client that does not count them. */
    const gone = (attempts: number | null = 1) =>
      new NoSuchKey({
        $metadata: { httpStatusCode: 404, ...(attempts === null ? {} : { attempts }) },
        message: "The specified key does not exist.",
      });
    const deletes = () => s3.commandCalls(DeleteObjectCommand).map((call) => call.args[0].input);

    function happyMove(size = 5) {
      s3.on(HeadObjectCommand, { Key: src }).resolves({ ContentLength: size, ETag: '"src"', ContentType: "text/csv" });
      s3.on(CreateMultipartUploadCommand).resolves({ UploadId: "copy-1" });
      s3.on(UploadPartCopyCommand).callsFake((input) => ({ CopyPartResult: { ETag: `"c${input.PartNumber}"` } }));
      s3.on(CompleteMultipartUploadCommand).resolves({ ETag: '"copy-1"' });
      s3.on(PutObjectCommand).resolves({ ETag: '"empty"' });
      s3.on(HeadObjectCommand, { Key: dst }).resolves({
        ContentLength: size,
        ETag: size === 0 ? '"empty"' : '"copy-1"',
      });
      s3.on(DeleteObjectCommand).resolves({});
      s3.on(AbortMultipartUploadCommand).resolves({});
    }

    it("creates the destination by a part copy completed only where nothing is, confirms it, then deletes the source only if unchanged", async () => {
      happyMove();
      await open().move(src, dst);
      const create = s3.commandCalls(CreateMultipartUploadCommand)[0].args[0].input;
      assert.equal(create.Key, dst);
      assert.equal(create.ServerSideEncryption, "AES256");
      assert.equal(create.ContentType, "text/csv");
      const part = s3.commandCalls(UploadPartCopyCommand)[0].args[0].input;
      assert.equal(part.CopySource, encodedSource);
      assert.equal(part.CopySourceIfMatch, '"src"');
      assert.equal(part.CopySourceRange, "bytes=0-4");
      const complete = s3.commandCalls(CompleteMultipartUploadCommand)[0].args[0].input;
      assert.equal(complete.IfNoneMatch, "*");
      assert.deepEqual(complete.MultipartUpload?.Parts, [{ ETag: '"c1"', PartNumber: 1 }]);
      assert.deepEqual(deletes(), [{ Bucket: "bkt", Key: src, IfMatch: '"src"' }]);
      const order = s3.calls().map((call) => (call.args[0] as object).constructor.name);
      assert.deepEqual(order, [
        "HeadObjectCommand",
        "CreateMultipartUploadCommand",
        "UploadPartCopyCommand",
        "CompleteMultipartUploadCommand",
        "HeadObjectCommand",
        "DeleteObjectCommand",
      ]);
      assert.equal(s3.commandCalls(CopyObjectCommand).length, 0);
      assert.deepEqual(events.at(-1), { ...events.at(-1), type: "move", parts: 1, bytes: 5 });
    });

    it("creates an empty destination by a PutObject only where nothing is", async () => {
      happyMove(0);
      await open().move(src, dst);
      const put = s3.commandCalls(PutObjectCommand)[0].args[0].input;
      assert.equal(put.Key, dst);
      assert.equal(put.IfNoneMatch, "*");
      assert.equal(put.ServerSideEncryption, "AES256");
      assert.equal(put.ContentType, "text/csv");
      assert.deepEqual(put.Body, new Uint8Array());
      assert.equal(s3.commandCalls(CreateMultipartUploadCommand).length, 0);
      assert.deepEqual(deletes(), [{ Bucket: "bkt", Key: src, IfMatch: '"src"' }]);
      assert.deepEqual(events.at(-1), { ...events.at(-1), type: "move", parts: 0, bytes: 0 });
    });

    for (const size of [5, 0]) {
      it(`onto an existing destination (a ${size}-byte file) is a ConflictError: nothing deleted, no upload left`, async () => {
        happyMove(size);
        const sdkError = preconditionFailed();
        s3.on(CompleteMultipartUploadCommand).rejects(sdkError);
        s3.on(PutObjectCommand).rejects(sdkError);
        const error = await rejectsWith(
          open().move(src, dst),
          ConflictError,
          sdkError,
          `Failed to move file ${JSON.stringify(src)} to ${JSON.stringify(dst)} in bucket "bkt": ` +
            "the destination exists; the source is kept",
        );
        assert.equal(error.code, "CONFLICT");
        assert.deepEqual(deletes(), []);
        assert.equal(s3.commandCalls(AbortMultipartUploadCommand).length, size === 0 ? 0 : 1);
        assert.deepEqual(events.at(-1), { ...events.at(-1), type: "error", action: "move", error });
      });
    }

    it("does not call a destination a conflict when the refused completion had been retried (it may be its own)", async () => {
      happyMove();
      s3.on(CompleteMultipartUploadCommand).rejects(preconditionFailed(2));
      await rejectsWith(
        open().move(src, dst),
        FileStoreError,
        undefined,
        /as the request was retried it may be this move's own copy; the source is kept/,
      );
      assert.deepEqual(deletes(), []);
    });

    it("when the source changed during the copy (a part copy refused), is a ConflictError and aborts the upload", async () => {
      happyMove();
      s3.on(UploadPartCopyCommand).rejects(preconditionFailed());
      await rejectsWith(
        open().move(src, dst),
        ConflictError,
        undefined,
        /: the source changed during the copy and is kept$/,
      );
      assert.equal(s3.commandCalls(AbortMultipartUploadCommand).length, 1);
      assert.equal(s3.commandCalls(CompleteMultipartUploadCommand).length, 0);
      assert.deepEqual(deletes(), []);
    });

    it("when another move took the source first (its delete refused: 404), removes its own copy and is a FileNotFoundError", async () => {
      happyMove();
      const sdkError = gone();
      s3.on(DeleteObjectCommand, { Key: src }).rejects(sdkError);
      await rejectsWith(
        open().move(src, dst),
        FileNotFoundError,
        sdkError,
        `Failed to move file ${JSON.stringify(src)} to ${JSON.stringify(dst)} in bucket "bkt": ` +
          `another move or a delete took the source first; its copy at ${JSON.stringify(dst)} was removed`,
      );
      assert.deepEqual(deletes(), [
        { Bucket: "bkt", Key: src, IfMatch: '"src"' },
        { Bucket: "bkt", Key: dst, IfMatch: '"copy-1"' },
      ]);
      assert.equal(events.filter((event) => event.type === "move").length, 0);
    });

    it("when the source was rewritten during the move (its delete refused: 412), keeps it, removes its own copy, ConflictError", async () => {
      happyMove();
      s3.on(DeleteObjectCommand, { Key: src }).rejects(preconditionFailed());
      await rejectsWith(
        open().move(src, dst),
        ConflictError,
        undefined,
        /: the source changed during the move and is kept; its copy at "archive\/ready #1\.csv" was removed$/,
      );
      assert.deepEqual(deletes().map((input) => input.Key), [src, dst]);
    });

    it("when it lost and its copy was replaced meanwhile, leaves the replacement alone", async () => {
      happyMove();
      s3.on(DeleteObjectCommand, { Key: src }).rejects(gone());
      s3.on(DeleteObjectCommand, { Key: dst }).rejects(preconditionFailed());
      await rejectsWith(
        open().move(src, dst),
        FileNotFoundError,
        undefined,
        /had been replaced meanwhile and is left alone$/,
      );
    });

    it("when it lost but its copy cannot be removed, says the copy remains", async () => {
      happyMove();
      s3.on(DeleteObjectCommand, { Key: src }).rejects(gone());
      s3.on(DeleteObjectCommand, { Key: dst }).rejects(accessDenied());
      await rejectsWith(
        open().move(src, dst),
        FileNotFoundError,
        undefined,
        /its copy at "archive\/ready #1\.csv" could not be removed \(AccessDenied, HTTP 403\) and remains$/,
      );
    });

    for (const attempts of [2, null]) {
      it(`when the delete was refused after ${attempts ?? "an unknown number of"} attempts, deletes nothing more and keeps the copy`, async () => {
        happyMove();
        s3.on(DeleteObjectCommand, { Key: src }).rejects(gone(attempts));
        await rejectsWith(
          open().move(src, dst),
          FileStoreError,
          undefined,
          /failed to delete .* after a retry, which an earlier attempt may have done; the copy is kept: /,
        );
        assert.deepEqual(deletes().map((input) => input.Key), [src]);
      });
    }

    it("when the delete fails after the copy, says both keys now exist and keeps the cause", async () => {
      happyMove();
      const sdkError = accessDenied();
      s3.on(DeleteObjectCommand).rejects(sdkError);
      const error = await rejectsWith(open().move(src, dst), FileStoreError, sdkError, /both keys now exist/);
      assert.ok(error.message.includes(JSON.stringify(src)) && error.message.includes(JSON.stringify(dst)));
      assert.match(error.message, /copied to "archive\/ready #1\.csv" but failed to delete "in\/pay roll/);
      assert.deepEqual(deletes().map((input) => input.Key), [src]);
      assert.equal(events.at(-1)?.type, "error");
    });

    it("when the copy fails, keeps the source: no DeleteObject is sent and the upload is aborted", async () => {
      happyMove();
      const sdkError = accessDenied();
      s3.on(UploadPartCopyCommand).rejects(sdkError);
      await rejectsWith(open().move(src, dst), FileStoreError, sdkError, /the copy failed and the source is kept/);
      assert.deepEqual(deletes(), []);
      assert.equal(s3.commandCalls(AbortMultipartUploadCommand).length, 1);
    });

    it("when the source vanishes before the copy, is FileNotFoundError without copy noise", async () => {
      happyMove();
      const sdkError = noSuchKey();
      s3.on(UploadPartCopyCommand).rejects(sdkError);
      await rejectsWith(
        open().move(src, dst),
        FileNotFoundError,
        sdkError,
        `Failed to move file ${JSON.stringify(src)} to ${
          JSON.stringify(dst)
        } in bucket "bkt": the source does not exist`,
      );
      assert.deepEqual(deletes(), []);
    });

    it("when the copy cannot be confirmed, keeps the source", async () => {
      happyMove();
      s3.on(HeadObjectCommand, { Key: dst }).resolves({ ContentLength: 4, ETag: '"other"' });
      await rejectsWith(open().move(src, dst), FileStoreError, undefined, /does not match .* the source is kept/);
      assert.deepEqual(deletes(), []);
    });

    it("a missing source is FileNotFoundError and sends nothing after the HeadObject", async () => {
      const sdkError = notFound();
      s3.on(HeadObjectCommand).rejects(sdkError);
      await rejectsWith(
        open().move("in/missing.csv", "out/x.csv"),
        FileNotFoundError,
        sdkError,
        'Failed to move file "in/missing.csv" to "out/x.csv" in bucket "bkt": the source does not exist',
      );
      assert.equal(s3.calls().length, 1);
    });

    it("onto itself checks the source exists and changes nothing", async () => {
      s3.on(HeadObjectCommand).resolves({ ContentLength: 1, ETag: '"e"' });
      await open().move(src, src);
      assert.equal(s3.calls().length, 1);
      s3.on(HeadObjectCommand).rejects(notFound());
      await assert.rejects(open().move(src, src), FileNotFoundError);
    });

    describe("an object over 5 GiB", () => {
      const size = 5 * GiB + 3 * MiB + 7;

      function bigMove() {
        s3.on(HeadObjectCommand, { Key: src }).resolves({
          ContentLength: size,
          ETag: '"src-9"',
          ContentType: "text/csv",
          Metadata: { batch: "1" },
        });
        s3.on(CreateMultipartUploadCommand).resolves({ UploadId: "copy-1" });
        s3.on(UploadPartCopyCommand).callsFake((input) => ({ CopyPartResult: { ETag: `"c${input.PartNumber}"` } }));
        s3.on(CompleteMultipartUploadCommand).resolves({ ETag: '"done-11"' });
        s3.on(HeadObjectCommand, { Key: dst }).resolves({ ContentLength: size, ETag: '"done-11"' });
        s3.on(DeleteObjectCommand).resolves({});
        s3.on(AbortMultipartUploadCommand).resolves({});
      }

      it("is copied in parts whose ranges cover every byte once", async () => {
        bigMove();
        await open().move(src, dst);
        assert.equal(s3.commandCalls(CopyObjectCommand).length, 0);
        const create = s3.commandCalls(CreateMultipartUploadCommand)[0].args[0].input;
        assert.equal(create.Key, dst);
        assert.equal(create.ServerSideEncryption, "AES256");
        assert.equal(create.ContentType, "text/csv");
        assert.deepEqual(create.Metadata, { batch: "1" });
        const parts = s3.commandCalls(UploadPartCopyCommand).map((call) => call.args[0].input)
          .sort((a, b) => a.PartNumber! - b.PartNumber!);
        let next = 0;
        for (const [index, part] of parts.entries()) {
          assert.equal(part.PartNumber, index + 1);
          assert.equal(part.UploadId, "copy-1");
          assert.equal(part.CopySource, encodedSource);
          assert.equal(part.CopySourceIfMatch, '"src-9"');
          const [, first, last] = /^bytes=(\d+)-(\d+)$/.exec(part.CopySourceRange!)!.map(Number);
          assert.equal(first, next, `part ${index + 1} starts where the last ended`);
          assert.ok(last - first + 1 <= 5 * GiB);
          if (index < parts.length - 1) assert.ok(last - first + 1 >= 5 * MiB);
          next = last + 1;
        }
        assert.equal(next, size, "the parts end at the last byte");
        assert.equal(parts.length, 11);
        const complete = s3.commandCalls(CompleteMultipartUploadCommand)[0].args[0].input;
        assert.equal(complete.UploadId, "copy-1");
        assert.equal(complete.IfNoneMatch, "*");
        assert.deepEqual(
          complete.MultipartUpload?.Parts,
          parts.map((part) => ({ PartNumber: part.PartNumber, ETag: `"c${part.PartNumber}"` })),
        );
        assert.equal(s3.commandCalls(DeleteObjectCommand).length, 1);
        assert.equal(s3.commandCalls(AbortMultipartUploadCommand).length, 0);
        assert.deepEqual(events.at(-1), { ...events.at(-1), type: "move", parts: 11 });
      });

      it("is aborted when a part fails, and the source is kept", async () => {
        bigMove();
        const sdkError = serviceError("InternalError", 500);
        s3.on(UploadPartCopyCommand, { PartNumber: 4 }).rejects(sdkError);
        await rejectsWith(open().move(src, dst), FileStoreError, sdkError, /the copy failed and the source is kept/);
        const aborts = s3.commandCalls(AbortMultipartUploadCommand).map((call) => call.args[0].input);
        assert.deepEqual(aborts, [{ Bucket: "bkt", Key: dst, UploadId: "copy-1" }]);
        assert.equal(s3.commandCalls(CompleteMultipartUploadCommand).length, 0);
        assert.equal(s3.commandCalls(DeleteObjectCommand).length, 0);
        assert.ok(events.some((event) => event.type === "multipart-aborted"));
      });

      it("is aborted when the completion fails", async () => {
        bigMove();
        s3.on(CompleteMultipartUploadCommand).rejects(serviceError("InternalError", 500));
        await assert.rejects(open().move(src, dst), FileStoreError);
        assert.equal(s3.commandCalls(AbortMultipartUploadCommand).length, 1);
        assert.equal(s3.commandCalls(DeleteObjectCommand).length, 0);
      });
    });
  });

  describe("listFiles() and listFilePages()", () => {
    it("follow every ContinuationToken and sort by code point", async () => {
      s3.on(ListObjectsV2Command)
        .resolvesOnce({
          IsTruncated: true,
          NextContinuationToken: "t1",
          Contents: [{ Key: "in/b" }, { Key: "in/\u{1F600}" }],
        })
        .resolvesOnce({ IsTruncated: true, NextContinuationToken: "t2", Contents: [] })
        .resolvesOnce({ IsTruncated: false, Contents: [{ Key: "in/\uFFFD" }, { Key: "in/a" }] });
      assert.deepEqual(await open({ pageSize: 2 }).listFiles("in/"), ["in/a", "in/b", "in/\uFFFD", "in/\u{1F600}"]);
      const inputs = s3.commandCalls(ListObjectsV2Command).map((call) => call.args[0].input);
      assert.deepEqual(inputs.map((input) => [input.Prefix, input.MaxKeys, input.ContinuationToken]), [
        ["in/", 2, undefined],
        ["in/", 2, "t1"],
        ["in/", 2, "t2"],
      ]);
      assert.deepEqual(events.at(-1), { ...events.at(-1), type: "list", keys: 4, pages: 3 });
    });

    it("yield each non-empty page as it comes", async () => {
      s3.on(ListObjectsV2Command)
        .resolvesOnce({ IsTruncated: true, NextContinuationToken: "t1", Contents: [{ Key: "a" }] })
        .resolvesOnce({ IsTruncated: false, Contents: [{ Key: "b" }] });
      const pages: string[][] = [];
      for await (const page of open().listFilePages("")) pages.push(page);
      assert.deepEqual(pages, [["a"], ["b"]]);
      assert.equal(s3.commandCalls(ListObjectsV2Command)[0].args[0].input.Prefix, undefined);
    });

    it("wrap a failed page", async () => {
      const sdkError = accessDenied();
      s3.on(ListObjectsV2Command).rejects(sdkError);
      await rejectsWith(
        open().listFiles("in/"),
        FileStoreError,
        sdkError,
        'Failed to list files under prefix "in/" in bucket "bkt": access denied (AccessDenied, HTTP 403)',
      );
    });

    it("reject a truncated page without a token rather than loop or stop short", async () => {
      s3.on(ListObjectsV2Command).resolves({ IsTruncated: true, Contents: [{ Key: "a" }] });
      await rejectsWith(open().listFiles(""), FileStoreError, undefined, /no continuation token/);
    });

    it("skip every key that is not a valid path, in every listing, and report each with its reason", async () => {
      const foreign: Array<[string, string]> = [
        ["in/", "it has an empty segment"],
        ["in/x//y.csv", "it has an empty segment"],
        ["in/./dot.csv", 'it has a "." segment'],
        ["in/../up.csv", 'it has a ".." segment'],
        ["in/win\\dows.csv", "it contains a backslash"],
        ["in/bell\u0007.csv", "it contains a control character"],
      ];
      s3.on(ListObjectsV2Command)
        .resolves({ IsTruncated: false, Contents: [{ Key: "in/a.csv" }, ...foreign.map(([Key]) => ({ Key }))] });
      assert.deepEqual(await open().listFiles("in/"), ["in/a.csv"]);
      const skipped = events.filter((event) => event.type === "skipped");
      assert.deepEqual(skipped, foreign.map(([key, reason]) => ({ type: "skipped", bucket: "bkt", key, reason })));
      assert.deepEqual(events.at(-1), { ...events.at(-1), type: "list", keys: 1, skipped: foreign.length, pages: 1 });

      events.length = 0;
      s3.reset();
      s3.on(ListObjectsV2Command)
        .resolvesOnce({ IsTruncated: true, NextContinuationToken: "t1", Contents: [{ Key: "in/" }] })
        .resolvesOnce({ IsTruncated: false, Contents: [{ Key: "in/b.csv" }, { Key: "in/x//y.csv" }] });
      const pages: string[][] = [];
      for await (const page of open().listFilePages("in/")) pages.push(page);
      assert.deepEqual(pages, [["in/b.csv"]], "a page of foreign keys only is not yielded");
      assert.deepEqual(events.filter((event) => event.type === "skipped").map((event) => event.key), [
        "in/",
        "in/x//y.csv",
      ]);
    });
  });

  describe("validation", () => {
    for (const [label, path] of BAD_PATHS) {
      it(`a path with ${label} is rejected before any request`, async () => {
        const store = open();
        const bad = path as string;
        for (
          const call of [
            () => store.read(bad),
            () => store.write(bad, "x"),
            () => store.move("in/good.csv", bad),
            () => store.move(bad, "in/good.csv"),
          ]
        ) {
          await assert.rejects(call(), InvalidInputError);
        }
        assert.equal(s3.calls().length, 0);
      });
    }

    it("a bad prefix or bad content is rejected before any request", async () => {
      const store = open();
      for (const prefix of ["/abs", "a/../b", "a\\b", "/", "a\u0001", null]) {
        await assert.rejects(store.listFiles(prefix as string), InvalidInputError);
        await assert.rejects(store.listFilePages(prefix as string)[Symbol.asyncIterator]().next(), InvalidInputError);
      }
      await assert.rejects(store.write("in/a.csv", 42 as never), InvalidInputError);
      assert.equal(s3.calls().length, 0);
    });

    it("bad options are a ConfigError listing every problem", () => {
      assert.throws(
        () =>
          new S3FileStore({
            bucket: "",
            partSizeBytes: MiB,
            pageSize: 5000,
            serverSideEncryption: "AES256",
            kmsKeyId: "k",
            endpointUrl: "ftp://x",
          }),
        (error: unknown) => {
          assert.ok(error instanceof ConfigError);
          for (const part of ["bucket", "partSizeBytes", "pageSize", "kmsKeyId", "endpointUrl"]) {
            assert.ok(error.message.includes(part), `${part} in ${error.message}`);
          }
          return true;
        },
      );
      assert.throws(() => new S3FileStore({ bucket: "bkt", client, region: "eu-west-1" }), ConfigError);
    });

    it("a page size is checked by the rule MemoryFileStore shares: an integer from 1 to 1000", () => {
      for (const pageSize of [0, -1, 1.5, NaN, 1001, "7" as never, null as never]) {
        assert.throws(() => open({ pageSize }), (error: unknown) => {
          assert.ok(error instanceof ConfigError);
          assert.match(error.message, /pageSize "[^"]*": it is not an integer from 1 to 1000/);
          return true;
        });
      }
      for (const pageSize of [1, 1000]) open({ pageSize });
    });
  });

  describe("bucket names", () => {
    // S3's rules for general purpose buckets, one case per rule.
    const BAD_BUCKETS: ReadonlyArray<[string, unknown, string]> = [
      ["too short", "ab", "it is 2 characters long, not 3 to 63"],
      ["too long", "a".repeat(64), "it is 64 characters long, not 3 to 63"],
      ["upper case and an underscore", "Bluestar_Bad", "it has characters other than lowercase letters"],
      ["a space", "my bucket", "it has characters other than lowercase letters"],
      ["a non-ASCII letter", "zoë-files", "it has characters other than lowercase letters"],
      ["a leading hyphen", "-files", "it does not begin and end with a letter or digit"],
      ["a trailing dot", "files.", "it does not begin and end with a letter or digit"],
      ["two adjacent dots", "a..b", "it has two adjacent dots"],
      ["an IP address", "192.168.1.1", "it is formatted as an IP address"],
      ["the prefix xn--", "xn--files", 'it starts with the reserved prefix "xn--"'],
      ["the prefix sthree-", "sthree-files", 'it starts with the reserved prefix "sthree-"'],
      ["the prefix amzn-s3-demo-", "amzn-s3-demo-files", 'it starts with the reserved prefix "amzn-s3-demo-"'],
      ["the suffix -s3alias", "files-s3alias", 'it ends with the reserved suffix "-s3alias"'],
      ["the suffix --ol-s3", "files--ol-s3", 'it ends with the reserved suffix "--ol-s3"'],
      ["the suffix .mrap", "files.mrap", 'it ends with the reserved suffix ".mrap"'],
      ["the suffix --x-s3", "files--x-s3", 'it ends with the reserved suffix "--x-s3"'],
      ["the suffix --table-s3", "files--table-s3", 'it ends with the reserved suffix "--table-s3"'],
      ["not a string", 42, "it is a number, not a string"],
    ];
    const GOOD_BUCKETS = [
      "abc",
      "a".repeat(63),
      "bluestar-files-dev",
      "files.2026.acme",
      "1-2-3",
      "192.168.1.1.5",
      "xn-files",
    ];

    it("bucketNameProblem() accepts names S3 allows", () => {
      for (const name of GOOD_BUCKETS) assert.equal(bucketNameProblem(name), undefined, name);
    });

    for (const [label, name, problem] of BAD_BUCKETS) {
      it(`a bucket name with ${label} is refused by the store, the configuration and the seed, before any request`, () => {
        assert.ok(bucketNameProblem(name)?.startsWith(problem), `${bucketNameProblem(name)}`);
        assert.throws(() => new S3FileStore({ bucket: name as string, client }), (error: unknown) => {
          assert.ok(error instanceof ConfigError);
          assert.ok(error.message.includes(`bucket ${JSON.stringify(String(name))} is not a bucket name: ${problem}`));
          return true;
        });
        assert.throws(
          () => resolveConfig({ backend: "aws", region: "us-east-1", s3Bucket: name as string }, {}),
          (error: unknown) =>
            error instanceof ConfigError && error.message.includes(`s3Bucket ${JSON.stringify(String(name))}`),
        );
        if (typeof name === "string") {
          assert.throws(
            () => parseSeedArgs(["--endpoint-url", "http://127.0.0.1:4566", "--s3-bucket", name]),
            (error: unknown) => error instanceof ConfigError && error.message.includes(problem),
          );
        }
        assert.equal(s3.calls().length, 0);
      });
    }

    it("a valid name passes the store, the configuration and the seed", () => {
      for (const name of GOOD_BUCKETS) {
        new S3FileStore({ bucket: name, client });
        assert.equal(resolveConfig({ backend: "aws", region: "us-east-1", s3Bucket: name }, {}).s3Bucket, name);
        assert.equal(parseSeedArgs(["--s3-bucket", name]).s3Bucket, name);
      }
    });
  });

  describe("close() and the event hook", () => {
    it("close() leaves a passed-in client open and fails later calls", async () => {
      s3.on(GetObjectCommand).rejects(noSuchKey());
      const store = open();
      store.close();
      store.close();
      await rejectsWith(store.read("a"), FileStoreError, undefined, /: the store is closed$/);
      assert.equal(s3.calls().length, 0);
      await assert.rejects(client.send(new GetObjectCommand({ Bucket: "bkt", Key: "a" })), NoSuchKey);
    });

    it("close() destroys a client the store created", () => {
      const destroy = mock.method(S3Client.prototype, "destroy");
      try {
        const store = new S3FileStore({ bucket: "bkt", region: "us-east-1", endpointUrl: "http://127.0.0.1:1" });
        store.close();
        store.close();
        assert.equal(destroy.mock.callCount(), 1);
      } finally {
        destroy.mock.restore();
      }
    });

    it("a hook that throws or rejects changes no outcome", async () => {
      s3.on(PutObjectCommand).resolves({});
      s3.on(GetObjectCommand).rejects(noSuchKey());
      for (
        const onEvent of [() => {
          throw new Error("hook");
        }, () => Promise.reject(new Error("hook")) as never]
      ) {
        const store = new S3FileStore({ bucket: "bkt", client, onEvent });
        await store.write("a", "x");
        await assert.rejects(store.read("a"), FileNotFoundError);
      }
    });
  });
});
