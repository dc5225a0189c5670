// Peak resident memory of a 1 GiB readStream when the endpoint is not the
// bottleneck: a fake S3 on loopback that answers ranged GETs at once (moto
// reads a whole object for every range, about 100 s a GiB). Under Deno or Node:
//
//   deno run -A bench/read_stream_loopback.ts [MiB]
//   deno task build:npm && node npm/esm/bench/read_stream_loopback.js [MiB]
//
// MiB (default 1024) is the file's size. Scenarios: the store's readStream,
// and the same ranges through the SDK alone with the HTTP layer the store's
// own client has, each chunk dropped. The fake S3 runs in a process of its
// own and each scenario in a fresh one; RSS is sampled every 5 ms
// (`peak_rss.ts`). The fake sends no checksum, so the store reads
// unverified.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import http from "node:http";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { GetObjectCommand } from "@aws-sdk/client-s3";
import { S3FileStore } from "../mod.ts";
import { createOwnS3Client } from "../src/persistence/s3_http.ts";
import { measurePeakRss } from "./peak_rss.ts";

const MiB = 1024 * 1024;
const size = Number(process.env.LOOPBACK_MIB ?? process.argv[2] ?? 1024) * MiB;
const RANGE = 8 * MiB;
const self = fileURLToPath(import.meta.url);
const args = "Deno" in globalThis ? ["run", "-A", self] : [self];

/** The fake S3: every GET is a 206 of the asked range of a `size`-byte file. */
function serve(): void {
  const block = new Uint8Array(MiB).map((_, index) => index & 255);
  const server = http.createServer((request, response) => {
    const [first, last] = (/bytes=(\d+)-(\d+)/.exec(request.headers.range ?? "")?.slice(1) ?? ["0", `${size - 1}`])
      .map(Number);
    const end = Math.min(last, size - 1);
    response.writeHead(206, {
      "content-length": end - first + 1,
      "content-range": `bytes ${first}-${end}/${size}`,
      etag: '"loopback"',
    });
    let left = end - first + 1;
    const more = (): void => {
      while (left > 0) {
        const chunk = block.subarray(0, Math.min(block.length, left));
        left -= chunk.length;
        if (!response.write(chunk)) return void response.once("drain", more);
      }
      response.end();
    };
    more();
  });
  server.listen(0, "127.0.0.1", () => console.log((server.address() as { port: number }).port));
}

const SCENARIOS: Record<string, (endpoint: string) => Promise<number>> = {
  "store readStream": async (endpoint) => {
    const store = new S3FileStore({ bucket: "loopback", region: "us-east-1", endpointUrl: endpoint });
    let bytes = 0;
    for await (const chunk of await store.readStream("big.bin")) bytes += chunk.length;
    store.close();
    return bytes;
  },
  "SDK ranged GetObject alone": async (endpoint) => {
    const client = createOwnS3Client({ region: "us-east-1", endpoint, forcePathStyle: true });
    let bytes = 0;
    for (let first = 0; first < size; first += RANGE) {
      const range = `bytes=${first}-${first + RANGE - 1}`;
      const response = await client.send(new GetObjectCommand({ Bucket: "loopback", Key: "big.bin", Range: range }));
      const reader = response.Body!.transformToWebStream().getReader();
      for (let next = await reader.read(); !next.done; next = await reader.read()) bytes += next.value.length;
    }
    client.destroy();
    return bytes;
  },
};

process.env.AWS_ACCESS_KEY_ID ??= "loopback";
process.env.AWS_SECRET_ACCESS_KEY ??= "loopback";
const role = process.env.LOOPBACK_ROLE;
if (role === "server") serve();
else if (role !== undefined) {
  // A scenario: warm the SDK up on the first range, then measure the whole file.
  const endpoint = process.env.LOOPBACK_ENDPOINT!;
  const warm = new S3FileStore({ bucket: "loopback", region: "us-east-1", endpointUrl: endpoint });
  for await (const _ of await warm.readStream("warm.bin")) break;
  warm.close();
  const { before, peak, ms, result: bytes } = await measurePeakRss(() => SCENARIOS[role](endpoint));
  if (bytes !== size) throw new Error(`read ${bytes} bytes, not ${size}`);
  console.log(JSON.stringify({ before, peak, ms }));
} else {
  const server: ChildProcess = spawn(process.execPath, args, {
    env: { ...process.env, LOOPBACK_ROLE: "server", LOOPBACK_MIB: String(size / MiB) },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const port = await new Promise<string>((resolve) => server.stdout!.once("data", (data) => resolve(`${data}`.trim())));
  const runtime = "Deno" in globalThis
    ? `Deno ${(globalThis as { Deno?: { version: { deno: string } } }).Deno!.version.deno}`
    : `Node ${process.version}`;
  console.log(`${runtime}, fake S3 on 127.0.0.1:${port}, ${size / MiB} MiB in ${RANGE / MiB} MiB ranges`);
  console.log("| scenario | RSS before | peak - before | time |");
  console.log("| --- | ---: | ---: | ---: |");
  try {
    for (const name of Object.keys(SCENARIOS)) {
      const child = spawnSync(process.execPath, args, {
        env: {
          ...process.env,
          LOOPBACK_ROLE: name,
          LOOPBACK_ENDPOINT: `http://127.0.0.1:${port}`,
          LOOPBACK_MIB: String(size / MiB),
        },
        stdio: ["ignore", "pipe", "inherit"],
        encoding: "utf8",
      });
      if (child.status !== 0) throw new Error(`Scenario ${name} failed`);
      const { before, peak, ms } = JSON.parse(child.stdout.trim().split("\n").at(-1)!);
      const mb = (bytes: number) => `${(bytes / MiB).toFixed(1)} MiB`;
      console.log(`| ${name} | ${mb(before)} | ${mb(peak - before)} | ${Math.round(ms)} ms |`);
    }
  } finally {
    server.kill();
  }
}
