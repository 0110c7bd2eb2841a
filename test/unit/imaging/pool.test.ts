// The warm BuildKit pool's decisions against a fake cluster and a fake exec: which daemon a build goes to,
// starting daemons on demand, one build per daemon, waiting when all are busy, and what happens when a daemon
// stops or dies under a build.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { V1Pod } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { createBuildContext, type BuildContext } from "../../../src/imaging/context.js";
import { BuildkitPool, digestOf, leaseOf, type PoolBuild } from "../../../src/imaging/pool/pool.js";
import { slotOrder } from "../../../src/imaging/pool/routing.js";
import {
  ANNOTATION_LEASE,
  BUILD_SCRIPT,
  daemonPod,
  daemonPodName,
  EXIT_DAEMON_STOPPING,
  poolBuildkitdConfig,
  type DaemonPodInput,
} from "../../../src/imaging/pool/spec.js";
import { BuildError } from "../../../src/errors.js";
import type { ExecOptions, ExecResult } from "../../../src/kube/stdin.js";
import { FakeCluster } from "../../support/fake-cluster.js";

const DIGEST = `sha256:${"d".repeat(64)}`;
const DAEMON: Omit<DaemonPodInput, "slot" | "createdAt"> = {
  name: "test",
  image: "reg/buildkit:rootless",
  maxDaemons: 2,
  idleSeconds: 600,
  lifetimeSeconds: 86_400,
  drainSeconds: 600,
  memory: "2Gi",
  cacheBytes: 10 * 2 ** 30,
  namespace: "fake-ns",
  instance: "pool",
  extraLabels: {},
  insecureRegistries: ["reg:5000"],
  nodeSelector: {},
  tolerations: [],
};

async function context(): Promise<BuildContext> {
  const dir = mkdtempSync(join(tmpdir(), "kce-pool-test-"));
  writeFileSync(join(dir, "Dockerfile"), "FROM scratch\n");
  return createBuildContext({ path: dir });
}

/** The kubelet: a created daemon becomes ready (its container runs). */
function kubelet(cluster: FakeCluster): void {
  cluster.onPodCreated = (pod) => {
    queueMicrotask(() => cluster.putPod(ready(pod)));
  };
}

function ready(pod: V1Pod, extra: Partial<V1Pod["metadata"]> = {}): V1Pod {
  return {
    ...pod,
    metadata: { ...pod.metadata, ...extra },
    status: {
      phase: "Running",
      conditions: [{ type: "Ready", status: "True" }],
      containerStatuses: [{ name: "buildkitd", image: "", imageID: "", ready: true, restartCount: 0, state: { running: {} } }],
    },
  };
}

type Execute = (o: ExecOptions) => Promise<ExecResult>;

/** An exec that reads the context, prints `lines` and exits with `code`. */
function execPrinting(lines: string[], code = 0, seen: ExecOptions[] = []): Execute {
  return async (o) => {
    seen.push(o);
    for await (const _chunk of o.source as AsyncIterable<Uint8Array>) {
      // the context is consumed as the daemon's tar would
    }
    for (const line of lines) o.onOutput?.("stdout", Buffer.from(`${line}\n`));
    return { exitCode: code, status: null, stdout: Buffer.alloc(0), stderr: Buffer.alloc(0), bytesSent: 0, protocol: "v5.channel.k8s.io" };
  };
}

function pool(cluster: FakeCluster, exec: Execute, daemon = DAEMON): BuildkitPool {
  return new BuildkitPool({ api: cluster, exec, daemon, buildSeconds: 3600, log: () => undefined, busyRecheckMs: 50 });
}

async function build(p: BuildkitPool, identity = "reg/app", extra: Partial<PoolBuild> = {}): Promise<{ lines: string[]; pod: string; digest: string | null }> {
  const lines: string[] = [];
  const run = p.build({ identity, buildId: `b${Math.random().toString(36).slice(2, 8)}`, buildctlArgs: ["--progress=plain"], context: await context(), compression: 0, phase: () => undefined, ...extra });
  for (;;) {
    const step = await run.next();
    if (step.done) return { lines, ...step.value };
    lines.push(step.value);
  }
}

describe("routing", () => {
  it("orders all slots, the same way for the same identity, differently for others", () => {
    const a = slotOrder("reg/app", 8);
    expect([...a].sort()).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(slotOrder("reg/app", 8)).toEqual(a);
    const firsts = new Set(Array.from({ length: 40 }, (_, i) => slotOrder(`reg/app-${i}`, 8)[0]));
    expect(firsts.size).toBeGreaterThan(3);
  });

  it("keeps an identity's preferred slot when the pool grows (rendezvous hashing)", () => {
    const moved = Array.from({ length: 100 }, (_, i) => `img-${i}`).filter((id) => {
      const small = slotOrder(id, 4)[0] as number;
      const large = slotOrder(id, 5)[0] as number;
      return large !== small && large !== 4;
    });
    expect(moved).toEqual([]);
  });
});

describe("daemon pod", () => {
  it("is a labelled, bounded, rootless buildkitd with a GC'd cache volume", () => {
    const pod = daemonPod({ ...DAEMON, slot: 1, createdAt: new Date(0), credentialsSecret: "reg-secret" });
    expect(pod.metadata?.name).toBe("kce-pool-test-1");
    expect(pod.metadata?.labels).toMatchObject({
      "app.kubernetes.io/managed-by": "kube-container-engine",
      "kube-container-engine/role": "pool",
      "kube-container-engine/pool": "test",
      "kube-container-engine/slot": "1",
    });
    const spec = pod.spec;
    expect(spec?.restartPolicy).toBe("Never");
    expect(spec?.activeDeadlineSeconds).toBe(86_400);
    expect(spec?.terminationGracePeriodSeconds).toBe(600);
    const c = spec?.containers[0];
    expect(c?.securityContext).toMatchObject({ runAsUser: 1000, runAsNonRoot: true, seccompProfile: { type: "Unconfined" } });
    expect(c?.securityContext?.privileged).toBeUndefined();
    expect(c?.resources?.limits).toEqual({ memory: "2Gi" });
    expect(c?.readinessProbe?.exec?.command).toEqual(["buildctl", "debug", "workers"]);
    expect(spec?.volumes?.find((v) => v.name === "cache")?.emptyDir?.sizeLimit).toBe(String(10 * 2 ** 30));
    expect(c?.env).toContainEqual({ name: "DOCKER_CONFIG", value: "/home/user/.kce-docker" });
    expect(c?.env).toContainEqual({ name: "KCE_IDLE_SECONDS", value: "600" });
  });

  it("collects garbage below the volume's size and reaches the insecure registries over HTTP", () => {
    const toml = poolBuildkitdConfig({ cacheBytes: 10 * 2 ** 30, insecureRegistries: ["b:5000", "a:5000", "a:5000"] });
    expect(toml).toContain('maxUsedSpace = "8192MB"');
    expect(toml).toContain('reservedSpace = "2048MB"');
    expect(toml.match(/\[registry\."a:5000"\]/g)).toHaveLength(1);
    expect(toml.indexOf('"a:5000"')).toBeLessThan(toml.indexOf('"b:5000"'));
  });
});

describe("BuildkitPool", () => {
  it("starts the preferred daemon on demand (leased at creation), streams the build, releases the lease", async () => {
    const cluster = new FakeCluster();
    kubelet(cluster);
    const seen: ExecOptions[] = [];
    const out = await build(pool(cluster, execPrinting(["#1 building", `kce-digest: ${DIGEST}`], 0, seen)));
    const preferred = daemonPodName("test", slotOrder("reg/app", 2)[0] as number);
    expect(out.pod).toBe(preferred);
    expect(out.digest).toBe(DIGEST);
    expect(out.lines).toContain("#1 building\n");
    expect(out.lines.some((l) => l.includes("kce-digest"))).toBe(false);
    expect(seen[0]?.command.slice(0, 4)).toEqual(["sh", "-c", BUILD_SCRIPT, "kce"]);
    expect(cluster.calls.filter((c) => c.startsWith("create pods/"))).toEqual([`create pods/${preferred}`]);
    expect((await cluster.pods.get(preferred))?.metadata?.annotations?.[ANNOTATION_LEASE]).toBeUndefined();
  });

  it("reuses a running daemon without creating one", async () => {
    const cluster = new FakeCluster();
    kubelet(cluster);
    await build(pool(cluster, execPrinting([])));
    await build(pool(cluster, execPrinting([])));
    expect(cluster.calls.filter((c) => c.startsWith("create pods/"))).toHaveLength(1);
  });

  it("sends a build to the next slot when the preferred daemon is busy, and gives a terminating daemon nothing", async () => {
    const cluster = new FakeCluster();
    kubelet(cluster);
    const [first, second] = slotOrder("reg/app", 2) as [number, number];
    const busy = daemonPod({ ...DAEMON, slot: first, createdAt: new Date() });
    cluster.putPod(ready(busy, { annotations: { [ANNOTATION_LEASE]: `other ${Date.now() + 60_000}` } }));
    const out = await build(pool(cluster, execPrinting([])));
    expect(out.pod).toBe(daemonPodName("test", second));
    const terminating = new FakeCluster();
    kubelet(terminating);
    terminating.putPod(ready(daemonPod({ ...DAEMON, slot: first, createdAt: new Date() }), { deletionTimestamp: new Date() }));
    expect((await build(pool(terminating, execPrinting([])))).pod).toBe(daemonPodName("test", second));
  });

  it("waits while every daemon is busy and the pool is full, then builds on the first one freed", async () => {
    const cluster = new FakeCluster();
    kubelet(cluster);
    for (const slot of [0, 1]) cluster.putPod(ready(daemonPod({ ...DAEMON, slot, createdAt: new Date() }), { annotations: { [ANNOTATION_LEASE]: `other ${Date.now() + 60_000}` } }));
    const pending = build(pool(cluster, execPrinting([])));
    await new Promise((r) => setTimeout(r, 50));
    expect(cluster.calls.some((c) => c.startsWith("create pods/"))).toBe(false);
    const freed = (await cluster.pods.get("kce-pool-test-1")) as V1Pod;
    await cluster.pods.patch("kce-pool-test-1", { metadata: { annotations: { [ANNOTATION_LEASE]: null } } });
    void freed;
    const out = await pending;
    expect(out.pod).toBe("kce-pool-test-1");
    expect(out.lines[0]).toMatch(/all 2 BuildKit daemon\(s\) of pool test are busy/);
  });

  it("sends a build refused by a stopping daemon (exit 75) to another daemon", async () => {
    const cluster = new FakeCluster();
    kubelet(cluster);
    let calls = 0;
    const exec: Execute = async (o) => {
      calls += 1;
      return execPrinting([], calls === 1 ? EXIT_DAEMON_STOPPING : 0)(o);
    };
    const out = await build(pool(cluster, exec));
    expect(calls).toBe(2);
    expect(out.pod).toBe(daemonPodName("test", slotOrder("reg/app", 2)[1] as number));
    expect(out.lines.some((l) => /stopped \(it is stopping\): building on another daemon/.test(l))).toBe(true);
  });

  it("aborts a build whose daemon dies and retries once; a second death is a BuildError, never a hang", async () => {
    const cluster = new FakeCluster();
    kubelet(cluster);
    const hanging: Execute = (o) =>
      new Promise((_resolve, reject) => {
        // The daemon dies while the exec waits: only the watch can end it.
        setTimeout(() => cluster.remove("pods", o.pod), 20);
        o.signal?.addEventListener("abort", () => reject(o.signal?.reason), { once: true });
      });
    const error = await build(pool(cluster, hanging)).then(() => null, (err: unknown) => err);
    expect(error).toBeInstanceOf(BuildError);
    expect((error as BuildError).reason).toBe("deleted");
    expect(String(error)).toMatch(/stopped during the build \(its pod was deleted\); it was tried 2 time/);
  });

  it("takes a build killed with its daemon (exit 137, pod gone) for a lost daemon, not a failed build", async () => {
    const cluster = new FakeCluster();
    kubelet(cluster);
    let calls = 0;
    const exec: Execute = async (o) => {
      calls += 1;
      if (calls === 1) {
        cluster.remove("pods", o.pod);
        return execPrinting(["#5 0.1 start"], 137)(o);
      }
      return execPrinting([], 0)(o);
    };
    const out = await build(pool(cluster, exec));
    expect(calls).toBe(2);
    expect(out.lines.some((l) => /building on another daemon/.test(l))).toBe(true);
  });

  it("reports a failing build with buildctl's last lines", async () => {
    const cluster = new FakeCluster();
    kubelet(cluster);
    const error = await build(pool(cluster, execPrinting(["#5 [2/2] RUN false", "ERROR: process \"/bin/sh -c false\" did not complete successfully: exit code: 1"], 1))).then(
      () => null,
      (err: unknown) => err,
    );
    expect(error).toBeInstanceOf(BuildError);
    expect((error as BuildError).reason).toBe("failed");
    expect(String(error)).toMatch(/did not complete successfully/);
  });

  it("replaces a daemon that ended, and retires one too close to its end for a whole build", async () => {
    const cluster = new FakeCluster();
    kubelet(cluster);
    const [first] = slotOrder("reg/app", 1) as [number];
    const ended = daemonPod({ ...DAEMON, maxDaemons: 1, slot: first, createdAt: new Date() });
    cluster.putPod({ ...ended, status: { phase: "Succeeded" } });
    const out = await build(pool(cluster, execPrinting([]), { ...DAEMON, maxDaemons: 1 }));
    expect(out.pod).toBe(daemonPodName("test", first));
    expect(cluster.calls.filter((c) => c === `delete pods/${daemonPodName("test", first)}`)).toHaveLength(1);
    const old = new FakeCluster();
    kubelet(old);
    old.putPod(ready(daemonPod({ ...DAEMON, slot: 0, createdAt: new Date() }), { creationTimestamp: new Date(Date.now() - 86_000_000) }));
    const fresh = await build(pool(old, execPrinting([]), { ...DAEMON, maxDaemons: 1 }), "x");
    expect(old.calls).toContain("delete pods/kce-pool-test-0"); // retired (it drains), then started anew
    expect(fresh.pod).toBe("kce-pool-test-0");
    expect(old.calls.filter((c) => c === "create pods/kce-pool-test-0")).toHaveLength(1);
  });
});

describe("leases and digests", () => {
  it.each([
    [`b1 ${Date.now() + 3_600_000}`, true],
    [`b1 ${Date.now() - 3_600_000}`, false],
    ["garbage", false],
  ])("leaseOf(%s)", (value, held) => {
    const pod: V1Pod = { metadata: { annotations: { [ANNOTATION_LEASE]: value } } };
    expect(leaseOf(pod, Date.now()) !== null).toBe(held);
  });

  it("digestOf", () => {
    expect(digestOf(`kce-digest: ${DIGEST}`)).toBe(DIGEST);
    expect(digestOf("kce-digest: ")).toBeNull();
    expect(digestOf(`echo kce-digest: ${DIGEST}`)).toBeNull();
  });
});
