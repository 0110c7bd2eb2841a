/**
 * The JupyterHub REST API, for `kce serve` as a JupyterHub service (the way binderhub-service runs
 * BinderHub): who a token belongs to (and whether it may use this service), starting a user's named server
 * with the built image, following the spawn's progress, and a token for that one server. The hub's URL and
 * this service's token come from the usual JUPYTERHUB_* environment.
 */
import { ContainerEngineError } from "../errors.js";
import { LineSplitter } from "../kube/lines.js";

export interface HubSettings {
  /** e.g. http://hub:8081/hub/api (JUPYTERHUB_API_URL). */
  apiUrl: string;
  /** This service's token (JUPYTERHUB_API_TOKEN). */
  apiToken: string;
  /** The URL users reach the hub's proxy at, e.g. https://hub.example.org/ (for the `url` of `ready`). */
  publicUrl: string;
  /** This service's name in the hub (JUPYTERHUB_SERVICE_NAME): tokens need `access:services!service=<name>`. */
  serviceName: string;
  /** A spawn that does not get ready in this time fails, s. */
  launchTimeoutSeconds: number;
  /** Lifetime of the token handed out with `ready`, s. */
  tokenExpiresSeconds: number;
}

/** A hub user, as identified by one of their tokens. */
export interface HubUser {
  name: string;
  /** The token's scopes (what it may do), as the hub resolved them. */
  scopes: string[];
}

/** The hub could not be reached (down, restarting): nothing was decided. */
export class HubUnavailableError extends ContainerEngineError {}

/** The hub answered with an error (its status and message). */
export class HubRequestError extends ContainerEngineError {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

/** A user's server, as far as launching needs to know. */
export interface ServerModel {
  ready: boolean;
  /** "spawn", "stop"… while something is in progress; null otherwise. */
  pending: string | null;
  /** Its path below the hub's public URL. */
  url: string | null;
  /** The image it was started with (user_options.image), when kce started it. */
  image: string | null;
}

/** One event of a spawn's progress stream. */
export interface SpawnProgress {
  message: string;
  ready: boolean;
  failed: boolean;
  /** The server's path below the hub's public URL (on `ready`). */
  url?: string;
}

/** True when a token with these scopes may use the service called `service`. Pure. */
export function mayUseService(scopes: readonly string[], service: string): boolean {
  return scopes.some((s) => s === "access:services" || s === `access:services!service=${service}`);
}

/** The URL of a server, from the hub's public URL and the server's path. Pure. */
export function serverUrl(publicUrl: string, path: string): string {
  return new URL(path.replace(/^\/+/, ""), publicUrl.endsWith("/") ? publicUrl : `${publicUrl}/`).href;
}

export class HubClient {
  constructor(
    readonly settings: HubSettings,
    private readonly fetchImpl: typeof fetch = fetch,
  ) {}

  private url(path: string): string {
    return `${this.settings.apiUrl.replace(/\/+$/, "")}${path}`;
  }

  private async request(path: string, init: RequestInit & { token?: string; timeoutMs?: number } = {}): Promise<Response> {
    const headers: Record<string, string> = { authorization: `token ${init.token ?? this.settings.apiToken}` };
    if (init.body !== undefined) headers["content-type"] = "application/json";
    const timeout = AbortSignal.timeout(init.timeoutMs ?? 15_000);
    try {
      return await this.fetchImpl(this.url(path), {
        ...init,
        headers,
        signal: init.signal ? AbortSignal.any([init.signal, timeout]) : timeout,
      });
    } catch (err) {
      if (init.signal?.aborted) throw err;
      const why = err instanceof Error ? ((err.cause as Error | undefined)?.message ?? err.message) : String(err);
      throw new HubUnavailableError(`JupyterHub at ${this.settings.apiUrl} cannot be reached: ${why}`, { cause: err });
    }
  }

  private async fail(res: Response, what: string): Promise<never> {
    let message = res.statusText;
    try {
      const body = (await res.json()) as { message?: string };
      if (body.message) message = body.message;
    } catch {
      // not JSON: keep the status text
    }
    throw new HubRequestError(`JupyterHub refused to ${what}: ${res.status} ${message}`, res.status);
  }

  /** The user a token belongs to (with the token's scopes), or null when the hub does not know the token. */
  async identify(token: string): Promise<HubUser | null> {
    const res = await this.request("/user", { token });
    if (res.status === 401 || res.status === 403) return null;
    if (!res.ok) return this.fail(res, "identify a token");
    const model = (await res.json()) as { name?: string; kind?: string; scopes?: string[] };
    if (!model.name || (model.kind !== undefined && model.kind !== "user")) return null;
    return { name: model.name, scopes: model.scopes ?? [] };
  }

  /**
   * Starts `user`'s server `server` with `userOptions` (the image…). Returns false when it was already
   * running (the caller reuses it).
   */
  async startServer(user: string, server: string, userOptions: Record<string, unknown>, signal?: AbortSignal): Promise<boolean> {
    const res = await this.request(`/users/${encodeURIComponent(user)}/servers/${encodeURIComponent(server)}`, {
      method: "POST",
      body: JSON.stringify({ user_options: userOptions }),
      timeoutMs: 60_000,
      ...(signal ? { signal } : {}),
    });
    if (res.status === 201 || res.status === 202) return true;
    if (res.status === 400) {
      const body = (await res.clone().json().catch(() => ({}))) as { message?: string };
      if (/already running|is pending/i.test(body.message ?? "")) return false;
    }
    return this.fail(res, `start server ${server} of ${user}`);
  }

  /** The spawn's progress (JupyterHub's event stream) until ready or failed. */
  async *progress(user: string, server: string, signal?: AbortSignal): AsyncGenerator<SpawnProgress> {
    const res = await this.request(`/users/${encodeURIComponent(user)}/servers/${encodeURIComponent(server)}/progress`, {
      timeoutMs: this.settings.launchTimeoutSeconds * 1000,
      ...(signal ? { signal } : {}),
    });
    if (!res.ok || !res.body) return this.fail(res, `report the progress of ${user}/${server}`);
    const splitter = new LineSplitter();
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        for (const line of splitter.push(Buffer.from(chunk))) {
          if (!line.startsWith("data:")) continue;
          const event = JSON.parse(line.slice(5)) as { message?: string; ready?: boolean; failed?: boolean; url?: string };
          const out: SpawnProgress = { message: event.message ?? "", ready: event.ready === true, failed: event.failed === true };
          if (event.url) out.url = event.url;
          yield out;
          if (out.ready || out.failed) return;
        }
      }
    } catch (err) {
      if (signal?.aborted) throw err;
      throw new HubUnavailableError(`lost JupyterHub's progress of ${user}/${server}: ${err instanceof Error ? err.message : String(err)}`, {
        cause: err,
      });
    }
    throw new HubUnavailableError(`JupyterHub's progress of ${user}/${server} ended before the server was ready`);
  }

  /** A server of `user` as the hub knows it, or null when the user has no server of that name. */
  async serverModel(user: string, server: string): Promise<ServerModel | null> {
    const res = await this.request(`/users/${encodeURIComponent(user)}`);
    if (!res.ok) return this.fail(res, `read user ${user}`);
    const model = (await res.json()) as {
      servers?: Record<string, { ready?: boolean; pending?: string | null; url?: string; user_options?: { image?: string } }>;
    };
    const s = model.servers?.[server];
    if (!s) return null;
    return { ready: s.ready === true, pending: s.pending ?? null, url: s.url ?? null, image: s.user_options?.image ?? null };
  }

  /** A token of `user` that may only access that one server (what `ready` hands to the client). */
  async serverToken(user: string, server: string): Promise<string> {
    const res = await this.request(`/users/${encodeURIComponent(user)}/tokens`, {
      method: "POST",
      body: JSON.stringify({
        scopes: [`access:servers!server=${user}/${server}`],
        expires_in: this.settings.tokenExpiresSeconds,
        note: `kce serve: access to ${server}`,
      }),
    });
    if (!res.ok) return this.fail(res, `create a token for ${user}/${server}`);
    const body = (await res.json()) as { token?: string };
    if (!body.token) throw new HubRequestError("JupyterHub created a token but did not return it", res.status);
    return body.token;
  }
}
