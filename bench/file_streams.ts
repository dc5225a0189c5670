// Peak resident memory of S3FileStore's streams and whole-file reads, on the
// local AWS endpoint (moto_server), under Deno or Node:
//
//   deno run -A bench/file_streams.ts [MiB]
//   deno task build:npm && node npm/esm/bench/file_streams.js [MiB]
//
// MiB (default 1024) is the size of the streamed file; `read` is measured on
// a quarter of it. The last scenario is the floor under `readStream`: the
// same ranged GetObjects through the SDK alone (with the HTTP layer the
// store's own client has: GETs through fetch on Deno), each chunk dropped.
// FILE_STREAMS_PART_MIB, FILE_STREAMS_CONCURRENCY and FILE_STREAMS_RANGE_MIB
// set the store's partSizeBytes, partConcurrency and rangeSizeBytes (in MiB)
// instead of the defaults. Each scenario runs in a fresh process, so one
// scenario's heap never inflates the next one's numbers. RSS is sampled
// every 5 ms (`peak_rss.ts`); the report gives the RSS just before the
// operation and the peak above it. Run it only against your own endpoint: it stores the files
// there (about 1.25 times MiB) and deletes them and the bucket at the end.
import { spawnSync } from "node:child_process";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { CreateBucketCommand, DeleteBucketCommand, GetObjectCommand } from "@aws-sdk/client-s3";
import { S3FileStore } from "../mod.ts";
import { createOwnS3Client } from "../src/persistence/s3_http.ts";
import { measurePeakRss } from "./peak_rss.ts";
import { AWS_ENDPOINT_URL, probe, useLocalAwsCredentials } from "../tests/support/gate.ts";

const MiB = 1024 * 1024;
const size = Number(process.env.FILE_STREAMS_MIB ?? process.argv[2] ?? 1024) * MiB;
const readSize = Math.floor(size / 4);
const runtime = "Deno" in globalThis
  ? `Deno ${(globalThis as { Deno?: { version: { deno: string } } }).Deno!.version.deno}`
  : `Node ${process.version}`;

/** The same 1 MiB of random bytes, `total` bytes in all (writeStream copies each chunk before asking for the next). */
async function* source(total: number): AsyncGenerator<Uint8Array> {
  const chunk = new Uint8Array(MiB);
  for (let offset = 0; offset < chunk.length; offset += 65_536) {
    crypto.getRandomValues(chunk.subarray(offset, offset + 65_536));
  }
  for (let sent = 0; sent < total; sent += MiB) yield sent + MiB <= total ? chunk : chunk.subarray(0, total - sent);
}

/** Part size, parts in flight and range size from FILE_STREAMS_PART_MIB, FILE_STREAMS_CONCURRENCY, FILE_STREAMS_RANGE_MIB. */
function tuning(): { partSizeBytes?: number; partConcurrency?: number; rangeSizeBytes?: number } {
  const number = (name: string) => (process.env[name] === undefined ? undefined : Number(process.env[name]));
  const part = number("FILE_STREAMS_PART_MIB");
  const concurrency = number("FILE_STREAMS_CONCURRENCY");
  const range = number("FILE_STREAMS_RANGE_MIB");
  return {
    ...(part === undefined ? {} : { partSizeBytes: part * MiB }),
    ...(concurrency === undefined ? {} : { partConcurrency: concurrency }),
    ...(range === undefined ? {} : { rangeSizeBytes: range * MiB }),
  };
}

const SCENARIOS: Record<string, (store: S3FileStore) => Promise<number>> = {
  [`writeStream ${size / MiB} MiB`]: async (store) => {
    await store.writeStream("big/stream.bin", source(size));
    return size;
  },
  [`readStream ${size / MiB} MiB`]: async (store) => {
    let bytes = 0;
    for await (const chunk of await store.readStream("big/stream.bin")) bytes += chunk.length;
    if (bytes !== size) throw new Error(`read ${bytes} bytes`);
    return bytes;
  },
  [`read ${readSize / MiB} MiB`]: async (store) => (await store.read("big/read.bin")).length,
  [`SDK ranged GetObject ${size / MiB} MiB (floor)`]: async () => {
    const range = tuning().rangeSizeBytes ?? 8 * MiB;
    let bytes = 0;
    for (let first = 0; first < size; first += range) {
      const response = await client.send(
        new GetObjectCommand({
          Bucket: benchBucket(),
          Key: "big/stream.bin",
          Range: `bytes=${first}-${first + range - 1}`,
        }),
      );
      const reader = response.Body!.transformToWebStream().getReader();
      for (let next = await reader.read(); !next.done; next = await reader.read()) bytes += next.value.length;
    }
    if (bytes !== size) throw new Error(`read ${bytes} bytes`);
    return bytes;
  },
};

useLocalAwsCredentials();
const client = createOwnS3Client({ region: "us-east-1", endpoint: AWS_ENDPOINT_URL, forcePathStyle: true });
const scenario = process.env.FILE_STREAMS_SCENARIO;
const benchBucket = () => process.env.FILE_STREAMS_BUCKET!;

if (scenario !== undefined) {
  // Child: one scenario, its numbers as JSON on the last line.
  // The store makes its own client, as an application's would.
  const store = new S3FileStore({
    bucket: benchBucket(),
    region: "us-east-1",
    endpointUrl: AWS_ENDPOINT_URL,
    ...tuning(),
  });
  // The SDK loads most of its code on the first requests: warm it up, so that is not counted.
  await store.writeStream("warm-up.bin", source(MiB));
  for await (const _ of await store.readStream("warm-up.bin"));
  const { before, peak, ms, result: bytes } = await measurePeakRss(() => SCENARIOS[scenario](store));
  store.close();
  client.destroy();
  console.log(JSON.stringify({ before, peak, ms, bytes }));
} else {
  const unreachable = await probe(AWS_ENDPOINT_URL);
  if (unreachable !== undefined) throw new Error(`This needs the local AWS endpoint: ${unreachable}`);
  const bucket = `bluestar-streams-${crypto.randomUUID()}`;
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  const store = new S3FileStore({ bucket, client });
  await store.writeStream("big/read.bin", source(readSize));
  const self = fileURLToPath(import.meta.url);
  const args = "Deno" in globalThis ? ["run", "-A", self] : [self];
  console.log(`${runtime}, ${AWS_ENDPOINT_URL}`);
  console.log("| scenario | RSS before | peak RSS | peak - before | time |");
  console.log("| --- | ---: | ---: | ---: | ---: |");
  for (const name of Object.keys(SCENARIOS)) {
    const child = spawnSync(process.execPath, args, {
      env: {
        ...process.env,
        FILE_STREAMS_SCENARIO: name,
        FILE_STREAMS_BUCKET: bucket,
        FILE_STREAMS_MIB: String(size / MiB),
      },
      stdio: ["ignore", "pipe", "inherit"],
      encoding: "utf8",
      maxBuffer: 1024 * 1024,
    });
    if (child.status !== 0) throw new Error(`Scenario ${name} failed`);
    const { before, peak, ms } = JSON.parse(child.stdout.trim().split("\n").at(-1)!);
    const mb = (bytes: number) => `${(bytes / MiB).toFixed(1)} MiB`;
    console.log(`| ${name} | ${mb(before)} | ${mb(peak)} | ${mb(peak - before)} | ${Math.round(ms)} ms |`);
  }
  for (const path of ["big/read.bin", "big/stream.bin", "warm-up.bin"]) await store.delete(path);
  await client.send(new DeleteBucketCommand({ Bucket: bucket }));
  client.destroy();
}
