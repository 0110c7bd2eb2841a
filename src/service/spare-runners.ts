/**
 * Warm build runners: a few runner pods started ahead of demand, so a build does not wait for a pod to be
 * scheduled and started (≈ 1.5 s on a quiet node). A spare waits silently for its assignment; a claim is one
 * conditional update of the pod (labels + arguments, 409 when another claim came first), after which the
 * build's Job adopts it. Spares are shared by all service replicas; any replica replaces spares that ended,
 * run another image or are about to give up waiting. Everything is labelled (role `spare`) and bounded
 * server-side (the spare exits after `maxWaitSeconds`; its pod has a deadline).
 */
import { randomBytes } from "node:crypto";
import type { V1Pod } from "@kubernetes/client-node";
import type { KubeApi } from "../kube/api.js";
import { isStatus } from "../kube/api.js";
import { containerStarted, containerTerminated } from "../kube/logs.js";
import { engineSelector } from "../pods/labels.js";
import { claimPatch, RUNNER_CONTAINER, sparePod, type RunnerBuild, type RunnerPodSettings } from "./runner-job.js";

export interface SparePoolDeps {
  api: KubeApi;
  /** How runner pods run now (the image may change with an upgrade: spares of another image are replaced). */
  settings: () => Promise<RunnerPodSettings>;
  /** Spares to keep ready (0: none). */
  target: number;
  maxWaitSeconds: number;
  buildTimeoutSeconds: number;
  log: (message: string) => void;
  now?: () => number;
}

/** Spares younger than this fraction of their wait are claimed; older ones are replaced instead. */
const FRESH_FRACTION = 0.8;

export class SparePool {
  private filling: Promise<void> | null = null;
  private refillAgain = false;

  constructor(private readonly deps: SparePoolDeps) {}

  private now(): number {
    return (this.deps.now ?? Date.now)();
  }

  private ageSeconds(pod: V1Pod): number {
    const created = pod.metadata?.creationTimestamp;
    return created ? (this.now() - new Date(created).getTime()) / 1000 : 0;
  }

  private async spares(): Promise<V1Pod[]> {
    return (await this.deps.api.pods.list(engineSelector({ role: "spare" }))).filter((p) => !p.metadata?.deletionTimestamp);
  }

  private usable(pod: V1Pod, image: string): boolean {
    const container = pod.spec?.containers?.find((c) => c.name === RUNNER_CONTAINER);
    return (
      container?.image === image &&
      !containerTerminated(pod, RUNNER_CONTAINER) &&
      pod.status?.phase !== "Failed" &&
      pod.status?.phase !== "Succeeded" &&
      this.ageSeconds(pod) < this.deps.maxWaitSeconds * FRESH_FRACTION
    );
  }

  /**
   * Claims a ready spare for `build` (its container waits for the assignment). Returns the pod's name, or
   * null when no spare is ready (the build then starts a pod of its own). Refills in the background.
   */
  async claim(build: RunnerBuild, args: string[]): Promise<string | null> {
    if (this.deps.target === 0) return null;
    const { runnerImage } = await this.deps.settings();
    const ready = (await this.spares()).filter((p) => this.usable(p, runnerImage) && containerStarted(p, RUNNER_CONTAINER));
    for (const spare of ready) {
      const name = spare.metadata?.name ?? "";
      try {
        const claimed = await this.deps.api.pods.patch(name, claimPatch(spare, build, args));
        if (claimed !== null) {
          this.refill();
          return name;
        }
      } catch (err) {
        if (!isStatus(err, 409)) throw err; // another claim was first: try the next spare
      }
    }
    this.refill();
    return null;
  }

  /** Tops the pool up in the background (one fill at a time; a request during a fill runs one more). */
  refill(): void {
    if (this.deps.target === 0) return;
    if (this.filling) {
      this.refillAgain = true;
      return;
    }
    this.filling = this.fill()
      .catch((err: unknown) => this.deps.log(`keeping ${this.deps.target} warm runner(s): ${err instanceof Error ? err.message : String(err)}`))
      .finally(() => {
        this.filling = null;
        if (this.refillAgain) {
          this.refillAgain = false;
          this.refill();
        }
      });
  }

  /** Resolves when a fill in progress is done (tests, shutdown). */
  async settled(): Promise<void> {
    while (this.filling) await this.filling;
  }

  /** Deletes spares that ended or are stale, and starts new ones up to the target. */
  async fill(): Promise<void> {
    const settings = await this.deps.settings();
    const spares = await this.spares();
    const keep = spares.filter((p) => this.usable(p, settings.runnerImage));
    for (const stale of spares.filter((p) => !keep.includes(p))) {
      await this.deps.api.pods.deleteIfExists(stale.metadata?.name ?? "", { gracePeriodSeconds: 0 });
    }
    for (let n = keep.length; n < this.deps.target; n++) {
      await this.deps.api.pods.create(
        sparePod({
          ...settings,
          name: `kce-runner-spare-${randomBytes(4).toString("hex")}`,
          createdAt: new Date(this.now()),
          maxWaitSeconds: this.deps.maxWaitSeconds,
          buildTimeoutSeconds: this.deps.buildTimeoutSeconds,
        }),
      );
    }
  }
}
