/**
 * The eight DynamoDB tables: names, key schema, indexes, billing and TTL.
 * The seed script creates them from here and the DynamoDB backend reads
 * them from here; nothing else names a table.
 *
 * @module
 */

/** The logical name of each table. */
export type TableName =
  | "processing-pipeline"
  | "validation-rules"
  | "calculation-rules"
  | "irs-limits"
  | "batch-state"
  | "processing-results"
  | "audit-log"
  | "agent-config";

/** A global secondary index. */
export interface GlobalIndexDefinition {
  /** The index name. */
  indexName: string;
  /** The index's partition key attribute (a string). */
  partitionKey: string;
  /** The index's sort key attribute (a string). */
  sortKey: string;
}

/** One table's definition. */
export interface TableDefinition {
  /** The logical name. */
  name: TableName;
  /** What the table holds. */
  description: string;
  /** Global secondary indexes, each used by a library method. */
  globalIndexes: readonly GlobalIndexDefinition[];
  /** The attribute DynamoDB expires items by, or `null` for none. */
  ttlAttribute: string | null;
}

/** The batch-state index that `listBatchesByStatus` queries. */
export const BATCH_STATUS_INDEX: GlobalIndexDefinition = {
  indexName: "status-updatedAt-index",
  partitionKey: "status",
  sortKey: "updatedAt",
};

/**
 * Every table. Each has a string partition key `PK` and a string sort key
 * `SK`, on-demand billing. Processing results may carry an `expiresAt`
 * (epoch seconds) that DynamoDB expires them by; the audit log never expires.
 */
export const TABLES: readonly TableDefinition[] = [
  { name: "processing-pipeline", description: "pipeline steps per plan", globalIndexes: [], ttlAttribute: null },
  {
    name: "validation-rules",
    description: "field validation rules per client and GLOBAL",
    globalIndexes: [],
    ttlAttribute: null,
  },
  {
    name: "calculation-rules",
    description: "calculation rules per client and GLOBAL",
    globalIndexes: [],
    ttlAttribute: null,
  },
  { name: "irs-limits", description: "IRS and SSA limits per year", globalIndexes: [], ttlAttribute: null },
  {
    name: "batch-state",
    description: "batch state with optimistic versions",
    globalIndexes: [BATCH_STATUS_INDEX],
    ttlAttribute: null,
  },
  {
    name: "processing-results",
    description: "one result per batch and step",
    globalIndexes: [],
    ttlAttribute: "expiresAt",
  },
  { name: "audit-log", description: "the append-only audit trail", globalIndexes: [], ttlAttribute: null },
  { name: "agent-config", description: "runtime configuration per agent", globalIndexes: [], ttlAttribute: null },
];

/**
 * The physical name of a table: `bluestar-{name}{suffix}`.
 *
 * @param name The logical name.
 * @param suffix The environment suffix, e.g. `"-dev"` (may be empty).
 * @returns The physical name.
 *
 * @example Name a table
 * ```ts
 * import { tableName } from "@bluestar/persistence";
 *
 * console.assert(tableName("audit-log", "-dev") === "bluestar-audit-log-dev");
 * ```
 */
export function tableName(name: TableName, suffix: string): string {
  return `bluestar-${name}${suffix}`;
}
