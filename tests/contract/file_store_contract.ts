// The IFileStore contract: every backend runs this suite unchanged.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { FileNotFoundError, type IFileStore, InvalidInputError } from "../../mod.ts";
import { BAD_PATHS, uniqueId } from "./fixtures.ts";

/** A file store, and how to dispose of it. */
export interface FileStoreUnderTest {
  files: IFileStore;
  cleanup(): Promise<void>;
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

    it("move() replaces an existing destination", async () => {
      const root = uniqueId("root");
      await files.write(`${root}/a`, "new");
      await files.write(`${root}/b`, "old");
      await files.move(`${root}/a`, `${root}/b`);
      assert.deepEqual(await files.read(`${root}/b`), utf8.encode("new"));
      assert.deepEqual(await files.listFiles(`${root}/`), [`${root}/b`]);
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

    it("listFiles() rejects a prefix that could never match a valid path", async () => {
      for (const prefix of ["/abs", "a/../b", "a\\b", "/", "a\u0001"]) {
        await assert.rejects(files.listFiles(prefix), InvalidInputError);
      }
    });

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
