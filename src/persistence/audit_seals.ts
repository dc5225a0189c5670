/**
 * The seal copy in the file store, shared by the rules stores: options,
 * writing it with retention, reading it back. The rules stores see the file
 * store only through {@linkcode IFileStore}.
 *
 * @module
 */

import {
  type AuditSealDocument,
  canonicalJson,
  decodeSealDocument,
  DEFAULT_SEAL_RETENTION_DAYS,
  MAX_SEAL_RETENTION_DAYS,
  type SealCopy,
} from "../core/audit.ts";
import { ConflictError, FileNotFoundError, quote } from "../core/errors.ts";
import { auditSealPath } from "../core/keys.ts";
import type { IFileStore } from "../core/protocols.ts";
import { integerProblems, methodsProblems, type OptionProblem } from "./options.ts";

/** Options of a rules store for sealing audit trails. */
export interface AuditSealOptions {
  /**
   * The file store that keeps a copy of each seal at
   * `audit-seals/{batchId}.json`, written with retention. Without one,
   * sealing stores the seal in the table only, and `verifyAuditTrail`
   * reports that no copy outside the table is configured (never `ok`).
   *
   * @default {undefined (no seal copies)}
   */
  sealFiles?: IFileStore;
  /**
   * How long a seal copy is retained, in days from the seal (an integer
   * from 1 to 36,500): on S3 with Object Lock, compliance-mode retention
   * that nobody, root included, can shorten. The default is four years plus
   * a quarter.
   *
   * @default {1552}
   */
  sealRetentionDays?: number;
}

const DAY_MS = 86_400_000;

/**
 * The problems of seal options, for a constructor's `ConfigError` (composed
 * into each rules store's option problems).
 *
 * @param options The options.
 * @returns The problems; `[]` when there are none.
 */
export function sealOptionProblems(options: AuditSealOptions): OptionProblem[] {
  const days = options.sealRetentionDays;
  return [
    ...(days === undefined ? [] : integerProblems("sealRetentionDays", days, 1, MAX_SEAL_RETENTION_DAYS)),
    ...methodsProblems("sealFiles", options.sealFiles, "a file store", ["write", "readRetained"]),
  ];
}

/**
 * Writes the seal copy, create-only with retention. A copy already there
 * with the same root and count (a seal that was interrupted after writing
 * it) is the seal: it is returned instead, so a rerun completes the seal.
 *
 * @param files The file store.
 * @param document The seal.
 * @param retentionDays Days of retention.
 * @returns The seal as stored.
 * @throws {ConflictError} When another seal copy is there.
 */
export async function writeSealCopy(
  files: IFileStore,
  document: AuditSealDocument,
  retentionDays: number = DEFAULT_SEAL_RETENTION_DAYS,
): Promise<AuditSealDocument> {
  const path = auditSealPath(document.batchId);
  const retainUntil = new Date(Date.parse(document.sealedAt) + retentionDays * DAY_MS);
  try {
    await files.write(path, `${canonicalJson(document)}\n`, { retainUntil });
    return document;
  } catch (error) {
    if (!(error instanceof ConflictError)) throw error;
    const copy = await readSealCopy(files, document.batchId);
    if (copy.state === "found" && copy.document.root === document.root) return copy.document;
    throw new ConflictError(
      `Failed to seal the audit trail of batch ${quote(document.batchId)}: another seal copy is at ${quote(path)}`,
      { cause: error },
    );
  }
}

/**
 * Reads the seal copy of a batch: the retained version.
 *
 * @param files The file store, or `undefined` when none is configured.
 * @param batchId The batch.
 * @returns What was found: a copy that does not decode is `unreadable`.
 * @throws {FileStoreError} When the file store fails.
 */
export async function readSealCopy(files: IFileStore | undefined, batchId: string): Promise<SealCopy> {
  if (files === undefined) return { state: "not-configured" };
  let bytes: Uint8Array;
  try {
    bytes = await files.readRetained(auditSealPath(batchId));
  } catch (error) {
    // A store that fails is an error of the verification, not a finding about the trail.
    if (error instanceof FileNotFoundError) return { state: "missing" };
    throw error;
  }
  const document = decodeSealDocument(bytes);
  return typeof document === "string" ? { state: "unreadable", reason: document } : { state: "found", document };
}

/** The folder of the seal copies. */
const SEALS_FOLDER = "audit-seals/";

/**
 * The batches with a seal copy sealed at or after a time, for a sweep:
 * every copy under `audit-seals/` is read (its retained version). A copy
 * that does not decode is listed too, so that verifying it names the
 * problem. The listing sees current objects only: a copy deleted on top of
 * its locked version (a delete marker) is not listed, though
 * `verifyAuditTrail` of its batch still reads the locked version.
 *
 * @param files The file store of the seal copies.
 * @param since The earliest seal time.
 * @returns The batch ids, in path order.
 * @throws {FileStoreError} When the file store fails.
 */
export async function listSealedBatches(files: IFileStore, since: Date): Promise<string[]> {
  const batches: string[] = [];
  for (const path of await files.listFiles(SEALS_FOLDER)) {
    const name = path.slice(SEALS_FOLDER.length);
    if (!name.endsWith(".json")) continue;
    let batchId: string;
    try {
      batchId = decodeURIComponent(name.slice(0, -".json".length));
      if (auditSealPath(batchId) !== path) continue;
    } catch {
      // Not a path this library writes (a bad escape, an invalid batch id): another tool's file.
      continue;
    }
    const copy = await readSealCopy(files, batchId);
    if (copy.state !== "found" || Date.parse(copy.document.sealedAt) >= since.getTime()) batches.push(batchId);
  }
  return batches;
}
