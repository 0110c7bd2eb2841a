// A fake cluster behind the engine's one Kubernetes seam (src/kube/api.ts): pods, Jobs, Secrets and
// ConfigMaps in memory, the watch (relist first, then events), the log follower, stdin and exec, and failure
// injection — so the code that calls the cluster gets unit tests of its decisions (which objects, in which
// order, what on 404/409/410/timeouts).
import type { CoreV1Event, V1ConfigMap, V1Job, V1Pod, V1Secret } from "@kubernetes/client-node";
import { CancelledError, ContainerNotFoundError, KubernetesApiError } from "../../src/errors.js";
import type { DeleteOptions, KubeApi, ResourceVerbs, WriteListVerbs } from "../../src/kube/api.js";
import { compareTimestamps } from "../../src/kube/lines.js";
import type { FollowLogsOptions, LogLine, LogTarget } from "../../src/kube/logs.js";
import type { PortForward, PortForwardOptions } from "../../src/kube/port-forward.js";
import type { AttachOptions, ExecOptions, ExecResult, StdinResult } from "../../src/kube/stdin.js";
import type { KubeObject, Watchable, WatchEvent } from "../../src/kube/watch.js";

type Kind = "pods" | "jobs" | "secrets" | "configmaps";
type Obj = V1Pod | V1Job | V1Secret | V1ConfigMap;

/** What one attach delivered to a container's stdin. */
export interface StdinDelivery {
  pod: string;
  container: string;
  bytes: Buffer;
}

/** An API error as the real client maps it. */
export function apiError(verb: string, resource: string, statusCode: number, reason: string): KubernetesApiError {
  return new KubernetesApiError(`${verb} ${resource}: ${reason}`, { verb, resource, statusCode, reason });
}

function matchesLabels(obj: KubeObject & { metadata?: { labels?: Record<string, string> } }, selector: string | undefined): boolean {
  if (!selector) return true;
  const labels = obj.metadata?.labels ?? {};
  return selector.split(",").every((term) => {
    const [k = "", v] = term.split("=");
    return v === undefined ? k in labels : labels[k] === v;
  });
}

function matchesFields(obj: KubeObject, selector: string | undefined): boolean {
  if (!selector) return true;
  return selector.split(",").every((term) => {
    const [k, v] = term.split("=");
    return k === "metadata.name" ? obj.metadata?.name === v : true;
  });
}

interface LogState {
  lines: LogLine[];
  ended: boolean;
  wake: Array<() => void>;
}

type Listener = (event: WatchEvent<Obj>) => void;

interface KindObject {
  pods: V1Pod;
  jobs: V1Job;
  secrets: V1Secret;
  configmaps: V1ConfigMap;
}

export class FakeCluster implements KubeApi {
  readonly namespace = "fake-ns";
  /** Every call, as "verb resource/name" (tests assert order and absence). */
  readonly calls: string[] = [];
  readonly pods: ResourceVerbs<V1Pod>;
  readonly jobs: ResourceVerbs<V1Job>;
  readonly secrets: WriteListVerbs<V1Secret>;
  readonly configMaps: WriteListVerbs<V1ConfigMap>;
  events: CoreV1Event[] = [];
  endpoints: string[] | null = ["192.0.2.2:6443"];
  /** ConfigMaps of other namespaces (read by `configMapIn`), by "namespace/name". */
  readonly configMapsElsewhere = new Map<string, V1ConfigMap>();
  /** Everything each attach delivered to a container's stdin, in order. */
  readonly stdin: StdinDelivery[] = [];
  /** Called once an attach delivered all of its source (tests play the builder that read it). */
  onStdinClosed: ((delivery: StdinDelivery) => void) | null = null;
  /** What an exec returns (default: exit 0, no output); called after its stdin was read. */
  onExec: ((options: Omit<ExecOptions, "namespace">, stdin: Buffer) => Partial<ExecResult>) | null = null;
  private readonly store: Record<Kind, Map<string, Obj>> = { pods: new Map(), jobs: new Map(), secrets: new Map(), configmaps: new Map() };
  private readonly listeners: Record<Kind, Set<Listener>> = { pods: new Set(), jobs: new Set(), secrets: new Set(), configmaps: new Set() };
  private readonly logs = new Map<string, LogState>();
  private readonly failures: Array<{ verb: string; resource: string; error: Error; times: number }> = [];
  private rv = 1;
  /** The options of the last delete of each object, by "kind/name". */
  readonly deleteOptions = new Map<string, DeleteOptions | undefined>();
  /** Port forwards opened and not yet closed, by pod. */
  readonly openForwards = new Map<string, PortForward>();
  /** Called after a Job was created (tests use it to play the Job controller). */
  onJobCreated: ((job: V1Job) => void) | null = null;
  /** Called after a pod was created (tests play the kubelet). */
  onPodCreated: ((pod: V1Pod) => void) | null = null;

  constructor() {
    this.pods = this.verbs<V1Pod>("pods");
    this.jobs = this.verbs<V1Job>("jobs");
    this.secrets = this.verbs<V1Secret>("secrets");
    this.configMaps = this.verbs<V1ConfigMap>("configmaps");
  }

  /** The stored object of that kind and name (a copy), or undefined; makes no call. */
  peek<K extends Kind>(kind: K, name: string): KindObject[K] | undefined {
    const found = this.store[kind].get(name) as KindObject[K] | undefined;
    return found ? structuredClone(found) : undefined;
  }

  /** The names stored of one kind, in creation order; makes no call. */
  names(kind: Kind): string[] {
    return [...this.store[kind].keys()];
  }

  /** The next `times` calls of `verb` on `resource` throw `error`. */
  failNext(verb: string, resource: string, error: Error, times = 1): void {
    this.failures.push({ verb, resource, error, times });
  }

  private maybeFail(verb: string, resource: string): void {
    const f = this.failures.find((x) => x.verb === verb && x.resource === resource && x.times > 0);
    if (!f) return;
    f.times -= 1;
    throw f.error;
  }

  private emit(kind: Kind, type: "ADDED" | "MODIFIED" | "DELETED", object: Obj): void {
    for (const l of [...this.listeners[kind]]) l({ type, object });
  }

  private stamp<T extends Obj>(obj: T): T {
    const copy = structuredClone(obj);
    copy.metadata = { ...copy.metadata, namespace: this.namespace, resourceVersion: String(this.rv++) };
    copy.metadata.uid ??= `uid-${copy.metadata.name}-${this.rv}`;
    return copy;
  }

  private verbs<T extends Obj>(kind: Kind): ResourceVerbs<T> {
    const store = this.store[kind] as Map<string, T>;
    return {
      create: async (object) => {
        const name = object.metadata?.name ?? "";
        this.calls.push(`create ${kind}/${name}`);
        this.maybeFail("create", kind);
        if (store.has(name)) throw apiError("create", kind, 409, "AlreadyExists");
        const stored = this.stamp(object);
        store.set(name, stored);
        this.emit(kind, "ADDED", stored);
        if (kind === "jobs") this.onJobCreated?.(stored as V1Job);
        if (kind === "pods") this.onPodCreated?.(stored as V1Pod);
        return structuredClone(stored);
      },
      get: async (name) => {
        this.calls.push(`get ${kind}/${name}`);
        this.maybeFail("get", kind);
        const found = store.get(name);
        return found ? structuredClone(found) : null;
      },
      list: async (labelSelector) => {
        this.calls.push(`list ${kind}`);
        this.maybeFail("list", kind);
        return [...store.values()].filter((o) => matchesLabels(o, labelSelector)).map((o) => structuredClone(o));
      },
      patch: async (name, body) => {
        this.calls.push(`patch ${kind}/${name}`);
        this.maybeFail("patch", kind);
        const found = store.get(name);
        if (!found) return null;
        const wanted = (body as { metadata?: { resourceVersion?: string } }).metadata?.resourceVersion;
        if (wanted !== undefined && wanted !== found.metadata?.resourceVersion) throw apiError("patch", kind, 409, "Conflict");
        const merged = this.stamp(mergePatch(found, body) as T);
        store.set(name, merged);
        this.emit(kind, "MODIFIED", merged);
        return structuredClone(merged);
      },
      deleteIfExists: async (name, options?: DeleteOptions) => {
        this.calls.push(`delete ${kind}/${name}`);
        this.maybeFail("delete", kind);
        this.deleteOptions.set(`${kind}/${name}`, options);
        const found = store.get(name);
        const wanted = options?.preconditions;
        if (found && wanted) {
          const differs = (wanted.uid !== undefined && wanted.uid !== found.metadata?.uid) ||
            (wanted.resourceVersion !== undefined && wanted.resourceVersion !== found.metadata?.resourceVersion);
          if (differs) throw apiError("delete", kind, 409, "Conflict");
        }
        return this.remove(kind, name);
      },
      watch: (selector) => this.watchOf(kind, selector) as unknown as Watchable<T>,
    };
  }

  /**
   * Deletes an object (as the API server would, now); a Job takes its pods with it, and any object takes
   * what it owns (ownerReferences by uid), as the garbage collector would.
   */
  remove(kind: Kind, name: string): boolean {
    const obj = this.store[kind].get(name);
    if (!obj) return false;
    this.store[kind].delete(name);
    this.emit(kind, "DELETED", obj);
    if (kind === "jobs") {
      for (const pod of [...this.store.pods.values()]) {
        const labels = pod.metadata?.labels ?? {};
        if (labels["batch.kubernetes.io/job-name"] === name || labels["kube-container-engine/build"] === name) this.remove("pods", pod.metadata?.name ?? "");
      }
    }
    const uid = obj.metadata?.uid;
    for (const dependentKind of Object.keys(this.store) as Kind[]) {
      for (const dependent of [...this.store[dependentKind].values()]) {
        if (uid !== undefined && (dependent.metadata?.ownerReferences ?? []).some((o) => o.uid === uid)) {
          this.remove(dependentKind, dependent.metadata?.name ?? "");
        }
      }
    }
    if (kind === "pods") this.endLog(name);
    return true;
  }

  private watchOf(kind: Kind, selector: { labelSelector?: string; fieldSelector?: string }): Watchable<Obj> {
    const matches = (o: Obj): boolean => matchesLabels(o, selector.labelSelector) && matchesFields(o, selector.fieldSelector);
    return {
      events: (signal?: AbortSignal) => this.watchStream(kind, matches, signal),
    };
  }

  private async *watchStream(kind: Kind, matches: (o: Obj) => boolean, signal?: AbortSignal): AsyncGenerator<WatchEvent<Obj>> {
    const queue: WatchEvent<Obj>[] = [];
    let wake: (() => void) | null = null;
    const listener: Listener = (ev) => {
      if (ev.type !== "relisted" && matches(ev.object)) {
        queue.push({ ...ev, object: structuredClone(ev.object) });
        wake?.();
      }
    };
    this.listeners[kind].add(listener);
    const onAbort = (): void => wake?.();
    signal?.addEventListener("abort", onAbort);
    try {
      this.calls.push(`watch ${kind}`);
      yield { type: "relisted", objects: [...this.store[kind].values()].filter(matches).map((o) => structuredClone(o)) };
      for (;;) {
        if (signal?.aborted) throw new CancelledError(`watch of ${kind} cancelled`);
        const next = queue.shift();
        if (next) {
          yield next;
          continue;
        }
        await new Promise<void>((resolve) => (wake = resolve));
        wake = null;
      }
    } finally {
      this.listeners[kind].delete(listener);
      signal?.removeEventListener("abort", onAbort);
    }
  }

  // ---- playing the cluster's controllers ---------------------------------------------------------------

  /** Creates (or replaces) a pod as the Job controller / kubelet would report it. */
  putPod(pod: V1Pod): V1Pod {
    const name = pod.metadata?.name ?? "";
    const existed = this.store.pods.has(name);
    const stored = this.stamp(pod);
    this.store.pods.set(name, stored);
    this.emit("pods", existed ? "MODIFIED" : "ADDED", stored);
    return stored;
  }

  /** Replaces a Job's status (conditions) as the Job controller would. */
  setJobStatus(name: string, status: V1Job["status"]): void {
    const job = this.store.jobs.get(name) as V1Job | undefined;
    if (!job) throw new Error(`no job ${name}`);
    const stored = this.stamp({ ...job, status });
    this.store.jobs.set(name, stored);
    this.emit("jobs", "MODIFIED", stored);
  }

  /** Appends container output (one line each). */
  appendLog(pod: string, ...texts: string[]): void {
    const state = this.logState(pod);
    for (const text of texts) state.lines.push({ timestamp: new Date(Date.now() + state.lines.length).toISOString(), text });
    this.wakeLog(state);
  }

  /** The container terminated: followers get the rest and end. */
  endLog(pod: string): void {
    const state = this.logState(pod);
    state.ended = true;
    this.wakeLog(state);
  }

  private logState(pod: string): LogState {
    let state = this.logs.get(pod);
    if (!state) {
      state = { lines: [], ended: false, wake: [] };
      this.logs.set(pod, state);
    }
    return state;
  }

  private wakeLog(state: LogState): void {
    const wake = state.wake;
    state.wake = [];
    for (const w of wake) w();
  }

  followLogs(options: Omit<FollowLogsOptions, "namespace">): AsyncIterable<LogLine> {
    this.calls.push(`follow pods/${options.pod}/log`);
    const self = this;
    return (async function* () {
      if (!self.store.pods.has(options.pod)) throw new ContainerNotFoundError(`pod "${options.pod}" was deleted before its container started`);
      const state = self.logState(options.pod);
      let next = 0;
      for (;;) {
        while (next < state.lines.length) yield state.lines[next++] as LogLine;
        if (state.ended) return;
        if (options.signal?.aborted) throw new CancelledError("log follow cancelled");
        await new Promise<void>((resolve) => {
          state.wake.push(resolve);
          options.signal?.addEventListener("abort", () => resolve(), { once: true });
        });
      }
    })();
  }

  async readLogs(target: Omit<LogTarget, "namespace">): Promise<LogLine[]> {
    this.calls.push(`read pods/${target.pod}/log`);
    this.maybeFail("read", "pods/log");
    if (!this.store.pods.has(target.pod)) throw apiError("get", "pods/log", 404, "NotFound");
    const since = target.sinceTime;
    return this.logState(target.pod).lines.filter((l) => since === undefined || compareTimestamps(l.timestamp, since) >= 0);
  }

  async forwardPorts(options: Omit<PortForwardOptions, "namespace">): Promise<PortForward> {
    this.calls.push(`portforward pods/${options.pod}`);
    this.maybeFail("portforward", "pods");
    let next = 40_000;
    const forward: PortForward = {
      ports: options.ports.map((p) => ({ remotePort: p.remotePort, localPort: p.localPort || next++, localAddress: p.localAddress ?? "127.0.0.1" })),
      close: async () => {
        if (this.openForwards.get(options.pod) === forward) this.openForwards.delete(options.pod);
      },
    };
    this.openForwards.set(options.pod, forward);
    return forward;
  }

  async eventsFor(objectName: string, options?: { kind?: string }): Promise<CoreV1Event[]> {
    this.calls.push(`list events/${objectName}`);
    this.maybeFail("list", "events");
    return this.events.filter((e) => e.involvedObject?.name === objectName && (options?.kind === undefined || e.involvedObject?.kind === options.kind));
  }

  async configMapIn(namespace: string, name: string): Promise<V1ConfigMap | null> {
    this.calls.push(`get configmaps/${namespace}/${name}`);
    this.maybeFail("get", "configmaps");
    const found = this.configMapsElsewhere.get(`${namespace}/${name}`);
    return found ? structuredClone(found) : null;
  }

  /** Reads the whole source as the container would; a deleted pod or an abort ends it as the real attach does. */
  private async readStdin(pod: string, source: AsyncIterable<Uint8Array>, signal?: AbortSignal, onProgress?: (n: number) => void): Promise<Buffer> {
    if (!this.store.pods.has(pod)) throw apiError("create", "pods/attach", 404, "NotFound");
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of source) {
      if (signal?.aborted) throw new CancelledError("attach cancelled");
      chunks.push(Buffer.from(chunk));
      size += chunk.byteLength;
      onProgress?.(size);
    }
    return Buffer.concat(chunks);
  }

  async attachStdin(options: Omit<AttachOptions, "namespace">): Promise<StdinResult> {
    this.calls.push(`attach pods/${options.pod}`);
    this.maybeFail("attach", "pods");
    const bytes = await this.readStdin(options.pod, options.source as AsyncIterable<Uint8Array>, options.signal, options.onProgress);
    const delivery = { pod: options.pod, container: options.container, bytes };
    this.stdin.push(delivery);
    this.onStdinClosed?.(delivery);
    return { bytesSent: bytes.length, protocol: "v5.channel.k8s.io" };
  }

  async execInPod(options: Omit<ExecOptions, "namespace">): Promise<ExecResult> {
    this.calls.push(`exec pods/${options.pod}`);
    this.maybeFail("exec", "pods");
    const bytes = options.source ? await this.readStdin(options.pod, options.source as AsyncIterable<Uint8Array>, options.signal) : Buffer.alloc(0);
    const result = this.onExec?.(options, bytes) ?? {};
    return { exitCode: 0, status: null, stdout: Buffer.alloc(0), stderr: Buffer.alloc(0), bytesSent: bytes.length, protocol: "v5.channel.k8s.io", ...result };
  }

  /** Secret name → `.dockerconfigjson` text. */
  dockerConfigs = new Map<string, string>();

  async dockerConfigOfSecret(name: string): Promise<string | null> {
    this.calls.push(`list secrets/${name}`);
    const stored = (this.store.secrets.get(name) as V1Secret | undefined)?.data?.[".dockerconfigjson"];
    return this.dockerConfigs.get(name) ?? (stored === undefined ? null : Buffer.from(stored, "base64").toString("utf8"));
  }

  async apiServerEndpoints(): Promise<string[] | null> {
    return this.endpoints;
  }
}

/** RFC 7386 JSON merge patch. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== "object" || Array.isArray(patch)) return patch;
  const out: Record<string, unknown> = target !== null && typeof target === "object" && !Array.isArray(target) ? { ...(target as Record<string, unknown>) } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

/** A Job's pod in a given state, labelled as the Job controller labels it. */
export function jobPod(
  jobName: string,
  container: string,
  state: "waiting" | "running" | { exitCode: number; reason?: string },
  extra: { waitingReason?: string; waitingMessage?: string } = {},
): V1Pod {
  const now = new Date();
  const containerState =
    state === "waiting"
      ? { waiting: { reason: extra.waitingReason ?? "ContainerCreating", ...(extra.waitingMessage ? { message: extra.waitingMessage } : {}) } }
      : state === "running"
        ? { running: { startedAt: now } }
        : { terminated: { exitCode: state.exitCode, reason: state.reason ?? (state.exitCode === 0 ? "Completed" : "Error"), startedAt: now, finishedAt: now } };
  const phase = state === "waiting" ? "Pending" : state === "running" ? "Running" : state.exitCode === 0 ? "Succeeded" : "Failed";
  return {
    metadata: {
      name: `${jobName}-pod`,
      labels: { "batch.kubernetes.io/job-name": jobName, "job-name": jobName, "kube-container-engine/build": jobName },
    },
    spec: { containers: [{ name: container, image: "runner:1" }], restartPolicy: "Never" },
    status: {
      phase,
      startTime: now,
      containerStatuses: [{ name: container, image: "runner:1", imageID: "", ready: state === "running", restartCount: 0, state: containerState }],
    },
  };
}
