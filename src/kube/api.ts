/**
 * The seam to the Kubernetes API: named verbs per resource over {@link KubeClient}, with "not found" as a
 * value (`get` → null, `deleteIfExists` → false) instead of a status code every caller re-checks. Code outside
 * `src/kube/` calls the cluster through a {@link KubeApi}; tests pass a fake cluster with the same shape.
 */
import {
  PatchStrategy,
  setHeaderOptions,
  type CoreV1Event,
  type V1ConfigMap,
  type V1Job,
  type V1Pod,
  type V1Secret,
} from "@kubernetes/client-node";
import { KubernetesApiError } from "../errors.js";
import type { KubeClient } from "./client.js";
import { followLogs, readLogs, type FollowLogsOptions, type LogLine, type LogTarget } from "./logs.js";
import { forwardPorts, type PortForward, type PortForwardOptions } from "./port-forward.js";
import { attachStdin, execInPod, type AttachOptions, type ExecOptions, type ExecResult, type StdinResult } from "./stdin.js";
import { jobsCollection, podsCollection, ResourceWatch, type Watchable } from "./watch.js";

/** How a delete treats running containers. */
export interface DeleteOptions {
  /** Seconds the containers get after SIGTERM (default: the object's own). */
  gracePeriodSeconds?: number;
  /** Delete dependents (a Job's pods) in the background (default) or first ("Foreground"). */
  propagationPolicy?: "Background" | "Foreground";
  /**
   * Delete only this very object: the API server answers 409 when the object of that name has another uid
   * (it was replaced) or another resourceVersion.
   */
  preconditions?: { uid?: string; resourceVersion?: string };
  signal?: AbortSignal;
}

/** Verbs on one kind of namespaced object. */
export interface ResourceVerbs<T> {
  /** @throws KubernetesApiError; 409 (`AlreadyExists`) when the name is taken. */
  create(object: T, options?: { signal?: AbortSignal }): Promise<T>;
  /** The object, or null when there is none of that name. */
  get(name: string, options?: { signal?: AbortSignal }): Promise<T | null>;
  /** The objects matching a label selector. */
  list(labelSelector: string, options?: { signal?: AbortSignal }): Promise<T[]>;
  /**
   * Applies a JSON merge patch; a `metadata.resourceVersion` in it makes the patch conditional (409 when the
   * object changed since). Null when there is no such object.
   */
  patch(name: string, patch: object, options?: { signal?: AbortSignal }): Promise<T | null>;
  /** True when the object existed (its deletion has begun), false when there was none. */
  deleteIfExists(name: string, options?: DeleteOptions): Promise<boolean>;
  /** A watch of the objects matching a label selector (and optionally a field selector). */
  watch(selector: { labelSelector?: string; fieldSelector?: string }): Watchable<T>;
}

/**
 * The verbs of a kind the engine creates, patches, lists and deletes but never reads one by one nor watches
 * (its Role may not `get` Secrets).
 */
export type WriteListVerbs<T> = Pick<ResourceVerbs<T>, "create" | "list" | "patch" | "deleteIfExists">;

/** What callers of the cluster use: one namespace, named verbs, the one watch and the one log follower. */
export interface KubeApi {
  readonly namespace: string;
  readonly pods: ResourceVerbs<V1Pod>;
  readonly jobs: ResourceVerbs<V1Job>;
  readonly secrets: WriteListVerbs<V1Secret>;
  readonly configMaps: WriteListVerbs<V1ConfigMap>;
  /**
   * ConfigMap `name` of another namespace (e.g. KEP-1755's `kube-public/local-registry-hosting`), or null when
   * there is none or we may not read it (403): either way, nothing is published to us there.
   */
  configMapIn(namespace: string, name: string, options?: { signal?: AbortSignal }): Promise<V1ConfigMap | null>;
  /** Events about one object (by name, and by kind when given), oldest first. */
  eventsFor(objectName: string, options?: { kind?: string; signal?: AbortSignal }): Promise<CoreV1Event[]>;
  /** THE log follower (see {@link followLogs}): every line of a container once, in order. */
  followLogs(options: Omit<FollowLogsOptions, "namespace">): AsyncIterable<LogLine>;
  /**
   * A container's log so far, without following it.
   * @throws KubernetesApiError: 404 without the pod, 400 before the container started.
   */
  readLogs(target: Omit<LogTarget, "namespace">): Promise<LogLine[]>;
  /** Forwards local ports to a pod's ports (over the API server) until the forward is closed. */
  forwardPorts(options: Omit<PortForwardOptions, "namespace">): Promise<PortForward>;
  /**
   * Streams a source into a running container's stdin (see {@link attachStdin}), then closes it.
   * @throws KubernetesApiError (refused, unreachable, session lost); CancelledError.
   */
  attachStdin(options: Omit<AttachOptions, "namespace">): Promise<StdinResult>;
  /**
   * Runs a command in a container (see {@link execInPod}) and returns its output and exit status.
   * @throws KubernetesApiError (refused, unreachable, session lost); CancelledError.
   */
  execInPod(options: Omit<ExecOptions, "namespace">): Promise<ExecResult>;
  /**
   * The `.dockerconfigjson` of Secret `name` (decoded), or null when there is no such Secret or key. Read by
   * listing with a field selector: the engine's Role may list Secrets (for gc) but not get them.
   */
  dockerConfigOfSecret(name: string, options?: { signal?: AbortSignal }): Promise<string | null>;
  /** `ip:port` of the API server (Endpoints `default/kubernetes`), or null when not allowed to read them. */
  apiServerEndpoints(options?: { signal?: AbortSignal }): Promise<string[] | null>;
}

/** True for a KubernetesApiError with HTTP status `code`. */
export function isStatus(err: unknown, code: number): boolean {
  return err instanceof KubernetesApiError && err.statusCode === code;
}

async function nullIfNotFound<T>(request: Promise<T>): Promise<T | null> {
  try {
    return await request;
  } catch (err) {
    if (isStatus(err, 404)) return null;
    throw err;
  }
}

async function falseIfNotFound(request: Promise<unknown>): Promise<boolean> {
  try {
    await request;
    return true;
  } catch (err) {
    if (isStatus(err, 404)) return false;
    throw err;
  }
}

/** The call's options with the merge-patch content type added (client-node sends JSON patch otherwise). */
function mergePatch(options: Parameters<typeof setHeaderOptions>[2]): Parameters<typeof setHeaderOptions>[2] {
  return setHeaderOptions("Content-Type", PatchStrategy.MergePatch, options);
}

const signalOf = (options?: { signal?: AbortSignal }): { signal?: AbortSignal } => (options?.signal ? { signal: options.signal } : {});

/** {@link KubeApi} over a real {@link KubeClient}. */
export class ClusterApi implements KubeApi {
  readonly pods: ResourceVerbs<V1Pod>;
  readonly jobs: ResourceVerbs<V1Job>;
  readonly secrets: WriteListVerbs<V1Secret>;
  readonly configMaps: WriteListVerbs<V1ConfigMap>;

  constructor(private readonly client: KubeClient) {
    const c = client;
    const namespace = c.namespace;
    this.pods = {
      create: (body, o) => c.call("create", "pods", (x) => c.core.createNamespacedPod({ namespace, body }, x), { name: body.metadata?.name ?? "", ...signalOf(o) }),
      get: (name, o) => nullIfNotFound(c.call("get", "pods", (x) => c.core.readNamespacedPod({ name, namespace }, x), { name, ...signalOf(o) })),
      list: async (labelSelector, o) =>
        (await c.call("list", "pods", (x) => c.core.listNamespacedPod({ namespace, labelSelector }, x), signalOf(o))).items,
      patch: (name, body, o) =>
        nullIfNotFound(
          c.call("patch", "pods", (x) => c.core.patchNamespacedPod({ name, namespace, body }, mergePatch(x)), { name, ...signalOf(o) }),
        ),
      deleteIfExists: (name, o) =>
        falseIfNotFound(
          c.call("delete", "pods", (x) => c.core.deleteNamespacedPod({ name, namespace, ...deleteBody(o) }, x), { name, ...signalOf(o) }),
        ),
      watch: (selector) => new ResourceWatch<V1Pod>(c, podsCollection(namespace), selector),
    };
    this.jobs = {
      create: (body, o) => c.call("create", "jobs", (x) => c.batch.createNamespacedJob({ namespace, body }, x), { name: body.metadata?.name ?? "", ...signalOf(o) }),
      get: (name, o) => nullIfNotFound(c.call("get", "jobs", (x) => c.batch.readNamespacedJob({ name, namespace }, x), { name, ...signalOf(o) })),
      list: async (labelSelector, o) =>
        (await c.call("list", "jobs", (x) => c.batch.listNamespacedJob({ namespace, labelSelector }, x), signalOf(o))).items,
      patch: (name, body, o) =>
        nullIfNotFound(
          c.call("patch", "jobs", (x) => c.batch.patchNamespacedJob({ name, namespace, body }, mergePatch(x)), { name, ...signalOf(o) }),
        ),
      deleteIfExists: (name, o) =>
        falseIfNotFound(
          c.call("delete", "jobs", (x) => c.batch.deleteNamespacedJob({ name, namespace, ...deleteBody(o) }, x), { name, ...signalOf(o) }),
        ),
      watch: (selector) => new ResourceWatch<V1Job>(c, jobsCollection(namespace), selector),
    };
    this.secrets = {
      create: (body, o) =>
        c.call("create", "secrets", (x) => c.core.createNamespacedSecret({ namespace, body }, x), { name: body.metadata?.name ?? "", ...signalOf(o) }),
      list: async (labelSelector, o) =>
        (await c.call("list", "secrets", (x) => c.core.listNamespacedSecret({ namespace, labelSelector }, x), signalOf(o))).items,
      patch: (name, body, o) =>
        nullIfNotFound(
          c.call("patch", "secrets", (x) => c.core.patchNamespacedSecret({ name, namespace, body }, mergePatch(x)), { name, ...signalOf(o) }),
        ),
      deleteIfExists: (name, o) =>
        falseIfNotFound(
          c.call("delete", "secrets", (x) => c.core.deleteNamespacedSecret({ name, namespace, ...deleteBody(o) }, x), { name, ...signalOf(o) }),
        ),
    };
    this.configMaps = {
      create: (body, o) =>
        c.call("create", "configmaps", (x) => c.core.createNamespacedConfigMap({ namespace, body }, x), { name: body.metadata?.name ?? "", ...signalOf(o) }),
      list: async (labelSelector, o) =>
        (await c.call("list", "configmaps", (x) => c.core.listNamespacedConfigMap({ namespace, labelSelector }, x), signalOf(o))).items,
      patch: (name, body, o) =>
        nullIfNotFound(
          c.call("patch", "configmaps", (x) => c.core.patchNamespacedConfigMap({ name, namespace, body }, mergePatch(x)), { name, ...signalOf(o) }),
        ),
      deleteIfExists: (name, o) =>
        falseIfNotFound(
          c.call("delete", "configmaps", (x) => c.core.deleteNamespacedConfigMap({ name, namespace, ...deleteBody(o) }, x), {
            name,
            ...signalOf(o),
          }),
        ),
    };
  }

  get namespace(): string {
    return this.client.namespace;
  }

  async configMapIn(namespace: string, name: string, options?: { signal?: AbortSignal }): Promise<V1ConfigMap | null> {
    const c = this.client;
    try {
      return await c.call("get", "configmaps", (x) => c.core.readNamespacedConfigMap({ name, namespace }, x), { name, ...signalOf(options) });
    } catch (err) {
      if (isStatus(err, 404) || isStatus(err, 403)) return null;
      throw err;
    }
  }

  async eventsFor(objectName: string, options?: { kind?: string; signal?: AbortSignal }): Promise<CoreV1Event[]> {
    const c = this.client;
    const kind = options?.kind ? `involvedObject.kind=${options.kind},` : "";
    const list = await c.call(
      "list",
      "events",
      (x) => c.core.listNamespacedEvent({ namespace: c.namespace, fieldSelector: `${kind}involvedObject.name=${objectName}` }, x),
      signalOf(options),
    );
    const time = (e: CoreV1Event): number => new Date(e.lastTimestamp ?? e.eventTime ?? e.metadata?.creationTimestamp ?? 0).getTime();
    return [...list.items].sort((a, b) => time(a) - time(b));
  }

  followLogs(options: Omit<FollowLogsOptions, "namespace">): AsyncIterable<LogLine> {
    return followLogs(this.client, options);
  }

  readLogs(target: Omit<LogTarget, "namespace">): Promise<LogLine[]> {
    return readLogs(this.client, target);
  }

  forwardPorts(options: Omit<PortForwardOptions, "namespace">): Promise<PortForward> {
    return forwardPorts(this.client, options);
  }

  attachStdin(options: Omit<AttachOptions, "namespace">): Promise<StdinResult> {
    return attachStdin(this.client, options);
  }

  execInPod(options: Omit<ExecOptions, "namespace">): Promise<ExecResult> {
    return execInPod(this.client, options);
  }

  async dockerConfigOfSecret(name: string, options?: { signal?: AbortSignal }): Promise<string | null> {
    const c = this.client;
    const list = await c.call(
      "list",
      "secrets",
      (x) => c.core.listNamespacedSecret({ namespace: c.namespace, fieldSelector: `metadata.name=${name}` }, x),
      { name, ...signalOf(options) },
    );
    const data = list.items[0]?.data?.[".dockerconfigjson"];
    return data === undefined ? null : Buffer.from(data, "base64").toString("utf8");
  }

  async apiServerEndpoints(options?: { signal?: AbortSignal }): Promise<string[] | null> {
    const c = this.client;
    try {
      const endpoints = await c.call(
        "get",
        "endpoints",
        (x) => c.core.readNamespacedEndpoints({ name: "kubernetes", namespace: "default" }, x),
        { name: "kubernetes", ...signalOf(options) },
      );
      return (endpoints.subsets ?? []).flatMap((subset) =>
        (subset.addresses ?? []).flatMap((a) => (subset.ports ?? []).map((p) => (a.ip.includes(":") ? `[${a.ip}]:${p.port}` : `${a.ip}:${p.port}`))),
      );
    } catch (err) {
      if (isStatus(err, 403) || isStatus(err, 404)) return null;
      throw err;
    }
  }
}

/**
 * The delete options, as query parameters and again as the body: with a body the API server reads them from
 * it and ignores the query, and a Job's default propagation (Orphan) would leave its pod behind. Preconditions
 * exist only in the body.
 */
function deleteBody(options?: DeleteOptions): {
  gracePeriodSeconds?: number;
  propagationPolicy: string;
  body: { gracePeriodSeconds?: number; propagationPolicy: string; preconditions?: { uid?: string; resourceVersion?: string } };
} {
  const given = {
    ...(options?.gracePeriodSeconds !== undefined ? { gracePeriodSeconds: options.gracePeriodSeconds } : {}),
    propagationPolicy: options?.propagationPolicy ?? "Background",
  };
  return { ...given, body: { ...given, ...(options?.preconditions ? { preconditions: options.preconditions } : {}) } };
}
