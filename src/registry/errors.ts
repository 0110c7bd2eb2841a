import { ContainerEngineError } from "../errors.js";

/**
 * A registry refused or failed a request: unauthorized, denied, rate-limited, unreachable, timed out, or it
 * answered something we cannot use. A missing repository or tag is not an error (the client returns null).
 */
export class RegistryError extends ContainerEngineError {
  /** The registry host[:port] as the reference named it. */
  readonly host: string;
  /** HTTP status, or null when no response arrived (unreachable, timeout, TLS failure). */
  readonly statusCode: number | null;
  /**
   * The registry's error code (`UNAUTHORIZED`, `DENIED`, `TOOMANYREQUESTS`, `UNSUPPORTED`, …) when it sent
   * one; otherwise our own: `TIMEOUT`, `UNREACHABLE`, `BAD_RESPONSE`, `DIGEST_MISMATCH`, `PLATFORM_UNKNOWN`,
   * `NOT_AN_IMAGE`; null when nothing more is known.
   */
  readonly code: string | null;
  constructor(
    message: string,
    options: { host: string; statusCode?: number | null; code?: string | null; cause?: unknown },
  ) {
    super(message, { cause: options.cause });
    this.host = options.host;
    this.statusCode = options.statusCode ?? null;
    this.code = options.code ?? null;
  }
}

/** The first entry of an OCI distribution error body (`{"errors":[{"code","message","detail"}]}`). */
export interface RegistryErrorBody {
  code: string;
  message: string;
}

/** Parses an OCI distribution error body; null when the body is not one (empty, HTML, …). */
export function parseRegistryErrorBody(body: string): RegistryErrorBody | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return null; // not JSON: proxies and some registries answer HTML or nothing
  }
  if (typeof parsed !== "object" || parsed === null) return null;
  const errors = (parsed as { errors?: unknown }).errors;
  if (!Array.isArray(errors) || errors.length === 0) return null;
  const first: unknown = errors[0];
  if (typeof first !== "object" || first === null) return null;
  const { code, message } = first as { code?: unknown; message?: unknown };
  if (typeof code !== "string") return null;
  return { code, message: typeof message === "string" ? message : "" };
}

/** Registry error codes that mean "no such repository, tag or blob": the client answers null for them. */
export const NOT_FOUND_CODES: ReadonlySet<string> = new Set(["MANIFEST_UNKNOWN", "NAME_UNKNOWN", "BLOB_UNKNOWN"]);

/**
 * The error for an unexpected registry answer, with what to do about it: 403 → `denied`, 405 → deletion
 * or the operation is disabled, 429 → rate limited, else the status and the registry's own code and message.
 * (401 is answered by the authenticator; 404 means "missing" and is not an error.)
 */
export function registryFailure(input: {
  host: string;
  hasCredentials: boolean;
  statusCode: number;
  /** The response body, possibly an OCI error document. */
  body: string;
  /** What we tried, as a verb phrase: "read the manifest of x", "delete x". */
  action: string;
}): RegistryError {
  const { host, statusCode: status, action } = input;
  const parsed = parseRegistryErrorBody(input.body);
  const code = parsed?.code ?? (status === 405 ? "UNSUPPORTED" : null);
  const said = parsed ? `: ${parsed.code}${parsed.message ? ` ${parsed.message}` : ""}` : "";
  let message: string;
  if (status === 403) {
    message = input.hasCredentials
      ? `denied: the credentials for host ${host} may not ${action}`
      : `denied: registry ${host} refuses anonymous access (${action}): configure credentials for it`;
  } else if (status === 405 || code === "UNSUPPORTED") {
    const hint = action.startsWith("delete") ? " (is deletion enabled, e.g. REGISTRY_STORAGE_DELETE_ENABLED=true?)" : "";
    message = `registry ${host} does not allow this: cannot ${action}${hint}`;
  } else if (status === 429) {
    message = `registry ${host} is rate-limiting requests: cannot ${action}; retry later or authenticate`;
  } else {
    message = `registry ${host} answered ${status} when asked to ${action}`;
  }
  return new RegistryError(`${message}${said}`, { host, statusCode: status, code });
}
