/**
 * Running one builder Job that exists in the cluster: wait for its pod, stream the context into the builder's
 * stdin (only the Job's creator does that), follow the builder's log, and read the result from the pod's final
 * state. A build that joined an identical one follows the same pod without sending anything.
 */
import type { V1Job, V1Pod } from "@kubernetes/client-node";
import type { ResolvedEngineConfig } from "../config.js";
import type { BuildProgress } from "../contract.js";
import { BuildError, CancelledError, DeadlineExceededError, KubernetesApiError } from "../errors.js";
import type { KubeApi } from "../kube/api.js";
import { retryTransient } from "../kube/retry.js";
import { containerStarted } from "../kube/logs.js";
import { waitFor } from "../kube/watch.js";
import { builderResultOf, type BuilderFailure } from "../pods/builder-status.js";
import { selectorFromLabels } from "../pods/labels.js";
import type { StatusOptions } from "../pods/status.js";
import { summarizeBuilderFailure } from "./builder-output.js";
import { BUILDER_CONTAINER } from "./builder-spec.js";
import type { BuildContext, ContextProgress } from "./context.js";
import type { BuilderJobs } from "./jobs.js";

/** Lines of builder output kept for the error message. */
export const LOG_TAIL_LINES = 20;
/** How long the pod may be missing before we look for the Job controller's FailedCreate events. */
const POD_APPEAR_CHECK_MS = 5_000;

/** What a builder pod reported. */
export interface JobOutcome {
  /** The builder pod's name. */
  pod: string;
  /** The digest from the termination log; null when the builder wrote none. */
  digest: string | null;
}

/** One run of a builder Job. */
export interface JobRunInput {
  /** The Job as the API returned it (its `spec.selector` finds the pod). */
  job: V1Job;
  /** The context to stream into stdin; null when following a Job someone else created. */
  context: BuildContext | null;
  /** The image, for messages. */
  image: string;
  progress: (p: BuildProgress) => void;
  signal: AbortSignal | undefined;
}

/** How long reading the builder's final state may ride out an API server outage. */
const FINAL_POD_OUTAGE_MS = 60_000;

/** After a failed upload, how long the builder may take to fail by itself before we stop following it. */
const UPLOAD_FAILURE_GRACE_MS = 10_000;

/** Waits for, feeds and follows builder pods. */
export class JobRunner {
  constructor(
    private readonly deps: { api: KubeApi; config: ResolvedEngineConfig; jobs: BuilderJobs },
  ) {}

  /**
   * Yields the builder's output lines until it ends and returns its outcome.
   * @throws BuildError (the builder failed, its pod could not start or was deleted, the context could not be
   *   delivered); CancelledError when `signal` aborted.
   */
  async *run(input: JobRunInput): AsyncGenerator<string, JobOutcome> {
    const { job, signal } = input;
    const name = job.metadata?.name ?? "";
    const stop = new AbortController();
    const abort = (): void => stop.abort();
    signal?.addEventListener("abort", abort, { once: true });
    const tail: string[] = [];
    let uploadFailed: unknown = null;
    try {
      let pod = await this.waitForStart(job, stop.signal);
      const podName = pod.metadata?.name ?? "";
      input.progress({ kind: "phase", message: `builder pod ${podName} started` });
      const upload = input.context ? this.upload(podName, input.context, input.progress, stop.signal) : Promise.resolve(null);
      // A failed upload (refused attach, lost session) leaves the builder waiting for stdin until its deadline:
      // give it a moment to fail by itself (its own error is the better message), then stop following.
      const giveUp = upload.then((err) => {
        if (err === null) return undefined;
        uploadFailed = err;
        return setTimeout(() => stop.abort(), UPLOAD_FAILURE_GRACE_MS);
      });
      for await (const line of this.deps.api.followLogs({ pod: podName, container: BUILDER_CONTAINER, signal: stop.signal })) {
        tail.push(line.text);
        if (tail.length > LOG_TAIL_LINES) tail.shift();
        yield `${line.text}\n`;
      }
      const uploadError = await upload;
      clearTimeout(await giveUp);
      pod = await this.finalPod(podName, name, stop.signal);
      return { pod: podName, digest: this.checkResult(pod, tail, uploadError) };
    } catch (err) {
      if (signal?.aborted) {
        const what = input.context ? "; the builder was deleted" : " (the shared builder keeps running for its creator)";
        throw new CancelledError(`build of ${input.image} cancelled${what}`, { cause: err });
      }
      if (err instanceof BuildError) throw err;
      if (uploadFailed !== null) {
        throw new BuildError(`the build context could not be delivered to the builder: ${String(uploadFailed)}`, {
          reason: "upload",
          logTail: tail,
          cause: uploadFailed,
        });
      }
      if (err instanceof DeadlineExceededError || err instanceof KubernetesApiError) {
        throw new BuildError(`build of ${input.image} failed: ${err.message}`, { reason: "failed", logTail: tail, cause: err });
      }
      throw err;
    } finally {
      signal?.removeEventListener("abort", abort);
      stop.abort();
    }
  }

  /** Streams the context into the builder's stdin; resolves with the error instead of throwing it. */
  private upload(pod: string, context: BuildContext, progress: (p: BuildProgress) => void, signal: AbortSignal): Promise<unknown> {
    const sent = context.open({
      compression: this.deps.config.contextCompression,
      onProgress: (p: ContextProgress) => progress({ kind: "context", ...p }),
    });
    return this.deps.api.attachStdin({ pod, container: BUILDER_CONTAINER, source: sent.stream, releaseChunk: sent.release, signal }).then(
      () => null,
      (err: unknown) => {
        sent.stream.destroy();
        return err;
      },
    );
  }

  private statusOptions(): StatusOptions {
    return {
      now: new Date(),
      pullGraceSeconds: this.deps.config.timeouts.imagePullGraceSeconds,
      unschedulableGraceSeconds: this.deps.config.timeouts.unschedulableGraceSeconds,
      containerName: BUILDER_CONTAINER,
    };
  }

  /**
   * Waits until the builder container started, or throws the BuildError of a pod that never will: one the
   * cluster refused to create, a failed one, or one whose Job is gone (deleted by whoever created it).
   */
  private async waitForStart(job: V1Job, signal: AbortSignal): Promise<V1Pod> {
    const jobName = job.metadata?.name ?? "";
    const matchLabels = job.spec?.selector?.matchLabels;
    const labelSelector = matchLabels && Object.keys(matchLabels).length > 0 ? selectorFromLabels(matchLabels) : `job-name=${jobName}`;
    const watch = this.deps.api.pods.watch({ labelSelector });
    for (;;) {
      try {
        const outcome = await waitFor(
          watch,
          (pod) => containerStarted(pod, BUILDER_CONTAINER) || builderResultOf(pod, null, this.statusOptions()).state === "failed",
          { signal, timeoutMs: POD_APPEAR_CHECK_MS, description: `the builder pod of job ${jobName} to start` },
        );
        if (outcome.kind === "deleted" || !outcome.object) {
          throw new BuildError(`the builder pod of job ${jobName} was deleted before it started`, { reason: "deleted" });
        }
        const result = builderResultOf(outcome.object, null, this.statusOptions());
        if (result.state === "failed") throw failureError(result.failure, []);
        return outcome.object;
      } catch (err) {
        if (!(err instanceof DeadlineExceededError)) throw err;
        await this.deps.jobs.throwIfCreateFailed(jobName);
        if (!(await this.deps.jobs.exists(job))) {
          throw new BuildError(`the builder job ${jobName} was deleted before its pod started`, { reason: "deleted" });
        }
      }
    }
  }

  /**
   * The builder pod's final state; a pod that is gone (its Job deleted) is a `deleted` BuildError. Transient
   * failures (the API server restarting just as the build ends) are retried for up to FINAL_POD_OUTAGE_MS, as
   * long as the log follower would have tolerated the outage.
   */
  private async finalPod(name: string, jobName: string, signal: AbortSignal): Promise<V1Pod> {
    const pod = await retryTransient(() => this.deps.api.pods.get(name, { signal }), { maxRetryTimeMs: FINAL_POD_OUTAGE_MS, signal });
    if (pod === null) {
      throw new BuildError(`the builder pod ${name} of job ${jobName} was deleted before it reported a result`, { reason: "deleted" });
    }
    return pod;
  }

  /** The digest the builder reported, or the BuildError of its failure. */
  private checkResult(pod: V1Pod, tail: string[], uploadError: unknown): string | null {
    const result = builderResultOf(pod, null, { ...this.statusOptions(), pullGraceSeconds: 0 });
    if (result.state === "succeeded") return result.digest;
    if (result.state === "failed") {
      // Deadline, deletion, eviction or OOM explain themselves; only a plain failure may be the upload's fault.
      if (uploadError && result.failure.kind === "failed" && blameUpload(tail)) {
        throw new BuildError(`the build context could not be delivered: ${String(uploadError)}`, {
          reason: "upload",
          exitCode: result.failure.exitCode,
          logTail: tail,
          cause: uploadError,
        });
      }
      throw failureError(result.failure, tail);
    }
    throw new BuildError(`the builder pod ${pod.metadata?.name} ended in an unknown state`, { reason: "failed", logTail: tail });
  }
}

/**
 * Whether a failed build with a failed upload failed because of the upload. A builder that exits while the
 * attach session closes can make the upload report an error although everything arrived: then the builder's
 * own error lines (a failing RUN, a missing base image) are the reason, unless they are about the archive.
 */
export function blameUpload(tail: readonly string[]): boolean {
  const errors = summarizeBuilderFailure(tail).errorLines;
  return errors.length === 0 || errors.some((line) => /unexpected EOF|\bgzip\b|\btar\b|archive|\bstdin\b/i.test(line));
}

/**
 * A BuildError for a classified failure. For a builder that ran and failed, the message leads with the
 * builder's own error line (e.g. the failing RUN's exit code) and ends with its last lines.
 */
export function failureError(failure: BuilderFailure, tail: string[]): BuildError {
  if (failure.kind !== "failed" || tail.length === 0) {
    const lines = tail.length > 0 ? `\n${tail.join("\n")}` : "";
    return new BuildError(`${failure.message}${lines}`, { reason: failure.reason, exitCode: failure.exitCode, logTail: tail });
  }
  const output = summarizeBuilderFailure(tail, failure.exitCode, LOG_TAIL_LINES);
  return new BuildError(`build failed: ${output.summary}\n--- last builder output ---\n${output.logTail.join("\n")}`, {
    reason: failure.reason,
    exitCode: output.exitCode,
    logTail: output.logTail,
  });
}
