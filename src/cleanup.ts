/**
 * `kce gc` / `engine.gc()`: lists the engine's objects in the namespace by label and deletes what
 * {@link planCleanup} selects. Jobs are deleted with their pods and owned Secrets.
 */
import { KubernetesApiError } from "./errors.js";
import type { KubeClient } from "./kube/client.js";
import { planCleanup, type CleanupAction, type CleanupCandidate } from "./pods/cleanup.js";
import { engineSelector } from "./pods/labels.js";

export interface GcOptions {
  /** Only objects at least this old, seconds. */
  olderThanSeconds?: number;
  /** Also running builds and containers. */
  all?: boolean;
  /** Only this engine instance's objects. */
  instance?: string;
  /** List, do not delete. */
  dryRun?: boolean;
}

export async function collectGarbage(
  client: KubeClient,
  options: GcOptions & { buildDeadlineSeconds: number; now?: Date },
): Promise<CleanupAction[]> {
  const namespace = client.namespace;
  const labelSelector = engineSelector(options.instance ? { instance: options.instance } : {});
  const [jobs, pods, secrets, configMaps] = await Promise.all([
    client.call("list", "jobs", (o) => client.batch.listNamespacedJob({ namespace, labelSelector }, o)),
    client.call("list", "pods", (o) => client.core.listNamespacedPod({ namespace, labelSelector }, o)),
    client.call("list", "secrets", (o) => client.core.listNamespacedSecret({ namespace, labelSelector }, o)),
    client.call("list", "configmaps", (o) => client.core.listNamespacedConfigMap({ namespace, labelSelector }, o)),
  ]);
  const finishedJob = (conditions: { type?: string; status?: string }[] | undefined): boolean =>
    (conditions ?? []).some((c) => c.status === "True" && (c.type === "Complete" || c.type === "Failed"));
  const candidates: CleanupCandidate[] = [
    ...jobs.items.map((j) => ({ kind: "Job" as const, name: j.metadata?.name ?? "", metadata: j.metadata ?? {}, finished: finishedJob(j.status?.conditions) })),
    ...pods.items.map((p) => ({
      kind: "Pod" as const,
      name: p.metadata?.name ?? "",
      metadata: p.metadata ?? {},
      finished: p.status?.phase === "Succeeded" || p.status?.phase === "Failed",
    })),
    ...secrets.items.map((s) => ({ kind: "Secret" as const, name: s.metadata?.name ?? "", metadata: s.metadata ?? {}, finished: false })),
    ...configMaps.items.map((c) => ({ kind: "ConfigMap" as const, name: c.metadata?.name ?? "", metadata: c.metadata ?? {}, finished: false })),
  ];
  const actions = planCleanup(candidates, {
    now: options.now ?? new Date(),
    buildDeadlineSeconds: options.buildDeadlineSeconds,
    ...(options.olderThanSeconds !== undefined ? { olderThanSeconds: options.olderThanSeconds } : {}),
    ...(options.all !== undefined ? { all: options.all } : {}),
  });
  if (!options.dryRun) for (const action of actions) await deleteObject(client, action);
  return actions;
}

async function deleteObject(client: KubeClient, action: CleanupAction): Promise<void> {
  const namespace = client.namespace;
  const name = action.name;
  try {
    switch (action.kind) {
      case "Job":
        await client.call("delete", "jobs", (o) => client.batch.deleteNamespacedJob({ name, namespace, propagationPolicy: "Background" }, o), { name });
        break;
      case "Pod":
        await client.call("delete", "pods", (o) => client.core.deleteNamespacedPod({ name, namespace, gracePeriodSeconds: 0 }, o), { name });
        break;
      case "Secret":
        await client.call("delete", "secrets", (o) => client.core.deleteNamespacedSecret({ name, namespace }, o), { name });
        break;
      case "ConfigMap":
        await client.call("delete", "configmaps", (o) => client.core.deleteNamespacedConfigMap({ name, namespace }, o), { name });
        break;
    }
  } catch (err) {
    if (!(err instanceof KubernetesApiError && err.statusCode === 404)) throw err;
  }
}
