/**
 * A client of the OCI distribution API v2 (https://github.com/opencontainers/distribution-spec): reads
 * manifests, image configs, the catalog and tag lists, and deletes manifests. One instance per engine; it
 * keeps the per-host scheme (https/http) and auth state it learns, nothing else.
 */
import { createHash } from "node:crypto";
import { InvalidInputError } from "../errors.js";
import { parseImageReference, type ImageReference } from "../image.js";
import { RegistryAuthenticator, unauthorizedError, type AuthRequest } from "./auth.js";
import type { BasicCredentials } from "./docker-config.js";
import { NOT_FOUND_CODES, RegistryError, parseRegistryErrorBody, registryFailure } from "./errors.js";
import { retryTransient } from "../kube/retry.js";
import { parseLinkNext } from "./headers.js";
import { send, type FetchFunction, type RawResponse } from "./http.js";
import {
  IMAGE_CONFIG_TYPES, MANIFEST_ACCEPT, formatPlatform, listPlatforms, parseManifest, parsePlatform, selectPlatformManifest,
  type Descriptor, type ParsedManifest, type Platform,
} from "./manifest.js";

/** How to reach one registry. */
export interface RegistryHostOptions {
  /**
   * Allow plain HTTP: like Docker, try https first and fall back to http when no TLS connection can be made
   * (remembered per client). Hosts `localhost`, `127.*` and `[::1]` are insecure implicitly. Self-signed
   * https is not supported by Node's fetch without a custom dispatcher: serve such registries over http.
   */
  insecure?: boolean;
  credentials?: BasicCredentials | null;
  /** Talk to this host[:port] instead (the same registry under another address, e.g. the node-local name). */
  endpoint?: string;
}

/** Options of {@link RegistryClient}. */
export interface RegistryClientOptions {
  /** Per registry host[:port], as references name it. Hosts not listed: https, anonymous. */
  hosts?: Record<string, RegistryHostOptions>;
  /** Default: the global fetch. */
  fetch?: FetchFunction;
  /** Per HTTP request, including reading the body; default 30 000 ms. */
  timeoutMs?: number;
  /** The platform chosen from indexes, `os/arch[/variant]`; default `linux/amd64`. */
  platform?: string;
  /** Clock for token expiry; default Date.now. */
  now?: () => number;
  /**
   * How long GET and HEAD requests are retried while the registry answers 429, 502, 503 or 504 (busy, or
   * restarting behind a proxy); default 15 000 ms, 0 to never retry. Other failures are not retried: an
   * unreachable registry or a refusal fails at once, with its own message.
   */
  busyRetryMs?: number;
  /** First delay between those retries; default 250 ms (doubling, at most 5 s). */
  busyRetryDelayMs?: number;
}

/** Per-call options. */
export interface RegistryCallOptions {
  signal?: AbortSignal;
}

/** A single-platform image manifest, resolved from a tag or digest (through an index when there is one). */
export interface ResolvedManifest {
  /** Digest of this manifest (`sha256:…`). */
  digest: string;
  mediaType: string;
  config: Descriptor;
  layers: Descriptor[];
  /** Digest of the index / manifest list it was chosen from; null when the reference named the manifest. */
  indexDigest: string | null;
}

/** An image config blob (OCI image config / Docker container image v1). `config` holds Env, Cmd, … */
export interface ImageConfigBlob {
  architecture?: string;
  os?: string;
  created?: string;
  config?: Record<string, unknown> | null;
  [key: string]: unknown;
}

/** A reference with a registry host (`host/name:tag`, `host/name@sha256:…`), as text or parsed. */
export type RegistryReference = string | ImageReference;

interface Target {
  host: string;
  endpoint: string;
  insecure: boolean;
  credentials: BasicCredentials | null;
}

interface Exchange {
  method: "GET" | "HEAD" | "DELETE" | "PUT";
  accept?: string;
  /** Request body and its media type (PUT). */
  body?: { bytes: Buffer; contentType: string };
  scope: string | null;
  signal?: AbortSignal | undefined;
  maxBytes?: number;
}

/** Answers that say "try again shortly" rather than "no". */
const BUSY_STATUSES = new Set([429, 502, 503, 504]);

/** Thrown inside the retry of a busy answer; never leaves this module. */
class RegistryBusy extends Error {
  constructor(readonly status: number) {
    super(`registry answered ${status}`);
  }
}

const IMPLICITLY_INSECURE = /^(?:localhost|127(?:\.\d{1,3}){3}|\[::1\])(?::\d+)?$/i;
const DOCKER_HUB = new Set(["docker.io", "index.docker.io"]);
const PAGE_SIZE = 1000;
const MAX_PAGES = 10_000;

const sha256 = (body: Buffer): string => `sha256:${createHash("sha256").update(body).digest("hex")}`;
const pullScope = (repository: string): string => `repository:${repository}:pull`;

/** Reads registries over the OCI distribution API v2; see the module comment. */
export class RegistryClient {
  private readonly fetchFn: FetchFunction;
  private readonly timeoutMs: number;
  private readonly busyRetryMs: number;
  private readonly busyRetryDelayMs: number;
  private readonly platform: Platform;
  private readonly hosts: Map<string, RegistryHostOptions>;
  private readonly schemes = new Map<string, "https" | "http">();
  private readonly auth: RegistryAuthenticator;

  /** Cheap and without I/O. @throws InvalidInputError for a malformed `platform`. */
  constructor(options: RegistryClientOptions = {}) {
    this.fetchFn = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.busyRetryMs = options.busyRetryMs ?? 15_000;
    this.busyRetryDelayMs = options.busyRetryDelayMs ?? 250;
    const platform = parsePlatform(options.platform ?? "linux/amd64");
    if (!platform) throw new InvalidInputError(`platform ${JSON.stringify(options.platform)} is not os/arch[/variant]`);
    this.platform = platform;
    this.hosts = new Map(Object.entries(options.hosts ?? {}).map(([host, o]) => [host.toLowerCase(), o]));
    const authOptions = { fetch: this.fetchFn, timeoutMs: this.timeoutMs };
    this.auth = new RegistryAuthenticator(options.now ? { ...authOptions, now: options.now } : authOptions);
  }

  /**
   * The single-platform manifest of `ref`; an index / manifest list is resolved to the manifest for
   * `platform` (default: the client's). Null when the repository, tag or manifest does not exist.
   * @throws RegistryError (`PLATFORM_UNKNOWN` when the index has no manifest for the platform, `BAD_RESPONSE`
   *   for schema 1 or unreadable manifests, `UNAUTHORIZED`, …); CancelledError; InvalidInputError.
   */
  async getManifest(ref: RegistryReference, options: RegistryCallOptions & { platform?: string } = {}): Promise<ResolvedManifest | null> {
    const r = this.reference(ref);
    const platform = options.platform ? parsePlatform(options.platform) : this.platform;
    if (!platform) throw new InvalidInputError(`platform ${JSON.stringify(options.platform)} is not os/arch[/variant]`);
    let reference = r.digest ?? r.tag ?? "latest";
    let indexDigest: string | null = null;
    for (let depth = 0; depth < 3; depth++) {
      const fetched = await this.fetchManifest(r, reference, options.signal);
      if (fetched === null) return null;
      const { manifest, digest } = fetched;
      if (manifest.kind === "manifest") {
        return { digest, mediaType: manifest.mediaType, config: manifest.config, layers: manifest.layers, indexDigest };
      }
      if (manifest.kind === "unsupported") {
        throw this.badResponse(r, `its manifest ${digest} cannot be read: ${manifest.reason}`, "BAD_RESPONSE");
      }
      const chosen = selectPlatformManifest(manifest.manifests, platform);
      if (!chosen) {
        const offered = listPlatforms(manifest.manifests).join(", ") || "none";
        throw this.badResponse(r, `it has no manifest for ${formatPlatform(platform)} (offered: ${offered})`, "PLATFORM_UNKNOWN");
      }
      indexDigest ??= digest;
      reference = chosen.digest;
    }
    throw this.badResponse(r, "its indexes nest more than 3 levels deep", "BAD_RESPONSE");
  }

  /**
   * The image config blob of `ref` (for the client's platform). Null when the image does not exist.
   * @throws RegistryError `NOT_AN_IMAGE` for OCI artifacts, `BLOB_UNKNOWN` when the manifest names a config
   *   the registry lacks, `DIGEST_MISMATCH`, and as {@link getManifest}.
   */
  async getConfig(ref: RegistryReference, options: RegistryCallOptions & { platform?: string } = {}): Promise<ImageConfigBlob | null> {
    const r = this.reference(ref);
    const manifest = await this.getManifest(r, options);
    if (manifest === null) return null;
    const { mediaType, digest } = manifest.config;
    if (mediaType !== "" && !IMAGE_CONFIG_TYPES.has(mediaType)) {
      throw this.badResponse(r, `it is not a container image (config media type ${mediaType})`, "NOT_AN_IMAGE");
    }
    const target = this.target(r.registry);
    const response = await this.exchange(target, `/v2/${this.repoPath(r)}/blobs/${digest}`, {
      method: "GET", scope: pullScope(this.repoPath(r)), signal: options.signal, maxBytes: 8 * 1024 * 1024,
    });
    if (this.isNotFound(response)) throw this.badResponse(r, `its config blob ${digest} is missing`, "BLOB_UNKNOWN");
    if (response.status !== 200) throw this.failure(target, response, `read the config of ${this.describe(r)}`);
    this.verifyDigest(r, digest, response.body);
    const blob = this.json(r, response.body);
    if (typeof blob !== "object" || blob === null || Array.isArray(blob)) {
      throw this.badResponse(r, "its config blob is not a JSON object", "BAD_RESPONSE");
    }
    return blob as ImageConfigBlob;
  }

  /**
   * The digest the registry reports for `ref` (HEAD, `Docker-Content-Digest`): for a multi-platform image
   * the index's digest, not the platform manifest's. Null when it does not exist.
   */
  async manifestDigest(ref: RegistryReference, options: RegistryCallOptions = {}): Promise<string | null> {
    const r = this.reference(ref);
    const target = this.target(r.registry);
    const reference = r.digest ?? r.tag ?? "latest";
    const path = `/v2/${this.repoPath(r)}/manifests/${reference}`;
    const exchange: Exchange = { method: "HEAD", accept: MANIFEST_ACCEPT, scope: pullScope(this.repoPath(r)), signal: options.signal };
    const head = await this.exchange(target, path, exchange);
    if (this.isNotFound(head)) return null;
    if (head.status !== 200) throw this.failure(target, head, `read the manifest of ${this.describe(r)}`);
    const header = head.headers.get("docker-content-digest");
    if (header) return header;
    if (r.digest) return r.digest;
    const get = await this.exchange(target, path, { ...exchange, method: "GET" });
    if (this.isNotFound(get)) return null;
    if (get.status !== 200) throw this.failure(target, get, `read the manifest of ${this.describe(r)}`);
    return sha256(get.body);
  }

  /** Whether `ref` exists (a manifest or index for its tag or digest). Throws as {@link manifestDigest}. */
  async exists(ref: RegistryReference, options: RegistryCallOptions = {}): Promise<boolean> {
    return (await this.manifestDigest(ref, options)) !== null;
  }

  /**
   * Every repository of the registry at `host` (`/v2/_catalog`, following `Link` pagination).
   * @throws RegistryError `UNSUPPORTED` when the registry offers no catalog (Docker Hub, most cloud registries).
   */
  async listRepositories(host: string, options: RegistryCallOptions = {}): Promise<string[]> {
    const target = this.target(host);
    const names = await this.paginate(target, `/v2/_catalog?n=${PAGE_SIZE}`, "registry:catalog:*", "repositories", options.signal);
    if (names === null) {
      throw new RegistryError(`registry ${host} does not offer the catalog API (/v2/_catalog): it cannot list images`, {
        host, statusCode: 404, code: "UNSUPPORTED",
      });
    }
    return names;
  }

  /** The tags of a repository (`host/name`); null when the repository does not exist. */
  async listTags(repository: RegistryReference, options: RegistryCallOptions = {}): Promise<string[] | null> {
    const r = this.reference(repository);
    const repo = this.repoPath(r);
    return this.paginate(this.target(r.registry), `/v2/${repo}/tags/list?n=${PAGE_SIZE}`, pullScope(repo), "tags", options.signal);
  }

  /**
   * Deletes the manifest of `ref` by digest (a tag is first resolved to its digest, which removes every tag
   * pointing at it). Returns false when it did not exist.
   * @throws RegistryError `UNSUPPORTED` when the registry has deletion disabled.
   */
  async deleteManifest(ref: RegistryReference, options: RegistryCallOptions = {}): Promise<boolean> {
    const r = this.reference(ref);
    const digest = r.digest ?? (await this.manifestDigest(r, options));
    if (digest === null) return false;
    const target = this.target(r.registry);
    const repo = this.repoPath(r);
    const response = await this.exchange(target, `/v2/${repo}/manifests/${digest}`, {
      method: "DELETE", scope: `repository:${repo}:delete`, signal: options.signal,
    });
    if (this.isNotFound(response)) return false;
    if (response.status === 200 || response.status === 202) return true;
    throw this.failure(target, response, `delete ${this.describe(r)} (${digest})`);
  }

  /**
   * Gives the image `source` names one more tag in the same repository: reads its manifest (or index) as it
   * is stored and PUTs the same bytes under `tag`, so the digest stays the same and no blob is copied.
   * Returns that digest, or null when `source` does not exist.
   * @throws RegistryError (`UNAUTHORIZED`/`DENIED` without push rights, …); CancelledError; InvalidInputError.
   */
  async tagManifest(source: RegistryReference, tag: string, options: RegistryCallOptions = {}): Promise<string | null> {
    const r = this.reference(source);
    const target = this.target(r.registry);
    const repo = this.repoPath(r);
    const scope = `repository:${repo}:pull,push`;
    const get = await this.exchange(target, `/v2/${repo}/manifests/${r.digest ?? r.tag ?? "latest"}`, {
      method: "GET", accept: MANIFEST_ACCEPT, scope, signal: options.signal, maxBytes: 4 * 1024 * 1024,
    });
    if (this.isNotFound(get)) return null;
    if (get.status !== 200) throw this.failure(target, get, `read the manifest of ${this.describe(r)}`);
    if (r.digest) this.verifyDigest(r, r.digest, get.body);
    const contentType = get.headers.get("content-type") ?? this.mediaTypeOf(r, get.body);
    const put = await this.exchange(target, `/v2/${repo}/manifests/${encodeURIComponent(tag)}`, {
      method: "PUT", scope, signal: options.signal, body: { bytes: get.body, contentType },
    });
    if (put.status !== 201 && put.status !== 200) throw this.failure(target, put, `tag ${this.describe(r)} as ${tag}`);
    return put.headers.get("docker-content-digest") ?? sha256(get.body);
  }

  private mediaTypeOf(r: ImageReference & { registry: string }, body: Buffer): string {
    const mediaType = (this.json(r, body) as { mediaType?: unknown } | null)?.mediaType;
    return typeof mediaType === "string" ? mediaType : "application/vnd.oci.image.manifest.v1+json";
  }

  private reference(ref: RegistryReference): ImageReference & { registry: string } {
    const parsed = typeof ref === "string" ? parseImageReference(ref) : ref;
    if (!parsed.registry) {
      throw new InvalidInputError(`image reference ${JSON.stringify(ref)} names no registry host; resolve it first`);
    }
    return { ...parsed, registry: parsed.registry };
  }

  private target(host: string): Target {
    const key = host.toLowerCase();
    const options = this.hosts.get(key) ?? (DOCKER_HUB.has(key) ? this.hosts.get("docker.io") : undefined) ?? {};
    const endpoint = options.endpoint ?? (DOCKER_HUB.has(key) ? "registry-1.docker.io" : host);
    return {
      host,
      endpoint,
      insecure: options.insecure === true || IMPLICITLY_INSECURE.test(endpoint),
      credentials: options.credentials ?? null,
    };
  }

  /** The repository path in API URLs; Docker Hub's official images live under `library/`. */
  private repoPath(r: ImageReference & { registry: string }): string {
    return DOCKER_HUB.has(r.registry.toLowerCase()) && !r.repository.includes("/") ? `library/${r.repository}` : r.repository;
  }

  private describe(r: ImageReference & { registry: string }): string {
    return `${r.registry}/${r.repository}${r.tag ? `:${r.tag}` : ""}${r.digest ? `@${r.digest}` : ""}`;
  }

  /** One exchange; a read the registry answers "busy" (429, 502–504) is repeated for up to `busyRetryMs`. */
  private async exchange(target: Target, pathOrUrl: string, exchange: Exchange): Promise<RawResponse> {
    const idempotent = exchange.method === "GET" || exchange.method === "HEAD";
    if (!idempotent || this.busyRetryMs <= 0) return this.authenticatedExchange(target, pathOrUrl, exchange);
    let busy: RawResponse | null = null;
    try {
      return await retryTransient(
        async () => {
          const response = await this.authenticatedExchange(target, pathOrUrl, exchange);
          if (!BUSY_STATUSES.has(response.status)) return response;
          busy = response;
          throw new RegistryBusy(response.status);
        },
        {
          maxRetryTimeMs: this.busyRetryMs,
          minDelayMs: this.busyRetryDelayMs,
          retryIf: (e) => e instanceof RegistryBusy,
          ...(exchange.signal ? { signal: exchange.signal } : {}),
        },
      );
    } catch (error) {
      // Still busy when the time was up: the caller turns that answer into its usual RegistryError.
      if (error instanceof RegistryBusy && busy) return busy;
      throw error;
    }
  }

  /** One authenticated exchange: scheme fallback for insecure hosts, one retry after answering a 401. */
  private async authenticatedExchange(target: Target, pathOrUrl: string, exchange: Exchange): Promise<RawResponse> {
    const authRequest: AuthRequest = { host: target.host, scope: exchange.scope, credentials: target.credentials, signal: exchange.signal };
    let authorization = this.auth.preemptive(authRequest);
    let response = await this.sendOnce(target, pathOrUrl, exchange, authorization);
    if (response.status !== 401) return response;
    authorization = await this.auth.answer(authRequest, response.headers.get("www-authenticate"));
    response = await this.sendOnce(target, pathOrUrl, exchange, authorization);
    if (response.status === 401) {
      const detail = parseRegistryErrorBody(response.body.toString("utf8"))?.message ?? "";
      throw unauthorizedError(authRequest, detail, 401);
    }
    return response;
  }

  private async sendOnce(target: Target, pathOrUrl: string, exchange: Exchange, authorization: string | null): Promise<RawResponse> {
    const headers: Record<string, string> = {};
    if (exchange.accept) headers.accept = exchange.accept;
    if (authorization) headers.authorization = authorization;
    if (exchange.body) headers["content-type"] = exchange.body.contentType;
    const init: RequestInit = { method: exchange.method, headers, ...(exchange.body ? { body: exchange.body.bytes } : {}) };
    const sendOptions = { fetch: this.fetchFn, host: target.host, timeoutMs: this.timeoutMs, signal: exchange.signal, maxBytes: exchange.maxBytes };
    if (/^https?:\/\//.test(pathOrUrl)) return send(pathOrUrl, init, sendOptions);
    const known = this.schemes.get(target.endpoint);
    const schemes = known ? [known] : target.insecure ? (["https", "http"] as const) : (["https"] as const);
    for (const [i, scheme] of schemes.entries()) {
      try {
        const response = await send(`${scheme}://${target.endpoint}${pathOrUrl}`, init, sendOptions);
        this.schemes.set(target.endpoint, scheme);
        return response;
      } catch (error) {
        const retry = error instanceof RegistryError && error.code === "UNREACHABLE" && i < schemes.length - 1;
        if (!retry) throw error;
      }
    }
    throw new Error("unreachable: the scheme loop returns or throws"); // for the type checker
  }

  /** GETs a JSON list endpoint page by page; null when the first page is a 404. */
  private async paginate(target: Target, path: string, scope: string, field: "repositories" | "tags", signal: AbortSignal | undefined): Promise<string[] | null> {
    const out: string[] = [];
    const seen = new Set<string>();
    let next: string | null = path;
    for (let page = 0; next !== null && page < MAX_PAGES && !seen.has(next); page++) {
      seen.add(next);
      const response = await this.exchange(target, next, { method: "GET", accept: "application/json", scope, signal });
      if (this.isNotFound(response)) {
        if (page === 0) return null;
        break; // the repository vanished between pages: keep what was listed
      }
      if (response.status !== 200) throw this.failure(target, response, `list ${field} of ${target.host}`);
      const body = this.jsonFrom(target.host, response.body) as Record<string, unknown> | null;
      const items: unknown = body?.[field];
      if (Array.isArray(items)) out.push(...items.filter((x): x is string => typeof x === "string"));
      next = parseLinkNext(response.headers.get("link"), response.url);
    }
    return out;
  }

  private async fetchManifest(r: ImageReference & { registry: string }, reference: string, signal: AbortSignal | undefined): Promise<{ manifest: ParsedManifest; digest: string } | null> {
    const target = this.target(r.registry);
    const repo = this.repoPath(r);
    const response = await this.exchange(target, `/v2/${repo}/manifests/${reference}`, {
      method: "GET", accept: MANIFEST_ACCEPT, scope: pullScope(repo), signal, maxBytes: 4 * 1024 * 1024,
    });
    if (this.isNotFound(response)) return null;
    if (response.status !== 200) throw this.failure(target, response, `read the manifest of ${this.describe(r)}`);
    if (reference.includes(":")) this.verifyDigest(r, reference, response.body);
    const digest = reference.includes(":") ? reference : sha256(response.body);
    return { manifest: parseManifest(this.json(r, response.body), response.headers.get("content-type")), digest };
  }

  private isNotFound(response: RawResponse): boolean {
    if (response.status === 404) return true;
    if (response.status < 400 || response.body.length === 0) return false;
    const code = parseRegistryErrorBody(response.body.toString("utf8"))?.code;
    return code !== undefined && NOT_FOUND_CODES.has(code);
  }

  private verifyDigest(r: ImageReference & { registry: string }, expected: string, body: Buffer): void {
    if (!expected.startsWith("sha256:")) return; // other algorithms: trust the registry
    const actual = sha256(body);
    if (actual !== expected) {
      throw this.badResponse(r, `content ${expected} arrived with digest ${actual} (corrupted or tampered)`, "DIGEST_MISMATCH");
    }
  }

  private json(r: ImageReference & { registry: string }, body: Buffer): unknown {
    return this.jsonFrom(r.registry, body, this.describe(r));
  }

  private jsonFrom(host: string, body: Buffer, what = host): unknown {
    try {
      return JSON.parse(body.toString("utf8"));
    } catch (error) {
      throw new RegistryError(`registry ${host} sent a response for ${what} that is not JSON`, { host, code: "BAD_RESPONSE", cause: error });
    }
  }

  private badResponse(r: ImageReference & { registry: string }, why: string, code: string): RegistryError {
    return new RegistryError(`image ${this.describe(r)} cannot be used: ${why}`, { host: r.registry, code });
  }

  private failure(target: Target, response: RawResponse, action: string): RegistryError {
    return registryFailure({
      host: target.host, hasCredentials: target.credentials !== null, statusCode: response.status,
      body: response.body.toString("utf8"), action,
    });
  }
}
