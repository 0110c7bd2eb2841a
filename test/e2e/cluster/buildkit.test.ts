// A (privileged) BuildKit pod builds FROM the local base image with
// buildctl-daemonless.sh, pushes to the open registry, and a pod runs the result.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { env, uniqueName } from "../support/cluster-env.js";
import { apply, createNamespace, deleteNamespace, dockerfileConfigMap, logs, runOncePod, waitForPodDone } from "../support/kubectl.js";

describe("BuildKit in the cluster", () => {
  let ns: string | undefined;
  beforeAll(async () => {
    ns = await createNamespace("kce-e2e-buildkit");
  });
  afterAll(async () => {
    await deleteNamespace(ns);
  });

  it("builds, pushes to the open registry, and the image runs", async () => {
    const image = `${env("KCE_REGISTRY_PUSH")}/e2e/buildkit-hi:${uniqueName("t")}`;
    await apply(dockerfileConfigMap(ns!, "context", `FROM ${env("KCE_BASE_IMAGE")}\nRUN echo hi > /hi\n`));
    // ConfigMap files are symlinks into ..data/: copy the context to a plain directory first
    const script = [
      "set -e",
      "mkdir -p /tmp/ctx && cp /context/Dockerfile /tmp/ctx/Dockerfile",
      "exec buildctl-daemonless.sh build --frontend dockerfile.v0 --local context=/tmp/ctx --local dockerfile=/tmp/ctx" +
        ` --output type=image,name=${image},push=true,registry.insecure=true`,
    ].join("\n");
    await apply({
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "build", namespace: ns },
      spec: {
        restartPolicy: "Never",
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
      },
    });
    const phase = await waitForPodDone(ns!, "build");
    expect(phase, await logs(ns!, "build")).toBe("Succeeded");

    const runImage = image.replace(env("KCE_REGISTRY_PUSH"), env("KCE_REGISTRY"));
    await apply(runOncePod(ns!, "run", runImage, ["cat", "/hi"]));
    expect(await waitForPodDone(ns!, "run")).toBe("Succeeded");
    expect(await logs(ns!, "run")).toBe("hi\n");
  });
});
