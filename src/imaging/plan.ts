/**
 * Everything a build decides before it creates anything (pure): where the image goes and under which names,
 * whether and where the layer cache lives, the content tag, the builder Job and its credentials Secret.
 */
import type { V1Job, V1Secret } from "@kubernetes/client-node";
import { isConventionallyInsecure, type ResolvedEngineConfig, type ResolvedRegistry } from "../config.js";
import type { ContainerLimits } from "../contract.js";
import { formatImageReference, type ImageReference } from "../image.js";
import { engineAnnotations, engineLabels } from "../pods/labels.js";
import type { ValidatedBuildOptions } from "./build-options.js";
import { registryCredentialsSecret, type BuilderJobInput } from "./builder-spec.js";
import { buildkitJob } from "./buildkit.js";
import { contentTag, isContentTag } from "./content-hash.js";
import { kanikoIgnoredOptions, kanikoJob } from "./kaniko.js";

/** The last path segment of the default layer-cache repository, `<repository>/kce-cache`. */
export const LAYER_CACHE_SUFFIX = "kce-cache";

/**
 * True for names the builds create next to images (`repository:tag` without host): content tags
 * (`…:kce-<hash16>`) and layer-cache repositories (`…/kce-cache:…`). Image listings hide them.
 */
export function isBuildArtifact(name: string): boolean {
  const colon = name.lastIndexOf(":");
  const repository = colon > name.lastIndexOf("/") ? name.slice(0, colon) : name;
  const tag = colon > name.lastIndexOf("/") ? name.slice(colon + 1) : "";
  return isContentTag(tag) || repository.split("/").pop() === LAYER_CACHE_SUFFIX;
}

/** The annotation holding a builder Job's content hash (not secret: it is derived from public inputs). */
export const ANNOTATION_CONTENT_HASH = "kube-container-engine/content-hash";

/** A reference with its registry and tag filled in. */
export type ResolvedReference = ImageReference & { registry: string; tag: string };

/** Where one image goes. */
export interface ImageTarget {
  /** As the user and the nodes name it (registry host, tag filled in). */
  tag: ResolvedReference;
  /** `tag` formatted: what `BuildResult.image` reports. */
  image: string;
  /** As builder pods push it (the engine registry's pushHost swapped in). */
  pushRef: string;
  /** Whether it lives in the engine's own registry. */
  inEngineRegistry: boolean;
}

/** Resolves `ref` against the engine registry: default host, default tag `latest`, the pods' address. */
export function imageTarget(ref: ImageReference, registry: ResolvedRegistry): ImageTarget {
  const tag: ResolvedReference = { ...ref, registry: ref.registry ?? registry.host, tag: ref.tag ?? "latest" };
  const inEngineRegistry = tag.registry === registry.host;
  return {
    tag,
    image: formatImageReference(tag),
    pushRef: formatImageReference({ ...tag, registry: inEngineRegistry ? registry.pushHost : tag.registry }),
    inEngineRegistry,
  };
}

/** The layer-cache repository as builder pods reach it, or null for no registry cache. */
export function layerCacheRepository(config: ResolvedEngineConfig, target: ImageTarget, registry: ResolvedRegistry): string | null {
  if (!config.layerCache) return null;
  if (config.layerCache.repository) return config.layerCache.repository;
  // Only next to images in our own registry: elsewhere we may not be allowed to create repositories.
  return target.inEngineRegistry ? `${registry.pushHost}/${target.tag.repository}/${LAYER_CACHE_SUFFIX}` : null;
}

/** `cacheFrom` references as builder pods pull them (no host → the engine registry's push address). */
export function cacheFromRefs(cacheFrom: readonly ImageReference[], registry: ResolvedRegistry): string[] {
  return cacheFrom.map((ref) => imageTarget(ref, registry).pushRef);
}

/**
 * The registries the builder reaches over plain HTTP / unverified TLS: the engine's own when it is insecure,
 * the configured ones, and a destination that is insecure by convention (localhost, private IPv4 with a port).
 */
export function insecureRegistries(config: ResolvedEngineConfig, registry: ResolvedRegistry, target: ImageTarget | null): string[] {
  const hosts = registry.insecure ? [registry.host, registry.pushHost] : [];
  hosts.push(...config.insecureRegistries);
  if (target !== null && !target.inEngineRegistry && isConventionallyInsecure(target.tag.registry)) hosts.push(target.tag.registry);
  return [...new Set(hosts)];
}

/** What {@link planBuilderJob} needs. */
export interface JobPlanInput {
  config: ResolvedEngineConfig;
  registry: ResolvedRegistry;
  namespace: string;
  jobName: string;
  /** Name of the per-build credentials Secret, when `config.registryCredentials` is set. */
  secretName: string;
  target: ImageTarget;
  options: ValidatedBuildOptions;
  /** Push the image (false: build and discard). */
  push: boolean;
  /** The build's content hash; null when builds are not content-addressed. */
  contentHash: string | null;
  /** Resolved BuildKit mode (ignored for Kaniko). */
  buildkitMode: "privileged" | "rootless";
  containerLimits?: ContainerLimits;
  /** Don't export any cache (a push's copy job: the copy should not gain cache metadata). */
  noCache?: boolean;
  createdAt: Date;
}

/** A builder Job, ready to create. */
export interface JobPlan {
  job: V1Job;
  /** The per-build dockerconfigjson Secret; null when none is needed. */
  secret: V1Secret | null;
  /** The content-addressed reference (as the client reads it); null when not content-addressed. */
  contentRef: ResolvedReference | null;
  cacheRepo: string | null;
  /** Options the builder cannot honour, for the caller to warn about. */
  ignored: string[];
}

/** What a builder (a Job's container, or a pool daemon) is told about one build. */
export function builderInput(input: JobPlanInput): { jobInput: BuilderJobInput; contentRef: ResolvedReference | null; cacheRepo: string | null } {
  const { config, registry, target, options } = input;
  const labels = engineLabels({ instance: config.instanceId, role: "builder", extra: config.labels });
  const contentRef =
    input.contentHash && input.push && target.inEngineRegistry ? { ...target.tag, tag: contentTag(input.contentHash) } : null;
  const destinations = [target.pushRef];
  if (contentRef) destinations.push(formatImageReference({ ...contentRef, registry: registry.pushHost }));
  const cacheRepo = input.noCache ? null : layerCacheRepository(config, target, registry);
  const credentials = config.registryCredentials;
  const secretName = credentials ? input.secretName : registry.credentialsSecret;
  const annotations = engineAnnotations({ createdAt: input.createdAt, image: target.image });
  if (input.contentHash) annotations[ANNOTATION_CONTENT_HASH] = input.contentHash;
  const jobInput: BuilderJobInput = {
    name: input.jobName,
    namespace: input.namespace,
    labels,
    annotations,
    image: config.builder === "kaniko" ? config.builderImages.kaniko : config.builderImages.buildkit,
    imagePullPolicy: "IfNotPresent",
    destinations,
    dockerfile: options.dockerfile,
    buildArgs: options.buildArgs,
    imageLabels: options.labels,
    cacheFrom: cacheFromRefs(options.cacheFrom, registry),
    ...(cacheRepo ? { cacheRepo } : {}),
    ...(options.platform ? { platform: options.platform } : {}),
    push: input.push,
    insecureRegistries: insecureRegistries(config, registry, target),
    deadlineSeconds: config.timeouts.buildSeconds,
    ttlSecondsAfterFinished: config.timeouts.builderTtlSeconds,
    ...(input.containerLimits ? { containerLimits: input.containerLimits } : {}),
    ...(secretName ? { credentialsSecret: secretName } : {}),
    ...(config.serviceAccountName ? { serviceAccountName: config.serviceAccountName } : {}),
    nodeSelector: config.nodeSelector,
    tolerations: config.tolerations,
  };
  return { jobInput, contentRef, cacheRepo };
}

/** Builds the Job (Kaniko or BuildKit) and its credentials Secret for one build. */
export function planBuilderJob(input: JobPlanInput): JobPlan {
  const { config, registry } = input;
  const { jobInput, contentRef, cacheRepo } = builderInput(input);
  const labels = jobInput.labels ?? {};
  const credentials = config.registryCredentials;
  const job =
    config.builder === "kaniko"
      ? kanikoJob(jobInput)
      : buildkitJob({ ...jobInput, mode: input.buildkitMode, ...(input.noCache ? { noCacheExport: true } : {}) });
  const secret = credentials
    ? registryCredentialsSecret(
        input.secretName,
        { registry: credentials.registry || registry.pushHost, username: credentials.username, password: credentials.password },
        { namespace: input.namespace, labels },
      )
    : null;
  const ignored = config.builder === "kaniko" ? kanikoIgnoredOptions(jobInput) : [];
  return { job, secret, contentRef, cacheRepo, ignored };
}
