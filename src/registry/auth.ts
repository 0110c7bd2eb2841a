/**
 * Answers registry 401 challenges: `Basic` (send the credentials) and `Bearer` (Docker's token protocol:
 * GET realm?service=…&scope=…, anonymously or with Basic credentials; tokens cached per host and scope).
 * See https://distribution.github.io/distribution/spec/auth/token/.
 */
import type { BasicCredentials } from "./docker-config.js";
import { RegistryError } from "./errors.js";
import { parseWwwAuthenticate, type AuthChallenge } from "./headers.js";
import { send, type FetchFunction } from "./http.js";

/** What the authenticator needs; `now` is injectable for token-expiry tests. */
export interface AuthenticatorOptions {
  fetch: FetchFunction;
  timeoutMs: number;
  now?: () => number;
}

/** One request's auth context. */
export interface AuthRequest {
  host: string;
  /** The scope the request needs (`repository:name:pull`, `registry:catalog:*`); null for the /v2/ ping. */
  scope: string | null;
  credentials: BasicCredentials | null;
  signal?: AbortSignal | undefined;
}

/** Default token lifetime when the token service gives none (the spec's default). */
const DEFAULT_TOKEN_SECONDS = 60;

const basicHeader = (c: BasicCredentials): string =>
  `Basic ${Buffer.from(`${c.username}:${c.password}`, "utf8").toString("base64")}`;

/** Builds the "unauthorized" error with what to do about it. */
export function unauthorizedError(request: AuthRequest, detail: string, statusCode: number | null): RegistryError {
  const advice = request.credentials
    ? `check the credentials for host ${request.host} (user ${JSON.stringify(request.credentials.username)})`
    : `registry ${request.host} requires credentials: configure a username and password for it`;
  return new RegistryError(`unauthorized: ${advice}${detail ? ` (${detail})` : ""}`, {
    host: request.host,
    statusCode,
    code: "UNAUTHORIZED",
  });
}

/** Per-client auth state: which hosts use Basic, and Bearer tokens per host and scope. Not shared. */
export class RegistryAuthenticator {
  private readonly basicHosts = new Set<string>();
  private readonly tokens = new Map<string, { token: string; expiresAt: number }>();
  private readonly now: () => number;

  constructor(private readonly options: AuthenticatorOptions) {
    this.now = options.now ?? Date.now;
  }

  /** The `Authorization` header to send up front, from what earlier challenges taught; null when none. */
  preemptive(request: AuthRequest): string | null {
    if (this.basicHosts.has(request.host) && request.credentials) return basicHeader(request.credentials);
    const cached = this.tokens.get(this.key(request));
    if (cached && cached.expiresAt > this.now()) return `Bearer ${cached.token}`;
    return null;
  }

  /**
   * Answers a 401: returns the `Authorization` header to retry with.
   * @throws RegistryError `UNAUTHORIZED` when the challenge cannot be met (no credentials for Basic, the token
   *   service refused them, an unknown scheme).
   */
  async answer(request: AuthRequest, wwwAuthenticate: string | null): Promise<string> {
    const challenges = parseWwwAuthenticate(wwwAuthenticate ?? "");
    const bearer = challenges.find((c) => c.scheme === "bearer" && c.params.realm);
    if (bearer) return `Bearer ${await this.fetchToken(request, bearer)}`;
    if (challenges.some((c) => c.scheme === "basic")) {
      if (!request.credentials) throw unauthorizedError(request, "it asks for Basic auth", 401);
      this.basicHosts.add(request.host);
      return basicHeader(request.credentials);
    }
    const offered = challenges.map((c) => c.scheme).join(", ") || "no WWW-Authenticate challenge";
    throw unauthorizedError(request, `unsupported authentication: ${offered}`, 401);
  }

  private key(request: AuthRequest): string {
    return `${request.host} ${request.scope ?? ""}`;
  }

  private async fetchToken(request: AuthRequest, challenge: AuthChallenge): Promise<string> {
    const realm = challenge.params.realm ?? "";
    let url: URL;
    try {
      url = new URL(realm);
    } catch (error) {
      throw new RegistryError(`registry ${request.host} sent an invalid token realm ${JSON.stringify(realm)}`, {
        host: request.host,
        statusCode: 401,
        code: "BAD_RESPONSE",
        cause: error,
      });
    }
    if (challenge.params.service) url.searchParams.set("service", challenge.params.service);
    // Prefer the scope the registry asked for; it may name more actions than we guessed.
    const scope = challenge.params.scope ?? request.scope;
    if (scope) for (const s of scope.split(" ")) url.searchParams.append("scope", s);
    if (request.credentials) url.searchParams.set("account", request.credentials.username);
    const headers: Record<string, string> = { accept: "application/json" };
    if (request.credentials) headers.authorization = basicHeader(request.credentials);
    const response = await send(
      url.toString(),
      { method: "GET", headers },
      { fetch: this.options.fetch, host: request.host, timeoutMs: this.options.timeoutMs, signal: request.signal },
    );
    if (response.status === 401 || response.status === 403) {
      throw unauthorizedError(request, `the token service ${url.origin}${url.pathname} answered ${response.status}`, response.status);
    }
    const body = parseTokenBody(response.body.toString("utf8"));
    if (response.status !== 200 || body === null) {
      throw new RegistryError(
        `the token service ${url.origin}${url.pathname} for registry ${request.host} answered ${response.status} without a token`,
        { host: request.host, statusCode: response.status, code: "BAD_RESPONSE" },
      );
    }
    const lifetime = (body.expiresIn ?? DEFAULT_TOKEN_SECONDS) * 1000;
    // Renew a little early so a token does not expire between check and use.
    this.tokens.set(this.key(request), { token: body.token, expiresAt: this.now() + lifetime - Math.min(10_000, lifetime / 2) });
    return body.token;
  }
}

/** Reads a token-service answer: `token` or (OAuth2) `access_token`, and `expires_in` seconds. */
export function parseTokenBody(text: string): { token: string; expiresIn: number | null } | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return null; // the caller reports a response without a token
  }
  if (typeof parsed !== "object" || parsed === null) return null;
  const { token, access_token: accessToken, expires_in: expiresIn } = parsed as Record<string, unknown>;
  const value = typeof token === "string" && token ? token : typeof accessToken === "string" ? accessToken : "";
  if (!value) return null;
  return { token: value, expiresIn: typeof expiresIn === "number" && expiresIn > 0 ? expiresIn : null };
}
