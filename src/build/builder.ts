/**
 * Runs one build in the cluster: validate → pack the context → create the builder Job (and its credentials
 * Secret) → wait for its pod → stream the context into the builder's stdin while following its log → read the
 * result (never trusting "pod gone" or "Succeeded after a delete": the image must be in the registry) →
 * delete the Job. Failures become `BuildError`s with the builder's last lines.
 */
import type { V1Job, V1Pod } from "@kubernetes/client-node";
import type { ResolvedEngineConfig, ResolvedRegistry } from "../config.js";
import type { BuildOptions, BuildProgress } from "../contract.js";
import { BuildError, CancelledError, ContainerEngineError, DeadlineExceededError, KubernetesApiError } from "../errors.js";
import { formatImageReference, type ImageReference } from "../image.js";
import type { KubeClient } from "../kube/client.js";
import { followLogs } from "../kube/logs.js";
import { attachStdin } from "../kube/stdin.js";
import { podsCollection, ResourceWatch, waitFor } from "../kube/watch.js";
import { builderResultOf, type BuilderFailure } from "../pods/builder-status.js";
import { engineAnnotations, engineLabels } from "../pods/labels.js";
import { containerStarted } from "../kube/logs.js";
import type { StatusOptions } from "../pods/status.js";
import type { RegistryClient } from "../registry/client.js";
import { unknownBuildOptions, validateBuildOptions, type ValidatedBuildOptions } from "./build-options.js";
import { summarizeBuilderFailure } from "./builder-output.js";
import { BUILDER_CONTAINER, registryCredentialsSecret, type BuilderJobInput } from "./builder-spec.js";
import { buildkitJob } from "./buildkit.js";
import { createBuildContext, type BuildContext, type ContextProgress } from "./context.js";
import { BuilderJobs } from "./jobs.js";
import { kanikoIgnoredOptions, kanikoJob } from "./kaniko.js";

/** What a finished build produced. */
export interface BuildResult {
  /** The image as nodes pull it, e.g. "10.0.0.5:5000/name:tag". */
  image: string;
  /** "sha256:…" of the pushed manifest; null when the image was not pushed. */
  digest: string | null;
  pushed: boolean;
  /** Compressed bytes of the context sent to the builder. */
  contextBytes: number;
  /** The builder pod's name. */
  pod: string;
}

/** `engine.build()`'s value: the output lines, plus the result once the iteration finished. */
export interface BuildStream extends AsyncIterable<string> {
  /** Resolves after the iteration completed; rejects with the same error the iteration threw. */
  readonly result: Promise<BuildResult>;
}

/** The engine parts a build uses. */
export interface BuilderDeps {
  engine: { registry(): Promise<ResolvedRegistry>; registryClient(registry: ResolvedRegistry): RegistryClient };
  config: ResolvedEngineConfig;
  client: KubeClient;
  log: (message: string) => void;
}

/** Lines of builder output kept for the error message. */
const LOG_TAIL_LINES = 20;
/** How long the pod may be missing before we look for the Job controller's FailedCreate events. */
const POD_APPEAR_CHECK_MS = 5_000;

export class Builder {
  private readonly jobs: BuilderJobs;

  constructor(private readonly deps: BuilderDeps) {
    this.jobs = new BuilderJobs(deps.client);
  }

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

  push(_ref: string): AsyncIterable<string> {
    throw new ContainerEngineError("push is not implemented yet");
  }

  private async *run(
    options: BuildOptions,
    done: (result: BuildResult) => void,
  ): AsyncGenerator<string> {
    const validated = validateBuildOptions(options);
    for (const name of unknownBuildOptions(options)) this.deps.log(`build: ignoring unknown option ${name}`);
    const context = await createBuildContext({
      ...(options.path !== undefined ? { path: options.path } : {}),
      ...(options.context !== undefined ? { context: options.context } : {}),
      dockerfile: validated.dockerfile,
    });
    try {
      const registry = await this.deps.engine.registry();
      const plan = this.plan(validated, registry, options);
      const progress = options.onProgress ?? (() => undefined);
      const job = await this.jobs.create(plan.job, plan.secret, options.signal);
      try {
        progress({ kind: "phase", message: `builder pod for job ${job.metadata?.name} created` });
        const outcome = yield* this.runJob(job, context, plan, progress, options.signal);
        const result = await this.confirm(plan, registry, context, outcome, options.signal);
        done(result);
      } finally {
        await this.jobs.delete(job);
      }
    } finally {
      await context.dispose();
    }
  }

  /** Everything decided before anything is created. */
  private plan(validated: ValidatedBuildOptions, registry: ResolvedRegistry, options: BuildOptions) {
    const { config } = this.deps;
    const tag: ImageReference = { ...validated.tag, registry: validated.tag.registry ?? registry.host, tag: validated.tag.tag ?? "latest" };
    const image = formatImageReference(tag);
    const pushRef = formatImageReference({ ...tag, registry: tag.registry === registry.host ? registry.pushHost : tag.registry });
    // Both false means "build only"; anything else means the image must end up in its registry.
    const push = !(options.push === false && options.load === false);
    const name = jobName(tag.repository);
    const labels = engineLabels({ instance: config.instanceId, role: "builder", extra: config.labels });
    const credentials = config.registryCredentials;
    const secretName = credentials ? `${name}-registry` : registry.credentialsSecret;
    const input: BuilderJobInput = {
      name,
      namespace: this.deps.client.namespace,
      labels,
      annotations: engineAnnotations({ createdAt: new Date(), image }),
      image: config.builder === "kaniko" ? config.builderImages.kaniko : config.builderImages.buildkit,
      imagePullPolicy: "IfNotPresent",
      destinations: [pushRef],
      dockerfile: validated.dockerfile,
      buildArgs: validated.buildArgs,
      imageLabels: validated.labels,
      cacheFrom: validated.cacheFrom.map(formatImageReference),
      ...(validated.platform ? { platform: validated.platform } : {}),
      push,
      insecureRegistries: registry.insecure ? [...new Set([registry.host, registry.pushHost])] : [],
      deadlineSeconds: config.timeouts.buildSeconds,
      ttlSecondsAfterFinished: config.timeouts.builderTtlSeconds,
      ...(options.containerLimits ? { containerLimits: options.containerLimits } : {}),
      ...(secretName ? { credentialsSecret: secretName } : {}),
      ...(config.serviceAccountName ? { serviceAccountName: config.serviceAccountName } : {}),
      nodeSelector: config.nodeSelector,
      tolerations: config.tolerations,
    };
    if (config.builder === "kaniko") {
      for (const what of kanikoIgnoredOptions(input)) this.deps.log(`build: kaniko ignores ${what}`);
    }
    const job: V1Job =
      config.builder === "kaniko"
        ? kanikoJob(input)
        : buildkitJob({ ...input, mode: config.buildkitMode === "rootless" ? "rootless" : "privileged" });
    const secret = credentials
      ? registryCredentialsSecret(
          `${name}-registry`,
          { registry: credentials.registry || registry.pushHost, username: credentials.username, password: credentials.password },
          { namespace: input.namespace, labels },
        )
      : null;
    return { job, secret, image, pushRef, push, tag, podSelector: `job-name=${name}` };
  }

  /** Waits for the builder pod, streams the context in, and yields the builder's output until it ends. */
  private async *runJob(
    job: V1Job,
    context: BuildContext,
    plan: ReturnType<Builder["plan"]>,
    progress: (p: BuildProgress) => void,
    signal: AbortSignal | undefined,
  ): AsyncGenerator<string, { pod: string; digest: string | null }> {
    const name = job.metadata?.name ?? "";
    const stop = new AbortController();
    const abort = (): void => stop.abort();
    signal?.addEventListener("abort", abort, { once: true });
    const tail: string[] = [];
    try {
      let pod = await this.waitForStart(name, plan.podSelector, stop.signal);
      const podName = pod.metadata?.name ?? "";
      progress({ kind: "phase", message: `builder pod ${podName} started` });
      const sent = context.open({
        onProgress: (p: ContextProgress) => progress({ kind: "context", ...p }),
      });
      const upload = attachStdin(this.deps.client, {
        pod: podName,
        container: BUILDER_CONTAINER,
        source: sent.stream,
        signal: stop.signal,
      }).then(
        () => null,
        (err: unknown) => {
          sent.stream.destroy();
          return err;
        },
      );
      for await (const line of followLogs(this.deps.client, { pod: podName, container: BUILDER_CONTAINER, signal: stop.signal })) {
        tail.push(line.text);
        if (tail.length > LOG_TAIL_LINES) tail.shift();
        yield `${line.text}\n`;
      }
      const uploadError = await upload;
      pod = await this.finalPod(podName, stop.signal);
      return { pod: podName, digest: this.checkResult(pod, tail, uploadError) };
    } catch (err) {
      if (signal?.aborted) throw new CancelledError(`build of ${plan.image} cancelled; the builder was deleted`, { cause: err });
      if (err instanceof BuildError) throw err;
      if (err instanceof DeadlineExceededError || err instanceof KubernetesApiError) {
        throw new BuildError(`build of ${plan.image} failed: ${err.message}`, { reason: "failed", logTail: tail, cause: err });
      }
      throw err;
    } finally {
      signal?.removeEventListener("abort", abort);
      stop.abort();
    }
  }

  private statusOptions(): StatusOptions {
    return {
      now: new Date(),
      pullGraceSeconds: this.deps.config.timeouts.imagePullGraceSeconds,
      unschedulableGraceSeconds: this.deps.config.timeouts.unschedulableGraceSeconds,
      containerName: BUILDER_CONTAINER,
    };
  }

  /** Waits until the builder container started, or throws the BuildError of a pod that never will. */
  private async waitForStart(jobName: string, selector: string, signal: AbortSignal): Promise<V1Pod> {
    const watch = new ResourceWatch<V1Pod>(this.deps.client, podsCollection(this.deps.client.namespace), { labelSelector: selector });
    for (;;) {
      try {
        const outcome = await waitFor(
          watch,
          (pod) => containerStarted(pod, BUILDER_CONTAINER) || builderResultOf(pod, null, this.statusOptions()).state === "failed",
          { signal, timeoutMs: POD_APPEAR_CHECK_MS, description: `the builder pod of job ${jobName} to start` },
        );
        if (outcome.kind === "deleted" || !outcome.object) {
          throw new BuildError(`the builder pod of job ${jobName} was deleted before it started`, { reason: "deleted" });
        }
        const result = builderResultOf(outcome.object, null, this.statusOptions());
        if (result.state === "failed") throw failureError(result.failure, []);
        return outcome.object;
      } catch (err) {
        if (!(err instanceof DeadlineExceededError)) throw err;
        await this.jobs.throwIfCreateFailed(jobName);
      }
    }
  }

  private async finalPod(name: string, signal: AbortSignal): Promise<V1Pod> {
    return this.deps.client.call(
      "get",
      "pods",
      (o) => this.deps.client.core.readNamespacedPod({ name, namespace: this.deps.client.namespace }, o),
      { name, signal },
    );
  }

  /** The digest the builder reported, or the BuildError of its failure. */
  private checkResult(pod: V1Pod, tail: string[], uploadError: unknown): string | null {
    const result = builderResultOf(pod, null, { ...this.statusOptions(), pullGraceSeconds: 0 });
    if (result.state === "succeeded") return result.digest;
    if (result.state === "failed") {
      if (uploadError) {
        throw new BuildError(`the build context could not be delivered: ${String(uploadError)}`, {
          reason: "upload",
          exitCode: result.failure.exitCode,
          logTail: tail,
          cause: uploadError,
        });
      }
      throw failureError(result.failure, tail);
    }
    throw new BuildError(`the builder pod ${pod.metadata?.name} ended in an unknown state`, { reason: "failed", logTail: tail });
  }

  /** The builder said it pushed: check the registry agrees (a deleted pod can look successful). */
  private async confirm(
    plan: ReturnType<Builder["plan"]>,
    registry: ResolvedRegistry,
    context: BuildContext,
    outcome: { pod: string; digest: string | null },
    signal: AbortSignal | undefined,
  ): Promise<BuildResult> {
    let digest = outcome.digest;
    if (plan.push) {
      const client = this.deps.engine.registryClient(registry);
      const found = await client.manifestDigest(plan.tag, signal ? { signal } : {});
      if (!found) {
        throw new BuildError(`the builder reported success but ${plan.image} is not in the registry`, { reason: "not-found" });
      }
      digest = found;
    }
    return { image: plan.image, digest, pushed: plan.push, contextBytes: context.tarBytes, pod: outcome.pod };
  }
}

/**
 * A BuildError for a classified failure. For a builder that ran and failed, the message leads with the
 * builder's own error line (e.g. the failing RUN's exit code) and ends with its last lines.
 */
function failureError(failure: BuilderFailure, tail: string[]): BuildError {
  if (failure.kind !== "failed" || tail.length === 0) {
    const lines = tail.length > 0 ? `\n${tail.join("\n")}` : "";
    return new BuildError(`${failure.message}${lines}`, { reason: failure.reason, exitCode: failure.exitCode, logTail: tail });
  }
  const output = summarizeBuilderFailure(tail, failure.exitCode, LOG_TAIL_LINES);
  return new BuildError(`build failed: ${output.summary}\n--- last builder output ---\n${output.logTail.join("\n")}`, {
    reason: failure.reason,
    exitCode: output.exitCode,
    logTail: output.logTail,
  });
}

/** `kce-build-<repository tail>-<random>`, at most 52 characters (pod names add a suffix to a Job's). */
function jobName(repository: string): string {
  const slug = (repository.split("/").pop() ?? "image").replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 30);
  const random = Math.random().toString(16).slice(2, 10).padEnd(8, "0");
  return `kce-build-${slug || "image"}-${random}`;
}
