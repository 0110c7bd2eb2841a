import type { V1Pod } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import {
  BUILDER_FAILURE_PRIORITY,
  builderResultOf,
  classifyBuilderFailure,
  jobStateOf,
  type BuilderFailureKind,
} from "../../../src/pods/builder-status.js";
import type { StatusOptions } from "../../../src/pods/status.js";
import { fixtureNames, loadJob, loadPod } from "./fixtures.js";

const options = (overrides: Partial<StatusOptions> = {}): StatusOptions => ({
  now: new Date("2026-11-28T21:41:30Z"),
  pullGraceSeconds: 60,
  unschedulableGraceSeconds: 60,
  ...overrides,
});

describe("jobStateOf over the recorded jobs", () => {
  const rows = [
    { fixture: "job-deadline", state: "failed", reason: "DeadlineExceeded" },
    { fixture: "job-failed", state: "failed", reason: "BackoffLimitExceeded" },
    { fixture: "job-succeeded", state: "succeeded", reason: "CompletionsReached" },
  ] as const;
  it("has a row for every fixture", () => {
    expect(rows.map((r) => r.fixture)).toEqual(fixtureNames("jobs"));
  });
  it.each(rows)("$fixture → $state ($reason)", ({ fixture, state, reason }) => {
    expect(jobStateOf(loadJob(fixture))).toMatchObject({ state, reason });
  });
  it("reads FailureTarget alone as failed, and a Job without conditions as active", () => {
    const job = structuredClone(loadJob("job-deadline"));
    job.status?.conditions?.splice(1);
    expect(jobStateOf(job)).toMatchObject({ state: "failed", reason: "DeadlineExceeded" });
    expect(jobStateOf({ status: {} })).toEqual({ state: "active", reason: null, message: null });
  });
});

interface Row {
  name: string;
  pod: string | null;
  job?: string;
  when?: Partial<StatusOptions>;
  kind: BuilderFailureKind | null;
  exitCode?: number | null;
  message?: string;
}

const rows: Row[] = [
  { name: "a clean success", pod: "succeeded", kind: null },
  { name: "a Job's clean success", pod: "job-pod-job-succeeded", job: "job-succeeded", kind: null },
  { name: "a SIGTERM trap that exits 0 after a delete", pod: "sigterm-trap-after-delete", kind: "deleted", exitCode: 0, message: "not a finished build" },
  { name: "a pod killed by a delete", pod: "killed-after-delete", kind: "deleted", exitCode: 137 },
  { name: "an eviction", pod: "evicted", kind: "evicted", exitCode: 137, message: "ephemeral local storage" },
  { name: "an OOM kill", pod: "oom-killed", kind: "oom", exitCode: 137, message: "OOMKilled" },
  { name: "a pod deadline", pod: "deadline-exceeded", kind: "deadline", exitCode: 137 },
  { name: "a Job deadline after the Job deleted its pod", pod: null, job: "job-deadline", kind: "deadline", message: "Job was active longer" },
  { name: "a failing RUN", pod: "job-pod-job-failed", job: "job-failed", kind: "failed", exitCode: 4 },
  { name: "an exit 3", pod: "failed-exit-3", kind: "failed", exitCode: 3 },
  { name: "an unpullable builder image past the grace", pod: "err-image-pull", kind: "image-pull", exitCode: 125, message: "does-not-exist" },
  { name: "an unpullable builder image within the grace", pod: "err-image-pull", when: { now: new Date("2026-11-28T21:40:30Z") }, kind: null },
  { name: "an invalid builder image name", pod: "invalid-image-name", kind: "image-pull" },
  { name: "an unschedulable builder", pod: "unschedulable", kind: "unschedulable", message: "Insufficient cpu" },
  { name: "a missing Secret", pod: "create-config-error", kind: "create-config", message: "missing-secret" },
  { name: "a running builder", pod: "running", kind: null },
  { name: "a running builder that vanished", pod: "running", when: { gone: true }, kind: "deleted", exitCode: 137 },
  { name: "a builder that vanished unseen", pod: null, when: { gone: true }, kind: "deleted", exitCode: null },
  { name: "nothing known yet", pod: null, kind: null },
];

describe("classifyBuilderFailure", () => {
  it.each(rows.map((r) => [r.name, r] as const))("%s", (_, row) => {
    const failure = classifyBuilderFailure(
      row.pod ? loadPod(row.pod) : null,
      row.job ? loadJob(row.job) : null,
      options(row.when),
    );
    if (row.kind === null) {
      expect(failure).toBeNull();
      return;
    }
    expect(failure?.kind).toBe(row.kind);
    if (row.exitCode !== undefined) expect(failure?.exitCode).toBe(row.exitCode);
    if (row.message) expect(failure?.message).toContain(row.message);
  });

  it("maps kinds onto BuildError reasons (an eviction is a deletion by the cluster)", () => {
    expect(classifyBuilderFailure(loadPod("evicted"), null, options())?.reason).toBe("deleted");
    expect(classifyBuilderFailure(loadPod("oom-killed"), null, options())?.reason).toBe("oom");
    expect(classifyBuilderFailure(loadPod("create-config-error"), null, options())?.reason).toBe("failed");
  });

  it("follows the documented priority when several signals are present", () => {
    expect(BUILDER_FAILURE_PRIORITY).toEqual([
      "evicted", "oom", "deadline", "image-pull", "unschedulable", "create-config", "deleted", "failed",
    ]);
    // An evicted pod whose container also shows an OOM kill: evicted wins.
    const evictedOom = structuredClone(loadPod("evicted"));
    const last = evictedOom.status?.containerStatuses?.[0]?.lastState?.terminated;
    if (last) last.reason = "OOMKilled";
    expect(classifyBuilderFailure(evictedOom, null, options())?.kind).toBe("evicted");
    // An OOM-killed pod that was also being deleted: oom wins over deleted.
    const oomDeleted: V1Pod = structuredClone(loadPod("oom-killed"));
    if (oomDeleted.metadata) oomDeleted.metadata.deletionTimestamp = new Date("2026-11-28T21:40:12Z");
    expect(classifyBuilderFailure(oomDeleted, null, options())?.kind).toBe("oom");
    // A pod deadline with a Job that says BackoffLimitExceeded: deadline wins over failed.
    expect(classifyBuilderFailure(loadPod("deadline-exceeded"), loadJob("job-failed"), options())?.kind).toBe("deadline");
  });
});

describe("builderResultOf", () => {
  const digest = `sha256:${"0f".repeat(32)}`;
  it("succeeds with the digest from the termination log", () => {
    const pod = structuredClone(loadPod("job-pod-job-succeeded"));
    const terminated = pod.status?.containerStatuses?.[0]?.state?.terminated;
    if (terminated) terminated.message = digest;
    expect(builderResultOf(pod, loadJob("job-succeeded"), options())).toEqual({
      state: "succeeded",
      digest,
      terminationMessage: digest,
    });
  });
  it("succeeds without a digest when none was written (the caller must check the registry)", () => {
    expect(builderResultOf(loadPod("succeeded"), null, options())).toMatchObject({ state: "succeeded", digest: null });
  });
  it("never reads a deleted pod as a success", () => {
    expect(builderResultOf(loadPod("sigterm-trap-after-delete"), null, options())).toMatchObject({
      state: "failed",
      failure: { kind: "deleted", reason: "deleted" },
    });
  });
  it("is pending while the builder runs or has no pod yet", () => {
    expect(builderResultOf(loadPod("running"), null, options())).toEqual({ state: "pending" });
    expect(builderResultOf(null, loadJob("job-succeeded"), options())).toEqual({ state: "pending" });
  });
});
