/**
 * The typed error of a run container the cluster ended or never started (pure): an image that cannot be
 * pulled, no node that fits, a deadline that passed, a pod deleted or evicted from outside. A container that
 * simply exited (any code, OOM included) has no error: its exit code and reason say what happened — unless it
 * exited because someone else deleted its pod.
 */
import {
  ContainerNotFoundError,
  DeadlineExceededError,
  ImagePullError,
  UnschedulableError,
  type ContainerEngineError,
} from "../errors.js";
import type { PodState } from "./status.js";

/** What {@link containerErrorOf} needs besides the state. */
export interface ContainerErrorInput {
  /** The pod name. */
  id: string;
  /** The image as the pod names it. */
  image: string;
  /** The engine's own kill/stop/remove ended it: a deletion is then no surprise. */
  endedByUs: boolean;
}

/** The error for `state`, or null when the container runs, waits, or exited by itself. */
export function containerErrorOf(state: PodState, input: ContainerErrorInput): ContainerEngineError | null {
  const reason = state.reason ?? "";
  switch (state.failure) {
    case "image-pull":
      return new ImagePullError(
        `container ${input.id}: the image ${input.image} could not be pulled (${reason}); check its name and tag, ` +
          "that the nodes can reach its registry, and the pull credentials (registry.credentialsSecret)",
        { image: input.image, kubeletReason: reason.replace(/:.*$/s, "") },
      );
    case "unschedulable":
      return new UnschedulableError(
        `container ${input.id}: no node can run it (${reason}); relax nodeSelector/tolerations or its resources, or add nodes`,
      );
    case "deadline":
      return new DeadlineExceededError(`container ${input.id} ran past its deadline (timeouts.runSeconds): ${reason}`);
    case "evicted":
      return new ContainerNotFoundError(`container ${input.id} was evicted by the cluster: ${reason}`);
    case "deleted":
      return input.endedByUs ? null : new ContainerNotFoundError(`container ${input.id}: ${reason}`);
    default:
      // Deleted from outside but its process got to exit (a SIGTERM handler, the kill after the grace).
      if (state.terminal && state.deleted && !input.endedByUs) {
        const code = state.exitCode === null ? "" : ` (its process ended with code ${state.exitCode})`;
        return new ContainerNotFoundError(`container ${input.id} was deleted from outside${code}`);
      }
      return null;
  }
}
