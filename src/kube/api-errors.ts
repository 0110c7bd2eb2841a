/**
 * Maps failures of Kubernetes API requests to {@link KubernetesApiError}: the one translation from HTTP
 * statuses, `V1Status` bodies and socket errors to an actionable message. Pure: no I/O, no clock.
 */
import { ContainerEngineError, KubernetesApiError } from "../errors.js";

/** What the request was, for the message. */
export interface RequestContext {
  /** Kubernetes verb: get, list, watch, create, delete, patch, exec, attach, portforward… */
  verb: string;
  /** Resource, with subresource when there is one: "pods", "pods/log", "jobs". */
  resource: string;
  namespace: string;
  /** The API server URL from the kubeconfig. */
  server: string;
  /** Name of the object, when the request names one. */
  name?: string;
}

/** The fields of a Kubernetes `Status` object that we read. */
export interface StatusBody {
  kind?: string;
  status?: string;
  message?: string;
  reason?: string;
  code?: number;
  details?: { name?: string; kind?: string; group?: string; causes?: { reason?: string; message?: string }[] };
}

/** A failure normalised from whatever the HTTP layer threw. */
export interface FailureFacts {
  /** HTTP status, or null when no response arrived. */
  statusCode: number | null;
  status: StatusBody | null;
  /** Node's socket error code (`ECONNREFUSED`, …) when no response arrived. */
  networkCode: string | null;
  /** True when our own deadline for the request passed. */
  timedOut: boolean;
  /** Best human text available from the underlying error. */
  detail: string;
}

/** An HTTP response with a non-2xx status, as our raw requests (watch, logs, websockets) see it. */
export class HttpStatusError extends Error {
  readonly statusCode: number;
  readonly body: unknown;
  constructor(statusCode: number, body: unknown) {
    super(`HTTP ${statusCode}: ${typeof body === "string" ? body : JSON.stringify(body)}`);
    this.name = "HttpStatusError";
    this.statusCode = statusCode;
    this.body = body;
  }
}

/** Our own per-request deadline passed (the server did not answer in time). */
export class RequestTimeoutError extends Error {
  readonly timeoutMs: number;
  constructor(timeoutMs: number) {
    super(`no answer within ${timeoutMs} ms`);
    this.name = "RequestTimeoutError";
    this.timeoutMs = timeoutMs;
  }
}

const NETWORK_CODES = new Set([
  "ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "ENOTFOUND", "EAI_AGAIN", "EPIPE",
  "ECONNABORTED", "UND_ERR_SOCKET", "ERR_STREAM_PREMATURE_CLOSE",
]);

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null;
}

/** Reads a `Status` object out of a response body (object or JSON text); null when it is not one. */
export function parseStatusBody(body: unknown): StatusBody | null {
  let value: unknown = body;
  if (typeof body === "string" || Buffer.isBuffer(body)) {
    try {
      value = JSON.parse(body.toString());
    } catch {
      return body.toString().trim() === "" ? null : { message: body.toString().trim() };
    }
  }
  if (!isRecord(value)) return null;
  const s = value as StatusBody;
  if (s.kind !== undefined && s.kind !== "Status") return null;
  return s;
}

function findNetworkCode(err: unknown, depth = 0): string | null {
  if (!isRecord(err) || depth > 4) return null;
  const code = err["code"];
  if (typeof code === "string" && (NETWORK_CODES.has(code) || code.startsWith("E"))) return code;
  const errno = err["errno"];
  if (typeof errno === "string" && NETWORK_CODES.has(errno)) return errno;
  return findNetworkCode(err["cause"], depth + 1);
}

/** Normalises an error thrown by client-node's generated API, our raw requests or the socket layer. */
export function failureFacts(err: unknown): FailureFacts {
  const detail = err instanceof Error ? err.message : String(err);
  if (err instanceof RequestTimeoutError) {
    return { statusCode: null, status: null, networkCode: null, timedOut: true, detail };
  }
  if (err instanceof HttpStatusError) {
    return { statusCode: err.statusCode, status: parseStatusBody(err.body), networkCode: null, timedOut: false, detail };
  }
  // client-node's ApiException: { code: number, body: V1Status | string }
  if (isRecord(err) && typeof err["code"] === "number") {
    const status = parseStatusBody(err["body"]);
    return { statusCode: err["code"], status, networkCode: null, timedOut: false, detail: status?.message ?? detail };
  }
  return { statusCode: null, status: null, networkCode: findNetworkCode(err), timedOut: false, detail };
}

function forbiddenSubject(message: string): string {
  const m = /User "([^"]+)"/.exec(message);
  return m?.[1] !== undefined ? `"${m[1]}"` : "in use";
}

function describeStatus(facts: FailureFacts, ctx: RequestContext): string {
  const code = facts.statusCode ?? 0;
  const msg = facts.status?.message ?? facts.detail;
  const where = `in namespace "${ctx.namespace}"`;
  const what = ctx.name !== undefined ? `${ctx.resource} "${ctx.name}"` : ctx.resource;
  if (code === 403 && /exceeded quota/i.test(msg)) {
    return `resource quota exceeded: cannot ${ctx.verb} ${what} ${where}: ${msg}; free quota or raise the ResourceQuota`;
  }
  if (code === 403) {
    return (
      `forbidden: the service account or user ${forbiddenSubject(msg)} cannot ${ctx.verb} ${ctx.resource} ${where}; ` +
      `see README "RBAC" for the Role the engine needs (server said: ${msg})`
    );
  }
  if (code === 401) return `unauthorized: the API server at ${ctx.server} rejected the kubeconfig's credentials (${msg})`;
  if (code === 404 && facts.status?.details?.kind === "namespaces") {
    return `namespace "${facts.status.details.name ?? ctx.namespace}" does not exist; create it or choose another namespace`;
  }
  if (code === 404) return `${what} not found ${where} (${ctx.verb}): ${msg}`;
  if (code === 409) return `conflict: cannot ${ctx.verb} ${what} ${where}: ${msg}`;
  if (code === 410) return `expired: ${ctx.verb} ${ctx.resource} ${where}: ${msg}`;
  if (code === 422 || code === 400) return `invalid request: cannot ${ctx.verb} ${what} ${where}: ${msg}`;
  if (code === 429) return `the API server is throttling requests (${ctx.verb} ${ctx.resource}): ${msg}`;
  return `the API server failed to ${ctx.verb} ${what} ${where} (HTTP ${code}): ${msg}`;
}

/**
 * The one place that turns a failed request into our error. A {@link ContainerEngineError} (already typed,
 * e.g. {@link CancelledError}) passes through unchanged.
 */
export function toKubernetesApiError(err: unknown, ctx: RequestContext): ContainerEngineError {
  if (err instanceof ContainerEngineError) return err;
  const facts = failureFacts(err);
  const base = { verb: ctx.verb, resource: ctx.resource, cause: err };
  if (facts.statusCode !== null) {
    return new KubernetesApiError(describeStatus(facts, ctx), {
      ...base,
      statusCode: facts.statusCode,
      reason: facts.status?.reason ?? null,
    });
  }
  const message = facts.timedOut
    ? `cannot reach the Kubernetes API server at ${ctx.server}: no answer to ${ctx.verb} ${ctx.resource} ` +
      `within ${(err as RequestTimeoutError).timeoutMs} ms; check that the cluster is up and the kubeconfig points at it`
    : `cannot reach the Kubernetes API server at ${ctx.server} (${facts.networkCode ?? facts.detail}) to ` +
      `${ctx.verb} ${ctx.resource}; check that the cluster is up and the kubeconfig points at it`;
  return new KubernetesApiError(message, { ...base, statusCode: null, reason: facts.timedOut ? "Timeout" : null });
}

/**
 * Whether a failure is worth retrying in a long-running loop (watch, log follow): no response at all,
 * 429, 5xx, or 410 (for watches the caller relists instead).
 */
export function isTransient(err: unknown): boolean {
  if (err instanceof KubernetesApiError) {
    return err.statusCode === null || err.statusCode === 429 || err.statusCode >= 500;
  }
  const facts = failureFacts(err);
  if (facts.statusCode === null) return true;
  return facts.statusCode === 429 || facts.statusCode >= 500;
}

/** Reads the `Status` object an API error carries, if any. */
export function statusOf(err: unknown): StatusBody | null {
  if (err instanceof KubernetesApiError) return failureFacts(err.cause).status;
  return failureFacts(err).status;
}


/** The HTTP status of a failure (typed or raw), or null when no response arrived. */
export function statusCodeOf(err: unknown): number | null {
  if (err instanceof KubernetesApiError) return err.statusCode;
  return failureFacts(err).statusCode;
}
