/**
 * Every error a public method throws is a {@link ContainerEngineError}. The subclasses say what kind of
 * failure it was; `message` says what to do about it; `cause` keeps the underlying error.
 */
export class ContainerEngineError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Why a build failed, for callers that react differently (retry on `deleted`, not on `failed`). */
export type BuildFailureReason =
  | "failed" // the builder ran and exited non-zero (a failing RUN, a missing base image, …)
  | "image-pull" // the builder image itself could not be pulled
  | "unschedulable"
  | "deadline" // the server-side deadline passed
  | "deleted" // the builder pod was deleted or evicted before it finished
  | "oom"
  | "upload" // the build context could not be delivered
  | "cancelled"
  | "not-found"; // the builder reported success but the image is not in the registry

/** The seed's BuildError: the image could not be built. */
export class BuildError extends ContainerEngineError {
  readonly reason: BuildFailureReason;
  /** The builder's exit code, when it got to exit. */
  readonly exitCode: number | null;
  /** The builder's last output lines (without trailing newlines). */
  readonly logTail: string[];
  /**
   * `options` may be left out (JavaScript callers, and the seed's `BuildError(message)`): the reason is then
   * `failed`, with no exit code and no log tail.
   */
  constructor(
    message: string,
    options: { reason?: BuildFailureReason; exitCode?: number | null; logTail?: string[]; cause?: unknown } = {},
  ) {
    super(message, { cause: options.cause });
    this.reason = options.reason ?? "failed";
    this.exitCode = options.exitCode ?? null;
    this.logTail = options.logTail ?? [];
  }
}

/** The seed's ImageLoadError: the image could not be pushed or loaded. */
export class ImageLoadError extends ContainerEngineError {}

/** Bad input, found before anything was sent to the cluster. Nothing was created. */
export class InvalidInputError extends ContainerEngineError {}

/** The Kubernetes API refused or failed a request (forbidden, missing namespace, quota, unreachable…). */
export class KubernetesApiError extends ContainerEngineError {
  readonly verb: string;
  readonly resource: string;
  /** HTTP status, or null when the server could not be reached. */
  readonly statusCode: number | null;
  /** The `reason` of the server's `Status` object (`Forbidden`, `NotFound`, `AlreadyExists`, …). */
  readonly reason: string | null;
  constructor(
    message: string,
    options: { verb: string; resource: string; statusCode: number | null; reason?: string | null; cause?: unknown },
  ) {
    super(message, { cause: options.cause });
    this.verb = options.verb;
    this.resource = options.resource;
    this.statusCode = options.statusCode;
    this.reason = options.reason ?? null;
  }
}

/** The kubelet could not pull (or parse the name of) an image: `ErrImagePull`, `InvalidImageName`, … */
export class ImagePullError extends ContainerEngineError {
  readonly image: string;
  readonly kubeletReason: string;
  constructor(message: string, options: { image: string; kubeletReason: string; cause?: unknown }) {
    super(message, { cause: options.cause });
    this.image = options.image;
    this.kubeletReason = options.kubeletReason;
  }
}

/** The scheduler found no node for the pod within the configured wait. */
export class UnschedulableError extends ContainerEngineError {}

/** A deadline (ours or the server's `activeDeadlineSeconds`) passed. */
export class DeadlineExceededError extends ContainerEngineError {}

/** The caller aborted (AbortSignal, Ctrl-C). */
export class CancelledError extends ContainerEngineError {}

/** The container (pod) no longer exists: it was removed, by us or from outside. */
export class ContainerNotFoundError extends ContainerEngineError {}
