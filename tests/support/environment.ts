// A fresh aws environment on the local endpoint for one suite: the eight
// tables with the rules fixture, a bucket, and the environment variables
// createPersistence() reads to use them with Redis; removed after the suite.
import { after, before } from "node:test";
import { RULES_FIXTURE } from "../contract/fixtures.ts";
import { countingClient, createTables, deleteTables, uniqueSuffix } from "./dynamodb.ts";
import { AWS_ENDPOINT_URL, REDIS_URL } from "./gate.ts";
import { adminClient, createBucket, deleteBucket } from "./s3.ts";

/** The environment of one suite; its bucket exists once the suite's `before` hooks ran. */
export interface FreshEnvironment {
  /** The table suffix, also the cache keys' namespace. */
  suffix: string;
  /** The bucket. */
  bucket(): string;
  /** `createPersistence({ env })` for the aws backends on the local endpoint and Redis. */
  env(): Record<string, string>;
}

/** Sets up (before) and removes (after) a fresh environment; call in a suite's body. */
export function freshEnvironment(label: string): FreshEnvironment {
  const { client } = countingClient();
  const s3 = adminClient();
  const suffix = uniqueSuffix(label);
  let bucket = "";
  before(async () => {
    await createTables(client, suffix, RULES_FIXTURE);
    bucket = await createBucket(s3);
  });
  after(async () => {
    await deleteTables(client, suffix);
    await deleteBucket(s3, bucket);
    client.destroy();
    s3.destroy();
  });
  return {
    suffix,
    bucket: () => bucket,
    env: () => ({
      BLUESTAR_BACKEND: "aws",
      AWS_REGION: "us-east-1",
      BLUESTAR_AWS_ENDPOINT_URL: AWS_ENDPOINT_URL,
      BLUESTAR_TABLE_SUFFIX: suffix,
      BLUESTAR_S3_BUCKET: bucket,
      BLUESTAR_REDIS_URL: REDIS_URL,
      BLUESTAR_CACHE_TTL_SECONDS: "30",
      // These tests follow the cache path; a loaded machine can stall a lookup past the default 50 ms, which sends
      // the read to DynamoDB (right, and covered in tests/reliability, but not what these tests count).
      BLUESTAR_CACHE_TIMEOUT_MS: "2000",
    }),
  };
}
