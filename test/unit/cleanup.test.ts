// gc's decisions against the fake cluster: which of our objects it deletes (and how), what it leaves alone,
// and which failures stop it.
import type { V1ConfigMap, V1Job, V1Pod, V1Secret } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { collectGarbage, type GcOptions } from "../../src/cleanup.js";
import { KubernetesApiError } from "../../src/errors.js";
import { ANNOTATION_CREATED_AT, engineLabels, type Role } from "../../src/pods/labels.js";
import { apiError, FakeCluster, jobPod } from "../support/fake-cluster.js";

const NOW = new Date("2026-01-01T12:00:00Z");
const DEADLINE = 3600;

/** Metadata of one of our objects created `ageSeconds` before NOW. */
function ours(name: string, role: Role, ageSeconds: number, instance = "i1"): { name: string; labels: Record<string, string>; annotations: Record<string, string> } {
  return {
    name,
    labels: engineLabels({ instance, role }),
    annotations: { [ANNOTATION_CREATED_AT]: new Date(NOW.getTime() - ageSeconds * 1000).toISOString() },
  };
}

async function builderJob(fake: FakeCluster, name: string, ageSeconds: number, finished: "Complete" | "Failed" | null): Promise<V1Job> {
  const job = await fake.jobs.create({ metadata: ours(name, "builder", ageSeconds), spec: { template: { spec: { containers: [] } } } });
  if (finished) fake.setJobStatus(name, { conditions: [{ type: finished, status: "True" }] });
  return job;
}

function runPod(fake: FakeCluster, name: string, ageSeconds: number, phase: "Running" | "Succeeded" | "Failed"): V1Pod {
  return fake.putPod({ metadata: ours(name, "container", ageSeconds), spec: { containers: [{ name: "run", image: "x" }] }, status: { phase } });
}

/** A builder pod of Job `job` (owned by it, as the Job controller makes it). */
function builderPod(fake: FakeCluster, job: V1Job, phase: "Running" | "Failed"): V1Pod {
  const name = job.metadata?.name ?? "";
  const pod = jobPod(name, "builder", phase === "Running" ? "running" : { exitCode: 1 });
  pod.metadata = {
    ...pod.metadata,
    labels: { ...pod.metadata?.labels, ...engineLabels({ instance: "i1", role: "builder" }) },
    annotations: job.metadata?.annotations ?? {},
    ownerReferences: [{ apiVersion: "batch/v1", kind: "Job", name, uid: job.metadata?.uid ?? "" }],
  };
  return fake.putPod(pod);
}

async function credentials(fake: FakeCluster, name: string, ageSeconds: number, owner: V1Job | null): Promise<V1Secret> {
  const ownerReferences = owner ? [{ apiVersion: "batch/v1", kind: "Job", name: owner.metadata?.name ?? "", uid: owner.metadata?.uid ?? "" }] : undefined;
  return fake.secrets.create({ metadata: { ...ours(name, "builder", ageSeconds), ...(ownerReferences ? { ownerReferences } : {}) }, type: "kubernetes.io/dockerconfigjson" });
}

function gc(fake: FakeCluster, options: GcOptions = {}): ReturnType<typeof collectGarbage> {
  return collectGarbage(fake, { ...options, buildDeadlineSeconds: DEADLINE, now: NOW });
}

const deletes = (fake: FakeCluster): string[] => fake.calls.filter((c) => c.startsWith("delete "));

describe("collectGarbage", () => {
  it("deletes finished builder Jobs (with their pods) and finished run pods; what still runs stays", async () => {
    const fake = new FakeCluster();
    const done = await builderJob(fake, "kce-build-done", 120, "Complete");
    builderPod(fake, done, "Failed");
    await builderJob(fake, "kce-build-failed", 120, "Failed");
    const live = await builderJob(fake, "kce-build-live", 120, null);
    builderPod(fake, live, "Running");
    runPod(fake, "kce-run-exited", 60, "Succeeded");
    runPod(fake, "kce-run-crashed", 60, "Failed");
    runPod(fake, "kce-run-serving", 7 * 86_400, "Running");

    const actions = await gc(fake);

    expect(actions).toEqual([
      { kind: "Job", name: "kce-build-done", why: "finished job" },
      { kind: "Job", name: "kce-build-failed", why: "finished job" },
      { kind: "Pod", name: "kce-run-exited", why: "finished pod" },
      { kind: "Pod", name: "kce-run-crashed", why: "finished pod" },
    ]);
    expect(deletes(fake)).toEqual(["delete jobs/kce-build-done", "delete jobs/kce-build-failed", "delete pods/kce-run-exited", "delete pods/kce-run-crashed"]);
    // A Job goes with its pods (background propagation); a run pod at once, without a grace period.
    expect(fake.deleteOptions.get("jobs/kce-build-done")).toMatchObject({ propagationPolicy: "Background" });
    expect(fake.deleteOptions.get("pods/kce-run-exited")).toMatchObject({ gracePeriodSeconds: 0 });
    expect(fake.names("pods")).toEqual(["kce-build-live-pod", "kce-run-serving"]);
    expect(fake.names("jobs")).toEqual(["kce-build-live"]);
  });

  it("lists our objects by label only (and only this instance's when asked)", async () => {
    const fake = new FakeCluster();
    runPod(fake, "kce-run-mine", 60, "Succeeded");
    fake.putPod({ metadata: { ...ours("kce-run-other", "container", 60, "i2") }, status: { phase: "Succeeded" } });
    fake.putPod({ metadata: { name: "not-ours", labels: { app: "x" } }, status: { phase: "Succeeded" } });

    expect((await gc(fake, { instance: "i1" })).map((a) => a.name)).toEqual(["kce-run-mine"]);
    expect(fake.names("pods")).toEqual(["kce-run-other", "not-ours"]);
    expect((await gc(fake)).map((a) => a.name)).toEqual(["kce-run-other"]);
    expect(fake.names("pods")).toEqual(["not-ours"]);
  });

  it("deletes a builder stuck past its deadline (+60 s), not one within it", async () => {
    const fake = new FakeCluster();
    await builderJob(fake, "kce-build-stuck", DEADLINE + 61, null);
    await builderJob(fake, "kce-build-slow", DEADLINE + 60, null);

    const actions = await gc(fake);

    expect(actions).toEqual([{ kind: "Job", name: "kce-build-stuck", why: "builder past its deadline" }]);
    expect(deletes(fake)).toEqual(["delete jobs/kce-build-stuck"]);
    expect(fake.names("jobs")).toEqual(["kce-build-slow"]);
  });

  it("deletes credential Secrets whose Job was never created (older than 5 min); owned or young ones stay", async () => {
    const fake = new FakeCluster();
    const live = await builderJob(fake, "kce-build-live", 600, null);
    await credentials(fake, "kce-build-orphan-registry-1", 600, null);
    await credentials(fake, "kce-build-young-registry-2", 60, null);
    await credentials(fake, "kce-build-live-registry-3", 600, live);

    const actions = await gc(fake);

    expect(actions).toEqual([{ kind: "Secret", name: "kce-build-orphan-registry-1", why: "credentials of a build that never started" }]);
    expect(deletes(fake)).toEqual(["delete secrets/kce-build-orphan-registry-1"]);
    expect(fake.names("secrets")).toEqual(["kce-build-young-registry-2", "kce-build-live-registry-3"]);
  });

  it("with all: deletes everything of ours, running or not; what went with its owner is no error", async () => {
    const fake = new FakeCluster();
    const live = await builderJob(fake, "kce-build-live", 60, null);
    builderPod(fake, live, "Running");
    await credentials(fake, "kce-build-live-registry-1", 60, live);
    runPod(fake, "kce-run-serving", 60, "Running");
    const configMap: V1ConfigMap = { metadata: ours("kce-config", "container", 60) };
    await fake.configMaps.create(configMap);
    fake.putPod({ metadata: { name: "not-ours" }, status: { phase: "Running" } });

    const actions = await gc(fake, { all: true });

    expect(actions.map((a) => `${a.kind}/${a.name}`)).toEqual([
      "Job/kce-build-live",
      "Pod/kce-build-live-pod",
      "Pod/kce-run-serving",
      "Secret/kce-build-live-registry-1",
      "ConfigMap/kce-config",
    ]);
    expect(actions.every((a) => a.why === "--all")).toBe(true);
    // The Job's pod and Secret went with the Job: their own deletes find nothing, which is fine.
    expect(deletes(fake)).toEqual([
      "delete jobs/kce-build-live",
      "delete pods/kce-build-live-pod",
      "delete pods/kce-run-serving",
      "delete secrets/kce-build-live-registry-1",
      "delete configmaps/kce-config",
    ]);
    expect(fake.names("pods")).toEqual(["not-ours"]);
    expect(fake.names("jobs")).toEqual([]);
    expect(fake.names("secrets")).toEqual([]);
    expect(fake.names("configmaps")).toEqual([]);
  });

  it("with olderThanSeconds: only what is at least that old", async () => {
    const fake = new FakeCluster();
    runPod(fake, "kce-run-old", 7200, "Succeeded");
    runPod(fake, "kce-run-recent", 60, "Succeeded");
    expect((await gc(fake, { olderThanSeconds: 3600 })).map((a) => a.name)).toEqual(["kce-run-old"]);
    expect(fake.names("pods")).toEqual(["kce-run-recent"]);
  });

  it("dry run: reports what it would delete and deletes nothing", async () => {
    const fake = new FakeCluster();
    await builderJob(fake, "kce-build-done", 120, "Complete");
    runPod(fake, "kce-run-exited", 60, "Succeeded");
    await credentials(fake, "kce-build-orphan-registry-1", 600, null);

    const actions = await gc(fake, { dryRun: true, all: true });

    expect(actions.map((a) => a.name)).toEqual(["kce-build-done", "kce-run-exited", "kce-build-orphan-registry-1"]);
    expect(deletes(fake)).toEqual([]);
    expect(fake.names("jobs")).toEqual(["kce-build-done"]);
    expect(fake.names("pods")).toEqual(["kce-run-exited"]);
    expect(fake.names("secrets")).toEqual(["kce-build-orphan-registry-1"]);
  });

  it("an object deleted by someone else between the list and the delete is no error, and gc goes on", async () => {
    const fake = new FakeCluster();
    runPod(fake, "kce-run-a", 60, "Succeeded");
    runPod(fake, "kce-run-b", 60, "Succeeded");
    const list = fake.pods.list;
    fake.pods.list = async (selector) => {
      const listed = await list(selector);
      fake.remove("pods", "kce-run-a"); // another client's gc, right after our list
      return listed;
    };

    const actions = await gc(fake);

    expect(actions.map((a) => a.name)).toEqual(["kce-run-a", "kce-run-b"]);
    expect(deletes(fake)).toEqual(["delete pods/kce-run-a", "delete pods/kce-run-b"]);
    expect(fake.names("pods")).toEqual([]);
  });

  it("any other delete failure stops gc with that error: nothing after it is deleted", async () => {
    const fake = new FakeCluster();
    await builderJob(fake, "kce-build-done", 120, "Complete");
    runPod(fake, "kce-run-exited", 60, "Succeeded");
    fake.failNext("delete", "jobs", apiError("delete", "jobs", 403, "Forbidden"));

    const error = await gc(fake).then(() => null, (err: unknown) => err);

    expect(error).toBeInstanceOf(KubernetesApiError);
    expect(error).toMatchObject({ statusCode: 403, reason: "Forbidden" });
    expect(deletes(fake)).toEqual(["delete jobs/kce-build-done"]);
    expect(fake.names("pods")).toEqual(["kce-run-exited"]);
  });

  it("a list that fails is the error, before anything is deleted", async () => {
    const fake = new FakeCluster();
    runPod(fake, "kce-run-exited", 60, "Succeeded");
    fake.failNext("list", "secrets", apiError("list", "secrets", 403, "Forbidden"));
    await expect(gc(fake)).rejects.toMatchObject({ statusCode: 403, resource: "secrets" });
    expect(deletes(fake)).toEqual([]);
  });
});
