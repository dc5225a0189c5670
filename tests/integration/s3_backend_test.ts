// S3FileStore on the local AWS endpoint (moto_server): the file-store contract
// unchanged, then what only a real S3 API shows (pagination, multipart, SSE).
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { HeadObjectCommand, ListMultipartUploadsCommand, type S3Client } from "@aws-sdk/client-s3";
import { FileNotFoundError, FileStoreError, type FileStoreEvent, S3FileStore } from "../../mod.ts";
import { comparePaths } from "../../src/core/keys.ts";
import { fileStoreContract } from "../contract/file_store_contract.ts";
import { uniqueId } from "../contract/fixtures.ts";
import { AWS_ENDPOINT_URL, integrationSuite, probe } from "../support/gate.ts";
import { corruptRaw, FOREIGN_KEYS, noise, openFileStore, putRaw, REGION, sameBytes } from "../support/s3.ts";

const MiB = 1024 * 1024;

integrationSuite("S3FileStore on the local AWS endpoint", await probe(AWS_ENDPOINT_URL), () => {
  // A small page size, so the contract's listings cross pages; 5 MiB parts and 1 MiB ranges, so its streams do.
  fileStoreContract("S3FileStore", async () => {
    const opened = await openFileStore({
      pageSize: 7,
      multipartThresholdBytes: 5 * MiB,
      partSizeBytes: 5 * MiB,
      rangeSizeBytes: MiB,
    });
    return { ...opened, corrupt: (path, bytes) => corruptRaw(opened.admin, opened.bucket, path, bytes) };
  });

  describe("S3FileStore beyond the contract", () => {
    const events: FileStoreEvent[] = [];
    let admin: S3Client;
    let bucket: string;
    let files: S3FileStore;
    let cleanup = () => Promise.resolve();
    const head = (key: string) => admin.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));

    before(async () => {
      ({ admin, bucket, files, cleanup } = await openFileStore({ onEvent: (event) => events.push(event) }));
    });
    after(() => cleanup());

    it("lists more than 2,000 keys under one prefix, complete and in order, across pages", async () => {
      const root = uniqueId("many");
      // Unpadded numbers and non-ASCII names, so text order is not insertion order.
      const paths = Array.from({ length: 2_105 }, (_, index) => `${root}/f${index}${index % 50 === 0 ? "-ü" : ""}.csv`);
      for (let start = 0; start < paths.length; start += 50) {
        await Promise.all(paths.slice(start, start + 50).map((path) => files.write(path, path)));
      }
      await files.write(`${root}-sibling/x.csv`, "not under the folder");
      const expected = [...paths].sort(comparePaths);

      events.length = 0;
      assert.deepEqual(await files.listFiles(`${root}/`), expected);
      assert.deepEqual(events.at(-1), { ...events.at(-1), type: "list", keys: 2_105, pages: 3 });

      const pages: string[][] = [];
      for await (const page of files.listFilePages(`${root}/`)) pages.push(page);
      assert.deepEqual(pages.map((page) => page.length), [1000, 1000, 105]);
      assert.deepEqual(pages.flat(), expected, "pages arrive in listFiles() order");

      assert.deepEqual(await files.listFiles(`${uniqueId("nothing")}/`), []);
      assert.deepEqual(await files.listFiles(`${root}/f9999`), []);
    });

    it("writes 20 MB as a multipart upload, reads it back byte for byte, and moves it", async () => {
      const root = uniqueId("large");
      const data = noise(20_000_000);
      events.length = 0;
      await files.write(`${root}/in/big.bin`, data);
      const write = events.find((event) => event.type === "write");
      assert.deepEqual(write, { ...write, type: "write", multipart: true, parts: 3, bytes: 20_000_000 });
      const written = await head(`${root}/in/big.bin`);
      assert.match(written.ETag ?? "", /-3"$/, "the ETag of a 3-part upload");
      assert.equal(written.ServerSideEncryption, "AES256");
      assert.ok(sameBytes(await files.read(`${root}/in/big.bin`), data));

      await files.move(`${root}/in/big.bin`, `${root}/archive/big #1.bin`);
      assert.ok(sameBytes(await files.read(`${root}/archive/big #1.bin`), data));
      await assert.rejects(files.read(`${root}/in/big.bin`), FileNotFoundError);
      assert.equal((await head(`${root}/archive/big #1.bin`)).ServerSideEncryption, "AES256");

      const uploads = await admin.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
      assert.deepEqual(uploads.Uploads ?? [], [], "no multipart upload is left open");
    });

    it("moves a file larger than one copy part in parts (UploadPartCopy), every byte in place", async () => {
      const root = uniqueId("part-copy");
      const data = noise(12 * MiB + 3, 7);
      const moveEvents: FileStoreEvent[] = [];
      const partCopier = new S3FileStore({
        bucket,
        region: REGION,
        endpointUrl: AWS_ENDPOINT_URL,
        copyPartSizeBytes: 5 * MiB,
        onEvent: (event) => moveEvents.push(event),
      });
      try {
        const src = `${root}/in/pay roll #1+2 100% Zoë 中文.bin`;
        const dst = `${root}/out/ready ü+%.bin`;
        await partCopier.write(src, data);
        await partCopier.move(src, dst);
        const moved = moveEvents.find((event) => event.type === "move");
        assert.deepEqual(moved, { ...moved, type: "move", parts: 3, bytes: data.length });
        assert.deepEqual(await partCopier.listFiles(`${root}/`), [dst]);
        assert.ok(sameBytes(await partCopier.read(dst), data));
        const copied = await head(dst);
        assert.match(copied.ETag ?? "", /-3"$/);
        assert.equal(copied.ServerSideEncryption, "AES256");
      } finally {
        partCopier.close();
      }
    });

    it("round-trips every byte value through write, move and read", async () => {
      const root = uniqueId("binary");
      const data = Uint8Array.from({ length: 256 * 8 }, (_, index) => (index * 7 + (index >> 8)) % 256);
      assert.equal(new Set(data).size, 256);
      await files.write(`${root}/a.bin`, data);
      await files.move(`${root}/a.bin`, `${root}/b.bin`);
      assert.deepEqual(await files.read(`${root}/b.bin`), data);
    });

    it("encrypts with AES256 at rest after a write and after a move", async () => {
      const root = uniqueId("sse");
      await files.write(`${root}/a.csv`, "secret payroll");
      assert.equal((await head(`${root}/a.csv`)).ServerSideEncryption, "AES256");
      await files.move(`${root}/a.csv`, `${root}/b.csv`);
      assert.equal((await head(`${root}/b.csv`)).ServerSideEncryption, "AES256");
    });

    it("listFiles() and listFilePages() skip keys other tools wrote that are no valid path, report each, and every listed path reads", async () => {
      const root = uniqueId("foreign");
      const foreign = FOREIGN_KEYS.map((key) => `${root}/${key}`);
      for (const key of foreign) await putRaw(admin, bucket, key, "written by another tool");
      const paths = [`${root}/in/a.csv`, `${root}/in/b.csv`, `${root}/x/y.csv`];
      for (const path of paths) await files.write(path, path);

      events.length = 0;
      const listed = await files.listFiles(`${root}/`);
      assert.deepEqual(listed, paths);
      const skipped = events.filter((event) => event.type === "skipped");
      assert.deepEqual(skipped.map((event) => event.key).sort(comparePaths), [...foreign].sort(comparePaths));
      assert.deepEqual(events.at(-1), { ...events.at(-1), type: "list", keys: 3, skipped: foreign.length });
      for (const path of listed) assert.equal(new TextDecoder().decode(await files.read(path)), path);

      const paged = new S3FileStore({ bucket, region: REGION, endpointUrl: AWS_ENDPOINT_URL, pageSize: 2 });
      try {
        const pages: string[][] = [];
        for await (const page of paged.listFilePages(`${root}/`)) pages.push(page);
        assert.deepEqual(pages.flat(), paths);
        assert.ok(pages.every((page) => page.length > 0 && page.length <= 2));
        assert.deepEqual(await paged.listFiles(`${root}/in/`), [`${root}/in/a.csv`, `${root}/in/b.csv`]);
      } finally {
        paged.close();
      }
    });

    it("reports a missing bucket as a FileStoreError naming it, not as a missing file", async () => {
      const missing = new S3FileStore({
        bucket: uniqueId("no-such-bucket"),
        region: REGION,
        endpointUrl: AWS_ENDPOINT_URL,
      });
      try {
        await assert.rejects(missing.write("a.csv", "x"), (error: unknown) => {
          assert.ok(error instanceof FileStoreError && !(error instanceof FileNotFoundError));
          assert.match(error.message, /: the bucket does not exist$/);
          assert.ok(error.cause !== undefined);
          return true;
        });
        await assert.rejects(missing.listFiles(""), /the bucket does not exist/);
      } finally {
        missing.close();
      }
    });
  });
});
