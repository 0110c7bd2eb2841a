/**
 * repo2docker's container-engine contract (`repo2docker/engine.py`) in TypeScript: camelCase names,
 * promises for blocking calls, async iterables for generators. Semantics follow how repo2docker really calls
 * it (see README "The contract").
 */
import type { Image } from "./image.js";

/** Docker's container states; a pod maps onto `created`, `running`, `exited` or `dead`. */
export type ContainerStatus = "created" | "running" | "paused" | "restarting" | "removing" | "exited" | "dead";

export interface ContainerLimits {
  /** Bytes. */
  memory?: number;
  /** Bytes (memory + swap); Kubernetes has no swap limit, so only `memory` is applied. */
  memswap?: number;
  /** Relative CPU weight, 1024 = one CPU. */
  cpushares?: number;
  /** Not supported on Kubernetes; ignored with a warning. */
  cpusetcpus?: string;
}

export interface BuildOptions {
  /** "name", "name:tag" or "host/name:tag"; no host → the engine's registry; no tag → latest. */
  tag: string;
  /** Build-context directory (the seed's `path`). `.dockerignore` in it is honoured. */
  path?: string;
  /** Relative to the context; default "Dockerfile". */
  dockerfile?: string;
  /** A tar stream of the context (the seed's `fileobj` + `custom_context`); plain or gzip-compressed. */
  context?: NodeJS.ReadableStream;
  buildArgs?: Record<string, string>;
  /** Labels for the image; a null value means an empty label. */
  labels?: Record<string, string | null>;
  cacheFrom?: string[];
  containerLimits?: ContainerLimits;
  /** e.g. "linux/amd64". */
  platform?: string;
  /** Make the image available in its registry (repo2docker ≥ 2025.08). */
  push?: boolean;
  /** Make the image runnable by the cluster (for us: pushed to a registry the nodes pull from). */
  load?: boolean;
  /** Abort the build: the builder pod is deleted, and the iteration throws `CancelledError`. */
  signal?: AbortSignal;
  /** Progress of the build besides the builder's output lines (context upload, phases). */
  onProgress?: (progress: BuildProgress) => void;
}

/** Progress of a build, for CLIs and services (the yielded lines are the builder's own output). */
export type BuildProgress =
  | { kind: "context"; tarBytes: number; totalTarBytes: number; gzipBytes: number; compressionLevel: number }
  | { kind: "phase"; message: string };

/** A port binding: a local port, `[localAddress, localPort]`, or null for "any free port". */
export type PortBinding = string | number | [string, string | number] | null;

export interface RunOptions {
  /** Replaces the image CMD (Kubernetes `args`); ENTRYPOINT stays. */
  command?: string[];
  /** "KEY=value" strings; an empty value is allowed. */
  environment?: string[];
  /** Keys "8888/tcp" or "8888"; each container port is forwarded to the local address:port. */
  ports?: Record<string, PortBinding>;
  publishAllPorts?: boolean;
  /** Delete the pod once it has exited. */
  remove?: boolean;
  /** `{clientPath: {bind, mode}}`; client paths cannot be mounted into a remote pod (see README). */
  volumes?: Record<string, string | { bind: string; mode?: "rw" | "ro" }>;
  /** Numeric uid (or "root"), optionally ":gid". */
  user?: string | number;
  signal?: AbortSignal;
}

export interface LogOptions {
  /** Prefix each line with its RFC3339Nano timestamp and a space. */
  timestamps?: boolean;
  /** A timestamp in the format of the `timestamps` prefix: only lines from that time on. */
  since?: string;
}

/** A running or finished container: here, one pod. */
export interface Container {
  /** The pod name. */
  readonly id: string;
  /** Snapshot, refreshed by `reload()` (and set by `run()`). */
  readonly status: ContainerStatus;
  /** The exit code once exited; 0 while not exited. */
  readonly exitcode: number | null;
  /** Why the container ended, when it did not simply exit (e.g. "OOMKilled", "ImagePullBackOff: …"). */
  readonly reason: string | null;
  /** Where each container port ("8888/tcp") is forwarded on the local machine. */
  readonly ports?: Record<string, { host: string; port: number }>;
  /** Refresh `status`/`exitcode`. Throws `ContainerNotFoundError` once the container was removed. */
  reload(): Promise<void>;
  logs(options?: LogOptions): Promise<string>;
  /** One line per item ending "\n"; ends when the container exits. */
  streamLogs(options?: LogOptions): AsyncIterable<string>;
  /** Default signal "KILL"; state and logs stay queryable. */
  kill(options?: { signal?: string }): Promise<void>;
  /** Graceful termination, then kill after `timeout` seconds (default 10). */
  stop(options?: { timeout?: number }): Promise<void>;
  wait(): Promise<{ exitCode: number }>;
  /** Delete the pod; idempotent. */
  remove(): Promise<void>;
}

export interface ContainerEngine {
  /** The seed's `string_output`: build and push yield strings, one line each. */
  readonly stringOutput: true;
  build(options: BuildOptions): AsyncIterable<string>;
  inspectImage(ref: string): Promise<Image | null>;
  images(): Promise<Image[]>;
  push(ref: string): AsyncIterable<string>;
  run(ref: string, options?: RunOptions): Promise<Container>;
}
