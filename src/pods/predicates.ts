/**
 * Pure predicates over a pod, for "watch until a predicate holds" waits (kubectl's podutils in spirit).
 */
import type { V1Pod } from "@kubernetes/client-node";
import { containerStateOf, mainContainerStatus, type StatusOptions } from "./status.js";

/**
 * The main container has started: it is running or has terminated after running.
 * @param containerName default: the first container of the spec
 */
export function hasStarted(pod: V1Pod, containerName?: string): boolean {
  const state = mainContainerStatus(pod, containerName)?.state;
  return state?.running !== undefined || state?.terminated !== undefined;
}

/** Nothing more will happen to the container: `containerStateOf(...).terminal`. */
export function isTerminal(pod: V1Pod, options: StatusOptions): boolean {
  return containerStateOf(pod, options).terminal;
}

/**
 * A log read or follow will not get the 400 "container … is waiting to start": the main container is running,
 * or terminated with a runtime container id (an evicted pod's `ContainerStatusUnknown` has none: its logs are
 * gone). Wait for `isReadyForLogs(pod) || isTerminal(pod, …)`, and skip the follow when only the latter holds.
 */
export function isReadyForLogs(pod: V1Pod, containerName?: string): boolean {
  const status = mainContainerStatus(pod, containerName);
  if (status?.state?.running) return true;
  const terminated = status?.state?.terminated;
  return terminated !== undefined && Boolean(terminated.containerID ?? status?.containerID);
}

/** The pod was scheduled to a node (`PodScheduled=True` or a `nodeName`). */
export function isScheduled(pod: V1Pod): boolean {
  if (pod.spec?.nodeName) return true;
  return pod.status?.conditions?.some((c) => c.type === "PodScheduled" && c.status === "True") ?? false;
}

/** A delete was requested (`deletionTimestamp` set): the pod is terminating or terminated. */
export function isDeleting(pod: V1Pod): boolean {
  return pod.metadata?.deletionTimestamp != null;
}
