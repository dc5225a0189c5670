// Item 6: S3 moves under failure, on moto. Failures are injected through
// middleware on the S3Client handed to S3FileStore: a failed DeleteObject
// leaves both objects and says so, a failed part copy leaves the source as
// it was and no destination, and listings taken while 500 moves run never
// show a key twice. Issue 11: moves that race have exactly one winner, both
// for one source moved to two destinations and for two sources moved to one
// destination, and the loser leaves no copy.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { HeadObjectCommand, ListMultipartUploadsCommand, S3Client } from "@aws-sdk/client-s3";
import { ConflictError, FileNotFoundError, FileStoreError, type FileStoreEvent, type S3FileStore } from "../../mod.ts";
import { comparePaths } from "../../src/core/keys.ts";
import { uniqueId } from "../contract/fixtures.ts";
import { type FaultLog, injectFaults } from "../support/faults.ts";
import { AWS_ENDPOINT_URL, integrationSuite, probe } from "../support/gate.ts";
import { mapConcurrently } from "../../src/core/concurrency.ts";
import { outcome } from "../support/rules_data.ts";
import { noise, openFileStore, REGION, s3Error, sameBytes } from "../support/s3.ts";

integrationSuite("Reliability: S3 moves under failure", await probe(AWS_ENDPOINT_URL), () => {
  const events: FileStoreEvent[] = [];
  let admin: S3Client;
  let bucket: string;
  let client: S3Client;
  let faults: FaultLog;
  let files: S3FileStore;

  /** Whether the key exists, asked outside the store and its faults. */
  const exists = async (key: string) => {
    try {
      await admin.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      return true;
    } catch (error) {
      if ((error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return false;
      throw error;
    }
  };

  let cleanup = () => Promise.resolve();

  before(async () => {
    client = new S3Client({ region: REGION, endpoint: AWS_ENDPOINT_URL, forcePathStyle: true, maxAttempts: 3 });
    faults = injectFaults(client, () => undefined);
    // A small page size, so listings cross pages while moves run.
    ({ admin, bucket, files, cleanup } = await openFileStore({
      client,
      pageSize: 50,
      onEvent: (event) => events.push(event),
    }));
  });

  after(async () => {
    await cleanup();
    client?.destroy();
  });

  describe("a move whose DeleteObject fails", () => {
    for (
      const [label, error, attempts] of [
        ["AccessDenied (not retried)", () => s3Error("AccessDenied", 403), 1],
        ["InternalError on every attempt (retried, then given up)", () => s3Error("InternalError", 500), 3],
      ] as const
    ) {
      it(`${label}: both objects stay, whole, and the error names both keys and says both exist`, async () => {
        const root = uniqueId("delete-fails");
        const src = `${root}/in/pay #1.csv`;
        const dst = `${root}/archive/pay #1.csv`;
        const data = noise(10_000, 3);
        await files.write(src, data);
        faults.plan = (operation) => (operation === "DeleteObject" ? { error: error() } : undefined);
        faults.reset();
        events.length = 0;
        try {
          await assert.rejects(files.move(src, dst), (thrown: unknown) => {
            assert.ok(thrown instanceof FileStoreError && !(thrown instanceof FileNotFoundError), String(thrown));
            assert.ok(thrown.message.includes(JSON.stringify(src)), thrown.message);
            assert.ok(thrown.message.includes(JSON.stringify(dst)), thrown.message);
            assert.match(thrown.message, /both keys now exist/);
            assert.equal((thrown.cause as Error).name, error().name);
            return true;
          });
        } finally {
          faults.plan = () => undefined;
        }
        assert.equal(faults.attempts.get("DeleteObject"), attempts);
        assert.ok(await exists(src) && await exists(dst));
        assert.ok(sameBytes(await files.read(src), data));
        assert.ok(sameBytes(await files.read(dst), data));
        assert.deepEqual(events.filter((event) => event.type === "move"), []);
        assert.ok(events.some((event) => event.type === "error" && event.action === "move" && event.key === src));
        // A move never replaces a file: moving again is a ConflictError that changes nothing.
        await assert.rejects(files.move(src, dst), ConflictError);
        assert.ok(sameBytes(await files.read(src), data));
        assert.ok(sameBytes(await files.read(dst), data));
      });
    }
  });

  describe("a move whose part copy (UploadPartCopy) fails", () => {
    for (
      const [label, error, attempts] of [
        ["AccessDenied (not retried)", () => s3Error("AccessDenied", 403), 1],
        ["InternalError on every attempt (retried, then given up)", () => s3Error("InternalError", 500), 3],
      ] as const
    ) {
      it(`${label}: the source is unchanged and there is no destination`, async () => {
        const root = uniqueId("copy-fails");
        const src = `${root}/in/pay.csv`;
        const dst = `${root}/archive/pay.csv`;
        const data = noise(20_000, 4);
        await files.write(src, data);
        const before = await admin.send(new HeadObjectCommand({ Bucket: bucket, Key: src }));
        faults.plan = (operation) => (operation === "UploadPartCopy" ? { error: error() } : undefined);
        faults.reset();
        try {
          await assert.rejects(files.move(src, dst), (thrown: unknown) => {
            assert.ok(thrown instanceof FileStoreError && !(thrown instanceof FileNotFoundError), String(thrown));
            assert.match(thrown.message, /the copy failed and the source is kept/);
            assert.equal((thrown.cause as Error).name, error().name);
            return true;
          });
        } finally {
          faults.plan = () => undefined;
        }
        assert.equal(faults.attempts.get("UploadPartCopy"), attempts);
        assert.equal(faults.attempts.get("DeleteObject") ?? 0, 0, "nothing was deleted");
        assert.equal(await exists(dst), false);
        const uploads = await admin.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: root }));
        assert.deepEqual(uploads.Uploads ?? [], [], "the upload was aborted");
        const after = await admin.send(new HeadObjectCommand({ Bucket: bucket, Key: src }));
        assert.equal(after.ETag, before.ETag);
        assert.ok(sameBytes(await files.read(src), data));
        assert.deepEqual(await files.listFiles(`${root}/`), [src]);
      });
    }

    it("a part copy and a DeleteObject that fail once with 500 are retried and the move completes", async () => {
      const root = uniqueId("retried");
      const data = noise(5_000, 5);
      await files.write(`${root}/in/a.bin`, data);
      faults.plan = (operation, attempt) =>
        (operation === "UploadPartCopy" || operation === "DeleteObject") && attempt === 1
          ? { error: s3Error("InternalError", 500) }
          : undefined;
      faults.reset();
      try {
        await files.move(`${root}/in/a.bin`, `${root}/out/a.bin`);
      } finally {
        faults.plan = () => undefined;
      }
      assert.equal(faults.injected.get("UploadPartCopy"), 1);
      assert.equal(faults.injected.get("DeleteObject"), 1);
      assert.deepEqual(await files.listFiles(`${root}/`), [`${root}/out/a.bin`]);
      assert.ok(sameBytes(await files.read(`${root}/out/a.bin`), data));
    });
  });

  describe("moves that race (issue 11)", () => {
    const TRIALS = 20;
    const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

    it(`one source moved to two destinations at once: in ${TRIALS} of ${TRIALS} trials exactly one lands and the other is a FileNotFoundError that leaves no copy`, async () => {
      for (let trial = 0; trial < TRIALS; trial++) {
        const root = uniqueId("one-source");
        await files.write(`${root}/in/x.csv`, `payroll ${trial}`);
        const results = await Promise.all(
          ["a", "b"].map((folder) => outcome(files.move(`${root}/in/x.csv`, `${root}/${folder}/x.csv`))),
        );
        const won = results.flatMap((result, index) => (result.ok ? ["a", "b"][index] : []));
        assert.equal(won.length, 1, `trial ${trial}: ${won.length} moves landed`);
        const lost = results.find((result) => !result.ok);
        assert.ok(lost !== undefined && !lost.ok && lost.error instanceof FileNotFoundError, String(lost));
        assert.deepEqual(await files.listFiles(`${root}/`), [`${root}/${won[0]}/x.csv`], `trial ${trial}`);
        assert.equal(decode(await files.read(`${root}/${won[0]}/x.csv`)), `payroll ${trial}`);
      }
    });

    it(`two sources moved to one destination at once: in ${TRIALS} of ${TRIALS} trials exactly one lands and the other is a ConflictError that keeps its source`, async () => {
      for (let trial = 0; trial < TRIALS; trial++) {
        const root = uniqueId("one-destination");
        await Promise.all(["a", "b"].map((name) => files.write(`${root}/in/${name}.csv`, `from ${name}`)));
        const results = await Promise.all(
          ["a", "b"].map((name) => outcome(files.move(`${root}/in/${name}.csv`, `${root}/out/x.csv`))),
        );
        const won = results.flatMap((result, index) => (result.ok ? ["a", "b"][index] : []));
        assert.equal(won.length, 1, `trial ${trial}: ${won.length} moves landed`);
        const lost = results.find((result) => !result.ok);
        assert.ok(lost !== undefined && !lost.ok && lost.error instanceof ConflictError, String(lost));
        const loser = won[0] === "a" ? "b" : "a";
        assert.deepEqual(await files.listFiles(`${root}/`), [`${root}/in/${loser}.csv`, `${root}/out/x.csv`]);
        assert.equal(decode(await files.read(`${root}/out/x.csv`)), `from ${won[0]}`);
        assert.equal(decode(await files.read(`${root}/in/${loser}.csv`)), `from ${loser}`);
      }
      const uploads = await admin.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
      assert.deepEqual(uploads.Uploads ?? [], [], "every losing upload was aborted");
    });

    it("eight moves of one source to eight destinations at once: one lands, seven are FileNotFoundErrors, one file remains", async () => {
      const root = uniqueId("eight");
      const data = noise(30_000, 8);
      await files.write(`${root}/in/x.bin`, data);
      const results = await Promise.all(
        Array.from({ length: 8 }, (_, index) => outcome(files.move(`${root}/in/x.bin`, `${root}/out${index}/x.bin`))),
      );
      assert.equal(results.filter((result) => result.ok).length, 1);
      assert.ok(results.every((result) => result.ok || result.error instanceof FileNotFoundError));
      const listed = await files.listFiles(`${root}/`);
      assert.equal(listed.length, 1);
      assert.ok(sameBytes(await files.read(listed[0]), data));
    });

    it("a delete that landed but whose answer was lost is retried and refused: the copy is kept, nothing more is deleted", async () => {
      const root = uniqueId("lost-answer");
      const data = noise(4_000, 9);
      await files.write(`${root}/in/x.bin`, data);
      faults.plan = (operation, attempt) =>
        operation === "DeleteObject" && attempt === 1
          ? { error: s3Error("InternalError", 500), after: true }
          : undefined;
      faults.reset();
      try {
        await assert.rejects(files.move(`${root}/in/x.bin`, `${root}/out/x.bin`), (thrown: unknown) => {
          assert.ok(thrown instanceof FileStoreError && !(thrown instanceof FileNotFoundError), String(thrown));
          assert.match(thrown.message, /after a retry, which an earlier attempt may have done; the copy is kept/);
          return true;
        });
      } finally {
        faults.plan = () => undefined;
      }
      assert.equal(faults.attempts.get("DeleteObject"), 2, "the retry only: the copy was not deleted");
      assert.deepEqual(await files.listFiles(`${root}/`), [`${root}/out/x.bin`]);
      assert.ok(sameBytes(await files.read(`${root}/out/x.bin`), data));
    });
  });

  describe("listing while 500 moves run", () => {
    it("no listing shows a key twice; at the end every key is under the destination once and none under the source", async () => {
      const root = uniqueId("many-moves");
      const names = Array.from({ length: 500 }, (_, index) => `f${index}${index % 25 === 0 ? " ü #" : ""}.csv`);
      await mapConcurrently(names, 25, (name) => files.write(`${root}/in/${name}`, name));
      assert.equal((await files.listFiles(`${root}/in/`)).length, 500);

      let moving = true;
      let listings = 0;
      const lister = (async () => {
        while (moving) {
          // The whole root, both prefixes, through pages of 50: each listing on its own must have no duplicate.
          const paths = await files.listFiles(`${root}/`);
          assert.equal(new Set(paths).size, paths.length, `listing ${listings} shows a key twice`);
          assert.ok(paths.every((path) => path.startsWith(`${root}/in/`) || path.startsWith(`${root}/out/`)));
          const paged: string[] = [];
          for await (const page of files.listFilePages(`${root}/out/`)) paged.push(...page);
          assert.equal(new Set(paged).size, paged.length, `paged listing ${listings} shows a key twice`);
          listings++;
        }
      })();
      try {
        await mapConcurrently(names, 20, (name) => files.move(`${root}/in/${name}`, `${root}/out/${name}`));
      } finally {
        moving = false;
        await lister;
      }
      assert.ok(listings >= 2, `only ${listings} listings ran during the moves`);
      assert.deepEqual(await files.listFiles(`${root}/in/`), []);
      const expected = names.map((name) => `${root}/out/${name}`).sort(comparePaths);
      assert.deepEqual(await files.listFiles(`${root}/out/`), expected);
      assert.deepEqual(new TextDecoder().decode(await files.read(`${root}/out/${names[25]}`)), names[25]);
    });
  });
});
