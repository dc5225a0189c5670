// Sockets for fault tests: a port where nothing listens, a scripted server,
// a fake Redis that stops answering at a chosen command, a proxy a test can
// stop and restart, a bounded retry loop, and a script run as a process that
// must exit by itself.
import type { Buffer } from "node:buffer";
import { spawn } from "node:child_process";
import net from "node:net";
import { join } from "node:path";
import process from "node:process";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";

/** A port where nothing listens: bound to port 0, then released. */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A TCP server on a free port whose every connection is handed to `onSocket`, with its index (0 first). */
export class FakeServer {
  readonly #server: net.Server;
  readonly #sockets = new Set<net.Socket>();
  /** How many connections the server accepted. */
  accepted = 0;

  constructor(onSocket: (socket: net.Socket, index: number) => void) {
    this.#server = net.createServer((socket) => {
      this.#sockets.add(socket);
      socket.on("error", () => {});
      socket.on("close", () => this.#sockets.delete(socket));
      onSocket(socket, this.accepted++);
    });
  }

  /** How many accepted connections are still open: the server saw the others end. */
  get open(): number {
    return this.#sockets.size;
  }

  /** Ends every open connection from the server's side; the server keeps listening. */
  drop(): void {
    for (const socket of this.#sockets) socket.destroy();
  }

  async listen(port = 0): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once("error", reject);
      this.#server.listen(port, "127.0.0.1", () => {
        this.#server.off("error", reject);
        resolve();
      });
    });
    return (this.#server.address() as net.AddressInfo).port;
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const socket of this.#sockets) socket.destroy();
    await closed;
  }
}

/**
 * A fake Redis: on each connection it answers every command with `+OK` (a
 * `GET` with a miss) until the command `stallAt(index)` names, and from that
 * one on never answers again. `commands[index]` lists what that connection sent.
 *
 * @param stallAt The command a connection stops at (`"HELLO"`, `"SELECT"`, `"CLIENT"`), or `undefined`: never.
 */
export function fakeRedis(
  stallAt: (index: number) => string | undefined,
): { server: FakeServer; commands: string[][] } {
  const commands: string[][] = [];
  const server = new FakeServer((socket, index) => {
    const seen: string[] = (commands[index] = []);
    let buffer = "";
    let stalled = false;
    socket.on("data", (chunk: Buffer) => {
      buffer += chunk.toString("latin1");
      for (let command = nextCommand(buffer); command !== undefined; command = nextCommand(buffer)) {
        buffer = buffer.slice(command.length);
        seen.push(command.name);
        stalled ||= command.name === stallAt(index);
        if (!stalled) socket.write(command.name === "GET" ? "_\r\n" : "+OK\r\n");
      }
    });
  });
  return { server, commands };
}

/** The first complete command (an array of bulk strings) in `buffer`: its name and length, or `undefined`. */
function nextCommand(buffer: string): { name: string; length: number } | undefined {
  const header = /^\*(\d+)\r\n/.exec(buffer);
  if (header === null) return undefined;
  let at = header[0].length;
  let name = "";
  for (let index = 0; index < Number(header[1]); index++) {
    const bulk = /^\$(\d+)\r\n/.exec(buffer.slice(at));
    if (bulk === null) return undefined;
    const start = at + bulk[0].length;
    at = start + Number(bulk[1]) + 2;
    if (at > buffer.length) return undefined;
    if (index === 0) name = buffer.slice(start, at - 2).toUpperCase();
  }
  return { name, length: at };
}

/**
 * A TCP proxy in front of a real service, which a test stops and restarts on
 * the same port, or pauses: while paused, the connections stay open and
 * nothing is delivered either way (a silent cut, as a partition or a
 * half-open connection looks); on resume the held bytes flow again.
 */
export class TcpProxy {
  #server: FakeServer | undefined;
  #paused = false;
  readonly #held: Array<() => void> = [];
  port = 0;

  constructor(readonly upstreamHost: string, readonly upstreamPort: number) {}

  async start(): Promise<void> {
    this.#server = new FakeServer((client) => {
      const upstream = net.connect({ host: this.upstreamHost, port: this.upstreamPort });
      upstream.on("error", () => client.destroy());
      client.on("close", () => upstream.destroy());
      upstream.on("close", () => client.destroy());
      const forward = (to: net.Socket) => (chunk: Buffer) => {
        if (this.#paused) this.#held.push(() => to.write(chunk));
        else to.write(chunk);
      };
      client.on("data", forward(upstream));
      upstream.on("data", forward(client));
    });
    this.port = await this.#server.listen(this.port);
  }

  /** Holds every byte either way, connections open, until {@linkcode TcpProxy.resume}. */
  pause(): void {
    this.#paused = true;
  }

  /** Delivers what was held, in order, and forwards again. */
  resume(): void {
    this.#paused = false;
    for (const deliver of this.#held.splice(0)) deliver();
  }

  async stop(): Promise<void> {
    await this.#server?.close();
    this.#server = undefined;
  }

  /** How many client connections are open through the proxy. */
  get open(): number {
    return this.#server?.open ?? 0;
  }
}

/** Calls `attempt` until it resolves, at most `tries` times, `pauseMs` apart; returns its value or throws its last error. */
export async function eventually<T>(attempt: () => Promise<T>, tries = 60, pauseMs = 100): Promise<T> {
  let last: unknown;
  for (let index = 0; index < tries; index++) {
    try {
      return await attempt();
    } catch (error) {
      last = error;
      await sleep(pauseMs);
    }
  }
  throw last;
}

/** How a script run by {@linkcode runUntilExit} ended. */
export interface ScriptExit {
  /** Whether it exited by itself before the deadline (else it was killed). */
  exited: boolean;
  /** Its exit code, `null` when it was killed. */
  code: number | null;
  stdout: string;
  stderr: string;
}

const compiled = import.meta.url.endsWith(".js");

/**
 * Runs a script of `tests/support/` as a process, on whichever runtime runs
 * the tests (Deno the TypeScript source, Node the compiled script of the npm
 * build), and waits for it to exit by itself: a socket or timer left open
 * keeps it alive, and past `deadlineMs` it is killed.
 *
 * @param name The script's name without extension (`"close_child"`).
 * @param args Its arguments.
 * @param deadlineMs How long it may take to exit at all.
 * @returns How it ended.
 */
export function runUntilExit(name: string, args: string[], deadlineMs = 30_000): Promise<ScriptExit> {
  const script = join(fileURLToPath(new URL(".", import.meta.url)), `${name}.${compiled ? "js" : "ts"}`);
  const runtimeArgs = compiled ? [script] : ["run", "-A", script];
  // Node 20 gets the AWS SDK's end-of-support warning on stderr, which is not the script's output.
  const env = compiled ? { ...process.env, NODE_NO_WARNINGS: "1" } : process.env;
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...runtimeArgs, ...args], { env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Uint8Array) => (stdout += chunk));
    child.stderr.on("data", (chunk: Uint8Array) => (stderr += chunk));
    let killed = false;
    const timer = setTimeout(() => {
      killed = true;
      child.kill("SIGKILL");
    }, deadlineMs);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ exited: !killed, code, stdout, stderr });
    });
  });
}
