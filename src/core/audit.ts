/**
 * Audit-trail sealing, the part every backend shares: the canonical
 * encoding of an entry, the Merkle root over a trail, the seal document kept
 * outside the table, and the comparison that names what changed.
 *
 * An auditor can recompute a root without this library:
 *
 * 1. Each entry's stored fields as text: `entryId`, `batchId`, `timestamp`,
 *    `agent`, `action`, `actor`, and `details` as the JSON text stored
 *    (`JSON.stringify(details)` of the entry as listed), plus any other
 *    attribute the stored item carries.
 * 2. Its canonical encoding: `bluestar-audit-entry/v1\n` followed by the
 *    fields as one JSON object, keys sorted by code unit, no whitespace.
 * 3. Its leaf: SHA-256 of a `0x00` byte then the UTF-8 encoding.
 * 4. The root over the leaves in listing order (timestamp, then entry id):
 *    RFC 6962's Merkle tree hash: one leaf is the leaf itself, more split
 *    at the largest power of two below the count, and a node is SHA-256 of
 *    `0x01`, the left hash, the right hash. No entries: SHA-256 of nothing.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { quote } from "./errors.ts";
import { auditSealPath } from "./keys.ts";
import type { AuditEntry } from "./types.ts";

/** The version tag of the canonical entry encoding, first line of every encoded entry. */
export const AUDIT_ENTRY_ENCODING = "bluestar-audit-entry/v1";

/** The format tag of a seal document. */
export const AUDIT_SEAL_FORMAT = "bluestar-audit-seal/v1";

/**
 * How long a seal copy is retained by default, in days: four years plus a
 * quarter (4 × 365 + 1 leap day + 91), the IRS's four years after the
 * fourth-quarter filing of the year the record belongs to.
 */
export const DEFAULT_SEAL_RETENTION_DAYS = 1552;

/** The longest retention a seal copy can be given, in days (about a century). */
export const MAX_SEAL_RETENTION_DAYS = 36_500;

/** The seal of one batch's audit trail. */
export interface AuditSeal {
  /** The batch. */
  batchId: string;
  /** How many entries the seal covers. */
  entryCount: number;
  /** The SHA-256 Merkle root over the entries in listing order, lowercase hex. */
  root: string;
  /** When the trail was sealed, ISO 8601 UTC. */
  sealedAt: string;
  /** Who sealed it. */
  actor: string;
}

/** Options of `sealAuditTrail`. */
export interface SealAuditTrailOptions {
  /** Who seals: a user or a service account, recorded in the seal. */
  actor: string;
}

/** The outcome of `verifyAuditTrail`: the seal, or every problem found, each naming what it found. */
export type AuditVerification = { ok: true; seal: AuditSeal } | { ok: false; problems: string[] };

/** One sealed entry: its id and its leaf hash. */
export interface SealedEntry {
  /** The entry's id. */
  entryId: string;
  /** The entry's leaf hash, lowercase hex. */
  digest: string;
}

/** The seal as the file store keeps it: the seal, and each entry's leaf, so a change can be named. */
export interface AuditSealDocument extends AuditSeal {
  /** {@linkcode AUDIT_SEAL_FORMAT}. */
  format: string;
  /** The sealed entries' leaves, in listing order. */
  entries: SealedEntry[];
}

/**
 * The stored fields of an entry, as the audit-log table holds them: every
 * field as it is, `details` as its JSON text.
 *
 * @param entry The entry, as listed.
 * @returns The fields.
 *
 * @example The details as their JSON text
 * ```ts
 * import { storedAuditFields } from "@bluestar/persistence";
 *
 * const fields = storedAuditFields({
 *   entryId: "E1",
 *   batchId: "B1",
 *   timestamp: "2026-11-27T10:00:00.000Z",
 *   agent: "compliance",
 *   action: "rule_resolved",
 *   actor: "svc-compliance",
 *   details: { amount: "11439.00" },
 * });
 * console.assert(fields.details === '{"amount":"11439.00"}');
 * ```
 */
export function storedAuditFields(entry: AuditEntry): Record<string, string> {
  return { ...entry, details: JSON.stringify(entry.details) };
}

/**
 * The canonical encoding of an entry's stored fields (see the module notes):
 * deterministic, and versioned by its first line.
 *
 * @param fields The stored fields; a value that is not a string is encoded as JSON with sorted keys.
 * @returns The encoding.
 *
 * @example Keys sorted after the version line
 * ```ts
 * import { canonicalAuditEntry } from "@bluestar/persistence";
 *
 * console.assert(canonicalAuditEntry({ b: "2", a: "1" }) === 'bluestar-audit-entry/v1\n{"a":"1","b":"2"}');
 * ```
 */
export function canonicalAuditEntry(fields: Readonly<Record<string, unknown>>): string {
  return `${AUDIT_ENTRY_ENCODING}\n${canonicalJson(fields)}`;
}

/**
 * An entry's leaf hash: SHA-256 of `0x00` and its canonical encoding.
 *
 * @param fields The stored fields.
 * @returns The hash, lowercase hex.
 *
 * @example Any change of a byte changes the leaf
 * ```ts
 * import { auditEntryDigest } from "@bluestar/persistence";
 *
 * console.assert(auditEntryDigest({ details: '{"a":"1.50"}' }) !== auditEntryDigest({ details: '{"a":"1.5"}' }));
 * ```
 */
export function auditEntryDigest(fields: Readonly<Record<string, unknown>>): string {
  return createHash("sha256").update(Uint8Array.of(0)).update(canonicalAuditEntry(fields)).digest("hex");
}

/**
 * The RFC 6962 Merkle tree hash over leaf hashes, in their order.
 *
 * @param digests The leaf hashes, lowercase hex.
 * @returns The root, lowercase hex.
 *
 * @example The root of one leaf is that leaf
 * ```ts
 * import { auditTrailRoot } from "@bluestar/persistence";
 *
 * const leaf = "00".repeat(32);
 * console.assert(auditTrailRoot([leaf]) === leaf);
 * ```
 */
export function auditTrailRoot(digests: readonly string[]): string {
  if (digests.length === 0) return createHash("sha256").digest("hex");
  return merkle(digests.map((digest) => Buffer.from(digest, "hex")), 0, digests.length).toString("hex");
}

function merkle(leaves: readonly Buffer[], start: number, end: number): Buffer {
  if (end - start === 1) return leaves[start];
  let split = 1;
  while (split * 2 < end - start) split *= 2;
  return createHash("sha256").update(Uint8Array.of(1)).update(merkle(leaves, start, start + split)).update(
    merkle(leaves, start + split, end),
  ).digest();
}

/**
 * A seal document for entries, sealed now.
 *
 * @param batchId The batch.
 * @param entries The entries' ids and leaves, in listing order.
 * @param actor Who seals.
 * @param sealedAt When, ISO 8601.
 * @returns The document.
 */
export function sealDocument(
  batchId: string,
  entries: readonly SealedEntry[],
  actor: string,
  sealedAt: string,
): AuditSealDocument {
  return {
    format: AUDIT_SEAL_FORMAT,
    batchId,
    entryCount: entries.length,
    root: auditTrailRoot(entries.map((entry) => entry.digest)),
    sealedAt,
    actor,
    entries: entries.map(({ entryId, digest }) => ({ entryId, digest })),
  };
}

/**
 * The seal of a document, without its entries.
 *
 * @param document The document.
 * @returns The seal.
 */
export function sealOf(document: AuditSeal): AuditSeal {
  const { batchId, entryCount, root, sealedAt, actor } = document;
  return { batchId, entryCount, root, sealedAt, actor };
}

/**
 * Decodes a seal document read from the file store.
 *
 * @param bytes The file's bytes.
 * @returns The document, or why it is not one.
 */
export function decodeSealDocument(bytes: Uint8Array): AuditSealDocument | string {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch {
    return "it is not JSON text";
  }
  const problem = sealProblem(value);
  if (problem !== undefined) return problem;
  const document = value as AuditSealDocument;
  if (document.format !== AUDIT_SEAL_FORMAT) return `its format is not ${quote(AUDIT_SEAL_FORMAT)}`;
  if (
    !Array.isArray(document.entries) ||
    !document.entries.every((entry) =>
      typeof entry?.entryId === "string" && typeof entry.digest === "string" && HEX_64.test(entry.digest)
    )
  ) {
    return "its entries are not a list of ids and hashes";
  }
  return document;
}

const HEX_64 = /^[0-9a-f]{64}$/;

/**
 * Why a value is not a seal, or `undefined` when it is one.
 *
 * @param value The candidate.
 * @returns The problem.
 */
export function sealProblem(value: unknown): string | undefined {
  if (typeof value !== "object" || value === null) return "it is not an object";
  const seal = value as Record<string, unknown>;
  for (const name of ["batchId", "sealedAt", "actor"]) {
    if (typeof seal[name] !== "string") return `its ${name} is not a string`;
  }
  if (typeof seal.root !== "string" || !HEX_64.test(seal.root)) return "its root is not a SHA-256 hash";
  if (!Number.isSafeInteger(seal.entryCount) || (seal.entryCount as number) < 0) {
    return "its entryCount is not a count";
  }
  return undefined;
}

/** What a verification found of the seal copy in the file store. */
export type SealCopy =
  | { state: "not-configured" }
  | { state: "missing" }
  | { state: "unreadable"; reason: string }
  | { state: "found"; document: AuditSealDocument };

/**
 * Compares a trail as stored now with its seals, naming every problem.
 *
 * @param batchId The batch.
 * @param current The stored entries' ids and leaves, in listing order.
 * @param tableSeal The seal in the table: `undefined` when none, a sentence saying why it is not usable (corrupt, unfinished).
 * @param copy The seal copy in the file store.
 * @returns The verification.
 */
export function compareWithSeals(
  batchId: string,
  current: readonly SealedEntry[],
  tableSeal: AuditSeal | string | undefined,
  copy: SealCopy,
): AuditVerification {
  const problems: string[] = [];
  const batch = quote(batchId);
  const path = auditSealPath(batchId);
  const table = typeof tableSeal === "object" ? tableSeal : undefined;
  const document = copy.state === "found" ? copy.document : undefined;
  if (tableSeal === undefined && (copy.state === "missing" || copy.state === "not-configured")) {
    return { ok: false, problems: [`Batch ${batch} is not sealed: no seal in the table and no seal copy`] };
  }
  if (tableSeal === undefined) problems.push(`The seal of batch ${batch} is missing from the audit-log table`);
  if (typeof tableSeal === "string") problems.push(tableSeal);
  if (copy.state === "not-configured") {
    problems.push(
      `No file store for seal copies is configured: the table seal of batch ${batch} cannot be checked against a copy outside DynamoDB`,
    );
  } else if (copy.state === "missing") {
    problems.push(`The seal copy ${quote(path)} of batch ${batch} is missing from the file store`);
  } else if (copy.state === "unreadable") {
    problems.push(`The seal copy ${quote(path)} of batch ${batch} is unreadable: ${copy.reason}`);
  }
  if (document !== undefined) {
    if (document.batchId !== batchId) {
      problems.push(`The seal copy ${quote(path)} is for batch ${quote(document.batchId)}, not ${batch}`);
    }
    const listed = auditTrailRoot(document.entries.map((entry) => entry.digest));
    if (listed !== document.root || document.entries.length !== document.entryCount) {
      problems.push(`The seal copy ${quote(path)} of batch ${batch} is inconsistent: its entries do not give its root`);
    }
  }
  if (table !== undefined && document !== undefined) {
    for (const field of ["entryCount", "root", "sealedAt", "actor"] as const) {
      if (table[field] !== document[field]) {
        problems.push(
          `The seal of batch ${batch} disagrees between the table and the file store: ${field} ${
            quote(table[field])
          } in the table, ${quote(document[field])} in ${quote(path)}`,
        );
      }
    }
  }
  const root = auditTrailRoot(current.map((entry) => entry.digest));
  // The copy outside DynamoDB is the reference; the table's seal is checked against the entries too.
  const references: Array<[string, AuditSeal]> = [];
  if (document !== undefined) references.push(["the seal copy", document]);
  if (table !== undefined) references.push(["the table seal", table]);
  for (const [name, seal] of references) {
    if (seal.root === root && seal.entryCount === current.length) continue;
    problems.push(
      `The entries of batch ${batch} do not match ${name}: ${current.length} entries with root ${
        quote(root)
      }, sealed ${seal.entryCount} with root ${quote(seal.root)}`,
    );
  }
  if (document !== undefined && (document.root !== root || document.entryCount !== current.length)) {
    problems.push(...entryProblems(batch, document.entries, current));
  }
  if (problems.length > 0) return { ok: false, problems };
  return { ok: true, seal: sealOf(table ?? document!) };
}

/** Each entry changed, inserted or removed since the seal, or moved in the listing order. */
function entryProblems(batch: string, sealed: readonly SealedEntry[], current: readonly SealedEntry[]): string[] {
  const problems: string[] = [];
  const before = new Map(sealed.map((entry) => [entry.entryId, entry.digest]));
  const now = new Map(current.map((entry) => [entry.entryId, entry.digest]));
  for (const { entryId, digest } of current) {
    const sealedDigest = before.get(entryId);
    if (sealedDigest === undefined) {
      problems.push(`Entry ${quote(entryId)} of batch ${batch} was inserted after the seal`);
    } else if (sealedDigest !== digest) {
      problems.push(`Entry ${quote(entryId)} of batch ${batch} changed since the seal`);
    }
  }
  for (const { entryId } of sealed) {
    if (!now.has(entryId)) problems.push(`Entry ${quote(entryId)} of batch ${batch} was removed since the seal`);
  }
  if (problems.length === 0) problems.push(`The entries of batch ${batch} are in another order than when sealed`);
  return problems;
}

/**
 * JSON with object keys sorted by code unit, no whitespace; strings, numbers
 * and literals as `JSON.stringify` writes them.
 *
 * @param value A JSON value.
 * @returns The text.
 */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (typeof value === "object" && value !== null && typeof (value as { toJSON?: unknown }).toJSON !== "function") {
    const entries = Object.entries(value).filter(([, element]) => element !== undefined);
    entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([key, element]) => `${JSON.stringify(key)}:${canonicalJson(element)}`).join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}

/**
 * The problem of a seal that was started and not finished.
 *
 * @param batchId The batch.
 * @returns The sentence.
 */
export function unfinishedSeal(batchId: string): string {
  return `The seal of batch ${
    quote(batchId)
  } was started and not finished: appends are refused; seal it again to finish`;
}
