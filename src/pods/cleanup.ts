/**
 * What `gc` deletes (pure): the engine's objects that crashed clients left behind. A live build or a running
 * container of another client is never touched unless `all` is asked for.
 */
import { createdAtOf, roleOf, type ObjectMetaLike } from "./labels.js";

/** One of our objects, as gc sees it. */
export interface CleanupCandidate {
  kind: "Job" | "Pod" | "Secret" | "ConfigMap";
  name: string;
  /** The object's own `metadata` (labels, annotations, creationTimestamp, ownerReferences), as listed. */
  metadata: NonNullable<ObjectMetaLike["metadata"]> & { ownerReferences?: { kind?: string }[] };
  /** Jobs: finished (Complete/Failed); Pods: phase Succeeded/Failed. */
  finished: boolean;
}

export interface CleanupPolicy {
  now: Date;
  /** Only objects at least this old, seconds (default 0). */
  olderThanSeconds?: number;
  /** Also delete what still runs (any age ≥ olderThanSeconds). */
  all?: boolean;
  /** A builder older than this is stuck even if the server has not ended it yet, seconds. */
  buildDeadlineSeconds: number;
}

export interface CleanupAction {
  kind: CleanupCandidate["kind"];
  name: string;
  why: string;
}

function ageSeconds(candidate: CleanupCandidate, now: Date): number {
  // Our created-at annotation, else the server's creationTimestamp.
  const created = createdAtOf({ metadata: candidate.metadata });
  return created ? (now.getTime() - created.getTime()) / 1000 : Number.POSITIVE_INFINITY;
}

/** Decides, for each candidate, whether gc deletes it and why. */
export function planCleanup(candidates: readonly CleanupCandidate[], policy: CleanupPolicy): CleanupAction[] {
  const minAge = policy.olderThanSeconds ?? 0;
  const actions: CleanupAction[] = [];
  for (const c of candidates) {
    const age = ageSeconds(c, policy.now);
    if (age < minAge) continue;
    const owned = (c.metadata.ownerReferences ?? []).length > 0;
    let why: string | null = null;
    if (policy.all) why = "--all";
    else if (c.finished) why = `finished ${c.kind.toLowerCase()}`;
    else if (c.kind === "Job" && age > policy.buildDeadlineSeconds + 60) why = "builder past its deadline";
    else if (c.kind === "Secret" && !owned && roleOf({ metadata: c.metadata }) === "builder" && age > 300) why = "credentials of a build that never started";
    // A bare pod of a Job is deleted with its Job; a run pod that still runs belongs to a client.
    if (why && c.kind === "Pod" && owned && !policy.all) why = null;
    if (why) actions.push({ kind: c.kind, name: c.name, why });
  }
  return actions;
}
