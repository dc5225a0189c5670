/**
 * The DynamoDB rules store: the production {@linkcode IRulesStore}, with an
 * optional read-through cache in front of the rule reads.
 *
 * @module
 */

import { randomUUID } from "node:crypto";
import { DynamoDBClient, type DynamoDBClientConfig } from "@aws-sdk/client-dynamodb";
import {
  BatchGetCommand,
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  type QueryCommandInput,
  TransactWriteCommand,
  type TranslateConfig,
  UpdateCommand,
} from "@aws-sdk/lib-dynamodb";
import {
  BlueStarError,
  ConfigError,
  ConflictError,
  CorruptItemError,
  InvalidInputError,
  IrsLimitsNotFoundError,
  PipelineNotFoundError,
  quote,
  RuleNotFoundError,
  RulesStoreError,
} from "../core/errors.ts";
import { guardHook } from "../core/hooks.ts";
import {
  AUDIT_ENTRY_PREFIX,
  cacheKey,
  type CacheKind,
  GLOBAL_CLIENT_ID,
  type ItemKey,
  itemKeys,
  ruleVersionsCacheKey,
} from "../core/keys.ts";
import {
  auditEntryDigest,
  type AuditSeal,
  type AuditSealDocument,
  type AuditVerification,
  compareWithSeals,
  DEFAULT_SEAL_RETENTION_DAYS,
  type SealAuditTrailOptions,
  sealDocument,
  type SealedEntry,
  sealOf,
  sealProblem,
  unfinishedSeal,
} from "../core/audit.ts";
import type { ICacheBackend, IFileStore, IInvalidationBus, IRulesStore } from "../core/protocols.ts";
import {
  agentConfigSchema,
  asOfDay,
  auditEntrySchema,
  batchStateSchema,
  decodeCalculationRulePut,
  decodeCalculationRuleRemoval,
  type Decoded,
  decodeInput,
  decodeValidationRulePut,
  decodeValidationRuleRemoval,
  irsLimitsSchema,
  pipelineStepSchema,
  type Problem,
  processingResultSchema,
  type RulePut,
  type RuleRemoval,
  sealAuditTrailOptionsSchema,
} from "../core/schema.ts";
import {
  calculationVersionAsOf,
  changeClock,
  checkBatchStatus,
  checkExpectedVersion,
  checkIdempotencyKey,
  compareAuditEntries,
  compareBatchesByRecency,
  compareRuleChanges,
  compareText,
  planVersionChange,
  planVersionRemoval,
  ruleChangeOf,
  ruleNotFound,
  scoped,
  todayUtc,
  validationRulesAsOf,
  type VersionPlan,
  withUpdateKey,
} from "../core/rules_logic.ts";
import type {
  AgentConfig,
  AuditEntry,
  BatchState,
  BatchStatus,
  CalculationRule,
  CalculationRuleInput,
  CalculationRuleVersion,
  IrsLimits,
  PipelineStep,
  ProcessingResult,
  RuleChange,
  RuleChangeOptions,
  RuleReadOptions,
  RuleScope,
  SaveBatchStateOptions,
  ValidationRule,
  ValidationRuleInput,
  ValidationRuleVersion,
} from "../core/types.ts";
import { type Backoff, backoffDelay, sleep } from "../core/time.ts";
import { deepFreeze } from "../core/values.ts";
import { type CallEnd, endedOk, endedWith, reportEnd } from "../core/call_end.ts";
import { mapConcurrently } from "../core/concurrency.ts";
import {
  agentConfigCodec,
  auditEntryCodec,
  batchStateCodec,
  type CalculationRuleHistory,
  calculationRuleHistoryCodec,
  decodeItem,
  irsLimitsCodec,
  type Item,
  type ItemCodec,
  pipelineStepCodec,
  processingResultCodec,
  ruleChangeCodec,
  type ValidationRuleGroup,
  validationRuleGroupCodec,
  WRITE_ID_ATTRIBUTE,
} from "./items.ts";
import { BATCH_STATUS_INDEX, type TableName, tableName, TABLES } from "./tables.ts";
import {
  awsErrorName,
  type AwsTarget,
  clientTarget,
  describeAwsError,
  isUnreadServerAnswer,
  safeCause,
} from "./aws_errors.ts";
import { ReadThroughCache, type ReadThroughEvent } from "./read_through.ts";
import { type AuditSealOptions, readSealCopy, sealOptionProblems, writeSealCopy } from "./audit_seals.ts";
import {
  clashProblems,
  DEFAULT_CACHE_TIMEOUT_MS,
  DEFAULT_CACHE_TTL_SECONDS,
  endpointUrlProblems,
  hookProblems,
  integerProblems,
  localCacheProblems,
  type OptionProblem,
  optionProblemsText,
  regionProblems,
  secondsProblems,
  tableSuffixProblems,
  timeoutMsProblems,
  ttlSecondsProblems,
} from "./options.ts";

/** The DynamoDB operations the store sends. */
export type DynamoDBOperation =
  | "GetItem"
  | "BatchGetItem"
  | "Query"
  | "PutItem"
  | "UpdateItem"
  | "TransactWriteItems";

/**
 * What a {@linkcode DynamoDBRulesStore} reports through its `onEvent` hook.
 * Events are information only: a hook that throws or returns a rejected
 * promise changes nothing (see `guardHook`).
 *
 * - `cache.hit`, `cache.miss`, `cache.corrupt`, `cache.error`: the read
 *   through the cache (see {@linkcode ReadThroughEvent}); a read that misses
 *   goes to DynamoDB, and `cache.error` comes from a cache call that failed
 *   or took longer than `cacheTimeoutMs`.
 * - `cache.stale`: DynamoDB failed and `staleIfErrorSeconds` let the last
 *   value read be served.
 * - `dynamodb.request`: a request is being sent (SDK retries not counted).
 * - `dynamodb.response`: that request ended (after the SDK's retries), with
 *   its {@linkcode CallEnd} fields and, when DynamoDB or the SDK named the
 *   failure, `awsError` (`"ConditionalCheckFailedException"`).
 * - `call`: a public method ended (`method`, and its {@linkcode CallEnd}
 *   fields: a method that rejects, bad input included, ends as well).
 * - `dynamodb.unprocessed`: `BatchGetItem` left keys unprocessed; they are
 *   asked for again after a backoff.
 * - `rules.contention`: a rule change lost its write to another writer's
 *   change of the same item; it is planned again on what is stored now.
 */
export type RulesStoreEvent =
  | ReadThroughEvent
  | { type: "dynamodb.request"; operation: DynamoDBOperation; table: string }
  | { type: "dynamodb.unprocessed"; table: string; keys: number; attempt: number }
  | { type: "rules.contention"; table: string; attempt: number }
  | ({ type: "dynamodb.response"; operation: DynamoDBOperation; table: string; awsError?: string } & CallEnd)
  | ({ type: "call"; method: RulesStoreMethod } & CallEnd);

/** A public method of the rules store, as a `call` event names it. */
export type RulesStoreMethod = keyof IRulesStore;

/** Options of {@linkcode DynamoDBRulesStore}. */
export interface DynamoDBRulesStoreOptions extends AuditSealOptions {
  /**
   * The environment suffix of the table names (`bluestar-{name}{suffix}`), and
   * the namespace of the cache keys: empty, or `-`, `_` or `.` then letters,
   * digits, `_`, `-` and `.` (`"-dev"`).
   *
   * @default {""}
   */
  tableSuffix?: string;
  /**
   * The AWS region, a region name (`"us-east-1"`). Not with `client`.
   *
   * @default {the AWS SDK's chain: AWS_REGION, the shared config file, ...}
   */
  region?: string;
  /**
   * The DynamoDB endpoint, e.g. `"http://127.0.0.1:4566"` for moto or
   * LocalStack: an http or https URL without userinfo (credentials come
   * from `credentials` or the AWS chain). Not with `client`.
   *
   * @default {the region's AWS endpoint}
   */
  endpointUrl?: string;
  /**
   * Credentials, or a provider of them. Not with `client`.
   *
   * @default {the AWS SDK's default credential chain}
   */
  credentials?: DynamoDBClientConfig["credentials"];
  /**
   * Attempts per request, the first included, under the SDK's standard retry
   * strategy (throttling and transient errors back off and retry). Not with
   * `client`, which brings its own retry strategy.
   *
   * @default {3}
   */
  maxAttempts?: number;
  /**
   * An existing client to send through (a `DynamoDBClient` or a
   * `DynamoDBDocumentClient`): its credentials, endpoint, retry strategy,
   * request handler and middleware are used, its configuration is not
   * changed, and {@linkcode DynamoDBRulesStore.close} does not destroy it.
   *
   * @default {a client the store creates from the options above}
   */
  client?: DynamoDBClient | DynamoDBDocumentClient;
  /**
   * The read-through cache for pipelines, rules, IRS limits and agent
   * configuration. The cache is never a point of failure.
   *
   * @default {undefined (no cache)}
   */
  cache?: ICacheBackend;
  /**
   * How long a cached value lives, in seconds: the most a change in DynamoDB
   * can stay unseen.
   *
   * @default {300}
   */
  cacheTtlSeconds?: number;
  /**
   * How long a cache call may take, in milliseconds. A slower `get` counts as
   * a miss; a slower `setex` as a failed write-back.
   *
   * @default {50}
   */
  cacheTimeoutMs?: number;
  /**
   * The in-process tier in front of `cache`: a bounded LRU of decoded,
   * checked, frozen rule reads, each entry living `ttlSeconds` at most and
   * never longer than the cache entry it came from. `false`: off. On by
   * default when an `invalidationBus` is given (an entry is then stale for
   * at most the bus heartbeat); without a bus it is opt-in, and an entry may
   * be stale for its `ttlSeconds`.
   *
   * @default {{ maxEntries: 10000, ttlSeconds: 60 } with an invalidationBus, else false}
   */
  localCache?: { maxEntries?: number; ttlSeconds?: number } | false;
  /**
   * Carries invalidations between processes (see `RedisInvalidationBus`):
   * every rule change ({@linkcode DynamoDBRulesStore.putCalculationRule},
   * {@linkcode DynamoDBRulesStore.putValidationRule}) publishes the owner's
   * entry it changed. The store does not close it.
   *
   * @default {undefined}
   */
  invalidationBus?: IInvalidationBus;
  /**
   * When DynamoDB fails (not "not found"), serve the last value this
   * process read within this many seconds, reported as a `cache.stale`
   * event. `0`: off.
   *
   * @default {0}
   */
  staleIfErrorSeconds?: number;
  /**
   * Receives cache and request events (see {@linkcode RulesStoreEvent}).
   *
   * @default {undefined}
   */
  onEvent?: (event: RulesStoreEvent) => void;
  /**
   * The clock, in epoch milliseconds: "today" for rule reads without
   * `asOf`, and the time of rule changes.
   *
   * @default {Date.now}
   */
  now?: () => number;
}

/** How often `BatchGetItem` is sent for keys DynamoDB leaves unprocessed, the first time included. */
const UNPROCESSED_MAX_ATTEMPTS = 8;
/** The backoff before asking again for unprocessed keys (full jitter). */
const UNPROCESSED_BACKOFF: Backoff = { baseDelayMs: 25, maxDelayMs: 1000 };

/** How often a rule change is planned and written again after losing its write to another writer's, the first time included. */
const CHANGE_MAX_ATTEMPTS = 40;
/** The backoff before planning a rule change again (full jitter). */
const CHANGE_BACKOFF: Backoff = { baseDelayMs: 5, maxDelayMs: 250 };

/** How many validated ids the hot-path memo keeps before it starts over. */
const MEMO_LIMIT = 10_000;

/** A day, in milliseconds. */
const DAY_MS = 86_400_000;

/** The versions of an owner with none (GLOBAL reading its own). */
const NO_VERSIONS: readonly CalculationRuleVersion[] = Object.freeze([]);
/** The in-process tier when it is on and not configured. */
const DEFAULT_LOCAL_CACHE = { maxEntries: 10_000, ttlSeconds: 60 } as const;

/** Numbers are read as `NumberValue`s, which the item codec turns into exact decimals. */
function translateConfig(): TranslateConfig {
  // A fresh object per store: the document client fills in defaults in place.
  return { marshallOptions: { removeUndefinedValues: true }, unmarshallOptions: { wrapNumbers: true } };
}

/**
 * An {@linkcode IRulesStore} on DynamoDB: eight tables named
 * `bluestar-{name}{tableSuffix}` (see `TABLES`), items encoded by the shared
 * item codec, so it reads exactly what the seed writes. It behaves exactly
 * like `MemoryRulesStore`: same results, same order, same errors.
 *
 * Requests:
 * - `getPipeline`, `getProcessingResults`, `listAuditEntries`: one `Query`
 *   per 1 MB page, every page followed; `listBatchesByStatus` queries the
 *   batch-state table's status index the same way.
 * - `getValidationRules`, `getCalculationRule`: ONE strongly consistent
 *   `BatchGetItem` for the client's item and GLOBAL's together (one key when
 *   the client is GLOBAL), each holding every version, so one request answers
 *   any `asOf`; unprocessed keys are asked for again, up to 8 times, with
 *   backoff.
 * - `putCalculationRule`, `putValidationRule`: a strongly consistent
 *   `GetItem`, then ONE `TransactWriteItems` (the item on condition of its
 *   revision, the audit record on condition that it is new), planned again
 *   when another writer's change landed first. `listCalculationRuleVersions`,
 *   `listValidationRuleVersions`: one strongly consistent `GetItem`;
 *   `listRuleChanges`: strongly consistent `Query` pages of the owner's
 *   `RULES#{clientId}` partition of the audit-log table.
 * - `getIrsLimits`, `getAgentConfig`, `getBatchState`: one `GetItem`
 *   (batch state strongly consistent).
 * - `saveBatchState` with `expectedVersion` or `idempotencyKey`: one
 *   conditional `PutItem`; losing the condition is a `ConflictError` and
 *   changes nothing (or, when the stored state remembers the key, nothing
 *   and success). `appendAuditEntry`: a claim on the batch's seal item
 *   (`UpdateItem`), the entry's conditional `PutItem`, the claim removed.
 *   Nothing updates or deletes an audit entry.
 * - `sealAuditTrail`, `verifyAuditTrail`: see each; the seal copy goes to
 *   `sealFiles` through `IFileStore` only. Each such
 *   write stores a random write token (attribute `writeId`, never returned
 *   by a read), the same on every SDK retry of the call: when an attempt
 *   landed but its answer was lost (a 500, a reset connection) and the
 *   retry then loses the condition to the item carrying this call's token,
 *   the write succeeded. An item from another call is a conflict, even one
 *   equal byte for byte. When an attempt may have landed and a later batch
 *   state version is already stored, the outcome cannot be known: a
 *   `RulesStoreError` says so.
 * - Throttling and transient failures are retried by the SDK's standard
 *   retry strategy (`maxAttempts`); what still fails is a `RulesStoreError`
 *   with the SDK error as `cause`. Ids are checked before any request.
 * - No message and no `cause` shows a credential: signing material AWS
 *   echoes back (a signature mismatch's canonical request, with the session
 *   token) is redacted, and a cause that shows it is replaced by a redacted
 *   copy.
 *
 * Caching (with a `cache`): `getPipeline`, `getValidationRules` and
 * `getCalculationRule` (per owner: the client's own versions, an empty list
 * when it has no override, and GLOBAL's, read in one `getMany` round trip,
 * keyed by `ruleVersionsCacheKey`; a change writes its owner's entry
 * through before it returns, fenced by the item's revision, and write-backs
 * are fenced by the key's generation),
 * `getIrsLimits` and `getAgentConfig` read through the cache, keyed by
 * `cacheKey(tableSuffix, kind, ...ids)`, for `cacheTtlSeconds`. Batch state,
 * processing results and the audit trail are never cached. "Not found" is
 * never cached (an unknown plan, rule or year, an absent agent config, a
 * field neither the client nor GLOBAL has validation rules for): it is an
 * error path, and caching it would hide newly seeded data for a whole TTL; an
 * owner's empty list beside the other owner's versions is cached. A cache hit
 * sends no request. A cached value is decoded with the domain schema and
 * checked against the ids asked for; one that does not pass is a miss (an
 * entry whose exact JSON text already passed is not decoded again). A
 * cache that throws, hangs (past `cacheTimeoutMs`) or returns garbage makes
 * the read go to DynamoDB; a failed write-back is reported, never thrown.
 *
 * Concurrent identical reads of a cached kind share one cache lookup and one
 * DynamoDB request (with or without a cache); a failure reaches every waiter.
 *
 * In-process tier (`localCache`, on by default with an `invalidationBus`):
 * rule reads are answered from a bounded in-process LRU first, with no
 * request; an entry lives `localCache.ttlSeconds` at most, never longer than
 * its Redis entry, and is dropped in every process when a rule change
 * publishes its key on the bus. While the bus is silent past its heartbeat
 * the tier does not answer. Rule reads are
 * deeply frozen on every path; batch state, results and audit entries are
 * fresh copies.
 *
 * @example Read a rule through a cache
 * ```ts
 * import { DynamoDBRulesStore, MemoryCacheBackend } from "@bluestar/persistence";
 *
 * const rules = new DynamoDBRulesStore({
 *   tableSuffix: "-dev",
 *   region: "us-east-1",
 *   endpointUrl: "http://127.0.0.1:4566",
 *   cache: new MemoryCacheBackend(),
 *   onEvent: (event) => {
 *     if (event.type === "cache.error") console.warn(event.error.message);
 *   },
 * });
 * try {
 *   const rule = await rules.getCalculationRule("ACME", "FICA_SOCIAL_SECURITY");
 *   console.log(rule.scope, rule.parameters.rate);
 * } finally {
 *   await rules.close();
 * }
 * ```
 */
export class DynamoDBRulesStore implements IRulesStore {
  readonly #documents: DynamoDBDocumentClient;
  readonly #ownedClient: DynamoDBClient | undefined;
  readonly #tables: Record<TableName, string>;
  readonly #namespace: string;
  readonly #reads: ReadThroughCache;
  /** Whether a hook was given: events are built only then. */
  readonly #reporting: boolean;
  readonly #emit: (event: RulesStoreEvent) => void;
  /** The secret parts of explicit credentials: never shown in a message or a cause. */
  readonly #secrets: readonly string[];
  /** Cache keys of ids that passed validation, by kind (a versions key: `kind` then "@"), then each id (see #knownKey). */
  readonly #validatedKeys = new Map<string, Map<string, Map<string, string>>>();
  #validatedCount = 0;
  /** Rules resolved from a frozen stored version, frozen: an in-process hit builds none again. */
  readonly #resolved = new WeakMap<object, CalculationRule>();
  /** Today in UTC on the store's clock, until the end of that day (ms), for the hot path. */
  #today = { day: "", endsAt: -Infinity };
  /** The last `asOf` that passed its check, for the hot path. */
  #checkedAsOf = "";
  readonly #sealFiles: IFileStore | undefined;
  readonly #sealRetentionDays: number;
  readonly #now: () => number;
  readonly #changeTime: () => string;
  #closed = false;

  /**
   * Creates the store; nothing is sent until the first call.
   *
   * @param options Tables, client, cache and event hook.
   * @throws {ConfigError} Listing every problem, when an option is malformed, or `client` comes with `region`, `endpointUrl`, `credentials` or `maxAttempts`.
   */
  constructor(options: DynamoDBRulesStoreOptions = {}) {
    const {
      tableSuffix = "",
      cacheTtlSeconds = DEFAULT_CACHE_TTL_SECONDS,
      cacheTimeoutMs = DEFAULT_CACHE_TIMEOUT_MS,
      maxAttempts = 3,
    } = options;
    const problems = storeOptionProblems(options);
    const { staleIfErrorSeconds = 0 } = options;
    if (problems.length > 0) {
      throw new ConfigError(`Invalid DynamoDB rules store options: ${optionProblemsText(problems)}`);
    }
    this.#sealFiles = options.sealFiles;
    this.#sealRetentionDays = options.sealRetentionDays ?? DEFAULT_SEAL_RETENTION_DAYS;

    this.#tables = Object.fromEntries(
      TABLES.map((table) => [table.name, tableName(table.name, tableSuffix)]),
    ) as Record<TableName, string>;
    this.#namespace = tableSuffix;
    this.#reporting = options.onEvent !== undefined;
    this.#emit = guardHook(options.onEvent);
    this.#now = options.now ?? Date.now;
    this.#changeTime = changeClock(this.#now);
    this.#reads = new ReadThroughCache({
      cache: options.cache,
      ttlSeconds: cacheTtlSeconds,
      timeoutMs: cacheTimeoutMs,
      onEvent: this.#reporting ? this.#emit : undefined,
      localCache: localCacheOf(options),
      bus: options.invalidationBus,
      staleIfError: staleIfErrorSeconds > 0 ? { seconds: staleIfErrorSeconds, when: isOutage } : undefined,
    });
    const credentials = options.credentials as { secretAccessKey?: unknown; sessionToken?: unknown } | undefined;
    this.#secrets = typeof credentials === "object" && credentials !== null
      ? [credentials.secretAccessKey, credentials.sessionToken].filter((value): value is string =>
        typeof value === "string" && value !== ""
      )
      : [];

    let base: DynamoDBClient | DynamoDBDocumentClient;
    if (options.client === undefined) {
      this.#ownedClient = new DynamoDBClient({
        region: options.region,
        endpoint: options.endpointUrl,
        credentials: options.credentials,
        maxAttempts,
        retryMode: "standard",
      });
      base = this.#ownedClient;
    } else {
      base = options.client;
    }
    // A document client over a copy of the configuration: it shares the given
    // client's middleware stack, credentials, handler and retry strategy, but
    // `DynamoDBDocumentClient.from` sets `translateConfig` on the config it is
    // handed, and the caller's own document clients must keep theirs.
    const view = { config: { ...base.config }, middlewareStack: base.middlewareStack };
    this.#documents = DynamoDBDocumentClient.from(view as unknown as DynamoDBClient, translateConfig());
  }

  /**
   * Closes the store: waits for pending cache write-backs (each bounded by
   * `cacheTimeoutMs`), then destroys the client the store created. A client
   * passed in `options.client` is left open. Later calls reject with a
   * `RulesStoreError`. Closing twice is harmless.
   *
   * @returns When the store is closed.
   *
   * @example Close after use
   * ```ts
   * import { DynamoDBRulesStore } from "@bluestar/persistence";
   *
   * const rules = new DynamoDBRulesStore({ region: "us-east-1" });
   * await rules.close();
   * ```
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#reads.close();
    this.#ownedClient?.destroy();
  }

  /**
   * {@linkcode IRulesStore.getPipeline}: one `Query` per 1 MB page, every
   * page followed; cached. The steps are deeply frozen.
   *
   * @throws {CorruptItemError} When a stored step does not decode.
   * @throws {RulesStoreError} When DynamoDB fails.
   *
   * @example Read a plan
   * ```ts
   * import { DynamoDBRulesStore } from "@bluestar/persistence";
   *
   * const rules = new DynamoDBRulesStore({ tableSuffix: "-dev" });
   * const steps = await rules.getPipeline("DEFAULT_BiWeeklyFri");
   * ```
   */
  getPipeline(planId: string): Promise<PipelineStep[]> {
    return this.#run("getPipeline", () => {
      const key = this.#cacheKeyOf("pipeline", () => itemKeys.pipelinePartition(planId), planId);
      return this.#reads.read(
        "pipeline",
        key,
        (value) => checkPipeline(value, planId),
        async () => {
          const partition = itemKeys.pipelinePartition(planId);
          const action = `read pipeline ${quote(planId)}`;
          const steps = (await this.#queryPartition(action, pipelineStepCodec, partition, false)).sort(byStep);
          if (steps.length === 0) throw new PipelineNotFoundError(`Pipeline ${quote(planId)} not found`);
          return steps;
        },
      );
    });
  }

  /**
   * {@linkcode IRulesStore.getValidationRules}: the client's and GLOBAL's
   * items for the field, holding every version, from one `BatchGetItem`
   * when not cached; cached per owner and field, so one entry answers every
   * date and a GLOBAL change reaches every client through one key. The
   * rules are deeply frozen.
   *
   * @throws {CorruptItemError} When a stored rule group does not decode.
   * @throws {InvalidInputError} When `asOf` is not a calendar date `YYYY-MM-DD`.
   * @throws {RulesStoreError} When DynamoDB fails.
   *
   * @example Read the rules of a field for a pay date
   * ```ts
   * import { DynamoDBRulesStore } from "@bluestar/persistence";
   *
   * const rules = new DynamoDBRulesStore({ tableSuffix: "-dev" });
   * const ssnRules = await rules.getValidationRules("ACME", "ssn", { asOf: "2025-06-13" });
   * ```
   */
  getValidationRules(clientId: string, field: string, options?: RuleReadOptions): Promise<ValidationRule[]> {
    return this.#run("getValidationRules", async () => {
      const day = asOfDay(options, () => this.#todayUtc());
      const groups = await this.#readVersions(validationVersions, clientId, field);
      return deepFreeze(validationRulesAsOf(groups.own?.rules ?? [], groups.global.rules, day));
    });
  }

  /**
   * {@linkcode IRulesStore.getCalculationRule}: the client's and GLOBAL's
   * items for the rule, holding every version, from one `BatchGetItem` when
   * not cached; cached per owner and rule (a client without an override
   * caches its emptiness), so one entry answers every date. The
   * rule is deeply frozen.
   *
   * @throws {CorruptItemError} When a stored rule does not decode.
   * @throws {InvalidInputError} When `asOf` is not a calendar date `YYYY-MM-DD`.
   * @throws {RulesStoreError} When DynamoDB fails.
   *
   * @example Resolve a rule for a pay date
   * ```ts
   * import { DynamoDBRulesStore } from "@bluestar/persistence";
   *
   * const rules = new DynamoDBRulesStore({ tableSuffix: "-dev" });
   * const rule = await rules.getCalculationRule("ACME", "FICA_SOCIAL_SECURITY", { asOf: "2025-06-13" });
   * console.log(rule.scope, rule.effectiveFrom, rule.revision); // "GLOBAL" when ACME has no override
   * ```
   */
  getCalculationRule(clientId: string, ruleId: string, options?: RuleReadOptions): Promise<CalculationRule> {
    // The hot path: an in-process hit of both owners' entries builds no closure, no key and no rule.
    const hit = this.#reporting || this.#closed ? undefined : this.#localCalculationRule(clientId, ruleId, options);
    if (hit !== undefined) return Promise.resolve(hit);
    return this.#run("getCalculationRule", async () => {
      const day = asOfDay(options, () => this.#todayUtc());
      if (options?.asOf !== undefined) this.#checkedAsOf = day;
      const histories = await this.#readVersions(calculationVersions, clientId, ruleId);
      const rule = this.#calculationRuleAsOf(histories.own, histories.global, day);
      if (rule === undefined) throw ruleNotFound(clientId, ruleId, day);
      return rule;
    });
  }

  /**
   * {@linkcode IRulesStore.putCalculationRule}: a strongly consistent
   * `GetItem` of the rule's item, then ONE `TransactWriteItems` that puts
   * the item on condition that its revision is the one read, and the audit
   * record on condition that it is new. A write that loses to another
   * writer's change of the item is planned again on what is stored now (up
   * to 40 times, with backoff), so it never overwrites that change and a
   * correction whose revision went stale is a `ConflictError`. Each write
   * carries a `ClientRequestToken` and its audit record's id: when an answer
   * is lost, the record tells whether the change landed, so a change is
   * never applied twice. Then the owner's cache entry is written through
   * (the new item, fenced by its revision) and the change published on the
   * invalidation bus.
   *
   * @throws {ConflictError} When the version overlaps another, or a correction's `expectedRevision` is missing or stale; nothing changes.
   * @throws {InvalidInputError} When the rule or the options are malformed; nothing is sent.
   * @throws {RulesStoreError} When DynamoDB fails, or other writers won 40 times in a row; nothing changes.
   *
   * @example Add the 2027 Social Security wage base
   * ```ts
   * import { DynamoDBRulesStore } from "@bluestar/persistence";
   *
   * const rules = new DynamoDBRulesStore({ tableSuffix: "-dev" });
   * const stored = await rules.putCalculationRule({
   *   clientId: "GLOBAL",
   *   ruleId: "FICA_SOCIAL_SECURITY",
   *   ruleType: "percentage_up_to_wage_base",
   *   description: "Social Security, employee share",
   *   parameters: { rate: "0.062", wageBase: "190000" },
   *   effectiveFrom: "2027-01-01",
   *   effectiveTo: "2027-12-31",
   * }, { actor: "ops@example.com", reason: "SSA announcement" });
   * console.log(stored.revision); // 1
   * ```
   */
  putCalculationRule(rule: CalculationRuleInput, options: RuleChangeOptions): Promise<CalculationRule> {
    return this.#run(
      "putCalculationRule",
      () => this.#change(calculationVersions, decodeCalculationRulePut(rule, options)),
    );
  }

  /**
   * {@linkcode IRulesStore.putValidationRule}: as
   * {@linkcode DynamoDBRulesStore.putCalculationRule}, on the item of the
   * owner's rules for the field.
   *
   * @throws {ConflictError} When the version overlaps another of the same rule id, or a correction's `expectedRevision` is missing or stale; nothing changes.
   * @throws {InvalidInputError} When the rule or the options are malformed; nothing is sent.
   * @throws {RulesStoreError} When DynamoDB fails, or other writers won 40 times in a row; nothing changes.
   *
   * @example Start a client's own overtime warning on a date
   * ```ts
   * import { DynamoDBRulesStore } from "@bluestar/persistence";
   *
   * const rules = new DynamoDBRulesStore({ tableSuffix: "-dev" });
   * await rules.putValidationRule({
   *   clientId: "ACME",
   *   field: "hours",
   *   ruleId: "hours_range",
   *   ruleType: "range",
   *   min: "0",
   *   max: "100",
   *   severity: "warning",
   *   message: "Hours over 100 need review",
   *   effectiveFrom: "2025-07-01",
   * }, { actor: "ops@example.com", reason: "Contract amendment 7" });
   * ```
   */
  putValidationRule(rule: ValidationRuleInput, options: RuleChangeOptions): Promise<ValidationRule> {
    return this.#run(
      "putValidationRule",
      () => this.#change(validationVersions, decodeValidationRulePut(rule, options)),
    );
  }

  /**
   * {@linkcode IRulesStore.removeCalculationRuleVersion}: as
   * {@linkcode DynamoDBRulesStore.putCalculationRule}, the item without the
   * version written with the audit record in one `TransactWriteItems`. An
   * owner's item left without versions stays, empty, so its revision keeps
   * fencing later writers.
   *
   * @throws {RuleNotFoundError} When no such version is stored; nothing changes.
   * @throws {ConflictError} When `expectedRevision` is missing or stale; nothing changes.
   * @throws {InvalidInputError} When an id, the date or the options are malformed; nothing is sent.
   * @throws {RulesStoreError} When DynamoDB fails, or other writers won 40 times in a row; nothing changes.
   *
   * @example Remove a version entered by mistake
   * ```ts
   * import { DynamoDBRulesStore } from "@bluestar/persistence";
   *
   * const rules = new DynamoDBRulesStore({ tableSuffix: "-dev" });
   * const [version] = await rules.listCalculationRuleVersions("ACME", "FICA_MEDICARE");
   * await rules.removeCalculationRuleVersion("ACME", "FICA_MEDICARE", version.effectiveFrom, {
   *   actor: "ops@example.com",
   *   reason: "Entered for the wrong client",
   *   expectedRevision: version.revision,
   * });
   * ```
   */
  removeCalculationRuleVersion(
    clientId: string,
    ruleId: string,
    effectiveFrom: string,
    options: RuleChangeOptions,
  ): Promise<CalculationRule> {
    return this.#run(
      "removeCalculationRuleVersion",
      () => this.#remove(calculationVersions, decodeCalculationRuleRemoval(clientId, ruleId, effectiveFrom, options)),
    );
  }

  /**
   * {@linkcode IRulesStore.removeValidationRuleVersion}: as
   * {@linkcode DynamoDBRulesStore.removeCalculationRuleVersion}, on the item
   * of the owner's rules for the field.
   *
   * @throws {RuleNotFoundError} When no such version is stored; nothing changes.
   * @throws {ConflictError} When `expectedRevision` is missing or stale; nothing changes.
   * @throws {InvalidInputError} When an id, the date or the options are malformed; nothing is sent.
   * @throws {RulesStoreError} When DynamoDB fails, or other writers won 40 times in a row; nothing changes.
   *
   * @example Remove a client's overtime warning version
   * ```ts
   * import { DynamoDBRulesStore } from "@bluestar/persistence";
   *
   * const rules = new DynamoDBRulesStore({ tableSuffix: "-dev" });
   * await rules.removeValidationRuleVersion("ACME", "hours", "hours_range", "2025-07-01", {
   *   actor: "ops@example.com",
   *   reason: "Contract amendment 7 withdrawn",
   *   expectedRevision: 1,
   * });
   * ```
   */
  removeValidationRuleVersion(
    clientId: string,
    field: string,
    ruleId: string,
    effectiveFrom: string,
    options: RuleChangeOptions,
  ): Promise<ValidationRule> {
    return this.#run(
      "removeValidationRuleVersion",
      () =>
        this.#remove(
          validationVersions,
          decodeValidationRuleRemoval(clientId, field, ruleId, effectiveFrom, options),
        ),
    );
  }

  /**
   * {@linkcode IRulesStore.listCalculationRuleVersions}: one strongly
   * consistent `GetItem`; never cached.
   *
   * @throws {CorruptItemError} When the stored item does not decode.
   * @throws {RulesStoreError} When DynamoDB fails.
   *
   * @example A rule's history
   * ```ts
   * import { DynamoDBRulesStore } from "@bluestar/persistence";
   *
   * const rules = new DynamoDBRulesStore({ tableSuffix: "-dev" });
   * for (const version of await rules.listCalculationRuleVersions("GLOBAL", "FICA_SOCIAL_SECURITY")) {
   *   console.log(version.effectiveFrom, version.effectiveTo, version.parameters.wageBase);
   * }
   * ```
   */
  listCalculationRuleVersions(clientId: string, ruleId: string): Promise<CalculationRule[]> {
    return this.#run(
      "listCalculationRuleVersions",
      async () => (await this.#history(calculationVersions, clientId, ruleId)).versions.map(scoped),
    );
  }

  /**
   * {@linkcode IRulesStore.listValidationRuleVersions}: one strongly
   * consistent `GetItem`; never cached.
   *
   * @throws {CorruptItemError} When the stored item does not decode.
   * @throws {RulesStoreError} When DynamoDB fails.
   *
   * @example A field's history
   * ```ts
   * import { DynamoDBRulesStore } from "@bluestar/persistence";
   *
   * const rules = new DynamoDBRulesStore({ tableSuffix: "-dev" });
   * const versions = await rules.listValidationRuleVersions("ACME", "hours");
   * ```
   */
  listValidationRuleVersions(clientId: string, field: string): Promise<ValidationRule[]> {
    return this.#run(
      "listValidationRuleVersions",
      async () => (await this.#history(validationVersions, clientId, field)).rules.map(scoped),
    );
  }

  /**
   * {@linkcode IRulesStore.listRuleChanges}: one strongly consistent `Query`
   * of the owner's partition of the audit-log table per 1 MB page, every
   * page followed; never cached.
   *
   * @throws {CorruptItemError} When a stored change does not decode.
   * @throws {RulesStoreError} When DynamoDB fails.
   *
   * @example Who changed GLOBAL's rules, and why
   * ```ts
   * import { DynamoDBRulesStore } from "@bluestar/persistence";
   *
   * const rules = new DynamoDBRulesStore({ tableSuffix: "-dev" });
   * for (const change of await rules.listRuleChanges("GLOBAL")) console.log(change.at, change.actor, change.reason);
   * ```
   */
  listRuleChanges(clientId: string): Promise<RuleChange[]> {
    return this.#run("listRuleChanges", async () => {
      const partition = itemKeys.ruleChangesPartition(clientId);
      const action = `list rule changes of client ${quote(clientId)}`;
      return (await this.#queryPartition(action, ruleChangeCodec, partition, true)).sort(compareRuleChanges);
    });
  }

  /**
   * {@linkcode IRulesStore.getIrsLimits}: one `GetItem`; cached. The limits
   * are deeply frozen.
   *
   * @throws {CorruptItemError} When the stored limits do not decode.
   * @throws {RulesStoreError} When DynamoDB fails.
   *
   * @example Read a year's limits
   * ```ts
   * import { DynamoDBRulesStore } from "@bluestar/persistence";
   *
   * const rules = new DynamoDBRulesStore({ tableSuffix: "-dev" });
   * const { limits } = await rules.getIrsLimits(2026);
   * ```
   */
  getIrsLimits(year: number): Promise<IrsLimits> {
    return this.#run("getIrsLimits", () => {
      const itemKey = itemKeys.irsLimits(year);
      const key = cacheKey(this.#namespace, "irs", year);
      return this.#reads.read("irs", key, (value) => checkIrsLimits(value, year), async () => {
        const table = this.#tables["irs-limits"];
        const item = await this.#getItem(`read IRS limits for year ${quote(year)}`, table, itemKey, false);
        if (item === undefined) throw new IrsLimitsNotFoundError(`IRS limits not found for year ${quote(year)}`);
        return decodeStored(irsLimitsCodec, table, item);
      });
    });
  }

  /**
   * {@linkcode IRulesStore.saveBatchState}: one `PutItem`, conditional with
   * `expectedVersion`; never cached.
   *
   * @throws {RulesStoreError} When DynamoDB fails (an item over 400 KB included), or when an attempt the SDK retried may have landed and a later version is already stored, so whether this write landed cannot be known.
   *
   * @example Advance a state optimistically
   * ```ts
   * import { DynamoDBRulesStore } from "@bluestar/persistence";
   *
   * const rules = new DynamoDBRulesStore({ tableSuffix: "-dev" });
   * const state = await rules.getBatchState("B1");
   * if (state !== null) {
   *   await rules.saveBatchState("B1", { ...state, version: state.version + 1 }, { expectedVersion: state.version });
   * }
   * ```
   */
  saveBatchState(batchId: string, state: BatchState, options: SaveBatchStateOptions = {}): Promise<void> {
    return this.#run("saveBatchState", async () => {
      itemKeys.batchState(batchId);
      const action = `save batch state ${quote(batchId)}`;
      const copy = decodeInput(batchStateSchema, state, action);
      const expectedVersion = options?.expectedVersion;
      const idempotencyKey = options?.idempotencyKey;
      checkExpectedVersion(action, batchId, copy, expectedVersion);
      checkIdempotencyKey(action, idempotencyKey);
      if (idempotencyKey !== undefined) copy.updateKeys = withUpdateKey(copy.updateKeys, idempotencyKey);
      const table = this.#tables["batch-state"];
      const item = batchStateCodec.toItem(copy);
      if (expectedVersion === undefined && idempotencyKey === undefined) {
        await this.#put(action, table, item);
        return;
      }
      const storedVersion = (stored: StoredItem | undefined) => Number(stored?.version?.N ?? 0);
      const clauses: string[] = [];
      const names: Record<string, string> = {};
      const values: Record<string, unknown> = {};
      if (expectedVersion === 0) clauses.push("attribute_not_exists(PK)");
      if (expectedVersion !== undefined && expectedVersion > 0) {
        clauses.push("#version = :expected");
        names["#version"] = "version";
        values[":expected"] = expectedVersion;
      }
      if (idempotencyKey !== undefined) {
        // A state that remembers the key already has this update in it.
        clauses.push("(attribute_not_exists(#updateKeys) OR NOT contains(#updateKeys, :key))");
        names["#updateKeys"] = "updateKeys";
        values[":key"] = idempotencyKey;
      }
      await this.#put(action, table, item, {
        ConditionExpression: clauses.join(" AND "),
        ...(Object.keys(names).length > 0 ? { ExpressionAttributeNames: names } : {}),
        ...(Object.keys(values).length > 0 ? { ExpressionAttributeValues: values } : {}),
        conflict: (stored) => `expected version ${expectedVersion}, stored version is ${storedVersion(stored)}`,
        // Every conditional save raises the version, so only a later version can have replaced this one.
        replaces: (stored) => expectedVersion !== undefined && storedVersion(stored) > copy.version,
        applied: (stored) =>
          idempotencyKey !== undefined && (stored.updateKeys?.L ?? []).some((key) => key?.S === idempotencyKey),
      });
    });
  }

  /**
   * {@linkcode IRulesStore.getBatchState}: one strongly consistent `GetItem`;
   * never cached; a fresh copy the caller may change.
   *
   * @throws {CorruptItemError} When the stored state does not decode.
   * @throws {RulesStoreError} When DynamoDB fails.
   *
   * @example Read a state
   * ```ts
   * import { DynamoDBRulesStore } from "@bluestar/persistence";
   *
   * const rules = new DynamoDBRulesStore({ tableSuffix: "-dev" });
   * const state = await rules.getBatchState("B1");
   * ```
   */
  getBatchState(batchId: string): Promise<BatchState | null> {
    return this.#run("getBatchState", async () => {
      const key = itemKeys.batchState(batchId);
      const table = this.#tables["batch-state"];
      const item = await this.#getItem(`read batch state ${quote(batchId)}`, table, key, true);
      return item === undefined ? null : decodeStored(batchStateCodec, table, item);
    });
  }

  /**
   * {@linkcode IRulesStore.listBatchesByStatus}: one `Query` of the status
   * index per 1 MB page, every page followed; never cached.
   *
   * @throws {CorruptItemError} When a stored state does not decode.
   * @throws {RulesStoreError} When DynamoDB fails.
   *
   * @example List the batches awaiting approval
   * ```ts
   * import { DynamoDBRulesStore } from "@bluestar/persistence";
   *
   * const rules = new DynamoDBRulesStore({ tableSuffix: "-dev" });
   * const waiting = await rules.listBatchesByStatus("awaiting_approval");
   * ```
   */
  listBatchesByStatus(status: BatchStatus): Promise<BatchState[]> {
    return this.#run("listBatchesByStatus", async () => {
      checkBatchStatus(status);
      const table = this.#tables["batch-state"];
      const items = await this.#queryAll(`list batches with status ${quote(status)}`, {
        TableName: table,
        IndexName: BATCH_STATUS_INDEX.indexName,
        KeyConditionExpression: "#status = :status",
        ExpressionAttributeNames: { "#status": BATCH_STATUS_INDEX.partitionKey },
        ExpressionAttributeValues: { ":status": status },
        ScanIndexForward: false,
      });
      return items.map((item) => decodeStored(batchStateCodec, table, item)).sort(compareBatchesByRecency);
    });
  }

  /**
   * {@linkcode IRulesStore.saveProcessingResult}: one `PutItem`; never cached.
   *
   * @throws {RulesStoreError} When DynamoDB fails.
   *
   * @example Save a result
   * ```ts
   * import { DynamoDBRulesStore } from "@bluestar/persistence";
   *
   * const rules = new DynamoDBRulesStore({ tableSuffix: "-dev" });
   * await rules.saveProcessingResult("B1", "0100", {
   *   batchId: "B1",
   *   step: "0100",
   *   status: "succeeded",
   *   output: { employees: 12 },
   *   error: null,
   *   startedAt: "2026-11-27T10:00:00.000Z",
   *   completedAt: "2026-11-27T10:00:01.000Z",
   * });
   * ```
   */
  saveProcessingResult(batchId: string, step: string, result: ProcessingResult): Promise<void> {
    return this.#run("saveProcessingResult", async () => {
      itemKeys.processingResult(batchId, step);
      const action = `save processing result ${quote(step)} of batch ${quote(batchId)}`;
      const copy = decodeInput(processingResultSchema, result, action);
      if (copy.batchId !== batchId || copy.step !== step) {
        throw new InvalidInputError(
          `Failed to ${action}: the result is for step ${quote(copy.step)} of batch ${quote(copy.batchId)}`,
        );
      }
      await this.#put(action, this.#tables["processing-results"], processingResultCodec.toItem(copy));
    });
  }

  /**
   * {@linkcode IRulesStore.getProcessingResults}: one strongly consistent
   * `Query` per 1 MB page, every page followed; never cached.
   *
   * @throws {CorruptItemError} When a stored result does not decode.
   * @throws {RulesStoreError} When DynamoDB fails.
   *
   * @example Read a batch's results
   * ```ts
   * import { DynamoDBRulesStore } from "@bluestar/persistence";
   *
   * const rules = new DynamoDBRulesStore({ tableSuffix: "-dev" });
   * const results = await rules.getProcessingResults("B1");
   * ```
   */
  getProcessingResults(batchId: string): Promise<ProcessingResult[]> {
    return this.#run("getProcessingResults", async () => {
      const partition = itemKeys.batchPartition(batchId);
      const action = `read processing results of batch ${quote(batchId)}`;
      return (await this.#queryPartition(action, processingResultCodec, partition, true)).sort(byStepId);
    });
  }

  /**
   * {@linkcode IRulesStore.appendAuditEntry}: three single-item writes, so
   * that the append and a seal are decided on one item each (never cached):
   *
   * 1. A claim: an `UpdateItem` of the batch's seal item setting
   *    `claim#{entryId}`, on condition that the item has no `state` (no
   *    seal started). A sealed or sealing trail refuses here.
   * 2. The entry's `PutItem` on condition that its key is free. A seal that
   *    started after the claim fences each claim it finds by putting a
   *    `fence` item at the entry's key first: of the fence and the entry,
   *    exactly one lands, so the entry is either covered by the seal or
   *    refused as sealed.
   * 3. The claim removed (`UpdateItem`) once the put landed or was refused;
   *    should that fail, the claim stays and costs the next seal one fence.
   *
   * @throws {ConflictError} When the id is taken, or the trail is sealed or being sealed.
   * @throws {RulesStoreError} When DynamoDB fails.
   *
   * @example Append an entry
   * ```ts
   * import { DynamoDBRulesStore } from "@bluestar/persistence";
   *
   * const rules = new DynamoDBRulesStore({ tableSuffix: "-dev" });
   * await rules.appendAuditEntry({
   *   entryId: "E1",
   *   batchId: "B1",
   *   timestamp: new Date().toISOString(),
   *   agent: "compliance",
   *   action: "rule_resolved",
   *   actor: "svc-compliance",
   *   details: { ruleId: "FICA_SOCIAL_SECURITY", scope: "GLOBAL" },
   * });
   * ```
   */
  appendAuditEntry(entry: AuditEntry): Promise<void> {
    return this.#run("appendAuditEntry", async () => {
      const action = `append audit entry ${quote((entry as Partial<AuditEntry> | null)?.entryId)}`;
      const copy = decodeInput(auditEntrySchema, entry, action);
      itemKeys.auditEntry(copy.batchId, copy.entryId);
      const table = this.#tables["audit-log"];
      const head = itemKeys.auditSeal(copy.batchId);
      const sealed = `the audit trail of batch ${quote(copy.batchId)} is sealed`;
      const claim = { "#claim": `${CLAIM_PREFIX}${copy.entryId}` };
      await this.#updateSealItem(
        action,
        new UpdateCommand({
          TableName: table,
          Key: head,
          UpdateExpression: "SET #claim = :claimed",
          ConditionExpression: "attribute_not_exists(#state)",
          ExpressionAttributeNames: { ...claim, "#state": "state" },
          ExpressionAttributeValues: { ":claimed": true },
        }),
        () => sealed,
      );
      try {
        // Nothing replaces an entry: a stored one that is not this call's means this call's never landed.
        await this.#put(action, table, auditEntryCodec.toItem(copy), {
          ConditionExpression: "attribute_not_exists(PK)",
          conflict: (stored) =>
            stored?.[FENCE_ATTRIBUTE] !== undefined
              ? sealed
              : `batch ${quote(copy.batchId)} already has an entry with that id`,
          replaces: () => false,
        });
      } catch (error) {
        // A put that may still land keeps its claim, so that a seal fences it; a refused one is settled.
        if (error instanceof ConflictError) await this.#unclaim(action, table, head, claim);
        throw error;
      }
      await this.#unclaim(action, table, head, claim);
    });
  }

  /** Removes an append's claim; should that fail, the claim stays and costs the next seal one refused fence. */
  async #unclaim(action: string, table: string, head: ItemKey, claim: Record<string, string>): Promise<void> {
    try {
      await this.#updateSealItem(
        action,
        new UpdateCommand({
          TableName: table,
          Key: head,
          UpdateExpression: "REMOVE #claim",
          ExpressionAttributeNames: claim,
        }),
      );
    } catch {
      // The append's outcome is decided; a claim left behind changes nothing but the next seal's work.
    }
  }

  /**
   * Sends an `UpdateItem` of the seal item, again after a backoff (up to
   * `CLAIM_MAX_ATTEMPTS` in all) when the answer was a 5xx the SDK could
   * not read as DynamoDB's, which its retry strategy does not retry (moto
   * answers so when concurrent updates of one item race inside it). Setting
   * or removing a claim, and starting a seal, are idempotent, so sending
   * them again is safe.
   */
  async #updateSealItem<Output>(action: string, command: UpdateCommand, conflict?: () => string): Promise<Output> {
    for (let attempt = 1;; attempt++) {
      try {
        return await this.#send<Output>(action, "UpdateItem", command.input.TableName!, command, conflict);
      } catch (error) {
        const cause = (error as { cause?: unknown } | null)?.cause;
        if (!isUnreadServerAnswer(cause) || attempt >= CLAIM_MAX_ATTEMPTS) throw error;
        await sleep(backoffDelay(UNPROCESSED_BACKOFF, attempt));
      }
    }
  }

  /**
   * {@linkcode IRulesStore.listAuditEntries}: one strongly consistent `Query`
   * of the batch's `ENTRY#` items per 1 MB page, every page followed; never
   * cached.
   *
   * @throws {CorruptItemError} When a stored entry does not decode.
   * @throws {RulesStoreError} When DynamoDB fails.
   *
   * @example Read a batch's audit trail
   * ```ts
   * import { DynamoDBRulesStore } from "@bluestar/persistence";
   *
   * const rules = new DynamoDBRulesStore({ tableSuffix: "-dev" });
   * const entries = await rules.listAuditEntries("B1");
   * ```
   */
  listAuditEntries(batchId: string): Promise<AuditEntry[]> {
    return this.#run("listAuditEntries", async () => {
      const partition = itemKeys.batchPartition(batchId);
      const action = `list audit entries of batch ${quote(batchId)}`;
      const table = this.#tables["audit-log"];
      const items = (await this.#queryAll(action, auditEntriesQuery(table, partition))).filter(isEntry);
      return items.map((item) => decodeStored(auditEntryCodec, table, item)).sort(compareAuditEntries);
    });
  }

  /**
   * {@linkcode IRulesStore.sealAuditTrail}, in four steps, each of which a
   * rerun after a failure completes:
   *
   * 1. A conditional `UpdateItem` of the seal item to state `sealing`: from
   *    here every append's claim is refused. A seal item already `sealed` is
   *    a `ConflictError`; one still `sealing` (an earlier seal that failed)
   *    is taken over. The item comes back with the claims of appends that
   *    may still be in flight.
   * 2. A fence (`PutItem` on condition the key is free) at each claimed
   *    entry's key: the entry landed first and is covered, or it never will.
   * 3. A strongly consistent `Query` of the entries, each hashed as stored
   *    (see `auditEntryDigest`), and with `sealFiles`, the seal copy written
   *    create-only with retention (an identical copy already there is kept).
   * 4. A conditional `UpdateItem` to state `sealed` with the root.
   *
   * @throws {ConflictError} When the batch is already sealed.
   * @throws {RulesStoreError} When DynamoDB fails (the seal item may stay `sealing`: seal again).
   * @throws {FileStoreError} When the seal copy cannot be written (likewise).
   *
   * @example Seal a batch's trail
   * ```ts
   * import { DynamoDBRulesStore } from "@bluestar/persistence";
   *
   * const rules = new DynamoDBRulesStore({ tableSuffix: "-dev" });
   * const seal = await rules.sealAuditTrail("B1", { actor: "auditor@example.com" });
   * console.log(seal.entryCount, seal.root);
   * ```
   */
  sealAuditTrail(batchId: string, options: SealAuditTrailOptions): Promise<AuditSeal> {
    return this.#run("sealAuditTrail", async () => {
      const key = itemKeys.auditSeal(batchId);
      const action = `seal the audit trail of batch ${quote(batchId)}`;
      const { actor } = decodeInput(sealAuditTrailOptionsSchema, options, action);
      const table = this.#tables["audit-log"];
      const started = await this.#updateSealItem<{ Attributes?: Item }>(
        action,
        new UpdateCommand({
          TableName: table,
          Key: key,
          UpdateExpression: "SET #state = :sealing, batchId = :batchId",
          // A seal item still `sealing` is an unfinished seal (or this call's own attempt whose answer was lost).
          ConditionExpression: "attribute_not_exists(#state) OR #state = :sealing",
          ExpressionAttributeNames: { "#state": "state" },
          ExpressionAttributeValues: { ":sealing": "sealing", ":batchId": batchId },
          ReturnValues: "ALL_NEW",
        }),
        () => "it is already sealed",
      );
      await this.#fenceClaims(action, table, batchId, started.Attributes ?? {});
      let document = sealDocument(batchId, await this.#auditLeaves(action, batchId), actor, new Date().toISOString());
      if (this.#sealFiles !== undefined) {
        document = await writeSealCopy(this.#sealFiles, document, this.#sealRetentionDays);
      }
      await this.#finishSeal(action, table, document);
      return sealOf(document);
    });
  }

  /**
   * Step 2 of a seal: a fence at the key of each entry whose append claimed
   * before the seal started and may not have landed yet. A fence refused
   * because the entry is there is the entry landing first: it is covered.
   */
  async #fenceClaims(action: string, table: string, batchId: string, sealItem: Item): Promise<void> {
    const claimed = Object.keys(sealItem).filter((name) => name.startsWith(CLAIM_PREFIX));
    await mapConcurrently(claimed, 16, async (name) => {
      const key = itemKeys.auditEntry(batchId, name.slice(CLAIM_PREFIX.length));
      try {
        await this.#send(
          action,
          "PutItem",
          table,
          new PutCommand({
            TableName: table,
            Item: { ...key, [FENCE_ATTRIBUTE]: "sealed" },
            ConditionExpression: "attribute_not_exists(PK)",
          }),
          () => "the entry landed first",
        );
      } catch (error) {
        if (!(error instanceof ConflictError)) throw error;
      }
    });
  }

  /** Step 4 of a seal: `sealing` to `sealed`, exactly once even when the SDK retried it. */
  async #finishSeal(action: string, table: string, document: AuditSealDocument): Promise<void> {
    const writeId = randomUUID();
    try {
      await this.#send(
        action,
        "UpdateItem",
        table,
        new UpdateCommand({
          TableName: table,
          Key: itemKeys.auditSeal(document.batchId),
          UpdateExpression:
            "SET #state = :sealed, batchId = :batchId, entryCount = :count, #root = :root, sealedAt = :at, actor = :actor, #format = :format, #writeId = :writeId",
          ConditionExpression: "#state = :sealing",
          ExpressionAttributeNames: {
            "#state": "state",
            "#root": "root",
            "#format": "format",
            "#writeId": WRITE_ID_ATTRIBUTE,
          },
          ExpressionAttributeValues: {
            ":sealed": "sealed",
            ":sealing": "sealing",
            ":batchId": document.batchId,
            ":count": document.entryCount,
            ":root": document.root,
            ":at": document.sealedAt,
            ":actor": document.actor,
            ":format": document.format,
            ":writeId": writeId,
          },
          ReturnValuesOnConditionCheckFailure: "ALL_OLD",
        }),
        () => "another seal finished first",
      );
    } catch (error) {
      if (error instanceof ConflictError && storedItem(error.cause)?.[WRITE_ID_ATTRIBUTE]?.S === writeId) return;
      throw error;
    }
  }

  /**
   * {@linkcode IRulesStore.verifyAuditTrail}: one strongly consistent
   * `GetItem` of the seal item, a strongly consistent `Query` of the
   * entries (hashed as stored, every attribute but the write token), and a
   * read of the seal copy's retained version; never cached.
   *
   * @throws {RulesStoreError} When DynamoDB fails.
   * @throws {FileStoreError} When the file store fails.
   *
   * @example Verify a batch's trail
   * ```ts
   * import { DynamoDBRulesStore } from "@bluestar/persistence";
   *
   * const rules = new DynamoDBRulesStore({ tableSuffix: "-dev" });
   * const verification = await rules.verifyAuditTrail("B1");
   * if (!verification.ok) console.error(verification.problems.join("\n"));
   * ```
   */
  verifyAuditTrail(batchId: string): Promise<AuditVerification> {
    return this.#run("verifyAuditTrail", async () => {
      const key = itemKeys.auditSeal(batchId);
      const action = `verify the audit trail of batch ${quote(batchId)}`;
      const table = this.#tables["audit-log"];
      const [sealItem, leaves, copy] = await Promise.all([
        this.#getItem(action, table, key, true),
        this.#auditLeaves(action, batchId),
        readSealCopy(this.#sealFiles, batchId),
      ]);
      return compareWithSeals(batchId, leaves, tableSeal(batchId, sealItem), copy);
    });
  }

  /** Every entry of a batch as stored, in listing order: its id (from its key) and its leaf hash. */
  async #auditLeaves(action: string, batchId: string): Promise<SealedEntry[]> {
    const table = this.#tables["audit-log"];
    const items = await this.#queryAll(action, auditEntriesQuery(table, itemKeys.batchPartition(batchId)));
    return items
      .filter(isEntry)
      .map((item) => {
        const { PK: _, SK, [WRITE_ID_ATTRIBUTE]: __, ...fields } = item;
        const entryId = String(SK).slice(AUDIT_ENTRY_PREFIX.length);
        return { entryId, timestamp: String(fields.timestamp), digest: auditEntryDigest(fields) };
      })
      .sort((a, b) => compareText(a.timestamp, b.timestamp) || compareText(a.entryId, b.entryId))
      .map(({ entryId, digest }) => ({ entryId, digest }));
  }

  /**
   * {@linkcode IRulesStore.getAgentConfig}: one `GetItem`; cached when found.
   * The configuration is deeply frozen.
   *
   * @throws {CorruptItemError} When the stored configuration does not decode.
   * @throws {RulesStoreError} When DynamoDB fails.
   *
   * @example Read an agent's configuration
   * ```ts
   * import { DynamoDBRulesStore } from "@bluestar/persistence";
   *
   * const rules = new DynamoDBRulesStore({ tableSuffix: "-dev" });
   * const config = await rules.getAgentConfig("calculation");
   * ```
   */
  getAgentConfig(agent: string): Promise<AgentConfig | null> {
    return this.#run("getAgentConfig", () => {
      const key = this.#cacheKeyOf("agent", () => itemKeys.agentConfig(agent), agent);
      return this.#reads.read<AgentConfig | null>(
        "agent",
        key,
        (value) => checkAgentConfig(value, agent),
        async () => {
          const table = this.#tables["agent-config"];
          const item = await this.#getItem(
            `read agent config ${quote(agent)}`,
            table,
            itemKeys.agentConfig(agent),
            false,
          );
          return item === undefined ? null : decodeStored(agentConfigCodec, table, item);
        },
      );
    });
  }

  // ---- plumbing ----------------------------------------------------------

  /**
   * The rule from the in-process tier alone, or `undefined` (not there, an
   * `asOf` to check, no version in effect: the full read decides). Two
   * lookups of remembered keys and the as-of resolution; the rule of a
   * stored version is built once.
   */
  #localCalculationRule(
    clientId: string,
    ruleId: string,
    options: RuleReadOptions | undefined,
  ): CalculationRule | undefined {
    const asOf = options?.asOf;
    if (asOf !== undefined && asOf !== this.#checkedAsOf) return undefined;
    const memoKind = calculationVersions.memoKind;
    const globalKey = this.#knownKey(memoKind, ruleId, GLOBAL_CLIENT_ID);
    if (globalKey === undefined) return undefined;
    const now = this.#reads.localNow();
    if (now === undefined) return undefined;
    const global = this.#reads.localAt<CalculationRuleHistory>("calculation", globalKey, now);
    if (global === undefined) return undefined;
    let own: CalculationRuleHistory | undefined;
    if (clientId !== GLOBAL_CLIENT_ID) {
      const ownKey = this.#knownKey(memoKind, ruleId, clientId);
      own = ownKey === undefined ? undefined : this.#reads.localAt<CalculationRuleHistory>("calculation", ownKey, now);
      if (own === undefined) return undefined;
    }
    return this.#calculationRuleAsOf(own, global, asOf ?? this.#todayUtc());
  }

  /** The rule in effect on a day, frozen, built once per stored (frozen) version. */
  #calculationRuleAsOf(
    own: CalculationRuleHistory | undefined,
    global: CalculationRuleHistory,
    day: string,
  ): CalculationRule | undefined {
    const version = calculationVersionAsOf(own?.versions ?? NO_VERSIONS, global.versions, day);
    if (version === undefined) return undefined;
    const known = this.#resolved.get(version);
    if (known !== undefined) return known;
    const rule = deepFreeze(scoped(version));
    // Only a frozen version stays as it is: a rule of one that may change is built every time.
    if (Object.isFrozen(version)) this.#resolved.set(version, rule);
    return rule;
  }

  /** Today in UTC on the store's clock, rebuilt only when the day ends. */
  #todayUtc(): string {
    const now = this.#now();
    const today = this.#today;
    if (now < today.endsAt && now >= today.endsAt - DAY_MS) return today.day;
    const day = todayUtc(() => now);
    this.#today = { day, endsAt: Date.parse(`${day}T00:00:00Z`) + DAY_MS };
    return day;
  }

  /**
   * Runs a method body as a promise: a bad argument rejects rather than
   * throws; a closed store rejects. Its end is reported as a `call` event.
   */
  #run<T>(method: RulesStoreMethod, body: () => Promise<T>): Promise<T> {
    const started = this.#reporting ? performance.now() : 0;
    let call: Promise<T>;
    try {
      if (this.#closed) throw new RulesStoreError("Failed to use the DynamoDB rules store: it is closed");
      call = body();
    } catch (error) {
      call = Promise.reject(error);
    }
    if (!this.#reporting) return call;
    return reportEnd(call, started, (end) => this.#emit({ type: "call", method, ...end }));
  }

  /**
   * The cache key of a read, after its ids are validated (`validate` throws
   * an `InvalidInputError` for a bad one). Validation is a pure function of
   * the id strings, so the key of ids that passed is remembered: the hot path
   * skips re-validating and re-encoding them. The memo is keyed by the ids
   * joined with NUL, which no valid id contains, so no other input can match.
   */
  #cacheKeyOf(kind: CacheKind, validate: () => unknown, ...ids: string[]): string {
    const known = this.#knownKey(kind, ids[0], ids[1]);
    if (known !== undefined) return known;
    validate();
    const key = cacheKey(this.#namespace, kind, ...ids);
    this.#remember(kind, ids[0], ids[1], key);
    return key;
  }

  /** Remembers the key of ids that passed validation (strings only: any other input is validated every time). */
  #remember(kind: string, first: unknown, second: unknown, key: string): void {
    if (typeof first !== "string" || (second !== undefined && typeof second !== "string")) return;
    if (this.#validatedCount >= MEMO_LIMIT) {
      this.#validatedKeys.clear();
      this.#validatedCount = 0;
    }
    let byFirst = this.#validatedKeys.get(kind);
    if (byFirst === undefined) this.#validatedKeys.set(kind, byFirst = new Map());
    let bySecond = byFirst.get(first);
    if (bySecond === undefined) byFirst.set(first, bySecond = new Map());
    bySecond.set(second ?? "", key);
    this.#validatedCount++;
  }

  /**
   * The key of ids that passed validation before, or `undefined`: nested
   * maps by kind, then each id (a one-id kind's second level is `""`, which
   * no valid id is), so a lookup allocates nothing.
   */
  #knownKey(kind: string, first: unknown, second?: unknown): string | undefined {
    if (typeof first !== "string" || (second !== undefined && typeof second !== "string")) return undefined;
    return this.#validatedKeys.get(kind)?.get(first)?.get(second ?? "");
  }

  /**
   * The owner's and GLOBAL's items of one rule (or field), through the
   * cache: one cache round trip for both entries, else ONE `BatchGetItem`.
   * An owner with nothing stored counts as an empty item, cached too, unless
   * neither has anything (an unknown rule is never cached).
   */
  #readVersions<H extends CalculationRuleHistory | ValidationRuleGroup>(
    spec: VersionsSpec<H>,
    clientId: string,
    subject: string,
  ): Promise<{ own: H | undefined; global: H }> {
    const owners = clientId === GLOBAL_CLIENT_ID ? [GLOBAL_CLIENT_ID] : [clientId, GLOBAL_CLIENT_ID];
    const keys = owners.map((owner) => this.#versionsKey(spec, owner, subject));
    const table = this.#tables[spec.codec.table];
    return this.#reads.readMany(
      spec.kind,
      keys,
      (value, index) => checkHistory(spec, value, owners[index], subject),
      async () => {
        const action = `read ${spec.what} ${quote(subject)} for client ${quote(clientId)}`;
        const items = await this.#batchGet(action, table, owners.map((owner) => spec.itemKey(owner, subject)));
        return items.map((item, index) =>
          item === undefined ? spec.empty(owners[index], subject) : decodeStored(spec.codec, table, item)
        );
      },
      (histories) => histories.some((history) => spec.versionsOf(history).length > 0),
    ).then((histories) => ({ own: histories.length > 1 ? histories[0] : undefined, global: histories.at(-1)! }));
  }

  /** The cache key of one owner's versions of a rule (or field); its ids are validated (the key builder's memo). */
  #versionsKey<H>(spec: VersionsSpec<H>, owner: string, subject: string): string {
    const known = this.#knownKey(spec.memoKind, subject, owner);
    if (known !== undefined) return known;
    spec.itemKey(owner, subject);
    const key = ruleVersionsCacheKey(this.#namespace, spec.kind, subject, owner);
    this.#remember(spec.memoKind, subject, owner, key);
    return key;
  }

  /** One owner's item of a rule (or field), strongly consistent; an empty one when nothing is stored. */
  async #history<H>(spec: VersionsSpec<H>, owner: string, subject: string): Promise<H> {
    const table = this.#tables[spec.codec.table];
    const action = `read the versions of ${spec.what} ${quote(subject)} of client ${quote(owner)}`;
    const item = await this.#getItem(action, table, spec.itemKey(owner, subject), true);
    return item === undefined ? spec.empty(owner, subject) : decodeStored(spec.codec, table, item);
  }

  /**
   * Applies one planned rule change: reads the item, plans the change on
   * it, and writes the item (on condition of the revision read) with the
   * audit record in one transaction; plans again when another writer's
   * change landed first. Writes the owner's cache entry through before it
   * returns.
   */
  async #change<H extends CalculationRuleHistory | ValidationRuleGroup, V extends Versions<H>>(
    spec: VersionsSpec<H>,
    { action, version, options }: RulePut<V>,
  ): Promise<V & { scope: RuleScope }> {
    const plan = await this.#apply<H, V>(
      spec,
      version.clientId,
      spec.subjectOf(version as V),
      { action, options },
      (stored) => planVersionChange(action, stored, version, options.expectedRevision),
    );
    return scoped(plan.change.after!);
  }

  /** Applies one planned removal, as {@linkcode DynamoDBRulesStore.#change} applies a put. */
  async #remove<H extends CalculationRuleHistory | ValidationRuleGroup, V extends Versions<H>>(
    spec: VersionsSpec<H>,
    { action, clientId, subject, ruleId, effectiveFrom, options }: RuleRemoval,
  ): Promise<V & { scope: RuleScope }> {
    const plan = await this.#apply<H, V>(
      spec,
      clientId,
      subject,
      { action, options },
      (stored) => planVersionRemoval(action, stored, ruleId, effectiveFrom, options.expectedRevision),
    );
    return scoped(plan.change.before!);
  }

  /** The loop of {@linkcode DynamoDBRulesStore.#change}: plans on the item read, writes it with the audit record. */
  async #apply<H extends CalculationRuleHistory | ValidationRuleGroup, V extends Versions<H>>(
    spec: VersionsSpec<H>,
    owner: string,
    subject: string,
    { action, options }: { action: string; options: RuleChangeOptions },
    planOn: (stored: V[]) => VersionPlan<V>,
  ): Promise<VersionPlan<V>> {
    const table = this.#tables[spec.codec.table];
    const auditTable = this.#tables["audit-log"];
    for (let attempt = 1;; attempt++) {
      const stored = await this.#history(spec, owner, subject);
      const plan = planOn(spec.versionsOf(stored) as V[]);
      const changeId = randomUUID();
      const stamp = { changeId, at: this.#changeTime(), actor: options.actor, reason: options.reason };
      const record = ruleChangeOf(plan, stamp);
      const item = spec.codec.toItem(spec.withVersions(stored, plan.versions, stored.revision + 1));
      const command = new TransactWriteCommand({
        // Idempotent for 10 minutes: an SDK retry of a transaction that landed is not applied again.
        ClientRequestToken: changeId,
        TransactItems: [
          {
            Put: {
              TableName: table,
              Item: { ...item, [WRITE_ID_ATTRIBUTE]: changeId },
              ...(stored.revision === 0 ? { ConditionExpression: "attribute_not_exists(PK)" } : {
                ConditionExpression: "#revision = :revision",
                ExpressionAttributeNames: { "#revision": "revision" },
                ExpressionAttributeValues: { ":revision": stored.revision },
              }),
            },
          },
          {
            Put: {
              TableName: auditTable,
              Item: ruleChangeCodec.toItem(record),
              ConditionExpression: "attribute_not_exists(PK)",
            },
          },
        ],
      });
      let failure: unknown;
      try {
        await this.#send(action, "TransactWriteItems", table, command);
      } catch (error) {
        failure = error;
      }
      // A failure after which the change may still have landed (a lost answer): its audit record says.
      if (failure !== undefined && !(await this.#landed(action, auditTable, ruleChangeCodec.key(record)))) {
        if (!lostToAnotherWriter(failure)) throw failure;
        if (attempt >= CHANGE_MAX_ATTEMPTS) {
          throw new RulesStoreError(
            `Failed to ${action}: other writers changed the rule first ${attempt} times in a row; nothing changed`,
            { cause: (failure as { cause?: unknown }).cause },
          );
        }
        this.#emit({ type: "rules.contention", table, attempt });
        await sleep(backoffDelay(CHANGE_BACKOFF, attempt));
        continue;
      }
      const key = this.#versionsKey(spec, owner, subject);
      const written = decodeStored(spec.codec, table, item);
      // The item as it now stands (its revision was the condition) goes to the cache for the readers the
      // bus tells; an owner left with no version is only invalidated (a rule with none is never cached).
      if (spec.versionsOf(written).length > 0) {
        await this.#reads.writeThrough(spec.kind, key, written, stored.revision + 1);
      } else {
        await this.#reads.invalidate(spec.kind, [key]);
      }
      return plan;
    }
  }

  /** Whether an audit record is stored: the change it records landed. */
  async #landed(action: string, table: string, key: ItemKey): Promise<boolean> {
    return (await this.#getItem(`${action}: check whether it landed`, table, key, true)) !== undefined;
  }

  /** Sends a command; every failure becomes a library error (see {@linkcode storeError}). */
  async #send<Output>(
    action: string,
    operation: DynamoDBOperation,
    table: string,
    command: BatchGetCommand | GetCommand | PutCommand | QueryCommand | TransactWriteCommand | UpdateCommand,
    conflict?: (error: unknown) => string,
  ): Promise<Output> {
    if (this.#reporting) this.#emit({ type: "dynamodb.request", operation, table });
    const started = performance.now();
    try {
      // One call site for six command types: the overloads of `send` take one at a time.
      const output = await this.#documents.send(command as GetCommand) as unknown as Output;
      if (this.#reporting) this.#emit({ type: "dynamodb.response", operation, table, ...endedOk(started) });
      return output;
    } catch (error) {
      // Resolved on failure only: where the request went, for the message (a missing table, a foreign answer).
      const target = error instanceof BlueStarError
        ? undefined
        : { ...(await clientTarget("DynamoDB", this.#documents.config)), table, tableSuffix: this.#namespace };
      const failure = storeError(action, error, this.#secrets, conflict, target);
      if (this.#reporting) {
        const end = endedWith(started, failure);
        const awsError = error instanceof BlueStarError ? undefined : awsErrorName(error);
        this.#emit({ type: "dynamodb.response", operation, table, awsError, ...end });
      }
      throw failure;
    }
  }

  async #getItem(action: string, table: string, key: ItemKey, consistent: boolean): Promise<Item | undefined> {
    const output = await this.#send<{ Item?: Item }>(
      action,
      "GetItem",
      table,
      new GetCommand({ TableName: table, Key: { ...key }, ConsistentRead: consistent }),
    );
    return output.Item;
  }

  /**
   * Puts an item; with a condition, exactly one outcome even when the SDK
   * retried it. The item carries a write token, fresh per call and the same
   * on each of its SDK retries, and a lost condition returns the stored item
   * (`ALL_OLD`):
   * - the stored item carries this call's token: an earlier attempt landed
   *   and only its answer was lost, so the write succeeded;
   * - an earlier attempt may have landed (its failure was not DynamoDB's
   *   own 4xx refusal) and the stored item is one that could have replaced
   *   it since (`condition.replaces`): whether this write ever landed cannot
   *   be known, a `RulesStoreError` saying so, not a `ConflictError` that
   *   would have a caller apply its update again;
   * - otherwise another writer's item stands and this call changed nothing:
   *   a `ConflictError`, even when that item equals this one byte for byte.
   */
  async #put(action: string, table: string, item: Item, condition?: PutCondition): Promise<void> {
    if (condition === undefined) {
      await this.#send(action, "PutItem", table, new PutCommand({ TableName: table, Item: item }));
      return;
    }
    const { conflict, replaces, applied: _, ...expression } = condition;
    const writeId = randomUUID();
    const command = new PutCommand({
      TableName: table,
      Item: { ...item, [WRITE_ID_ATTRIBUTE]: writeId },
      ...expression,
      ReturnValuesOnConditionCheckFailure: "ALL_OLD",
    });
    const attempts = watchAttempts(command);
    try {
      await this.#send(action, "PutItem", table, command, (error) => conflict(storedItem(error)));
    } catch (error) {
      if (!(error instanceof ConflictError)) throw error;
      const stored = storedItem(error.cause);
      if (stored?.[WRITE_ID_ATTRIBUTE]?.S === writeId) return;
      if (stored !== undefined && condition.applied?.(stored)) return;
      const landed = attempts.mayHaveLanded();
      if (landed !== undefined && stored !== undefined && replaces(stored)) {
        throw new RulesStoreError(
          `Failed to ${action}: the outcome is unknown: an earlier attempt may have landed (it failed with ${
            describeAwsError(landed, this.#secrets)
          }) and another writer has written since (${conflict(stored)}); read before writing again`,
          { cause: safeCause(error.cause, this.#secrets) },
        );
      }
      throw error;
    }
  }

  /** Every record of one partition of a codec's table, every page, decoded. */
  async #queryPartition<T>(action: string, codec: ItemCodec<T>, partition: string, consistent: boolean): Promise<T[]> {
    const table = this.#tables[codec.table];
    const items = await this.#queryAll(action, {
      TableName: table,
      KeyConditionExpression: "PK = :pk",
      ExpressionAttributeValues: { ":pk": partition },
      ConsistentRead: consistent,
    });
    return items.map((item) => decodeStored(codec, table, item));
  }

  /** Every item of a query, following `LastEvaluatedKey` through every page. */
  async #queryAll(action: string, input: QueryCommandInput): Promise<Item[]> {
    const items: Item[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const output = await this.#send<{ Items?: Item[]; LastEvaluatedKey?: Record<string, unknown> }>(
        action,
        "Query",
        input.TableName!,
        new QueryCommand({ ...input, ExclusiveStartKey: start }),
      );
      if (output.Items !== undefined) items.push(...output.Items);
      start = output.LastEvaluatedKey;
    } while (start !== undefined);
    return items;
  }

  /**
   * The items of some keys of one table, in the order of the keys
   * (`undefined`: not stored), from ONE `BatchGetItem`, asking again for
   * unprocessed keys.
   */
  async #batchGet(action: string, table: string, keys: readonly ItemKey[]): Promise<Array<Item | undefined>> {
    const found: Item[] = [];
    let pending: Array<Record<string, unknown>> = keys.map((key) => ({ ...key }));
    for (let attempt = 1;; attempt++) {
      const output = await this.#send<{
        Responses?: Record<string, Item[]>;
        UnprocessedKeys?: Record<string, { Keys?: Array<Record<string, unknown>> }>;
      }>(
        action,
        "BatchGetItem",
        table,
        // Strongly consistent: a read after a change has returned sees it, cached or not.
        new BatchGetCommand({ RequestItems: { [table]: { Keys: pending, ConsistentRead: true } } }),
      );
      found.push(...(output.Responses?.[table] ?? []));
      const unprocessed = output.UnprocessedKeys?.[table]?.Keys ?? [];
      if (unprocessed.length === 0) break;
      if (attempt >= UNPROCESSED_MAX_ATTEMPTS) {
        throw new RulesStoreError(
          `Failed to ${action}: ${unprocessed.length} of ${keys.length} keys still unprocessed after ${attempt} attempts`,
        );
      }
      this.#emit({ type: "dynamodb.unprocessed", table, keys: unprocessed.length, attempt });
      await sleep(backoffDelay(UNPROCESSED_BACKOFF, attempt));
      pending = unprocessed;
    }
    return keys.map((key) => found.find((item) => item.PK === key.PK && item.SK === key.SK));
  }
}

/** The in-process tier's settings from the (checked) options; `undefined`: off. */
function localCacheOf(options: DynamoDBRulesStoreOptions): { maxEntries: number; ttlSeconds: number } | undefined {
  const given = options.localCache;
  if (given === false || (given === undefined && options.invalidationBus === undefined)) return undefined;
  const { maxEntries = DEFAULT_LOCAL_CACHE.maxEntries, ttlSeconds = DEFAULT_LOCAL_CACHE.ttlSeconds } = given ?? {};
  return maxEntries === 0 ? undefined : { maxEntries, ttlSeconds };
}

/** Whether a failed read is an outage a stale value may stand in for: not an answer such as "not found". */
function isOutage(error: unknown): boolean {
  return error instanceof RulesStoreError && !(error instanceof RuleNotFoundError) &&
    !(error instanceof PipelineNotFoundError) && !(error instanceof IrsLimitsNotFoundError) &&
    !(error instanceof CorruptItemError) && !(error instanceof ConflictError);
}

/** The versions an item of a kind holds. */
type Versions<H> = H extends CalculationRuleHistory ? CalculationRuleVersion : ValidationRuleVersion;

/** What differs between the items of calculation rules and of validation rules, for reads and changes. */
interface VersionsSpec<H> {
  /** What the cache calls it. */
  kind: "calculation" | "validation";
  /** Where the key memo keeps its keys: a name no other kind of key has. */
  memoKind: string;
  /** What messages call it. */
  what: string;
  /** The item's codec. */
  codec: ItemCodec<H>;
  /** The item's key, from its owner and subject (rule id or field); validates both. */
  itemKey(owner: string, subject: string): ItemKey;
  /** The item's subject. */
  subjectOf(history: { ruleId?: string; field?: string }): string;
  /** An owner's item when nothing is stored: no versions, revision 0. */
  empty(owner: string, subject: string): H;
  /** The versions an item holds. */
  versionsOf(history: H): Versions<H>[];
  /** The item with other versions and revision. */
  withVersions(history: H, versions: readonly Versions<H>[], revision: number): H;
}

const calculationVersions: VersionsSpec<CalculationRuleHistory> = {
  kind: "calculation",
  memoKind: "calculation@versions",
  what: "calculation rule",
  codec: calculationRuleHistoryCodec,
  itemKey: (owner, ruleId) => itemKeys.calculationRule(owner, ruleId),
  subjectOf: (history) => history.ruleId!,
  empty: (clientId, ruleId) => ({ clientId, ruleId, revision: 0, versions: [] }),
  versionsOf: (history) => history.versions,
  withVersions: (history, versions, revision) => ({ ...history, versions: [...versions], revision }),
};

const validationVersions: VersionsSpec<ValidationRuleGroup> = {
  kind: "validation",
  memoKind: "validation@versions",
  what: "validation rules of field",
  codec: validationRuleGroupCodec,
  itemKey: (owner, field) => itemKeys.validationRules(owner, field),
  subjectOf: (history) => history.field!,
  empty: (clientId, field) => ({ clientId, field, revision: 0, rules: [] }),
  versionsOf: (history) => history.rules,
  withVersions: (history, rules, revision) => ({ ...history, rules: [...rules], revision }),
};

/**
 * Whether a failed rule change lost to another writer: its transaction was
 * cancelled (the item's revision moved on, or a concurrent transaction held
 * the item), so it is to be planned again on what is stored now.
 */
function lostToAnotherWriter(error: unknown): boolean {
  const name = (error as { cause?: { name?: unknown } } | null)?.cause?.name;
  return name === "TransactionCanceledException" || name === "TransactionConflictException";
}

/** A stored item as a lost condition returns it: raw attribute values (the document client leaves them so). */
type StoredItem = Record<string, { S?: unknown; N?: unknown; L?: Array<{ S?: unknown } | undefined> } | undefined>;

/** A conditional put: its condition, and what a lost condition means. */
interface PutCondition {
  ConditionExpression: string;
  ExpressionAttributeNames?: Record<string, string>;
  ExpressionAttributeValues?: Record<string, unknown>;
  /** Why the condition was lost, for the `ConflictError`, from the stored item (`undefined`: none is stored). */
  conflict(stored: StoredItem | undefined): string;
  /** Whether the stored item can have replaced this write's own, had an earlier attempt of it landed. */
  replaces(stored: StoredItem): boolean;
  /** Whether the stored item shows that this write landed before (it remembers its idempotency key). */
  applied?(stored: StoredItem): boolean;
}

/** The attribute name prefix of an append's claim on the seal item. */
const CLAIM_PREFIX = "claim#";
/** The attribute of a fence: the item a seal puts at a claimed entry's key, so that the entry cannot land after it. */
const FENCE_ATTRIBUTE = "fence";

/** How often a claim's update is sent when its answer cannot be read. */
const CLAIM_MAX_ATTEMPTS = 5;

/** Whether an item under `ENTRY#` is an entry, not a seal's fence. */
function isEntry(item: Item): boolean {
  return item[FENCE_ATTRIBUTE] === undefined;
}

/** The query of a batch's audit entries: its `ENTRY#` items, not its seal. */
function auditEntriesQuery(table: string, partition: string): QueryCommandInput {
  return {
    TableName: table,
    KeyConditionExpression: "PK = :pk AND begins_with(SK, :entries)",
    ExpressionAttributeValues: { ":pk": partition, ":entries": AUDIT_ENTRY_PREFIX },
    ConsistentRead: true,
  };
}

/** The seal in the seal item, or the sentence saying why there is none to use. */
function tableSeal(batchId: string, item: Item | undefined): AuditSeal | string | undefined {
  // A seal item without a state holds only the claims of appends in flight.
  if (item === undefined || item.state === undefined) return undefined;
  if (item.state === "sealing") return unfinishedSeal(batchId);
  const seal = {
    batchId: item.batchId,
    entryCount: item.entryCount === undefined ? undefined : Number(String(item.entryCount)),
    root: item.root,
    sealedAt: item.sealedAt,
    actor: item.actor,
  };
  const problem = item.state === "sealed" ? sealProblem(seal) : `its state ${quote(item.state)} is not "sealed"`;
  return problem === undefined
    ? seal as AuditSeal
    : `The seal of batch ${quote(batchId)} in the audit-log table is corrupt: ${problem}`;
}

/** The stored item a lost condition returned (`ReturnValuesOnConditionCheckFailure: ALL_OLD`). */
function storedItem(error: unknown): StoredItem | undefined {
  const item = (error as { Item?: unknown } | null | undefined)?.Item;
  return typeof item === "object" && item !== null ? item as StoredItem : undefined;
}

/**
 * Watches the attempts of one command on the wire (the deserialize step runs
 * inside the SDK's retry loop, once per attempt) and keeps the first failure
 * after which the request may have been applied: anything but DynamoDB's own
 * 4xx answer (throttling, validation, a lost condition), which it gives only
 * to a request it did not apply. A 500, a reset connection or a timeout may
 * come after the write landed.
 */
function watchAttempts(command: PutCommand): { mayHaveLanded(): unknown } {
  let landed: unknown;
  command.middlewareStack.add(
    (next) => async (args) => {
      try {
        return await next(args);
      } catch (error) {
        const { $fault, $metadata } = (error ?? {}) as { $fault?: unknown; $metadata?: { httpStatusCode?: unknown } };
        const status = $metadata?.httpStatusCode;
        const refused = $fault !== undefined && typeof status === "number" && status >= 400 && status < 500;
        if (!refused) landed ??= error;
        throw error;
      }
    },
    // `override`: the document client applies a command's own stack twice (once per command layer).
    { step: "deserialize", priority: "high", name: "bluestarWatchAttempts", override: true },
  );
  return { mayHaveLanded: () => landed };
}

/**
 * The one mapping from a failed request to a library error: a library error
 * stays as it is; a lost condition, when the caller expects one, is a
 * `ConflictError`; anything else is a `RulesStoreError`. The SDK error is
 * kept as `cause` (a redacted copy when it shows signing material, see
 * `safeCause`), and the message never shows a credential; with the target,
 * it names the table, endpoint and region where that is the problem (see
 * `describeAwsError`).
 */
function storeError(
  action: string,
  error: unknown,
  secrets: readonly string[],
  conflict?: (error: unknown) => string,
  target?: AwsTarget,
): BlueStarError {
  if (error instanceof BlueStarError) return error;
  if (conflict !== undefined && (error as { name?: unknown } | null)?.name === "ConditionalCheckFailedException") {
    // DynamoDB's verdict on the stored item, not on the request's signature: kept as it is.
    return new ConflictError(`Failed to ${action}: ${conflict(error)}`, { cause: error });
  }
  return new RulesStoreError(`Failed to ${action}: ${describeAwsError(error, secrets, target)}`, {
    cause: safeCause(error, secrets),
  });
}

/**
 * Decodes an item with the shared codec, and checks that its attributes are
 * those of the key it is stored under (a rule stored under another client
 * would otherwise answer with the wrong scope).
 */
function decodeStored<T>(codec: ItemCodec<T>, table: string, item: Item): T {
  const record = decodeItem(codec, table, item);
  let key: ItemKey | undefined;
  try {
    key = codec.key(record);
  } catch {
    key = undefined;
  }
  if (key === undefined || key.PK !== item.PK || key.SK !== item.SK) {
    throw new CorruptItemError(
      `Item ${quote(`${String(item.PK)} / ${String(item.SK)}`)} in table ${quote(table)} is corrupt: ${
        key === undefined ? "its ids are not valid" : `its attributes belong to key ${quote(`${key.PK} / ${key.SK}`)}`
      }`,
    );
  }
  return record;
}

/** Every problem with the store's options. */
/** A bus, when given, is an object with the methods of {@linkcode IInvalidationBus}. */
function invalidationBusProblems(option: string, bus: unknown): OptionProblem[] {
  if (bus === undefined) return [];
  const methods = ["publish", "listen", "isLive", "close"];
  const valid = typeof bus === "object" && bus !== null &&
    methods.every((name) => typeof (bus as Record<string, unknown>)[name] === "function");
  return valid ? [] : [{ option, problem: "is not an invalidation bus (publish, listen, isLive, close)" }];
}

function storeOptionProblems(options: DynamoDBRulesStoreOptions): OptionProblem[] {
  const problems = [
    ...tableSuffixProblems("tableSuffix", options.tableSuffix ?? ""),
    ...(options.cacheTtlSeconds === undefined ? [] : ttlSecondsProblems("cacheTtlSeconds", options.cacheTtlSeconds)),
    ...(options.cacheTimeoutMs === undefined ? [] : timeoutMsProblems("cacheTimeoutMs", options.cacheTimeoutMs)),
    ...(options.maxAttempts === undefined ? [] : integerProblems("maxAttempts", options.maxAttempts, 1, 100)),
    ...(options.region === undefined ? [] : regionProblems("region", options.region)),
    ...(options.endpointUrl === undefined ? [] : endpointUrlProblems("endpointUrl", options.endpointUrl)),
    ...hookProblems("onEvent", options.onEvent),
    ...hookProblems("now", options.now),
    ...localCacheProblems("localCache", options.localCache),
    ...(options.staleIfErrorSeconds === undefined
      ? []
      : secondsProblems("staleIfErrorSeconds", options.staleIfErrorSeconds, "non-negative")),
    ...invalidationBusProblems("invalidationBus", options.invalidationBus),
    ...sealOptionProblems(options),
  ];
  if (options.client !== undefined) {
    const client = options.client as Partial<DynamoDBClient> | null;
    if (typeof client?.send !== "function" || typeof client.config !== "object" || !client.middlewareStack) {
      problems.push({ option: "client", problem: "is not a DynamoDBClient or DynamoDBDocumentClient" });
    }
    const brought = ["region", "endpointUrl", "credentials", "maxAttempts"] as const;
    problems.push(...clashProblems(options, brought, "client", "the client brings its own"));
  }
  return problems;
}

function byStep(a: PipelineStep, b: PipelineStep): number {
  return a.step - b.step;
}

function byStepId(a: ProcessingResult, b: ProcessingResult): number {
  return compareText(a.step, b.step);
}

// ---- checks of cached values: the schema, then the ids asked for ----------

/** Decodes a cached item of versions, and checks it is the owner's, of the subject asked for. */
function checkHistory<H>(spec: VersionsSpec<H>, value: unknown, owner: string, subject: string): Decoded<H> {
  const decoded = spec.codec.schema.decode(value, "cached");
  if (!decoded.ok) return decoded;
  const history = decoded.value as { clientId: string; ruleId?: string; field?: string };
  const problems: Problem[] = [];
  if (history.clientId !== owner) problems.push({ path: "cached.clientId", message: `it is not ${quote(owner)}` });
  if (spec.subjectOf(history) !== subject) problems.push({ path: "cached", message: `it is not of ${quote(subject)}` });
  return problems.length === 0 ? decoded : { ok: false, problems };
}

/** Decodes every element of a cached list; the elements, or every problem. */
function decodeList<T>(value: unknown, decode: (element: unknown, path: string) => Decoded<T>): Decoded<T[]> {
  if (!Array.isArray(value)) return { ok: false, problems: [{ path: "cached", message: "it is not an array" }] };
  const elements: T[] = [];
  const problems: Problem[] = [];
  value.forEach((element, index) => {
    const decoded = decode(element, `cached[${index}]`);
    if (decoded.ok) elements.push(decoded.value);
    else problems.push(...decoded.problems);
  });
  return problems.length === 0 ? { ok: true, value: elements } : { ok: false, problems };
}

function checkPipeline(value: unknown, planId: string): Decoded<PipelineStep[]> {
  const decoded = decodeList(value, (element, path) => pipelineStepSchema.decode(element, path));
  if (!decoded.ok) return decoded;
  const steps = decoded.value;
  const problems: Problem[] = steps.length === 0 ? [{ path: "cached", message: "it is empty" }] : [];
  steps.forEach((step, index) => {
    const path = `cached[${index}]`;
    if (step.planId !== planId) problems.push({ path: `${path}.planId`, message: `it is not ${quote(planId)}` });
    if (index > 0 && steps[index - 1].step >= step.step) {
      problems.push({ path: `${path}.step`, message: "it is not after the previous step" });
    }
  });
  return problems.length === 0 ? decoded : { ok: false, problems };
}

function checkIrsLimits(value: unknown, year: number): Decoded<IrsLimits> {
  const decoded = irsLimitsSchema.decode(value, "cached");
  if (!decoded.ok || decoded.value.year === year) return decoded;
  return { ok: false, problems: [{ path: "cached.year", message: `it is not ${year}` }] };
}

function checkAgentConfig(value: unknown, agent: string): Decoded<AgentConfig> {
  const decoded = agentConfigSchema.decode(value, "cached");
  if (!decoded.ok || decoded.value.agent === agent) return decoded;
  return { ok: false, problems: [{ path: "cached.agent", message: `it is not ${quote(agent)}` }] };
}
