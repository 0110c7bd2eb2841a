/**
 * THE log follower: gap-free, duplicate-free container logs. Follows with `timestamps=true` once the
 * container has started, resumes from the last timestamp when the stream ends early (kubelet log rotation,
 * API server or kubelet restart) and drops the repeated boundary lines, and after the container terminated
 * does a final non-follow read for lines that raced the end of the follow.
 */
import type { IncomingMessage } from "node:http";
import type { V1ContainerStatus, V1Pod } from "@kubernetes/client-node";
import { CancelledError, ContainerNotFoundError, KubernetesApiError } from "../errors.js";
import { isTransient, statusCodeOf } from "./api-errors.js";
import { abortableDelay, backoffDelay, type BackoffOptions, type DelayFn } from "./backoff.js";
import type { KubeClient } from "./client.js";
import { BoundaryDeduper, compareTimestamps, LineSplitter, parseLogLine, type LogLine } from "./lines.js";
import { podsCollection, ResourceWatch, waitFor, type Watchable } from "./watch.js";

export type { LogLine } from "./lines.js";

/** Which container's logs. */
export interface LogTarget {
  /** Default: the client's namespace. */
  namespace?: string;
  pod: string;
  container: string;
  /** RFC3339(Nano) timestamp: only lines from that time on. */
  sinceTime?: string;
  signal?: AbortSignal;
}

/** Options of {@link followLogs}. */
export interface FollowLogsOptions extends LogTarget {
  /** Give up waiting for the container to start after this long, ms (DeadlineExceededError). No limit by default. */
  startTimeoutMs?: number;
  /** Give up (KubernetesApiError) when the server stays unreachable this long, ms (default 60 000). */
  maxOutageMs?: number;
  backoff?: BackoffOptions;
  /** Injectable for tests. */
  delay?: DelayFn;
  /** The pod watch used to wait for the start; default: a {@link ResourceWatch} on this pod. */
  watch?: Watchable<V1Pod>;
}

/** The state of one container of a pod (regular or init), or null when the kubelet has not reported it. */
export function containerStatus(pod: V1Pod, container: string): V1ContainerStatus | null {
  const all = [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])];
  return all.find((s) => s.name === container) ?? null;
}

/** True once the container runs or ran (a log follow would no longer answer 400 "waiting to start"). */
export function containerStarted(pod: V1Pod, container: string): boolean {
  const s = containerStatus(pod, container);
  return s?.state?.running !== undefined || s?.state?.terminated !== undefined;
}

/** True when the container's current instance has terminated. */
export function containerTerminated(pod: V1Pod, container: string): boolean {
  return containerStatus(pod, container)?.state?.terminated !== undefined;
}

/** Formats a line as callers print it: `"<timestamp> <text>\n"` or `"<text>\n"`. */
export function formatLogLine(line: LogLine, timestamps: boolean): string {
  return timestamps && line.timestamp !== "" ? `${line.timestamp} ${line.text}\n` : `${line.text}\n`;
}

function logRequest(client: KubeClient, t: LogTarget, follow: boolean, sinceTime: string | undefined) {
  const ns = t.namespace ?? client.namespace;
  return {
    verb: "get",
    resource: "pods/log",
    name: t.pod,
    path: `/api/v1/namespaces/${encodeURIComponent(ns)}/pods/${encodeURIComponent(t.pod)}/log`,
    query: { container: t.container, timestamps: "true", follow: follow ? "true" : undefined, sinceTime },
    ...(t.signal ? { signal: t.signal } : {}),
  };
}

/**
 * Parses a log response into lines; a trailing partial line is returned only when `flushPartial`. Every line
 * of a `timestamps=true` log starts with its timestamp: text without one is the kubelet's own error, written
 * into a response already under way (e.g. "failed to try resolving symlinks in path …" when the pod's log
 * directory was removed mid-read), and is not the container's output.
 */
async function* responseLines(res: IncomingMessage, flushPartial: boolean, signal?: AbortSignal): AsyncGenerator<LogLine> {
  const splitter = new LineSplitter();
  const onAbort = (): void => void res.destroy(new CancelledError("log read cancelled"));
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    for await (const chunk of res as AsyncIterable<Buffer>) {
      for (const raw of splitter.push(chunk)) {
        const line = parseLogLine(raw);
        if (line) yield line;
      }
    }
    const rest = flushPartial ? splitter.flush() : null;
    const last = rest === null ? null : parseLogLine(rest);
    if (last) yield last;
  } finally {
    signal?.removeEventListener("abort", onAbort);
    res.destroy();
  }
}

/** Filters out what precedes `since` and what the deduper has seen. */
function fresh(line: LogLine, since: string | undefined, dedupe: BoundaryDeduper): boolean {
  if (since !== undefined && compareTimestamps(line.timestamp, since) < 0) return false;
  return dedupe.accept(line);
}

/**
 * One-shot (non-follow) read of a container's log.
 * @throws KubernetesApiError (e.g. 404 pod gone, 400 container not started); CancelledError.
 */
export async function readLogs(client: KubeClient, target: LogTarget): Promise<LogLine[]> {
  const res = await client.openStream(logRequest(client, target, false, target.sinceTime));
  const lines: LogLine[] = [];
  const dedupe = new BoundaryDeduper();
  for await (const line of responseLines(res, true, target.signal)) {
    if (fresh(line, target.sinceTime, dedupe)) lines.push(line);
  }
  return lines;
}

/**
 * Follows a container's log from its start (or `sinceTime`) to its end: every line exactly once, in order.
 * Waits (by watch) for the container to start. The iteration ends after the container terminated, or when
 * the pod disappeared (its log is gone with it).
 * @throws ContainerNotFoundError when the pod is deleted before the container started; DeadlineExceededError
 *   after `startTimeoutMs`; CancelledError; KubernetesApiError (forbidden, long outage…).
 */
export async function* followLogs(client: KubeClient, options: FollowLogsOptions): AsyncGenerator<LogLine> {
  const ns = options.namespace ?? client.namespace;
  const watch =
    options.watch ??
    new ResourceWatch<V1Pod>(client, podsCollection(ns), { fieldSelector: `metadata.name=${options.pod}` });
  const started = await waitFor(watch, (p) => containerStarted(p, options.container), {
    name: options.pod,
    absentIsDeleted: true,
    description: `container "${options.container}" of pod "${options.pod}" to start`,
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.startTimeoutMs !== undefined ? { timeoutMs: options.startTimeoutMs } : {}),
  });
  if (started.kind === "deleted") {
    throw new ContainerNotFoundError(`pod "${options.pod}" in namespace "${ns}" was deleted before its container started`);
  }
  yield* new Follower(client, options).run();
}

/** The resume loop of {@link followLogs}. */
class Follower {
  private readonly dedupe = new BoundaryDeduper();
  private attempt = 0;
  private outageStart: number | null = null;

  constructor(
    private readonly client: KubeClient,
    private readonly opts: FollowLogsOptions,
  ) {}

  async *run(): AsyncGenerator<LogLine> {
    for (let first = true; ; first = false) {
      if (!first) this.dedupe.beginResume();
      let progressed = false;
      let waited = false;
      try {
        const since = this.dedupe.lastTimestamp ?? this.opts.sinceTime;
        const res = await this.client.openStream(logRequest(this.client, this.opts, true, since));
        this.outageStart = null;
        // A partial last line of a follow that ended early is dropped here and re-read by the resume.
        for await (const line of responseLines(res, false, this.opts.signal)) {
          if (!fresh(line, this.opts.sinceTime, this.dedupe)) continue;
          progressed = true;
          yield line;
        }
      } catch (err) {
        await this.onError(err);
        waited = true;
      }
      if (progressed) this.attempt = 0;
      const state = await this.containerState();
      if (state === "gone") return;
      if (state === "terminated") {
        yield* this.finalRead();
        return;
      }
      // Still running but the follow ended without news: resume, but do not spin.
      if (!progressed && !waited) await this.backoff();
    }
  }

  /** Reads the log once more, without follow, from the last timestamp: lines that raced the end. */
  private async *finalRead(): AsyncGenerator<LogLine> {
    for (;;) {
      this.dedupe.beginResume();
      try {
        const since = this.dedupe.lastTimestamp ?? this.opts.sinceTime;
        const res = await this.client.openStream(logRequest(this.client, this.opts, false, since));
        const lines: LogLine[] = [];
        for await (const line of responseLines(res, true, this.opts.signal)) lines.push(line);
        for (const line of lines) if (fresh(line, this.opts.sinceTime, this.dedupe)) yield line;
        return;
      } catch (err) {
        if (statusCodeOf(err) === 404) return;
        await this.onError(err);
      }
    }
  }

  /** "terminated", "running" (resume) or "gone"; retries transient failures. */
  private async containerState(): Promise<"terminated" | "running" | "gone"> {
    const ns = this.opts.namespace ?? this.client.namespace;
    for (;;) {
      try {
        const pod = await this.client.call(
          "get",
          "pods",
          (o) => this.client.core.readNamespacedPod({ name: this.opts.pod, namespace: ns }, o),
          { name: this.opts.pod, ...(this.opts.signal ? { signal: this.opts.signal } : {}) },
        );
        return containerTerminated(pod, this.opts.container) ? "terminated" : "running";
      } catch (err) {
        if (err instanceof KubernetesApiError && err.statusCode === 404) return "gone";
        await this.onError(err);
      }
    }
  }

  /** Rethrows what is not worth retrying; otherwise waits a backoff step (bounded by `maxOutageMs`). */
  private async onError(err: unknown): Promise<void> {
    if (this.opts.signal?.aborted) throw new CancelledError("log follow cancelled", { cause: err });
    const code = statusCodeOf(err);
    // 404: the pod is gone (containerState decides); 400: the container restarted and waits again.
    if (code !== 404 && code !== 400 && !isTransient(err)) throw err;
    this.outageStart ??= Date.now();
    const elapsed = Date.now() - this.outageStart;
    if (elapsed > (this.opts.maxOutageMs ?? 60_000)) {
      throw new KubernetesApiError(
        `lost the log of pod "${this.opts.pod}" for ${Math.round(elapsed / 1000)} s: ${err instanceof Error ? err.message : String(err)}`,
        { verb: "get", resource: "pods/log", statusCode: code, cause: err },
      );
    }
    await this.backoff();
  }

  private async backoff(): Promise<void> {
    await (this.opts.delay ?? abortableDelay)(backoffDelay(this.attempt++, this.opts.backoff), this.opts.signal);
  }
}
