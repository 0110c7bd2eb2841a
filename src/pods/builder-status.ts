/**
 * Pure classification of a builder pod (and the Job that owns it) into success or one typed failure.
 * "A deleted pod is not a finished one": a pod that ended `Succeeded` after a delete (a SIGTERM trap that
 * exits 0) is a `deleted` failure, never a success; callers still confirm the digest in the registry.
 */
import type { V1Job, V1Pod } from "@kubernetes/client-node";
import type { BuildFailureReason } from "../errors.js";
import { REASON_DEADLINE_EXCEEDED, REASON_OOM_KILLED } from "./reasons.js";
import { containerStateOf, digestFromTerminationMessage, type PodFailure, type StatusOptions } from "./status.js";

/** What went wrong with a build, most specific first (see {@link BUILDER_FAILURE_PRIORITY}). */
export type BuilderFailureKind =
  | "evicted"
  | "oom"
  | "deadline"
  | "image-pull"
  | "unschedulable"
  | "create-config"
  | "deleted"
  | "failed";

/**
 * When several signals are present, the first in this list wins: the cluster taking the pod away explains an
 * OOM-looking kill; an OOM explains a non-zero exit; a deadline explains a pull that never finished; and a
 * plain non-zero exit (`failed`) is reported only when nothing more specific is known.
 */
export const BUILDER_FAILURE_PRIORITY: readonly BuilderFailureKind[] = [
  "evicted",
  "oom",
  "deadline",
  "image-pull",
  "unschedulable",
  "create-config",
  "deleted",
  "failed",
];

/** How each kind surfaces as {@link BuildFailureReason} on a `BuildError`. */
export const BUILD_FAILURE_REASON: Readonly<Record<BuilderFailureKind, BuildFailureReason>> = {
  evicted: "deleted",
  oom: "oom",
  deadline: "deadline",
  "image-pull": "image-pull",
  unschedulable: "unschedulable",
  "create-config": "failed",
  deleted: "deleted",
  failed: "failed",
};

/** One classified builder failure. */
export interface BuilderFailure {
  kind: BuilderFailureKind;
  /** The `BuildError.reason` to throw with. */
  reason: BuildFailureReason;
  /** A readable sentence with the kubelet's / controller's own message. */
  message: string;
  /** The builder's exit code when it got to exit (or the code we assign, see `containerStateOf`); else null. */
  exitCode: number | null;
}

/** A Job's state from its conditions. */
export interface JobState {
  state: "active" | "succeeded" | "failed";
  /** The condition's reason (`DeadlineExceeded`, `BackoffLimitExceeded`, `CompletionsReached`…); null while active. */
  reason: string | null;
  message: string | null;
}

/**
 * Reads a Job's conditions. `FailureTarget` (Kubernetes ≥ 1.31) counts as failed: the controller has
 * decided, and `Failed` follows only once its pods are gone (~30 s later for a deadline).
 * `SuccessCriteriaMet` likewise counts as succeeded before `Complete`.
 */
export function jobStateOf(job: V1Job): JobState {
  const conditions = (job.status?.conditions ?? []).filter((c) => c.status === "True");
  const failed = conditions.find((c) => c.type === "Failed") ?? conditions.find((c) => c.type === "FailureTarget");
  if (failed) return { state: "failed", reason: failed.reason ?? null, message: failed.message ?? null };
  const done = conditions.find((c) => c.type === "Complete") ?? conditions.find((c) => c.type === "SuccessCriteriaMet");
  if (done) return { state: "succeeded", reason: done.reason ?? null, message: done.message ?? null };
  return { state: "active", reason: null, message: null };
}

const KIND_OF: Readonly<Record<PodFailure, BuilderFailureKind>> = {
  evicted: "evicted",
  oom: "oom",
  deadline: "deadline",
  "image-pull": "image-pull",
  unschedulable: "unschedulable",
  "create-config": "create-config",
  deleted: "deleted",
  start: "failed",
  rejected: "failed",
  error: "failed",
};

const failure = (kind: BuilderFailureKind, message: string, exitCode: number | null): BuilderFailure => ({
  kind,
  reason: BUILD_FAILURE_REASON[kind],
  message,
  exitCode,
});

function oomAnywhere(pod: V1Pod): boolean {
  const all = [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])];
  return all.some(
    (s) => s.state?.terminated?.reason === REASON_OOM_KILLED || s.lastState?.terminated?.reason === REASON_OOM_KILLED,
  );
}

function podCandidates(pod: V1Pod, options: StatusOptions): BuilderFailure[] {
  const state = containerStateOf(pod, options);
  const found: BuilderFailure[] = [];
  if (state.failure) {
    const message = state.reason ?? `the builder exited with code ${state.exitCode}`;
    found.push(failure(KIND_OF[state.failure], message, state.exitCode));
  }
  if (state.failure !== "oom" && oomAnywhere(pod)) {
    found.push(failure("oom", "OOMKilled: the builder ran out of memory; raise its memory limit", state.exitCode));
  }
  if (state.deleted && (state.terminal || options.gone === true)) {
    const how = state.exitCode === 0 ? " (it exited 0 after the delete: not a finished build)" : "";
    found.push(failure("deleted", `the builder pod was deleted before the build finished${how}`, state.exitCode));
  }
  return found;
}

function jobCandidate(job: V1Job, exitCode: number | null): BuilderFailure | null {
  const js = jobStateOf(job);
  if (js.state !== "failed") return null;
  const text = `${js.reason ?? "Failed"}: ${js.message ?? "the build Job failed"}`;
  return js.reason === REASON_DEADLINE_EXCEEDED ? failure("deadline", text, exitCode) : failure("failed", text, exitCode);
}

/**
 * Classifies a builder's failure by {@link BUILDER_FAILURE_PRIORITY}.
 * @param pod the builder pod's last seen state; null when there is none (e.g. the Job deleted it)
 * @param job the owning Job, when the builder runs as one; null otherwise
 * @param options as for `containerStateOf`; set `gone` when the pod was deleted from the API
 * @returns the failure, or null when none is known (yet): the builder may be running or have succeeded
 */
export function classifyBuilderFailure(
  pod: V1Pod | null,
  job: V1Job | null,
  options: StatusOptions,
): BuilderFailure | null {
  const found = pod ? podCandidates(pod, options) : [];
  const exitCode = found.find((f) => f.exitCode !== null)?.exitCode ?? null;
  const fromJob = job ? jobCandidate(job, exitCode) : null;
  if (fromJob) found.push(fromJob);
  if (!pod && !fromJob && options.gone === true) {
    found.push(failure("deleted", "the builder pod disappeared before it reported a result", null));
  }
  const rank = (f: BuilderFailure): number => BUILDER_FAILURE_PRIORITY.indexOf(f.kind);
  return found.sort((a, b) => rank(a) - rank(b))[0] ?? null;
}

/** A builder's result so far. */
export type BuilderResult =
  | { state: "pending" }
  | { state: "succeeded"; digest: string | null; terminationMessage: string | null }
  | { state: "failed"; failure: BuilderFailure };

/**
 * The builder's result: `failed` as {@link classifyBuilderFailure}; `succeeded` only when the main container
 * exited 0, the pod was not deleted and the Job (if any) did not fail; else `pending`.
 * `digest` is the `sha256:…` the builder wrote to its termination log (null when absent — then the caller must
 * confirm the image in the registry before reporting success).
 */
export function builderResultOf(pod: V1Pod | null, job: V1Job | null, options: StatusOptions): BuilderResult {
  const failed = classifyBuilderFailure(pod, job, options);
  if (failed) return { state: "failed", failure: failed };
  if (!pod) return { state: "pending" };
  const state = containerStateOf(pod, options);
  if (state.terminal && state.exitCode === 0 && !state.deleted) {
    return {
      state: "succeeded",
      digest: digestFromTerminationMessage(state.terminationMessage),
      terminationMessage: state.terminationMessage,
    };
  }
  return { state: "pending" };
}
