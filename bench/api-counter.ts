/**
 * Counts the HTTP requests this process sends to the API server: every request of client-node's generated
 * API (node-fetch), of the engine's own watch/log streams and of its websockets (ws) goes through
 * `http.request`/`https.request`, which are wrapped here. Each request is recorded with its method, path,
 * whether it is a watch, follow or websocket upgrade, and when it was sent.
 */
import http from "node:http";
import https from "node:https";

/** One request as sent. */
export interface ApiRequest {
  method: string;
  path: string;
  /** ms since the counter started. */
  at: number;
  kind: "get" | "list" | "watch" | "create" | "delete" | "patch" | "update" | "log" | "exec/attach" | "other";
}

function kindOf(method: string, path: string, upgrade: boolean): ApiRequest["kind"] {
  const [pathname = "", query = ""] = path.split("?");
  const params = new URLSearchParams(query);
  if (upgrade || /\/(exec|attach|portforward)$/.test(pathname)) return "exec/attach";
  if (pathname.endsWith("/log")) return "log";
  if (method === "GET" && params.get("watch") === "true") return "watch";
  if (method === "GET" && params.has("fieldSelector") && /metadata\.name=/.test(params.get("fieldSelector") ?? "")) return "list";
  if (method === "GET") return /\/namespaces\/[^/]+\/[^/]+\/[^/]+$/.test(pathname) ? "get" : "list";
  if (method === "POST") return "create";
  if (method === "DELETE") return "delete";
  if (method === "PATCH") return "patch";
  if (method === "PUT") return "update";
  return "other";
}

/** "host:port" of a `request(url | options, [options], [cb])` call. */
function targetOf(args: unknown[]): string {
  let host = "";
  let port = "";
  for (const a of args) {
    if (typeof a === "string" || a instanceof URL) {
      const u = new URL(String(a));
      host = u.hostname;
      port = u.port || (u.protocol === "https:" || u.protocol === "wss:" ? "443" : "80");
    } else if (a && typeof a === "object") {
      const o = a as { hostname?: string; host?: string; port?: string | number; protocol?: string };
      if (o.hostname ?? o.host) host = String(o.hostname ?? o.host).replace(/:\d+$/, "");
      if (o.port !== undefined && o.port !== null && o.port !== "") port = String(o.port);
      else if (!port && o.protocol) port = o.protocol === "https:" ? "443" : "80";
    }
  }
  return `${host}:${port}`;
}

/** Records the requests to `serverHost` ("127.0.0.1:6443") from now until `stop()`. */
export class ApiCounter {
  readonly requests: ApiRequest[] = [];
  private readonly started = performance.now();
  private readonly restore: () => void;

  constructor(serverHost: string) {
    const originals = { http: http.request, https: https.request };
    const wrap = <F extends typeof http.request>(original: F): F =>
      ((...args: Parameters<F>) => {
        const req = (original as (...a: unknown[]) => http.ClientRequest)(...args);
        if (targetOf(args) === serverHost) {
          const upgrade = String(req.getHeader("upgrade") ?? "").toLowerCase() === "websocket";
          this.requests.push({ method: req.method, path: req.path, at: performance.now() - this.started, kind: kindOf(req.method, req.path, upgrade) });
        }
        return req;
      }) as unknown as F;
    http.request = wrap(originals.http);
    https.request = wrap(originals.https);
    this.restore = () => {
      http.request = originals.http;
      https.request = originals.https;
    };
  }

  /** Requests recorded since `mark` (an index into `requests`). */
  since(mark: number): ApiRequest[] {
    return this.requests.slice(mark);
  }

  stop(): void {
    this.restore();
  }
}

/** `{kind: count}` of some requests. */
export function countByKind(requests: ApiRequest[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of requests) out[r.kind] = (out[r.kind] ?? 0) + 1;
  return out;
}
