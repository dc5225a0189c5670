/**
 * One rule per option, in one place. Each rule is a small parser from an
 * option's name and value to its problems; the configuration, every
 * backend and the seed command compose them, so a table suffix, an
 * endpoint URL or a TTL is accepted or refused alike wherever it is given.
 *
 * A problem names the option as it came (`tableSuffix`,
 * `BLUESTAR_TABLE_SUFFIX`, `--table-suffix`), the value as it may be shown
 * (a URL with its userinfo `[redacted]`), and what is wrong: a predicate
 * (`is not a region name (like "us-east-1")`), or a colon and a clause
 * (`: it may hold only letters, ...`).
 *
 * @module
 */

import { quote, redactUrl } from "../core/errors.ts";
import { bucketNameProblem } from "../core/keys.ts";
import { MAX_TIMER_MS } from "../core/time.ts";
import { MAX_TTL_SECONDS } from "../core/values.ts";
import { tableName, TABLES } from "./tables.ts";

/** One thing wrong with one option. */
export interface OptionProblem {
  /** The name the value came by: an option, an environment variable or a command-line flag. */
  option: string;
  /** The value as a message may show it (a URL redacted), or `undefined` when none is shown. */
  value?: string;
  /**
   * What is wrong, as the words after the value: a predicate (`is not a region name (like "us-east-1")`),
   * or a colon and a clause (`: it may hold only letters, digits, ...`).
   */
  problem: string;
}

/** The cache TTL when none is configured, in seconds. */
export const DEFAULT_CACHE_TTL_SECONDS = 300;

/** How long a read waits for the cache when nothing else is configured, in milliseconds. */
export const DEFAULT_CACHE_TIMEOUT_MS = 50;

/** The highest database number Redis can have (`databases` is at most 2^31 - 1, numbered from 0). */
export const MAX_REDIS_DB = 2_147_483_646;

const SUFFIX_CHARACTERS = /^[A-Za-z0-9_.-]*$/;
const LONGEST_TABLE_NAME = Math.max(...TABLES.map((table) => tableName(table.name, "").length));
const REGION = /^[a-z]{2}(-[a-z]+)+-\d+$/;
const LOCAL_ENDPOINT_EXAMPLE = quote("http://127.0.0.1:4566");

/**
 * A problem as a message fragment: the name, the quoted value, the predicate.
 *
 * @param problem The problem.
 * @returns `region "mars" is not a region name (like "us-east-1")`.
 *
 * @example Show a problem
 * ```ts
 * import { optionProblemText, regionProblems } from "./options.ts";
 *
 * console.assert(optionProblemText(regionProblems("region", "mars")[0]).startsWith('region "mars" is not'));
 * ```
 */
export function optionProblemText(problem: OptionProblem): string {
  const value = problem.value === undefined ? "" : ` ${quote(problem.value)}`;
  return `${problem.option}${value}${problem.problem.startsWith(":") ? "" : " "}${problem.problem}`;
}

/**
 * What is wrong as a clause about the value: `it is not a region name`,
 * `it may hold only ...`.
 *
 * @param problem The problem.
 * @returns The clause.
 *
 * @example A clause
 * ```ts
 * import { problemClause, regionProblems } from "./options.ts";
 *
 * console.assert(problemClause(regionProblems("region", "mars")[0]).startsWith("it is not a region name"));
 * ```
 */
export function problemClause(problem: OptionProblem): string {
  return problem.problem.startsWith(":") ? problem.problem.slice(1).trimStart() : `it ${problem.problem}`;
}

/**
 * Every problem as one message fragment, `; `-separated.
 *
 * @param problems The problems.
 * @returns The fragment.
 *
 * @example Join problems
 * ```ts
 * import { optionProblemsText, tableSuffixProblems, ttlSecondsProblems } from "./options.ts";
 *
 * const text = optionProblemsText([...tableSuffixProblems("tableSuffix", "dev"), ...ttlSecondsProblems("ttl", 0)]);
 * console.assert(text.includes("; ttl"));
 * ```
 */
export function optionProblemsText(problems: readonly OptionProblem[]): string {
  return problems.map(optionProblemText).join("; ");
}

/**
 * A problem as a command line's usage error: `Invalid region "us east 1"
 * (--region): it is not a region name (like "us-east-1")`.
 *
 * @param label What the value is, in words (`table suffix`, `endpoint URL`).
 * @param problem The problem.
 * @param source Where the value came from, when that is not plain (`AWS_REGION` for a region the flags left out).
 * @returns The message.
 *
 * @example A usage error
 * ```ts
 * import { regionProblems, usageProblemText } from "./options.ts";
 *
 * const [problem] = regionProblems("--region", "mars");
 * console.assert(usageProblemText("region", problem, "--region").startsWith('Invalid region "mars" (--region): it is'));
 * ```
 */
export function usageProblemText(label: string, problem: OptionProblem, source?: string): string {
  const value = problem.value === undefined ? "" : ` ${quote(problem.value)}`;
  return `Invalid ${label}${value}${source === undefined ? "" : ` (${source})`}: ${problemClause(problem)}`;
}

function problemOf(option: string, value: unknown, problem: string | undefined): OptionProblem[] {
  return problem === undefined ? [] : [{ option, value: String(value), problem }];
}

/**
 * The problem a rule of `core` found, as a clause about the value (`it is
 * not an integer from 1 to 1000`, see `pageSizeProblem`), as an option's.
 *
 * @param option The name the value came by.
 * @param value The value.
 * @param reason The clause, or `undefined` when the value passed.
 * @returns Its problems (none when `reason` is `undefined`).
 *
 * @example A page size
 * ```ts
 * import { optionProblemText, reasonProblems } from "./options.ts";
 *
 * const [problem] = reasonProblems("pageSize", 0, "it is not an integer from 1 to 1000");
 * console.assert(optionProblemText(problem) === 'pageSize "0": it is not an integer from 1 to 1000');
 * ```
 */
export function reasonProblems(option: string, value: unknown, reason: string | undefined): OptionProblem[] {
  return problemOf(option, value, reason === undefined ? undefined : `: ${reason}`);
}

/**
 * The rule for a table suffix: empty, or a separator (`-`, `_` or `.`)
 * then letters, digits, `_`, `-` and `.` (DynamoDB's table-name
 * characters), short enough for every table name to stay within 255
 * characters. Without the separator, `"dev"` would make
 * `bluestar-validation-rulesdev`.
 *
 * @param option The name the value came by.
 * @param suffix The candidate suffix.
 * @returns Its problems (none when valid).
 *
 * @example Check a suffix
 * ```ts
 * import { tableSuffixProblems } from "./options.ts";
 *
 * console.assert(tableSuffixProblems("tableSuffix", "-dev").length === 0);
 * console.assert(tableSuffixProblems("tableSuffix", "dev")[0].problem.includes('did you mean "-dev"?'));
 * ```
 */
export function tableSuffixProblems(option: string, suffix: unknown): OptionProblem[] {
  let problem: string | undefined;
  if (typeof suffix !== "string") problem = ": it is not a string";
  else if (!SUFFIX_CHARACTERS.test(suffix)) problem = ': it may hold only letters, digits, "_", "-" and "."';
  else if (suffix !== "" && !/^[-_.]/.test(suffix)) {
    problem = `: it does not start with "-", "_" or "." (did you mean ${quote(`-${suffix}`)}?)`;
  } else if (LONGEST_TABLE_NAME + suffix.length > 255) {
    problem = ": table names would be over 255 characters";
  }
  return problemOf(option, suffix, problem);
}

/**
 * The rule for an AWS region name (`us-east-1`, `eu-central-2`, `us-gov-west-1`).
 *
 * @param option The name the value came by.
 * @param region The candidate region.
 * @returns Its problems (none when valid).
 *
 * @example Check a region
 * ```ts
 * import { regionProblems } from "./options.ts";
 *
 * console.assert(regionProblems("region", "us-east-1").length === 0);
 * console.assert(regionProblems("region", "us east 1").length === 1);
 * ```
 */
export function regionProblems(option: string, region: unknown): OptionProblem[] {
  const valid = typeof region === "string" && REGION.test(region);
  return problemOf(option, region, valid ? undefined : 'is not a region name (like "us-east-1")');
}

/**
 * The rule for an AWS endpoint URL: http or https, and no userinfo. AWS
 * endpoints never take credentials in the URL (requests are signed with the
 * credential chain's), so a URL that carries some is refused rather than
 * silently ignored. The URL is shown with its userinfo `[redacted]`.
 *
 * @param option The name the value came by.
 * @param url The candidate URL.
 * @returns Its problems (none when valid).
 *
 * @example Check an endpoint
 * ```ts
 * import { endpointUrlProblems, optionProblemText } from "./options.ts";
 *
 * console.assert(endpointUrlProblems("endpointUrl", "http://127.0.0.1:4566").length === 0);
 * const [problem] = endpointUrlProblems("endpointUrl", "http://admin:pw@127.0.0.1:4566");
 * console.assert(optionProblemText(problem).startsWith('endpointUrl "http://[redacted]@127.0.0.1:4566" carries'));
 * ```
 */
export function endpointUrlProblems(option: string, url: unknown): OptionProblem[] {
  const parsed = parseUrl(url);
  let problem: string | undefined;
  if (parsed === undefined || (parsed.protocol !== "http:" && parsed.protocol !== "https:")) {
    problem = `is not an http or https URL (like ${LOCAL_ENDPOINT_EXAMPLE})`;
  } else if (parsed.username !== "" || parsed.password !== "") {
    problem = "carries credentials (AWS credentials come from the environment, a profile or a role)";
  }
  return problem === undefined ? [] : [{ option, value: redactUrl(url), problem }];
}

/**
 * The rule for a Redis URL: `redis://` or `rediss://`, a host, a database
 * number as its path if any, and well-formed percent-encoding in its
 * userinfo. The URL is shown with its userinfo `[redacted]`.
 *
 * @param option The name the value came by.
 * @param url The candidate URL.
 * @returns Its problems (none when valid).
 *
 * @example Check a Redis URL
 * ```ts
 * import { redisUrlProblems } from "./options.ts";
 *
 * console.assert(redisUrlProblems("url", "redis://:pw@cache:6379/1").length === 0);
 * console.assert(redisUrlProblems("url", "http://cache:6379")[0].problem.includes("redis://"));
 * ```
 */
export function redisUrlProblems(option: string, url: unknown): OptionProblem[] {
  const parsed = parseUrl(url);
  const value = redactUrl(url);
  if (parsed === undefined) return [{ option, value, problem: "is not a valid URL" }];
  if (parsed.protocol !== "redis:" && parsed.protocol !== "rediss:") {
    return [{ option, value, problem: "is not a redis:// or rediss:// URL" }];
  }
  const problems: OptionProblem[] = [];
  if (parsed.hostname === "") problems.push({ option, value, problem: "has no host" });
  try {
    decodeURIComponent(parsed.username);
    decodeURIComponent(parsed.password);
  } catch {
    problems.push({ option, value, problem: "has malformed percent-encoding in its credentials" });
  }
  const path = parsed.pathname.replace(/^\//, "");
  if (path !== "" && !/^\d{1,9}$/.test(path)) {
    problems.push({ option, value, problem: `has a database ${quote(path)} that is not a non-negative integer` });
  }
  return problems;
}

/**
 * The rule for a Redis database number: an integer from 0 to 2,147,483,646.
 *
 * @param option The name the value came by.
 * @param db The candidate number.
 * @returns Its problems (none when valid).
 *
 * @example Check a database number
 * ```ts
 * import { redisDbProblems } from "./options.ts";
 *
 * console.assert(redisDbProblems("db", 0).length === 0 && redisDbProblems("db", -1).length === 1);
 * ```
 */
export function redisDbProblems(option: string, db: unknown): OptionProblem[] {
  const valid = Number.isInteger(db) && (db as number) >= 0 && (db as number) <= MAX_REDIS_DB;
  return problemOf(option, db, valid ? undefined : "is not a non-negative integer");
}

/**
 * The rule for a cache TTL: a positive integer of seconds, at most
 * `MAX_TTL_SECONDS`. Text (an environment variable) must be plain decimal
 * digits: `"1e3"` and `"0x10"` are refused.
 *
 * @param option The name the value came by.
 * @param seconds The candidate TTL, a number or its decimal text.
 * @returns Its problems (none when valid).
 *
 * @example Check a TTL
 * ```ts
 * import { ttlSecondsProblems } from "./options.ts";
 *
 * console.assert(ttlSecondsProblems("ttl", "60").length === 0 && ttlSecondsProblems("ttl", "1e3").length === 1);
 * ```
 */
export function ttlSecondsProblems(option: string, seconds: unknown): OptionProblem[] {
  const number = typeof seconds === "string" ? (/^\d+$/.test(seconds) ? Number(seconds) : Number.NaN) : seconds;
  const valid = Number.isInteger(number) && (number as number) >= 1 && (number as number) <= MAX_TTL_SECONDS;
  return problemOf(option, seconds, valid ? undefined : "is not a positive integer of seconds");
}

/**
 * The rule for a timeout: a positive number of milliseconds a timer can
 * wait (at most `MAX_TIMER_MS`).
 *
 * @param option The name the value came by.
 * @param milliseconds The candidate timeout.
 * @returns Its problems (none when valid).
 *
 * @example Check a timeout
 * ```ts
 * import { timeoutMsProblems } from "./options.ts";
 *
 * console.assert(timeoutMsProblems("timeoutMs", 50).length === 0 && timeoutMsProblems("timeoutMs", 0).length === 1);
 * ```
 */
export function timeoutMsProblems(option: string, milliseconds: unknown): OptionProblem[] {
  const valid = typeof milliseconds === "number" && milliseconds > 0 && milliseconds <= MAX_TIMER_MS;
  return problemOf(option, milliseconds, valid ? undefined : "is not a positive number of milliseconds");
}

/**
 * The rule for a bounded integer option (attempts, a port, part sizes).
 *
 * @param option The name the value came by.
 * @param value The candidate integer.
 * @param min The lowest value allowed.
 * @param max The highest value allowed.
 * @returns Its problems (none when valid).
 *
 * @example Check a port
 * ```ts
 * import { integerProblems } from "./options.ts";
 *
 * console.assert(integerProblems("port", 70000, 1, 65535)[0].problem === "is not an integer from 1 to 65535");
 * ```
 */
export function integerProblems(option: string, value: unknown, min: number, max: number): OptionProblem[] {
  const valid = Number.isSafeInteger(value) && (value as number) >= min && (value as number) <= max;
  return problemOf(option, value, valid ? undefined : `is not an integer from ${min} to ${max}`);
}

/**
 * The rule for an S3 bucket name (see `bucketNameProblem`).
 *
 * @param option The name the value came by.
 * @param bucket The candidate name.
 * @returns Its problems (none when valid).
 *
 * @example Check a bucket
 * ```ts
 * import { bucketProblems } from "./options.ts";
 *
 * console.assert(bucketProblems("bucket", "bluestar-files").length === 0);
 * console.assert(bucketProblems("bucket", "Bad_Bucket").length === 1);
 * ```
 */
export function bucketProblems(option: string, bucket: unknown): OptionProblem[] {
  const problem = bucketNameProblem(bucket);
  return problemOf(option, bucket, problem === undefined ? undefined : `is not a bucket name: ${problem}`);
}

/**
 * The rule for an event hook: a function, when given.
 *
 * @param option The name the value came by.
 * @param hook The candidate hook.
 * @returns Its problems (none when valid or absent).
 *
 * @example Check a hook
 * ```ts
 * import { hookProblems } from "./options.ts";
 *
 * console.assert(hookProblems("onEvent", () => {}).length === 0 && hookProblems("onEvent", 1).length === 1);
 * ```
 */
export function hookProblems(option: string, hook: unknown): OptionProblem[] {
  return hook === undefined || typeof hook === "function" ? [] : [{ option, problem: "is not a function" }];
}

/**
 * The rule for an object option that must bring some methods (a file
 * store, say), when given.
 *
 * @param option The name the value came by.
 * @param value The candidate object.
 * @param what What it must be, in words (`a file store`).
 * @param methods The methods it must have.
 * @returns Its problems (none when valid or absent).
 *
 * @example Check a file store
 * ```ts
 * import { methodsProblems, optionProblemText } from "./options.ts";
 *
 * const [problem] = methodsProblems("sealFiles", {}, "a file store", ["write", "readRetained"]);
 * console.assert(optionProblemText(problem) === "sealFiles is not a file store (it has no write and readRetained)");
 * ```
 */
export function methodsProblems(
  option: string,
  value: unknown,
  what: string,
  methods: readonly string[],
): OptionProblem[] {
  if (value === undefined) return [];
  const object = value as Record<string, unknown> | null;
  const complete = methods.every((method) => typeof object?.[method] === "function");
  return complete ? [] : [{ option, problem: `is not ${what} (it has no ${methods.join(" and ")})` }];
}

/**
 * The options of a group that cannot come with another one (settings a
 * given client brings itself).
 *
 * @param options The options given.
 * @param names The options that clash with `owner`.
 * @param owner The option they clash with.
 * @param why Why, in parentheses after the problem.
 * @returns One problem naming every clashing option given, or none.
 *
 * @example Settings a client brings itself
 * ```ts
 * import { clashProblems, optionProblemText } from "./options.ts";
 *
 * const options: { region?: string; endpointUrl?: string } = { region: "us-east-1" };
 * const [problem] = clashProblems(options, ["region", "endpointUrl"], "client", "it brings its own");
 * console.assert(optionProblemText(problem) === "region cannot be set with client (it brings its own)");
 * ```
 */
export function clashProblems<T extends object>(
  options: T,
  names: readonly (keyof T & string)[],
  owner: string,
  why: string,
): OptionProblem[] {
  const given = names.filter((name) => options[name] !== undefined);
  return given.length === 0 ? [] : [{ option: given.join(", "), problem: `cannot be set with ${owner} (${why})` }];
}

/**
 * A URL parsed, or `undefined` when it is not one.
 *
 * @param url The candidate URL.
 * @returns The parsed URL.
 */
export function parseUrl(url: unknown): URL | undefined {
  if (typeof url !== "string") return undefined;
  try {
    return new URL(url);
  } catch {
    return undefined;
  }
}

/** The most entries an in-process tier may hold. */
export const MAX_LOCAL_CACHE_ENTRIES = 10_000_000;

/**
 * The rule for the nodes of a Redis Cluster: a non-empty list of
 * `host:port` (IPv6 as `[::1]:7001`, a port from 1 to 65535); the
 * environment's comma-separated text counts as its list.
 *
 * @param option The name the value came by.
 * @param nodes The candidate list, or its comma-separated text.
 * @returns Its problems: one for a list that is not one or is empty, else one per malformed node.
 *
 * @example Check cluster nodes
 * ```ts
 * import { clusterNodesProblems } from "./options.ts";
 *
 * console.assert(clusterNodesProblems("clusterNodes", ["127.0.0.1:7001"]).length === 0);
 * console.assert(clusterNodesProblems("clusterNodes", "127.0.0.1:7001,127.0.0.1").length === 1);
 * ```
 */
export function clusterNodesProblems(option: string, nodes: unknown): OptionProblem[] {
  const list = typeof nodes === "string" ? clusterNodeList(nodes) : nodes;
  if (!Array.isArray(list) || list.length === 0) {
    return [{ option, problem: "is not a non-empty list of host:port" }];
  }
  return list.flatMap((node: unknown) => {
    const match = typeof node === "string" ? /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(node) : null;
    if (match === null) return [{ option: `${option} node`, value: String(node), problem: "is not host:port" }];
    const port = Number(match[2]);
    return port >= 1 && port <= 65535
      ? []
      : [{ option: `${option} node`, value: String(node), problem: `: port ${port} is not from 1 to 65535` }];
  });
}

/**
 * The nodes of the environment's comma-separated list (empty parts dropped).
 *
 * @param text The list, as `BLUESTAR_REDIS_CLUSTER_NODES` holds it.
 * @returns The nodes.
 *
 * @example Split a list
 * ```ts
 * import { clusterNodeList } from "./options.ts";
 *
 * console.assert(clusterNodeList("127.0.0.1:7001, 127.0.0.1:7002").length === 2);
 * ```
 */
export function clusterNodeList(text: string): string[] {
  return text.split(",").map((node) => node.trim()).filter((node) => node !== "");
}

/**
 * The rule for the size of an in-process tier: an integer from 0 (no tier)
 * to `MAX_LOCAL_CACHE_ENTRIES`, a number or its decimal text.
 *
 * @param option The name the value came by.
 * @param maxEntries The candidate size.
 * @returns Its problems (none when valid).
 *
 * @example Check a size
 * ```ts
 * import { localCacheMaxEntriesProblems } from "./options.ts";
 *
 * console.assert(localCacheMaxEntriesProblems("maxEntries", "0").length === 0);
 * console.assert(localCacheMaxEntriesProblems("maxEntries", -1).length === 1);
 * ```
 */
export function localCacheMaxEntriesProblems(option: string, maxEntries: unknown): OptionProblem[] {
  const number = typeof maxEntries === "string" ? (/^\d+$/.test(maxEntries) ? Number(maxEntries) : NaN) : maxEntries;
  return integerProblems(option, number, 0, MAX_LOCAL_CACHE_ENTRIES).map((problem) => ({
    ...problem,
    value: String(maxEntries),
  }));
}

/**
 * The rule for a number of seconds that may be a fraction: from `min`
 * (`"positive"`: above 0) to `MAX_TTL_SECONDS`, a number or its decimal text.
 *
 * @param option The name the value came by.
 * @param seconds The candidate.
 * @param min `"positive"` or `"non-negative"` (0 allowed: off).
 * @returns Its problems (none when valid).
 *
 * @example Check a window
 * ```ts
 * import { secondsProblems } from "./options.ts";
 *
 * console.assert(secondsProblems("staleIfErrorSeconds", 0, "non-negative").length === 0);
 * console.assert(secondsProblems("ttlSeconds", 0, "positive").length === 1);
 * ```
 */
export function secondsProblems(
  option: string,
  seconds: unknown,
  min: "positive" | "non-negative",
): OptionProblem[] {
  const number = typeof seconds === "string" ? (/^\d+(\.\d+)?$/.test(seconds) ? Number(seconds) : NaN) : seconds;
  const valid = typeof number === "number" && (min === "positive" ? number > 0 : number >= 0) &&
    number <= MAX_TTL_SECONDS;
  return problemOf(option, seconds, valid ? undefined : `is not a ${min} number of seconds`);
}

/**
 * The rule for the in-process tier option: `false` (off), or an object of
 * `maxEntries` (see {@linkcode localCacheMaxEntriesProblems}) and
 * `ttlSeconds` (a positive number of seconds), each optional.
 *
 * @param option The name the value came by.
 * @param localCache The candidate.
 * @returns Its problems (none when valid or absent), its fields named `option.field`.
 *
 * @example Check a tier
 * ```ts
 * import { localCacheProblems } from "./options.ts";
 *
 * console.assert(localCacheProblems("localCache", { maxEntries: 100, ttlSeconds: 5 }).length === 0);
 * console.assert(localCacheProblems("localCache", { ttlSeconds: 0 }).length === 1);
 * ```
 */
export function localCacheProblems(option: string, localCache: unknown): OptionProblem[] {
  if (localCache === undefined || localCache === false) return [];
  if (typeof localCache !== "object" || localCache === null) return [{ option, problem: "is not an object or false" }];
  const { maxEntries, ttlSeconds } = localCache as { maxEntries?: unknown; ttlSeconds?: unknown };
  return [
    ...(maxEntries === undefined ? [] : localCacheMaxEntriesProblems(`${option}.maxEntries`, maxEntries)),
    ...(ttlSeconds === undefined ? [] : secondsProblems(`${option}.ttlSeconds`, ttlSeconds, "positive")),
  ];
}

/**
 * The rule for an interval a timer waits, in milliseconds: a number from
 * `min` to `MAX_TIMER_MS`.
 *
 * @param option The name the value came by.
 * @param milliseconds The candidate.
 * @param min The shortest interval allowed.
 * @returns Its problems (none when valid).
 *
 * @example Check a heartbeat
 * ```ts
 * import { intervalMsProblems } from "./options.ts";
 *
 * console.assert(intervalMsProblems("heartbeatMs", 1000, 4).length === 0 && intervalMsProblems("heartbeatMs", 1, 4).length === 1);
 * ```
 */
export function intervalMsProblems(option: string, milliseconds: unknown, min: number): OptionProblem[] {
  const valid = typeof milliseconds === "number" && milliseconds >= min && milliseconds <= MAX_TIMER_MS;
  return problemOf(option, milliseconds, valid ? undefined : `is not a number of milliseconds from ${min}`);
}
