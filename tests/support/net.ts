// Sockets for fault tests: a port where nothing listens, a scripted server,
// a proxy a test can stop and restart, and a bounded retry loop.
import net from "node:net";
import { setTimeout as sleep } from "node:timers/promises";

/** A port where nothing listens: bound to port 0, then released. */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A TCP server on a free port whose every connection is handed to `onSocket`. */
export class FakeServer {
  readonly #server: net.Server;
  readonly #sockets = new Set<net.Socket>();

  constructor(onSocket: (socket: net.Socket) => void) {
    this.#server = net.createServer((socket) => {
      this.#sockets.add(socket);
      socket.on("error", () => {});
      socket.on("close", () => this.#sockets.delete(socket));
      onSocket(socket);
    });
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

/** A TCP proxy in front of a real service, which a test stops and restarts on the same port. */
export class TcpProxy {
  #server: FakeServer | undefined;
  port = 0;

  constructor(readonly upstreamHost: string, readonly upstreamPort: number) {}

  async start(): Promise<void> {
    this.#server = new FakeServer((client) => {
      const upstream = net.connect({ host: this.upstreamHost, port: this.upstreamPort });
      upstream.on("error", () => client.destroy());
      client.on("close", () => upstream.destroy());
      upstream.on("close", () => client.destroy());
      client.pipe(upstream);
      upstream.pipe(client);
    });
    this.port = await this.#server.listen(this.port);
  }

  async stop(): Promise<void> {
    await this.#server?.close();
    this.#server = undefined;
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
