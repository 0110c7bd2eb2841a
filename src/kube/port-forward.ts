/**
 * Forwards local TCP ports to a pod's ports through the API server's `portforward` subresource: one
 * websocket (`v4.channel.k8s.io` port-forward framing) per accepted TCP connection, closes wired in both
 * directions, backpressure both ways, failures reported to a logger instead of thrown into the void.
 */
import net from "node:net";
import type WebSocket from "ws";
import { InvalidInputError } from "../errors.js";
import { encodeFrame, PortPrefixStripper, PROTOCOL_V4 } from "./channel.js";
import type { KubeClient } from "./client.js";
import { keepAlive, type KeepAliveOptions } from "./session.js";

/** One port to forward. */
export interface PortMapping {
  /** Port in the pod. */
  remotePort: number;
  /** Local port; 0 (default) = any free port. */
  localPort?: number;
  /** Local bind address (default "127.0.0.1"). */
  localAddress?: string;
}

/** A forwarded port as bound. */
export interface BoundPort {
  remotePort: number;
  localPort: number;
  localAddress: string;
}

/** Where failures of individual connections go. */
export interface ForwardLogger {
  warn(message: string): void;
}

/** Options of {@link forwardPorts}. */
export interface PortForwardOptions extends KeepAliveOptions {
  /** Default: the client's namespace. */
  namespace?: string;
  pod: string;
  ports: PortMapping[];
  /** Default: `console.warn`. */
  logger?: ForwardLogger;
}

/** A running forward. */
export interface PortForward {
  /** The ports actually bound, in the order requested. */
  readonly ports: BoundPort[];
  /** Stops listening and closes every open connection. Idempotent. */
  close(): Promise<void>;
}

function listen(server: net.Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
}

/** Copies socket ↔ websocket for one connection until either side closes. */
function wire(
  socket: net.Socket,
  ws: WebSocket,
  opts: { port: number; onError: (msg: string) => void } & KeepAliveOptions,
): void {
  const stripper = new PortPrefixStripper([opts.port]);
  let closed = false;
  const closeBoth = (): void => {
    if (closed) return;
    closed = true;
    stopKeepAlive();
    socket.end();
    if (ws.readyState === ws.OPEN) ws.close(1000);
  };
  const stopKeepAlive = keepAlive(ws, opts, (ms) => {
    opts.onError(`no pong for ${Math.round(ms / 1000)} s`);
    socket.destroy();
    ws.terminate();
  });
  ws.on("message", (data: Buffer, isBinary: boolean) => {
    if (!isBinary || data.length === 0) return;
    const channel = data[0] ?? 0;
    const payload = stripper.strip(channel, data.subarray(1));
    if (payload.length === 0) return;
    if (channel === 0) {
      if (!socket.write(payload)) {
        ws.pause();
        socket.once("drain", () => ws.resume());
      }
    } else if (channel === 1) {
      opts.onError(payload.toString("utf8"));
    }
  });
  socket.on("data", (chunk: Buffer) => {
    ws.send(encodeFrame(0, chunk), { binary: true }, () => {
      if (socket.isPaused() && ws.bufferedAmount < 1024 * 1024) socket.resume();
    });
    if (ws.bufferedAmount >= 1024 * 1024) socket.pause();
  });
  socket.on("error", (err) => opts.onError(`local connection: ${err.message}`));
  ws.on("error", (err) => opts.onError(`websocket: ${err.message}`));
  socket.on("end", closeBoth);
  socket.on("close", closeBoth);
  ws.on("close", closeBoth);
  socket.resume();
}

/**
 * Listens on each mapping's local address:port and forwards every accepted connection to the pod.
 * @throws InvalidInputError for a bad port; the bind error (e.g. EADDRINUSE) when a port cannot be bound.
 */
export async function forwardPorts(client: KubeClient, options: PortForwardOptions): Promise<PortForward> {
  const logger = options.logger ?? { warn: (m: string) => console.warn(m) };
  const ns = options.namespace ?? client.namespace;
  const servers: net.Server[] = [];
  const sockets = new Set<net.Socket>();
  const ports: BoundPort[] = [];
  const close = async (): Promise<void> => {
    for (const s of sockets) s.destroy();
    await Promise.all(servers.map((s) => new Promise<void>((r) => (s.listening ? s.close(() => r()) : r()))));
  };
  try {
    for (const mapping of options.ports) {
      if (!Number.isInteger(mapping.remotePort) || mapping.remotePort < 1 || mapping.remotePort > 65535) {
        throw new InvalidInputError(`invalid container port ${mapping.remotePort}`);
      }
      const host = mapping.localAddress ?? "127.0.0.1";
      const server = net.createServer({ pauseOnConnect: true }, (socket) => {
        sockets.add(socket);
        socket.once("close", () => sockets.delete(socket));
        const where = `port-forward ${host}:${(server.address() as net.AddressInfo).port} → pod "${options.pod}":${mapping.remotePort}`;
        client
          .openWebSocket({
            verb: "create",
            resource: "pods/portforward",
            name: options.pod,
            path: `/api/v1/namespaces/${encodeURIComponent(ns)}/pods/${encodeURIComponent(options.pod)}/portforward`,
            query: { ports: String(mapping.remotePort) },
            protocols: [PROTOCOL_V4],
          })
          .then(
            (ws) => wire(socket, ws, { ...options, port: mapping.remotePort, onError: (m) => logger.warn(`${where}: ${m}`) }),
            (err: unknown) => {
              logger.warn(`${where}: ${err instanceof Error ? err.message : String(err)}`);
              socket.destroy();
            },
          );
      });
      servers.push(server);
      await listen(server, mapping.localPort ?? 0, host);
      const addr = server.address() as net.AddressInfo;
      ports.push({ remotePort: mapping.remotePort, localPort: addr.port, localAddress: host });
    }
  } catch (err) {
    await close();
    throw err;
  }
  return { ports, close };
}
