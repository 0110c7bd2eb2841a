/**
 * `kce gc` / `engine.gc()`: lists the engine's objects in the namespace by label and deletes what
 * {@link planCleanup} selects. Jobs are deleted with their pods and owned Secrets.
 */
import type { KubeApi } from "./kube/api.js";
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
  api: KubeApi,
  options: GcOptions & { buildDeadlineSeconds: number; now?: Date },
): Promise<CleanupAction[]> {
  const labelSelector = engineSelector(options.instance ? { instance: options.instance } : {});
  const [jobs, pods, secrets, configMaps] = await Promise.all([
    api.jobs.list(labelSelector),
    api.pods.list(labelSelector),
    api.secrets.list(labelSelector),
    api.configMaps.list(labelSelector),
  ]);
  const finishedJob = (conditions: { type?: string; status?: string }[] | undefined): boolean =>
    (conditions ?? []).some((c) => c.status === "True" && (c.type === "Complete" || c.type === "Failed"));
  const candidates: CleanupCandidate[] = [
    ...jobs.map((j) => ({ kind: "Job" as const, name: j.metadata?.name ?? "", metadata: j.metadata ?? {}, finished: finishedJob(j.status?.conditions) })),
    ...pods.map((p) => ({
      kind: "Pod" as const,
      name: p.metadata?.name ?? "",
      metadata: p.metadata ?? {},
      finished: p.status?.phase === "Succeeded" || p.status?.phase === "Failed",
    })),
    ...secrets.map((s) => ({ kind: "Secret" as const, name: s.metadata?.name ?? "", metadata: s.metadata ?? {}, finished: false })),
    ...configMaps.map((c) => ({ kind: "ConfigMap" as const, name: c.metadata?.name ?? "", metadata: c.metadata ?? {}, finished: false })),
  ];
  const actions = planCleanup(candidates, {
    now: options.now ?? new Date(),
    buildDeadlineSeconds: options.buildDeadlineSeconds,
    ...(options.olderThanSeconds !== undefined ? { olderThanSeconds: options.olderThanSeconds } : {}),
    ...(options.all !== undefined ? { all: options.all } : {}),
  });
  if (!options.dryRun) for (const action of actions) await deleteObject(api, action);
  return actions;
}

/** Deletes one object; one already gone (deleted with its owner, or by someone else) is no error. */
async function deleteObject(api: KubeApi, action: CleanupAction): Promise<void> {
  switch (action.kind) {
    case "Job":
      await api.jobs.deleteIfExists(action.name, { propagationPolicy: "Background" });
      break;
    case "Pod":
      await api.pods.deleteIfExists(action.name, { gracePeriodSeconds: 0 });
      break;
    case "Secret":
      await api.secrets.deleteIfExists(action.name);
      break;
    case "ConfigMap":
      await api.configMaps.deleteIfExists(action.name);
      break;
  }
}
