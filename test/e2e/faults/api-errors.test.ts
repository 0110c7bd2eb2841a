// Row 2 of the reliability matrix: the API server down at start, RBAC forbidden, a missing namespace and an
// exceeded ResourceQuota are typed errors within ~5 s that name the verb and the resource; nothing is left.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KubeConfig } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BuildError, KubernetesApiError, KubernetesEngine } from "../../../src/index.js";
import { baseImage, collect, deleteNamespace, engineNamespace, expectNoLeftovers, leftovers, uniqueImage, type EngineNamespace } from "../engine/helpers.js";
import { loadKubeConfig } from "../kube/helpers.js";
import { ensureRunning, eventually, failure, recordMeasurement, whileStopped, withinBound } from "./helpers.js";

let ns: EngineNamespace;
let context: string;

beforeAll(async () => {
  ns = await engineNamespace("e2e-faults-api");
  context = mkdtempSync(join(tmpdir(), "kce-faults-api-"));
  writeFileSync(join(context, "Dockerfile"), `FROM ${baseImage()}\nRUN echo api-errors-${Date.now()}\n`);
});

afterAll(async () => {
  await ensureRunning("apiserver");
  rmSync(context, { recursive: true, force: true });
  if (ns) await expectNoLeftovers(ns.admin);
  await deleteNamespace(ns?.admin);
});

/** A kubeconfig for a ServiceAccount that may do nothing at all in the test namespace. */
async function nobodyKubeConfig(): Promise<KubeConfig> {
  const { admin } = ns;
  await admin.call("create", "serviceaccounts", (o) =>
    admin.core.createNamespacedServiceAccount({ namespace: admin.namespace, body: { metadata: { name: "nobody" } } }, o),
  );
  const token = await admin.call("create", "serviceaccounts/token", (o) =>
    admin.core.createNamespacedServiceAccountToken({ name: "nobody", namespace: admin.namespace, body: { spec: { audiences: [] } } }, o),
  );
  const cluster = loadKubeConfig().getCurrentCluster();
  if (!cluster) throw new Error("no current cluster in KUBECONFIG");
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [cluster],
    users: [{ name: "nobody", token: token.status?.token ?? "" }],
    contexts: [{ name: "nobody", cluster: cluster.name, user: "nobody" }],
    currentContext: "nobody",
  });
  return kc;
}

describe("row 2 — the API refuses or is unreachable", () => {
  // row 2 | RBAC forbids creating pods / builder Jobs | KubernetesApiError 403 naming the user, verb, resource and namespace, pointing at README "RBAC"; nothing created
  it("RBAC forbidden: KubernetesApiError naming the account, verb and resource", async () => {
    const engine = ns.engine({ kubeConfig: await nobodyKubeConfig(), builder: "kaniko", contentAddressed: false });
    const who = `system:serviceaccount:${ns.namespace}:nobody`;
    const run = await failure(engine.run(baseImage(), { command: ["true"] }));
    expect(run.error).toBeInstanceOf(KubernetesApiError);
    expect(run.error).toMatchObject({ statusCode: 403, reason: "Forbidden", verb: "create", resource: "pods" });
    expect(run.error.message).toContain(`forbidden: the service account or user "${who}" cannot create pods in namespace "${ns.namespace}"`);
    withinBound("row2-forbidden-run", run.ms, 5_000);

    const build = await failure(collect(engine.build({ tag: uniqueImage("forbidden"), path: context })));
    expect(build.error).toBeInstanceOf(KubernetesApiError);
    expect(build.error).toMatchObject({ statusCode: 403, verb: "create" });
    expect(build.error.message).toMatch(new RegExp(`"${who}" cannot create (jobs|secrets|configmaps) in namespace`));
    withinBound("row2-forbidden-build", build.ms, 5_000);
    expect(await leftovers(ns.admin)).toEqual([]);
  });

  // row 2 | the namespace does not exist | KubernetesApiError 404 "namespace "x" does not exist; create it or choose another namespace"
  it("a missing namespace: KubernetesApiError saying so", async () => {
    const engine = new KubernetesEngine({ namespace: "kce-no-such-namespace", log: () => undefined, builder: "kaniko", contentAddressed: false });
    const expected = 'namespace "kce-no-such-namespace" does not exist; create it or choose another namespace';
    const run = await failure(engine.run(baseImage(), { command: ["true"] }));
    expect(run.error).toBeInstanceOf(KubernetesApiError);
    expect(run.error).toMatchObject({ statusCode: 404, verb: "create", resource: "pods" });
    expect(run.error.message).toBe(expected);
    withinBound("row2-no-namespace-run", run.ms, 5_000);

    const build = await failure(collect(engine.build({ tag: uniqueImage("no-ns"), path: context })));
    expect(build.error).toBeInstanceOf(KubernetesApiError);
    expect(build.error.message).toBe(expected);
    withinBound("row2-no-namespace-build", build.ms, 5_000);
  });

  // row 2 | a ResourceQuota allows no more pods | run: KubernetesApiError "resource quota exceeded: cannot create pods …; free quota or raise the ResourceQuota"; build: BuildError with the Job controller's FailedCreate message, the Job deleted
  it("ResourceQuota exceeded: run is a KubernetesApiError, build a BuildError quoting the quota", async () => {
    const { admin } = ns;
    await admin.call("create", "resourcequotas", (o) =>
      admin.core.createNamespacedResourceQuota(
        { namespace: admin.namespace, body: { metadata: { name: "no-pods" }, spec: { hard: { pods: "0" } } } },
        o,
      ),
    );
    // Admission enforces the quota only once the quota controller filled in `status.hard` (after an API server
    // restart the controller-manager may take a while to catch up).
    const ready = await eventually(async () => {
      const quota = await admin.call("get", "resourcequotas", (o) => admin.core.readNamespacedResourceQuota({ name: "no-pods", namespace: admin.namespace }, o));
      return quota.status?.hard?.pods === "0";
    }, 90_000, 250);
    if (ready === null) throw new Error("the quota controller did not fill in the ResourceQuota's status within 90 s");
    recordMeasurement("faults/row2-quota-status-ready", { ms: ready });
    try {
      const engine = ns.engine({ builder: "kaniko", contentAddressed: false });
      const run = await failure(engine.run(baseImage(), { command: ["true"] }));
      expect(run.error).toBeInstanceOf(KubernetesApiError);
      expect(run.error).toMatchObject({ statusCode: 403, verb: "create", resource: "pods" });
      expect(run.error.message).toMatch(/^resource quota exceeded: cannot create pods .* exceeded quota: no-pods.*; free quota or raise the ResourceQuota$/);
      withinBound("row2-quota-run", run.ms, 5_000);

      const build = await failure(collect(engine.build({ tag: uniqueImage("quota"), path: context })));
      expect(build.error).toBeInstanceOf(BuildError);
      expect(build.error.message).toMatch(/refused to create the builder pod: .*exceeded quota: no-pods/);
      // The Job controller reports FailedCreate a moment after the Job exists; we look after 5 s without a pod.
      withinBound("row2-quota-build", build.ms, 15_000);
      await expectNoLeftovers(admin, 15_000);
    } finally {
      await admin.call("delete", "resourcequotas", (o) => admin.core.deleteNamespacedResourceQuota({ name: "no-pods", namespace: admin.namespace }, o));
    }
  });
  // row 2 | API server down when `run` starts | KubernetesApiError "cannot reach the Kubernetes API server at … to create pods; check that the cluster is up …" within 5 s
  // row 2 | API server down when `build` starts | KubernetesApiError naming the create it could not send, within 5 s (the context is packed and hashed first, locally)
  it("API server down at start: run and build fail fast with KubernetesApiError naming verb and resource", async () => {
    const engine = ns.engine({ builder: "kaniko", contentAddressed: false });
    await whileStopped("apiserver", async () => {
      const run = await failure(engine.run(baseImage(), { command: ["true"] }));
      expect(run.error).toBeInstanceOf(KubernetesApiError);
      expect(run.error).toMatchObject({ verb: "create", resource: "pods", statusCode: null });
      expect(run.error.message).toMatch(/^cannot reach the Kubernetes API server at https:\/\/\S+ .*create pods; check that the cluster is up/);
      withinBound("row2-apiserver-down-run", run.ms, 5_000);

      const build = await failure(collect(engine.build({ tag: uniqueImage("api-down"), path: context })));
      expect(build.error).toBeInstanceOf(KubernetesApiError);
      expect((build.error as KubernetesApiError).verb).toBe("create");
      expect(build.error.message).toMatch(/^cannot reach the Kubernetes API server .* to create (jobs|secrets|configmaps)/);
      withinBound("row2-apiserver-down-build", build.ms, 5_000);
    });
  });
});
