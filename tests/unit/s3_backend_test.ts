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
import {
  ConfigError,
  FileNotFoundError,
  FileStoreError,
  type FileStoreEvent,
  InvalidInputError,
  S3FileStore,
  type S3FileStoreOptions,
} from "../../mod.ts";
import { BAD_PATHS } from "../contract/fixtures.ts";

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
  type: typeof FileStoreError | typeof FileNotFoundError,
  cause: unknown,
  message: RegExp | string,
): Promise<FileStoreError> {
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
  return caught as FileStoreError;
}

const mockS3 = () => mockClient(S3Client);

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
    new S3FileStore({ bucket: "b", client, onEvent: (event) => events.push(event), ...options });

  describe("read()", () => {
    it("maps NoSuchKey to FileNotFoundError naming bucket and key, with the cause", async () => {
      const sdkError = noSuchKey();
      s3.on(GetObjectCommand).rejects(sdkError);
      await rejectsWith(
        open().read("in/a.csv"),
        FileNotFoundError,
        sdkError,
        'Failed to read file "in/a.csv" from bucket "b": it does not exist',
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
        'Failed to read file "in/a.csv" from bucket "b": access denied (AccessDenied, HTTP 403)',
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
        Body: { transformToByteArray: () => Promise.resolve(Uint8Array.of(1, 2)) } as never,
      });
      await rejectsWith(open().read("a"), FileStoreError, undefined, /cut short \(2 of 10 bytes\)/);
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
        'Failed to write file "in/a.csv" to bucket "b": access denied (AccessDenied, HTTP 403)',
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
        'Failed to write file "out/big.bin" to bucket "b": S3 refused the request (InternalError, HTTP 500)',
      );
      const aborts = s3.commandCalls(AbortMultipartUploadCommand).map((call) => call.args[0].input);
      assert.ok(aborts.length >= 1);
      for (const abort of aborts) assert.deepEqual(abort, { Bucket: "b", Key: "out/big.bin", UploadId: "upload-1" });
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

  describe("move()", () => {
    const src = "in/pay roll #1+2 100% Zoë 中文.csv";
    const dst = "archive/ready #1.csv";

    function happyMove(size = 5) {
      s3.on(HeadObjectCommand, { Key: src }).resolves({ ContentLength: size, ETag: '"src"' });
      s3.on(CopyObjectCommand).resolves({ CopyObjectResult: { ETag: '"copy"' } });
      s3.on(HeadObjectCommand, { Key: dst }).resolves({ ContentLength: size, ETag: '"copy"' });
      s3.on(DeleteObjectCommand).resolves({});
    }

    it("copies with the encoded CopySource and SSE, confirms, then deletes the source", async () => {
      happyMove();
      await open().move(src, dst);
      const copy = s3.commandCalls(CopyObjectCommand)[0].args[0].input;
      assert.equal(copy.CopySource, "b/in/pay%20roll%20%231%2B2%20100%25%20Zo%C3%AB%20%E4%B8%AD%E6%96%87.csv");
      assert.equal(copy.Key, dst);
      assert.equal(copy.ServerSideEncryption, "AES256");
      assert.equal(copy.CopySourceIfMatch, '"src"');
      assert.equal(copy.ChecksumAlgorithm, "CRC32");
      const deleted = s3.commandCalls(DeleteObjectCommand).map((call) => call.args[0].input);
      assert.deepEqual(deleted, [{ Bucket: "b", Key: src, IfMatch: '"src"' }]);
      const order = s3.calls().map((call) => (call.args[0] as object).constructor.name);
      assert.deepEqual(order, ["HeadObjectCommand", "CopyObjectCommand", "HeadObjectCommand", "DeleteObjectCommand"]);
    });

    it("when the delete fails after the copy, says both keys now exist and keeps the cause", async () => {
      happyMove();
      const sdkError = accessDenied();
      s3.on(DeleteObjectCommand).rejects(sdkError);
      const error = await rejectsWith(open().move(src, dst), FileStoreError, sdkError, /both keys now exist/);
      assert.ok(error.message.includes(JSON.stringify(src)) && error.message.includes(JSON.stringify(dst)));
      assert.match(error.message, /copied to "archive\/ready #1\.csv" but failed to delete "in\/pay roll/);
      assert.equal(events.at(-1)?.type, "error");
    });

    it("when the copy fails, keeps the source: no DeleteObject is sent", async () => {
      happyMove();
      const sdkError = accessDenied();
      s3.on(CopyObjectCommand).rejects(sdkError);
      await rejectsWith(open().move(src, dst), FileStoreError, sdkError, /the copy failed and the source is kept/);
      assert.equal(s3.commandCalls(DeleteObjectCommand).length, 0);
    });

    it("when the source is gone by the delete (deleted meanwhile), the move stands", async () => {
      happyMove();
      s3.on(DeleteObjectCommand).rejects(noSuchKey());
      await open().move(src, dst);
      assert.equal(events.at(-1)?.type, "move");
    });

    it("when the source was rewritten since the copy, does not delete it and says both keys exist", async () => {
      happyMove();
      s3.on(DeleteObjectCommand).rejects(serviceError("PreconditionFailed", 412));
      await rejectsWith(open().move(src, dst), FileStoreError, undefined, /both keys now exist: the object changed/);
    });

    it("when the source vanishes before the copy, is FileNotFoundError without copy noise", async () => {
      happyMove();
      const sdkError = noSuchKey();
      s3.on(CopyObjectCommand).rejects(sdkError);
      await rejectsWith(
        open().move(src, dst),
        FileNotFoundError,
        sdkError,
        `Failed to move file ${JSON.stringify(src)} to ${JSON.stringify(dst)} in bucket "b": the source does not exist`,
      );
      assert.equal(s3.commandCalls(DeleteObjectCommand).length, 0);
    });

    it("when the copy cannot be confirmed, keeps the source", async () => {
      happyMove();
      s3.on(HeadObjectCommand, { Key: dst }).resolves({ ContentLength: 4, ETag: '"other"' });
      await rejectsWith(open().move(src, dst), FileStoreError, undefined, /does not match .* the source is kept/);
      assert.equal(s3.commandCalls(DeleteObjectCommand).length, 0);
    });

    it("a missing source is FileNotFoundError and sends nothing after the HeadObject", async () => {
      const sdkError = notFound();
      s3.on(HeadObjectCommand).rejects(sdkError);
      await rejectsWith(
        open().move("in/missing.csv", "out/x.csv"),
        FileNotFoundError,
        sdkError,
        'Failed to move file "in/missing.csv" to "out/x.csv" in bucket "b": the source does not exist',
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
          assert.equal(part.CopySource, "b/in/pay%20roll%20%231%2B2%20100%25%20Zo%C3%AB%20%E4%B8%AD%E6%96%87.csv");
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
        assert.deepEqual(
          complete.MultipartUpload?.Parts,
          parts.map((part) => ({ PartNumber: part.PartNumber, ETag: `"c${part.PartNumber}"` })),
        );
        assert.equal(s3.commandCalls(DeleteObjectCommand).length, 1);
        assert.equal(s3.commandCalls(AbortMultipartUploadCommand).length, 0);
        assert.deepEqual(events.at(-1), { ...events.at(-1), type: "move", multipartCopy: true, parts: 11 });
      });

      it("is aborted when a part fails, and the source is kept", async () => {
        bigMove();
        const sdkError = serviceError("InternalError", 500);
        s3.on(UploadPartCopyCommand, { PartNumber: 4 }).rejects(sdkError);
        await rejectsWith(open().move(src, dst), FileStoreError, sdkError, /the copy failed and the source is kept/);
        const aborts = s3.commandCalls(AbortMultipartUploadCommand).map((call) => call.args[0].input);
        assert.deepEqual(aborts, [{ Bucket: "b", Key: dst, UploadId: "copy-1" }]);
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
        'Failed to list files under prefix "in/" in bucket "b": access denied (AccessDenied, HTTP 403)',
      );
    });

    it("reject a truncated page without a token rather than loop or stop short", async () => {
      s3.on(ListObjectsV2Command).resolves({ IsTruncated: true, Contents: [{ Key: "a" }] });
      await rejectsWith(open().listFiles(""), FileStoreError, undefined, /no continuation token/);
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
      assert.throws(() => new S3FileStore({ bucket: "b", client, region: "eu-west-1" }), ConfigError);
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
      await assert.rejects(client.send(new GetObjectCommand({ Bucket: "b", Key: "a" })), NoSuchKey);
    });

    it("close() destroys a client the store created", () => {
      const destroy = mock.method(S3Client.prototype, "destroy");
      try {
        const store = new S3FileStore({ bucket: "b", region: "us-east-1", endpointUrl: "http://127.0.0.1:1" });
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
        const store = new S3FileStore({ bucket: "b", client, onEvent });
        await store.write("a", "x");
        await assert.rejects(store.read("a"), FileNotFoundError);
      }
    });
  });
});
