// The parent's side of rule_writer.ts: a second process on the same tables
// and Redis, which changes a rule when asked and says when the change returned.
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { join } from "node:path";
import process from "node:process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const compiled = import.meta.url.endsWith(".js");

/** Process B: `change()` resolves when its change returned, with the time it did (epoch ms, sub-ms). */
export class RuleWriter {
  readonly #child: ChildProcessWithoutNullStreams;
  readonly #waiting: Array<(at: number) => void> = [];
  #stderr = "";
  #exited = false;

  /**
   * Starts the process.
   *
   * @param suffix The tables' suffix (the namespace of the cache keys and of the bus).
   * @param redis Where Redis is: a URL, or cluster nodes.
   */
  constructor(suffix: string, redis: { url: string } | { clusterNodes: string[] }) {
    const script = join(fileURLToPath(new URL(".", import.meta.url)), `rule_writer.${compiled ? "js" : "ts"}`);
    const args = [...(compiled ? [] : ["run", "-A"]), script, JSON.stringify({ suffix, redis })];
    this.#child = spawn(process.execPath, args, { stdio: ["pipe", "pipe", "pipe"] });
    this.#child.stderr.on("data", (chunk: Uint8Array) => (this.#stderr += chunk));
    this.#child.on("exit", () => {
      this.#exited = true;
    });
    createInterface({ input: this.#child.stdout }).on("line", (line) => {
      const answer = JSON.parse(line) as { at: number };
      this.#waiting.shift()?.(answer.at);
    });
  }

  /**
   * Changes a calculation rule's rate in DynamoDB and invalidates its cached reads.
   *
   * @returns When the change returned in the writer, in epoch milliseconds.
   */
  change(clientId: string, ruleId: string, rate: string): Promise<number> {
    return new Promise((resolve, reject) => {
      const exited = () => reject(new Error(`rule_writer exited: ${this.#stderr}`));
      if (this.#exited) return exited();
      this.#child.once("exit", exited);
      this.#waiting.push((at) => {
        this.#child.off("exit", exited);
        resolve(at);
      });
      this.#child.stdin.write(`${JSON.stringify({ clientId, ruleId, rate })}\n`);
    });
  }

  /** Ends the process (stdin closed: it closes its store and exits). */
  async close(): Promise<void> {
    const exited = new Promise((resolve) => this.#child.once("exit", resolve));
    this.#child.stdin.end();
    await exited;
  }
}

/** The time now, comparable across processes on one machine: epoch milliseconds, sub-millisecond. */
export function wallNow(): number {
  return performance.timeOrigin + performance.now();
}
