// Rootless BuildKit on the real cluster: with the local cluster's rootless image (KCE_BUILDKIT_ROOTLESS_IMAGE,
// user 1000, rootlesskit, newuidmap/newgidmap with file capabilities) and buildkitMode "auto", the engine picks
// rootless and says why, the build succeeds, the image runs, and the builder pod is neither privileged nor root
// nor given any added capability (no CAP_SYS_ADMIN: see src/imaging/buildkit.ts).
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { V1Pod } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { baseImage, collect, deleteNamespace, engineNamespace, expectNoLeftovers, type EngineNamespace } from "../engine/helpers.js";
import { contextDir, recordPods, type Recorder } from "./helpers.js";
import { env } from "../support/cluster-env.js";

// Required (test/e2e/global-setup.ts fails the run without it): never a silent skip.
const rootlessImage = env("KCE_BUILDKIT_ROOTLESS_IMAGE");

let ns: EngineNamespace;
let dir: string;
let pods: Recorder<V1Pod>;

describe("rootless BuildKit (KCE_BUILDKIT_ROOTLESS_IMAGE)", () => {
  beforeAll(async () => {
    ns = await engineNamespace("e2e-rootless");
    dir = mkdtempSync(join(tmpdir(), "kce-rootless-"));
    pods = recordPods(ns.admin);
    await pods.ready;
  });

  afterAll(async () => {
    await pods?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
    if (ns) await expectNoLeftovers(ns.admin);
    await deleteNamespace(ns?.admin);
  });

  it("auto picks rootless (and says why), the build succeeds, the image runs, the pod is unprivileged uid 1000", async () => {
    const engineLog: string[] = [];
    const engine = ns.engine({
      builder: "buildkit",
      buildkitMode: "auto",
      builderImages: { buildkit: rootlessImage },
      log: (message) => engineLog.push(message),
    });
    const nonce = randomBytes(4).toString("hex"); // fresh content: an identical earlier build would be reused
    const tag = `kce-e2e/rootless-${nonce}:v1`;
    const path = contextDir(dir, {
      Dockerfile: [
        `FROM ${baseImage()}`,
        `LABEL kce.e2e.nonce=${nonce}`,
        "ARG WORD=unset",
        // RUN steps run as root inside the build's user namespace (uid 1000 outside)
        'RUN echo "$WORD from $(id -u)" > /srv-word',
        "COPY --chmod=755 show.sh /usr/local/bin/show",
        'CMD ["show"]',
      ].join("\n"),
      "show.sh": "#!/bin/sh\ncat /srv-word\nstat -c %a /usr/local/bin/show\n",
    });
    const stream = engine.build({ tag, path, buildArgs: { WORD: "rootless" } });
    const lines = await collect(stream);
    const result = await stream.result;
    if (process.env.KCE_DEBUG) console.log([...engineLog, ...lines].join("\n"));

    expect(engineLog.join("\n")).toMatch(
      new RegExp(`BuildKit mode rootless \\(auto\\): its image ${rootlessImage.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")} runs as user 1000:1000`),
    );
    expect(engineLog.join("\n")).not.toMatch(/runs privileged/);
    expect(result.source).toBe("built");
    expect(result.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(lines.join("")).toMatch(/kce: build context received/);

    const builder = pods.seen.get(result.pod!)?.at(-1);
    expect(builder, `builder pod ${result.pod} seen`).toBeDefined();
    const spec = builder!.spec!;
    const container = spec.containers[0]!;
    expect(container.image).toBe(rootlessImage);
    expect(container.securityContext?.privileged).not.toBe(true);
    expect(container.securityContext?.capabilities?.add ?? []).toEqual([]);
    expect(container.securityContext).toMatchObject({ runAsUser: 1000, runAsGroup: 1000, runAsNonRoot: true });
    expect(spec.securityContext?.runAsUser ?? 1000).toBe(1000);
    expect(container.env?.find((e) => e.name === "BUILDKITD_FLAGS")?.value).toContain("--oci-worker-no-process-sandbox");

    const run = await engine.run(tag);
    expect(await run.wait()).toEqual({ exitCode: 0 });
    expect(await run.logs()).toBe("rootless from 0\n755\n");
    await run.remove();
  });

  it("builds while the node's CPUs are busy: the daemon may take longer than buildctl-daemonless.sh's 2 s to start", async () => {
    // One busy loop per core, at the builder's priority: buildkitd's start (rootlesskit, user namespace) slows down.
    const busy = ["busy-1", "busy-2"];
    for (const name of busy) {
      await ns.admin.call("create", "pods", (o) =>
        ns.admin.core.createNamespacedPod(
          {
            namespace: ns.admin.namespace,
            body: {
              metadata: { name, labels: { "app.kubernetes.io/managed-by": "kube-container-engine-test" } },
              spec: {
                restartPolicy: "Never",
                terminationGracePeriodSeconds: 0,
                activeDeadlineSeconds: 300,
                containers: [{ name: "loop", image: baseImage(), command: ["sh", "-c", "while :; do :; done"] }],
              },
            },
          },
          o,
        ),
      );
    }
    try {
      const engine = ns.engine({ builder: "buildkit", buildkitMode: "rootless", builderImages: { buildkit: rootlessImage } });
      const nonce = randomBytes(4).toString("hex");
      const path = contextDir(dir, { Dockerfile: `FROM ${baseImage()}\nRUN echo ${nonce} > /loaded\n` });
      const stream = engine.build({ tag: `kce-e2e/rootless-loaded-${nonce}:v1`, path });
      const lines = await collect(stream);
      const result = await stream.result;
      expect(result.image).toContain(`rootless-loaded-${nonce}`);
      expect(lines.join("")).not.toMatch(/could not connect/);
    } finally {
      for (const name of busy) {
        await ns.admin.call("delete", "pods", (o) =>
          ns.admin.core.deleteNamespacedPod({ name, namespace: ns.admin.namespace, gracePeriodSeconds: 0 }, o),
        );
      }
    }
  });
});
