/**
 * kube-container-engine: repo2docker's container-engine contract on Kubernetes.
 * Named re-exports only; see README "Library API".
 */
export { KubernetesEngine, podName } from "./engine.js";
export { PodContainer } from "./container.js";
export { Image, parseImageReference, formatImageReference, resolveImageReference } from "./image.js";
export type { ImageConfig, ImageReference } from "./image.js";
export {
  ContainerEngineError,
  BuildError,
  ImageLoadError,
  InvalidInputError,
  KubernetesApiError,
  ImagePullError,
  UnschedulableError,
  DeadlineExceededError,
  CancelledError,
  ContainerNotFoundError,
} from "./errors.js";
export { RegistryError } from "./registry/errors.js";
export type { BuildFailureReason } from "./errors.js";
export type {
  ContainerEngine,
  Container,
  ContainerStatus,
  BuildOptions,
  RunOptions,
  LogOptions,
  PortBinding,
  ContainerLimits,
  BuildProgress,
} from "./contract.js";
export type {
  KubernetesEngineOptions,
  RegistryOptions,
  RegistryCredentials,
  EngineTimeouts,
  BuilderKind,
  PoolOptions,
  BuildkitMode,
  ResolvedRegistry,
  Toleration,
} from "./config.js";
export { DEFAULT_BUILDER_IMAGES, DEFAULT_TIMEOUTS } from "./config.js";
export type { BuildResult, BuildStream } from "./imaging/builder.js";
export type { ContextCompression } from "./config.js";
export { parseContextCompression } from "./config.js";
export { publishFlagsToPorts } from "./pods/ports.js";
export type { PodState, PodFailure } from "./pods/status.js";
export type { GcOptions } from "./cleanup.js";
export type { CleanupAction } from "./pods/cleanup.js";
