/** A tiny in-memory OCI registry on 127.0.0.1 for protocol tests: manifests, blobs, catalog, tags, auth. */
import { createHash } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { MEDIA_TYPES } from "../../../src/registry/manifest.js";

export type FakeAuth = { kind: "none" } | { kind: "basic"; user: string; password: string } | { kind: "bearer"; user?: string; password?: string };

export interface FakeRegistry {
  host: string;
  /** Every request as "METHOD path". */
  log: string[];
  tokenRequests: URLSearchParams[];
  /** repository → tag or digest → {mediaType, body} */
  manifests: Map<string, Map<string, { mediaType: string; body: Buffer }>>;
  blobs: Map<string, Buffer>;
  pageSize: number;
  deleteEnabled: boolean;
  /** Paths that never answer (for timeout tests). */
  hang: Set<string>;
  close(): Promise<void>;
}

export const digestOf = (body: Buffer): string => `sha256:${createHash("sha256").update(body).digest("hex")}`;

/** Adds a single-platform image (config blob + manifest), optionally wrapped in an index; returns digests. */
export function addImage(
  registry: FakeRegistry,
  repository: string,
  tag: string,
  config: object,
  options: { index?: boolean } = {},
): { manifest: string; index: string | null; config: string } {
  const configBody = Buffer.from(JSON.stringify(config));
  const configDigest = digestOf(configBody);
  registry.blobs.set(configDigest, configBody);
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: MEDIA_TYPES.ociManifest,
    config: { mediaType: MEDIA_TYPES.ociConfig, digest: configDigest, size: configBody.length }, layers: [],
  }));
  const repo = registry.manifests.get(repository) ?? new Map();
  registry.manifests.set(repository, repo);
  const manifestDigest = digestOf(manifest);
  repo.set(manifestDigest, { mediaType: MEDIA_TYPES.ociManifest, body: manifest });
  if (!options.index) {
    repo.set(tag, { mediaType: MEDIA_TYPES.ociManifest, body: manifest });
    return { manifest: manifestDigest, index: null, config: configDigest };
  }
  const other = { mediaType: MEDIA_TYPES.ociManifest, digest: `sha256:${"b".repeat(64)}`, size: 1, platform: { os: "linux", architecture: "arm64" } };
  const index = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: MEDIA_TYPES.ociIndex,
    manifests: [other, { mediaType: MEDIA_TYPES.ociManifest, digest: manifestDigest, size: manifest.length, platform: { os: "linux", architecture: "amd64" } }],
  }));
  repo.set(tag, { mediaType: MEDIA_TYPES.ociIndex, body: index });
  repo.set(digestOf(index), { mediaType: MEDIA_TYPES.ociIndex, body: index });
  return { manifest: manifestDigest, index: digestOf(index), config: configDigest };
}

const error = (res: ServerResponse, status: number, code: string, headers: Record<string, string> = {}): void => {
  res.writeHead(status, { "content-type": "application/json", ...headers });
  res.end(JSON.stringify({ errors: [{ code, message: code.toLowerCase().replace("_", " "), detail: null }] }));
};

/** Starts a fake registry on 127.0.0.1 with the given auth. */
export async function startFakeRegistry(auth: FakeAuth = { kind: "none" }): Promise<FakeRegistry> {
  let server: Server | undefined;
  const registry: FakeRegistry = {
    host: "", log: [], tokenRequests: [], manifests: new Map(), blobs: new Map(), pageSize: 100, deleteEnabled: true,
    hang: new Set(),
    close: () => new Promise((resolve) => { server?.closeAllConnections(); server?.close(() => resolve()); }),
  };
  const basic = (user?: string, password?: string): string => `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;
  const authorized = (req: IncomingMessage, res: ServerResponse, scope: string): boolean => {
    const header = req.headers.authorization ?? "";
    if (auth.kind === "none") return true;
    if (auth.kind === "basic") {
      if (header === basic(auth.user, auth.password)) return true;
      error(res, 401, "UNAUTHORIZED", { "www-authenticate": 'Basic realm="fake"' });
      return false;
    }
    if (header === `Bearer token-for-${scope}`) return true;
    error(res, 401, "UNAUTHORIZED", {
      "www-authenticate": `Bearer realm="http://${registry.host}/token",service="fake",scope="${scope}"`,
    });
    return false;
  };
  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const url = new URL(req.url ?? "/", `http://${registry.host}`);
    registry.log.push(`${req.method} ${url.pathname}${url.search}`);
    if (registry.hang.has(url.pathname)) return;
    if (url.pathname === "/token") {
      registry.tokenRequests.push(url.searchParams);
      if (auth.kind === "bearer" && auth.user && req.headers.authorization !== basic(auth.user, auth.password)) {
        return error(res, 401, "UNAUTHORIZED");
      }
      res.writeHead(200, { "content-type": "application/json" });
      return void res.end(JSON.stringify({ token: `token-for-${url.searchParams.get("scope")}`, expires_in: 300 }));
    }
    if (url.pathname === "/v2/_catalog") {
      if (!authorized(req, res, "registry:catalog:*")) return;
      const names = [...registry.manifests.keys()].sort();
      const last = url.searchParams.get("last");
      const start = last ? names.indexOf(last) + 1 : 0;
      const page = names.slice(start, start + registry.pageSize);
      const headers: Record<string, string> = { "content-type": "application/json" };
      if (start + registry.pageSize < names.length) headers.link = `</v2/_catalog?last=${page.at(-1)}&n=${registry.pageSize}>; rel="next"`;
      res.writeHead(200, headers);
      return void res.end(JSON.stringify({ repositories: page }));
    }
    const m = /^\/v2\/(.+)\/(manifests|blobs|tags)\/(.+)$/.exec(url.pathname);
    if (!m) return error(res, 404, "NOT_FOUND");
    const [, repository = "", kind, reference = ""] = m;
    const action = req.method === "DELETE" ? "delete" : "pull";
    if (!authorized(req, res, `repository:${repository}:${action}`)) return;
    const repo = registry.manifests.get(repository);
    if (kind === "tags") {
      if (!repo) return error(res, 404, "NAME_UNKNOWN");
      res.writeHead(200, { "content-type": "application/json" });
      return void res.end(JSON.stringify({ name: repository, tags: [...repo.keys()].filter((k) => !k.includes(":")) }));
    }
    if (kind === "blobs") {
      const blob = registry.blobs.get(reference);
      if (!blob) return error(res, 404, "BLOB_UNKNOWN");
      res.writeHead(200, { "content-type": "application/octet-stream" });
      return void res.end(blob);
    }
    const entry = repo?.get(reference);
    if (req.method === "DELETE") {
      if (!registry.deleteEnabled) return error(res, 405, "UNSUPPORTED");
      if (!repo || !entry || !reference.includes(":")) return error(res, 404, "MANIFEST_UNKNOWN");
      for (const [key, value] of repo) if (value.body.equals(entry.body)) repo.delete(key);
      res.writeHead(202);
      return void res.end();
    }
    if (!repo) return error(res, 404, "NAME_UNKNOWN");
    if (!entry) return error(res, 404, "MANIFEST_UNKNOWN");
    res.writeHead(200, { "content-type": entry.mediaType, "docker-content-digest": digestOf(entry.body), "content-length": entry.body.length });
    res.end(req.method === "HEAD" ? undefined : entry.body);
  };
  server = createServer(handle);
  await new Promise<void>((resolve) => server?.listen(0, "127.0.0.1", resolve));
  registry.host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return registry;
}
