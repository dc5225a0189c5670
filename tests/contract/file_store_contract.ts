// The IFileStore contract: every backend runs this suite unchanged.
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { after, before, describe, it } from "node:test";
import { createHash } from "node:crypto";
import {
  ConfigError,
  ConflictError,
  FileNotFoundError,
  FileStoreError,
  type IFileStore,
  IntegrityError,
  InvalidInputError,
} from "../../mod.ts";
import { BAD_PATHS, noise, streamOf, uniqueId } from "./fixtures.ts";
import { outcome } from "../support/rules_data.ts";

/** A file store, and how to dispose of it. */
export interface FileStoreUnderTest {
  files: IFileStore;
  /** A store of the same backend with this listing page size (checked by its constructor); `cleanup` disposes of it. */
  withPageSize(pageSize: number): IFileStore;
  /**
   * Replaces a file's bytes behind the store's back, keeping the checksum
   * stored with it (as damage or another tool would); absent where the
   * backend's storage cannot be reached (memory).
   */
  corrupt?(path: string, bytes: Uint8Array): Promise<void>;
  /**
   * A store of the same backend whose storage keeps a write's `retainUntil`
   * (S3: a bucket with Object Lock enabled; memory: any store); `cleanup`
   * disposes of it as far as its retention allows.
   */
  withRetention(): Promise<IFileStore>;
  cleanup(): Promise<void>;
}

const MiB = 1024 * 1024;

/**
 * Stream sizes around a 5 MiB part (every backend's suite uses 5 MiB parts
 * and a 5 MiB multipart threshold): none, one byte, exactly one part, one
 * byte over, several parts.
 */
export const STREAM_SIZES: readonly number[] = [0, 1, 5 * MiB, 5 * MiB + 1, 11 * MiB + 3];

function sha256(data: Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

/** `data` in chunks of `chunk` bytes (an odd size, so chunks never line up with parts). */
async function* chunked(data: Uint8Array, chunk = 300_007): AsyncGenerator<Uint8Array> {
  for (let start = 0; start < data.length; start += chunk) yield data.subarray(start, start + chunk);
}

/** Everything a stream delivers, checked to be Uint8Arrays. */
async function drain(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  const reader = stream.getReader();
  for (let next = await reader.read(); !next.done; next = await reader.read()) {
    assert.ok(next.value instanceof Uint8Array);
    parts.push(next.value);
  }
  return Buffer.concat(parts);
}

const utf8 = new TextEncoder();

/**
 * Registers the file-store contract suite. Every test works under its own
 * root prefix, so a shared bucket is fine.
 *
 * @param name The backend's name.
 * @param open Creates a store (called once per suite).
 */
export function fileStoreContract(name: string, open: () => Promise<FileStoreUnderTest>): void {
  describe(`IFileStore contract: ${name}`, () => {
    let subject: FileStoreUnderTest;
    let files: IFileStore;
    before(async () => {
      subject = await open();
      files = subject.files;
    });
    after(() => subject?.cleanup());

    it("write() then read() round-trips every byte value", async () => {
      const path = `${uniqueId("root")}/all-bytes.bin`;
      const data = Uint8Array.from({ length: 512 }, (_, index) => index % 256);
      await files.write(path, data);
      assert.deepEqual(await files.read(path), data);
    });

    it("write() stores a string as UTF-8", async () => {
      const path = `${uniqueId("root")}/text.csv`;
      await files.write(path, "name\nZoë 中文 \u{1F4B5}\n");
      assert.deepEqual(await files.read(path), utf8.encode("name\nZoë 中文 \u{1F4B5}\n"));
    });

    it("write() replaces a file and writes an empty one", async () => {
      const path = `${uniqueId("root")}/replace.txt`;
      await files.write(path, "first");
      await files.write(path, "");
      assert.deepEqual(await files.read(path), new Uint8Array());
    });

    it("read() and write() work on copies", async () => {
      const path = `${uniqueId("root")}/copy.bin`;
      const data = Uint8Array.of(1, 2, 3);
      await files.write(path, data);
      data[0] = 9;
      const read = await files.read(path);
      read[1] = 9;
      assert.deepEqual(await files.read(path), Uint8Array.of(1, 2, 3));
    });

    it("write() stores what a Buffer or a subarray view shows, and no later change to it reaches the file", async () => {
      const root = uniqueId("root");
      const buffer = Buffer.from("hello");
      await files.write(`${root}/buffer.csv`, buffer);
      buffer.fill(0x78);
      const backing = utf8.encode("__payroll__");
      await files.write(`${root}/view.csv`, backing.subarray(2, 9));
      backing.fill(0x78);
      const pooled = Buffer.from("id,hours\n1,80\n").subarray(3, 8);
      await files.write(`${root}/pooled.csv`, pooled);
      pooled.fill(0x78);
      assert.deepEqual(await files.read(`${root}/buffer.csv`), utf8.encode("hello"));
      assert.deepEqual(await files.read(`${root}/view.csv`), utf8.encode("payroll"));
      assert.deepEqual(await files.read(`${root}/pooled.csv`), utf8.encode("hours"));
    });

    it("read() returns a plain Uint8Array of its own, before and after a move", async () => {
      const root = uniqueId("root");
      await files.write(`${root}/in.csv`, Buffer.from("hello"));
      const first = await files.read(`${root}/in.csv`);
      assert.equal(Object.getPrototypeOf(first), Uint8Array.prototype);
      first.fill(0x78);
      await files.move(`${root}/in.csv`, `${root}/out.csv`);
      const moved = await files.read(`${root}/out.csv`);
      assert.deepEqual(moved, utf8.encode("hello"));
      moved.fill(0x78);
      assert.deepEqual(await files.read(`${root}/out.csv`), utf8.encode("hello"));
    });

    it("read() rejects a missing file with FileNotFoundError naming it", async () => {
      const path = `${uniqueId("root")}/missing.csv`;
      await assert.rejects(files.read(path), (error: unknown) => {
        assert.ok(error instanceof FileNotFoundError);
        assert.equal(error.code, "FILE_NOT_FOUND");
        assert.ok(error.message.includes(JSON.stringify(path)), error.message);
        return true;
      });
    });

    it("move() leaves the content at the destination and no copy behind", async () => {
      const root = uniqueId("root");
      await files.write(`${root}/in/a.csv`, "a");
      await files.move(`${root}/in/a.csv`, `${root}/archive/a.csv`);
      assert.deepEqual(await files.read(`${root}/archive/a.csv`), utf8.encode("a"));
      await assert.rejects(files.read(`${root}/in/a.csv`), FileNotFoundError);
      assert.deepEqual(await files.listFiles(`${root}/`), [`${root}/archive/a.csv`]);
    });

    it("move() handles keys with spaces, #, +, % and non-ASCII characters", async () => {
      const root = uniqueId("root");
      const src = `${root}/in/pay roll #1+2 100% Zoë 中文.csv`;
      const dst = `${root}/out/ready #1+2 ü.csv`;
      await files.write(src, "weird");
      await files.move(src, dst);
      assert.deepEqual(await files.listFiles(`${root}/`), [dst]);
      assert.deepEqual(await files.read(dst), utf8.encode("weird"));
    });

    it("move() never replaces an existing destination: ConflictError naming it, both files kept", async () => {
      const root = uniqueId("root");
      await files.write(`${root}/a`, "new");
      await files.write(`${root}/b`, "old");
      await assert.rejects(files.move(`${root}/a`, `${root}/b`), (error: unknown) => {
        assert.ok(error instanceof ConflictError, String(error));
        assert.equal(error.code, "CONFLICT");
        assert.ok(error.message.includes(JSON.stringify(`${root}/b`)), error.message);
        return true;
      });
      assert.deepEqual(await files.read(`${root}/a`), utf8.encode("new"));
      assert.deepEqual(await files.read(`${root}/b`), utf8.encode("old"));
      assert.deepEqual(await files.listFiles(`${root}/`), [`${root}/a`, `${root}/b`]);
    });

    it("two moves of one source at once: exactly one lands, the other is a FileNotFoundError and leaves no copy", async () => {
      for (let trial = 0; trial < 5; trial++) {
        const root = uniqueId("root");
        await files.write(`${root}/in/x.csv`, `payroll ${trial}`);
        const results = await Promise.all([
          outcome(files.move(`${root}/in/x.csv`, `${root}/a/x.csv`)),
          outcome(files.move(`${root}/in/x.csv`, `${root}/b/x.csv`)),
        ]);
        const won = results.flatMap((result, index) => (result.ok ? [index] : []));
        assert.equal(won.length, 1, `trial ${trial}: ${won.length} moves succeeded`);
        const lost = results[1 - won[0]];
        assert.ok(!lost.ok && lost.error instanceof FileNotFoundError, `trial ${trial}: ${!lost.ok && lost.error}`);
        const winner = `${root}/${"ab"[won[0]]}/x.csv`;
        assert.deepEqual(await files.listFiles(`${root}/`), [winner]);
        assert.deepEqual(await files.read(winner), utf8.encode(`payroll ${trial}`));
      }
    });

    it("two sources moved to one destination at once: exactly one lands, the other is a ConflictError and keeps its source", async () => {
      for (let trial = 0; trial < 5; trial++) {
        const root = uniqueId("root");
        await files.write(`${root}/in/a.csv`, "from a");
        await files.write(`${root}/in/b.csv`, "from b");
        const results = await Promise.all([
          outcome(files.move(`${root}/in/a.csv`, `${root}/out/x.csv`)),
          outcome(files.move(`${root}/in/b.csv`, `${root}/out/x.csv`)),
        ]);
        const won = results.flatMap((result, index) => (result.ok ? [index] : []));
        assert.equal(won.length, 1, `trial ${trial}: ${won.length} moves succeeded`);
        const lost = results[1 - won[0]];
        assert.ok(!lost.ok && lost.error instanceof ConflictError, `trial ${trial}: ${!lost.ok && lost.error}`);
        const [winner, loser] = won[0] === 0 ? ["a", "b"] : ["b", "a"];
        assert.deepEqual(await files.listFiles(`${root}/`), [`${root}/in/${loser}.csv`, `${root}/out/x.csv`]);
        assert.deepEqual(await files.read(`${root}/out/x.csv`), utf8.encode(`from ${winner}`));
        assert.deepEqual(await files.read(`${root}/in/${loser}.csv`), utf8.encode(`from ${loser}`));
      }
    });

    it("move() of a missing source is a FileNotFoundError and changes nothing", async () => {
      const root = uniqueId("root");
      await files.write(`${root}/dst`, "kept");
      await assert.rejects(files.move(`${root}/missing`, `${root}/dst`), FileNotFoundError);
      assert.deepEqual(await files.read(`${root}/dst`), utf8.encode("kept"));
      assert.deepEqual(await files.listFiles(`${root}/`), [`${root}/dst`]);
    });

    it("move() of a file onto itself changes nothing", async () => {
      const path = `${uniqueId("root")}/self.csv`;
      await files.write(path, "same");
      await files.move(path, path);
      assert.deepEqual(await files.read(path), utf8.encode("same"));
    });

    it("listFiles() returns every path under the prefix, sorted by code point", async () => {
      const root = uniqueId("root");
      const paths = [
        `${root}/b.csv`,
        `${root}/a/2.csv`,
        `${root}/a/10.csv`,
        `${root}/\uFFFD.csv`,
        `${root}/\u{1F600}.csv`,
      ];
      for (const path of paths) await files.write(path, path);
      await files.write(`${root}-sibling/x.csv`, "not under the folder");
      assert.deepEqual(await files.listFiles(`${root}/`), [
        `${root}/a/10.csv`,
        `${root}/a/2.csv`,
        `${root}/b.csv`,
        `${root}/\uFFFD.csv`,
        `${root}/\u{1F600}.csv`,
      ]);
      assert.deepEqual(await files.listFiles(`${root}/a`), [`${root}/a/10.csv`, `${root}/a/2.csv`]);
      assert.deepEqual(await files.listFiles(`${uniqueId("nothing")}/`), []);
    });

    it("listFilePages() yields every path once, in the order listFiles() returns", async () => {
      const root = uniqueId("root");
      for (let index = 0; index < 25; index++) await files.write(`${root}/f${String(index).padStart(2, "0")}`, "");
      const paged: string[] = [];
      for await (const page of files.listFilePages(`${root}/`)) paged.push(...page);
      assert.deepEqual(paged, await files.listFiles(`${root}/`));
      assert.equal(paged.length, 25);
    });

    it("a listing page size that is not an integer from 1 to 1000 is a ConfigError", () => {
      for (const pageSize of [0, -1, 1.5, NaN, Infinity, 1001, "7", null]) {
        assert.throws(() => subject.withPageSize(pageSize as number), ConfigError, `pageSize ${String(pageSize)}`);
      }
    });

    it("listFilePages() yields pages of at most pageSize paths, every path once, for pageSize 1 and 1000", async () => {
      for (const [pageSize, sizes] of [[1, [1, 1, 1]], [1000, [3]]] as const) {
        const root = uniqueId("root");
        const paged = subject.withPageSize(pageSize);
        for (const name of ["a", "b", "c"]) await paged.write(`${root}/${name}`, name);
        const pages: string[][] = [];
        for await (const page of paged.listFilePages(`${root}/`)) pages.push(page);
        assert.deepEqual(pages.map((page) => page.length), sizes);
        assert.deepEqual(pages.flat(), [`${root}/a`, `${root}/b`, `${root}/c`]);
      }
    });

    it("listFiles() rejects a prefix that could never match a valid path", async () => {
      for (const prefix of ["/abs", "a/../b", "a\\b", "/", "a\u0001"]) {
        await assert.rejects(files.listFiles(prefix), InvalidInputError);
      }
    });

    for (const size of STREAM_SIZES) {
      it(`writeStream() then readStream() and read() return ${size} bytes byte for byte`, async () => {
        const path = `${uniqueId("root")}/stream-${size}.bin`;
        const data = noise(size, size);
        await files.writeStream(path, chunked(data));
        assert.ok(Buffer.from(await drain(await files.readStream(path))).equals(data));
        assert.ok(Buffer.from(await files.read(path)).equals(data));
        const stat = await files.stat(path);
        assert.equal(stat.size, size);
        assert.equal(stat.sha256, sha256(data));
      });
    }

    it("writeStream() takes a web ReadableStream and replaces a file", async () => {
      const path = `${uniqueId("root")}/web.csv`;
      await files.write(path, "old");
      await files.writeStream(path, streamOf([utf8.encode("id,hours\n"), utf8.encode("1,80\n")]));
      assert.deepEqual(await files.read(path), utf8.encode("id,hours\n1,80\n"));
    });

    it("writeStream() copies each chunk: a producer that reuses its buffer does not change the file", async () => {
      const path = `${uniqueId("root")}/reused.bin`;
      const buffer = new Uint8Array(4);
      async function* reusing() {
        for (let value = 1; value <= 3; value++) {
          buffer.fill(value);
          yield buffer;
        }
      }
      await files.writeStream(path, reusing());
      assert.deepEqual(await files.read(path), Uint8Array.of(1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3));
    });

    for (const size of [100, 11 * MiB]) {
      it(`writeStream() whose source throws after ${size} bytes is a FileStoreError with its cause; the file is as it was`, async () => {
        const root = uniqueId("root");
        await files.write(`${root}/kept.csv`, "kept");
        const boom = new Error("the upstream connection dropped");
        async function* failing() {
          yield* chunked(noise(size));
          throw boom;
        }
        for (const path of [`${root}/kept.csv`, `${root}/new.csv`]) {
          await assert.rejects(files.writeStream(path, failing()), (error: unknown) => {
            assert.ok(error instanceof FileStoreError && !(error instanceof FileNotFoundError), String(error));
            assert.equal(error.cause, boom);
            assert.ok(error.message.includes(JSON.stringify(path)), error.message);
            return true;
          });
        }
        assert.deepEqual(await files.read(`${root}/kept.csv`), utf8.encode("kept"));
        assert.deepEqual(await files.listFiles(`${root}/`), [`${root}/kept.csv`]);
      });
    }

    it("writeStream() refuses a chunk that is not a Uint8Array, and a source that is no stream, writing nothing", async () => {
      const root = uniqueId("root");
      await files.write(`${root}/kept.csv`, "kept");
      async function* strings() {
        yield utf8.encode("fine");
        yield "not bytes" as unknown as Uint8Array;
      }
      await assert.rejects(files.writeStream(`${root}/kept.csv`, strings()), InvalidInputError);
      for (const source of [null, "text", utf8.encode("bytes"), [utf8.encode("a")], { length: 1 }]) {
        await assert.rejects(files.writeStream(`${root}/kept.csv`, source as never), InvalidInputError);
      }
      assert.deepEqual(await files.read(`${root}/kept.csv`), utf8.encode("kept"));
      assert.deepEqual(await files.listFiles(`${root}/`), [`${root}/kept.csv`]);
    });

    it("readStream() rejects a missing file with FileNotFoundError before any byte", async () => {
      const path = `${uniqueId("root")}/missing.bin`;
      await assert.rejects(files.readStream(path), (error: unknown) => {
        assert.ok(error instanceof FileNotFoundError, String(error));
        assert.ok(error.message.includes(JSON.stringify(path)), error.message);
        return true;
      });
    });

    it("a read stream can be cancelled part-way, and the file stays readable", async () => {
      const path = `${uniqueId("root")}/cancel.bin`;
      const data = noise(6 * MiB + 5);
      await files.write(path, data);
      const reader = (await files.readStream(path)).getReader();
      const first = await reader.read();
      assert.ok(!first.done && first.value.length > 0);
      await reader.cancel();
      assert.ok(Buffer.from(await files.read(path)).equals(data));
    });

    it("stat() gives the size, the SHA-256 of the content, when it was written and an ETag that changes with it", async () => {
      const path = `${uniqueId("root")}/stat.csv`;
      const before = Date.now();
      await files.write(path, "id,hours\n1,80\n");
      const first = await files.stat(path);
      assert.equal(first.path, path);
      assert.equal(first.size, 14);
      assert.equal(first.sha256, sha256(utf8.encode("id,hours\n1,80\n")));
      assert.ok(first.lastModified instanceof Date && !Number.isNaN(first.lastModified.getTime()));
      // S3 keeps whole seconds: the time is within the second the write started in or later.
      assert.ok(first.lastModified.getTime() >= Math.floor(before / 1000) * 1000 - 1000);
      assert.equal(typeof first.etag, "string");
      assert.notEqual(first.etag, "");
      await files.write(path, "id,hours\n1,81\n");
      assert.notEqual((await files.stat(path)).etag, first.etag);
      await assert.rejects(files.stat(`${path}.missing`), FileNotFoundError);
    });

    it("exists() says whether a file is there", async () => {
      const root = uniqueId("root");
      await files.write(`${root}/a.csv`, "");
      assert.equal(await files.exists(`${root}/a.csv`), true);
      assert.equal(await files.exists(`${root}/b.csv`), false);
      assert.equal(await files.exists(`${root}`), false, "a folder is not a file");
    });

    it("delete() removes a file; deleting a missing file is not an error", async () => {
      const root = uniqueId("root");
      await files.write(`${root}/a.csv`, "a");
      await files.write(`${root}/b.csv`, "b");
      await files.delete(`${root}/a.csv`);
      await files.delete(`${root}/a.csv`);
      await files.delete(`${root}/never.csv`);
      assert.equal(await files.exists(`${root}/a.csv`), false);
      await assert.rejects(files.read(`${root}/a.csv`), FileNotFoundError);
      assert.deepEqual(await files.listFiles(`${root}/`), [`${root}/b.csv`]);
    });

    it("a file written with retainUntil is create-only, and delete() refuses it until then; it stays readable", async () => {
      const retaining = await subject.withRetention();
      const path = `${uniqueId("root")}/retained.json`;
      const retainUntil = new Date(Date.now() + 3_600_000);
      await retaining.write(path, "sealed", { retainUntil });
      await assert.rejects(retaining.write(path, "other", { retainUntil }), ConflictError);
      await assert.rejects(retaining.delete(path), (error: unknown) => {
        assert.ok(error instanceof FileStoreError);
        assert.match(error.message, /it is under an Object Lock retention \("COMPLIANCE" mode\) until .*; it is kept$/);
        return true;
      });
      assert.equal(await retaining.exists(path), true);
      assert.deepEqual(await retaining.read(path), utf8.encode("sealed"));
      assert.deepEqual(await retaining.readRetained(path), utf8.encode("sealed"));
    });

    it("move() keeps the file's SHA-256, and reads of the moved file are verified", async () => {
      const root = uniqueId("root");
      const data = noise(6 * MiB + 1, 3);
      await files.writeStream(`${root}/in.bin`, chunked(data));
      const before = await files.stat(`${root}/in.bin`);
      await files.move(`${root}/in.bin`, `${root}/out.bin`);
      const after = await files.stat(`${root}/out.bin`);
      assert.equal(after.sha256, before.sha256);
      assert.equal(after.sha256, sha256(data));
      assert.ok(Buffer.from(await files.read(`${root}/out.bin`)).equals(data));
    });

    for (const size of [5, 6 * MiB + 7]) {
      it(`read() and readStream() refuse a ${size}-byte file whose bytes no longer match its SHA-256 (IntegrityError)`, async (t) => {
        if (subject.corrupt === undefined) return t.skip("the backend's storage cannot be reached behind its back");
        const path = `${uniqueId("root")}/corrupt.bin`;
        const data = noise(size, 9);
        await files.write(path, data);
        const damaged = new Uint8Array(data);
        damaged[size - 1] ^= 0x01;
        await subject.corrupt(path, damaged);
        const integrity = (error: unknown) => {
          assert.ok(error instanceof IntegrityError, String(error));
          assert.ok(error instanceof FileStoreError);
          assert.equal(error.code, "INTEGRITY_ERROR");
          assert.ok(error.message.includes(JSON.stringify(path)), error.message);
          return true;
        };
        await assert.rejects(files.read(path), integrity);
        // The stream errors instead of delivering its last chunk: never all the bytes.
        const reader = (await files.readStream(path)).getReader();
        let delivered = 0;
        await assert.rejects(async () => {
          for (let next = await reader.read(); !next.done; next = await reader.read()) delivered += next.value.length;
        }, integrity);
        assert.ok(delivered < size, `${delivered} of ${size} bytes delivered`);
      });
    }

    for (const [label, path] of BAD_PATHS) {
      it(`every method rejects a path with ${label} with InvalidInputError and writes nothing`, async () => {
        const root = uniqueId("root");
        const good = `${root}/good.csv`;
        await files.write(good, "kept");
        const bad = path as string;
        for (
          const call of [
            () => files.read(bad),
            () => files.write(bad, "x"),
            () => files.move(good, bad),
            () => files.move(bad, good),
            () => files.readStream(bad),
            () => files.writeStream(bad, chunked(utf8.encode("x"))),
            () => files.stat(bad),
            () => files.exists(bad),
            () => files.delete(bad),
          ]
        ) {
          await assert.rejects(call(), (error: unknown) => {
            assert.ok(error instanceof InvalidInputError, `${call} threw ${error}`);
            assert.equal(error.code, "INVALID_INPUT");
            return true;
          });
        }
        assert.deepEqual(await files.listFiles(`${root}/`), [good]);
        assert.deepEqual(await files.read(good), utf8.encode("kept"));
      });
    }

    it("write() rejects content that is neither bytes nor a string", async () => {
      const path = `${uniqueId("root")}/bad.bin`;
      for (const data of [null, 42, [1, 2], { length: 1 }]) {
        await assert.rejects(files.write(path, data as never), InvalidInputError);
      }
      await assert.rejects(files.read(path), FileNotFoundError);
    });
  });
}
