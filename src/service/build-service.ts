/**
 * The build service's decisions for one request, as a stream of BinderHub events: parse the spec, check the
 * URL, resolve the ref, then either answer from the registry (image exists), join a build in progress (in
 * this process, or a runner Job found in the cluster), or queue a new build and start its runner Job.
 * Every event carries an id `<build name>/<position>`; a client that reconnects with it as `Last-Event-ID`
 * continues the same build's log after that position. HTTP is elsewhere (http-server.ts).
 */
import { ContainerEngineError, InvalidInputError } from "../errors.js";
import { isStatus, type KubeApi } from "../kube/api.js";
import { BuildSession, isFailureEvent, type BuildOutcome, type SessionItem } from "./build-session.js";
import type { ServiceConfig } from "./config.js";
import { RefResolutionError, type RefResolver } from "./git-refs.js";
import type { ServiceMetrics } from "./service-metrics.js";
import { buildName, imageName } from "./naming.js";
import { parseRepoSpec, SpecError, type RepoSpec } from "./providers.js";
import { BuildQueue, type Release } from "./queue.js";
import { ANNOTATION_REPOSITORY, runnerArgs, runnerJob, type RunnerBuild, type RunnerPodSettings } from "./runner-job.js";
import type { SparePool } from "./spare-runners.js";
import { HubRequestError, HubUnavailableError, serverUrl, type HubClient } from "./hub.js";
import type { Identity } from "./identity.js";
import { serverName } from "./naming.js";
import type { CheckedUrl, UrlChecker } from "./url-policy.js";
import { ANNOTATION_IMAGE } from "../pods/labels.js";
import { jobStateOf } from "../pods/builder-status.js";

/** One event for the client: the SSE id and the JSON data. */
export interface ServiceEvent {
  id: string;
  data: Record<string, unknown> & { phase?: string; message?: string };
}

export interface BuildRequest {
  provider: string;
  /** The spec as in the URL path (still escaped). */
  spec: string;
  buildOnly: boolean;
  /** The `Last-Event-ID` header, when the client reconnects. */
  lastEventId: string | null;
  /** Who asks: per-token limits, and whose server a launch starts. */
  identity: Identity;
  /** Aborted when the client goes away. */
  signal: AbortSignal;
}

export interface BuildServiceDeps {
  config: ServiceConfig;
  api: KubeApi;
  urls: UrlChecker;
  resolveRef: RefResolver;
  /** Whether the registry holds this image (full name with host). */
  imageExists: (image: string) => Promise<boolean>;
  /** The engine registry's host, for image prefixes without one. */
  registryHost: () => Promise<string>;
  /** The runner's image (default: the service's own). */
  runnerImage: () => Promise<string>;
  /** Engine settings handed to the runner (KCE_*). */
  runnerEnv: Record<string, string>;
  instance: string;
  /** The JupyterHub to launch servers on (none: the service only builds). */
  hub?: HubClient;
  /** The service's own public URL, for BinderHub's `binder_launch_host`. */
  publicUrl?: string;
  /** Warm runners to claim before starting a pod (none: every build starts its own). */
  spares?: SparePool;
  metrics: ServiceMetrics;
  graces: { pullGraceSeconds: number; unschedulableGraceSeconds: number };
  log: (message: string) => void;
  now?: () => number;
}

/** What a launch needs to know about the request (filled while it is answered). */
interface LaunchContext {
  repo: RepoSpec | null;
  commit: string | null;
}

/** The key of per-token limits: a service token's name or a hub user's. */
function identityKey(identity: Identity): string {
  return `${identity.kind}:${identity.name}`;
}

/** A resume point parsed from `Last-Event-ID`. */
export function parseEventId(id: string | null): { build: string; position: number } | null {
  const m = /^([a-z0-9][-a-z0-9]*)\/(-?\d+)$/.exec(id?.trim() ?? "");
  return m ? { build: m[1] as string, position: Number(m[2]) } : null;
}

/** A request refused before any build (a `failed` event with a status code, no pod). */
class Refusal extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
  ) {
    super(message);
  }
}

/** A build this process knows: waiting for a slot, or running/finished as a session. */
interface BuildEntry {
  name: string;
  imageName: string;
  repoKey: string;
  tokenName: string | null;
  position: number | null;
  session: BuildSession | null;
  startError: string | null;
  /** Clients waiting on this entry while it is queued; the queued build is dropped when the last one leaves. */
  waiters: number;
  abandon: AbortController;
  changed: Set<() => void>;
}

/** How long finished builds stay in memory for late joiners and reconnects, ms. */
const KEEP_FINISHED_MS = 10 * 60_000;

export class BuildService {
  private readonly entries = new Map<string, BuildEntry>();
  private readonly queue: BuildQueue;
  private readonly perToken = new Map<string, { active: number; started: number[] }>();
  private draining = false;

  constructor(private readonly deps: BuildServiceDeps) {
    this.queue = new BuildQueue({ maxRunning: deps.config.limits.maxRunning, maxPerRepository: deps.config.limits.maxPerRepository });
    deps.metrics.bind({ queueLength: () => this.queue.length, running: () => this.queue.running });
  }

  /** Stop taking new builds (SIGTERM); builds in progress keep streaming. */
  drain(): void {
    this.draining = true;
  }

  /** Builds this process follows that have not finished. */
  get activeBuilds(): number {
    return [...this.entries.values()].filter((e) => e.session === null || e.session.outcome === null).length;
  }

  /**
   * Takes over runner Jobs of this service found in the cluster (after a restart): they count against the
   * limits and their logs are followed again, so reconnecting clients find them.
   */
  async adoptRunningBuilds(): Promise<number> {
    const jobs = await this.deps.api.jobs.list(`app.kubernetes.io/managed-by=kube-container-engine,kube-container-engine/role=runner`);
    let adopted = 0;
    for (const job of jobs) {
      const name = job.metadata?.name ?? "";
      const image = job.metadata?.annotations?.[ANNOTATION_IMAGE];
      const repo = job.metadata?.annotations?.[ANNOTATION_REPOSITORY];
      if (!name || !image || !repo || this.entries.has(name) || job.metadata?.deletionTimestamp) continue;
      this.adopt(name, image, repo, jobStateOf(job).state === "active");
      adopted += 1;
    }
    return adopted;
  }

  /**
   * The events for one request, ending with `ready` or `failed`. Without `build_only` (a JupyterHub user's
   * request), the build's `ready` becomes `built`, and the user's server is launched from the image: `launching`
   * events, then `ready` with its `url` and a `token` for it. Never throws.
   */
  async *build(req: BuildRequest): AsyncGenerator<ServiceEvent> {
    const ctx: LaunchContext = { repo: null, commit: null };
    for await (const event of this.buildEvents(req, ctx)) {
      if (req.buildOnly || event.data.phase !== "ready" || ctx.repo === null || ctx.commit === null) {
        yield event;
        continue;
      }
      const found = event.data.message === "Done! Found built image\n";
      const image = String(event.data.imageName);
      yield { id: event.id, data: { phase: "built", imageName: image, message: found ? "Found built image, launching...\n" : "Built image, launching...\n" } };
      yield* this.launch(req, { repo: ctx.repo, commit: ctx.commit }, image, event.id.split("/")[0] ?? "request");
      return;
    }
  }

  private async *buildEvents(req: BuildRequest, ctx: LaunchContext): AsyncGenerator<ServiceEvent> {
    let name: string | null = null;
    try {
      if (this.draining) throw new Refusal(503, "The build service is restarting: try again in a moment.");
      if (!req.buildOnly && (req.identity.kind !== "hub" || this.deps.hub === undefined)) {
        throw new Refusal(
          400,
          this.deps.hub === undefined
            ? "This service builds images only: add build_only=true to the request (launching servers needs a JupyterHub, see the README)."
            : "Launching a server needs a JupyterHub user's token; with the service's own tokens add build_only=true.",
        );
      }
      const repo = this.parse(req);
      ctx.repo = repo;
      const resume = parseEventId(req.lastEventId);
      if (resume && this.entries.has(resume.build)) {
        yield* this.follow(this.entries.get(resume.build) as BuildEntry, req, resume.position);
        return;
      }
      const checked = await this.checkUrl(repo);
      const commit = await this.resolve(repo, checked, req.signal);
      ctx.commit = commit;
      name = buildName(repo.slug, commit);
      const image = await this.fullImageName(repo, commit);
      const after = resume?.build === name ? resume.position : -1;
      const known = this.entries.get(name);
      // A build in progress (or the one a reconnecting client was following) is joined: its log so far, then live.
      if (known && (after >= 0 || !this.finished(known))) {
        this.deps.metrics.requests.inc({ result: "joined" });
        yield* this.follow(known, req, after);
        return;
      }
      if (await this.deps.imageExists(image)) {
        this.deps.metrics.requests.inc({ result: "existing" });
        yield { id: `${name}/ready`, data: { phase: "ready", imageName: image, message: "Done! Found built image\n" } };
        return;
      }
      if (known) this.entries.delete(name); // finished without an image (failed): built again
      const running = await this.findRunner(name, image, repo.repoUrl);
      if (running) {
        this.deps.metrics.requests.inc({ result: "joined" });
        yield* this.follow(running, req, after);
        return;
      }
      // Another request for the same build may have got here during the awaits above: join it, never
      // queue the same build twice (nothing awaits between this check and the entry's creation).
      const meanwhile = this.entries.get(name);
      if (meanwhile && !this.finished(meanwhile)) {
        this.deps.metrics.requests.inc({ result: "joined" });
        yield* this.follow(meanwhile, req, after);
        return;
      }
      const entry = this.enqueue(name, image, repo, checked, commit, identityKey(req.identity));
      this.deps.metrics.requests.inc({ result: "built" });
      yield { id: `${name}/-1`, data: { phase: "waiting", message: "Waiting for build to start...\n" } };
      yield* this.follow(entry, req, after);
    } catch (err) {
      this.deps.metrics.requests.inc({ result: "refused" });
      yield this.failure(name, err);
    }
  }

  /**
   * Starts (or reuses) the user's server for this repository with the image, through the hub's API: BinderHub's
   * `launching` events (the hub's own progress messages), then `ready` with the server's URL and a token of
   * that user for that one server. Failures are `failed` events with the hub's reason.
   */
  private async *launch(req: BuildRequest, ctx: { repo: RepoSpec; commit: string }, image: string, build: string): AsyncGenerator<ServiceEvent> {
    const hub = this.deps.hub as HubClient;
    const user = req.identity.name;
    const server = serverName(ctx.repo.slug);
    const id = `${build}/launch`;
    yield { id, data: { phase: "launching", message: "Launching server...\n" } };
    try {
      let path: string | null = null;
      const existing = await hub.serverModel(user, server);
      if (existing && (existing.ready || existing.pending !== null) && existing.image !== null && existing.image !== image) {
        throw new HubRequestError(
          `your server ${server} runs another build of this repository (${existing.image}): stop it in JupyterHub's control panel, then try again`,
          409,
        );
      }
      if (existing?.ready) {
        path = existing.url;
        yield { id, data: { phase: "launching", message: `Server ${server} already runs this image\n` } };
      } else {
        const launchHost = this.deps.publicUrl ?? hub.settings.publicUrl;
        await hub.startServer(user, server, {
          image,
          repo_url: ctx.repo.repoUrl,
          binder_ref_url: ctx.repo.refUrl(ctx.commit),
          binder_launch_host: launchHost,
          binder_request: `v2/${ctx.repo.provider}/${ctx.repo.spec}`,
          binder_persistent_request: `v2/${ctx.repo.provider}/${ctx.repo.resolvedSpec(ctx.commit)}`,
        }, req.signal);
        for await (const progress of hub.progress(user, server, req.signal)) {
          if (progress.failed) throw new HubRequestError(progress.message || "the server failed to start", 500);
          if (progress.message) yield { id, data: { phase: "launching", message: `${progress.message}\n` } };
          if (progress.ready) path = progress.url ?? null;
        }
      }
      path ??= (await hub.serverModel(user, server))?.url ?? null;
      if (path === null) throw new HubRequestError(`JupyterHub reports server ${server} of ${user} as ready but gives no URL`, 500);
      const url = serverUrl(hub.settings.publicUrl, path);
      const token = await hub.serverToken(user, server);
      this.deps.metrics.launches.inc({ outcome: "success" });
      yield {
        id,
        data: {
          phase: "ready",
          message: `server running at ${url}\n`,
          image,
          imageName: image,
          repo_url: ctx.repo.repoUrl,
          binder_ref_url: ctx.repo.refUrl(ctx.commit),
          binder_launch_host: this.deps.publicUrl ?? hub.settings.publicUrl,
          binder_request: `v2/${ctx.repo.provider}/${ctx.repo.spec}`,
          binder_persistent_request: `v2/${ctx.repo.provider}/${ctx.repo.resolvedSpec(ctx.commit)}`,
          url,
          token,
        },
      };
    } catch (err) {
      this.deps.metrics.launches.inc({ outcome: "failure" });
      if (err instanceof HubUnavailableError) {
        yield { id, data: { phase: "failed", status_code: 503, message: `Launching failed: ${err.message}. The image is built: try again once JupyterHub is back.\n` } };
      } else if (err instanceof HubRequestError) {
        yield { id, data: { phase: "failed", status_code: err.status, message: `Launching failed: ${err.message}\n` } };
      } else {
        yield this.failure(build, err);
      }
    }
  }

  private finished(entry: BuildEntry): boolean {
    return entry.startError !== null || entry.session?.outcome != null;
  }

  private failure(name: string | null, err: unknown): ServiceEvent {
    const id = `${name ?? "request"}/-1`;
    if (err instanceof Refusal) return { id, data: { phase: "failed", status_code: err.statusCode, message: `${err.message}\n` } };
    if (err instanceof SpecError) return { id, data: { phase: "failed", status_code: 400, message: `${err.message}\n` } };
    if (err instanceof InvalidInputError) return { id, data: { phase: "failed", status_code: 403, message: `${err.message}\n` } };
    this.deps.log(`build request failed: ${err instanceof Error ? err.message : String(err)}`);
    const text = err instanceof ContainerEngineError ? err.message : "internal error of the build service";
    return { id, data: { phase: "failed", status_code: 500, message: `${text}\n` } };
  }

  private parse(req: BuildRequest): RepoSpec {
    return parseRepoSpec(req.provider, req.spec, this.deps.config.providers);
  }

  private async checkUrl(repo: RepoSpec): Promise<CheckedUrl> {
    return this.deps.urls.check(repo.repoUrl);
  }

  private async resolve(repo: RepoSpec, checked: CheckedUrl, signal: AbortSignal): Promise<string> {
    const key = `${repo.provider}:${repo.spec}`;
    let commit: string | null;
    try {
      commit = await this.deps.resolveRef(checked, repo.ref, signal);
    } catch (err) {
      if (err instanceof RefResolutionError) throw new Refusal(404, `Error resolving ref for ${key}: ${err.message}`);
      throw err;
    }
    if (commit === null) throw new Refusal(404, `Could not resolve ref for ${key}. Double check your URL and that your repo is public.`);
    return commit;
  }

  private async fullImageName(repo: RepoSpec, commit: string): Promise<string> {
    const prefix = this.deps.config.imagePrefix;
    const first = prefix.split("/")[0] ?? "";
    const hasHost = prefix.includes("/") && (first.includes(".") || first.includes(":") || first === "localhost");
    return imageName(hasHost ? prefix : `${await this.deps.registryHost()}/${prefix}`, repo.slug, commit);
  }

  /** A runner Job of this build in the cluster (another replica's, or this service's before a restart). */
  private async findRunner(name: string, image: string, repoUrl: string): Promise<BuildEntry | null> {
    const job = await this.deps.api.jobs.get(name);
    if (job === null || job.metadata?.deletionTimestamp) return null;
    if (jobStateOf(job).state === "failed") {
      // A failed build is built again (BinderHub does the same); its Job is in the way of the new one.
      await this.deps.api.jobs.deleteIfExists(name, { propagationPolicy: "Foreground" });
      await this.waitJobGone(name);
      return null;
    }
    return this.adopt(name, image, repoUrl, jobStateOf(job).state === "active");
  }

  private async waitJobGone(name: string): Promise<void> {
    for (let i = 0; i < 60; i++) {
      if ((await this.deps.api.jobs.get(name)) === null) return;
      await new Promise((r) => setTimeout(r, 500));
    }
    throw new Refusal(503, `the previous failed build ${name} is still being removed: try again in a moment`);
  }

  private adopt(name: string, image: string, repoUrl: string, active: boolean): BuildEntry {
    const entry = this.newEntry(name, image, repoUrl, null);
    const release = active ? this.queue.adopt(repoUrl) : () => undefined;
    this.startSession(entry, release);
    return entry;
  }

  private newEntry(name: string, image: string, repoKey: string, tokenName: string | null): BuildEntry {
    const entry: BuildEntry = {
      name,
      imageName: image,
      repoKey,
      tokenName,
      position: null,
      session: null,
      startError: null,
      waiters: 0,
      abandon: new AbortController(),
      changed: new Set(),
    };
    this.entries.set(name, entry);
    return entry;
  }

  private notify(entry: BuildEntry): void {
    for (const f of [...entry.changed]) f();
  }

  private checkTokenLimits(tokenName: string): void {
    const limits = this.deps.config.limits;
    const now = (this.deps.now ?? Date.now)();
    const t = this.perToken.get(tokenName) ?? { active: 0, started: [] };
    t.started = t.started.filter((s) => now - s < 3_600_000);
    this.perToken.set(tokenName, t);
    if (t.active >= limits.concurrentBuildsPerToken) {
      throw new Refusal(429, `Too many builds in progress for this token (limit ${limits.concurrentBuildsPerToken}): wait for one to finish.`);
    }
    if (t.started.length >= limits.buildsPerTokenPerHour) {
      throw new Refusal(429, `This token started ${t.started.length} builds in the last hour (limit ${limits.buildsPerTokenPerHour}): try again later.`);
    }
    if (this.queue.length >= limits.maxQueued) throw new Refusal(503, "Too many builds are waiting: try again in a moment.");
    t.active += 1;
    t.started.push(now);
  }

  private enqueue(name: string, image: string, repo: RepoSpec, checked: CheckedUrl, commit: string, tokenName: string): BuildEntry {
    this.checkTokenLimits(tokenName);
    const entry = this.newEntry(name, image, repo.repoUrl, tokenName);
    const queuedAt = Date.now();
    this.queue
      .acquire(repo.repoUrl, {
        signal: entry.abandon.signal,
        onPosition: (position) => {
          entry.position = position;
          this.notify(entry);
        },
      })
      .then(async (release) => {
        this.deps.metrics.queueWait.observe((Date.now() - queuedAt) / 1000);
        entry.position = null;
        try {
          await this.createRunner(entry, checked, commit);
        } catch (err) {
          release();
          throw err;
        }
        this.startSession(entry, release);
      })
      .catch((err: unknown) => {
        entry.startError = entry.abandon.signal.aborted ? "the build was abandoned: no client waits for it" : `the build could not start: ${String(err)}`;
        this.finishEntry(entry, { ok: false, message: entry.startError });
      });
    return entry;
  }

  /** How runner pods run (shared by the Jobs and the warm spares). */
  async podSettings(): Promise<RunnerPodSettings> {
    const c = this.deps.config;
    return {
      namespace: this.deps.api.namespace,
      runnerImage: await this.deps.runnerImage(),
      command: c.runner.command,
      serviceAccountName: c.runner.serviceAccountName,
      env: { ...this.deps.runnerEnv, ...c.runner.env },
      resources: c.runner.resources,
      maxRepoBytes: c.limits.maxRepoBytes,
      instance: this.deps.instance,
      createdAt: new Date((this.deps.now ?? Date.now)()),
    };
  }

  private async createRunner(entry: BuildEntry, checked: CheckedUrl, commit: string): Promise<void> {
    const c = this.deps.config;
    const settings = await this.podSettings();
    const build: RunnerBuild = {
      name: entry.name,
      repoUrl: checked.url,
      commit,
      imageName: entry.imageName,
      resolve: checked.resolve,
      userName: c.runner.userName,
      userId: c.runner.userId,
    };
    // A warm spare claimed first becomes the Job's pod (the Job adopts it): no wait for a pod to start.
    const claimed = await (this.deps.spares?.claim(build, runnerArgs(build, c.limits.maxRepoBytes)) ?? Promise.resolve(null)).catch(
      (err: unknown) => {
        this.deps.log(`no warm runner for ${entry.name}: ${err instanceof Error ? err.message : String(err)}`);
        return null;
      },
    );
    const job = runnerJob({
      ...settings,
      ...build,
      deadlineSeconds: c.limits.buildTimeoutSeconds,
      ttlSecondsAfterFinished: c.runner.ttlSecondsAfterFinished,
    });
    try {
      await this.deps.api.jobs.create(job);
    } catch (err) {
      // The spare must not run a build of its own: with 409 the other Job would even adopt it.
      if (claimed !== null) await this.deps.api.pods.deleteIfExists(claimed, { gracePeriodSeconds: 0 }).catch(() => false);
      // Another replica started the same build a moment ago: follow that one.
      if (!isStatus(err, 409)) throw err;
    }
  }

  private startSession(entry: BuildEntry, release: Release): void {
    const session = new BuildSession(entry.name, entry.imageName, {
      api: this.deps.api,
      imageExists: this.deps.imageExists,
      pullGraceSeconds: this.deps.graces.pullGraceSeconds,
      unschedulableGraceSeconds: this.deps.graces.unschedulableGraceSeconds,
      log: this.deps.log,
    });
    entry.session = session;
    this.notify(entry);
    // Clients hear the outcome as soon as it is known; the slot is free once the runner pod has ended.
    void session.result().then((outcome) => this.finishEntry(entry, outcome));
    void session.follow().then(release);
  }

  private finishEntry(entry: BuildEntry, outcome: BuildOutcome): void {
    const outcomeLabel = outcome.ok ? "success" : "failure";
    this.deps.metrics.builds.inc({ outcome: outcomeLabel });
    if (entry.session) this.deps.metrics.buildDuration.observe((Date.now() - entry.session.startedAt) / 1000, { outcome: outcomeLabel });
    if (entry.tokenName !== null) {
      const t = this.perToken.get(entry.tokenName);
      if (t) t.active = Math.max(0, t.active - 1);
    }
    this.notify(entry);
    setTimeout(() => {
      if (this.entries.get(entry.name) === entry) this.entries.delete(entry.name);
      entry.session?.close();
    }, KEEP_FINISHED_MS).unref();
  }

  /** The events of one build for one client, from after position `after`. */
  private async *follow(entry: BuildEntry, req: BuildRequest, after: number): AsyncGenerator<ServiceEvent> {
    entry.waiters += 1;
    try {
      let told: number | null = null;
      while (entry.session === null && entry.startError === null) {
        if (entry.position !== null && entry.position !== told) {
          told = entry.position;
          yield {
            id: `${entry.name}/${after}`,
            data: { phase: "waiting", position: told, message: `Waiting for a free build slot: position ${told} in the queue\n` },
          };
        }
        await this.changeOf(entry, req.signal);
        if (req.signal.aborted) return;
      }
      if (entry.session === null) {
        yield { id: `${entry.name}/${after}`, data: { phase: "failed", message: `${entry.startError ?? "the build could not start"}\n` } };
        return;
      }
      for await (const item of entry.session.read(after, req.signal)) {
        const event = this.toEvent(entry, item);
        if (event !== null) yield event;
      }
    } finally {
      entry.waiters -= 1;
      // Nobody waits for a build that has not started: give its place in the queue up.
      if (entry.waiters === 0 && entry.session === null && entry.startError === null) entry.abandon.abort();
    }
  }

  private changeOf(entry: BuildEntry, signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = (): void => {
        entry.changed.delete(done);
        signal.removeEventListener("abort", done);
        resolve();
      };
      entry.changed.add(done);
      signal.addEventListener("abort", done, { once: true });
    });
  }

  private toEvent(entry: BuildEntry, item: SessionItem): ServiceEvent | null {
    const id = `${entry.name}/${item.position}`;
    // repo2docker's lines pass through as they are (some have no phase, as in BinderHub's streams), except
    // its `failed` verdict: clients stop at the first `failed`, so the verdict comes once, in the final
    // event, together with the build's last lines.
    if (item.kind === "event") return isFailureEvent(item.event) ? null : { id, data: item.event };
    if (!item.outcome.ok) return { id, data: { phase: "failed", message: item.outcome.message } };
    return { id, data: { phase: "ready", message: "Done! Image built\n", imageName: entry.imageName } };
  }
}
