/**
 * The `kce rpc` server: serves protocol requests (see ./protocol.ts) against an engine. Pure translation —
 * every decision stays in the engine. Transport-agnostic: lines in, messages out, so tests drive it directly.
 */
import { createReadStream } from "node:fs";
import { Readable } from "node:stream";
import type { BuildOptions, BuildProgress, Container, RunOptions } from "../contract.js";
import { CancelledError } from "../errors.js";
import type { Image } from "../image.js";
import { encodeError, parseRequest, PROTOCOL_VERSION, RpcError, type RequestId, type RpcMessage, type RpcRequest } from "./protocol.js";

/** The engine methods the server calls (KubernetesEngine, or a fake in tests). */
export interface RpcEngine {
  build(options: BuildOptions): AsyncIterable<string> & { readonly result?: Promise<unknown> };
  inspectImage(ref: string): Promise<Image | null>;
  images(): Promise<Image[]>;
  push(ref: string): AsyncIterable<string>;
  run(ref: string, options?: RunOptions): Promise<Container>;
}

export interface RpcServerOptions {
  engine: RpcEngine;
  /** Writes one message; resolves when the transport can take more (backpressure). */
  send: (message: RpcMessage) => Promise<void> | void;
  /** Warnings (stderr). */
  log: (message: string) => void;
  version: string;
}

/** The container snapshot the protocol sends. */
export interface ContainerSnapshot {
  id: string;
  status: string;
  exitcode: number | null;
  reason: string | null;
  ports: Record<string, { host: string; port: number }>;
}

const RUN_OPTIONS = new Set(["command", "environment", "ports", "publishAllPorts", "remove", "volumes", "user"]);
/** How long a shutdown waits for requests in flight to finish after cancelling them (builder cleanup). */
const SHUTDOWN_GRACE_MS = 60_000;

export class RpcServer {
  private readonly containers = new Map<string, Container>();
  private readonly inflight = new Map<RequestId, { abort: AbortController; done: Promise<void> }>();

  constructor(private readonly options: RpcServerOptions) {}

  /** Serves every line of `lines` (requests run concurrently); at its end, cancels what is in flight. */
  async serve(lines: AsyncIterable<string>): Promise<void> {
    for await (const line of lines) {
      if (line.trim() !== "") this.accept(line);
    }
    await this.shutdown();
  }

  /** Starts serving one request line; replies go through `send`. */
  accept(line: string): void {
    let request: RpcRequest;
    try {
      request = parseRequest(line);
    } catch (err) {
      const id = (err as { requestId?: RequestId }).requestId ?? null;
      void this.options.send({ id, error: encodeError(err) });
      return;
    }
    if (this.inflight.has(request.id)) {
      void this.options.send({ id: request.id, error: encodeError(new RpcError(`request id ${JSON.stringify(request.id)} is already in flight`)) });
      return;
    }
    const abort = new AbortController();
    const done = this.serveRequest(request, abort.signal).finally(() => this.inflight.delete(request.id));
    this.inflight.set(request.id, { abort, done });
  }

  /** Cancels every request in flight and waits (bounded) until they finished. */
  async shutdown(): Promise<void> {
    const pending = [...this.inflight.values()];
    for (const { abort } of pending) abort.abort();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled(pending.map((p) => p.done)),
      new Promise((resolve) => (timer = setTimeout(resolve, SHUTDOWN_GRACE_MS))),
    ]);
    clearTimeout(timer);
  }

  private async serveRequest(request: RpcRequest, signal: AbortSignal): Promise<void> {
    const { id } = request;
    try {
      const result = await this.dispatch(request, signal, (line) => this.options.send({ id, line }));
      await this.options.send({ id, result: result ?? null });
    } catch (err) {
      await this.options.send({ id, error: encodeError(signal.aborted && !(err instanceof CancelledError) ? cancelled(id) : err) });
    }
  }

  private async dispatch(request: RpcRequest, signal: AbortSignal, line: (text: string) => Promise<void> | void): Promise<unknown> {
    const params = request.params ?? {};
    const { engine } = this.options;
    switch (request.method) {
      case "hello":
        return { protocol: PROTOCOL_VERSION, version: this.options.version };
      case "cancel": {
        const target = this.inflight.get(params.id as RequestId);
        target?.abort.abort();
        return null;
      }
      case "build": {
        const stream = engine.build({ ...buildOptions(params), signal, onProgress: (p: BuildProgress) => void this.options.send({ id: request.id, progress: p }) });
        for await (const text of guard(stream, signal, request.id)) await line(text);
        const result = (await stream.result) as { image?: string; digest?: string | null; pushed?: boolean } | undefined;
        return result ? { image: result.image, digest: result.digest ?? null, pushed: result.pushed ?? null } : null;
      }
      case "push":
        for await (const text of guard(engine.push(stringParam(params, "ref")), signal, request.id)) await line(text);
        return null;
      case "inspectImage": {
        const image = await race(engine.inspectImage(stringParam(params, "ref")), signal, request.id);
        return image ? imageJson(image) : null;
      }
      case "images":
        return (await race(engine.images(), signal, request.id)).map(imageJson);
      case "run": {
        const { ref, ...rest } = params;
        const unknown = Object.keys(rest).filter((k) => !RUN_OPTIONS.has(k));
        for (const name of unknown) this.options.log(`run: ignoring unknown option ${name}`);
        const options = Object.fromEntries(Object.entries(rest).filter(([k, v]) => RUN_OPTIONS.has(k) && v !== null)) as RunOptions;
        const container = await engine.run(stringParam({ ref }, "ref"), { ...options, signal });
        this.containers.set(container.id, container);
        return snapshot(container);
      }
      case "container.reload": {
        const container = this.container(params);
        await race(container.reload(), signal, request.id);
        return snapshot(container);
      }
      case "container.logs":
        return race(this.container(params).logs(logOptions(params)), signal, request.id);
      case "container.streamLogs": {
        const container = this.container(params);
        for await (const text of guard(container.streamLogs(logOptions(params)), signal, request.id)) await line(text);
        return snapshot(container);
      }
      case "container.kill": {
        const container = this.container(params);
        await race(container.kill(typeof params.signal === "string" ? { signal: params.signal } : {}), signal, request.id);
        return snapshot(container);
      }
      case "container.stop": {
        const container = this.container(params);
        await race(container.stop(typeof params.timeout === "number" ? { timeout: params.timeout } : {}), signal, request.id);
        return snapshot(container);
      }
      case "container.wait": {
        const container = this.container(params);
        const { exitCode } = await race(container.wait(), signal, request.id);
        return { exitCode, container: snapshot(container) };
      }
      case "container.remove": {
        const container = this.container(params);
        await race(container.remove(), signal, request.id);
        return snapshot(container);
      }
      default:
        throw new RpcError(`unknown method ${JSON.stringify(request.method)}`);
    }
  }

  private container(params: Record<string, unknown>): Container {
    const id = stringParam(params, "container");
    const container = this.containers.get(id);
    if (!container) throw new RpcError(`unknown container ${JSON.stringify(id)}: containers are known to the kce rpc process that ran them`);
    return container;
  }
}

function cancelled(id: RequestId): CancelledError {
  return new CancelledError(`request ${JSON.stringify(id)} was cancelled`);
}

/** Rejects when `signal` aborts (the operation itself may go on in the background). */
function race<T>(promise: Promise<T>, signal: AbortSignal, id: RequestId): Promise<T> {
  if (signal.aborted) {
    promise.catch(() => undefined);
    return Promise.reject(cancelled(id));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(cancelled(id));
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

/** Iterates `iterable` until it ends or `signal` aborts (then the iterator is closed in the background). */
async function* guard<T>(iterable: AsyncIterable<T>, signal: AbortSignal, id: RequestId): AsyncGenerator<T> {
  const iterator = iterable[Symbol.asyncIterator]();
  let finished = false;
  try {
    for (;;) {
      const next = await race(iterator.next(), signal, id);
      if (next.done) {
        finished = true;
        return;
      }
      yield next.value;
    }
  } finally {
    if (!finished) void Promise.resolve(iterator.return?.()).catch(() => undefined);
  }
}

function stringParam(params: Record<string, unknown>, name: string): string {
  const value = params[name];
  if (typeof value !== "string" || value === "") throw new RpcError(`param "${name}" must be a non-empty string`);
  return value;
}

/** Build params → BuildOptions: the context arrives as a file path or base64; everything else as is. */
function buildOptions(params: Record<string, unknown>): BuildOptions {
  const { contextFile, contextBase64, ...rest } = params;
  if (contextFile !== undefined && contextBase64 !== undefined) throw new RpcError('give one of "contextFile" and "contextBase64"');
  const options = Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== null)) as unknown as BuildOptions;
  if (typeof contextFile === "string") return { ...options, context: createReadStream(contextFile) };
  if (typeof contextBase64 === "string") return { ...options, context: Readable.from([Buffer.from(contextBase64, "base64")]) };
  if (contextFile !== undefined || contextBase64 !== undefined) throw new RpcError('"contextFile" and "contextBase64" must be strings');
  return options;
}

function logOptions(params: Record<string, unknown>): { timestamps?: boolean; since?: string } {
  return {
    ...(params.timestamps === true ? { timestamps: true } : {}),
    ...(typeof params.since === "string" && params.since !== "" ? { since: params.since } : {}),
  };
}

function imageJson(image: Image): { tags: string[]; config: unknown } {
  return { tags: image.tags, config: image.config };
}

export function snapshot(container: Container): ContainerSnapshot {
  return {
    id: container.id,
    status: container.status,
    exitcode: container.exitcode,
    reason: container.reason,
    ports: container.ports ?? {},
  };
}
