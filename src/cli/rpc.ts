/**
 * `kce rpc`: serves the engine over line-delimited JSON on stdin/stdout (protocol: src/rpc/protocol.ts) until
 * stdin ends or the process is told to stop. Used by the repo2docker adapter (python/repo2docker-kce).
 *
 * `kce rpc --listen SOCKET` is the same server started ahead of its client: Node's start-up and the imports
 * (≈ 0.5 s of CPU, most of it client-node) are paid while a warm build runner waits for its build, not when
 * repo2docker first asks the engine something.
 */
import { once } from "node:events";
import { rmSync } from "node:fs";
import { createServer, type Socket } from "node:net";
import { createInterface } from "node:readline";
import type { Writable } from "node:stream";
import type { KubernetesEngine } from "../index.js";
import { encodeError, parseLaunch, type RpcLaunch, type RpcMessage, type RpcStderrMessage } from "../rpc/protocol.js";
import { RpcServer } from "../rpc/server.js";
import { parseCommandLine, type ParsedCommand } from "./args.js";
import type { CommandContext } from "./commands.js";
import { createEngine } from "./settings.js";

export async function rpcCommand(cmd: ParsedCommand, ctx: CommandContext, version: string): Promise<number> {
  // stdout carries protocol messages only: anything a library would print there goes to stderr.
  console.log = console.info = console.debug = console.error;
  const socketPath = cmd.flags.listen;
  if (typeof socketPath === "string") return listenForOneClient(socketPath, ctx.signal, version);
  const lines = createInterface({ input: ctx.stdin, crlfDelay: Infinity });
  const close = (): void => lines.close();
  ctx.signal.addEventListener("abort", close, { once: true });
  try {
    await serveLines(ctx.engine, lines, process.stdout, version);
  } finally {
    ctx.signal.removeEventListener("abort", close);
  }
  return 0;
}

/** Serves the protocol: requests from `lines` (until they end), messages to `output`. */
async function serveLines(engine: KubernetesEngine, lines: AsyncIterable<string>, output: Writable, version: string): Promise<void> {
  const send = async (message: RpcMessage): Promise<void> => {
    if (!output.write(`${JSON.stringify(message)}\n`)) await once(output, "drain");
  };
  const server = new RpcServer({ engine, send, log: (message) => process.stderr.write(`kce: ${message}\n`), version });
  await server.serve(lines);
}

/**
 * Waits for one client on the Unix socket `path` (removed as soon as it connected), then serves it as the
 * `kce rpc` its first line describes. Returns 0 when the client is done, or when stopped before one came.
 */
async function listenForOneClient(path: string, signal: AbortSignal, version: string): Promise<number> {
  rmSync(path, { force: true });
  const listener = createServer();
  listener.listen(path);
  await once(listener, "listening");
  const stopped = new Promise<null>((resolve) => signal.addEventListener("abort", () => resolve(null), { once: true }));
  const socket = await Promise.race([once(listener, "connection").then(([s]) => s as Socket), stopped]);
  listener.close();
  rmSync(path, { force: true });
  if (socket === null) return 0;
  // A client that went away ends the lines, which ends serving; its socket's error is not ours to crash on.
  socket.on("error", () => undefined);

  // Stopping ends the connection, which ends the lines, which cancels what is in flight (as stdin's end does).
  signal.addEventListener("abort", () => socket.end(), { once: true });
  const iterator = createInterface({ input: socket, crlfDelay: Infinity })[Symbol.asyncIterator]();
  const first = await iterator.next();
  if (first.done === true) return 0;
  let launch: RpcLaunch;
  let cmd: ParsedCommand;
  try {
    launch = parseLaunch(first.value);
    cmd = parseCommandLine(launch.argv);
  } catch (err) {
    // The client learns why (it has no stderr of ours to read), then the connection ends.
    socket.end(`${JSON.stringify({ id: null, error: encodeError(err) } satisfies RpcMessage)}\n`);
    throw err;
  }
  // From here on the process is the client's `kce rpc`: its environment (KUBECONFIG, KCE_*: client-node and
  // the engine read process.env) and its stderr, which travels on the socket.
  for (const name of Object.keys(process.env)) delete process.env[name];
  Object.assign(process.env, launch.env);
  process.stderr.write = ((chunk: string | Uint8Array, encodingOrDone?: unknown, maybeDone?: unknown) => {
    const done = [encodingOrDone, maybeDone].find((f): f is (err?: Error | null) => void => typeof f === "function");
    const text = typeof chunk === "string" ? chunk : Buffer.from(chunk).toString("utf8");
    if (!socket.writable) done?.(); // the client is gone: nobody is left to read it
    else socket.write(`${JSON.stringify({ stderr: text } satisfies RpcStderrMessage)}\n`, done);
    return true;
  }) as typeof process.stderr.write;
  const engine = createEngine(cmd, launch.env);
  await serveLines(engine, { [Symbol.asyncIterator]: () => iterator }, socket, version);
  socket.end();
  return 0;
}
