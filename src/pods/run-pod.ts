/**
 * The pod that runs a container (`engine.run`): a pure function of its input, as kubectl's `run` builds its pod
 * without touching a client. Validation errors are `InvalidInputError`s raised before any API call.
 */
import type {
  V1Pod,
  V1ResourceRequirements,
  V1SecurityContext,
  V1Toleration,
} from "@kubernetes/client-node";
import type { ContainerLimits } from "../contract.js";
import { InvalidInputError } from "../errors.js";
import { parseImageReference } from "../image.js";
import type { PortForwardSpec } from "./ports.js";
import type { ValidatedRunOptions } from "./run-options.js";

/** The name of the run container in the pod. */
export const RUN_CONTAINER_NAME = "main";

export type PullPolicy = "Always" | "IfNotPresent" | "Never";

/** Inputs of {@link runPodSpec}. */
export interface RunPodInput {
  /** Pod name: a DNS subdomain (lowercase alphanumerics, `-`, `.`), at most 253 characters. */
  name: string;
  namespace: string;
  /** The image as nodes pull it (already resolved against the engine's registry). */
  image: string;
  /** The checked run options (`validateRunOptions`): command (→ `args`: ENTRYPOINT stays), env, volumes, user. */
  run?: Pick<ValidatedRunOptions, "command" | "env" | "volumes" | "user">;
  /** Parsed port forwards (`parsePortBindings`); each becomes a `containerPort`. */
  forwards?: readonly PortForwardSpec[];
  /** Labels (see `engineLabels`). */
  labels: Record<string, string>;
  /** Annotations (see `engineAnnotations`). */
  annotations?: Record<string, string>;
  /** Server-side deadline in seconds (the pod is killed after it, even when the client is gone); null = none. */
  activeDeadlineSeconds?: number | null;
  /** Docker-style limits: `memory` (bytes) → memory limit; `cpushares` (1024 = one CPU) → CPU request. */
  limits?: ContainerLimits;
  /** Engine-wide resources; `limits` overrides the fields it sets. */
  resources?: V1ResourceRequirements;
  /** Name of a `kubernetes.io/dockerconfigjson` Secret to pull with; null/absent = none. */
  pullSecretName?: string | null;
  /** Default: {@link defaultPullPolicy} of `image`. */
  imagePullPolicy?: PullPolicy;
  /** Replaces {@link defaultRunSecurityContext} entirely; `run.user` is applied on top. */
  securityContext?: V1SecurityContext;
  /** Seconds between SIGTERM and SIGKILL on delete; default Kubernetes' 30. */
  terminationGracePeriodSeconds?: number;
  nodeSelector?: Record<string, string>;
  tolerations?: V1Toleration[];
  serviceAccountName?: string;
}

/**
 * The run container's default security context. Docker's defaults minus NET_RAW and setuid escalation:
 * `user="root"` and repo2docker's start scripts (chown, setuid to the notebook user) keep working, and the pod
 * meets Pod Security "baseline" (not "restricted", which forbids root). A fresh object on each call.
 */
export function defaultRunSecurityContext(): V1SecurityContext {
  return {
    allowPrivilegeEscalation: false,
    capabilities: { drop: ["NET_RAW"] },
    seccompProfile: { type: "RuntimeDefault" },
  };
}

/**
 * Kubernetes' own default, made explicit: `Always` for `latest` or an untagged name (so a rebuilt tag is seen),
 * `IfNotPresent` for other tags and digests.
 * @throws InvalidInputError when the image reference is malformed
 */
export function defaultPullPolicy(image: string): PullPolicy {
  const ref = parseImageReference(image);
  if (ref.digest !== null) return "IfNotPresent";
  return ref.tag === null || ref.tag === "latest" ? "Always" : "IfNotPresent";
}

/**
 * Docker limits → Kubernetes resources, over the engine's defaults. `memory` is a hard limit in both; Docker's
 * `cpushares` is a relative weight, which is what a Kubernetes CPU *request* sets (cgroup cpu.shares).
 * `memswap` and `cpusetcpus` have no Kubernetes equivalent and are not applied.
 * @throws InvalidInputError for a memory or cpushares value that is not a positive integer
 */
export function resourcesFromLimits(
  limits: ContainerLimits | undefined,
  base: V1ResourceRequirements = {},
): V1ResourceRequirements {
  const resources: V1ResourceRequirements = {
    ...(base.limits ? { limits: { ...base.limits } } : {}),
    ...(base.requests ? { requests: { ...base.requests } } : {}),
  };
  const positive = (value: number, what: string): number => {
    if (!Number.isInteger(value) || value <= 0) throw new InvalidInputError(`${what} ${value} must be a positive integer`);
    return value;
  };
  if (limits?.memory !== undefined) {
    resources.limits = { ...resources.limits, memory: String(positive(limits.memory, "memory limit (bytes)")) };
  }
  if (limits?.cpushares !== undefined) {
    const millis = Math.max(1, Math.round((positive(limits.cpushares, "cpushares") * 1000) / 1024));
    resources.requests = { ...resources.requests, cpu: `${millis}m` };
  }
  return resources;
}

const DNS_SUBDOMAIN = /^[a-z0-9](?:[-a-z0-9.]{0,251}[a-z0-9])?$/;
const DNS_LABEL = /^[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?$/;

function validate(input: RunPodInput): void {
  if (!DNS_SUBDOMAIN.test(input.name)) {
    throw new InvalidInputError(`pod name ${JSON.stringify(input.name)} is not a DNS subdomain (lowercase a-z, 0-9, "-", ".")`);
  }
  if (!DNS_LABEL.test(input.namespace)) {
    throw new InvalidInputError(`namespace ${JSON.stringify(input.namespace)} is not a valid namespace name`);
  }
  const deadline = input.activeDeadlineSeconds;
  if (deadline !== null && deadline !== undefined && (!Number.isInteger(deadline) || deadline <= 0)) {
    throw new InvalidInputError(`activeDeadlineSeconds ${deadline} must be a positive integer`);
  }
}

/**
 * The run pod: one container, `restartPolicy: Never`, no service links, no service-account token, logs as
 * the termination message on error, and our labels. `run.command` becomes `args` (ENTRYPOINT stays, as with
 * `docker run image cmd…`).
 * @throws InvalidInputError for a bad name, namespace, deadline, image reference or limit (the run options
 *   themselves were checked by `validateRunOptions`)
 */
export function runPodSpec(input: RunPodInput): V1Pod {
  validate(input);
  const env = input.run?.env ?? [];
  const user = input.run?.user ?? null;
  const { volumes, mounts } = input.run?.volumes ?? { volumes: [], mounts: [] };
  const securityContext: V1SecurityContext = { ...(input.securityContext ?? defaultRunSecurityContext()), ...(user ?? {}) };
  const resources = resourcesFromLimits(input.limits, input.resources);
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name: input.name,
      namespace: input.namespace,
      labels: { ...input.labels },
      ...(input.annotations ? { annotations: { ...input.annotations } } : {}),
    },
    spec: {
      restartPolicy: "Never",
      enableServiceLinks: false,
      automountServiceAccountToken: false,
      ...(input.activeDeadlineSeconds ? { activeDeadlineSeconds: input.activeDeadlineSeconds } : {}),
      ...(input.terminationGracePeriodSeconds !== undefined
        ? { terminationGracePeriodSeconds: input.terminationGracePeriodSeconds }
        : {}),
      ...(input.pullSecretName ? { imagePullSecrets: [{ name: input.pullSecretName }] } : {}),
      ...(input.nodeSelector ? { nodeSelector: { ...input.nodeSelector } } : {}),
      ...(input.tolerations ? { tolerations: [...input.tolerations] } : {}),
      ...(input.serviceAccountName ? { serviceAccountName: input.serviceAccountName } : {}),
      ...(volumes.length > 0 ? { volumes } : {}),
      containers: [
        {
          name: RUN_CONTAINER_NAME,
          image: input.image,
          imagePullPolicy: input.imagePullPolicy ?? defaultPullPolicy(input.image),
          ...(input.run?.command ? { args: [...input.run.command] } : {}),
          ...(env.length > 0 ? { env } : {}),
          ...(input.forwards && input.forwards.length > 0
            ? { ports: input.forwards.map((f) => ({ containerPort: f.containerPort, protocol: f.protocol })) }
            : {}),
          ...(mounts.length > 0 ? { volumeMounts: mounts } : {}),
          resources,
          securityContext,
          terminationMessagePolicy: "FallbackToLogsOnError",
        },
      ],
    },
  };
}
