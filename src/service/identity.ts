/**
 * Who is asking: a client with one of the service's own tokens (the Secret), or a JupyterHub user whose token
 * the hub vouches for and that may use this service (`access:services!service=<name>`). The hub's answers are
 * cached for a minute, so a busy page does not ask the hub for every request.
 */
import { createHash } from "node:crypto";
import { authenticate, bearerToken, type TokenSource } from "./tokens.js";
import { HubUnavailableError, mayUseService, type HubClient } from "./hub.js";

export type Identity =
  /** A client with a token of the service's own (builds only: there is no hub user to launch for). */
  | { kind: "token"; name: string }
  /** A JupyterHub user: builds, and launches servers for themselves. */
  | { kind: "hub"; name: string };

export type AuthOutcome = { ok: true; identity: Identity } | { ok: false; status: 401 | 403 | 503; message: string };

const CACHE_MS = 60_000;

export class RequestAuthenticator {
  private readonly cache = new Map<string, { at: number; outcome: AuthOutcome }>();

  constructor(
    private readonly tokens: TokenSource | null,
    private readonly hub: HubClient | null,
    private readonly now: () => number = Date.now,
  ) {}

  async authenticate(header: string | undefined): Promise<AuthOutcome> {
    if (this.tokens) {
      const own = authenticate(header, this.tokens);
      if (own.ok) return { ok: true, identity: { kind: "token", name: own.tokenName } };
      if (own.status === 401 || this.hub === null) return own;
    }
    const token = bearerToken(header);
    if (token === null) return { ok: false, status: 401, message: "authentication required: send 'Authorization: Bearer <token>'" };
    if (this.hub === null) return { ok: false, status: 403, message: "the token is not valid for this service" };
    return this.fromHub(token, this.hub);
  }

  private async fromHub(token: string, hub: HubClient): Promise<AuthOutcome> {
    const key = createHash("sha256").update(token).digest("hex");
    const cached = this.cache.get(key);
    if (cached && this.now() - cached.at < CACHE_MS) return cached.outcome;
    let outcome: AuthOutcome;
    try {
      const user = await hub.identify(token);
      const service = hub.settings.serviceName;
      outcome =
        user === null
          ? { ok: false, status: 403, message: "the token is not valid for this service (neither its own nor JupyterHub's)" }
          : mayUseService(user.scopes, service)
            ? { ok: true, identity: { kind: "hub", name: user.name } }
            : { ok: false, status: 403, message: `JupyterHub user ${user.name} may not use this service (needs access:services!service=${service})` };
    } catch (err) {
      if (!(err instanceof HubUnavailableError)) throw err;
      return { ok: false, status: 503, message: `cannot check the token: ${err.message}` };
    }
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(key, { at: this.now(), outcome });
    return outcome;
  }
}
