// S3FileStore against the raw SDK calls it wraps, on the local AWS endpoint
// (moto_server): `deno bench -A bench/s3_backend_bench.ts`.
//
// Setup (a bucket, 5,000 keys, a 50 MB payload) runs once at the top level;
// the bucket is left behind (moto forgets it on restart).
import { CreateBucketCommand, GetObjectCommand, ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { S3FileStore } from "../mod.ts";
import { AWS_ENDPOINT_URL, probe, useLocalAwsCredentials } from "../tests/support/gate.ts";

const KEYS = 5_000;
const LARGE_BYTES = 50 * 1024 * 1024;
const PART_BYTES = 8 * 1024 * 1024;

useLocalAwsCredentials();
const unreachable = await probe(AWS_ENDPOINT_URL);
if (unreachable !== undefined) throw new Error(`The bench needs the local AWS endpoint: ${unreachable}`);

const client = new S3Client({ region: "us-east-1", endpoint: AWS_ENDPOINT_URL, forcePathStyle: true });
const bucket = `bluestar-bench-${crypto.randomUUID()}`;
await client.send(new CreateBucketCommand({ Bucket: bucket }));
const store = new S3FileStore({ bucket, client });

const prefix = "list/";
const keys = Array.from({ length: KEYS }, (_, index) => `${prefix}batch-${index}.csv`);
for (let start = 0; start < keys.length; start += 50) {
  await Promise.all(keys.slice(start, start + 50).map((key) => store.write(key, "id,hours\n1,80\n")));
}

const large = new Uint8Array(LARGE_BYTES);
for (let offset = 0; offset < large.length; offset += 65_536) {
  crypto.getRandomValues(large.subarray(offset, Math.min(offset + 65_536, large.length)));
}
await store.write("large/read.bin", large);

Deno.bench({
  name: "raw ListObjectsV2 loop, 5,000 keys",
  group: "list 5,000 keys",
  baseline: true,
  n: 20,
  warmup: 2,
  async fn() {
    const found: string[] = [];
    let token: string | undefined;
    do {
      const page = await client.send(
        new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }),
      );
      for (const object of page.Contents ?? []) found.push(object.Key!);
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
    if (found.length !== KEYS) throw new Error(`listed ${found.length}`);
  },
});

Deno.bench({
  name: "S3FileStore.listFiles, 5,000 keys",
  group: "list 5,000 keys",
  n: 20,
  warmup: 2,
  async fn() {
    const found = await store.listFiles(prefix);
    if (found.length !== KEYS) throw new Error(`listed ${found.length}`);
  },
});

Deno.bench({
  name: "raw lib-storage Upload, 50 MB",
  group: "write 50 MB",
  baseline: true,
  n: 5,
  warmup: 1,
  async fn() {
    await new Upload({
      client,
      params: { Bucket: bucket, Key: "large/raw.bin", Body: large, ServerSideEncryption: "AES256" },
      partSize: PART_BYTES,
      queueSize: 4,
      leavePartsOnError: false,
    }).done();
  },
});

Deno.bench({
  name: "S3FileStore.write, 50 MB",
  group: "write 50 MB",
  n: 5,
  warmup: 1,
  async fn() {
    await store.write("large/store.bin", large);
  },
});

Deno.bench({
  name: "raw GetObject, 50 MB",
  group: "read 50 MB",
  baseline: true,
  n: 5,
  warmup: 1,
  async fn() {
    const response = await client.send(new GetObjectCommand({ Bucket: bucket, Key: "large/read.bin" }));
    const bytes = await response.Body!.transformToByteArray();
    if (bytes.length !== LARGE_BYTES) throw new Error(`read ${bytes.length}`);
  },
});

Deno.bench({
  name: "S3FileStore.read, 50 MB",
  group: "read 50 MB",
  n: 5,
  warmup: 1,
  async fn() {
    const bytes = await store.read("large/read.bin");
    if (bytes.length !== LARGE_BYTES) throw new Error(`read ${bytes.length}`);
  },
});
