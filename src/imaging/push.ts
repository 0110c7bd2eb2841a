/**
 * `push(ref)`: copies an image the engine built (it lives in the engine's registry under the same repository
 * and tag) to the registry `ref` names, through a builder Job in the cluster — no image bytes pass through the
 * client. The Job builds the one-line Dockerfile `FROM <engine registry>/<repository>@<digest>` and pushes it
 * to `ref` with the per-push credentials Secret (from `registryCredentials` /
 * `CONTAINER_ENGINE_REGISTRY_CREDENTIALS`), which is owned by the Job and deleted with it.
 *
 * How faithful the copy is (measured on the local cluster, test/e2e/build/push.test.ts): the layers are the
 * same blobs (same digests: the builders re-push the base image's compressed layers as they are) and the
 * runtime config (Env, Cmd, Entrypoint, WorkingDir, User, ExposedPorts, Labels, history) is inherited by
 * `FROM`. BuildKit re-exports the config unchanged except that it drops the source's inline cache metadata
 * (`moby.buildkit.cache.v0`, which BuildKit builds that push add): without that key in the source the copy's
 * manifest digest equals the source's. Kaniko writes a new config whose only difference is `created`, so the
 * manifest digest differs. Either way an index is reduced to the build platform's image and manifest
 * annotations are not copied. No cache metadata is exported.
 */
import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { pack } from "tar-stream";
import type { ResolvedRegistry } from "../config.js";
import { BuildError, ContainerEngineError, ImageLoadError, InvalidInputError } from "../errors.js";
import { parseImageReference } from "../image.js";
import type { BuilderDeps } from "./deps.js";
import type { BuildkitModes } from "./buildkit-probe.js";
import { randomJobName } from "./content-hash.js";
import { createBuildContext, type BuildContext } from "./context.js";
import type { JobOutcome, JobRunner } from "./job-run.js";
import type { BuilderJobs } from "./jobs.js";
import { imageTarget, planBuilderJob, type ImageTarget } from "./plan.js";

/** What a push uses: the builder's parts. */
export interface PushDeps extends BuilderDeps {
  jobs: BuilderJobs;
  runner: JobRunner;
  modes: BuildkitModes;
}

const UNAUTHORIZED = /unauthori[sz]ed|authentication required|no basic auth credentials|\b401\b|denied|\b403\b|forbidden/i;

/** Whether a builder's output says the registry refused the credentials (or their absence). */
export function isUnauthorized(output: string): boolean {
  return UNAUTHORIZED.test(output);
}

/**
 * The message of a failed push, in words a user can act on (pure). `output` is the builder's error and last
 * lines; `credentialsFor` the registry the configured credentials are for (null when none are configured).
 */
export function describePushFailure(output: string, destination: string, credentialsFor: string | null): string {
  const host = parseImageReference(destination).registry ?? "docker.io";
  if (!isUnauthorized(output)) return `push of ${destination} failed: ${output}`;
  let hint: string;
  if (credentialsFor === null) {
    hint = `no credentials are configured: set registryCredentials (or CONTAINER_ENGINE_REGISTRY_CREDENTIALS) for ${host}`;
  } else if (credentialsFor !== "" && credentialsFor.replace(/^https?:\/\//, "").replace(/\/.*$/, "") !== host) {
    hint = `the configured credentials are for ${credentialsFor}, not ${host}`;
  } else {
    hint = `check the username and password configured for ${host}`;
  }
  return `unauthorized: registry ${host} refused to accept ${destination}: ${hint}\n${output}`;
}

/** A gzip-able context holding only `Dockerfile`. */
function dockerfileContext(dockerfile: string): Promise<BuildContext> {
  const archive = pack();
  archive.entry({ name: "Dockerfile", mode: 0o644 }, dockerfile);
  archive.finalize();
  return createBuildContext({ context: Readable.from(archive) });
}

/** The source in the engine's registry and its digest; throws ImageLoadError when it is not there. */
async function findSource(deps: PushDeps, registry: ResolvedRegistry, target: ImageTarget, signal?: AbortSignal): Promise<string> {
  const source = { ...target.tag, registry: registry.host };
  let digest: string | null;
  try {
    digest = await deps.registries.registryClient(registry).manifestDigest(source, signal ? { signal } : {});
  } catch (err) {
    if (!(err instanceof ContainerEngineError) || signal?.aborted) throw err;
    throw new ImageLoadError(`cannot read ${source.repository}:${source.tag} from the engine's registry ${registry.host}: ${err.message}`, { cause: err });
  }
  if (!digest) {
    throw new ImageLoadError(
      `there is no image ${source.repository}:${source.tag} in the engine's registry ${registry.host} to push: build it first ` +
        `(a build tagged ${target.image} pushes there directly)`,
    );
  }
  return digest;
}

/**
 * Pushes `ref`; yields progress lines (each ending "\n").
 * @throws InvalidInputError for a malformed reference or one with a digest; ImageLoadError when the image is
 *   not in the engine's registry or the copy failed (with the builder's reason, e.g. "unauthorized: …");
 *   CancelledError when `signal` aborts (the Job is deleted).
 */
export async function* pushImage(deps: PushDeps, ref: string, options: { signal?: AbortSignal } = {}): AsyncGenerator<string> {
  const parsed = parseImageReference(ref);
  if (parsed.digest) throw new InvalidInputError(`push needs a tag, not a digest: ${ref}`);
  const registry = await deps.registries.registry();
  const target = imageTarget(parsed, registry);
  const digest = await findSource(deps, registry, target, options.signal);
  if (target.inEngineRegistry) {
    yield `${target.image} is in the engine's registry already (${digest}): nothing to push\n`;
    return;
  }
  const buildkitMode = deps.config.builder === "buildkit" ? await deps.modes.resolve(registry) : "privileged";
  const from = `${registry.pushHost}/${target.tag.repository}@${digest}`;
  yield `Pushing ${registry.host}/${target.tag.repository}:${target.tag.tag} to ${target.image} through an in-cluster ${deps.config.builder} builder\n`;
  const context = await dockerfileContext(`FROM ${from}\n`);
  try {
    const outcome = yield* copy(deps, { registry, target, context, buildkitMode, signal: options.signal });
    yield `Pushed ${target.image}${outcome.digest ? `@${outcome.digest}` : ""}\n`;
  } finally {
    await context.dispose();
  }
}

/** Runs the copy Job; a failed build becomes an ImageLoadError. */
async function* copy(
  deps: PushDeps,
  input: { registry: ResolvedRegistry; target: ImageTarget; context: BuildContext; buildkitMode: "privileged" | "rootless"; signal: AbortSignal | undefined },
): AsyncGenerator<string, JobOutcome> {
  const jobName = randomJobName("push", input.target.tag.repository, () => randomBytes(4).toString("hex"));
  const plan = planBuilderJob({
    config: deps.config,
    registry: input.registry,
    namespace: deps.api.namespace,
    jobName,
    secretName: `${jobName}-registry`,
    target: input.target,
    options: { tag: input.target.tag, dockerfile: "Dockerfile", buildArgs: {}, labels: {}, cacheFrom: [], platform: null, memoryLimit: null },
    push: true,
    contentHash: null,
    buildkitMode: input.buildkitMode,
    noCache: true,
    createdAt: new Date(),
  });
  const job = await deps.jobs.create(plan.job, plan.secret, input.signal);
  try {
    const outcome = yield* deps.runner.run({ job, context: input.context, image: input.target.image, progress: () => undefined, signal: input.signal });
    if (!outcome.digest) throw new ImageLoadError(`the builder reported no digest for ${input.target.image}: the push is unconfirmed`);
    return outcome;
  } catch (err) {
    if (!(err instanceof BuildError)) throw err;
    const output = err.logTail.length > 0 && !err.message.includes(err.logTail.at(-1) ?? "") ? [err.message, ...err.logTail].join("\n") : err.message;
    const credentialsFor = deps.config.registryCredentials?.registry ?? null;
    throw new ImageLoadError(describePushFailure(output, input.target.image, credentialsFor), { cause: err });
  } finally {
    await deps.jobs.delete(job);
  }
}
