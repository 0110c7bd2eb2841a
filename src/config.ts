/**
 * Engine options: what a user may set, the defaults, and validation. Pure: the environment is passed in.
 */
import { randomBytes } from "node:crypto";
import type { KubeConfig } from "@kubernetes/client-node";
import { InvalidInputError } from "./errors.js";

/** `buildkit-pool`: builds go to long-running rootless BuildKit daemons (see {@link PoolOptions}), no pod per build. */
export type BuilderKind = "kaniko" | "buildkit" | "buildkit-pool";

/** The warm BuildKit pool (`builder: "buildkit-pool"`). Each option also reads `KCE_POOL_<NAME>`. */
export interface PoolOptions {
  /** The pool's name: daemons are pods `kce-pool-<name>-<slot>`. Default "default" (KCE_POOL_NAME). */
  name?: string;
  /** Daemons at most. Default 2 (KCE_POOL_MAX_DAEMONS). */
  maxDaemons?: number;
  /** A daemon stops after this long without a build, s. Default 600 (KCE_POOL_IDLE_SECONDS). */
  idleSeconds?: number;
  /** A daemon is replaced at the latest after this long, s. Default 86 400 (KCE_POOL_LIFETIME_SECONDS). */
  lifetimeSeconds?: number;
  /** On SIGTERM a daemon's builds in progress get this long, s. Default 600. */
  drainSeconds?: number;
  /** Memory limit of each daemon. Default "2Gi" (KCE_POOL_MEMORY). */
  memory?: string;
  /** Size of each daemon's cache volume, bytes or "20Gi"; GC keeps 80 % of it. Default "10Gi" (KCE_POOL_CACHE). */
  cacheSize?: number | string;
  /** Namespace of `RUN --mount=type=cache` mounts (BUILDKIT_CACHE_MOUNT_NS). Default: the engine's namespace (KCE_POOL_TENANT). */
  tenant?: string;
}

/** The pool's settings, resolved. */
export interface ResolvedPool {
  /** The pool's name (several pools may share a namespace): a DNS label fragment. */
  name: string;
  /** Daemons at most (slots). */
  maxDaemons: number;
  /** A daemon without a build for this long stops (scale to zero), s. */
  idleSeconds: number;
  /** A daemon is replaced at the latest after this long (its pod's activeDeadlineSeconds), s. */
  lifetimeSeconds: number;
  /** On SIGTERM, builds in progress get this long to finish, s. */
  drainSeconds: number;
  /** The daemon's memory limit (and request), e.g. "2Gi". */
  memory: string;
  /** Size of the cache volume, bytes; GC keeps the cache at 80 % of it. */
  cacheBytes: number;
  /** Null: the engine's namespace. */
  tenant: string | null;
}

/** How the build context is compressed on its way to the builder: "auto", or a fixed gzip level 0 (stored) … 9. */
export type ContextCompression = "auto" | number;

/** Validates an option or environment value: "auto", "none" (= 0), or a level 0–9. */
export function parseContextCompression(value: unknown, name: string): ContextCompression {
  if (value === "auto") return "auto";
  if (value === "none") return 0;
  const level = typeof value === "string" && /^\d$/.test(value.trim()) ? Number(value) : value;
  if (typeof level === "number" && Number.isInteger(level) && level >= 0 && level <= 9) return level;
  throw new InvalidInputError(`${name} must be "auto", "none" or a gzip level 0–9, not ${JSON.stringify(value)}`);
}
/** How BuildKit runs: `auto` picks rootless when the cluster allows it, else privileged. */
export type BuildkitMode = "auto" | "rootless" | "privileged";

export interface RegistryOptions {
  /** Registry that image names without a host resolve to, as nodes pull it (e.g. "localhost:5001"). */
  host: string;
  /** The same registry as builder pods reach it, when different (kind: "kind-registry:5000"). */
  pushHost?: string;
  /** The same registry as this client reaches it, for inspectImage/images, when different. */
  apiHost?: string;
  /** Plain HTTP or a self-signed certificate. Default: true for localhost, 127.x and private IPs with a port. */
  insecure?: boolean;
  /** Name of a kubernetes.io/dockerconfigjson Secret used to push and pull. */
  credentialsSecret?: string;
}

/** Registry credentials as repo2docker passes them (`registry_credentials`). Never logged. */
export interface RegistryCredentials {
  registry: string;
  username: string;
  password: string;
}

export interface EngineTimeouts {
  /** Server-side deadline of a build (the builder Job's activeDeadlineSeconds). Default 3600. */
  buildSeconds?: number;
  /** How long finished builder Jobs stay for inspection before the cluster deletes them. Default 300. */
  builderTtlSeconds?: number;
  /** Server-side deadline of a run container (activeDeadlineSeconds); 0 = none. Default 86400. */
  runSeconds?: number;
  /** How long an image pull may keep failing before we call it terminal. Default 30. */
  imagePullGraceSeconds?: number;
  /** How long a pod may stay unschedulable before we call it terminal. Default 60. */
  unschedulableGraceSeconds?: number;
  /** Upper bound of one API request. Default 10000. */
  apiRequestMs?: number;
}

/**
 * A toleration of the pods the engine creates, as in a pod spec (`kubectl explain pod.spec.tolerations`). Our
 * own type so that the public API does not depend on client-node's generated models.
 */
export interface Toleration {
  key?: string;
  operator?: "Exists" | "Equal";
  value?: string;
  effect?: "NoSchedule" | "PreferNoSchedule" | "NoExecute";
  /** Only with effect NoExecute: how long the pod stays bound after the taint appears. */
  tolerationSeconds?: number;
}

export interface KubernetesEngineOptions {
  /**
   * Default: KUBECONFIG / ~/.kube/config / in-cluster. Deliberately client-node's `KubeConfig` (the one
   * client-node type in the API): callers that already talk to the cluster with client-node pass theirs, with
   * its credentials plugins and in-cluster loading, instead of a copy of it in another shape.
   */
  kubeConfig?: KubeConfig;
  /** Default: $KCE_NAMESPACE, else the current context's namespace, else "default". */
  namespace?: string;
  /** Default: $KCE_BUILDER, else "kaniko". */
  builder?: BuilderKind;
  buildkitMode?: BuildkitMode;
  /** Default: $KCE_REGISTRY / $KCE_REGISTRY_PUSH, else the cluster's `local-registry-hosting` ConfigMap. */
  registry?: RegistryOptions;
  /** Credentials for pushing (and pulling); default: $CONTAINER_ENGINE_REGISTRY_CREDENTIALS (JSON). */
  registryCredentials?: RegistryCredentials;
  /**
   * Other registries ("host[:port]") that builders reach over plain HTTP or unverified TLS, e.g. a push
   * target. Default: $KCE_INSECURE_REGISTRIES (comma-separated). Localhost and private IPv4 addresses with a
   * port count as insecure anyway, as for the engine's own registry.
   */
  insecureRegistries?: string[];
  builderImages?: { kaniko?: string; buildkit?: string };
  /** The warm BuildKit pool, for `builder: "buildkit-pool"`. */
  pool?: PoolOptions;
  /**
   * Layer cache of builds into the engine's registry: Kaniko `--cache-repo`, BuildKit registry cache
   * (`mode=max`) in `<registry>/<repository>/cache` (or `repository`). `false` turns it off. Default: on
   * (env KCE_LAYER_CACHE=0 turns it off).
   */
  layerCache?: boolean | { repository?: string };
  /**
   * Content-addressed builds: the hash of the context and build inputs is pushed as the tag `kce-<hash16>`;
   * a build whose hash the registry already holds starts no pod. Default: on (env KCE_CONTENT_ADDRESSED=0 off).
   */
  contentAddressed?: boolean;
  /**
   * The build context's gzip level on its way to the builder. "auto" (default) sends it stored and compresses
   * (level 1) once the upload waits on a link slower than 24 MiB/s; "none" or 0–9 fix the level. Env
   * KCE_CONTEXT_COMPRESSION.
   */
  contextCompression?: ContextCompression | "none";
  timeouts?: EngineTimeouts;
  /** Names this engine in the `kube-container-engine/instance` label. Default: random per engine object. */
  instanceId?: string;
  /** Extra labels on everything the engine creates. */
  labels?: Record<string, string>;
  serviceAccountName?: string;
  nodeSelector?: Record<string, string>;
  tolerations?: Toleration[];
  /** Resources of builder pods. */
  builderResources?: { cpu?: string; memory?: string };
  /** Where warnings and progress go (not build output). Default: stderr. */
  log?: (message: string) => void;
}

/** The registry as the engine uses it, with every address resolved. */
export interface ResolvedRegistry {
  /** Image names without a host resolve here; nodes pull from here. */
  host: string;
  /** Builder pods push here. */
  pushHost: string;
  /** This client reads the registry API here. */
  apiHost: string;
  insecure: boolean;
  credentialsSecret: string | null;
}

/** Fills in the defaults of registry options; throws `InvalidInputError` for a malformed host. */
export function resolveRegistry(given: RegistryOptions): ResolvedRegistry {
  for (const [name, host] of [["host", given.host], ["pushHost", given.pushHost], ["apiHost", given.apiHost]] as const) {
    if (host !== undefined && (host === "" || /\s|\//.test(host))) {
      throw new InvalidInputError(`registry.${name} ${JSON.stringify(host)} must be a host[:port] without a scheme or path`);
    }
  }
  return {
    host: given.host,
    pushHost: given.pushHost || given.host,
    apiHost: given.apiHost || given.host,
    insecure: given.insecure ?? isConventionallyInsecure(given.host),
    credentialsSecret: given.credentialsSecret || null,
  };
}

/** Everything resolved except what needs the cluster (the registry may come from a ConfigMap). */
export interface ResolvedEngineConfig {
  namespace: string | null;
  builder: BuilderKind;
  buildkitMode: BuildkitMode;
  /** Null when not configured: the engine then reads the cluster's local-registry-hosting ConfigMap. */
  registry: ResolvedRegistry | null;
  registryCredentials: RegistryCredentials | null;
  insecureRegistries: string[];
  builderImages: { kaniko: string; buildkit: string };
  pool: ResolvedPool;
  /** Null when off; `repository` null means `<registry>/<repository>/cache` per image. */
  layerCache: { repository: string | null } | null;
  contentAddressed: boolean;
  contextCompression: ContextCompression;
  timeouts: Required<EngineTimeouts>;
  instanceId: string;
  labels: Record<string, string>;
  serviceAccountName: string | null;
  nodeSelector: Record<string, string>;
  tolerations: Toleration[];
  builderResources: { cpu?: string; memory?: string };
  /**
   * This process runs in a pod (KUBERNETES_SERVICE_HOST is set, as the kubelet sets it in every container): it
   * reaches a registry published by KEP-1755 the way pods do, not by the `host` meant for the user's machine.
   */
  runsInPod: boolean;
}

/** Public builder images; pin and mirror them for air-gapped clusters (`builderImages`, KCE_*_IMAGE). */
export const DEFAULT_BUILDER_IMAGES = {
  kaniko: "ghcr.io/kaniko-build/dist/chainguard-dev-kaniko/executor:v1.25.5",
  buildkit: "docker.io/moby/buildkit:v0.32.2",
} as const;

export const DEFAULT_TIMEOUTS: Required<EngineTimeouts> = {
  buildSeconds: 3600,
  builderTtlSeconds: 300,
  runSeconds: 86400,
  imagePullGraceSeconds: 30,
  unschedulableGraceSeconds: 60,
  apiRequestMs: 10_000,
};

const LABEL_VALUE = /^(?:[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?)$/;
const DNS_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** True for hosts that are plain HTTP by convention: localhost, loopback and private addresses. */
export function isConventionallyInsecure(host: string): boolean {
  const name = host.replace(/:\d+$/, "");
  // The address ranges apply to IPv4 literals only: "10.example.com" is a DNS name, not a private address.
  const ipv4 = /^\d{1,3}(?:\.\d{1,3}){3}$/.test(name);
  return (
    name === "localhost" ||
    name.endsWith(".localhost") ||
    (ipv4 &&
      (/^127\./.test(name) || /^10\./.test(name) || /^192\.168\./.test(name) || /^172\.(1[6-9]|2\d|3[01])\./.test(name))) ||
    name === "[::1]"
  );
}

/** Parses CONTAINER_ENGINE_REGISTRY_CREDENTIALS (`{"registry","username","password"}`). */
export function parseRegistryCredentials(json: string): RegistryCredentials {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (error) {
    throw new InvalidInputError("CONTAINER_ENGINE_REGISTRY_CREDENTIALS is not valid JSON", { cause: error });
  }
  const record = (value ?? {}) as Record<string, unknown>;
  const { registry, username, password } = record;
  if (typeof username !== "string" || typeof password !== "string") {
    throw new InvalidInputError(
      'registry credentials need string "username" and "password" (and "registry", the host they are for)',
    );
  }
  return { registry: typeof registry === "string" ? registry : "", username, password };
}

function positive(name: string, value: number, allowZero = false): number {
  if (!Number.isFinite(value) || value < 0 || (!allowZero && value === 0)) {
    throw new InvalidInputError(`timeouts.${name} must be a ${allowZero ? "non-negative" : "positive"} number`);
  }
  return value;
}

function registryFromOptionsOrEnv(
  options: KubernetesEngineOptions,
  env: Record<string, string | undefined>,
): ResolvedRegistry | null {
  if (options.registry) return resolveRegistry(options.registry);
  if (!env.KCE_REGISTRY) return null;
  return resolveRegistry({
    host: env.KCE_REGISTRY,
    ...(env.KCE_REGISTRY_PUSH ? { pushHost: env.KCE_REGISTRY_PUSH } : {}),
    ...(env.KCE_REGISTRY_SECRET ? { credentialsSecret: env.KCE_REGISTRY_SECRET } : {}),
    ...(env.KCE_REGISTRY_INSECURE ? { insecure: /^(1|true|yes)$/i.test(env.KCE_REGISTRY_INSECURE) } : {}),
  });
}

function isOff(value: string | undefined): boolean {
  return value !== undefined && /^(0|false|no|off)$/i.test(value);
}

function resolveInsecureRegistries(given: string[] | undefined, env: Record<string, string | undefined>): string[] {
  const hosts = given ?? (env.KCE_INSECURE_REGISTRIES ?? "").split(",").map((h) => h.trim()).filter(Boolean);
  for (const host of hosts) {
    if (typeof host !== "string" || host === "" || /\s|\//.test(host)) {
      throw new InvalidInputError(`insecureRegistries entry ${JSON.stringify(host)} must be a host[:port] without a scheme or path`);
    }
  }
  return [...new Set(hosts)];
}

function resolveLayerCache(
  given: KubernetesEngineOptions["layerCache"],
  env: Record<string, string | undefined>,
): { repository: string | null } | null {
  if (given === false || (given === undefined && isOff(env.KCE_LAYER_CACHE))) return null;
  const repository = typeof given === "object" && given.repository ? given.repository : null;
  if (repository !== null && (/\s/.test(repository) || /[:@]/.test(repository.split("/").pop() ?? ""))) {
    throw new InvalidInputError(`layerCache.repository ${JSON.stringify(repository)} must be a repository without tag or digest`);
  }
  return { repository };
}

const POOL_NAME = /^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$/;

/** "20Gi", "512Mi", "10G" or a number of bytes. */
function bytesOf(value: number | string, what: string): number {
  if (typeof value === "number" && Number.isSafeInteger(value) && value > 0) return value;
  const m = typeof value === "string" ? /^(\d+)\s*(Ki|Mi|Gi|Ti|K|M|G|T)?$/.exec(value.trim()) : null;
  const unit = m ? { "": 1, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, K: 1e3, M: 1e6, G: 1e9, T: 1e12 }[m[2] ?? ""] : undefined;
  if (!m || unit === undefined || Number(m[1]) === 0) throw new InvalidInputError(`${what} must be a size such as "10Gi" or a number of bytes`);
  return Number(m[1]) * unit;
}

function resolvePool(options: PoolOptions, env: Record<string, string | undefined>): ResolvedPool {
  const num = (value: number | undefined, name: string, fallback: number): number => {
    const v = value ?? (env[name] !== undefined ? Number(env[name]) : fallback);
    return positive(`pool ${name}`, v);
  };
  const name = options.name ?? env.KCE_POOL_NAME ?? "default";
  if (!POOL_NAME.test(name)) throw new InvalidInputError(`pool.name ${JSON.stringify(name)}: use at most 32 lower-case letters, digits and '-'`);
  const tenant = options.tenant ?? env.KCE_POOL_TENANT ?? null;
  if (tenant !== null && !/^[A-Za-z0-9._-]{1,63}$/.test(tenant)) throw new InvalidInputError(`pool.tenant ${JSON.stringify(tenant)}: use letters, digits, '.', '_' or '-'`);
  return {
    name,
    maxDaemons: num(options.maxDaemons, "KCE_POOL_MAX_DAEMONS", 2),
    idleSeconds: num(options.idleSeconds, "KCE_POOL_IDLE_SECONDS", 600),
    lifetimeSeconds: num(options.lifetimeSeconds, "KCE_POOL_LIFETIME_SECONDS", 86_400),
    drainSeconds: num(options.drainSeconds, "KCE_POOL_DRAIN_SECONDS", 600),
    memory: options.memory ?? env.KCE_POOL_MEMORY ?? "2Gi",
    cacheBytes: bytesOf(options.cacheSize ?? env.KCE_POOL_CACHE ?? "10Gi", "pool.cacheSize"),
    tenant,
  };
}

/** Applies defaults and validates; throws `InvalidInputError` with the option's name when one is wrong. */
export function resolveEngineConfig(
  options: KubernetesEngineOptions,
  env: Record<string, string | undefined>,
): ResolvedEngineConfig {
  const builder = options.builder ?? (env.KCE_BUILDER as BuilderKind | undefined) ?? "kaniko";
  if (builder !== "kaniko" && builder !== "buildkit" && builder !== "buildkit-pool") {
    throw new InvalidInputError(`builder must be "kaniko", "buildkit" or "buildkit-pool", not ${JSON.stringify(builder)}`);
  }
  const buildkitMode = options.buildkitMode ?? (env.KCE_BUILDKIT_MODE as BuildkitMode | undefined) ?? "auto";
  if (!["auto", "rootless", "privileged"].includes(buildkitMode)) {
    throw new InvalidInputError(`buildkitMode must be "auto", "rootless" or "privileged"`);
  }
  const namespace = options.namespace ?? env.KCE_NAMESPACE ?? null;
  if (namespace !== null && !DNS_LABEL.test(namespace)) {
    throw new InvalidInputError(`namespace ${JSON.stringify(namespace)} is not a valid Kubernetes namespace name`);
  }
  const t = { ...DEFAULT_TIMEOUTS, ...options.timeouts };
  const timeouts: Required<EngineTimeouts> = {
    buildSeconds: positive("buildSeconds", t.buildSeconds),
    builderTtlSeconds: positive("builderTtlSeconds", t.builderTtlSeconds, true),
    runSeconds: positive("runSeconds", t.runSeconds, true),
    imagePullGraceSeconds: positive("imagePullGraceSeconds", t.imagePullGraceSeconds, true),
    unschedulableGraceSeconds: positive("unschedulableGraceSeconds", t.unschedulableGraceSeconds, true),
    apiRequestMs: positive("apiRequestMs", t.apiRequestMs),
  };
  const instanceId = options.instanceId ?? `kce-${randomBytes(4).toString("hex")}`;
  if (!LABEL_VALUE.test(instanceId)) {
    throw new InvalidInputError(`instanceId ${JSON.stringify(instanceId)} is not a valid label value`);
  }
  for (const [key, value] of Object.entries(options.labels ?? {})) {
    if (!LABEL_VALUE.test(value)) throw new InvalidInputError(`label ${key}=${value}: not a valid label value`);
  }
  const credentialsJson = env.CONTAINER_ENGINE_REGISTRY_CREDENTIALS;
  return {
    namespace,
    builder,
    buildkitMode,
    registry: registryFromOptionsOrEnv(options, env),
    registryCredentials:
      options.registryCredentials ?? (credentialsJson ? parseRegistryCredentials(credentialsJson) : null),
    builderImages: {
      kaniko: options.builderImages?.kaniko ?? env.KCE_KANIKO_IMAGE ?? DEFAULT_BUILDER_IMAGES.kaniko,
      buildkit: options.builderImages?.buildkit ?? env.KCE_BUILDKIT_IMAGE ?? DEFAULT_BUILDER_IMAGES.buildkit,
    },
    pool: resolvePool(options.pool ?? {}, env),
    insecureRegistries: resolveInsecureRegistries(options.insecureRegistries, env),
    layerCache: resolveLayerCache(options.layerCache, env),
    contentAddressed: options.contentAddressed ?? !isOff(env.KCE_CONTENT_ADDRESSED),
    contextCompression:
      options.contextCompression !== undefined
        ? parseContextCompression(options.contextCompression, "contextCompression")
        : parseContextCompression(env.KCE_CONTEXT_COMPRESSION ?? "auto", "KCE_CONTEXT_COMPRESSION"),
    timeouts,
    instanceId,
    labels: { ...options.labels },
    serviceAccountName: options.serviceAccountName ?? null,
    nodeSelector: { ...options.nodeSelector },
    tolerations: [...(options.tolerations ?? [])],
    builderResources: { ...options.builderResources },
    runsInPod: Boolean(env.KUBERNETES_SERVICE_HOST),
  };
}
