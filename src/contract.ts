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
  /**
   * Refreshes `status`, `exitcode` and `reason` from the cluster. A pod deleted from outside reads as `exited`
   * (it does not throw).
   * @throws ContainerNotFoundError once `remove()` was called; KubernetesApiError when the API server fails.
   */
  reload(): Promise<void>;
  /**
   * The whole log so far, also after the container exited (kept after `remove()` when it was read before).
   * An empty string when the container never started or its pod is gone.
   * @throws KubernetesApiError.
   */
  logs(options?: LogOptions): Promise<string>;
  /**
   * One line per item ending "\n", from the start (or `since`); ends when the container exits. Survives API
   * server restarts and kubelet log rotation without losing or repeating a line.
   * @throws KubernetesApiError when the log cannot be followed for longer than the outage limit.
   */
  streamLogs(options?: LogOptions): AsyncIterable<string>;
  /**
   * Ends the container: "KILL" (the default) at once; any other signal as SIGTERM with a 30 s grace, since
   * Kubernetes can only send TERM, then KILL. Afterwards `status` is `exited`; state and logs stay queryable.
   * @throws ContainerNotFoundError after `remove()`; KubernetesApiError.
   */
  kill(options?: { signal?: string }): Promise<void>;
  /**
   * SIGTERM, then SIGKILL after `timeout` seconds (default 10); resolves once the container exited.
   * @throws ContainerNotFoundError after `remove()`; KubernetesApiError.
   */
  stop(options?: { timeout?: number }): Promise<void>;
  /**
   * Resolves with the exit code once the container exited: its own code, 137 when killed, 125 when the cluster
   * never started it (see `reason`). Never rejects for a container deleted from outside.
   * @throws ContainerNotFoundError after `remove()`; KubernetesApiError when the API server stays unreachable.
   */
  wait(): Promise<{ exitCode: number }>;
  /** Deletes the pod and stops its port-forwards; idempotent (a second call, or a pod already gone, is fine). */
  remove(): Promise<void>;
}

/**
 * Every method throws only subclasses of `ContainerEngineError`; the message says what to do, `cause` keeps
 * the underlying error.
 */
export interface ContainerEngine {
  /** The seed's `string_output`: build and push yield strings, one line each. */
  readonly stringOutput: true;
  /**
   * Builds `options.tag` in a builder pod from the streamed context; yields the builder's output lines, ends
   * once the image is in the registry.
   * @throws InvalidInputError for bad options or an unreadable context (before anything is created);
   * BuildError when the build fails (`reason`: the Dockerfile, the deadline, an unpullable builder image, the
   * builder pod deleted, …); CancelledError when `options.signal` aborts it; KubernetesApiError.
   */
  build(options: BuildOptions): AsyncIterable<string>;
  /**
   * The image's config and digest from its registry.
   * @returns null when the repository or tag does not exist.
   * @throws InvalidInputError for a malformed reference; RegistryError when the registry is unreachable or
   * refuses the credentials.
   */
  inspectImage(ref: string): Promise<Image | null>;
  /**
   * The images in the engine's registry (an empty list for an empty registry).
   * @throws RegistryError when the registry is unreachable or does not allow listing.
   */
  images(): Promise<Image[]>;
  /**
   * Copies `ref` from the engine's registry to the registry its name says, through a builder Job; yields
   * progress lines, the last one `Pushed <ref>@<digest>`.
   * @throws InvalidInputError for a reference with a digest; ImageLoadError when the image is missing or the
   * target refuses it (the message names the credentials that were used); KubernetesApiError.
   */
  push(ref: string): AsyncIterable<string>;
  /**
   * Runs `ref` as a pod; resolves once its container started, or once the cluster gave up starting it (then
   * `status` is `exited`, `exitcode` 125 and `reason` says why: image pull, unschedulable, deadline).
   * @throws InvalidInputError for bad options (nothing is created); CancelledError when `options.signal`
   * aborts it (the pod is deleted); KubernetesApiError.
   */
  run(ref: string, options?: RunOptions): Promise<Container>;
}
