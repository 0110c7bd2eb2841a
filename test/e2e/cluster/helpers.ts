// Shared parts of the cluster's own e2e tests (smoke, Kaniko, BuildKit, auth registry): a namespace per
// describe block, the builder pods, and the check that a built image runs. All through kubectl, never src/.
import { afterAll, beforeAll, expect } from "vitest";
import { env } from "../support/cluster-env.js";
import { apply, createNamespace, deleteNamespace, logs, podManifest, runOncePod, waitForPodDone } from "../support/kubectl.js";

/**
 * A fresh namespace for the calling describe block: created in beforeAll, deleted in afterAll. Returns its
 * name (call it inside hooks and tests: it is set once beforeAll ran).
 */
export function useNamespace(prefix: string): () => string {
  let ns: string | undefined;
  beforeAll(async () => {
    ns = await createNamespace(prefix);
  });
  afterAll(async () => {
    await deleteNamespace(ns);
  });
  return () => {
    if (ns === undefined) throw new Error(`the ${prefix} namespace is not created yet (use it in a hook or test)`);
    return ns;
  };
}

/** The Dockerfile both builders build: it writes "hi" into /hi. */
export const HI_DOCKERFILE = (): string => `FROM ${env("KCE_BASE_IMAGE")}\nRUN echo hi > /hi\n`;

/** A Kaniko pod building the Dockerfile in ConfigMap `context` and pushing to `destination`. */
export function kanikoPod(ns: string, name: string, destination: string, dockerConfigSecret?: string): object {
  const volumes: object[] = [{ name: "context", configMap: { name: "context" } }];
  const mounts: object[] = [{ name: "context", mountPath: "/workspace" }];
  if (dockerConfigSecret) {
    // kubernetes.io/dockerconfigjson Secret -> /kaniko/.docker/config.json
    volumes.push({
      name: "docker-config",
      secret: { secretName: dockerConfigSecret, items: [{ key: ".dockerconfigjson", path: "config.json" }] },
    });
    mounts.push({ name: "docker-config", mountPath: "/kaniko/.docker" });
  }
  return podManifest(ns, name, {
    containers: [
      {
        name: "kaniko",
        image: env("KCE_KANIKO_IMAGE"),
        imagePullPolicy: "IfNotPresent",
        args: [
          "--dockerfile=/workspace/Dockerfile",
          "--context=dir:///workspace",
          `--destination=${destination}`,
          "--insecure", // the local registries speak plain http
          "--insecure-pull",
        ],
        volumeMounts: mounts,
      },
    ],
    volumes,
  });
}

/**
 * A privileged BuildKit pod (buildctl-daemonless.sh) building the Dockerfile in ConfigMap `context` and pushing
 * `image` to a plain-http registry.
 */
export function buildkitPod(ns: string, name: string, image: string): object {
  // ConfigMap files are symlinks into ..data/: copy the context to a plain directory first
  const script = [
    "set -e",
    "mkdir -p /tmp/ctx && cp /context/Dockerfile /tmp/ctx/Dockerfile",
    "exec buildctl-daemonless.sh build --frontend dockerfile.v0 --local context=/tmp/ctx --local dockerfile=/tmp/ctx" +
      ` --output type=image,name=${image},push=true,registry.insecure=true`,
  ].join("\n");
  return podManifest(ns, name, {
    containers: [
      {
        name: "buildkit",
        image: env("KCE_BUILDKIT_IMAGE"),
        imagePullPolicy: "IfNotPresent",
        command: ["sh", "-c", script],
        securityContext: { privileged: true },
        volumeMounts: [
          { name: "context", mountPath: "/context" },
          { name: "state", mountPath: "/var/lib/buildkit" },
        ],
      },
    ],
    volumes: [
      { name: "context", configMap: { name: "context" } },
      { name: "state", emptyDir: {} },
    ],
  });
}

/** Waits for the builder pod and expects it Succeeded; its log is the failure message. */
export async function expectBuildSucceeded(ns: string, pod: string): Promise<void> {
  const phase = await waitForPodDone(ns, pod);
  expect(phase, await logs(ns, pod)).toBe("Succeeded");
}

/**
 * Runs `cat /hi` in `image` (built from HI_DOCKERFILE) in pod "run" and expects "hi": the pushed image is
 * pullable and whole. `extra` goes into the pod spec (e.g. imagePullSecrets).
 */
export async function expectImageSaysHi(ns: string, image: string, extra: object = {}): Promise<void> {
  await apply(runOncePod(ns, "run", image, ["cat", "/hi"], extra));
  expect(await waitForPodDone(ns, "run")).toBe("Succeeded");
  expect(await logs(ns, "run")).toBe("hi\n");
}

/** The name the node pulls a pushed image by: pods push to KCE_REGISTRY_PUSH, nodes pull from KCE_REGISTRY. */
export function pullName(pushed: string): string {
  return pushed.replace(env("KCE_REGISTRY_PUSH"), env("KCE_REGISTRY"));
}
