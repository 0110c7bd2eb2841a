/**
 * The Kaniko builder Job (pure). The executor reads the gzip tar of the context from stdin
 * (`--context=tar://stdin`), builds, pushes and writes the digest to the termination log. The pod passes Pod
 * Security `baseline`: root, but not privileged, no added capabilities, no host paths. Credentials are the
 * per-build dockerconfigjson Secret mounted as `/kaniko/.docker/config.json` — never args or env.
 */
import type { V1Job, V1Volume, V1VolumeMount } from "@kubernetes/client-node";
import {
  TERMINATION_LOG,
  builderContainerBase,
  builderJob,
  labelValues,
  type BuilderJobInput,
} from "./builder-spec.js";

/** Kaniko's input: the common one. */
export type KanikoJobInput = BuilderJobInput;

/** Where Kaniko reads registry credentials. */
export const KANIKO_DOCKER_CONFIG = "/kaniko/.docker/config.json";

const CREDENTIALS_VOLUME = "registry-credentials";

/** The insecure registry hosts, deduplicated and sorted (stable args). */
function insecureHosts(input: KanikoJobInput): string[] {
  return [...new Set(input.insecureRegistries ?? [])].sort();
}

/** The executor's arguments, in a fixed order. */
export function kanikoArgs(input: KanikoJobInput): string[] {
  const args = [
    "--context=tar://stdin",
    `--dockerfile=${input.dockerfile}`,
    ...input.destinations.map((d) => `--destination=${d}`),
    `--digest-file=${TERMINATION_LOG}`,
    ...Object.entries(input.buildArgs ?? {}).map(([k, v]) => `--build-arg=${k}=${v}`),
    ...labelValues(input.imageLabels).map(([k, v]) => `--label=${k}=${v}`),
  ];
  if (input.cacheRepo) args.push("--cache=true", `--cache-repo=${input.cacheRepo}`);
  if (input.platform) args.push(`--custom-platform=${input.platform}`);
  if (!input.push) args.push("--no-push");
  for (const host of insecureHosts(input)) {
    args.push(`--insecure-registry=${host}`, `--skip-tls-verify-registry=${host}`);
  }
  args.push(
    // Snapshots of uncompressed layers: compressed caching is what makes Kaniko OOM on big images.
    "--compressed-caching=false",
    "--snapshot-mode=redo",
    "--push-retry=2",
    "--log-format=text",
    "--log-timestamp=false",
    "--verbosity=info",
  );
  return args;
}

/** Options Kaniko cannot honour, for the caller to warn about. */
export function kanikoIgnoredOptions(input: KanikoJobInput): string[] {
  const ignored: string[] = [];
  if (input.cacheFrom && input.cacheFrom.length > 0) {
    ignored.push("cacheFrom (Kaniko only caches layers in a cache repository; set a cache repo instead)");
  }
  return ignored;
}

/**
 * The Kaniko Job. Throws `InvalidInputError` for a bad name, no destination, a bad deadline.
 * The caller attaches to container {@link BUILDER_CONTAINER}'s stdin, writes the gzip tar and closes it.
 */
export function kanikoJob(input: KanikoJobInput): V1Job {
  const volumes: V1Volume[] = [];
  const volumeMounts: V1VolumeMount[] = [];
  if (input.credentialsSecret) {
    volumes.push({ name: CREDENTIALS_VOLUME, secret: { secretName: input.credentialsSecret } });
    volumeMounts.push({
      name: CREDENTIALS_VOLUME,
      mountPath: KANIKO_DOCKER_CONFIG,
      subPath: ".dockerconfigjson",
      readOnly: true,
    });
  }
  return builderJob(
    input,
    {
      ...builderContainerBase(input),
      args: kanikoArgs(input),
      // Pod Security "baseline": not privileged, default capabilities (RUN steps behave as under `docker build`).
      securityContext: { privileged: false },
      ...(volumeMounts.length > 0 ? { volumeMounts } : {}),
    },
    { volumes },
  );
}
