// Peak resident memory of S3FileStore's streaming list and large transfers, on
// the local AWS endpoint (moto_server): `deno run -A bench/s3_memory.ts`.
//
// Each scenario runs in a fresh process, so one scenario's heap never inflates
// the next one's numbers. RSS is sampled every 2 ms during the operation; the
// report gives the RSS just before it and the peak above that.
import { CreateBucketCommand, GetObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { S3FileStore } from "../mod.ts";
import { AWS_ENDPOINT_URL, probe, useLocalAwsCredentials } from "../tests/support/gate.ts";

const KEYS = 5_000;
const LARGE_BYTES = 50 * 1024 * 1024;
const MB = 1024 * 1024;

const SCENARIOS: Record<string, (store: S3FileStore, client: S3Client, bucket: string) => Promise<void>> = {
  "listFilePages (5,000 keys, a page at a time)": async (store) => {
    let count = 0;
    for await (const page of store.listFilePages("list/")) count += page.length;
    if (count !== KEYS) throw new Error(`listed ${count}`);
  },
  "listFiles (5,000 keys, all held)": async (store) => {
    const keys = await store.listFiles("list/");
    if (keys.length !== KEYS) throw new Error(`listed ${keys.length}`);
  },
  "S3FileStore.write 50 MB (multipart)": (store) => store.write("large/memory-store.bin", payload()),
  "raw Upload 50 MB (same part size)": async (_store, client, bucket) => {
    await new Upload({
      client,
      params: { Bucket: bucket, Key: "large/memory-raw.bin", Body: payload(), ServerSideEncryption: "AES256" },
      partSize: 8 * MB,
      queueSize: 4,
    }).done();
  },
  "raw GetObject 50 MB (transformToByteArray)": async (_store, client, bucket) => {
    const response = await client.send(new GetObjectCommand({ Bucket: bucket, Key: "large/read.bin" }));
    const bytes = await response.Body!.transformToByteArray();
    if (bytes.length !== LARGE_BYTES) throw new Error(`read ${bytes.length}`);
  },
  "S3FileStore.read 50 MB": async (store) => {
    const bytes = await store.read("large/read.bin");
    if (bytes.length !== LARGE_BYTES) throw new Error(`read ${bytes.length}`);
  },
};

let cachedPayload: Uint8Array | undefined;
function payload(): Uint8Array {
  if (cachedPayload === undefined) {
    cachedPayload = new Uint8Array(LARGE_BYTES);
    for (let offset = 0; offset < LARGE_BYTES; offset += 65_536) {
      crypto.getRandomValues(cachedPayload.subarray(offset, Math.min(offset + 65_536, LARGE_BYTES)));
    }
  }
  return cachedPayload;
}

useLocalAwsCredentials();
const scenario = Deno.env.get("S3_MEMORY_SCENARIO");
const client = new S3Client({ region: "us-east-1", endpoint: AWS_ENDPOINT_URL, forcePathStyle: true });

if (scenario !== undefined) {
  // Child: run one scenario and print its numbers as JSON.
  const bucket = Deno.env.get("S3_MEMORY_BUCKET")!;
  const store = new S3FileStore({ bucket, client });
  if (scenario.includes("write") || scenario.includes("Upload")) payload(); // the caller's buffer is not ours to count
  const before = Deno.memoryUsage().rss;
  let peak = before;
  const sampler = setInterval(() => peak = Math.max(peak, Deno.memoryUsage().rss), 2);
  const started = performance.now();
  await SCENARIOS[scenario](store, client, bucket);
  const ms = performance.now() - started;
  clearInterval(sampler);
  peak = Math.max(peak, Deno.memoryUsage().rss);
  client.destroy();
  console.log(JSON.stringify({ before, peak, ms }));
} else {
  const unreachable = await probe(AWS_ENDPOINT_URL);
  if (unreachable !== undefined) throw new Error(`This needs the local AWS endpoint: ${unreachable}`);
  const bucket = `bluestar-memory-${crypto.randomUUID()}`;
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  const store = new S3FileStore({ bucket, client });
  const keys = Array.from({ length: KEYS }, (_, index) => `list/batch-${index}.csv`);
  for (let start = 0; start < keys.length; start += 50) {
    await Promise.all(keys.slice(start, start + 50).map((key) => store.write(key, "id,hours\n1,80\n")));
  }
  await store.write("large/read.bin", payload());
  client.destroy();

  console.log("| scenario | RSS before | peak RSS | peak - before | time |");
  console.log("| --- | ---: | ---: | ---: | ---: |");
  for (const name of Object.keys(SCENARIOS)) {
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", new URL(import.meta.url).pathname],
      env: { S3_MEMORY_SCENARIO: name, S3_MEMORY_BUCKET: bucket },
      stderr: "inherit",
    }).output();
    if (!output.success) throw new Error(`Scenario ${name} failed`);
    const { before, peak, ms } = JSON.parse(new TextDecoder().decode(output.stdout).trim().split("\n").at(-1)!);
    const mb = (bytes: number) => `${(bytes / MB).toFixed(1)} MB`;
    console.log(`| ${name} | ${mb(before)} | ${mb(peak)} | ${mb(peak - before)} | ${Math.round(ms)} ms |`);
  }
}
