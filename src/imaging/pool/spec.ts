/**
 * The warm BuildKit pool's objects (pure): long-running rootless buildkitd pods ("daemons") that builds are
 * sent to with one exec each — the context goes in on stdin as today, buildctl's output comes back — so a
 * build starts no pod. Each daemon is a bare pod in a numbered slot of its pool (`kce-pool-<pool>-<slot>`),
 * started on demand, and ends by itself: its wrapper stops buildkitd after `idleSeconds` without a build, and
 * on SIGTERM lets the builds in progress finish (new ones are refused) before it stops. Its cache lives on an
 * emptyDir of a fixed size with an explicit GC policy below that size, so the disk cannot wedge the daemon.
 */
import type { V1Pod, V1Toleration } from "@kubernetes/client-node";
import type { ResolvedPool } from "../../config.js";
import { InvalidInputError } from "../../errors.js";
import { engineAnnotations, engineLabels } from "../../pods/labels.js";

export const POOL_CONTAINER = "buildkitd";
/** buildkitd's state (the cache): an emptyDir of `cacheBytes`. */
export const POOL_STATE_DIR = "/home/user/.local/share/buildkit";
/** One directory per build in progress (its context and metadata); the wrapper sees activity here. */
export const POOL_BUILDS_DIR = "/home/user/builds";
const CONFIG_FILE = "/home/user/.config/kce/buildkitd.toml";
const DOCKER_CONFIG_DIR = "/home/user/.kce-docker";

export const LABEL_POOL = "kube-container-engine/pool";
export const LABEL_SLOT = "kube-container-engine/slot";
/** On a daemon: `<build id> <expiry, ms since the epoch>` while a build has it (one build per daemon). */
export const ANNOTATION_LEASE = "kube-container-engine/lease";

/** Exit status of a build sent to a daemon that is stopping (the engine sends it elsewhere). */
export const EXIT_DAEMON_STOPPING = 75;

/** What a daemon pod is made from: the pool's resolved settings (see config.ts) and its image. */
export interface PoolSettings extends Omit<ResolvedPool, "tenant"> {
  /** The rootless BuildKit image (runs as uid 1000 with rootlesskit). */
  image: string;
}

export interface DaemonPodInput extends PoolSettings {
  slot: number;
  namespace: string;
  instance: string;
  extraLabels: Record<string, string>;
  insecureRegistries: string[];
  serviceAccountName?: string;
  /** A kubernetes.io/dockerconfigjson Secret buildctl pushes and pulls with (the engine registry's). */
  credentialsSecret?: string;
  nodeSelector: Record<string, string>;
  tolerations: V1Toleration[];
  createdAt: Date;
}

const NAME = /^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$/;

/** Checks the pool's name (it goes into pod names and a label). */
export function checkPoolName(name: string): void {
  if (!NAME.test(name)) {
    throw new InvalidInputError(`pool name ${JSON.stringify(name)}: use at most 32 lower-case letters, digits and '-'`);
  }
}

export function daemonPodName(pool: string, slot: number): string {
  return `kce-pool-${pool}-${slot}`;
}

/** The label selector of one pool's daemons. */
export function poolSelector(pool: string): string {
  return `app.kubernetes.io/managed-by=kube-container-engine,kube-container-engine/role=pool,${LABEL_POOL}=${pool}`;
}

/** buildkitd.toml: the registries reached over plain HTTP, a GC policy below the cache volume's size, bounded history. */
export function poolBuildkitdConfig(input: Pick<DaemonPodInput, "cacheBytes" | "insecureRegistries">): string {
  const mb = (bytes: number): string => `${Math.max(1, Math.floor(bytes / (1024 * 1024)))}MB`;
  const lines = [
    "[worker.oci]",
    "  gc = true",
    // The volume's kubelet eviction is at cacheBytes: collect well before it.
    `  maxUsedSpace = "${mb(input.cacheBytes * 0.8)}"`,
    `  reservedSpace = "${mb(input.cacheBytes * 0.2)}"`,
    "[worker.containerd]",
    "  enabled = false",
    "[history]",
    "  maxAge = 86400",
    "  maxEntries = 50",
  ];
  for (const host of [...new Set(input.insecureRegistries)].sort()) lines.push(`[registry."${host}"]`, "  http = true", "  insecure = true");
  return `${lines.join("\n")}\n`;
}

/**
 * The daemon's wrapper (busy box sh): buildkitd in the background; stop it when no build ran for
 * `KCE_IDLE_SECONDS`, or — after SIGTERM — as soon as no build runs any more (new builds are refused by then).
 */
export const DAEMON_SCRIPT = [
  "set -u",
  `mkdir -p "$KCE_BUILDS" "$(dirname "$KCE_CONFIG")"`,
  `printf '%s' "$KCE_BUILDKITD_CONFIG" > "$KCE_CONFIG"`,
  `touch "$KCE_BUILDS/.active"`,
  `rootlesskit buildkitd --oci-worker-no-process-sandbox --config="$KCE_CONFIG" --root="${POOL_STATE_DIR}" &`,
  "daemon=$!",
  "draining=0",
  `trap 'draining=1; touch "$KCE_BUILDS/.draining"' TERM`,
  `while kill -0 "$daemon" 2>/dev/null; do`,
  `  busy=$(find "$KCE_BUILDS" -mindepth 1 -maxdepth 1 -type d | wc -l)`,
  `  if [ "$busy" -eq 0 ]; then`,
  `    if [ "$draining" -eq 1 ]; then echo "kce: no build left: stopping"; break; fi`,
  `    idle=$(( $(date +%s) - $(stat -c %Y "$KCE_BUILDS/.active") ))`,
  `    if [ "$idle" -ge "$KCE_IDLE_SECONDS" ]; then echo "kce: no build for \${idle}s: stopping"; touch "$KCE_BUILDS/.draining"; break; fi`,
  "  fi",
  "  sleep 1 & wait $!",
  "done",
  `kill -TERM "$daemon" 2>/dev/null`,
  `wait "$daemon"`,
  "exit 0",
].join("\n");

/**
 * One build on a daemon (`sh -c BUILD_SCRIPT kce <build id> <buildctl args…>`): refuse when the daemon is
 * stopping, unpack the gzip tar from stdin into the build's directory, run buildctl with the arguments (never
 * interpolated into the script), print the pushed digest as `kce-digest: sha256:…`, remove the directory.
 */
export const BUILD_SCRIPT = [
  "set -eu",
  'id=$1; shift',
  `dir="$KCE_BUILDS/$id"`,
  `if [ -e "$KCE_BUILDS/.draining" ]; then echo "kce: this BuildKit daemon is stopping" >&2; exit ${EXIT_DAEMON_STOPPING}; fi`,
  'mkdir -p "$dir/context"',
  `trap 'rm -rf "$dir"; touch "$KCE_BUILDS/.active"' EXIT`,
  `touch "$KCE_BUILDS/.active"`,
  'tar -xzof - -C "$dir/context"',
  'echo "kce: build context received"',
  'buildctl build --metadata-file="$dir/metadata.json" "$@"',
  `digest=$(grep -o '"containerimage.digest": *"sha256:[0-9a-f]*"' "$dir/metadata.json" | grep -o 'sha256:[0-9a-f]*' | head -n 1 || true)`,
  'echo "kce-digest: $digest"',
].join("\n");

/** Where a build's context is unpacked on the daemon (buildctl's `--local` paths point here). */
export function buildWorkspace(buildId: string): string {
  return `${POOL_BUILDS_DIR}/${buildId}/context`;
}

/** The daemon pod of one slot. */
export function daemonPod(input: DaemonPodInput): V1Pod {
  checkPoolName(input.name);
  const labels = {
    ...engineLabels({ instance: input.instance, role: "pool", extra: input.extraLabels }),
    [LABEL_POOL]: input.name,
    [LABEL_SLOT]: String(input.slot),
  };
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name: daemonPodName(input.name, input.slot),
      namespace: input.namespace,
      labels,
      annotations: engineAnnotations({ createdAt: input.createdAt, image: input.image }),
    },
    spec: {
      restartPolicy: "Never",
      activeDeadlineSeconds: input.lifetimeSeconds,
      terminationGracePeriodSeconds: input.drainSeconds,
      enableServiceLinks: false,
      ...(input.serviceAccountName ? { serviceAccountName: input.serviceAccountName } : { automountServiceAccountToken: false }),
      ...(Object.keys(input.nodeSelector).length > 0 ? { nodeSelector: input.nodeSelector } : {}),
      ...(input.tolerations.length > 0 ? { tolerations: input.tolerations } : {}),
      containers: [
        {
          name: POOL_CONTAINER,
          image: input.image,
          imagePullPolicy: "IfNotPresent",
          command: ["sh", "-c", DAEMON_SCRIPT],
          env: [
            { name: "KCE_BUILDS", value: POOL_BUILDS_DIR },
            { name: "KCE_CONFIG", value: CONFIG_FILE },
            { name: "KCE_IDLE_SECONDS", value: String(input.idleSeconds) },
            { name: "KCE_BUILDKITD_CONFIG", value: poolBuildkitdConfig(input) },
            ...(input.credentialsSecret ? [{ name: "DOCKER_CONFIG", value: DOCKER_CONFIG_DIR }] : []),
          ],
          resources: { requests: { cpu: "100m", memory: input.memory }, limits: { memory: input.memory } },
          readinessProbe: { exec: { command: ["buildctl", "debug", "workers"] }, periodSeconds: 1, timeoutSeconds: 5, failureThreshold: 3 },
          securityContext: {
            runAsUser: 1000,
            runAsGroup: 1000,
            runAsNonRoot: true,
            allowPrivilegeEscalation: true, // newuidmap/newgidmap carry file capabilities
            seccompProfile: { type: "Unconfined" },
            appArmorProfile: { type: "Unconfined" },
          },
          volumeMounts: [
            { name: "cache", mountPath: POOL_STATE_DIR },
            { name: "builds", mountPath: POOL_BUILDS_DIR },
            ...(input.credentialsSecret ? [{ name: "registry-credentials", mountPath: DOCKER_CONFIG_DIR, readOnly: true }] : []),
          ],
        },
      ],
      volumes: [
        { name: "cache", emptyDir: { sizeLimit: String(input.cacheBytes) } },
        { name: "builds", emptyDir: {} },
        ...(input.credentialsSecret
          ? [{ name: "registry-credentials", secret: { secretName: input.credentialsSecret, items: [{ key: ".dockerconfigjson", path: "config.json" }] } }]
          : []),
      ],
    },
  };
}
