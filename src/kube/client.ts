/**
 * The Kubernetes client the rest of the engine uses: typed API objects plus the one place where request
 * failures become {@link KubernetesApiError}s, and the raw streaming requests (watch, logs) and websockets
 * (exec, attach, port-forward) that client-node's generated API does not stream the way we need.
 */
import http from "node:http";
import https from "node:https";
import type { IncomingMessage } from "node:http";
import {
  BatchV1Api,
  CoreV1Api,
  Observable,
  type ConfigurationOptions,
  type KubeConfig,
  type RequestContext as KubeRequestContext,
  type ResponseContext,
} from "@kubernetes/client-node";
import WebSocket from "ws";
import { CancelledError } from "../errors.js";
import { HttpStatusError, RequestTimeoutError, toKubernetesApiError, type RequestContext } from "./api-errors.js";

/** Options of {@link KubeClient}. */
export interface KubeClientOptions {
  /** A loaded client-node KubeConfig (current context = the cluster to use). */
  kubeConfig: KubeConfig;
  /** The namespace every namespaced request goes to. */
  namespace: string;
  /** Deadline for one ordinary API call, in ms (default 5000): a server that is down fails fast. */
  callTimeoutMs?: number;
  /** Deadline for the response headers of a streaming request or a websocket handshake, in ms (default 5000). */
  connectTimeoutMs?: number;
}

/** Per-call options of {@link KubeClient.call}. */
export interface CallOptions {
  /** The object's name, for the error message. */
  name?: string;
  signal?: AbortSignal;
  /** Overrides the client's `callTimeoutMs`. */
  timeoutMs?: number;
}

/** A raw request of {@link KubeClient.openStream} / {@link KubeClient.openWebSocket}. */
export interface RawRequest {
  verb: string;
  /** "pods", "pods/log", "pods/exec", … (for messages). */
  resource: string;
  /** Path below the server URL, e.g. `/api/v1/namespaces/ns/pods`. */
  path: string;
  /** Query parameters; arrays become repeated keys (`command=a&command=b`). */
  query?: Record<string, string | number | boolean | string[] | undefined>;
  name?: string;
  signal?: AbortSignal;
}

function buildUrl(server: string, req: RawRequest, scheme?: "ws" | "wss"): URL {
  const url = new URL(server.replace(/\/+$/, "") + req.path);
  for (const [k, v] of Object.entries(req.query ?? {})) {
    if (v === undefined) continue;
    for (const item of Array.isArray(v) ? v : [v]) url.searchParams.append(k, String(item));
  }
  if (scheme !== undefined) url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  return url;
}

/** Reads at most `limit` bytes of a response body as text. */
export async function readBody(res: IncomingMessage, limit = 64 * 1024): Promise<string> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of res as AsyncIterable<Buffer>) {
    if (size < limit) parts.push(chunk.subarray(0, limit - size));
    size += chunk.length;
  }
  return Buffer.concat(parts).toString("utf8");
}

/**
 * Typed access to one namespace of one cluster. The constructor does no I/O. Every failure of a request made
 * through it is a {@link KubernetesApiError} (or {@link CancelledError} when the caller's signal aborted).
 */
export class KubeClient {
  readonly kubeConfig: KubeConfig;
  readonly namespace: string;
  /** The API server URL, for messages. */
  readonly server: string;
  readonly core: CoreV1Api;
  readonly batch: BatchV1Api;
  readonly callTimeoutMs: number;
  readonly connectTimeoutMs: number;

  constructor(options: KubeClientOptions) {
    this.kubeConfig = options.kubeConfig;
    this.namespace = options.namespace;
    this.server = options.kubeConfig.getCurrentCluster()?.server ?? "(no cluster in the kubeconfig)";
    this.core = options.kubeConfig.makeApiClient(CoreV1Api);
    this.batch = options.kubeConfig.makeApiClient(BatchV1Api);
    this.callTimeoutMs = options.callTimeoutMs ?? 5000;
    this.connectTimeoutMs = options.connectTimeoutMs ?? 5000;
  }

  /** The context for error messages of a request. */
  context(verb: string, resource: string, name?: string): RequestContext {
    return { verb, resource, namespace: this.namespace, server: this.server, ...(name !== undefined ? { name } : {}) };
  }

  /**
   * Runs one typed API call with a deadline and the caller's signal, mapping any failure.
   * `fn` must pass the given options to the client-node method (its last parameter).
   * @throws KubernetesApiError on any failure; CancelledError when `options.signal` aborted.
   */
  async call<T>(
    verb: string,
    resource: string,
    fn: (options: ConfigurationOptions) => Promise<T>,
    options: CallOptions = {},
  ): Promise<T> {
    const timeoutMs = options.timeoutMs ?? this.callTimeoutMs;
    const timeout = AbortSignal.timeout(timeoutMs);
    const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
    const configuration: ConfigurationOptions = {
      middleware: [
        {
          pre: (ctx: KubeRequestContext) => {
            ctx.setSignal(signal);
            return new Observable(Promise.resolve(ctx));
          },
          post: (ctx: ResponseContext) => new Observable(Promise.resolve(ctx)),
        },
      ],
      middlewareMergeStrategy: "append",
    };
    try {
      throwIfAborted(options.signal);
      return await fn(configuration);
    } catch (err) {
      if (options.signal?.aborted) throw new CancelledError(`${verb} ${resource} cancelled`, { cause: err });
      const cause = timeout.aborted ? new RequestTimeoutError(timeoutMs) : err;
      throw toKubernetesApiError(cause, this.context(verb, resource, options.name));
    }
  }

  /**
   * Sends a GET and returns the response once its headers arrived with a 2xx status; the body is the
   * caller's to consume (and destroy). The connect deadline covers only the wait for the headers.
   * @throws KubernetesApiError (non-2xx, unreachable, no headers in time); CancelledError.
   */
  async openStream(req: RawRequest): Promise<IncomingMessage> {
    const ctx = this.context(req.verb, req.resource, req.name);
    throwIfAborted(req.signal);
    const opts: https.RequestOptions = {};
    await this.kubeConfig.applyToHTTPSOptions(opts);
    const url = buildUrl(this.server, req);
    const transport = url.protocol === "https:" ? https : http;
    return new Promise<IncomingMessage>((resolve, reject) => {
      const request = transport.request(url, { ...opts, method: "GET" });
      const fail = (err: unknown): void => {
        cleanup();
        request.destroy();
        reject(req.signal?.aborted ? new CancelledError(`${req.verb} ${req.resource} cancelled`) : toKubernetesApiError(err, ctx));
      };
      const timer = setTimeout(() => fail(new RequestTimeoutError(this.connectTimeoutMs)), this.connectTimeoutMs);
      const onAbort = (): void => fail(new CancelledError(`${req.verb} ${req.resource} cancelled`));
      req.signal?.addEventListener("abort", onAbort, { once: true });
      const cleanup = (): void => {
        clearTimeout(timer);
        req.signal?.removeEventListener("abort", onAbort);
      };
      request.on("error", fail);
      request.on("response", (res) => {
        const code = res.statusCode ?? 0;
        if (code >= 200 && code < 300) {
          cleanup();
          request.removeListener("error", fail);
          request.on("error", (err) => res.destroy(err));
          resolve(res);
          return;
        }
        readBody(res).then((body) => fail(new HttpStatusError(code, body)), fail);
      });
      request.end();
    });
  }

  /**
   * GETs a JSON document through {@link openStream} (for lists the watch needs with their resourceVersion).
   * @throws like {@link openStream}, also when the body is not JSON.
   */
  async getJson<T>(req: RawRequest): Promise<T> {
    const res = await this.openStream(req);
    const timer = setTimeout(() => res.destroy(new RequestTimeoutError(this.callTimeoutMs)), this.callTimeoutMs);
    try {
      return JSON.parse(await readBody(res, Number.MAX_SAFE_INTEGER)) as T;
    } catch (err) {
      throw toKubernetesApiError(err, this.context(req.verb, req.resource, req.name));
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Opens a websocket (exec, attach, portforward) offering `protocols` in order of preference and resolves
   * once it is open. `ws.protocol` says which one the server chose.
   * @throws KubernetesApiError (refused handshake with the server's Status, unreachable); CancelledError.
   */
  async openWebSocket(req: RawRequest & { protocols: string[] }): Promise<WebSocket> {
    const ctx = this.context(req.verb, req.resource, req.name);
    throwIfAborted(req.signal);
    const url = buildUrl(this.server, req, "wss");
    const opts: WebSocket.ClientOptions = { handshakeTimeout: this.connectTimeoutMs, perMessageDeflate: false };
    // Frame masking guards plain-HTTP intermediaries against cache poisoning; inside TLS it only costs CPU
    // (an XOR over every byte sent, in JavaScript without bufferutil), so over wss the mask is zero (ws skips it).
    if (url.protocol === "wss:") opts.generateMask = (mask: Buffer) => void mask.fill(0);
    await this.kubeConfig.applyToHTTPSOptions(opts);
    const ws = new WebSocket(url, req.protocols, opts);
    return new Promise<WebSocket>((resolve, reject) => {
      let settled = false;
      const fail = (err: unknown): void => {
        if (settled) return;
        settled = true;
        req.signal?.removeEventListener("abort", onAbort);
        ws.terminate();
        reject(req.signal?.aborted ? new CancelledError(`${req.verb} ${req.resource} cancelled`) : toKubernetesApiError(err, ctx));
      };
      const onAbort = (): void => fail(new CancelledError(`${req.verb} ${req.resource} cancelled`));
      req.signal?.addEventListener("abort", onAbort, { once: true });
      ws.once("unexpected-response", (request, res) => {
        readBody(res).then((body) => fail(new HttpStatusError(res.statusCode ?? 0, body)), fail);
        res.on("close", () => request.destroy());
      });
      ws.once("error", (err: Error) => {
        const timedOut = /timed out/i.test(err.message);
        fail(timedOut ? new RequestTimeoutError(this.connectTimeoutMs) : err);
      });
      ws.once("open", () => {
        if (settled) return;
        settled = true;
        req.signal?.removeEventListener("abort", onAbort);
        resolve(ws);
      });
    });
  }
}

/** Throws {@link CancelledError} when the signal has aborted. */
export function throwIfAborted(signal: AbortSignal | undefined, what = "operation"): void {
  if (signal?.aborted) throw new CancelledError(`${what} cancelled`, { cause: signal.reason });
}
