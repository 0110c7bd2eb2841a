/**
 * The builder's objects in the cluster: the Job and its credentials Secret. The Secret is created first (the
 * pod mounts it) and then owned by the Job, so the cluster deletes it with the Job — also after its TTL when
 * our client died. Deletes use their own deadline, never the caller's (possibly aborted) signal.
 */
import type { V1Job, V1Secret } from "@kubernetes/client-node";
import { BuildError, DeadlineExceededError, KubernetesApiError } from "../errors.js";
import { isStatus, type KubeApi } from "../kube/api.js";
import { waitFor } from "../kube/watch.js";

export class BuilderJobs {
  constructor(private readonly api: KubeApi) {}

  /** Creates the Secret (if any) and the Job; on failure removes what it created. */
  async create(job: V1Job, secret: V1Secret | null, signal?: AbortSignal): Promise<V1Job> {
    const opts = signal ? { signal } : {};
    if (secret) await this.api.secrets.create(secret, opts);
    let created: V1Job;
    try {
      created = await this.api.jobs.create(job, opts);
    } catch (err) {
      if (secret) await this.deleteSecret(secret.metadata?.name ?? "");
      throw err;
    }
    if (secret) await this.ownSecret(secret.metadata?.name ?? "", created);
    return created;
  }

  /**
   * Deletes the Job with its pod and owned Secret; a Job already gone is fine, and so is 409 (the uid
   * precondition failed: a Job of the same name is someone else's now). Never throws (cleanup must not mask
   * errors).
   */
  async delete(job: V1Job): Promise<void> {
    const name = job.metadata?.name ?? "";
    const uid = job.metadata?.uid;
    try {
      await this.api.jobs.deleteIfExists(name, {
        propagationPolicy: "Background",
        gracePeriodSeconds: 0,
        ...(uid ? { preconditions: { uid } } : {}),
      });
    } catch (err) {
      if (!isStatus(err, 409)) process.emitWarning(`kube-container-engine: could not delete builder job ${name}: ${String(err)}`);
    }
  }

  /** The Job of this name as it is now; null when there is none. */
  read(name: string, signal?: AbortSignal): Promise<V1Job | null> {
    return this.api.jobs.get(name, signal ? { signal } : {});
  }

  /** Whether this very Job (same uid) still exists and is not being deleted. */
  async exists(job: V1Job): Promise<boolean> {
    const now = await this.read(job.metadata?.name ?? "");
    return now !== null && now.metadata?.uid === job.metadata?.uid && !now.metadata?.deletionTimestamp;
  }

  /** Waits until no Job of this name exists (one being deleted); gives up quietly after `timeoutMs`. */
  async waitGone(name: string, signal: AbortSignal | undefined, timeoutMs = 30_000): Promise<void> {
    const watch = this.api.jobs.watch({ fieldSelector: `metadata.name=${name}` });
    try {
      await waitFor(watch, () => false, {
        name,
        absentIsDeleted: true,
        timeoutMs,
        description: `job ${name} to be deleted`,
        ...(signal ? { signal } : {}),
      });
    } catch (err) {
      if (!(err instanceof DeadlineExceededError)) throw err;
    }
  }

  /**
   * When the Job controller could not create the pod (quota, Pod Security, admission), its FailedCreate event
   * says why: throw that as a BuildError. Otherwise return (the pod is merely slow to appear).
   */
  async throwIfCreateFailed(jobName: string): Promise<void> {
    const events = await this.api.eventsFor(jobName, { kind: "Job" });
    // Oldest first: the last one is the controller's latest word.
    const failed = events.filter((e) => e.reason === "FailedCreate").pop();
    if (failed) {
      throw new BuildError(`the cluster refused to create the builder pod: ${failed.message ?? "FailedCreate"}`, {
        reason: "failed",
      });
    }
  }

  private async ownSecret(name: string, job: V1Job): Promise<void> {
    const ownerReferences = [
      { apiVersion: "batch/v1", kind: "Job", name: job.metadata?.name ?? "", uid: job.metadata?.uid ?? "", blockOwnerDeletion: false },
    ];
    const owned = await this.api.secrets.patch(name, { metadata: { ownerReferences } });
    if (owned === null) {
      // Deleted between its creation and now (by gc --all, or by hand): the builder pod cannot mount it.
      throw new KubernetesApiError(`patch secrets "${name}": the Secret was deleted before its Job owned it`, {
        verb: "patch",
        resource: "secrets",
        statusCode: 404,
        reason: "NotFound",
      });
    }
  }

  private async deleteSecret(name: string): Promise<void> {
    try {
      await this.api.secrets.deleteIfExists(name);
    } catch (err) {
      process.emitWarning(`kube-container-engine: could not delete secret ${name}: ${String(err)}`);
    }
  }
}
