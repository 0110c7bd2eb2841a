/**
 * Runs one build in the cluster: validate → pack the context → hash it → if the registry already holds the
 * image for that content hash, tag it and stop (no pod) → else create the builder Job (and its credentials
 * Secret), or join the identical build already running under the same deterministic Job name → stream the
 * context into the builder's stdin while following its log → confirm the image in the registry (never
 * trusting "pod gone" or "Succeeded after a delete") → delete the Job. Failures become `BuildError`s with the
 * builder's last lines.
 */
import { randomBytes } from "node:crypto";
import type { V1Job } from "@kubernetes/client-node";
import type { ResolvedRegistry } from "../config.js";
import type { BuildOptions, BuildProgress } from "../contract.js";
import { BuildError, ContainerEngineError, InvalidInputError } from "../errors.js";
import { isStatus } from "../kube/api.js";
import { jobStateOf } from "../pods/builder-status.js";
import { unknownBuildOptions, validateBuildOptions, type ValidatedBuildOptions } from "./build-options.js";
import { BuildkitModes } from "./buildkit-probe.js";
import type { BuilderDeps } from "./deps.js";
import { buildContentHash, contentJobName, randomJobName } from "./content-hash.js";
import { ContentStore } from "./content-store.js";
import { createBuildContext, type BuildContext } from "./context.js";
import { blameUpload, JobRunner, type JobOutcome } from "./job-run.js";
import { BuilderJobs } from "./jobs.js";
import { builderInput, imageTarget, insecureRegistries, planBuilderJob, type ImageTarget, type JobPlan } from "./plan.js";
import { buildctlArgs } from "./buildkit.js";
import { BuildkitPool } from "./pool/pool.js";
import { routingIdentity } from "./pool/routing.js";
import { buildWorkspace } from "./pool/spec.js";
import { describePushFailure, isUnauthorized, pushImage } from "./push.js";

/** What a finished build produced. */
export interface BuildResult {
  /** The image as nodes pull it, e.g. "10.0.0.5:5000/name:tag". */
  image: string;
  /** "sha256:…" of the pushed manifest; null when the image was not pushed. */
  digest: string | null;
  pushed: boolean;
  /** Compressed bytes of the context sent to the builder (0 when no builder ran). */
  contextBytes: number;
  /** The builder pod's name; null when no pod ran (the image for the content hash existed). */
  pod: string | null;
  /** The build's content hash (hex sha256); null when builds are not content-addressed. */
  contentHash: string | null;
  /** `built` by our own pod, `joined` an identical build's pod, or reused the `existing` image. */
  source: "built" | "joined" | "existing";
}

/** `engine.build()`'s value: the output lines, plus the result once the iteration finished. */
export interface BuildStream extends AsyncIterable<string> {
  /** Resolves after the iteration completed; rejects with the same error the iteration threw. */
  readonly result: Promise<BuildResult>;
}

export type { BuilderDeps } from "./deps.js";

/** How often a build retries after the identical build it joined was deleted (its creator cancelled). */
const MAX_JOIN_ATTEMPTS = 3;

/** One build, as the steps below see it. */
interface BuildJob {
  options: BuildOptions;
  validated: ValidatedBuildOptions;
  context: BuildContext;
  registry: ResolvedRegistry;
  target: ImageTarget;
  push: boolean;
  contentHash: string | null;
  buildkitMode: "privileged" | "rootless";
  progress: (p: BuildProgress) => void;
}

/** Builds images in builder Jobs and pushes them; see the module comment. */
export class Builder {
  private readonly jobs: BuilderJobs;
  private readonly runner: JobRunner;

  constructor(private readonly deps: BuilderDeps) {
    this.jobs = new BuilderJobs(deps.api);
    this.runner = new JobRunner({ api: deps.api, config: deps.config, jobs: this.jobs });
  }

  /** Starts a build; the returned stream yields the output lines (see {@link BuildStream}). */
  build(options: BuildOptions): BuildStream {
    let settle!: { resolve: (r: BuildResult) => void; reject: (e: unknown) => void };
    const result = new Promise<BuildResult>((resolve, reject) => (settle = { resolve, reject }));
    result.catch(() => undefined); // observed by whoever awaits it; never an unhandled rejection
    const run = this.run(options, (r) => settle.resolve(r));
    let started = false;
    return {
      result,
      [Symbol.asyncIterator]: () => {
        if (started) throw new ContainerEngineError("a build stream can be iterated only once");
        started = true;
        return (async function* () {
          try {
            yield* run;
          } catch (err) {
            settle.reject(err);
            throw err;
          }
        })();
      },
    };
  }

  /** Copies `ref` from the engine's registry to its own registry through a builder Job; see push.ts. */
  push(ref: string, options: { signal?: AbortSignal } = {}): AsyncIterable<string> {
    return pushImage({ ...this.deps, jobs: this.jobs, runner: this.runner, modes: this.modes() }, ref, options);
  }

  private modes(): BuildkitModes {
    return new BuildkitModes(this.deps);
  }

  private async *run(options: BuildOptions, done: (result: BuildResult) => void): AsyncGenerator<string> {
    const validated = validateBuildOptions(options);
    for (const name of unknownBuildOptions(options)) this.deps.log(`build: ignoring unknown option ${name}`);
    const context = await createBuildContext({
      ...(options.path !== undefined ? { path: options.path } : {}),
      ...(options.context !== undefined ? { context: options.context } : {}),
      dockerfile: validated.dockerfile,
    });
    try {
      const registry = await this.deps.registries.registry();
      const { config } = this.deps;
      const build: BuildJob = {
        options,
        validated,
        context,
        registry,
        target: imageTarget(validated.tag, registry),
        // Both false means "build only"; anything else means the image must end up in its registry.
        push: !(options.push === false && options.load === false),
        contentHash: null,
        buildkitMode: config.builder === "buildkit" ? await this.modes().resolve(registry) : config.builder === "buildkit-pool" ? "rootless" : "privileged",
        progress: options.onProgress ?? (() => undefined),
      };
      if (config.contentAddressed) {
        build.contentHash = buildContentHash({
          contextSha256: (await context.digest()).sha256,
          dockerfile: validated.dockerfile,
          buildArgs: validated.buildArgs,
          labels: validated.labels,
          platform: validated.platform,
          // The pool's daemons build what a BuildKit pod builds: one content tag serves both.
          builder: config.builder === "buildkit-pool" ? "buildkit" : config.builder,
        });
        const existing = await this.store(registry).reuse(build.target, build.contentHash, build.push, options.signal);
        if (existing) {
          yield `Using existing image for content hash ${build.contentHash.slice(0, 16)}: ${build.target.image}@${existing} (no builder pod started)\n`;
          done(this.result(build, { pod: null, digest: existing, contextBytes: 0 }, "existing"));
          return;
        }
      }
      done(config.builder === "buildkit-pool" ? yield* this.onPool(build) : yield* this.createOrJoin(build));
    } finally {
      await context.dispose();
    }
  }

  private store(registry: ResolvedRegistry): ContentStore {
    return new ContentStore(this.deps.registries.registryClient(registry), this.deps.log);
  }

  private plan(build: BuildJob, jobName: string): JobPlan {
    const plan = planBuilderJob({
      config: this.deps.config,
      registry: build.registry,
      namespace: this.deps.api.namespace,
      jobName,
      secretName: `${jobName}-registry-${randomBytes(3).toString("hex")}`,
      target: build.target,
      options: build.validated,
      push: build.push,
      contentHash: build.contentHash,
      buildkitMode: build.buildkitMode,
      ...(build.options.containerLimits ? { containerLimits: build.options.containerLimits } : {}),
      createdAt: new Date(),
    });
    for (const what of plan.ignored) this.deps.log(`build: ${this.deps.config.builder} ignores ${what}`);
    return plan;
  }

  /**
   * Creates the builder Job, or — when a content-addressed Job of the same name exists — follows that
   * identical build instead of starting a second pod. A finished or dying Job of that name is replaced.
   */
  private async *createOrJoin(build: BuildJob): AsyncGenerator<string, BuildResult> {
    const { signal } = build.options;
    // Only a build that leaves its image under the content tag can be shared: a joiner finds its result there.
    const shareable = build.contentHash !== null && build.push && build.target.inEngineRegistry;
    const jobName = shareable && build.contentHash
      ? contentJobName(build.contentHash, build.target.pushRef.replace(/[:@][^/]*$/, ""))
      : randomJobName("build", build.target.tag.repository, () => randomBytes(4).toString("hex"));
    for (let attempt = 1; ; attempt++) {
      const plan = this.plan(build, jobName);
      const created = await this.createJob(plan, shareable, signal);
      if (created) return yield* this.own(build, plan, created);
      const other = await this.jobs.read(jobName, signal);
      if (other && !other.metadata?.deletionTimestamp && jobStateOf(other).state === "active") {
        const joined = yield* this.join(build, other);
        if (joined) return joined;
      } else if (other) {
        // A finished Job a crashed client left (the TTL removes it later) or one being deleted: replace it.
        if (!other.metadata?.deletionTimestamp) await this.jobs.delete(other);
        await this.jobs.waitGone(jobName, signal);
      }
      if (attempt >= MAX_JOIN_ATTEMPTS) {
        throw new BuildError(`could not start or join the builder job ${jobName} after ${attempt} attempts`, { reason: "deleted" });
      }
    }
  }

  /** The created Job, or null when one of that name exists (409) and `mayExist`. */
  private async createJob(plan: JobPlan, mayExist: boolean, signal: AbortSignal | undefined): Promise<V1Job | null> {
    try {
      return await this.jobs.create(plan.job, plan.secret, signal);
    } catch (err) {
      if (mayExist && isStatus(err, 409)) return null;
      throw err;
    }
  }

  /** Runs our own Job to its end and deletes it. */
  private async *own(build: BuildJob, plan: JobPlan, job: V1Job): AsyncGenerator<string, BuildResult> {
    try {
      build.progress({ kind: "phase", message: `builder pod for job ${job.metadata?.name} created` });
      const outcome = yield* this.runner.run({ job, context: build.context, image: build.target.image, progress: build.progress, signal: build.options.signal });
      return await this.confirm(build, outcome);
    } catch (err) {
      throw this.explain(build, err);
    } finally {
      await this.jobs.delete(job);
    }
  }

  /**
   * Follows another client's identical build. Returns its result once the image for the content hash is in
   * the registry; null when that build was deleted before it finished (the caller then builds itself).
   * @throws the joined build's BuildError when it failed; CancelledError.
   */
  private async *join(build: BuildJob, job: V1Job): AsyncGenerator<string, BuildResult | null> {
    const hash = build.contentHash ?? "";
    yield `Joining the identical build already running in job ${job.metadata?.name} (content hash ${hash.slice(0, 16)})\n`;
    let outcome: JobOutcome | null = null;
    let failure: unknown = null;
    try {
      outcome = yield* this.runner.run({ job, context: null, image: build.target.image, progress: build.progress, signal: build.options.signal });
    } catch (err) {
      failure = err;
    }
    const digest = await this.store(build.registry).reuse(build.target, hash, build.push, build.options.signal);
    if (digest) return this.result(build, { pod: outcome?.pod ?? null, digest, contextBytes: 0 }, "joined");
    // Deleted (its creator cancelled) or starved of its context (its creator died mid-upload): build ourselves.
    if (failure instanceof BuildError && (failure.reason === "deleted" || failure.reason === "upload")) return null;
    if (failure instanceof BuildError && failure.reason === "failed" && blameUpload(failure.logTail)) return null;
    if (failure) throw failure;
    return null;
  }

  /**
   * Builds on the warm BuildKit pool: no Job, no pod — one exec on a leased daemon. The daemon keeps its
   * cache locally, so no registry cache is exported; the result is confirmed in the registry as for Jobs.
   */
  private async *onPool(build: BuildJob): AsyncGenerator<string, BuildResult> {
    const { config, api } = this.deps;
    if (config.registryCredentials) {
      throw new InvalidInputError(
        "builder buildkit-pool pushes with the registry's credentialsSecret (mounted in its daemons), not with registryCredentials: use kaniko or buildkit for this push",
      );
    }
    const buildId = `b${Date.now().toString(36)}${randomBytes(4).toString("hex")}`;
    const { jobInput } = builderInput({
      config,
      registry: build.registry,
      namespace: api.namespace,
      jobName: buildId,
      secretName: "",
      target: build.target,
      options: build.validated,
      push: build.push,
      contentHash: build.contentHash,
      buildkitMode: "rootless",
      noCache: true,
      createdAt: new Date(),
    });
    const args = buildctlArgs({ ...jobInput, mode: "rootless", noCacheExport: true }, buildWorkspace(buildId));
    args.push("--opt", `build-arg:BUILDKIT_CACHE_MOUNT_NS=${config.pool.tenant ?? api.namespace}`);
    const outcome = yield* this.pool(build.registry).build({
      identity: routingIdentity(build.target.pushRef),
      buildId,
      buildctlArgs: args,
      context: build.context,
      compression: config.contextCompression,
      ...(build.options.signal ? { signal: build.options.signal } : {}),
      phase: (message) => build.progress({ kind: "phase", message }),
    });
    try {
      return await this.confirm(build, { pod: outcome.pod, digest: outcome.digest });
    } catch (err) {
      throw this.explain(build, err);
    }
  }

  private pool(registry: ResolvedRegistry): BuildkitPool {
    const { config, api } = this.deps;
    return new BuildkitPool({
      api,
      exec: (options) => api.execInPod(options),
      daemon: {
        ...config.pool,
        image: config.builderImages.buildkit,
        namespace: api.namespace,
        instance: "pool",
        extraLabels: config.labels,
        insecureRegistries: insecureRegistries(config, registry, null),
        ...(registry.credentialsSecret ? { credentialsSecret: registry.credentialsSecret } : {}),
        ...(config.serviceAccountName ? { serviceAccountName: config.serviceAccountName } : {}),
        nodeSelector: config.nodeSelector,
        tolerations: config.tolerations,
      },
      buildSeconds: config.timeouts.buildSeconds,
      log: this.deps.log,
    });
  }

  /** A build that pushes to another registry and was refused there says which credentials to set. */
  private explain(build: BuildJob, err: unknown): unknown {
    if (!(err instanceof BuildError) || build.target.inEngineRegistry || !build.push) return err;
    const output = [err.message, ...err.logTail].join("\n");
    if (!isUnauthorized(output)) return err;
    const credentialsFor = this.deps.config.registryCredentials?.registry ?? null;
    return new BuildError(describePushFailure(err.message, build.target.image, credentialsFor), {
      reason: err.reason,
      exitCode: err.exitCode,
      logTail: err.logTail,
      cause: err,
    });
  }

  /** The builder said it pushed: check the registry agrees (a deleted pod can look successful). */
  private async confirm(build: BuildJob, outcome: JobOutcome): Promise<BuildResult> {
    const sent = build.context.tarBytes;
    if (!build.push) return this.result(build, { ...outcome, contextBytes: sent }, "built");
    if (!build.target.inEngineRegistry) {
      // Another registry (credentials only in the builder's Secret): the builder's own report must do.
      if (!outcome.digest) {
        throw new BuildError(`the builder reported no digest for ${build.target.image}: the push is unconfirmed`, { reason: "not-found" });
      }
      return this.result(build, { ...outcome, contextBytes: sent }, "built");
    }
    const client = this.deps.registries.registryClient(build.registry);
    const found = await client.manifestDigest(build.target.tag, build.options.signal ? { signal: build.options.signal } : {});
    if (!found) {
      throw new BuildError(`the builder reported success but ${build.target.image} is not in the registry`, { reason: "not-found" });
    }
    return this.result(build, { ...outcome, digest: found, contextBytes: sent }, "built");
  }

  private result(
    build: BuildJob,
    what: { pod: string | null; digest: string | null; contextBytes: number },
    source: BuildResult["source"],
  ): BuildResult {
    return { image: build.target.image, pushed: build.push, contentHash: build.contentHash, source, ...what };
  }
}
