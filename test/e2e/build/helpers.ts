// Shared parts of the build e2e tests: the per-file setup (namespace, scratch directory, recorders), engine
// options per builder, context directories, a recorder of every pod and Job the engine creates (counted by a
// watch, kept in full for the credential-leak checks), and timing.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { V1Job, V1Pod } from "@kubernetes/client-node";
import { afterAll, beforeAll } from "vitest";
import type { KubernetesEngineOptions } from "../../../src/index.js";
import type { KubeClient } from "../../../src/kube/client.js";
import { jobsCollection, podsCollection, ResourceWatch, type KubeObject } from "../../../src/kube/watch.js";
import { engineSelector } from "../../../src/pods/labels.js";
import { deleteNamespace, engineNamespace, expectNoLeftovers, type EngineNamespace } from "../engine/helpers.js";

/** What a build test file works in; the beforeAll that {@link useBuildScope} registers fills it in. */
export class BuildScope {
  /** The file's namespace and engines in it. */
  ns!: EngineNamespace;
  /** A scratch directory for build contexts. */
  dir!: string;
  /** Every pod and Job of ours in the namespace, from before the first test on. */
  pods!: Recorder<V1Pod>;
  jobs!: Recorder<V1Job>;
}

/**
 * Registers the hooks every build test file needs. beforeAll: a namespace `e2e-<name>-…`, a directory
 * `kce-<name>-…`, and recorders that have listed the namespace before any test runs (so nothing is missed).
 * afterAll: stops recording, removes the directory, fails if the engine left anything, deletes the namespace.
 */
export function useBuildScope(name: string): BuildScope {
  const scope = new BuildScope();
  beforeAll(async () => {
    scope.ns = await engineNamespace(`e2e-${name}`);
    scope.dir = mkdtempSync(join(tmpdir(), `kce-${name}-`));
    scope.pods = recordPods(scope.ns.admin);
    scope.jobs = recordJobs(scope.ns.admin);
    await Promise.all([scope.pods.ready, scope.jobs.ready]);
  });
  afterAll(async () => {
    await scope.pods?.stop();
    await scope.jobs?.stop();
    rmSync(scope.dir, { recursive: true, force: true });
    if (scope.ns) await expectNoLeftovers(scope.ns.admin);
    await deleteNamespace(scope.ns?.admin);
  });
  return scope;
}

/** Engine options for `builder`. BuildKit is privileged explicitly: the cluster's BuildKit image runs as root, which "auto" refuses. */
export function builderOptions(builder: "kaniko" | "buildkit"): KubernetesEngineOptions {
  return builder === "buildkit" ? { builder, buildkitMode: "privileged" } : { builder };
}

/** Writes `files` into a fresh directory under `parent`. */
export function contextDir(parent: string, files: Record<string, string>): string {
  const root = mkdtempSync(join(parent, "ctx-"));
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(join(root, name, ".."), { recursive: true });
    writeFileSync(join(root, name), content);
  }
  return root;
}

/**
 * Every version of every object of ours a watch saw, from construction to `stop()`. A watch that fails is
 * not a recorder that saw nothing: reading it (`names`, `json`, `stop`) rethrows the failure, and reading it
 * before it has listed throws, so "no pod was created" can only pass on a watch that was really looking.
 */
export class Recorder<T extends KubeObject> {
  readonly seen = new Map<string, T[]>();
  private readonly ctrl = new AbortController();
  private readonly done: Promise<void>;
  private failure: unknown;
  private listed = false;
  private readyResolve!: () => void;
  private readyReject!: (e: unknown) => void;
  /** Resolves once the watch has listed (everything from then on is seen); rejects if the watch fails first. */
  readonly ready = new Promise<void>((resolve, reject) => {
    this.readyResolve = resolve;
    this.readyReject = reject;
  });

  constructor(watch: ResourceWatch<T>) {
    this.ready.catch(() => undefined); // observed through names()/stop() as well
    this.done = (async () => {
      try {
        for await (const ev of watch.events(this.ctrl.signal)) {
          if (ev.type === "relisted") {
            for (const o of ev.objects) this.add(o);
            this.listed = true;
            this.readyResolve();
          } else this.add(ev.object);
        }
      } catch (e) {
        if (!this.ctrl.signal.aborted) {
          this.failure = e;
          this.readyReject(e);
        }
      }
    })();
  }

  private add(object: T): void {
    const name = object.metadata?.name ?? "";
    this.seen.set(name, [...(this.seen.get(name) ?? []), object]);
  }

  private healthy(): void {
    if (this.failure !== undefined) throw new Error("the recorder's watch failed: what it saw is incomplete", { cause: this.failure });
    if (!this.listed) throw new Error("the recorder has not listed yet: await recorder.ready before reading it");
  }

  /** Names seen so far. */
  names(): string[] {
    this.healthy();
    return [...this.seen.keys()];
  }

  /** Names first seen after `before` (an earlier `names()`). */
  namesSince(before: readonly string[]): string[] {
    return this.names().filter((n) => !before.includes(n));
  }

  /** Everything seen, as JSON (for leak checks). */
  json(): string {
    this.healthy();
    return JSON.stringify([...this.seen.values()]);
  }

  /** Stops watching; throws if the watch had failed. */
  async stop(): Promise<void> {
    this.ctrl.abort();
    await this.done;
    if (this.failure !== undefined) throw new Error("the recorder's watch failed while recording", { cause: this.failure });
  }
}

export function recordPods(admin: KubeClient): Recorder<V1Pod> {
  return new Recorder(new ResourceWatch<V1Pod>(admin, podsCollection(admin.namespace), { labelSelector: engineSelector() }));
}

export function recordJobs(admin: KubeClient): Recorder<V1Job> {
  return new Recorder(new ResourceWatch<V1Job>(admin, jobsCollection(admin.namespace), { labelSelector: engineSelector() }));
}

/** Runs `fn` and returns its value with the elapsed milliseconds. */
export async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = performance.now();
  const value = await fn();
  return { value, ms: Math.round(performance.now() - started) };
}
