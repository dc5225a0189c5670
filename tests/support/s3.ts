// S3 on the local endpoint for tests: an admin client, a bucket per suite
// and its removal, and deterministic bytes.
import {
  AbortMultipartUploadCommand,
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from "@aws-sdk/client-s3";
import { S3FileStore, type S3FileStoreOptions } from "../../mod.ts";
import { uniqueId } from "../contract/fixtures.ts";
import { AWS_ENDPOINT_URL, useLocalAwsCredentials } from "./gate.ts";

useLocalAwsCredentials();

/** The region the local endpoint is used with. */
export const REGION = "us-east-1";

/** A raw client for setup and inspection, outside the store under test. */
export function adminClient(): S3Client {
  return new S3Client({ region: REGION, endpoint: AWS_ENDPOINT_URL, forcePathStyle: true });
}

export async function createBucket(admin: S3Client): Promise<string> {
  const bucket = uniqueId("bluestar-test").toLowerCase().slice(0, 63);
  await admin.send(new CreateBucketCommand({ Bucket: bucket }));
  return bucket;
}

/** Aborts every multipart upload, deletes every object, then the bucket. */
export async function deleteBucket(admin: S3Client, bucket: string): Promise<void> {
  const uploads = await admin.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
  for (const upload of uploads.Uploads ?? []) {
    await admin.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: upload.Key, UploadId: upload.UploadId }));
  }
  let token: string | undefined;
  do {
    const page = await admin.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
    const keys = (page.Contents ?? []).map((object) => ({ Key: object.Key! }));
    if (keys.length > 0) {
      try {
        await admin.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys } }));
      } catch {
        // A key XML 1.0 cannot carry (U+FFFE, U+FFFF) breaks the batch delete's XML body: one at a time.
        for (const { Key } of keys) await admin.send(new DeleteObjectCommand({ Bucket: bucket, Key }));
      }
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token !== undefined);
  await admin.send(new DeleteBucketCommand({ Bucket: bucket }));
}

/**
 * Keys other tools write that are no valid path of the store: a folder
 * marker, an empty segment, "." and ".." segments, a backslash, control
 * characters. S3 (and moto) keep each as it is.
 */
export const FOREIGN_KEYS: readonly string[] = [
  "in/",
  "x//y.csv",
  "./dot.csv",
  "a/../up.csv",
  "win\\dows.csv",
  "bell\u0007.csv",
  "del\u007f.csv",
];

/** Writes an object with the raw SDK, as another tool would, past the store's checks. */
export async function putRaw(admin: S3Client, bucket: string, key: string, body: string): Promise<void> {
  await admin.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
}

/**
 * Replaces an object's bytes with the raw SDK, keeping its metadata (the
 * store's SHA-256 among them): damage the store must notice.
 */
export async function corruptRaw(admin: S3Client, bucket: string, key: string, body: Uint8Array): Promise<void> {
  const head = await admin.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
  await admin.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, Metadata: head.Metadata }));
}

export { noise } from "../contract/fixtures.ts";

export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let index = 0; index < a.length; index++) if (a[index] !== b[index]) return false;
  return true;
}

/** A fresh bucket, a store on it, and how to dispose of both. */
export interface OpenFileStore {
  admin: S3Client;
  bucket: string;
  files: S3FileStore;
  /** Another store on the same bucket, with the same options but this page size; `cleanup` closes it. */
  withPageSize(pageSize: number): S3FileStore;
  /**
   * A store with the same options on a bucket of its own with Object Lock
   * enabled (created on the first call); `cleanup` closes it. Compliance-mode
   * versions cannot be deleted before their date, so that bucket stays in
   * moto until it restarts.
   */
  withRetention(): Promise<S3FileStore>;
  cleanup(): Promise<void>;
}

/**
 * Creates a bucket and an S3FileStore on it (on the local endpoint unless
 * `options.client` says otherwise); `cleanup` closes the store and removes
 * the bucket with everything in it.
 *
 * @param options Store options other than the bucket.
 */
export async function openFileStore(options: Omit<S3FileStoreOptions, "bucket"> = {}): Promise<OpenFileStore> {
  const admin = adminClient();
  const bucket = await createBucket(admin);
  const where = options.client === undefined ? { region: REGION, endpointUrl: AWS_ENDPOINT_URL } : {};
  const files = new S3FileStore({ ...where, ...options, bucket });
  const others: S3FileStore[] = [];
  let retaining: Promise<S3FileStore> | undefined;
  return {
    admin,
    bucket,
    files,
    withPageSize: (pageSize) => {
      const other = new S3FileStore({ ...where, ...options, bucket, pageSize });
      others.push(other);
      return other;
    },
    withRetention: () =>
      retaining ??= (async () => {
        const locked = uniqueId("bluestar-lock").toLowerCase().slice(0, 63);
        await admin.send(new CreateBucketCommand({ Bucket: locked, ObjectLockEnabledForBucket: true }));
        const other = new S3FileStore({ ...where, ...options, bucket: locked });
        others.push(other);
        return other;
      })(),
    cleanup: async () => {
      files.close();
      for (const other of others) other.close();
      try {
        await deleteBucket(admin, bucket);
      } finally {
        admin.destroy();
      }
    },
  };
}

/** An S3 service error as the SDK throws it, for fault injection. */
export function s3Error(name: string, status: number): S3ServiceException {
  return new S3ServiceException({
    name,
    $fault: status >= 500 ? "server" : "client",
    $metadata: { httpStatusCode: status },
    message: `${name} (injected)`,
  });
}
