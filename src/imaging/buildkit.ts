/**
 * The BuildKit builder Job (pure). Its container runs a fixed `sh -c` script (busybox sh + tar in the image):
 * unpack the gzip tar from stdin into /workspace, run `buildctl-daemonless.sh build` with the arguments passed
 * as positional parameters (never interpolated into the script), then write the pushed digest from
 * `--metadata-file` to the termination log. Modes: `privileged` (root, privileged) or `rootless` (uid 1000,
 * seccomp/AppArmor Unconfined, `--oci-worker-no-process-sandbox`, no added capabilities; needs a namespace that
 * allows Pod Security `privileged`, for the Unconfined profiles).
 *
 * Rootless needs no CAP_SYS_ADMIN (found on the local cluster, kernel 6.18, containerd 1.6, default capabilities,
 * see test/cluster/README.md): the kernel lets a process write another process's uid_map only when the file's
 * opener has CAP_SYS_ADMIN over the target user namespace (`map_write`). rootlesskit (uid 1000) owns that
 * namespace, so an opener with euid 1000 qualifies; Debian 12's *setuid-root* newuidmap opens uid_map with euid 0
 * (it is built without the libcap step that switches back to the caller's uid), is not the owner, and so needs
 * CAP_SYS_ADMIN in the host namespace — hence "write to uid_map failed: Operation not permitted" without it. With
 * newuidmap/newgidmap carrying *file capabilities* instead (`cap_setuid,cap_setfcap+ep` / `cap_setgid+ep`, not
 * setuid; as in the local cluster's rootless image) the default capability set is enough, as in upstream's
 * Kubernetes example for `moby/buildkit:*-rootless`. `allowPrivilegeEscalation` stays true: file capabilities, like setuid, are
 * ignored under no_new_privs. (A user-namespaced pod, `hostUsers: false`, needs containerd ≥ 2.0: not tried.)
 */
import type { V1EnvVar, V1Job, V1SecurityContext, V1Volume, V1VolumeMount } from "@kubernetes/client-node";
import { posix } from "node:path";
import {
  TERMINATION_LOG,
  builderContainerBase,
  builderJob,
  labelValues,
  registryHost,
  type BuilderJobInput,
} from "./builder-spec.js";

/** BuildKit's input: the common one plus how buildkitd runs. */
export interface BuildkitJobInput extends BuilderJobInput {
  mode: "privileged" | "rootless";
  /** The uid (and gid) of rootless mode; default 1000, as in the image's /etc/subuid. */
  rootlessUser?: number;
  /** Export no cache at all (not even inline cache metadata): for copies that should stay close to the source. */
  noCacheExport?: boolean;
}

/** The registry cache's reference for a cache repository: its `buildkit` tag (Kaniko's keys are other tags). */
export function buildkitCacheRef(cacheRepo: string): string {
  const last = cacheRepo.split("/").pop() ?? "";
  return last.includes(":") || cacheRepo.includes("@") ? cacheRepo : `${cacheRepo}:buildkit`;
}

/** buildctl-daemonless.sh's tries to reach a starting buildkitd (sleeping 0.1 + 0.02·n s each: ≈ 60 s in all). */
export const BUILDCTL_CONNECT_RETRIES = 75;

/** Where the context is unpacked. */
export const BUILDKIT_WORKSPACE = "/workspace";
/** buildkitd's state (an emptyDir): `--root`. */
export const BUILDKIT_STATE_DIR = "/var/lib/buildkit";
/** DOCKER_CONFIG directory holding the credentials Secret as `config.json`. */
export const BUILDKIT_DOCKER_CONFIG_DIR = "/kce/docker";
const RUN_DIR = "/tmp/kce";
const CONFIG_FILE = `${RUN_DIR}/buildkitd.toml`;
const METADATA_FILE = `${RUN_DIR}/metadata.json`;

/**
 * The container's script. `$@` holds the buildctl arguments; `KCE_BUILDKITD_CONFIG` (optional) the
 * buildkitd.toml, written where `BUILDKITD_FLAGS --config` points. Exits with buildctl's status.
 */
export const BUILDKIT_SCRIPT = [
  "set -eu",
  `mkdir -p ${RUN_DIR}`,
  `if [ -n "\${KCE_BUILDKITD_CONFIG:-}" ]; then printf '%s\\n' "$KCE_BUILDKITD_CONFIG" > ${CONFIG_FILE}; fi`,
  'echo "kce: receiving the build context"',
  `tar -xzof - -C ${BUILDKIT_WORKSPACE}`,
  'echo "kce: build context received"',
  `buildctl-daemonless.sh build --metadata-file=${METADATA_FILE} "$@"`,
  `digest=$(grep -o '"containerimage.digest": *"sha256:[0-9a-f]*"' ${METADATA_FILE} | grep -o 'sha256:[0-9a-f]*' | head -n 1 || true)`,
  `printf '%s' "$digest" > ${TERMINATION_LOG}`,
].join("\n");

/** Quotes one field of buildctl's CSV-style `--output`/`--export-cache` values when needed. */
function csvField(field: string): string {
  return /[",\n]/.test(field) ? `"${field.replace(/"/g, '""')}"` : field;
}

function insecureHosts(input: BuildkitJobInput): Set<string> {
  return new Set(input.insecureRegistries ?? []);
}

/** buildkitd.toml for the insecure registries: HTTPS without verification, falling back to plain HTTP. */
export function buildkitdConfig(input: BuildkitJobInput): string | null {
  const hosts = [...insecureHosts(input)].sort();
  if (hosts.length === 0) return null;
  return hosts.map((h) => `[registry."${h}"]\n  http = true\n  insecure = true\n`).join("\n");
}

/**
 * `buildctl build` arguments, in a fixed order (one argv element per flag and per value); `workspace` is where
 * the context is unpacked (a builder pod's /workspace, or a pool daemon's per-build directory).
 */
export function buildctlArgs(input: BuildkitJobInput, workspace = BUILDKIT_WORKSPACE): string[] {
  const dir = posix.dirname(input.dockerfile);
  const args = [
    "--progress=plain",
    "--frontend=dockerfile.v0",
    "--local",
    `context=${workspace}`,
    "--local",
    `dockerfile=${dir === "." ? workspace : `${workspace}/${dir}`}`,
    "--opt",
    `filename=${posix.basename(input.dockerfile)}`,
  ];
  for (const [k, v] of Object.entries(input.buildArgs ?? {})) args.push("--opt", `build-arg:${k}=${v}`);
  for (const [k, v] of labelValues(input.imageLabels)) args.push("--opt", `label:${k}=${v}`);
  if (input.platform) args.push("--opt", `platform=${input.platform}`);
  const insecure = insecureHosts(input);
  const output = ["type=image", csvField(`name=${input.destinations.join(",")}`)];
  if (input.push) output.push("push=true");
  if (input.push && input.destinations.some((d) => insecure.has(registryHost(d)))) {
    output.push("registry.insecure=true");
  }
  args.push("--output", output.join(","));
  if (input.cacheRepo) {
    const ref = buildkitCacheRef(input.cacheRepo);
    if (!input.noCacheExport) args.push("--export-cache", `type=registry,${csvField(`ref=${ref}`)},mode=max`);
    args.push("--import-cache", `type=registry,${csvField(`ref=${ref}`)}`);
  }
  if (input.push && !input.noCacheExport) {
    // Cache metadata inside the pushed image too, so it can serve as a later build's cacheFrom (repo2docker
    // passes the previous image there).
    args.push("--export-cache", "type=inline");
  }
  for (const ref of input.cacheFrom ?? []) args.push("--import-cache", `type=registry,${csvField(`ref=${ref}`)}`);
  return args;
}

function securityContext(input: BuildkitJobInput): V1SecurityContext {
  if (input.mode === "privileged") return { privileged: true };
  const uid = input.rootlessUser ?? 1000;
  return {
    runAsUser: uid,
    runAsGroup: uid,
    runAsNonRoot: true,
    allowPrivilegeEscalation: true, // newuidmap/newgidmap carry file capabilities (or are setuid)
    seccompProfile: { type: "Unconfined" },
    appArmorProfile: { type: "Unconfined" },
  };
}

function env(input: BuildkitJobInput): V1EnvVar[] {
  const config = buildkitdConfig(input);
  const flags = [`--root=${BUILDKIT_STATE_DIR}`];
  if (input.mode === "rootless") flags.push("--oci-worker-no-process-sandbox");
  if (config) flags.push(`--config=${CONFIG_FILE}`);
  const out: V1EnvVar[] = [
    { name: "BUILDKITD_FLAGS", value: flags.join(" ") },
    // buildctl-daemonless.sh gives buildkitd 10 tries (≈ 2 s) to come up by default: a rootless daemon on a
    // busy node takes longer ("could not connect … after 10 trials"). 75 tries wait ≈ 60 s.
    { name: "BUILDCTL_CONNECT_RETRIES_MAX", value: String(BUILDCTL_CONNECT_RETRIES) },
  ];
  if (config) out.push({ name: "KCE_BUILDKITD_CONFIG", value: config });
  if (input.credentialsSecret) out.push({ name: "DOCKER_CONFIG", value: BUILDKIT_DOCKER_CONFIG_DIR });
  return out;
}

/**
 * The BuildKit Job. Throws `InvalidInputError` for a bad name, no destination, a bad deadline.
 * The caller attaches to container {@link BUILDER_CONTAINER}'s stdin, writes the gzip tar and closes it.
 */
export function buildkitJob(input: BuildkitJobInput): V1Job {
  const volumes: V1Volume[] = [
    { name: "buildkit-state", emptyDir: {} },
    { name: "workspace", emptyDir: {} },
  ];
  const volumeMounts: V1VolumeMount[] = [
    { name: "buildkit-state", mountPath: BUILDKIT_STATE_DIR },
    { name: "workspace", mountPath: BUILDKIT_WORKSPACE },
  ];
  if (input.credentialsSecret) {
    volumes.push({
      name: "registry-credentials",
      secret: { secretName: input.credentialsSecret, items: [{ key: ".dockerconfigjson", path: "config.json" }] },
    });
    volumeMounts.push({ name: "registry-credentials", mountPath: BUILDKIT_DOCKER_CONFIG_DIR, readOnly: true });
  }
  return builderJob(
    input,
    {
      ...builderContainerBase(input),
      command: ["sh", "-c", BUILDKIT_SCRIPT, "kce-build", ...buildctlArgs(input)],
      env: env(input),
      securityContext: securityContext(input),
      volumeMounts,
    },
    { volumes },
  );
}
