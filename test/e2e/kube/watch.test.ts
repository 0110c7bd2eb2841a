// The one watch on the real cluster: a pod's life Pending → Running → Succeeded → DELETED, and waitFor.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { V1Pod } from "@kubernetes/client-node";
import type { KubeClient } from "../../../src/kube/client.js";
import { podsCollection, ResourceWatch, waitFor } from "../../../src/kube/watch.js";
import { afterFirstList, createPod, deleteNamespace, namespaceClient, podWatch, TEST_LABELS, testPod } from "./helpers.js";

describe("ResourceWatch (e2e)", () => {
  let client: KubeClient;
  beforeAll(async () => {
    client = await namespaceClient("kce-e2e-watch");
  });
  afterAll(async () => {
    await deleteNamespace(client);
  });

  it("sees a pod go Pending → Running → Succeeded, then DELETED", async () => {
    const { watch, listed } = afterFirstList(
      new ResourceWatch<V1Pod>(client, podsCollection(client.namespace), {
        labelSelector: "app.kubernetes.io/managed-by=kube-container-engine-test,kce-test/pod=life",
      }),
    );
    const ctrl = new AbortController();
    const phases: string[] = [];
    const types: string[] = [];
    const consumer = (async () => {
      for await (const ev of watch.events(ctrl.signal)) {
        if (ev.type === "relisted") {
          types.push(`relisted(${ev.objects.length})`);
          continue;
        }
        types.push(ev.type);
        const phase = ev.object.status?.phase ?? "";
        if (phases.at(-1) !== phase) phases.push(phase);
        if (ev.type === "DELETED") return;
      }
    })();
    // Created after the first list, so the list is empty and every phase arrives as an event.
    await Promise.race([listed, consumer]);
    await createPod(client, testPod("life", ["sh", "-c", "sleep 2"]));
    const done = await waitFor(podWatch(client, "life"), (p) => p.status?.phase === "Succeeded", { timeoutMs: 90_000 });
    expect(done.kind).toBe("matched");
    await client.call("delete", "pods", (o) => client.core.deleteNamespacedPod({ name: "life", namespace: client.namespace }, o));
    await consumer;
    ctrl.abort();
    console.log(`watch events: ${types.join(" ")}; phases: ${phases.join(" → ")}`);
    expect(types[0]).toBe("relisted(0)");
    expect(types.at(-1)).toBe("DELETED");
    expect(phases).toEqual(expect.arrayContaining(["Pending", "Running", "Succeeded"]));
    expect(phases.indexOf("Pending")).toBeLessThan(phases.indexOf("Running"));
    expect(phases.indexOf("Running")).toBeLessThan(phases.indexOf("Succeeded"));
  });

  it("waitFor turns a deletion seen by the watch into a deleted outcome with the pod's last state", async () => {
    await createPod(client, testPod("doomed", ["sleep", "3600"]));
    const { watch, listed } = afterFirstList(podWatch(client, "doomed"));
    const waiting = waitFor(watch, (p) => p.status?.phase === "Succeeded", { timeoutMs: 60_000 });
    // Deleting before the watch listed would leave it nothing to see (the pod is simply absent from the list).
    await Promise.race([listed, waiting]);
    await client.call("delete", "pods", (o) =>
      client.core.deleteNamespacedPod({ name: "doomed", namespace: client.namespace, gracePeriodSeconds: 0 }, o),
    );
    const out = await waiting;
    expect(out.kind).toBe("deleted");
    expect(out.object?.metadata?.name).toBe("doomed");
  });

  it("waitFor with absentIsDeleted treats a pod missing from the first list as deleted", async () => {
    await createPod(client, testPod("gone-before", ["sleep", "3600"]));
    await client.call("delete", "pods", (o) =>
      client.core.deleteNamespacedPod({ name: "gone-before", namespace: client.namespace, gracePeriodSeconds: 0 }, o),
    );
    const gone = await waitFor(podWatch(client, "gone-before"), () => true, { absentIsDeleted: true, timeoutMs: 10_000 });
    expect(gone).toEqual({ kind: "deleted", object: null });
    const never = await waitFor(podWatch(client, "never-created"), () => true, { absentIsDeleted: true, timeoutMs: 10_000 });
    expect(never).toEqual({ kind: "deleted", object: null });
    expect(TEST_LABELS["app.kubernetes.io/managed-by"]).toBe("kube-container-engine-test");
  });
});
