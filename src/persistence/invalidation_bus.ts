/**
 * The invalidation bus on Redis pub/sub: one channel per namespace (the
 * table suffix), messages that carry cache keys, never values, and a
 * heartbeat that tells a live bus from a silent one.
 *
 * Why a heartbeat: a subscription whose connection is cut silently (a
 * half-open TCP connection, a paused proxy, a partition) receives nothing
 * and reports nothing, so a process would keep serving entries another
 * process has invalidated. Every process publishes a heartbeat on the
 * channel; a process that has heard nothing, its own heartbeats included,
 * for `heartbeatMs` counts its bus as lost, and its in-process tier stops
 * answering until a message arrives again.
 *
 * @module
 */

import { createClient, createCluster } from "redis";
import { CacheError, ConfigError, redactUrl } from "../core/errors.ts";
import { guardHook } from "../core/hooks.ts";
import { invalidationChannel } from "../core/keys.ts";
import type { IInvalidationBus, InvalidationListener } from "../core/protocols.ts";
import { type Backoff, backoffDelay, type Clock, SYSTEM_CLOCK, type Timer } from "../core/time.ts";
import {
  clusterNodesProblems,
  hookProblems,
  intervalMsProblems,
  type OptionProblem,
  optionProblemsText,
  redisUrlProblems,
  tableSuffixProblems,
} from "./options.ts";

/**
 * What a {@linkcode RedisInvalidationBus} reports.
 *
 * - `bus.lost`: nothing was heard for longer than the heartbeat; the
 *   in-process tier stops answering.
 * - `bus.restored`: a message arrived after a silence; the in-process tier
 *   was cleared (it may have missed invalidations).
 * - `bus.error`: a connection or a publish failed (`error` names which).
 */
export type BusEvent =
  | { type: "bus.lost"; silentMs: number }
  | { type: "bus.restored"; silentMs: number }
  | { type: "bus.error"; error: CacheError };

/** Options of {@linkcode RedisInvalidationBus}: `url` or `clusterNodes`. */
export interface RedisInvalidationBusOptions {
  /**
   * The Redis server: `redis://[user:password@]host[:port][/db]` or `rediss://...`.
   *
   * @default {undefined}
   */
  url?: string;
  /**
   * The nodes of a Redis Cluster to start from, as `host:port`; the bus
   * subscribes through one of them (cluster pub/sub reaches every node).
   *
   * @default {undefined}
   */
  clusterNodes?: readonly string[];
  /**
   * The namespace: the table suffix, as for the cache keys.
   *
   * @default {""}
   */
  namespace?: string;
  /**
   * The longest silence a live bus may have, in milliseconds; each process
   * publishes a heartbeat four times within it.
   *
   * @default {1000}
   */
  heartbeatMs?: number;
  /**
   * How long a publish may take, in milliseconds.
   *
   * @default {250}
   */
  publishTimeoutMs?: number;
  /**
   * The clock of the heartbeat.
   *
   * @default {SYSTEM_CLOCK}
   */
  clock?: Clock;
  /**
   * Receives loss, restore and failure events. An exception thrown by the hook is ignored.
   *
   * @default {undefined}
   */
  onEvent?: (event: BusEvent) => void;
}

/** The default of {@linkcode RedisInvalidationBusOptions.heartbeatMs}. */
export const DEFAULT_HEARTBEAT_MS = 1000;
const DEFAULT_PUBLISH_TIMEOUT_MS = 250;
/** Reconnection waits: exponential from 50 ms, at most 1 s between attempts, with full jitter. */
const RECONNECT_BACKOFF: Backoff = { baseDelayMs: 50, maxDelayMs: 1000 };
/** A heartbeat carries no keys. */
const HEARTBEAT = '{"keys":[]}';

/** The slice of a node-redis client or cluster the bus uses. */
interface PubSubClient {
  connect(): Promise<unknown>;
  publish(channel: string, message: string): Promise<unknown>;
  subscribe(channel: string, listener: (message: string) => void): Promise<unknown>;
  on(event: "error", listener: (error: unknown) => void): unknown;
  destroy(): void;
}

/**
 * An {@linkcode IInvalidationBus} on Redis pub/sub, on a single server or a
 * Redis Cluster. It connects on first use (the first `isLive()` or
 * `publish()`), reconnects by itself, and never throws from `publish`: a
 * failure is reported as `bus.error`, and the silence it causes makes the
 * bus not live within the heartbeat.
 *
 * @example Share invalidations between processes
 * ```ts
 * import { RedisInvalidationBus } from "./invalidation_bus.ts";
 *
 * const bus = new RedisInvalidationBus({ url: "redis://127.0.0.1:6379", namespace: "-dev" });
 * bus.listen({ dropped: (keys) => console.log("changed", keys), restored: () => console.log("cleared") });
 * await bus.publish(["bluestar:v1:-dev:calculation:ACME:FICA"]);
 * await bus.close();
 * ```
 */
export class RedisInvalidationBus implements IInvalidationBus {
  readonly #channel: string;
  readonly #heartbeatMs: number;
  readonly #publishTimeoutMs: number;
  readonly #clock: Clock;
  /** The hook, guarded: a hook that throws or rejects never breaks the bus. */
  readonly #emit: (event: BusEvent) => void;
  readonly #listeners = new Set<InvalidationListener>();
  readonly #where: string;
  readonly #connect: () => { publisher: PubSubClient; subscriber: PubSubClient };
  #clients: { publisher: PubSubClient; subscriber: PubSubClient } | undefined;
  #heartbeat: Timer | undefined;
  /** When a message last arrived, on the clock; `-Infinity`: never, or the subscription broke. */
  #lastHeard = -Infinity;
  /** Whether a silence was seen and not yet ended by a message. */
  #silent = true;
  #closed = false;
  /** The first connection in progress, if any: close() ends its sockets once they exist. */
  #connecting: Promise<unknown> | undefined;

  /**
   * Creates the bus; nothing connects until first use.
   *
   * @param options Where Redis is, the namespace, the heartbeat and the event hook.
   * @throws {ConfigError} Listing every problem, when the options are malformed.
   */
  constructor(options: RedisInvalidationBusOptions) {
    const { namespace = "", heartbeatMs = DEFAULT_HEARTBEAT_MS, publishTimeoutMs = DEFAULT_PUBLISH_TIMEOUT_MS } =
      options;
    const problems: OptionProblem[] = [
      ...tableSuffixProblems("namespace", namespace),
      ...intervalMsProblems("heartbeatMs", heartbeatMs, 4),
      ...intervalMsProblems("publishTimeoutMs", publishTimeoutMs, 4),
      ...(options.clusterNodes === undefined ? [] : clusterNodesProblems("clusterNodes", options.clusterNodes)),
      ...(options.url === undefined ? [] : redisUrlProblems("url", options.url)),
      ...hookProblems("onEvent", options.onEvent),
    ];
    const nodes = options.clusterNodes;
    if ((options.url === undefined) === (nodes === undefined)) {
      problems.push({ option: "url, clusterNodes", problem: ": give exactly one" });
    }
    if (problems.length > 0) throw new ConfigError(`Invalid invalidation bus options: ${optionProblemsText(problems)}`);

    this.#channel = invalidationChannel(namespace);
    this.#heartbeatMs = heartbeatMs;
    this.#publishTimeoutMs = publishTimeoutMs;
    this.#clock = options.clock ?? SYSTEM_CLOCK;
    this.#emit = guardHook(options.onEvent);
    const reconnectStrategy = (retries: number) => backoffDelay(RECONNECT_BACKOFF, retries + 1);
    if (nodes !== undefined) {
      this.#where = `Redis Cluster (nodes ${nodes.join(", ")})`;
      this.#connect = () => {
        const cluster = createCluster({
          rootNodes: nodes.map((node) => ({ url: `redis://${node}` })),
          defaults: { disableOfflineQueue: true, socket: { reconnectStrategy, connectTimeout: 1000 } },
        }) as unknown as PubSubClient;
        return { publisher: cluster, subscriber: cluster };
      };
    } else {
      const url = options.url as string;
      this.#where = `Redis at ${redactUrl(url)}`;
      this.#connect = () => {
        // No offline queue: a publish while disconnected fails at once rather than pile up.
        const publisher = createClient({
          url,
          disableOfflineQueue: true,
          socket: { reconnectStrategy, connectTimeout: 1000 },
        });
        return {
          publisher: publisher as unknown as PubSubClient,
          subscriber: publisher.duplicate() as unknown as PubSubClient,
        };
      };
    }
  }

  /**
   * {@linkcode IInvalidationBus.publish}: `PUBLISH` of the keys on the
   * namespace's channel, bounded by `publishTimeoutMs`.
   *
   * @param keys The cache keys.
   * @returns When published, or when publishing failed (reported as `bus.error`).
   */
  async publish(keys: readonly string[]): Promise<void> {
    if (keys.length === 0 || this.#closed) return;
    this.#start();
    await this.#send(JSON.stringify({ keys }), "publish an invalidation");
  }

  /**
   * {@linkcode IInvalidationBus.listen}.
   *
   * @param listener Receives keys and restores.
   */
  listen(listener: InvalidationListener): void {
    this.#listeners.add(listener);
  }

  /**
   * {@linkcode IInvalidationBus.isLive}: a message arrived within the
   * heartbeat. The first call connects the bus.
   *
   * @returns Whether the bus is live.
   */
  isLive(): boolean {
    if (this.#clients === undefined) this.#start();
    const silentMs = this.#clock.now() - this.#lastHeard;
    if (silentMs <= this.#heartbeatMs) return true;
    if (!this.#silent) {
      this.#silent = true;
      this.#emit({ type: "bus.lost", silentMs });
    }
    return false;
  }

  /**
   * {@linkcode IInvalidationBus.liveUntil}: the last message heard plus the
   * heartbeat, on the bus's clock.
   *
   * @returns The deadline; `-Infinity` before the first message.
   */
  liveUntil(): number {
    return this.#lastHeard + this.#heartbeatMs;
  }

  /**
   * Stops the heartbeat and destroys the connections. Closing twice is harmless.
   *
   * @returns When closed.
   */
  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    if (this.#heartbeat !== undefined) this.#clock.clearTimer(this.#heartbeat);
    const clients = this.#clients;
    if (clients !== undefined) {
      destroy(clients);
      // A socket still connecting is not the client's yet: end it once it is.
      void this.#connecting?.finally(() => destroy(clients));
    }
    return Promise.resolve();
  }

  #start(): void {
    if (this.#clients !== undefined || this.#closed) return;
    const clients = this.#connect();
    this.#clients = clients;
    const failed = (what: string) => (error: unknown) => {
      if (this.#closed) return;
      // A broken subscription hears nothing: not live until a message arrives again.
      if (what === "subscription") this.#lastHeard = -Infinity;
      this.#emit({ type: "bus.error", error: this.#failure(`keep the ${what} of the invalidation bus`, error) });
    };
    clients.subscriber.on("error", failed("subscription"));
    if (clients.publisher !== clients.subscriber) clients.publisher.on("error", failed("publisher"));
    const connected = clients.publisher === clients.subscriber
      ? clients.subscriber.connect()
      : Promise.all([clients.subscriber.connect(), clients.publisher.connect()]);
    this.#connecting = connected.catch(() => {});
    connected
      .then(() => {
        this.#connecting = undefined;
        if (this.#closed) throw CLOSED;
      })
      .then(() => clients.subscriber.subscribe(this.#channel, this.#receive))
      .then(() => this.#beat())
      .catch((error: unknown) => {
        this.#connecting = undefined;
        if (this.#closed) return;
        this.#emit({ type: "bus.error", error: this.#failure("connect the invalidation bus", error) });
        // Try again from scratch after a pause; until then the bus is not live.
        this.#clients = undefined;
        destroy(clients);
        const retry = this.#clock.setTimer(() => this.#start(), this.#heartbeatMs);
        retry.unref();
      });
  }

  /** Publishes a heartbeat now, and again a quarter of the heartbeat later. */
  readonly #beat = (): void => {
    if (this.#closed) return;
    this.#heartbeat = this.#clock.setTimer(this.#beat, this.#heartbeatMs / 4);
    this.#heartbeat.unref();
    void this.#send(HEARTBEAT, "publish a heartbeat");
  };

  readonly #receive = (message: string): void => {
    const now = this.#clock.now();
    const silentMs = now - this.#lastHeard;
    this.#lastHeard = now;
    if (this.#silent || silentMs > this.#heartbeatMs) {
      this.#silent = false;
      // It may have missed messages: everything cached is suspect.
      for (const listener of this.#listeners) listener.restored();
      if (Number.isFinite(silentMs)) this.#emit({ type: "bus.restored", silentMs });
      return;
    }
    const keys = keysOf(message);
    if (keys.length > 0) { for (const listener of this.#listeners) listener.dropped(keys); }
  };

  async #send(message: string, action: string): Promise<void> {
    const clients = this.#clients;
    if (clients === undefined) return;
    let timer: Timer | undefined;
    const publish = () => clients.publisher.publish(this.#channel, message);
    try {
      await Promise.race([
        // The first use may come before the connection: wait for it (within the timeout).
        this.#connecting === undefined ? publish() : this.#connecting.then(publish),
        new Promise((_, reject) => {
          timer = this.#clock.setTimer(() => reject(TIMED_OUT), this.#publishTimeoutMs);
        }),
      ]);
    } catch (error) {
      if (!this.#closed) this.#emit({ type: "bus.error", error: this.#failure(action, error) });
    } finally {
      if (timer !== undefined) this.#clock.clearTimer(timer);
    }
  }

  #failure(action: string, error: unknown): CacheError {
    const reason = error === TIMED_OUT
      ? `no answer within ${this.#publishTimeoutMs} ms`
      : `${(error as { code?: unknown })?.code ?? (error as Error)?.constructor?.name ?? "unknown error"}`;
    return new CacheError(`Failed to ${action} on ${this.#where}: ${reason}`, {
      cause: error === TIMED_OUT ? undefined : error,
    });
  }
}

/** Ends both connections, whatever state they are in. */
function destroy(clients: { publisher: PubSubClient; subscriber: PubSubClient }): void {
  for (const client of new Set([clients.subscriber, clients.publisher])) {
    try {
      client.destroy();
    } catch {
      // Not open (yet, or any more): nothing to end.
    }
  }
}

/** Stops the start-up of a bus closed while it connected. */
const CLOSED: unique symbol = Symbol("closed");

/** The rejection reason of a publish past its deadline. */
const TIMED_OUT: unique symbol = Symbol("timed out");

/** The keys of a message; a message that is not one of ours carries none. */
function keysOf(message: string): string[] {
  try {
    const keys = (JSON.parse(message) as { keys?: unknown } | null)?.keys;
    return Array.isArray(keys) ? keys.filter((key): key is string => typeof key === "string") : [];
  } catch {
    return [];
  }
}
