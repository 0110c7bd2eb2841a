/**
 * `kce rpc`: the engine over line-delimited JSON on stdin/stdout, for clients in other languages (the
 * repo2docker adapter in `python/repo2docker-kce`). Protocol version 1.
 *
 * Every line is one JSON object. The client writes requests:
 *
 *     {"id": 1, "method": "inspectImage", "params": {"ref": "name:tag"}}
 *
 * `id` is any JSON number or string the client picks, unique among its requests in flight. Requests are
 * served concurrently; replies to different ids interleave. The server writes, for each request, zero or more
 * intermediate messages and then exactly one final message:
 *
 *     {"id": 1, "line": "…\n"}                        a line of output (build, push, container.streamLogs)
 *     {"id": 1, "progress": {"kind": "phase", …}}     build progress besides the builder's output (optional)
 *     {"id": 1, "result": …}                          final: success, with the method's value
 *     {"id": 1, "error": {"type": "BuildError",       final: failure. `type` is the error class name,
 *        "types": ["BuildError", "ContainerEngineError"],   `types` its class chain (most derived first),
 *        "message": "…", "reason": "failed"}}           plus the error's own fields (reason, exitCode, …)
 *
 * A line that is not a JSON request gets a final error with `"id": null` (type `RpcError`).
 *
 * Methods (params use the TypeScript API's names, see docs/api.md):
 *
 * | method                 | params                                                        | lines | result                |
 * |------------------------|---------------------------------------------------------------|-------|-----------------------|
 * | `hello`                | {}                                                            |       | {protocol, version}   |
 * | `build`                | BuildOptions without `context`, plus `contextFile` (path of a  | yes   | {image, digest, pushed}|
 * |                        | tar file) or `contextBase64` (the tar's bytes); unknown keys   |       |                       |
 * |                        | are passed on (the engine warns and ignores them)              |       |                       |
 * | `inspectImage`         | {ref}                                                         |       | Image or null         |
 * | `images`               | {}                                                            |       | Image[]               |
 * | `push`                 | {ref}                                                         | yes   | null                  |
 * | `run`                  | {ref, …RunOptions}                                            |       | Container             |
 * | `container.reload`     | {container}                                                   |       | Container             |
 * | `container.logs`       | {container, timestamps?, since?}                              |       | the log text (string) |
 * | `container.streamLogs` | {container, timestamps?, since?}                              | yes   | Container             |
 * | `container.kill`       | {container, signal?}                                          |       | Container             |
 * | `container.stop`       | {container, timeout?}                                         |       | Container             |
 * | `container.wait`       | {container}                                                   |       | {exitCode, container} |
 * | `container.remove`     | {container}                                                   |       | Container             |
 * | `cancel`               | {id}: a request in flight; it ends with a `CancelledError`     |       | null                  |
 *
 * Image = {tags, config}; Container = {id, status, exitcode, reason, ports} (a snapshot; `container` params
 * take the `id` that `run` returned). Containers live as long as the `kce rpc` process.
 *
 * When stdin ends (the client went away), requests in flight are cancelled (a build's builder pod is
 * deleted), and the process exits once they finished. Nothing but protocol messages is written to stdout;
 * warnings go to stderr.
 *
 * A warm `kce rpc` (`kce rpc --listen SOCKET`, what a warm build runner of `kce serve` starts ahead of its
 * build) speaks the same protocol on a Unix socket, with two differences: the client's first line is
 *
 *     {"argv": ["rpc", "--namespace", "ns", …], "env": {…}}   the command line after `kce` and the
 *                                                              environment it would have started kce with
 *
 * and what a `kce rpc` would write to stderr arrives as `{"stderr": "kce: …\n"}` lines (no id). One client
 * per process; the socket is gone once a client connected (a second one starts its own `kce rpc`).
 */

export const PROTOCOL_VERSION = 1;

export type RequestId = number | string;

export interface RpcRequest {
  id: RequestId;
  method: string;
  params?: Record<string, unknown>;
}

export interface RpcErrorBody {
  type: string;
  types: string[];
  message: string;
  [field: string]: unknown;
}

export type RpcMessage =
  | { id: RequestId; line: string }
  | { id: RequestId; progress: unknown }
  | { id: RequestId; result: unknown }
  | { id: RequestId | null; error: RpcErrorBody };

/** What a warm `kce rpc --listen` writes where a `kce rpc` would write to its stderr. */
export interface RpcStderrMessage {
  stderr: string;
}

/** A request the server cannot serve as sent (malformed line, unknown method or container, bad params). */
export class RpcError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RpcError";
  }
}

/** Parses one request line; throws RpcError (with the id when one could be read). */
export function parseRequest(line: string): RpcRequest {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    throw new RpcError(`not a JSON line: ${JSON.stringify(line.slice(0, 200))}`);
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) throw new RpcError("a request must be a JSON object");
  const { id, method, params } = value as Record<string, unknown>;
  if (typeof id !== "number" && typeof id !== "string") throw new RpcError('a request needs an "id" (number or string)');
  if (typeof method !== "string") throw Object.assign(new RpcError('a request needs a "method" (string)'), { requestId: id });
  if (params !== undefined && (params === null || typeof params !== "object" || Array.isArray(params))) {
    throw Object.assign(new RpcError('"params" must be an object'), { requestId: id });
  }
  return { id, method, ...(params ? { params: params as Record<string, unknown> } : {}) };
}

/** Fields of an error worth sending besides its message (never `cause`, `stack`). */
const ERROR_FIELDS = ["reason", "exitCode", "logTail", "statusCode", "verb", "resource", "image", "kubeletReason"] as const;

/** The error as the protocol sends it: class name, class chain, message and the error's own fields. */
export function encodeError(err: unknown): RpcErrorBody {
  if (!(err instanceof Error)) return { type: "Error", types: ["Error"], message: String(err) };
  const types: string[] = [];
  for (let proto: object | null = Object.getPrototypeOf(err); proto && proto !== Object.prototype; proto = Object.getPrototypeOf(proto)) {
    const name = (proto as { constructor?: { name?: string } }).constructor?.name;
    if (name && !types.includes(name)) types.push(name);
  }
  const body: RpcErrorBody = { type: err.name || types[0] || "Error", types, message: err.message };
  for (const field of ERROR_FIELDS) {
    const value = (err as unknown as Record<string, unknown>)[field];
    if (value !== undefined && value !== null) body[field] = value;
  }
  return body;
}

/** The first line of a client of a warm `kce rpc --listen`: how it would have started `kce rpc`. */
export interface RpcLaunch {
  argv: string[];
  env: Record<string, string>;
}

/** Parses and checks a warm server's first line. @throws RpcError */
export function parseLaunch(line: string): RpcLaunch {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    throw new RpcError("the first line must be JSON: {\"argv\": [\"rpc\", …], \"env\": {…}}");
  }
  const { argv, env } = (value ?? {}) as Record<string, unknown>;
  if (!Array.isArray(argv) || !argv.every((a) => typeof a === "string")) throw new RpcError('"argv" must be a list of strings');
  if (argv[0] !== "rpc" || argv.some((a) => a === "--listen" || a.startsWith("--listen="))) {
    throw new RpcError(`"argv" must be a \`kce rpc\` command line without --listen, got ${JSON.stringify(argv)}`);
  }
  if (env === null || typeof env !== "object" || Array.isArray(env) || !Object.values(env).every((v) => typeof v === "string")) {
    throw new RpcError('"env" must map names to strings');
  }
  return { argv, env: env as Record<string, string> };
}
