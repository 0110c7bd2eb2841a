/**
 * The builder's objects in the cluster: the Job and its credentials Secret. The Secret is created first (the
 * pod mounts it) and then owned by the Job, so the cluster deletes it with the Job — also after its TTL when
 * our client died. Deletes use their own deadline, never the caller's (possibly aborted) signal.
 */
import { PatchStrategy, setHeaderOptions, type CoreV1Event, type V1Job, type V1Secret } from "@kubernetes/client-node";
import { BuildError, DeadlineExceededError, KubernetesApiError } from "../errors.js";
import type { KubeClient } from "../kube/client.js";
import { jobsCollection, ResourceWatch, waitFor } from "../kube/watch.js";

export class BuilderJobs {
  constructor(private readonly client: KubeClient) {}

  /** Creates the Secret (if any) and the Job; on failure removes what it created. */
  async create(job: V1Job, secret: V1Secret | null, signal?: AbortSignal): Promise<V1Job> {
    const namespace = this.client.namespace;
    const opts = signal ? { signal } : {};
    if (secret) {
      await this.client.call("create", "secrets", (o) => this.client.core.createNamespacedSecret({ namespace, body: secret }, o), {
        name: secret.metadata?.name ?? "",
        ...opts,
      });
    }
    let created: V1Job;
    try {
      created = await this.client.call("create", "jobs", (o) => this.client.batch.createNamespacedJob({ namespace, body: job }, o), {
        name: job.metadata?.name ?? "",
        ...opts,
      });
    } catch (err) {
      if (secret) await this.deleteSecret(secret.metadata?.name ?? "");
      throw err;
    }
    if (secret) await this.ownSecret(secret.metadata?.name ?? "", created);
    return created;
  }

  /**
   * Deletes the Job with its pod and owned Secret; 404 is fine, and so is 409 (the uid precondition failed: a
   * Job of the same name is someone else's now). Never throws (cleanup must not mask errors).
   */
  async delete(job: V1Job): Promise<void> {
    const name = job.metadata?.name ?? "";
    const uid = job.metadata?.uid;
    try {
      await this.client.call(
        "delete",
        "jobs",
        (o) =>
          this.client.batch.deleteNamespacedJob(
            {
              name,
              namespace: this.client.namespace,
              propagationPolicy: "Background",
              gracePeriodSeconds: 0,
              // With a body the API server reads the options from it, not from the query: repeat them (a Job's
              // default propagation is Orphan, which would leave its pod behind).
              body: { propagationPolicy: "Background", gracePeriodSeconds: 0, ...(uid ? { preconditions: { uid } } : {}) },
            },
            o,
          ),
        { name },
      );
    } catch (err) {
      if (!(err instanceof KubernetesApiError && (err.statusCode === 404 || err.statusCode === 409))) {
        process.emitWarning(`kube-container-engine: could not delete builder job ${name}: ${String(err)}`);
      }
    }
  }

  /** The Job of this name as it is now; null when there is none. */
  async read(name: string, signal?: AbortSignal): Promise<V1Job | null> {
    try {
      return await this.client.call(
        "get",
        "jobs",
        (o) => this.client.batch.readNamespacedJob({ name, namespace: this.client.namespace }, o),
        { name, ...(signal ? { signal } : {}) },
      );
    } catch (err) {
      if (err instanceof KubernetesApiError && err.statusCode === 404) return null;
      throw err;
    }
  }

  /** Whether this very Job (same uid) still exists and is not being deleted. */
  async exists(job: V1Job): Promise<boolean> {
    const now = await this.read(job.metadata?.name ?? "");
    return now !== null && now.metadata?.uid === job.metadata?.uid && !now.metadata?.deletionTimestamp;
  }

  /** Waits until no Job of this name exists (one being deleted); gives up quietly after `timeoutMs`. */
  async waitGone(name: string, signal: AbortSignal | undefined, timeoutMs = 30_000): Promise<void> {
    const watch = new ResourceWatch<V1Job>(this.client, jobsCollection(this.client.namespace), { fieldSelector: `metadata.name=${name}` });
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
    const events = await this.client.call(
      "list",
      "events",
      (o) =>
        this.client.core.listNamespacedEvent(
          { namespace: this.client.namespace, fieldSelector: `involvedObject.kind=Job,involvedObject.name=${jobName}` },
          o,
        ),
    );
    const failed = events.items
      .filter((e: CoreV1Event) => e.reason === "FailedCreate")
      .sort((a, b) => String(a.lastTimestamp ?? "").localeCompare(String(b.lastTimestamp ?? "")))
      .pop();
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
    await this.client.call(
      "patch",
      "secrets",
      (o) =>
        this.client.core.patchNamespacedSecret(
          { name, namespace: this.client.namespace, body: { metadata: { ownerReferences } } },
          setHeaderOptions("Content-Type", PatchStrategy.MergePatch, o),
        ),
      { name },
    );
  }

  private async deleteSecret(name: string): Promise<void> {
    try {
      await this.client.call("delete", "secrets", (o) => this.client.core.deleteNamespacedSecret({ name, namespace: this.client.namespace }, o), {
        name,
      });
    } catch (err) {
      if (!(err instanceof KubernetesApiError && err.statusCode === 404)) {
        process.emitWarning(`kube-container-engine: could not delete secret ${name}: ${String(err)}`);
      }
    }
  }
}
