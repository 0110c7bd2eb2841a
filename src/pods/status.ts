/**
 * Pure mapping from a pod to the Docker-style container state of the contract: `created`, `running`,
 * `exited` — with an exit code and a readable reason. No client, no clock: the caller passes `now`.
 *
 * Rules (in order, first match wins):
 * 1. pod `Evicted`, or `Failed` with a `DisruptionTarget` → exited 137, failure `evicted`;
 *    pod `DeadlineExceeded` → exited (container code, else 137), failure `deadline`.
 * 2. an init container exited non-zero → exited with its code.
 * 3. the main container terminated → exited with `terminated.exitCode` (OOMKilled → 137 even when 0;
 *    StartError → 127/126 like `docker run`).
 * 4. pod phase `Failed`/`Succeeded` without a terminated main container → exited (125 if it never started).
 * 5. a terminal waiting reason (image pull past the pull grace, invalid image name at once, config errors
 *    past the config grace, `Unschedulable` past its grace) → exited 125 (127/126 for a RunContainerError
 *    about a missing or non-executable command).
 * 6. main container running → running; anything else → created (with `waiting` saying why).
 * A pod that is `gone` (deleted from the API) and not yet terminal → exited 137, failure `deleted`.
 */
import type { V1ContainerStateTerminated, V1ContainerStatus, V1Pod } from "@kubernetes/client-node";
import type { ContainerStatus } from "../contract.js";
import {
  CREATE_CONFIG_REASONS,
  DISRUPTION_REASONS,
  EXIT_CANNOT_INVOKE,
  EXIT_ENGINE_ERROR,
  EXIT_KILLED,
  EXIT_NOT_FOUND,
  PERMANENT_IMAGE_REASONS,
  REASON_CONTAINER_CANNOT_RUN,
  REASON_CONTAINER_STATUS_UNKNOWN,
  REASON_DEADLINE_EXCEEDED,
  REASON_EVICTED,
  REASON_OOM_KILLED,
  REASON_START_ERROR,
  REASON_UNSCHEDULABLE,
  RETRIED_IMAGE_REASONS,
  timestampMillis,
} from "./reasons.js";

/** Why a container ended without simply exiting 0, or why it can never start. */
export type PodFailure =
  | "image-pull" // the image could not be pulled or its name is invalid
  | "unschedulable" // no node fits, past the grace
  | "create-config" // the kubelet could not create the container (missing Secret/ConfigMap, bad config)
  | "start" // the runtime could not start the command (not found, not executable)
  | "rejected" // the node refused the pod before it started (OutOfcpu, NodeAffinity, …)
  | "oom"
  | "evicted"
  | "deadline" // activeDeadlineSeconds passed
  | "deleted" // the pod was deleted before its container finished
  | "error"; // the command exited non-zero

/** Inputs of {@link containerStateOf} besides the pod. */
export interface StatusOptions {
  /** The current time (the functions here never read the clock). */
  now: Date;
  /** Seconds after the pod started during which retried image-pull errors (`ImagePullBackOff`) are not terminal. */
  pullGraceSeconds: number;
  /** Seconds after the first `Unschedulable` verdict during which the pod keeps waiting for a node. */
  unschedulableGraceSeconds: number;
  /** Seconds during which `CreateContainerConfigError` & co. are not terminal (a Secret may appear). Default 0. */
  configGraceSeconds?: number;
  /** The container that is "the container". Default: the first container of the pod spec. */
  containerName?: string;
  /** The pod no longer exists (watch DELETED or 404): `pod` is its last seen state, and it is final. */
  gone?: boolean;
}

/** The contract's view of one pod. */
export interface PodState {
  /** `created`, `running` or `exited`. */
  status: ContainerStatus;
  /** The exit code once `exited`; null before. */
  exitCode: number | null;
  /** Why it ended when it did not simply exit ("OOMKilled", "ImagePullBackOff: …"); null otherwise. */
  reason: string | null;
  /** Nothing more will happen: `status` is `exited`. */
  terminal: boolean;
  /** The kind of failure, for callers that react differently; null when running, waiting or exited 0. */
  failure: PodFailure | null;
  /** The pod has a `deletionTimestamp` (or is `gone`): a clean exit may be a SIGTERM trap, not success. */
  deleted: boolean;
  /** While `created`: what it waits for ("ContainerCreating", "ImagePullBackOff: …"); null otherwise. */
  waiting: string | null;
  /** The main container's termination message (e.g. the image digest a builder wrote); null when none. */
  terminationMessage: string | null;
}

type Outcome = Pick<PodState, "status" | "exitCode" | "reason" | "failure" | "waiting">;

const exited = (exitCode: number, reason: string | null, failure: PodFailure | null): Outcome => ({
  status: "exited",
  exitCode,
  reason,
  failure,
  waiting: null,
});

const withMessage = (reason: string, message: string | null | undefined): string => {
  const text = message?.trim();
  return text ? `${reason}: ${text}` : reason;
};

/**
 * Maps a pod to the contract's container state (see the module comment for the rules).
 * @param pod the pod, as read or watched (timestamps may be `Date`s or RFC 3339 strings)
 * @param options `now` and the grace periods, in seconds
 * @returns the state; never throws
 */
export function containerStateOf(pod: V1Pod, options: StatusOptions): PodState {
  const main = mainContainerStatus(pod, options.containerName);
  const deleted = options.gone === true || pod.metadata?.deletionTimestamp != null;
  let outcome =
    podLevelEnd(pod, main) ??
    failedInitContainer(pod) ??
    (main?.state?.terminated ? fromTerminated(main.state.terminated) : null) ??
    phaseEnd(pod, main) ??
    stuck(pod, main, options) ??
    progress(pod, main);
  if (outcome.status !== "exited" && options.gone === true) {
    const why = outcome.waiting ? ` (it was waiting: ${outcome.waiting})` : "";
    outcome = exited(EXIT_KILLED, `Deleted: the pod was deleted before its container finished${why}`, "deleted");
  } else if (outcome.status === "exited" && deleted && outcome.reason === null && outcome.exitCode !== 0) {
    outcome = { ...outcome, reason: `Deleted: the pod was deleted; its container ended with code ${outcome.exitCode}` };
  }
  return {
    ...outcome,
    terminal: outcome.status === "exited",
    deleted,
    terminationMessage: terminationMessage(pod, options.containerName),
  };
}

/**
 * The status of the main container: the one named `containerName`, else the first container of the spec,
 * else the first reported status. Undefined before the kubelet reported any.
 */
export function mainContainerStatus(pod: V1Pod, containerName?: string): V1ContainerStatus | undefined {
  const statuses = pod.status?.containerStatuses ?? [];
  const name = containerName ?? pod.spec?.containers?.[0]?.name;
  return name === undefined ? statuses[0] : statuses.find((s) => s.name === name);
}

/**
 * The main container's termination message (what it wrote to `terminationMessagePath`, or its last log lines
 * with `FallbackToLogsOnError`), trailing whitespace removed. Taken from the current state, else from the
 * last terminated state. Null when it has not terminated or wrote nothing.
 */
export function terminationMessage(pod: V1Pod, containerName?: string): string | null {
  const status = mainContainerStatus(pod, containerName);
  const message = status?.state?.terminated?.message ?? status?.lastState?.terminated?.message;
  const trimmed = message?.trimEnd();
  return trimmed ? trimmed : null;
}

const DIGEST = /sha256:[a-f0-9]{64}/;

/**
 * The image digest in a builder's termination message (Kaniko's `--digest-file=/dev/termination-log`,
 * or BuildKit's metadata copied there): the first `sha256:<64 hex>` in it. Null when there is none.
 */
export function digestFromTerminationMessage(message: string | null | undefined): string | null {
  return message?.match(DIGEST)?.[0] ?? null;
}

function podLevelEnd(pod: V1Pod, main: V1ContainerStatus | undefined): Outcome | null {
  const reason = pod.status?.reason;
  const message = pod.status?.message;
  const terminated = main?.state?.terminated;
  if (reason === REASON_EVICTED) return exited(EXIT_KILLED, withMessage(REASON_EVICTED, message), "evicted");
  if (reason === REASON_DEADLINE_EXCEEDED) {
    const code = terminated && terminated.exitCode !== 0 ? terminated.exitCode : EXIT_KILLED;
    return exited(code, withMessage(REASON_DEADLINE_EXCEEDED, message), "deadline");
  }
  if (pod.status?.phase === "Failed") {
    const disruption = pod.status.conditions?.find(
      (c) => c.type === "DisruptionTarget" && c.status === "True" && DISRUPTION_REASONS.includes(c.reason ?? ""),
    );
    if (disruption) {
      const code = terminated && terminated.exitCode !== 0 ? terminated.exitCode : EXIT_KILLED;
      return exited(code, withMessage(disruption.reason ?? "Disrupted", disruption.message), "evicted");
    }
  }
  return null;
}

function failedInitContainer(pod: V1Pod): Outcome | null {
  for (const init of pod.status?.initContainerStatuses ?? []) {
    const t = init.state?.terminated;
    if (!t || t.exitCode === 0) continue;
    const inner = fromTerminated(t);
    const what = inner.reason ?? `exited with code ${inner.exitCode}`;
    return { ...inner, reason: `init container "${init.name}" failed: ${what}` };
  }
  return null;
}

/** Docker's codes for a command that could not be invoked (126) or found (127); null when neither. */
function invocationExitCode(message: string | null | undefined): number | null {
  if (!message) return null;
  if (/executable file not found|no such file or directory/i.test(message)) return EXIT_NOT_FOUND;
  if (/permission denied|exec format error/i.test(message)) return EXIT_CANNOT_INVOKE;
  return null;
}

function fromTerminated(t: V1ContainerStateTerminated): Outcome {
  const code = t.exitCode;
  switch (t.reason) {
    case REASON_OOM_KILLED:
      // OOM kills are SIGKILLs; some runtimes report 0 (or lose the code): report Docker's 137.
      return exited(code === 0 ? EXIT_KILLED : code, REASON_OOM_KILLED, "oom");
    case REASON_START_ERROR:
    case REASON_CONTAINER_CANNOT_RUN:
      return exited(invocationExitCode(t.message) ?? (code || EXIT_CANNOT_INVOKE), withMessage(t.reason, t.message), "start");
    case REASON_CONTAINER_STATUS_UNKNOWN:
      return exited(code || EXIT_KILLED, withMessage(t.reason, t.message), "deleted");
    default:
      return exited(code, null, code === 0 ? null : "error");
  }
}

function phaseEnd(pod: V1Pod, main: V1ContainerStatus | undefined): Outcome | null {
  const phase = pod.status?.phase;
  if (phase === "Succeeded") return exited(0, null, null);
  if (phase !== "Failed") return null;
  const started = main?.state?.running !== undefined;
  const reason = withMessage(pod.status?.reason ?? "Failed", pod.status?.message ?? "the pod failed");
  return started ? exited(EXIT_KILLED, reason, "error") : exited(EXIT_ENGINE_ERROR, reason, "rejected");
}

function secondsSince(origin: Date | string | null | undefined, now: Date): number | null {
  const ms = timestampMillis(origin);
  return ms === null ? null : (now.getTime() - ms) / 1000;
}

/** True when `elapsed` is past `grace`; an unknown start counts as past (the reason is already there). */
const pastGrace = (elapsed: number | null, grace: number): boolean => elapsed === null || elapsed >= grace;

function stuck(pod: V1Pod, main: V1ContainerStatus | undefined, options: StatusOptions): Outcome | null {
  const waitingOn = [...(pod.status?.initContainerStatuses ?? []), ...(main ? [main] : [])];
  const started = secondsSince(pod.status?.startTime ?? pod.metadata?.creationTimestamp, options.now);
  for (const status of waitingOn) {
    const waiting = status.state?.waiting;
    const reason = waiting?.reason ?? "";
    const text = withMessage(reason, waiting?.message);
    if (PERMANENT_IMAGE_REASONS.includes(reason)) return exited(EXIT_ENGINE_ERROR, text, "image-pull");
    if (RETRIED_IMAGE_REASONS.includes(reason) && pastGrace(started, options.pullGraceSeconds)) {
      return exited(EXIT_ENGINE_ERROR, text, "image-pull");
    }
    if (CREATE_CONFIG_REASONS.includes(reason) && pastGrace(started, options.configGraceSeconds ?? 0)) {
      // Only RunContainerError is about the command; other config errors ("secret … not found") are engine errors.
      const code = reason === "RunContainerError" ? invocationExitCode(waiting?.message) : null;
      return exited(code ?? EXIT_ENGINE_ERROR, text, "create-config");
    }
  }
  const scheduled = pod.status?.conditions?.find((c) => c.type === "PodScheduled");
  if (scheduled?.status === "False" && scheduled.reason === REASON_UNSCHEDULABLE) {
    const since = secondsSince(scheduled.lastTransitionTime ?? pod.metadata?.creationTimestamp, options.now);
    if (pastGrace(since, options.unschedulableGraceSeconds)) {
      return exited(EXIT_ENGINE_ERROR, withMessage(REASON_UNSCHEDULABLE, scheduled.message), "unschedulable");
    }
  }
  return null;
}

function progress(pod: V1Pod, main: V1ContainerStatus | undefined): Outcome {
  if (main?.state?.running) return { status: "running", exitCode: null, reason: null, failure: null, waiting: null };
  return { status: "created", exitCode: null, reason: null, failure: null, waiting: waitingText(pod, main) };
}

function waitingText(pod: V1Pod, main: V1ContainerStatus | undefined): string {
  for (const init of pod.status?.initContainerStatuses ?? []) {
    if (init.state?.waiting?.reason) return withMessage(init.state.waiting.reason, init.state.waiting.message);
    if (init.state?.running) return `PodInitializing: init container "${init.name}" is running`;
  }
  if (main?.state?.waiting?.reason) return withMessage(main.state.waiting.reason, main.state.waiting.message);
  const scheduled = pod.status?.conditions?.find((c) => c.type === "PodScheduled");
  if (scheduled?.status === "False") return withMessage(scheduled.reason ?? "Pending", scheduled.message);
  if (!scheduled) return "Pending: waiting for the scheduler";
  return "ContainerCreating";
}
