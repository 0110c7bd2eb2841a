// Error mapping on the real cluster: missing namespace, RBAC forbidden, unreachable server — typed, fast.
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KubeConfig } from "@kubernetes/client-node";
import { KubeClient } from "../../../src/kube/client.js";
import { KubernetesApiError } from "../../../src/errors.js";
import { withinBound } from "../../support/measurements.js";
import { deleteNamespace, loadKubeConfig, namespaceClient, testPod } from "./helpers.js";

describe("KubeClient errors (e2e)", () => {
  let admin: KubeClient;
  beforeAll(async () => {
    admin = await namespaceClient("kce-e2e-client");
  });
  afterAll(async () => {
    await deleteNamespace(admin);
  });

  it("says a namespace does not exist", async () => {
    const c = new KubeClient({ kubeConfig: loadKubeConfig(), namespace: "kce-no-such-namespace" });
    const err = await c
      .call("create", "pods", (o) => c.core.createNamespacedPod({ namespace: c.namespace, body: testPod("x", ["true"]) }, o))
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KubernetesApiError);
    expect((err as Error).message).toBe('namespace "kce-no-such-namespace" does not exist; create it or choose another namespace');
  });

  it("names the service account, verb and resource when RBAC forbids", async () => {
    await admin.call("create", "serviceaccounts", (o) =>
      admin.core.createNamespacedServiceAccount({ namespace: admin.namespace, body: { metadata: { name: "nobody" } } }, o),
    );
    const token = await admin.call("create", "serviceaccounts/token", (o) =>
      admin.core.createNamespacedServiceAccountToken({ name: "nobody", namespace: admin.namespace, body: { spec: { audiences: [] } } }, o),
    );
    const base = loadKubeConfig();
    const cluster = base.getCurrentCluster()!;
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [cluster],
      users: [{ name: "nobody", token: token.status?.token ?? "" }],
      contexts: [{ name: "nobody", cluster: cluster.name, user: "nobody" }],
      currentContext: "nobody",
    });
    const c = new KubeClient({ kubeConfig: kc, namespace: admin.namespace });
    const err = await c
      .call("create", "pods", (o) => c.core.createNamespacedPod({ namespace: c.namespace, body: testPod("x", ["true"]) }, o))
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KubernetesApiError);
    expect((err as Error).message).toContain(
      `forbidden: the service account or user "system:serviceaccount:${admin.namespace}:nobody" cannot create pods in namespace "${admin.namespace}"; see README "RBAC"`,
    );
    expect(err).toMatchObject({ statusCode: 403, reason: "Forbidden", verb: "create", resource: "pods" });
  });

  it("fails within ~5 s when the API server is unreachable (refused, and accepting but silent)", async () => {
    // A listener that accepts TCP connections and never answers stands in for a hung or black-holed server.
    const held = new Set<net.Socket>();
    const silent = net.createServer((sock) => void held.add(sock));
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
    const silentUrl = `https://127.0.0.1:${(silent.address() as net.AddressInfo).port}`;
    try {
      for (const server of ["https://127.0.0.1:1", silentUrl]) {
        const kc = new KubeConfig();
        kc.loadFromOptions({
          clusters: [{ name: "down", server, skipTLSVerify: true }],
          users: [{ name: "u", token: "t" }],
          contexts: [{ name: "down", cluster: "down", user: "u" }],
          currentContext: "down",
        });
        const c = new KubeClient({ kubeConfig: kc, namespace: "default" });
        const t0 = Date.now();
        const err = await c.call("list", "pods", (o) => c.core.listNamespacedPod({ namespace: "default" }, o)).catch((e: unknown) => e);
        const ms = Date.now() - t0;
        console.log(`unreachable ${server}: ${ms} ms: ${(err as Error).message}`);
        expect(err).toBeInstanceOf(KubernetesApiError);
        expect((err as Error).message).toMatch(new RegExp(`^cannot reach the Kubernetes API server at ${server.replace(/[.]/g, "\\.")}`));
        withinBound(`kube/unreachable-${server.startsWith("https://127.0.0.1:1") ? "refused" : "silent"}`, ms, 6_000);
      }
    } finally {
      for (const sock of held) sock.destroy();
      silent.close();
    }
  });
});
