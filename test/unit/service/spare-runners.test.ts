// Warm runners against the fake cluster: which spares are kept, replaced, claimed; and a build that claims
// one (no pod of its own, the Job created after the claim).
import type { V1Pod } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { RUNNER_CONTAINER, type RunnerBuild, type RunnerPodSettings } from "../../../src/service/runner-job.js";
import { SparePool } from "../../../src/service/spare-runners.js";
import { apiError, FakeCluster } from "../../support/fake-cluster.js";

const SETTINGS: RunnerPodSettings = {
  namespace: "fake-ns",
  runnerImage: "runner:2",
  command: ["python", "-m", "repo2docker_kce.runner"],
  serviceAccountName: "kce",
  env: {},
  resources: {},
  maxRepoBytes: 1024,
  instance: "svc",
  createdAt: new Date("2026-01-01T00:00:00Z"),
};

const BUILD: RunnerBuild = {
  name: "build-x-abc-12",
  repoUrl: "https://example.org/x.git",
  commit: "c".repeat(40),
  imageName: "reg/x:c",
  resolve: [],
  userName: "jovyan",
  userId: 1000,
};

function pool(cluster: FakeCluster, now = Date.now(), target = 2): SparePool {
  return new SparePool({
    api: cluster,
    settings: async () => SETTINGS,
    target,
    maxWaitSeconds: 600,
    buildTimeoutSeconds: 3600,
    log: () => undefined,
    now: () => now,
  });
}

/** The kubelet starting a spare's container (it then waits for its assignment). */
function start(cluster: FakeCluster, pod: V1Pod, options: { image?: string; ageSeconds?: number; terminated?: boolean } = {}): V1Pod {
  const created = new Date(Date.now() - (options.ageSeconds ?? 0) * 1000);
  return cluster.putPod({
    ...pod,
    metadata: { ...pod.metadata, creationTimestamp: created },
    spec: { ...pod.spec, containers: (pod.spec?.containers ?? []).map((c) => ({ ...c, image: options.image ?? c.image })) },
    status: {
      phase: options.terminated ? "Succeeded" : "Running",
      containerStatuses: [
        {
          name: RUNNER_CONTAINER,
          image: "",
          imageID: "",
          ready: !options.terminated,
          restartCount: 0,
          state: options.terminated ? { terminated: { exitCode: 0 } } : { running: { startedAt: created } },
        },
      ],
    },
  });
}

describe("SparePool", () => {
  it("starts spares up to the target: waiting runners, labelled, bounded server-side", async () => {
    const cluster = new FakeCluster();
    await pool(cluster).fill();
    const spares = await cluster.pods.list("kube-container-engine/role=spare");
    expect(spares).toHaveLength(2);
    const pod = spares[0] as V1Pod;
    const container = pod.spec?.containers[0];
    expect(container?.image).toBe("runner:2");
    expect(container?.args).toEqual(["--wait-for-assignment", "--max-wait", "600"]);
    expect(container?.env).toEqual(expect.arrayContaining([{ name: "POD_NAME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } }]));
    expect(pod.spec?.activeDeadlineSeconds).toBe(600 + 3600 + 60);
    expect(pod.metadata?.labels?.["app.kubernetes.io/managed-by"]).toBe("kube-container-engine");
    await pool(cluster).fill();
    expect(await cluster.pods.list("kube-container-engine/role=spare")).toHaveLength(2);
  });

  it("replaces spares that ended, run another image or are about to give up waiting", async () => {
    const cluster = new FakeCluster();
    await pool(cluster, Date.now(), 4).fill();
    const [a, b, c, d] = await cluster.pods.list("kube-container-engine/role=spare");
    start(cluster, a as V1Pod, { terminated: true });
    start(cluster, b as V1Pod, { image: "runner:1" });
    start(cluster, c as V1Pod, { ageSeconds: 590 });
    start(cluster, d as V1Pod);
    await pool(cluster, Date.now(), 4).fill();
    const names = (await cluster.pods.list("kube-container-engine/role=spare")).map((p) => p.metadata?.name);
    expect(names).toHaveLength(4);
    expect(names).toContain(d?.metadata?.name);
    for (const gone of [a, b, c]) expect(names).not.toContain(gone?.metadata?.name);
  });

  it("claims a started spare in one conditional update: the build's labels and its arguments", async () => {
    const cluster = new FakeCluster();
    const p = pool(cluster, Date.now(), 1);
    await p.fill();
    const [spare] = await cluster.pods.list("kube-container-engine/role=spare");
    start(cluster, spare as V1Pod);
    const claimed = await p.claim(BUILD, ["--repo", BUILD.repoUrl]);
    expect(claimed).toBe(spare?.metadata?.name);
    const pod = await cluster.pods.get(claimed ?? "");
    expect(pod?.metadata?.labels).toMatchObject({ "kube-container-engine/role": "runner", "kube-container-engine/build": BUILD.name });
    expect(pod?.metadata?.annotations?.["kube-container-engine/assignment"]).toBe(JSON.stringify(["--repo", BUILD.repoUrl]));
    await p.settled();
    expect(await cluster.pods.list("kube-container-engine/role=spare")).toHaveLength(1); // refilled
  });

  it("does not claim a spare whose container has not started, nor one another claim changed first", async () => {
    const cluster = new FakeCluster();
    const p = pool(cluster, Date.now(), 2);
    await p.fill();
    const [first, second] = await cluster.pods.list("kube-container-engine/role=spare");
    start(cluster, first as V1Pod);
    cluster.failNext("patch", "pods", apiError("patch", "pods", 409, "Conflict"));
    expect(await p.claim(BUILD, [])).toBeNull();
    expect(cluster.calls.filter((c) => c.startsWith("patch pods/"))).toEqual([`patch pods/${first?.metadata?.name}`]);
    void second;
  });

  it("claims nothing with a target of 0", async () => {
    const cluster = new FakeCluster();
    expect(await pool(cluster, Date.now(), 0).claim(BUILD, [])).toBeNull();
    expect(cluster.calls).toEqual([]);
  });
});
