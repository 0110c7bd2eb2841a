/** One HTTP exchange with a registry or its token service: timeout, cancellation, transport errors typed. */
import { CancelledError } from "../errors.js";
import { RegistryError } from "./errors.js";

/** The subset of the global `fetch` the registry code uses; inject a fake in tests. */
export type FetchFunction = (input: string, init: RequestInit) => Promise<Response>;

/** A response with its body read (registry answers we use are small JSON documents). */
export interface RawResponse {
  /** The final URL, after redirects. */
  url: string;
  status: number;
  headers: Headers;
  body: Buffer;
}

/** What `send` needs besides the request. */
export interface SendOptions {
  fetch: FetchFunction;
  /** The registry host the request is for, named in errors. */
  host: string;
  /** Covers connecting, the response and reading the body. */
  timeoutMs: number;
  signal?: AbortSignal | undefined;
  /** Refuse bodies larger than this many bytes (default 32 MiB). */
  maxBytes?: number;
}

const DEFAULT_MAX_BYTES = 32 * 1024 * 1024;

/** The innermost `code`/`message` of a fetch failure (undici wraps the socket error in `cause`). */
function describeTransportError(error: unknown): string {
  let current: unknown = error;
  let text = "";
  for (let depth = 0; depth < 4 && current instanceof Error; depth++) {
    const code = (current as { code?: unknown }).code;
    text = `${typeof code === "string" ? `${code} ` : ""}${current.message}`;
    current = current.cause;
  }
  return text || String(error);
}

/**
 * Sends one request and reads the whole body.
 * @throws CancelledError when `signal` aborts; RegistryError `TIMEOUT` after `timeoutMs`; RegistryError
 *   `UNREACHABLE` when no response arrived (DNS, refused, TLS); RegistryError `BAD_RESPONSE` for a body over
 *   `maxBytes`. HTTP error statuses are returned, not thrown.
 */
export async function send(url: string, init: RequestInit, options: SendOptions): Promise<RawResponse> {
  const timeout = AbortSignal.timeout(options.timeoutMs);
  const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
  try {
    const response = await options.fetch(url, { ...init, signal, redirect: "follow" });
    const declared = Number(response.headers.get("content-length") ?? "0");
    if (declared > maxBytes) {
      await response.body?.cancel();
      throw new RegistryError(`registry ${options.host} sent ${declared} bytes for ${url}; the limit is ${maxBytes}`, {
        host: options.host,
        statusCode: response.status,
        code: "BAD_RESPONSE",
      });
    }
    const body = init.method === "HEAD" ? Buffer.alloc(0) : Buffer.from(await response.arrayBuffer());
    return { url: response.url || url, status: response.status, headers: response.headers, body };
  } catch (error) {
    if (error instanceof RegistryError) throw error;
    if (options.signal?.aborted) {
      throw new CancelledError(`the request to registry ${options.host} was cancelled`, { cause: error });
    }
    if (timeout.aborted) {
      throw new RegistryError(
        `registry ${options.host} did not answer ${init.method ?? "GET"} ${url} within ${options.timeoutMs} ms`,
        { host: options.host, code: "TIMEOUT", cause: error },
      );
    }
    throw new RegistryError(`cannot reach registry ${options.host} at ${url}: ${describeTransportError(error)}`, {
      host: options.host,
      code: "UNREACHABLE",
      cause: error,
    });
  }
}
