/**
 * One build of the service, shared by every client that asked for it: the runner Job's pod is watched until
 * it starts, its log is followed once (THE log follower: gap-free, no line twice) and each line — one JSON
 * event of the runner — is kept at its position, so any client can read from any position: a late joiner from
 * 0, a reconnecting one from its `Last-Event-ID`. The positions are the lines' order in the pod's log, so a
 * restarted service that follows the same pod again gives every line the same position.
 */
import type { V1Job, V1Pod } from "@kubernetes/client-node";
import { CancelledError, DeadlineExceededError } from "../errors.js";
import type { KubeApi } from "../kube/api.js";
import { containerStarted, containerTerminated } from "../kube/logs.js";
import { waitFor } from "../kube/watch.js";
import { builderResultOf } from "../pods/builder-status.js";
import type { StatusOptions } from "../pods/status.js";
import { RUNNER_CONTAINER, jobPodSelector } from "./runner-job.js";

/** One line of the runner: a BinderHub event object (`phase`, `message`, …). */
export type RunnerEvent = Record<string, unknown> & { message?: string; phase?: string };

/** How a build ended. */
export type BuildOutcome = { ok: true } | { ok: false; message: string };

/** What a reader gets: the log events in order, then the outcome. */
export type SessionItem = { kind: "event"; position: number; event: RunnerEvent } | { kind: "end"; position: number; outcome: BuildOutcome };

export interface SessionDeps {
  api: KubeApi;
  /** Whether the registry holds the image (confirms the runner's "succeeded" before the kubelet reports the end). */
  imageExists: (image: string) => Promise<boolean>;
  now?: () => Date;
  /** How long a pod may report image-pull errors / stay unschedulable before the build fails, s. */
  pullGraceSeconds: number;
  unschedulableGraceSeconds: number;
  log: (message: string) => void;
}

/** How often to re-check that the Job still exists while its pod has not started, ms. */
const POD_APPEAR_CHECK_MS = 5_000;
/** How long a runner that reported success may take to end before its slot is freed anyway, ms. */
const ENDED_WAIT_MS = 60_000;
/** Lines of the runner's output quoted in a failure. */
const FAILURE_TAIL_LINES = 12;

/** The key of the runner's own control lines (`{"kce_runner": "succeeded"}`): not events for clients. */
export const CONTROL_KEY = "kce_runner";

/** Parses one runner log line; text that is not a JSON object is passed on as a message. */
export function parseRunnerLine(text: string): RunnerEvent {
  const trimmed = text.trim();
  if (trimmed.startsWith("{")) {
    try {
      const parsed: unknown = JSON.parse(trimmed);
      if (parsed !== null && typeof parsed === "object" && !Array.isArray(parsed)) return parsed as RunnerEvent;
    } catch {
      // not JSON after all: a plain line
    }
  }
  return { message: `${text}\n` };
}

/** A runner line that reports the build's failure (repo2docker's or the runner's own `failed` event). */
export function isFailureEvent(event: RunnerEvent): boolean {
  return event.phase === "failed" || event.phase === "failure";
}

/**
 * The message of a failed build: the runner's own verdict when it gave one (repo2docker's "Error during
 * build: …", "The repository is larger than the limit …"), else `reason`; then the build's last lines. Pure.
 */
export function failureMessage(reason: string, events: readonly RunnerEvent[]): string {
  const text = (e: RunnerEvent): string => (typeof e.message === "string" ? e.message.replace(/\n+$/, "") : "");
  const verdict = [...events].reverse().find(isFailureEvent);
  const headline = verdict && text(verdict) !== "" ? text(verdict) : reason.replace(/\n+$/, "");
  const lines = events
    .filter((e) => !isFailureEvent(e))
    .map(text)
    .filter((m) => m.trim() !== "")
    .slice(-FAILURE_TAIL_LINES);
  return lines.length > 0 ? `${headline}\n--- last lines of the build ---\n${lines.join("\n")}\n` : `${headline}\n`;
}

export class BuildSession {
  readonly events: RunnerEvent[] = [];
  private outcomeValue: BuildOutcome | null = null;
  private wakers: Array<() => void> = [];
  private readonly stop = new AbortController();
  private running: Promise<void> | null = null;
  readonly startedAt: number;
  finishedAt: number | null = null;

  constructor(
    /** The runner Job's name (the build's name). */
    readonly name: string,
    readonly imageName: string,
    private readonly deps: SessionDeps,
  ) {
    this.startedAt = Date.now();
  }

  get outcome(): BuildOutcome | null {
    return this.outcomeValue;
  }

  /** Resolves with the outcome as soon as it is known (the runner pod may still be ending). */
  result(): Promise<BuildOutcome> {
    return (async () => {
      for await (const item of this.read(Number.MAX_SAFE_INTEGER - 1)) if (item.kind === "end") return item.outcome;
      return this.outcomeValue ?? { ok: false, message: "the service stopped following the build\n" };
    })();
  }

  /** Starts following the build (once); resolves when its runner pod ended. Never rejects. */
  follow(): Promise<void> {
    this.running ??= this.run().catch((err: unknown) => {
      if (err instanceof CancelledError && this.stop.signal.aborted) return;
      this.finish({ ok: false, message: failureMessage(`the service lost track of the build: ${String(err)}`, this.events) });
    });
    return this.running;
  }

  /** Stops following (the Job is left alone). */
  close(): void {
    this.stop.abort();
    this.wake();
  }

  /** The events after position `after` (−1: all), then the outcome; ends early when `signal` aborts. */
  async *read(after: number, signal?: AbortSignal): AsyncGenerator<SessionItem> {
    let next = Math.max(0, after + 1);
    for (;;) {
      while (next < this.events.length) {
        const event = this.events[next] as RunnerEvent;
        yield { kind: "event", position: next, event };
        next += 1;
      }
      const outcome = this.outcomeValue;
      if (outcome !== null) {
        yield { kind: "end", position: this.events.length, outcome };
        return;
      }
      if (signal?.aborted || this.stop.signal.aborted) return;
      await new Promise<void>((resolve) => {
        const done = (): void => {
          signal?.removeEventListener("abort", done);
          resolve();
        };
        this.wakers.push(done);
        signal?.addEventListener("abort", done, { once: true });
      });
    }
  }

  private wake(): void {
    const wakers = this.wakers;
    this.wakers = [];
    for (const w of wakers) w();
  }

  private push(event: RunnerEvent): void {
    this.events.push(event);
    this.wake();
  }

  private finish(outcome: BuildOutcome): void {
    if (this.outcomeValue !== null) return;
    this.outcomeValue = outcome;
    this.finishedAt = Date.now();
    this.wake();
  }

  private statusOptions(gone = false): StatusOptions {
    return {
      now: (this.deps.now ?? (() => new Date()))(),
      pullGraceSeconds: this.deps.pullGraceSeconds,
      unschedulableGraceSeconds: this.deps.unschedulableGraceSeconds,
      containerName: RUNNER_CONTAINER,
      gone,
    };
  }

  private async run(): Promise<void> {
    const signal = this.stop.signal;
    const pod = await this.waitForStart(signal);
    if (pod === null) return;
    const podName = pod.metadata?.name ?? "";
    for await (const line of this.deps.api.followLogs({ pod: podName, container: RUNNER_CONTAINER, signal })) {
      const event = parseRunnerLine(line.text);
      if (!(CONTROL_KEY in event)) {
        this.push(event);
        continue;
      }
      // The runner says it succeeded: with the image in the registry that is the result, a second or so
      // before the kubelet reports the container's end. Without it, the pod's final state decides.
      if (event[CONTROL_KEY] === "succeeded" && (await this.deps.imageExists(this.imageName).catch(() => false))) {
        this.finish({ ok: true });
        break;
      }
    }
    if (this.outcomeValue === null) await this.settle(podName, signal);
    else await this.waitEnded(podName, signal);
  }

  /** Waits for the runner container to start; null when the build already ended (failure recorded). */
  private async waitForStart(signal: AbortSignal): Promise<V1Pod | null> {
    const api = this.deps.api;
    const watch = api.pods.watch({ labelSelector: jobPodSelector(this.name) });
    for (;;) {
      try {
        const outcome = await waitFor(
          watch,
          (pod) => containerStarted(pod, RUNNER_CONTAINER) || builderResultOf(pod, null, this.statusOptions()).state === "failed",
          { signal, timeoutMs: POD_APPEAR_CHECK_MS, description: `the runner pod of build ${this.name} to start` },
        );
        if (outcome.kind === "matched") {
          const result = builderResultOf(outcome.object, null, this.statusOptions());
          if (result.state === "failed" && !containerStarted(outcome.object, RUNNER_CONTAINER)) {
            this.finish({ ok: false, message: failureMessage(`the build could not start: ${result.failure.message}`, this.events) });
            return null;
          }
          return outcome.object;
        }
      } catch (err) {
        if (!(err instanceof DeadlineExceededError)) throw err;
      }
      // No pod (yet): the Job may have failed before creating one (deadline, quota) or have been deleted.
      const job = await api.jobs.get(this.name, { signal });
      const ended = job === null ? "the build's Job was deleted before its pod started" : jobFailure(job);
      if (ended !== null) {
        this.finish({ ok: false, message: failureMessage(ended, this.events) });
        return null;
      }
    }
  }

  /** Waits (bounded) until the runner's container ended: the build's slot is free only then. */
  private async waitEnded(podName: string, signal: AbortSignal): Promise<void> {
    const watch = this.deps.api.pods.watch({ fieldSelector: `metadata.name=${podName}` });
    try {
      await waitFor(watch, (pod) => containerTerminated(pod, RUNNER_CONTAINER), {
        signal,
        name: podName,
        absentIsDeleted: true,
        timeoutMs: ENDED_WAIT_MS,
        description: `the runner pod ${podName} to end`,
      });
    } catch (err) {
      if (!(err instanceof DeadlineExceededError)) throw err;
      this.deps.log(`the runner pod ${podName} still runs ${ENDED_WAIT_MS / 1000} s after its build succeeded`);
    }
  }

  /** Reads the runner's final state after its log ended. */
  private async settle(podName: string, signal: AbortSignal): Promise<void> {
    const api = this.deps.api;
    const [pod, job] = await Promise.all([api.pods.get(podName, { signal }), api.jobs.get(this.name, { signal })]);
    const result = builderResultOf(pod, job, this.statusOptions(pod === null));
    if (result.state === "succeeded") {
      this.finish({ ok: true });
    } else if (result.state === "failed") {
      const why = result.failure.kind === "failed" ? `the build failed (exit code ${result.failure.exitCode ?? "unknown"})` : `the build failed: ${result.failure.message}`;
      this.finish({ ok: false, message: failureMessage(why, this.events) });
    } else {
      this.finish({ ok: false, message: failureMessage("the build runner ended in an unknown state", this.events) });
    }
  }
}

/** Why a Job failed, or null while it has not. */
function jobFailure(job: V1Job): string | null {
  const failed = (job.status?.conditions ?? []).find((c) => c.status === "True" && (c.type === "Failed" || c.type === "FailureTarget"));
  if (!failed) return null;
  return failed.reason === "DeadlineExceeded" ? "the build took longer than its time limit" : `the build's Job failed: ${failed.message ?? failed.reason ?? ""}`;
}
