/**
 * Reason strings the kubelet, the scheduler and the Job controller write into pod and Job status, as named
 * constants, and the exit codes we report for containers that never got to exit.
 */

/**
 * Waiting reasons of image pulls. The kubelet defines them in
 * https://github.com/kubernetes/kubernetes/blob/master/pkg/kubelet/images/types.go
 * `ErrImagePull`, `ImagePullBackOff`, `RegistryUnavailable`, `ImageInspectError` and
 * `SignatureValidationFailed` may be transient (a registry hiccup, an image pushed a moment later): they become
 * terminal only after the pull grace.
 */
export const RETRIED_IMAGE_REASONS: readonly string[] = [
  "ErrImagePull",
  "ImagePullBackOff",
  "RegistryUnavailable",
  "ImageInspectError",
  "SignatureValidationFailed",
];

/** Image reasons no retry can fix (same source as {@link RETRIED_IMAGE_REASONS}): terminal at once. */
export const PERMANENT_IMAGE_REASONS: readonly string[] = ["InvalidImageName", "ErrImageNeverPull"];

/**
 * Waiting reasons of container creation and start. The kubelet defines them in
 * https://github.com/kubernetes/kubernetes/blob/master/pkg/kubelet/container/sync_result.go
 * (`ErrCreateContainerConfig`, `ErrCreateContainer`, `ErrRunContainer`, `ErrPreStartHook`, `ErrPostStartHook`),
 * plus `CrashLoopBackOff` (kuberuntime), which a `restartPolicy: Never` pod should not reach.
 */
export const CREATE_CONFIG_REASONS: readonly string[] = [
  "CreateContainerConfigError",
  "CreateContainerError",
  "RunContainerError",
  "PreStartHookError",
  "PostStartHookError",
  "CrashLoopBackOff",
];

/** `terminated.reason` when the kernel OOM killer ended the container. */
export const REASON_OOM_KILLED = "OOMKilled";
/** `terminated.reason` when the runtime could not start the process (missing executable, bad permissions). */
export const REASON_START_ERROR = "StartError";
/** `terminated.reason` used by dockershim-era runtimes for the same. */
export const REASON_CONTAINER_CANNOT_RUN = "ContainerCannotRun";
/** `terminated.reason` when the kubelet lost track of the container (eviction, deletion). */
export const REASON_CONTAINER_STATUS_UNKNOWN = "ContainerStatusUnknown";
/** Pod `status.reason` after a kubelet eviction (node pressure, ephemeral-storage limit). */
export const REASON_EVICTED = "Evicted";
/** Pod `status.reason` (and Job condition reason) when `activeDeadlineSeconds` passed. */
export const REASON_DEADLINE_EXCEEDED = "DeadlineExceeded";
/** `PodScheduled=False` reason when no node fits. */
export const REASON_UNSCHEDULABLE = "Unschedulable";
/** Job condition reason when `backoffLimit` was reached. */
export const REASON_BACKOFF_LIMIT_EXCEEDED = "BackoffLimitExceeded";

/**
 * `DisruptionTarget=True` reasons (Kubernetes ≥ 1.26) that mean the pod was taken away by the cluster:
 * https://github.com/kubernetes/kubernetes/blob/master/pkg/apis/core/types.go (`PodReason…`).
 */
export const DISRUPTION_REASONS: readonly string[] = [
  "EvictionByEvictionAPI",
  "TerminationByKubelet",
  "PreemptionByScheduler",
  "DeletionByTaintManager",
  "DeletionByPodGC",
];

/**
 * Exit codes for containers that never got to exit, after Docker's `docker run` conventions:
 * 125 = the engine could not run the container (image pull, config, scheduling — Docker's daemon errors),
 * 126 = the command cannot be invoked, 127 = the command was not found,
 * 137 = killed (128 + SIGKILL), as the kubelet reports for OOM, eviction and deadline kills.
 */
export const EXIT_ENGINE_ERROR = 125;
export const EXIT_CANNOT_INVOKE = 126;
export const EXIT_NOT_FOUND = 127;
export const EXIT_KILLED = 137;

/**
 * A Kubernetes timestamp as milliseconds since the epoch. Objects deserialized by client-node carry `Date`s;
 * objects from a raw watch or a JSON file carry RFC 3339 strings. Null when absent or unparsable.
 */
export function timestampMillis(value: Date | string | null | undefined): number | null {
  if (value === null || value === undefined) return null;
  const ms = value instanceof Date ? value.getTime() : Date.parse(value);
  return Number.isNaN(ms) ? null : ms;
}
