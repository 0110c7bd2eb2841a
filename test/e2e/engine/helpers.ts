// Shared setup of the engine e2e tests: an engine per test file in its own namespace, and the check that the
// engine left nothing of its own behind.
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { Readable } from "node:stream";
import { pack } from "tar-stream";
import { KubernetesEngine, type KubernetesEngineOptions } from "../../../src/index.js";
import type { KubeClient } from "../../../src/kube/client.js";
import { engineSelector } from "../../../src/pods/labels.js";
import { baseImage, deleteNamespace, namespaceClient } from "../kube/helpers.js";
import { grantSuiteServiceAccount, kubeConfigFrom, suiteServiceAccount } from "../rbac/service-account.js";

export { baseImage, deleteNamespace };

/** A namespace for one test file, and engines working in it. */
export interface EngineNamespace {
  admin: KubeClient;
  namespace: string;
  engine(options?: KubernetesEngineOptions): KubernetesEngine;
}

/**
 * A fresh namespace (created as admin) and engines in it. With KCE_E2E_KUBECONFIG set
 * (test/e2e/rbac/as-service-account), the engines run as the manifests' ServiceAccount, bound to the manifests'
 * Role in this namespace, instead of as cluster-admin.
 */
export async function engineNamespace(prefix: string): Promise<EngineNamespace> {
  const admin = await namespaceClient(prefix);
  await grantSuiteServiceAccount(admin.namespace);
  const sa = suiteServiceAccount();
  return {
    admin,
    namespace: admin.namespace,
    engine: (options = {}) =>
      new KubernetesEngine({
        namespace: admin.namespace,
        log: () => undefined,
        ...(sa ? { kubeConfig: kubeConfigFrom(sa.kubeconfig) } : {}),
        ...options,
      }),
  };
}

/** Pods, Jobs, Secrets and ConfigMaps with the engine's label still in the namespace ("kind/name"). */
export async function leftovers(admin: KubeClient): Promise<string[]> {
  const labelSelector = engineSelector();
  const namespace = admin.namespace;
  const [pods, jobs, secrets, configMaps] = await Promise.all([
    admin.call("list", "pods", (o) => admin.core.listNamespacedPod({ namespace, labelSelector }, o)),
    admin.call("list", "jobs", (o) => admin.batch.listNamespacedJob({ namespace, labelSelector }, o)),
    admin.call("list", "secrets", (o) => admin.core.listNamespacedSecret({ namespace, labelSelector }, o)),
    admin.call("list", "configmaps", (o) => admin.core.listNamespacedConfigMap({ namespace, labelSelector }, o)),
  ]);
  return [
    ...pods.items.map((p) => `pod/${p.metadata?.name}`),
    ...jobs.items.map((j) => `job/${j.metadata?.name}`),
    ...secrets.items.map((s) => `secret/${s.metadata?.name}`),
    ...configMaps.items.map((c) => `configmap/${c.metadata?.name}`),
  ];
}

/** Waits until nothing of ours is left (garbage collection of a deleted Job's pod takes a moment). */
export async function expectNoLeftovers(admin: KubeClient, withinMs = 30_000): Promise<void> {
  const deadline = Date.now() + withinMs;
  let left = await leftovers(admin);
  while (left.length > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 500));
    left = await leftovers(admin);
  }
  if (left.length > 0) throw new Error(`the engine left objects behind: ${left.join(", ")}`);
}

/** A unique image name in the engine's registry. */
export function uniqueImage(name: string): string {
  return `kce-e2e/${name}:${randomBytes(4).toString("hex")}`;
}

export async function collect(lines: AsyncIterable<string>): Promise<string[]> {
  const out: string[] = [];
  for await (const line of lines) out.push(line);
  return out;
}

/** An uncompressed tar stream of `files` (what repo2docker passes as `fileobj`). */
export function tarOf(files: Record<string, string>): Readable {
  const archive = pack();
  for (const [name, content] of Object.entries(files)) archive.entry({ name, mode: 0o644 }, content);
  archive.finalize();
  return Readable.from(archive);
}

/** A new build-context directory under `parent` holding `files` (paths may have directories), mode 0755. */
export function contextDir(parent: string, files: Record<string, string>): string {
  const root = mkdtempSync(join(parent, "ctx-"));
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(dirname(join(root, name)), { recursive: true });
    writeFileSync(join(root, name), content, { mode: 0o755 });
  }
  return root;
}
