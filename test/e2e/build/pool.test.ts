// The warm BuildKit pool (builder "buildkit-pool") on the real cluster, with the local cluster's rootless
// BuildKit image: builds go to long-running daemons started on demand; a rebuild reuses the daemon's cache; a
// daemon deleted mid-build sends the build elsewhere (no hang); a terminating daemon finishes its build and
// gets no new one; daemons stop when idle and start again on demand; cache mounts of two tenants do not see
// each other; `kce gc --all` leaves nothing.
import { randomBytes } from "node:crypto";
import type { V1Pod } from "@kubernetes/client-node";
import { afterAll, describe, expect, it } from "vitest";
import { BuildError, type KubernetesEngine, type PoolOptions } from "../../../src/index.js";
import { baseImage, collect } from "../engine/helpers.js";
import { env } from "../support/cluster-env.js";
import { contextDir, timed, useBuildScope } from "./helpers.js";
import { withinBound } from "../../support/measurements.js";

const scope = useBuildScope("pool");
const POOL = `p${randomBytes(3).toString("hex")}`;

// Before the scope's own check that nothing is left: the daemons this file started (idle ones stop by themselves
// after idleSeconds; do not wait for that).
afterAll(async () => {
  if (!scope.ns) return;
  await engine().gc({ all: true });
  const deadline = Date.now() + 120_000;
  while ((await daemons()).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 1_000));
});

function engine(pool: PoolOptions = {}): KubernetesEngine {
  return scope.ns.engine({
    builder: "buildkit-pool",
    builderImages: { buildkit: env("KCE_BUILDKIT_ROOTLESS_IMAGE") },
    pool: { name: POOL, maxDaemons: 2, idleSeconds: 25, memory: "1Gi", cacheSize: "4Gi", ...pool },
  });
}

async function daemons(): Promise<V1Pod[]> {
  const { admin } = scope.ns;
  const list = await admin.call("list", "pods", (o) =>
    admin.core.listNamespacedPod({ namespace: admin.namespace, labelSelector: `kube-container-engine/pool=${POOL}` }, o),
  );
  return list.items.filter((p) => !p.metadata?.deletionTimestamp && (p.status?.phase === "Running" || p.status?.phase === "Pending"));
}

/** Waits until none of the pool's daemons is being deleted or has ended (a slot that drains is skipped). */
async function poolSettled(): Promise<void> {
  const { admin } = scope.ns;
  const deadline = Date.now() + 90_000;
  for (;;) {
    const list = await admin.call("list", "pods", (o) =>
      admin.core.listNamespacedPod({ namespace: admin.namespace, labelSelector: `kube-container-engine/pool=${POOL}` }, o),
    );
    const leaving = list.items.filter((p) => p.metadata?.deletionTimestamp || p.status?.phase === "Succeeded" || p.status?.phase === "Failed");
    if (leaving.length === 0) return;
    if (Date.now() > deadline) throw new Error(`pool daemons still on their way out after 90 s: ${leaving.map((p) => p.metadata?.name).join(", ")}`);
    await new Promise((r) => setTimeout(r, 1_000));
  }
}

async function build(e: KubernetesEngine, repository: string, dockerfile: string, onLine?: (line: string) => void): Promise<{ lines: string[]; image: string }> {
  const stream = e.build({ tag: `kce-e2e/${repository}:1`, path: contextDir(scope.dir, { Dockerfile: dockerfile }) });
  const lines: string[] = [];
  for await (const line of stream) {
    lines.push(line);
    onLine?.(line);
  }
  return { lines, image: (await stream.result).image };
}

async function deletePod(name: string, graceSeconds?: number): Promise<void> {
  const { admin } = scope.ns;
  await admin.call("delete", "pods", (o) =>
    admin.core.deleteNamespacedPod({ name, namespace: admin.namespace, ...(graceSeconds !== undefined ? { gracePeriodSeconds: graceSeconds } : {}) }, o),
  );
}

async function runOutput(image: string): Promise<string> {
  const container = await scope.ns.engine({}).run(image);
  await container.wait();
  const out = await container.logs();
  await container.remove();
  return out;
}

describe("buildkit-pool", () => {
  it("builds on a daemon it starts on demand, without a pod per build; the image runs", async () => {
    const nonce = randomBytes(4).toString("hex");
    const podsBefore = scope.pods.names().length;
    const { lines, image } = await build(engine(), `pool-first-${nonce}`, `FROM ${baseImage()}\nRUN echo ${nonce} > /built\nCMD ["cat", "/built"]\n`);
    expect(lines.join("")).toMatch(/starting BuildKit daemon kce-pool-/);
    expect(await runOutput(image)).toBe(`${nonce}\n`);
    const created = scope.pods.names().slice(podsBefore);
    expect(created.every((n) => n.startsWith(`kce-pool-${POOL}-`) || n.startsWith("kce-run-"))).toBe(true);
  });

  it("a rebuild with one changed line reuses the daemon's cache for the steps before it", async () => {
    const repo = `pool-cache-${randomBytes(3).toString("hex")}`;
    const dockerfile = (last: string): string => `FROM ${baseImage()}\nRUN sleep 2 && echo slow > /slow\nRUN echo ${last} > /last\n`;
    const cold = await timed(() => build(engine(), repo, dockerfile("one")));
    const warm = await timed(() => build(engine(), repo, dockerfile("two")));
    expect(warm.value.lines.join("")).toMatch(/RUN sleep 2 && echo slow > \/slow[\s\S]*CACHED/);
    console.log(`pool cold ${cold.ms} ms, warm ${warm.ms} ms`);
  });

  it("a daemon deleted mid-build ends that attempt within seconds and the build completes on another daemon", async () => {
    const e = engine();
    let victim: string | null = null;
    let deletedAt = 0;
    const nonce = randomBytes(3).toString("hex");
    const result = await build(e, `pool-victim-${nonce}`, `FROM ${baseImage()}\nRUN echo start-${nonce} && sleep 8 && echo end > /x\n`, (line) => {
      const on = /building on BuildKit daemon (\S+)/.exec(line);
      if (on && victim === null) victim = on[1] as string;
      if (victim !== null && deletedAt === 0 && line.includes(`start-${nonce}`)) {
        deletedAt = Date.now();
        void deletePod(victim, 0);
      }
    });
    expect(deletedAt).toBeGreaterThan(0);
    expect(result.lines.join("")).toMatch(/stopped \(.*\): building on another daemon/);
    const retried = result.lines.map((l) => /building on BuildKit daemon (\S+)/.exec(l)?.[1]).filter(Boolean);
    expect(retried.at(-1)).not.toBe(victim);
    // The lost attempt was noticed quickly (the watch aborts the exec): not a hang, not a long timeout.
    withinBound("pool/daemon-deleted-to-retry", Date.now() - deletedAt, 45_000);
  });

  it("a terminating daemon finishes its build and gets no new one", async () => {
    const e = engine();
    const nonce = randomBytes(3).toString("hex");
    let first: string | null = null;
    let second: Promise<{ lines: string[]; image: string }> | null = null;
    const running = build(e, `pool-drain-${nonce}`, `FROM ${baseImage()}\nRUN echo drain-${nonce} && sleep 6 && echo ok > /x\n`, (line) => {
      const on = /building on BuildKit daemon (\S+)/.exec(line);
      if (on && first === null) first = on[1] as string;
      if (first !== null && second === null && line.includes(`drain-${nonce}`)) {
        // SIGTERM (graceful delete) while it builds; then a build of the same repository (same preferred daemon).
        second = deletePod(first).then(() => build(e, `pool-drain-${nonce}`, `FROM ${baseImage()}\nRUN echo other-${nonce} > /y\n`));
      }
    });
    const drained = await running;
    expect(drained.image).toContain(`pool-drain-${nonce}`);
    expect(second).not.toBeNull();
    const next = await (second as unknown as Promise<{ lines: string[] }>);
    const on = next.lines.map((l) => /building on BuildKit daemon (\S+)/.exec(l)?.[1]).filter(Boolean);
    expect(on).not.toContain(first);
  });

  it("two tenants' cache mounts do not see each other on the same daemon", async () => {
    // The previous test leaves a daemon terminating: a build whose preferred slot is still draining goes to the
    // other slot, and the next one back to its own (a fresh daemon) — so start once no daemon is on its way out.
    await poolSettled();
    const repo = `pool-tenants-${randomBytes(3).toString("hex")}`;
    const df = (mark: string): string =>
      `FROM ${baseImage()}\nRUN --mount=type=cache,target=/cache,id=shared sh -c 'echo seen: $(ls /cache | tr "\\n" " "); touch /cache/${mark}'\n`;
    const a = await build(engine({ tenant: "tenant-a" }), repo, df(`a-${randomBytes(2).toString("hex")}`));
    const b = await build(engine({ tenant: "tenant-b" }), repo, df(`b-${randomBytes(2).toString("hex")}`));
    const a2 = await build(engine({ tenant: "tenant-a" }), repo, df(`a2-${randomBytes(2).toString("hex")}`));
    const seen = (lines: string[]): string => lines.find((l) => l.includes("seen:") && !l.includes("echo seen"))?.split("seen:")[1] ?? "";
    const on = (lines: string[]): string => lines.map((l) => /building on BuildKit daemon (\S+)/.exec(l)?.[1]).filter(Boolean).join(",");
    expect(on(b.lines), "the same daemon").toBe(on(a.lines));
    expect(on(a2.lines), "the same daemon").toBe(on(a.lines));
    expect(seen(a.lines).trim()).toBe("");
    expect(seen(b.lines)).not.toMatch(/\ba-/); // tenant b sees nothing of tenant a's cache mount
    expect(seen(a2.lines)).toMatch(/\ba-/); // tenant a sees its own
  });

  it("daemons stop when idle (scale to zero) and start again on demand", async () => {
    const deadline = Date.now() + 150_000;
    while ((await daemons()).length > 0) {
      if (Date.now() > deadline) throw new Error(`pool daemons still run 150 s after their last build: ${(await daemons()).map((p) => p.metadata?.name).join(", ")}`);
      await new Promise((r) => setTimeout(r, 2_000));
    }
    const { lines } = await build(engine(), `pool-again-${randomBytes(3).toString("hex")}`, `FROM ${baseImage()}\nRUN echo again\n`);
    expect(lines.join("")).toMatch(/starting BuildKit daemon/);
  });

  it("refuses registryCredentials (the pool pushes with the registry's credentials Secret)", async () => {
    const e = scope.ns.engine({
      builder: "buildkit-pool",
      builderImages: { buildkit: env("KCE_BUILDKIT_ROOTLESS_IMAGE") },
      pool: { name: POOL },
      registryCredentials: { registry: "", username: "u", password: "p" },
    });
    await expect(collect(e.build({ tag: "kce-e2e/pool-creds:1", path: contextDir(scope.dir, { Dockerfile: `FROM ${baseImage()}\n` }) }))).rejects.toThrow(
      /buildkit-pool pushes with the registry's credentialsSecret/,
    );
  });

  it("kce gc --all removes the pool's daemons", async () => {
    await build(engine(), `pool-gc-${randomBytes(3).toString("hex")}`, `FROM ${baseImage()}\nRUN echo gc\n`);
    expect((await daemons()).length).toBeGreaterThan(0);
    const actions = await engine().gc({ all: true });
    expect(actions.some((a) => a.kind === "Pod" && a.name.startsWith(`kce-pool-${POOL}-`))).toBe(true);
    const deadline = Date.now() + 120_000;
    while ((await daemons()).length > 0) {
      if (Date.now() > deadline) throw new Error("pool daemons survived kce gc --all");
      await new Promise((r) => setTimeout(r, 1_000));
    }
  });
});

void BuildError;
