import type { V1Pod } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import {
  containerStateOf,
  digestFromTerminationMessage,
  terminationMessage,
  type PodFailure,
  type StatusOptions,
} from "../../../src/pods/status.js";
import { fixtureNames, loadPod } from "./fixtures.js";

// The fixtures were recorded around 2026-11-28T21:40:09Z; "later" is well past both graces.
const LATER = new Date("2026-11-28T21:41:30Z");
const EARLY = new Date("2026-11-28T21:40:30Z");
const options = (overrides: Partial<StatusOptions> = {}): StatusOptions => ({
  now: LATER,
  pullGraceSeconds: 60,
  unschedulableGraceSeconds: 60,
  ...overrides,
});

interface Row {
  fixture: string;
  when?: Partial<StatusOptions>;
  status: "created" | "running" | "exited";
  exitCode: number | null;
  reason: string | null; // substring, or null for "no reason"
  failure: PodFailure | null;
  deleted?: boolean;
  waiting?: string;
}

const rows: Row[] = [
  { fixture: "create-config-error", status: "exited", exitCode: 125, reason: 'CreateContainerConfigError: secret "missing-secret" not found', failure: "create-config" },
  { fixture: "create-config-error", when: { configGraceSeconds: 600 }, status: "created", exitCode: null, reason: null, failure: null, waiting: "CreateContainerConfigError" },
  { fixture: "deadline-exceeded", status: "exited", exitCode: 137, reason: "DeadlineExceeded: Pod was active on the node longer", failure: "deadline" },
  { fixture: "err-image-pull", status: "exited", exitCode: 125, reason: 'ImagePullBackOff: Back-off pulling image "192.0.2.2:5000/does-not-exist:1"', failure: "image-pull" },
  { fixture: "err-image-pull", when: { now: EARLY }, status: "created", exitCode: null, reason: null, failure: null, waiting: "ImagePullBackOff: Back-off pulling" },
  { fixture: "evicted", status: "exited", exitCode: 137, reason: "Evicted: Pod ephemeral local storage usage exceeds", failure: "evicted" },
  { fixture: "failed-exit-3", status: "exited", exitCode: 3, reason: null, failure: "error" },
  { fixture: "invalid-image-name", status: "exited", exitCode: 125, reason: "InvalidImageName: Failed to apply default image tag", failure: "image-pull" },
  { fixture: "invalid-image-name", when: { now: EARLY, pullGraceSeconds: 3600 }, status: "exited", exitCode: 125, reason: "InvalidImageName", failure: "image-pull" },
  { fixture: "job-pod-job-failed", status: "exited", exitCode: 4, reason: null, failure: "error" },
  { fixture: "job-pod-job-succeeded", status: "exited", exitCode: 0, reason: null, failure: null },
  { fixture: "killed-after-delete", status: "exited", exitCode: 137, reason: "Deleted: the pod was deleted", failure: "error", deleted: true },
  { fixture: "oom-killed", status: "exited", exitCode: 137, reason: "OOMKilled", failure: "oom" },
  { fixture: "running", status: "running", exitCode: null, reason: null, failure: null },
  { fixture: "running", when: { gone: true }, status: "exited", exitCode: 137, reason: "Deleted: the pod was deleted before its container finished", failure: "deleted", deleted: true },
  { fixture: "sigterm-trap-after-delete", status: "exited", exitCode: 0, reason: null, failure: null, deleted: true },
  { fixture: "succeeded", status: "exited", exitCode: 0, reason: null, failure: null },
  { fixture: "unschedulable", status: "exited", exitCode: 125, reason: "Unschedulable: 0/1 nodes are available: 1 Insufficient cpu", failure: "unschedulable" },
  { fixture: "unschedulable", when: { now: EARLY }, status: "created", exitCode: null, reason: null, failure: null, waiting: "Unschedulable: 0/1 nodes" },
  { fixture: "unschedulable", when: { now: EARLY, gone: true }, status: "exited", exitCode: 137, reason: "it was waiting: Unschedulable", failure: "deleted", deleted: true },
];

describe("containerStateOf over the recorded pods", () => {
  it("has a row for every fixture", () => {
    expect(new Set(rows.map((r) => r.fixture))).toEqual(new Set(fixtureNames("pods")));
  });

  it.each(rows.map((r) => [`${r.fixture}${r.when ? ` ${JSON.stringify(r.when)}` : ""}`, r] as const))("%s", (_, row) => {
    const state = containerStateOf(loadPod(row.fixture), options(row.when));
    expect(state.status).toBe(row.status);
    expect(state.exitCode).toBe(row.exitCode);
    expect(state.terminal).toBe(row.status === "exited");
    expect(state.failure).toBe(row.failure);
    expect(state.deleted).toBe(row.deleted ?? false);
    if (row.reason === null) expect(state.reason).toBeNull();
    else expect(state.reason).toContain(row.reason);
    if (row.waiting) expect(state.waiting).toContain(row.waiting);
    if (row.status !== "created") expect(state.waiting).toBeNull();
  });
});

/** A deep copy of a fixture with `edit` applied, for variants the cluster did not record. */
function variant(name: string, edit: (pod: V1Pod) => void): V1Pod {
  const pod = structuredClone(loadPod(name));
  edit(pod);
  return pod;
}

function terminated(pod: V1Pod) {
  const state = pod.status?.containerStatuses?.[0]?.state?.terminated;
  if (!state) throw new Error("fixture has no terminated state");
  return state;
}

describe("containerStateOf on variants", () => {
  it("reports OOMKilled as 137 even when the code says 0", () => {
    const pod = variant("oom-killed", (p) => (terminated(p).exitCode = 0));
    expect(containerStateOf(pod, options())).toMatchObject({ exitCode: 137, reason: "OOMKilled", failure: "oom" });
  });

  it.each([
    ['exec: "jupyter": executable file not found in $PATH', 127],
    ["exec: /start: permission denied", 126],
    ["something else went wrong", 128],
  ])("maps a StartError %j to %i like docker run", (message, code) => {
    const pod = variant("failed-exit-3", (p) => Object.assign(terminated(p), { reason: "StartError", exitCode: 128, message }));
    const state = containerStateOf(pod, options());
    expect(state).toMatchObject({ status: "exited", exitCode: code, failure: "start" });
    expect(state.reason).toContain(`StartError: ${message}`);
  });

  it("ends a deadline pod at once, before the kubelet has killed its container", () => {
    const pod = variant("deadline-exceeded", (p) => {
      const status = p.status?.containerStatuses?.[0];
      if (status) status.state = { running: { startedAt: new Date("2026-11-28T21:40:11Z") } };
    });
    expect(containerStateOf(pod, options())).toMatchObject({ status: "exited", exitCode: 137, failure: "deadline" });
  });

  it("treats a Failed pod with a DisruptionTarget condition as evicted", () => {
    const pod = variant("killed-after-delete", (p) => {
      p.status?.conditions?.push({ type: "DisruptionTarget", status: "True", reason: "PreemptionByScheduler", message: "preempted by a higher priority pod" });
    });
    const state = containerStateOf(pod, options());
    expect(state).toMatchObject({ exitCode: 137, failure: "evicted" });
    expect(state.reason).toBe("PreemptionByScheduler: preempted by a higher priority pod");
  });

  it("reports a node admission rejection (Failed, never started) as 125", () => {
    const pod = variant("unschedulable", (p) => {
      p.status = { phase: "Failed", reason: "OutOfcpu", message: "Pod Node didn't have enough resource: cpu" };
    });
    expect(containerStateOf(pod, options())).toMatchObject({
      status: "exited",
      exitCode: 125,
      failure: "rejected",
      reason: "OutOfcpu: Pod Node didn't have enough resource: cpu",
    });
  });

  it("reports a failed init container with its code", () => {
    const pod = variant("failed-exit-3", (p) => {
      if (!p.status) return;
      p.status.initContainerStatuses = [
        { name: "upload", image: "busybox", imageID: "", ready: false, restartCount: 0, state: { terminated: { exitCode: 2, reason: "Error" } } },
      ];
      p.status.containerStatuses = [];
    });
    expect(containerStateOf(pod, options())).toMatchObject({
      exitCode: 2,
      failure: "error",
      reason: 'init container "upload" failed: exited with code 2',
    });
  });

  it("says an init container is running while the main container waits", () => {
    const pod = variant("running", (p) => {
      if (!p.status) return;
      p.status.phase = "Pending";
      p.status.initContainerStatuses = [
        { name: "upload", image: "busybox", imageID: "", ready: false, restartCount: 0, state: { running: {} } },
      ];
      p.status.containerStatuses = [
        { name: "main", image: "busybox", imageID: "", ready: false, restartCount: 0, state: { waiting: { reason: "PodInitializing" } } },
      ];
    });
    expect(containerStateOf(pod, options())).toMatchObject({ status: "created", waiting: 'PodInitializing: init container "upload" is running' });
  });

  it("fails an init container's image pull after the grace", () => {
    const pod = variant("err-image-pull", (p) => {
      if (!p.status) return;
      p.status.initContainerStatuses = p.status.containerStatuses;
      p.status.containerStatuses = [
        { name: "main", image: "busybox", imageID: "", ready: false, restartCount: 0, state: { waiting: { reason: "PodInitializing" } } },
      ];
    });
    expect(containerStateOf(pod, options()).failure).toBe("image-pull");
    expect(containerStateOf(pod, options({ now: EARLY })).status).toBe("created");
  });

  it("accepts Date timestamps (client-node deserialized objects) for the graces", () => {
    const pod = variant("err-image-pull", (p) => {
      if (p.status) p.status.startTime = new Date("2026-11-28T21:40:09Z");
    });
    expect(containerStateOf(pod, options({ now: EARLY })).status).toBe("created");
    expect(containerStateOf(pod, options()).status).toBe("exited");
  });

  it("selects the container by name", () => {
    const pod = variant("running", (p) => {
      p.status?.containerStatuses?.unshift({ name: "sidecar", image: "x", imageID: "", ready: false, restartCount: 0, state: { terminated: { exitCode: 9 } } });
    });
    expect(containerStateOf(pod, options()).status).toBe("running");
    expect(containerStateOf(pod, options({ containerName: "sidecar" })).exitCode).toBe(9);
  });

  it("reads a pod without status as created, waiting for the scheduler", () => {
    const pod: V1Pod = { metadata: { name: "new" }, spec: { containers: [{ name: "main", image: "x" }] } };
    expect(containerStateOf(pod, options())).toMatchObject({ status: "created", terminal: false, waiting: "Pending: waiting for the scheduler" });
  });
});

describe("termination messages", () => {
  const digest = `sha256:${"ab".repeat(32)}`;
  it("extracts the message and the digest a builder wrote", () => {
    const pod = variant("succeeded", (p) => (terminated(p).message = `${digest}\n`));
    expect(terminationMessage(pod)).toBe(digest);
    expect(containerStateOf(pod, options()).terminationMessage).toBe(digest);
    expect(digestFromTerminationMessage(`image pushed\n${digest}`)).toBe(digest);
  });
  it("is null when there is none", () => {
    expect(terminationMessage(loadPod("succeeded"))).toBeNull();
    expect(terminationMessage(loadPod("running"))).toBeNull();
    expect(digestFromTerminationMessage("no digest here")).toBeNull();
    expect(digestFromTerminationMessage(null)).toBeNull();
  });
  it("falls back to the last terminated state", () => {
    expect(terminationMessage(loadPod("evicted"))).toBe("The container could not be located when the pod was terminated");
  });
});

describe("RunContainerError", () => {
  it("uses docker's 127 for a missing command, and 125 for other config errors", () => {
    const pod = variant("create-config-error", (p) => {
      const waiting = p.status?.containerStatuses?.[0]?.state?.waiting;
      if (waiting) Object.assign(waiting, { reason: "RunContainerError", message: 'exec: "nope": executable file not found in $PATH' });
    });
    expect(containerStateOf(pod, options())).toMatchObject({ exitCode: 127, failure: "create-config" });
    expect(containerStateOf(loadPod("create-config-error"), options()).exitCode).toBe(125);
  });
});
