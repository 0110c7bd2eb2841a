/**
 * Sends builds to the warm BuildKit pool (see spec.ts): picks a daemon by the build's identity (routing.ts),
 * starting it when its slot is empty (scale from zero) and leasing it — one build per daemon at a time, a
 * conditional update so concurrent clients never share one — then runs the build with one exec: the context
 * on stdin, buildctl's output streamed back. Waits (by watch) when every daemon is busy and the pool is full.
 * A daemon that stops or dies mid-build ends the exec within seconds (the session closes, and a watch on the
 * daemon aborts it); the build is then retried once on another daemon.
 */
import type { V1Pod } from "@kubernetes/client-node";
import { BuildError, CancelledError, DeadlineExceededError, KubernetesApiError } from "../../errors.js";
import { isStatus, type KubeApi } from "../../kube/api.js";
import { LineSplitter } from "../../kube/lines.js";
import { containerTerminated } from "../../kube/logs.js";
import type { ExecOptions, ExecResult } from "../../kube/stdin.js";
import { waitFor } from "../../kube/watch.js";
import { summarizeBuilderFailure } from "../builder-output.js";
import type { BuildContext } from "../context.js";
import type { ContextCompression } from "../../config.js";
import { slotOrder } from "./routing.js";
import {
  ANNOTATION_LEASE,
  BUILD_SCRIPT,
  daemonPod,
  daemonPodName,
  EXIT_DAEMON_STOPPING,
  LABEL_SLOT,
  POOL_CONTAINER,
  poolSelector,
  type DaemonPodInput,
} from "./spec.js";

export interface PoolDeps {
  api: KubeApi;
  /** Runs a command in a pod (the seam's execInPod; a fake in tests). */
  exec: (options: ExecOptions) => Promise<ExecResult>;
  /** Everything a daemon pod needs except its slot and creation time. */
  daemon: Omit<DaemonPodInput, "slot" | "createdAt">;
  /** A build's server-side limit, s: a daemon closer than this to its end gets no new build. */
  buildSeconds: number;
  log: (message: string) => void;
  now?: () => number;
  /** How often to look again while every daemon is busy, besides the watch, ms (default 5000). */
  busyRecheckMs?: number;
}

export interface PoolBuild {
  /** What routes the build (the image's repository): the same identity prefers the same daemon. */
  identity: string;
  /** A unique id (its directory on the daemon). */
  buildId: string;
  /** buildctl's arguments, with `--local` paths in the build's workspace (see spec.ts `buildWorkspace`). */
  buildctlArgs: string[];
  context: BuildContext;
  compression: ContextCompression;
  signal?: AbortSignal;
  /** Phases for progress reports. */
  phase: (message: string) => void;
}

export interface PoolOutcome {
  /** The daemon pod that built it. */
  pod: string;
  digest: string | null;
}

/** How long a daemon just started may take to be ready, ms. */
const START_TIMEOUT_MS = 180_000;
/** How often to look again while every daemon is busy (besides the watch), ms. */
const BUSY_RECHECK_MS = 5_000;
/** Attempts of one build (a daemon that stops or dies under it sends it to another). */
const ATTEMPTS = 2;
const TAIL_LINES = 20;

/** A daemon is leased while its annotation's expiry lies ahead. Pure. */
export function leaseOf(pod: V1Pod, now: number): { build: string; expires: number } | null {
  const value = pod.metadata?.annotations?.[ANNOTATION_LEASE];
  const m = value ? /^(\S+) (\d+)$/.exec(value) : null;
  if (!m) return null;
  const expires = Number(m[2]);
  return expires > now ? { build: m[1] as string, expires } : null;
}

/** The pushed digest from the build's `kce-digest:` line. Pure. */
export function digestOf(line: string): string | null {
  return /^kce-digest: (sha256:[0-9a-f]{64})\s*$/.exec(line)?.[1] ?? null;
}

/** A daemon stopped or vanished while a build ran on it (the build may go to another). */
class DaemonLost extends Error {}

/** An async queue of lines: the exec pushes, the build's generator pulls. */
class Lines {
  private items: string[] = [];
  private ended = false;
  private wake: (() => void) | null = null;
  push(line: string): void {
    this.items.push(line);
    this.wake?.();
  }
  end(): void {
    this.ended = true;
    this.wake?.();
  }
  async *drain(): AsyncGenerator<string> {
    for (;;) {
      while (this.items.length > 0) yield this.items.shift() as string;
      if (this.ended) return;
      await new Promise<void>((resolve) => (this.wake = resolve));
      this.wake = null;
    }
  }
}

export class BuildkitPool {
  constructor(private readonly deps: PoolDeps) {}

  private now(): number {
    return (this.deps.now ?? Date.now)();
  }

  /** Runs one build on a daemon of the pool; yields its output lines; returns which daemon and the digest. */
  async *build(build: PoolBuild): AsyncGenerator<string, PoolOutcome> {
    const tried = new Set<number>();
    for (let attempt = 1; ; attempt++) {
      const { pod, slot } = yield* this.acquire(build, tried);
      try {
        return yield* this.runOn(pod, build);
      } catch (err) {
        if (!(err instanceof DaemonLost) || attempt >= ATTEMPTS) {
          throw err instanceof DaemonLost
            ? new BuildError(`the BuildKit daemon ${pod} stopped during the build (${err.message}); it was tried ${attempt} time(s)`, { reason: "deleted", cause: err })
            : err;
        }
        tried.add(slot);
        yield `kce: the BuildKit daemon ${pod} stopped (${err.message}): building on another daemon\n`;
      } finally {
        await this.release(pod, build.buildId);
      }
    }
  }

  /** Leases a daemon for `build` (starting one when its slot is empty); waits while all are busy. */
  private async *acquire(build: PoolBuild, avoid: Set<number>): AsyncGenerator<string, { pod: string; slot: number }> {
    const { daemon } = this.deps;
    const order = slotOrder(build.identity, daemon.maxDaemons);
    const preferred = order.filter((s) => !avoid.has(s));
    const slots = preferred.length > 0 ? preferred : order;
    let told = false;
    for (;;) {
      if (build.signal?.aborted) throw new CancelledError("build cancelled while waiting for a BuildKit daemon");
      const bySlot = new Map<number, V1Pod>();
      for (const pod of await this.deps.api.pods.list(poolSelector(daemon.name))) bySlot.set(Number(pod.metadata?.labels?.[LABEL_SLOT]), pod);
      for (const slot of slots) {
        const got = await this.tryslot(slot, bySlot.get(slot) ?? null, build);
        if (got === null) continue;
        if (got.started) {
          build.phase(`starting BuildKit daemon ${got.pod}`);
          yield `kce: starting BuildKit daemon ${got.pod}\n`;
        }
        await this.waitReady(got.pod, build.signal);
        yield `kce: building on BuildKit daemon ${got.pod}\n`;
        return { pod: got.pod, slot };
      }
      if (!told) {
        told = true;
        yield `kce: all ${daemon.maxDaemons} BuildKit daemon(s) of pool ${daemon.name} are busy: waiting for one\n`;
      }
      await this.poolChanged(build.signal);
    }
  }

  /** Claims `slot` for the build: its idle daemon (lease), or a new one in an empty slot. Null when busy. */
  private async tryslot(slot: number, pod: V1Pod | null, build: PoolBuild): Promise<{ pod: string; started: boolean } | null> {
    const now = this.now();
    const lease = `${build.buildId} ${now + this.deps.buildSeconds * 1000}`;
    const name = daemonPodName(this.deps.daemon.name, slot);
    if (pod !== null && this.ended(pod)) {
      // Stopped (idle, lifetime): remove it at once and start a fresh one in its slot (409 while it lingers).
      await this.deps.api.pods.deleteIfExists(name, { gracePeriodSeconds: 0 });
      pod = null;
    }
    if (pod === null) {
      const created = daemonPod({ ...this.deps.daemon, slot, createdAt: new Date(now) });
      created.metadata = { ...created.metadata, annotations: { ...created.metadata?.annotations, [ANNOTATION_LEASE]: lease } };
      try {
        await this.deps.api.pods.create(created);
        return { pod: name, started: true };
      } catch (err) {
        if (isStatus(err, 409)) return null; // another client started it a moment ago
        throw err;
      }
    }
    if (pod.metadata?.deletionTimestamp || leaseOf(pod, now) !== null) return null;
    if (this.tooOld(pod)) {
      // Too close to its end for a whole build: let it stop (it drains) so the slot gets a fresh daemon.
      await this.deps.api.pods.deleteIfExists(name);
      return null;
    }
    try {
      const claimed = await this.deps.api.pods.patch(name, {
        metadata: { resourceVersion: pod.metadata?.resourceVersion, annotations: { [ANNOTATION_LEASE]: lease } },
      });
      return claimed === null ? null : { pod: name, started: false };
    } catch (err) {
      if (isStatus(err, 409)) return null; // someone else leased it first
      throw err;
    }
  }

  private ended(pod: V1Pod): boolean {
    return pod.status?.phase === "Succeeded" || pod.status?.phase === "Failed" || containerTerminated(pod, POOL_CONTAINER);
  }

  private tooOld(pod: V1Pod): boolean {
    const created = pod.metadata?.creationTimestamp ? new Date(pod.metadata.creationTimestamp).getTime() : this.now();
    const left = created + this.deps.daemon.lifetimeSeconds * 1000 - this.now();
    return left < this.deps.buildSeconds * 1000;
  }

  private async waitReady(pod: string, signal?: AbortSignal): Promise<void> {
    const watch = this.deps.api.pods.watch({ fieldSelector: `metadata.name=${pod}` });
    const ready = (p: V1Pod): boolean => (p.status?.conditions ?? []).some((c) => c.type === "Ready" && c.status === "True");
    const outcome = await waitFor(watch, (p) => ready(p) || this.ended(p), {
      name: pod,
      absentIsDeleted: true,
      timeoutMs: START_TIMEOUT_MS,
      description: `BuildKit daemon ${pod} to be ready`,
      ...(signal ? { signal } : {}),
    }).catch((err: unknown) => {
      if (err instanceof DeadlineExceededError) {
        throw new BuildError(`BuildKit daemon ${pod} was not ready within ${START_TIMEOUT_MS / 1000} s (see kubectl describe pod ${pod})`, {
          reason: "unschedulable",
          cause: err,
        });
      }
      throw err;
    });
    if (outcome.kind === "deleted" || this.ended(outcome.object)) {
      throw new BuildError(`BuildKit daemon ${pod} stopped before it was ready`, { reason: "deleted" });
    }
  }

  /** Waits for a change to the pool's daemons (a lease ended, a daemon stopped…), at most `busyRecheckMs`. */
  private async poolChanged(signal?: AbortSignal): Promise<void> {
    const stop = new AbortController();
    const timer = setTimeout(() => stop.abort(), this.deps.busyRecheckMs ?? BUSY_RECHECK_MS);
    const onAbort = (): void => stop.abort();
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      for await (const ev of this.deps.api.pods.watch({ labelSelector: poolSelector(this.deps.daemon.name) }).events(stop.signal)) {
        if (ev.type !== "relisted") return; // the first list is what we just looked at: wait for news
      }
    } catch (err) {
      if (!stop.signal.aborted) throw err;
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      stop.abort();
    }
  }

  /** True when the daemon's pod is gone, ended, or being deleted (a build it killed is no build failure). */
  private async daemonGone(pod: string): Promise<boolean> {
    const now = await this.deps.api.pods.get(pod).catch(() => null);
    return now === null || this.ended(now) || now.metadata?.deletionTimestamp !== undefined;
  }

  /** Ends the lease (only our own: a lease that expired and was taken over stays). */
  private async release(pod: string, buildId: string): Promise<void> {
    try {
      const now = await this.deps.api.pods.get(pod);
      const lease = now?.metadata?.annotations?.[ANNOTATION_LEASE];
      if (!now || !lease?.startsWith(`${buildId} `)) return;
      await this.deps.api.pods.patch(pod, {
        metadata: { resourceVersion: now.metadata?.resourceVersion, annotations: { [ANNOTATION_LEASE]: null } },
      });
    } catch (err) {
      this.deps.log(`could not release BuildKit daemon ${pod}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  /** One exec: context in, output out; the daemon is watched so that its end aborts the exec at once. */
  private async *runOn(pod: string, build: PoolBuild): AsyncGenerator<string, PoolOutcome> {
    const lines = new Lines();
    const abort = new AbortController();
    const onCancel = (): void => abort.abort(new CancelledError("build cancelled"));
    build.signal?.addEventListener("abort", onCancel, { once: true });
    let lost: string | null = null;
    const guard = waitFor(this.deps.api.pods.watch({ fieldSelector: `metadata.name=${pod}` }), (p) => this.ended(p) || p.metadata?.deletionTimestamp !== undefined, {
      name: pod,
      absentIsDeleted: true,
      signal: abort.signal,
    }).then(
      (outcome) => {
        const deleting = outcome.kind === "matched" && outcome.object.metadata?.deletionTimestamp !== undefined && !this.ended(outcome.object);
        // A daemon being deleted (SIGTERM) finishes the builds it has: only its actual end aborts ours.
        if (deleting) return;
        lost = outcome.kind === "deleted" ? "its pod was deleted" : "it exited";
        abort.abort(new DaemonLost(lost));
      },
      () => undefined,
    );
    const splitters = { stdout: new LineSplitter(), stderr: new LineSplitter() };
    let digest: string | null = null;
    const tail: string[] = [];
    const take = (line: string): void => {
      const found = digestOf(line);
      if (found) {
        digest = found;
        return;
      }
      tail.push(line);
      if (tail.length > TAIL_LINES) tail.shift();
      lines.push(`${line}\n`);
    };
    const stream = build.context.open({ compression: build.compression });
    const running = this.deps
      .exec({
        pod,
        container: POOL_CONTAINER,
        command: ["sh", "-c", BUILD_SCRIPT, "kce", build.buildId, ...build.buildctlArgs],
        source: stream.stream,
        releaseChunk: stream.release,
        signal: abort.signal,
        maxOutputBytes: 64 * 1024,
        onOutput: (channel, data) => {
          for (const line of splitters[channel].push(data)) take(line);
        },
      })
      .finally(() => {
        for (const s of Object.values(splitters)) {
          const rest = s.flush();
          if (rest) take(rest);
        }
        lines.end();
      });
    running.catch(() => undefined);
    try {
      yield* lines.drain();
      let result: ExecResult;
      try {
        result = await running;
      } catch (err) {
        if (build.signal?.aborted) throw new CancelledError("build cancelled", { cause: err });
        if (lost !== null || err instanceof KubernetesApiError) throw new DaemonLost(lost ?? (err instanceof Error ? err.message : String(err)));
        throw err;
      }
      if (result.exitCode === EXIT_DAEMON_STOPPING) throw new DaemonLost("it is stopping");
      // A daemon killed under the build ends the exec with the kill's status (137, 143) before the watch
      // has said so: its pod decides whether the build failed or the daemon went away.
      if (result.exitCode !== 0 && (lost !== null || (await this.daemonGone(pod)))) throw new DaemonLost(lost ?? "it was stopped");
      if (result.exitCode !== 0) {
        const summary = summarizeBuilderFailure(tail, result.exitCode, TAIL_LINES);
        throw new BuildError(`build failed: ${summary.summary}\n--- last builder output ---\n${summary.logTail.join("\n")}`, {
          reason: "failed",
          exitCode: summary.exitCode,
          logTail: summary.logTail,
        });
      }
      return { pod, digest };
    } finally {
      build.signal?.removeEventListener("abort", onCancel);
      abort.abort();
      await guard;
    }
  }
}
