// A fake JupyterHub REST API on loopback (the parts kce serve uses): token identity with scopes, named servers
// started with user_options, the spawn progress stream, user models and per-server tokens. Every request is
// recorded with the token that made it, so tests check who asked for what.
import http from "node:http";
import { once } from "node:events";

export interface FakeServer {
  userOptions: Record<string, unknown>;
  ready: boolean;
}

export class FakeHub {
  /** token → user name and scopes. */
  readonly tokens = new Map<string, { name: string; kind?: string; scopes: string[] }>();
  /** user → server name → server. */
  readonly servers = new Map<string, Map<string, FakeServer>>();
  readonly requests: Array<{ method: string; path: string; token: string | null; body: unknown }> = [];
  /** Progress messages a spawn reports before it is ready. */
  progress = ["Server requested", "Pod created"];
  /** When set, a spawn fails with this message. */
  spawnFailure: string | null = null;
  private server: http.Server;
  private issued = 0;
  url = "";

  constructor(readonly serviceToken = "service-token") {
    this.tokens.set(serviceToken, { name: "binder", kind: "service", scopes: ["servers", "tokens", "read:users"] });
    this.server = http.createServer((req, res) => void this.handle(req, res));
  }

  async start(): Promise<string> {
    this.server.listen(0, "127.0.0.1");
    await once(this.server, "listening");
    const address = this.server.address();
    if (typeof address !== "object" || address === null) throw new Error("no address");
    this.url = `http://127.0.0.1:${address.port}/hub/api`;
    return this.url;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private send(res: http.ServerResponse, status: number, body: unknown): void {
    res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString();
    const body: unknown = text ? JSON.parse(text) : null;
    const token = /^token (.+)$/.exec(req.headers.authorization ?? "")?.[1] ?? null;
    const path = (req.url ?? "").replace(/^\/hub\/api/, "");
    this.requests.push({ method: req.method ?? "", path, token, body });
    const who = token ? this.tokens.get(token) : undefined;
    if (!who) return this.send(res, 403, { status: 403, message: "Missing or invalid credentials" });
    if (req.method === "GET" && path === "/user") return this.send(res, 200, { name: who.name, kind: who.kind ?? "user", scopes: who.scopes });
    const isService = who.kind === "service";
    let m = /^\/users\/([^/]+)\/servers\/([^/]+)(\/progress)?$/.exec(path);
    if (m && isService) {
      const [, user = "", name = "", progress] = m.map((x) => (x ? decodeURIComponent(x) : x));
      const servers = this.servers.get(user) ?? new Map<string, FakeServer>();
      this.servers.set(user, servers);
      if (req.method === "POST" && !progress) {
        if (servers.get(name)?.ready) return this.send(res, 400, { status: 400, message: `${user}:${name} is already running` });
        servers.set(name, { userOptions: (body as { user_options?: Record<string, unknown> }).user_options ?? {}, ready: false });
        res.writeHead(202).end();
        return;
      }
      if (req.method === "GET" && progress) {
        res.writeHead(200, { "content-type": "text/event-stream" });
        for (const message of this.progress) res.write(`data: ${JSON.stringify({ progress: 50, message })}\n\n`);
        const s = servers.get(name);
        if (this.spawnFailure !== null || !s) {
          res.end(`data: ${JSON.stringify({ progress: 100, failed: true, message: this.spawnFailure ?? "no such server" })}\n\n`);
          return;
        }
        s.ready = true;
        res.end(`data: ${JSON.stringify({ progress: 100, ready: true, message: `Server ready at /user/${user}/${name}/`, url: `/user/${user}/${name}/` })}\n\n`);
        return;
      }
    }
    m = /^\/users\/([^/]+)$/.exec(path);
    if (m && req.method === "GET" && isService) {
      const user = decodeURIComponent(m[1] ?? "");
      const servers = Object.fromEntries(
        [...(this.servers.get(user) ?? new Map<string, FakeServer>()).entries()].map(([name, s]) => [
          name,
          { ready: s.ready, pending: s.ready ? null : "spawn", url: `/user/${user}/${name}/`, user_options: s.userOptions },
        ]),
      );
      return this.send(res, 200, { name: user, servers });
    }
    m = /^\/users\/([^/]+)\/tokens$/.exec(path);
    if (m && req.method === "POST" && isService) {
      const user = decodeURIComponent(m[1] ?? "");
      const issued = `server-token-${++this.issued}`;
      this.tokens.set(issued, { name: user, scopes: (body as { scopes?: string[] }).scopes ?? [] });
      return this.send(res, 201, { token: issued });
    }
    this.send(res, 403, { status: 403, message: `Action is not authorized with current scopes` });
  }
}
