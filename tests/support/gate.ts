// Gating for the integration suites: skipped with a one-line reason when the
// service does not answer, failing instead under BLUESTAR_REQUIRE_INTEGRATION=1.
import { describe, it } from "node:test";
import { connect } from "node:net";
import process from "node:process";

/** The local AWS endpoint (moto_server in CI, LocalStack elsewhere). */
export const AWS_ENDPOINT_URL: string = process.env.BLUESTAR_AWS_ENDPOINT_URL ?? "http://127.0.0.1:4566";

/** The local Redis. */
export const REDIS_URL: string = process.env.BLUESTAR_REDIS_URL ?? "redis://127.0.0.1:6379";

/**
 * The nodes of the local Redis Cluster (`.ci/redis_cluster` starts it). Not
 * `BLUESTAR_REDIS_CLUSTER_NODES`: that one configures `createPersistence()`,
 * which refuses it beside `BLUESTAR_REDIS_URL`.
 */
export const REDIS_CLUSTER_NODES: string[] = (process.env.BLUESTAR_TEST_REDIS_CLUSTER_NODES ??
  "127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003").split(",").map((node) => node.trim());

/** Whether an unreachable service fails the run instead of skipping. */
export const REQUIRE_INTEGRATION: boolean = process.env.BLUESTAR_REQUIRE_INTEGRATION === "1";

/** Dummy credentials for the local endpoint; set only when none are configured. */
export function useLocalAwsCredentials(): void {
  process.env.AWS_ACCESS_KEY_ID ??= "test";
  process.env.AWS_SECRET_ACCESS_KEY ??= "test";
  process.env.AWS_REGION ??= "us-east-1";
}

/** Resolves to `undefined` when a TCP connection to the URL's host and port succeeds, else to the reason. */
export function probe(url: string, timeoutMs = 1000): Promise<string | undefined> {
  const { hostname, port, protocol } = new URL(url);
  const defaultPort = protocol.startsWith("redis") ? 6379 : protocol === "https:" ? 443 : 80;
  return new Promise((resolve) => {
    const socket = connect({ host: hostname.replace(/^\[|\]$/g, ""), port: Number(port || defaultPort) });
    const done = (reason: string | undefined) => {
      socket.destroy();
      resolve(reason);
    };
    socket.setTimeout(timeoutMs, () => done(`${url} did not answer within ${timeoutMs} ms`));
    socket.once("connect", () => done(undefined));
    socket.once("error", (error) => done(`${url} is not reachable (${error.message})`));
  });
}

/**
 * Registers an integration suite that needs a service. When the service does
 * not answer, the suite is skipped with the reason, or, under
 * BLUESTAR_REQUIRE_INTEGRATION=1, replaced by one failing test.
 *
 * @param name The suite's name.
 * @param unreachable The probe's answer (`await probe(url)` at the module's top level).
 * @param body The suite, as a synchronous describe body.
 */
export function integrationSuite(name: string, unreachable: string | undefined, body: () => void): void {
  if (unreachable === undefined) {
    describe(name, body);
  } else if (REQUIRE_INTEGRATION) {
    describe(name, () => {
      it("reaches its service (BLUESTAR_REQUIRE_INTEGRATION=1)", () => {
        throw new Error(`Integration required but ${unreachable}`);
      });
    });
  } else {
    // deno test shows a skipped suite as "ignored" without its reason: say it once here.
    console.warn(`Skipping "${name}": ${unreachable} (BLUESTAR_REQUIRE_INTEGRATION=1 fails instead)`);
    describe(name, { skip: unreachable }, body);
  }
}
