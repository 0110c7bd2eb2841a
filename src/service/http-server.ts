/**
 * The build service's HTTP surface (node:http): BinderHub's `GET <base>build/<provider>/<spec>` as an event
 * stream, `health`, `versions`, `metrics`, and the page at `<base>`. Authentication and CORS are decided
 * here; what to build is the BuildService's business.
 */
import http, { type IncomingMessage, type ServerResponse } from "node:http";
import { once } from "node:events";
import type { RequestAuthenticator } from "./identity.js";
import type { BuildService, ServiceEvent } from "./build-service.js";
import type { ServiceConfig } from "./config.js";
import { METRICS_CONTENT_TYPE } from "./metrics.js";
import type { ServiceMetrics } from "./service-metrics.js";
import { formatComment, formatEvent, KEEPALIVE_INTERVAL_MS } from "./sse.js";

/** One check of `/health`. */
export interface HealthCheck {
  service: string;
  ok: boolean;
  message?: string;
}

/** A file of the page (index.html, the bundled script). */
export interface StaticFile {
  body: Buffer;
  contentType: string;
}

export interface HttpServerDeps {
  config: ServiceConfig;
  service: BuildService;
  auth: RequestAuthenticator;
  metrics: ServiceMetrics;
  health: () => Promise<HealthCheck[]>;
  versions: () => Record<string, unknown>;
  /** A page file by its path below `<base>` ("" is the index), or null. */
  page: (path: string) => StaticFile | null;
  log: (message: string) => void;
  /** Injectable for tests. */
  keepaliveMs?: number;
}

const SSE_HEADERS = { "content-type": "text/event-stream", "cache-control": "no-cache", "x-accel-buffering": "no" };

export class ServiceHttpServer {
  readonly server: http.Server;
  private readonly streams = new Set<ServerResponse>();
  private draining = false;

  constructor(private readonly deps: HttpServerDeps) {
    this.server = http.createServer((req, res) => {
      this.route(req, res).catch((err: unknown) => {
        deps.log(`request ${req.method} ${req.url}: ${err instanceof Error ? err.message : String(err)}`);
        if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" });
        res.end();
      });
    });
    // Event streams stay open for as long as a build takes.
    this.server.requestTimeout = 0;
    this.server.headersTimeout = 30_000;
  }

  async listen(): Promise<{ host: string; port: number }> {
    this.server.listen(this.deps.config.port, this.deps.config.host);
    await once(this.server, "listening");
    const address = this.server.address();
    return typeof address === "object" && address !== null ? { host: address.address, port: address.port } : { host: "", port: 0 };
  }

  /** Readiness fails from now on; open streams go on until they end or `graceMs` passed. */
  async drain(graceMs: number): Promise<void> {
    this.draining = true;
    this.server.close();
    const deadline = Date.now() + graceMs;
    while (this.streams.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    for (const res of this.streams) res.destroy();
    this.server.closeAllConnections();
  }

  private cors(req: IncomingMessage, res: ServerResponse): void {
    const origin = req.headers.origin;
    const allowed = this.deps.config.corsOrigins;
    if (origin === undefined || allowed.length === 0) return;
    if (allowed.includes("*") || allowed.includes(origin)) {
      res.setHeader("access-control-allow-origin", allowed.includes("*") ? "*" : origin);
      res.setHeader("access-control-allow-headers", "authorization, cache-control, last-event-id, x-xsrftoken");
      res.setHeader("access-control-allow-methods", "GET, HEAD, OPTIONS");
      res.setHeader("vary", "origin");
    }
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const base = this.deps.config.baseUrl;
    const rawPath = (req.url ?? "/").split("?")[0] ?? "/";
    const query = new URLSearchParams((req.url ?? "").split("?")[1] ?? "");
    this.cors(req, res);
    // The probes' paths do not depend on the base URL.
    if (rawPath === "/health" && base !== "/") return this.health(req, res);
    if (rawPath === "/versions" && base !== "/") return this.json(res, 200, this.deps.versions());
    if (!rawPath.startsWith(base) && `${rawPath}/` !== base) return this.text(res, 404, "not found");
    const path = rawPath.slice(base.length);
    if (req.method === "OPTIONS") return void res.writeHead(204).end();
    if (req.method !== "GET" && req.method !== "HEAD") return this.text(res, 405, "method not allowed");
    if (path.startsWith("build/")) return this.build(req, res, path.slice("build/".length), query);
    if (path === "health") return this.health(req, res);
    if (path === "versions") return this.json(res, 200, this.deps.versions());
    if (path === "metrics") return void res.writeHead(200, { "content-type": METRICS_CONTENT_TYPE }).end(this.deps.metrics.registry.render());
    const file = this.deps.page(path);
    if (file) return void res.writeHead(200, { "content-type": file.contentType, "cache-control": "no-cache" }).end(req.method === "HEAD" ? undefined : file.body);
    return this.text(res, 404, "not found");
  }

  private text(res: ServerResponse, status: number, body: string): void {
    res.writeHead(status, { "content-type": "text/plain; charset=utf-8" }).end(`${body}\n`);
  }

  private json(res: ServerResponse, status: number, body: unknown): void {
    res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
  }

  private async health(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const checks = this.draining ? [{ service: "Build service", ok: false, message: "shutting down" }] : await this.deps.health();
    const ok = checks.every((c) => c.ok);
    if (req.method === "HEAD") return void res.writeHead(ok ? 200 : 503).end();
    this.json(res, ok ? 200 : 503, { ok, checks });
  }

  private async build(req: IncomingMessage, res: ServerResponse, rest: string, query: URLSearchParams): Promise<void> {
    const auth = await this.deps.auth.authenticate(req.headers.authorization);
    if (!auth.ok) {
      res.writeHead(auth.status, { ...SSE_HEADERS, ...(auth.status === 401 ? { "www-authenticate": 'Bearer realm="kce"' } : {}) });
      res.end(formatEvent({ phase: "failed", status_code: auth.status, message: `${auth.message}\n` }, "request/-1"));
      return;
    }
    const slash = rest.indexOf("/");
    const provider = slash < 0 ? rest : rest.slice(0, slash);
    const spec = slash < 0 ? "" : rest.slice(slash + 1);
    const abort = new AbortController();
    const onClose = (): void => abort.abort();
    res.on("close", onClose);
    res.writeHead(200, SSE_HEADERS);
    res.flushHeaders();
    this.streams.add(res);
    const keepalive = setInterval(() => res.write(formatComment("keepalive")), this.deps.keepaliveMs ?? KEEPALIVE_INTERVAL_MS);
    let last: ServiceEvent | null = null;
    try {
      const lastEventId = header(req, "last-event-id") ?? query.get("last_event_id");
      const events = this.deps.service.build({
        provider,
        spec,
        buildOnly: (query.get("build_only") ?? "").toLowerCase() === "true",
        lastEventId,
        identity: auth.identity,
        signal: abort.signal,
      });
      for await (const event of events) {
        last = event;
        if (!res.write(formatEvent(event.data, event.id))) await Promise.race([once(res, "drain"), once(res, "close")]);
        if (abort.signal.aborted) return;
      }
      // binderhub-client treats a server that closes before the client as an error: after `ready` the
      // client closes (as BinderHub's linger expects); a `failed` client stops by itself.
      if (last?.data.phase === "ready") await this.linger(res, abort.signal);
    } finally {
      clearInterval(keepalive);
      res.off("close", onClose);
      this.streams.delete(res);
      res.end();
    }
  }

  private async linger(res: ServerResponse, signal: AbortSignal): Promise<void> {
    const ms = this.deps.config.lingerSeconds * 1000;
    if (ms === 0 || signal.aborted) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      signal.addEventListener("abort", () => {
        clearTimeout(timer);
        resolve();
      }, { once: true });
      if (this.draining) resolve();
    });
    void res;
  }
}

function header(req: IncomingMessage, name: string): string | null {
  const value = req.headers[name];
  return Array.isArray(value) ? (value[0] ?? null) : (value ?? null);
}
