// Row 9 of the reliability matrix: a run pod deleted or evicted from outside (kubectl delete, the Eviction API)
// makes `wait()` resolve within ~5 s of the container's end, with the reason, never a hang; `error` says the
// container is gone, and nothing is left.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ContainerNotFoundError, type KubernetesEngine, type PodContainer } from "../../../src/index.js";
import { baseImage, deleteNamespace, engineNamespace, expectNoLeftovers, type EngineNamespace } from "../engine/helpers.js";
import { withinBound } from "./helpers.js";

let ns: EngineNamespace;
let engine: KubernetesEngine;

beforeAll(async () => {
  ns = await engineNamespace("e2e-faults-deleted");
  engine = ns.engine();
});

afterAll(async () => {
  if (ns) await expectNoLeftovers(ns.admin);
  await deleteNamespace(ns?.admin);
});

/** A container that says "ready" and ends promptly on SIGTERM. */
async function serving(): Promise<PodContainer> {
  const container = await engine.run(baseImage(), {
    command: ["sh", "-c", "trap 'echo got-sigterm; exit 143' TERM; echo ready; while :; do sleep 0.2; done"],
  });
  for await (const line of container.streamLogs()) if (line === "ready\n") break;
  return container;
}

async function deletePod(name: string, gracePeriodSeconds: number): Promise<void> {
  await ns.admin.call("delete", "pods", (o) => ns.admin.core.deleteNamespacedPod({ name, namespace: ns.namespace, gracePeriodSeconds }, o));
}

describe("row 9 — run pod deleted or evicted from outside", () => {
  // row 9 | run pod deleted from outside (`kubectl delete pod`), its process ends on SIGTERM | `wait()` resolves within 5 s with its exit code (143); `reason` and `error` (ContainerNotFoundError) say it was deleted
  it("kubectl delete: wait() resolves within 5 s with the exit code and a reason", async () => {
    const container = await serving();
    const waiting = container.wait();
    const started = Date.now();
    await deletePod(container.id, 30);
    const { exitCode } = await waiting;
    withinBound("row9-deleted-graceful", Date.now() - started, 5_000);
    expect(exitCode).toBe(143);
    expect(container.reason).toMatch(/deleted/i);
    expect(container.error).toBeInstanceOf(ContainerNotFoundError);
    expect(container.error?.message).toMatch(/deleted/);
    await container.remove();
  });

  // row 9 | run pod force-deleted (grace 0: the object vanishes at once) | `wait()` resolves within 5 s with 137, reason "Deleted: the pod was deleted before its container finished"
  it("force delete: wait() resolves within 5 s with 137 and the reason", async () => {
    const container = await serving();
    const waiting = container.wait();
    const started = Date.now();
    await deletePod(container.id, 0);
    const { exitCode } = await waiting;
    withinBound("row9-deleted-force", Date.now() - started, 5_000);
    expect(exitCode).toBe(137);
    expect(container.reason).toMatch(/^Deleted: the pod was deleted before its container finished/);
    expect(container.error).toBeInstanceOf(ContainerNotFoundError);
    await container.remove();
  });

  // row 9 | run pod evicted through the Eviction API (drain, preemption) | `wait()` resolves within 5 s; `reason` names the eviction (DisruptionTarget), `error` a ContainerNotFoundError
  it("eviction: wait() resolves within 5 s and the reason names the eviction", async () => {
    const container = await serving();
    const waiting = container.wait();
    const started = Date.now();
    await ns.admin.call("create", "pods/eviction", (o) =>
      ns.admin.core.createNamespacedPodEviction(
        { name: container.id, namespace: ns.namespace, body: { metadata: { name: container.id, namespace: ns.namespace } } },
        o,
      ),
    );
    const { exitCode } = await waiting;
    withinBound("row9-evicted", Date.now() - started, 5_000);
    expect([137, 143]).toContain(exitCode);
    expect(container.reason).toMatch(/evict/i);
    expect(container.error).toBeInstanceOf(ContainerNotFoundError);
    expect(container.error?.message).toMatch(/evict/i);
    await container.remove();
  });

  // row 9 | run pod deleted while nobody waited | `reload()` finds it gone: `exited` 137, reason "Deleted…"; `wait()` returns at once
  it("deleted while nobody waited: reload() and wait() report it at once", async () => {
    const container = await serving();
    await deletePod(container.id, 0);
    await waitUntilGone(container.id);
    const started = Date.now();
    await container.reload();
    expect(container.status).toBe("exited");
    expect(container.exitcode).toBe(137);
    expect(container.reason).toMatch(/^Deleted/);
    expect((await container.wait()).exitCode).toBe(137);
    withinBound("row9-deleted-unwatched", Date.now() - started, 5_000);
    await container.remove();
  });
});

async function waitUntilGone(name: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const pods = await ns.admin.call("list", "pods", (o) => ns.admin.core.listNamespacedPod({ namespace: ns.namespace, fieldSelector: `metadata.name=${name}` }, o));
    if (pods.items.length === 0) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`pod ${name} still exists`);
}
