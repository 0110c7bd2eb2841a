// PodContainer's decisions against the fake cluster: which calls it makes to start, forward, kill, remove and
// clean up after a failed start, and how it reads a pod deleted from outside.
import type { V1ContainerState, V1Pod } from "@kubernetes/client-node";
import { afterEach, describe, expect, it } from "vitest";
import { PodContainer, type StartContainer } from "../../src/container.js";
import { CancelledError, ContainerNotFoundError, ImagePullError } from "../../src/errors.js";
import { RUN_CONTAINER_NAME } from "../../src/pods/run-pod.js";
import { apiError, FakeCluster } from "../support/fake-cluster.js";

const NAME = "kce-run-demo-1234";

function spec(): V1Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: NAME, labels: { "app.kubernetes.io/managed-by": "kube-container-engine" } },
    spec: { restartPolicy: "Never", containers: [{ name: RUN_CONTAINER_NAME, image: "registry:5000/demo:1" }] },
  };
}

/** The pod as the kubelet reports it in `state` (phase derived from it). */
function reported(pod: V1Pod, state: V1ContainerState, phase?: string): V1Pod {
  const derived = phase ?? (state.running ? "Running" : state.terminated ? (state.terminated.exitCode === 0 ? "Succeeded" : "Failed") : "Pending");
  return {
    ...pod,
    status: {
      phase: derived,
      startTime: new Date(),
      containerStatuses: [{ name: RUN_CONTAINER_NAME, image: "registry:5000/demo:1", imageID: "", ready: !!state.running, restartCount: 0, state }],
    },
  };
}

const running = (): V1ContainerState => ({ running: { startedAt: new Date() } });
const exitedWith = (exitCode: number): V1ContainerState => ({
  terminated: { exitCode, reason: exitCode === 0 ? "Completed" : "Error", startedAt: new Date(), finishedAt: new Date() },
});

let fake: FakeCluster;
const warnings: string[] = [];

function start(overrides: Partial<StartContainer> = {}): Promise<PodContainer> {
  return PodContainer.start({
    api: fake,
    spec: spec(),
    forwards: [],
    graces: { pullGraceSeconds: 0, unschedulableGraceSeconds: 0 },
    warn: (m) => warnings.push(m),
    ...overrides,
  });
}

/** Plays the kubelet: the created pod starts running. */
function kubeletRuns(): void {
  fake.onPodCreated = (pod) => queueMicrotask(() => fake.putPod(reported(pod, running())));
}

/** Waits until the fake recorded `call` (background work runs on later ticks). */
async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 5));
  expect(check()).toBe(true);
}

afterEach(() => {
  warnings.length = 0;
});

describe("PodContainer.start", () => {
  it("creates the pod once and resolves when its container runs, with its ports forwarded", async () => {
    fake = new FakeCluster();
    kubeletRuns();
    const c = await start({ forwards: [{ remotePort: 8888, localPort: 0, localAddress: "127.0.0.1" }] });
    expect(c.status).toBe("running");
    expect(fake.calls.filter((x) => x.startsWith("create"))).toEqual([`create pods/${NAME}`]);
    expect(fake.calls).toContain(`portforward pods/${NAME}`);
    expect(c.ports).toEqual({ "8888/tcp": { host: "127.0.0.1", port: 40_000 } });
  });

  it("an image that cannot be pulled: resolves exited 125 with the reason, no forward, the pod kept for inspection", async () => {
    fake = new FakeCluster();
    fake.onPodCreated = (pod) =>
      queueMicrotask(() => fake.putPod(reported(pod, { waiting: { reason: "ErrImagePull", message: "not found" } })));
    const c = await start({ forwards: [{ remotePort: 8888 }] });
    expect(c.status).toBe("exited");
    expect(c.exitcode).toBe(125);
    expect(c.reason).toMatch(/ErrImagePull/);
    expect(c.error).toBeInstanceOf(ImagePullError);
    expect(fake.calls).not.toContain(`portforward pods/${NAME}`);
    expect(fake.calls).not.toContain(`delete pods/${NAME}`);
  });

  it("aborted while the pod waits: CancelledError, and the pod it created is deleted", async () => {
    fake = new FakeCluster();
    const ctrl = new AbortController();
    fake.onPodCreated = () => setTimeout(() => ctrl.abort(), 10);
    await expect(start({ signal: ctrl.signal })).rejects.toBeInstanceOf(CancelledError);
    expect(fake.calls).toContain(`delete pods/${NAME}`);
    expect(await fake.pods.get(NAME)).toBeNull();
  });

  it("a port-forward that fails: the error is thrown and the pod deleted", async () => {
    fake = new FakeCluster();
    kubeletRuns();
    fake.failNext("portforward", "pods", apiError("portforward", "pods", 403, "Forbidden"));
    await expect(start({ forwards: [{ remotePort: 8888 }] })).rejects.toMatchObject({ statusCode: 403 });
    expect(await fake.pods.get(NAME)).toBeNull();
  });

  it("a failed create leaves nothing to clean up and makes no other call", async () => {
    fake = new FakeCluster();
    fake.failNext("create", "pods", apiError("create", "pods", 403, "Forbidden"));
    await expect(start()).rejects.toMatchObject({ statusCode: 403 });
    expect(fake.calls).toEqual([`create pods/${NAME}`]);
  });
});

describe("a running PodContainer", () => {
  it("wait() resolves with the exit code; the forward is closed when the container ends", async () => {
    fake = new FakeCluster();
    kubeletRuns();
    const c = await start({ forwards: [{ remotePort: 8888 }] });
    expect(fake.openForwards.has(NAME)).toBe(true);
    const pod = await fake.pods.get(NAME);
    fake.putPod(reported(pod ?? spec(), exitedWith(3)));
    expect(await c.wait()).toEqual({ exitCode: 3 });
    await until(() => !fake.openForwards.has(NAME));
  });

  it("kill() deletes with a 1 s grace and keeps the log and the final state readable", async () => {
    fake = new FakeCluster();
    kubeletRuns();
    const c = await start();
    fake.appendLog(NAME, "before-kill");
    await c.kill();
    expect(fake.deleteOptions.get(`pods/${NAME}`)).toMatchObject({ gracePeriodSeconds: 1 });
    expect(c.status).toBe("exited");
    expect(c.exitcode).toBe(137);
    expect(await c.logs()).toBe("before-kill\n");
    expect(await c.wait()).toEqual({ exitCode: 137 });
  });

  it("stop({timeout}) deletes with that grace", async () => {
    fake = new FakeCluster();
    kubeletRuns();
    const c = await start();
    await c.stop({ timeout: 7 });
    expect(fake.deleteOptions.get(`pods/${NAME}`)).toMatchObject({ gracePeriodSeconds: 7 });
    expect(c.status).toBe("exited");
  });

  it("remove() deletes once; a second remove() makes no call; reload() after it throws ContainerNotFoundError", async () => {
    fake = new FakeCluster();
    kubeletRuns();
    const c = await start();
    await c.remove();
    await c.remove();
    expect(fake.calls.filter((x) => x === `delete pods/${NAME}`)).toHaveLength(1);
    await expect(c.reload()).rejects.toBeInstanceOf(ContainerNotFoundError);
    await expect(c.wait()).rejects.toBeInstanceOf(ContainerNotFoundError);
  });

  it("a pod deleted from outside: wait() resolves 137 and the error says it was deleted", async () => {
    fake = new FakeCluster();
    kubeletRuns();
    const c = await start();
    fake.remove("pods", NAME);
    expect(await c.wait()).toEqual({ exitCode: 137 });
    expect(c.error).toBeInstanceOf(ContainerNotFoundError);
    await c.reload(); // gone is a state, not an error
    expect(c.status).toBe("exited");
  });

  it("with removeOnExit: the pod is deleted after it exits, and its log and exit code stay readable", async () => {
    fake = new FakeCluster();
    kubeletRuns();
    const c = await start({ removeOnExit: true });
    fake.appendLog(NAME, "done");
    const pod = await fake.pods.get(NAME);
    fake.putPod(reported(pod ?? spec(), exitedWith(0)));
    await until(() => fake.calls.includes(`delete pods/${NAME}`));
    expect(await c.wait()).toEqual({ exitCode: 0 });
    expect(await c.logs()).toBe("done\n");
  });

  it("logs() of a pod that is gone is empty, not an error", async () => {
    fake = new FakeCluster();
    kubeletRuns();
    const c = await start();
    fake.failNext("read", "pods/log", apiError("get", "pods/log", 404, "NotFound"));
    expect(await c.logs()).toBe("");
  });
});
