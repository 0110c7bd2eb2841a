/**
 * What a builder Job is made of, shared by the Kaniko and BuildKit specs: the input type, the Job skeleton
 * (server-side safety nets: deadline, TTL, no retries), resources, and the per-build registry-credentials
 * Secret. Pure functions of their input: no client, clock or environment.
 */
import type {
  V1Container,
  V1Job,
  V1ResourceRequirements,
  V1Secret,
  V1Toleration,
  V1Volume,
} from "@kubernetes/client-node";
import type { ContainerLimits } from "../contract.js";
import { InvalidInputError } from "../errors.js";
import { parseImageReference } from "../image.js";

/** The name of the single builder container: attach to its stdin, read its termination message. */
export const BUILDER_CONTAINER = "builder";

/** Where the builder writes the pushed image's digest (the container's terminationMessagePath). */
export const TERMINATION_LOG = "/dev/termination-log";

/** Everything a builder Job needs, resolved by the caller. */
export interface BuilderJobInput {
  /** Job name (DNS-1123 label, ≤ 63 characters); its pod is named after it. */
  name: string;
  namespace: string;
  /** Set on the Job and its pod template (for the label-filtered watch and `gc`). */
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  /** The builder image, pinned by the caller. */
  image: string;
  imagePullPolicy?: "Always" | "IfNotPresent" | "Never";
  /** Fully resolved references as the pod pushes them (e.g. "10.0.0.5:5000/r2d-x:latest"). */
  destinations: string[];
  /** The Dockerfile's path inside the context (validated, relative). */
  dockerfile: string;
  buildArgs?: Record<string, string>;
  /** Image labels; null becomes "". */
  imageLabels?: Record<string, string | null>;
  /** A repository for the layer cache (Kaniko `--cache-repo`, BuildKit registry cache). */
  cacheRepo?: string;
  /** Images to import cache from (BuildKit only; Kaniko has no equivalent). */
  cacheFrom?: string[];
  /** "os/arch[/variant]". */
  platform?: string;
  /** Push the image; when false it is built and discarded (the digest is still reported). */
  push: boolean;
  /** Registry hosts ("host[:port]") reached over plain HTTP or with unverified TLS. */
  insecureRegistries?: string[];
  /** Seconds the build may run, enforced by the server (pod and Job `activeDeadlineSeconds`). */
  deadlineSeconds: number;
  /** Seconds after the Job finished before the cluster deletes it, its pod and what it owns. */
  ttlSecondsAfterFinished: number;
  /** repo2docker's limits: `memory` → limits.memory, `cpushares` → requests.cpu. */
  containerLimits?: ContainerLimits;
  /** Base requests/limits (quantities), overridden by `containerLimits`. */
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  /** Name of a kubernetes.io/dockerconfigjson Secret with push/pull credentials, mounted as a file. */
  credentialsSecret?: string;
  serviceAccountName?: string;
  nodeSelector?: Record<string, string>;
  tolerations?: V1Toleration[];
  /** Seconds between SIGTERM and SIGKILL when the build is cancelled; default 5. */
  terminationGracePeriodSeconds?: number;
}

/** Extra time the Job-level deadline allows over the pod's, so the pod's own `DeadlineExceeded` shows first. */
export const JOB_DEADLINE_MARGIN_SECONDS = 30;

const DNS_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

function positiveInt(what: string, value: number, allowZero = false): void {
  if (!Number.isSafeInteger(value) || value < (allowZero ? 0 : 1)) {
    throw new InvalidInputError(`${what} must be a ${allowZero ? "non-negative" : "positive"} whole number`);
  }
}

/** Checks what the specs rely on; throws `InvalidInputError`. */
export function checkBuilderInput(input: BuilderJobInput): void {
  if (!DNS_LABEL.test(input.name)) {
    throw new InvalidInputError(`builder Job name ${JSON.stringify(input.name)} must be a DNS-1123 label (≤ 63)`);
  }
  if (!input.image) throw new InvalidInputError("the builder image must be set");
  if (input.destinations.length === 0) throw new InvalidInputError("a build needs at least one destination");
  for (const d of input.destinations) parseImageReference(d);
  positiveInt("the build deadline", input.deadlineSeconds);
  positiveInt("ttlSecondsAfterFinished", input.ttlSecondsAfterFinished, true);
}

/** The registry host of a reference, as Docker names it ("docker.io" when none). */
export function registryHost(ref: string): string {
  return parseImageReference(ref).registry ?? "docker.io";
}

/** Image labels with null → "". */
export function labelValues(labels: Record<string, string | null> | undefined): [string, string][] {
  return Object.entries(labels ?? {}).map(([k, v]) => [k, v ?? ""]);
}

/** Requests/limits: the base ones, then repo2docker's `containerLimits` on top. */
export function builderResources(input: BuilderJobInput): V1ResourceRequirements | undefined {
  const requests: Record<string, string> = { ...input.resources?.requests };
  const limits: Record<string, string> = { ...input.resources?.limits };
  const memory = input.containerLimits?.memory;
  if (memory !== undefined && memory > 0) limits["memory"] = String(Math.floor(memory));
  const shares = input.containerLimits?.cpushares;
  if (shares !== undefined && shares > 0) requests["cpu"] = `${Math.max(1, Math.round((shares * 1000) / 1024))}m`;
  const out: V1ResourceRequirements = {};
  if (Object.keys(requests).length > 0) out.requests = requests;
  if (Object.keys(limits).length > 0) out.limits = limits;
  return out.requests || out.limits ? out : undefined;
}

/**
 * Wraps the builder container into a Job: no retries (`backoffLimit: 0`), a server-enforced deadline on the
 * pod and (with a margin) on the Job, TTL cleanup, `restartPolicy: Never`, no service-account token and no
 * service links. `podAnnotations` go on the pod template only.
 */
export function builderJob(
  input: BuilderJobInput,
  container: V1Container,
  extra: { volumes: V1Volume[]; podAnnotations?: Record<string, string> },
): V1Job {
  checkBuilderInput(input);
  const labels = { ...input.labels };
  const podAnnotations = { ...input.annotations, ...extra.podAnnotations };
  return {
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: {
      name: input.name,
      namespace: input.namespace,
      labels,
      ...(input.annotations ? { annotations: { ...input.annotations } } : {}),
    },
    spec: {
      backoffLimit: 0,
      activeDeadlineSeconds: input.deadlineSeconds + JOB_DEADLINE_MARGIN_SECONDS,
      ttlSecondsAfterFinished: input.ttlSecondsAfterFinished,
      template: {
        metadata: {
          labels: { ...labels },
          ...(Object.keys(podAnnotations).length > 0 ? { annotations: podAnnotations } : {}),
        },
        spec: {
          restartPolicy: "Never",
          activeDeadlineSeconds: input.deadlineSeconds,
          terminationGracePeriodSeconds: input.terminationGracePeriodSeconds ?? 5,
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          ...(input.serviceAccountName ? { serviceAccountName: input.serviceAccountName } : {}),
          ...(input.nodeSelector ? { nodeSelector: { ...input.nodeSelector } } : {}),
          ...(input.tolerations ? { tolerations: input.tolerations.map((t) => ({ ...t })) } : {}),
          containers: [container],
          ...(extra.volumes.length > 0 ? { volumes: extra.volumes } : {}),
        },
      },
    },
  };
}

/** The parts every builder container shares: name, image, stdin for the context, the termination message. */
export function builderContainerBase(input: BuilderJobInput): V1Container {
  const resources = builderResources(input);
  return {
    name: BUILDER_CONTAINER,
    image: input.image,
    ...(input.imagePullPolicy ? { imagePullPolicy: input.imagePullPolicy } : {}),
    stdin: true,
    stdinOnce: true,
    tty: false,
    terminationMessagePath: TERMINATION_LOG,
    // The digest file wins when written (success); on a failure with an empty file the kubelet keeps the
    // log's tail as the message, so the reason survives the pod's logs.
    terminationMessagePolicy: "FallbackToLogsOnError",
    ...(resources ? { resources } : {}),
  };
}

/** One registry's push/pull credentials. */
export interface RegistryCredential {
  /** "host[:port]"; "docker.io" is written as Docker Hub's legacy key. */
  registry: string;
  username: string;
  password: string;
}

/**
 * A per-build `kubernetes.io/dockerconfigjson` Secret. The caller sets `ownerReferences` to the Job once it
 * exists, so the cluster deletes the Secret with it. The values live only in `data` (base64), never in args,
 * env or annotations.
 */
export function registryCredentialsSecret(
  name: string,
  credentials: RegistryCredential | readonly RegistryCredential[],
  meta: { namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> } = {},
): V1Secret {
  const list: readonly RegistryCredential[] = Array.isArray(credentials)
    ? (credentials as readonly RegistryCredential[])
    : [credentials as RegistryCredential];
  const auths: Record<string, { auth: string }> = {};
  for (const c of list) {
    if (!c.registry || typeof c.username !== "string" || typeof c.password !== "string") {
      throw new InvalidInputError("registry credentials need `registry`, `username` and `password`");
    }
    const key = c.registry === "docker.io" ? "https://index.docker.io/v1/" : c.registry;
    auths[key] = { auth: Buffer.from(`${c.username}:${c.password}`).toString("base64") };
  }
  return {
    apiVersion: "v1",
    kind: "Secret",
    type: "kubernetes.io/dockerconfigjson",
    metadata: {
      name,
      ...(meta.namespace ? { namespace: meta.namespace } : {}),
      ...(meta.labels ? { labels: { ...meta.labels } } : {}),
      ...(meta.annotations ? { annotations: { ...meta.annotations } } : {}),
    },
    data: { ".dockerconfigjson": Buffer.from(JSON.stringify({ auths })).toString("base64") },
  };
}
