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
  RulesStoreError,
} from "../core/errors.ts";
import { guardHook } from "../core/hooks.ts";
import {
  cacheKey,
  type CacheKind,
  GLOBAL_CLIENT_ID,
  type ItemKey,
  itemKeys,
  ruleVersionsCacheKey,
} from "../core/keys.ts";
import type { ICacheBackend, IRulesStore } from "../core/protocols.ts";
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
} from "../core/schema.ts";
import {
  calculationRuleAsOf,
  changeClock,
  checkBatchStatus,
  checkExpectedVersion,
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
import { type CallEnd, endedOk, endedWith, reportEnd } from "../core/call_end.ts";
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
import { awsErrorName, type AwsTarget, clientTarget, describeAwsError, safeCause } from "./aws_errors.ts";
import { ReadThroughCache, type ReadThroughEvent } from "./read_through.ts";
import {
  clashProblems,
  DEFAULT_CACHE_TTL_SECONDS,
  endpointUrlProblems,
  hookProblems,
  integerProblems,
  type OptionProblem,
  optionProblemsText,
  regionProblems,
  tableSuffixProblems,
  timeoutMsProblems,
  ttlSecondsProblems,
} from "./options.ts";

/** The DynamoDB operations the store sends. */
export type DynamoDBOperation = "GetItem" | "BatchGetItem" | "Query" | "PutItem" | "TransactWriteItems";

/**
 * What a {@linkcode DynamoDBRulesStore} reports through its `onEvent` hook.
 * Events are information only: a hook that throws or returns a rejected
 * promise changes nothing (see `guardHook`).
 *
 * - `cache.hit`, `cache.miss`, `cache.corrupt`, `cache.error`: the read
 *   through the cache (see {@linkcode ReadThroughEvent}); a read that misses
 *   goes to DynamoDB, and `cache.error` comes from a cache call that failed
 *   or took longer than `cacheTimeoutMs`.
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
export interface DynamoDBRulesStoreOptions {
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

/** The default of {@linkcode DynamoDBRulesStoreOptions.cacheTimeoutMs}. */
const DEFAULT_CACHE_TIMEOUT_MS = 50;
/** How often a rule change is planned and written again after losing its write to another writer's, the first time included. */
const CHANGE_MAX_ATTEMPTS = 40;
/** The backoff before planning a rule change again (full jitter). */
const CHANGE_BACKOFF: Backoff = { baseDelayMs: 5, maxDelayMs: 250 };

/** How many validated ids the hot-path memo keeps before it starts over. */
const MEMO_LIMIT = 10_000;

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
 * - `saveBatchState` with `expectedVersion`, `appendAuditEntry`: one
 *   conditional `PutItem`; losing the condition is a `ConflictError` and
 *   changes nothing. Nothing updates or deletes an audit entry. Each such
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
 * keyed by `ruleVersionsCacheKey`; a change invalidates its owner's entry
 * before it returns, and write-backs are fenced by the key's generation),
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
  readonly #validatedKeys = new Map<string, string>();
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
    if (problems.length > 0) {
      throw new ConfigError(`Invalid DynamoDB rules store options: ${optionProblemsText(problems)}`);
    }

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
   * page followed; cached.
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
   * date and a GLOBAL change reaches every client through one key.
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
      const day = asOfDay(options, () => todayUtc(this.#now));
      const groups = await this.#readVersions(validationVersions, clientId, field);
      return validationRulesAsOf(groups.own?.rules ?? [], groups.global.rules, day);
    });
  }

  /**
   * {@linkcode IRulesStore.getCalculationRule}: the client's and GLOBAL's
   * items for the rule, holding every version, from one `BatchGetItem` when
   * not cached; cached per owner and rule (a client without an override
   * caches its emptiness), so one entry answers every date.
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
    return this.#run("getCalculationRule", async () => {
      const day = asOfDay(options, () => todayUtc(this.#now));
      const histories = await this.#readVersions(calculationVersions, clientId, ruleId);
      const rule = calculationRuleAsOf(histories.own?.versions ?? [], histories.global.versions, day);
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
   * never applied twice. Then the owner's cache entry is invalidated.
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
   * {@linkcode IRulesStore.getIrsLimits}: one `GetItem`; cached.
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
      checkExpectedVersion(action, batchId, copy, expectedVersion);
      const table = this.#tables["batch-state"];
      const item = batchStateCodec.toItem(copy);
      if (expectedVersion === undefined) {
        await this.#put(action, table, item);
      } else {
        const storedVersion = (stored: StoredItem | undefined) => Number(stored?.version?.N ?? 0);
        await this.#put(action, table, item, {
          ...(expectedVersion === 0 ? { ConditionExpression: "attribute_not_exists(PK)" } : {
            ConditionExpression: "#version = :expected",
            ExpressionAttributeNames: { "#version": "version" },
            ExpressionAttributeValues: { ":expected": expectedVersion },
          }),
          conflict: (stored) => `expected version ${expectedVersion}, stored version is ${storedVersion(stored)}`,
          // Every conditional save raises the version, so only a later version can have replaced this one.
          replaces: (stored) => storedVersion(stored) > copy.version,
        });
      }
    });
  }

  /**
   * {@linkcode IRulesStore.getBatchState}: one strongly consistent `GetItem`;
   * never cached.
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
   * {@linkcode IRulesStore.appendAuditEntry}: one `PutItem` on condition that
   * the id is free; never cached.
   *
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
      // Nothing replaces an entry: a stored one that is not this call's means this call's never landed.
      await this.#put(action, this.#tables["audit-log"], auditEntryCodec.toItem(copy), {
        ConditionExpression: "attribute_not_exists(PK)",
        conflict: () => `batch ${quote(copy.batchId)} already has an entry with that id`,
        replaces: () => false,
      });
    });
  }

  /**
   * {@linkcode IRulesStore.listAuditEntries}: one strongly consistent `Query`
   * per 1 MB page, every page followed; never cached.
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
      return (await this.#queryPartition(action, auditEntryCodec, partition, true)).sort(compareAuditEntries);
    });
  }

  /**
   * {@linkcode IRulesStore.getAgentConfig}: one `GetItem`; cached when found.
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
   * Runs a method body as a promise: a bad argument rejects rather than
   * throws; a closed store rejects. Its end is reported as a `call` event.
   */
  #run<T>(method: RulesStoreMethod, body: () => Promise<T>): Promise<T> {
    const started = performance.now();
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
    let memo: string | undefined = kind;
    for (const id of ids) {
      if (typeof id !== "string") {
        memo = undefined;
        break;
      }
      memo += `\u0000${id}`;
    }
    const known = memo === undefined ? undefined : this.#validatedKeys.get(memo);
    if (known !== undefined) return known;
    validate();
    const key = cacheKey(this.#namespace, kind, ...ids);
    if (memo !== undefined) {
      if (this.#validatedKeys.size >= MEMO_LIMIT) this.#validatedKeys.clear();
      this.#validatedKeys.set(memo, key);
    }
    return key;
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
    const action = `read ${spec.what} ${quote(subject)} for client ${quote(clientId)}`;
    return this.#reads.readMany(
      spec.kind,
      keys,
      (value, index) => checkHistory(spec, value, owners[index], subject),
      async () => {
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
    // Memoised like #cacheKeyOf's keys, under a name no id can make ("{" then NUL-joined ids).
    const memo = typeof owner === "string" && typeof subject === "string"
      ? `{${spec.kind}\u0000${subject}\u0000${owner}`
      : undefined;
    const known = memo === undefined ? undefined : this.#validatedKeys.get(memo);
    if (known !== undefined) return known;
    spec.itemKey(owner, subject);
    const key = ruleVersionsCacheKey(this.#namespace, spec.kind, subject, owner);
    if (memo !== undefined) {
      if (this.#validatedKeys.size >= MEMO_LIMIT) this.#validatedKeys.clear();
      this.#validatedKeys.set(memo, key);
    }
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
   * change landed first. Invalidates the owner's cache entry before it
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
      await this.#reads.invalidate(spec.kind, [this.#versionsKey(spec, owner, subject)]);
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
    command: BatchGetCommand | GetCommand | PutCommand | QueryCommand | TransactWriteCommand,
    conflict?: (error: unknown) => string,
  ): Promise<Output> {
    if (this.#reporting) this.#emit({ type: "dynamodb.request", operation, table });
    const started = performance.now();
    try {
      // One call site for four command types: the overloads of `send` take one at a time.
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
    const { conflict, replaces, ...expression } = condition;
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

/** The versions an item of a kind holds. */
type Versions<H> = H extends CalculationRuleHistory ? CalculationRuleVersion : ValidationRuleVersion;

/** What differs between the items of calculation rules and of validation rules, for reads and changes. */
interface VersionsSpec<H> {
  /** What the cache calls it. */
  kind: "calculation" | "validation";
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
type StoredItem = Record<string, { S?: unknown; N?: unknown } | undefined>;

/** A conditional put: its condition, and what a lost condition means. */
interface PutCondition {
  ConditionExpression: string;
  ExpressionAttributeNames?: Record<string, string>;
  ExpressionAttributeValues?: Record<string, unknown>;
  /** Why the condition was lost, for the `ConflictError`, from the stored item (`undefined`: none is stored). */
  conflict(stored: StoredItem | undefined): string;
  /** Whether the stored item can have replaced this write's own, had an earlier attempt of it landed. */
  replaces(stored: StoredItem): boolean;
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
