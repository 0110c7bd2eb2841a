// Builds and runs spread over the nodes of a multi-node kind cluster (test/kind/up): a builder pod on one
// worker pushes to kind's local registry, the run pod on the other worker pulls the image from it, and its
// logs and a port-forward reach a pod behind a kubelet that is not the control plane's. Runs in the `kind`
// project only (vitest.config.ts): the local cluster of test/cluster has one node.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { KubernetesEngine } from "../../../src/index.js";
import { getWithRetry } from "../../support/http.js";
import { baseImage, collect, contextDir, deleteNamespace, engineNamespace, expectNoLeftovers, uniqueImage, type EngineNamespace } from "../engine/helpers.js";

let ns: EngineNamespace;
let dir: string;
let workers: string[] = [];

beforeAll(async () => {
  ns = await engineNamespace("e2e-kind");
  dir = mkdtempSync(join(tmpdir(), "kce-kind-"));
  const nodes = await ns.admin.call("list", "nodes", (o) => ns.admin.core.listNode({}, o));
  workers = nodes.items
    .filter((n) => !("node-role.kubernetes.io/control-plane" in (n.metadata?.labels ?? {})))
    .map((n) => n.metadata?.name ?? "")
    .sort();
});

afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  if (ns) await expectNoLeftovers(ns.admin);
  await deleteNamespace(ns?.admin);
});

/** An engine whose pods go to `node` only. */
const engineOn = (node: string, builder: "kaniko" | "buildkit"): KubernetesEngine =>
  ns.engine({ builder, buildkitMode: "privileged", contentAddressed: false, nodeSelector: { "kubernetes.io/hostname": node } });

/** The nodes of every pod seen in the namespace while `work` runs (polled: builder pods are gone after). */
async function nodesOfPodsDuring<T>(work: Promise<T>): Promise<{ result: T; nodes: Set<string> }> {
  const nodes = new Set<string>();
  let done = false;
  const poll = (async () => {
    while (!done) {
      const pods = await ns.admin.call("list", "pods", (o) => ns.admin.core.listNamespacedPod({ namespace: ns.namespace }, o));
      for (const pod of pods.items) if (pod.spec?.nodeName) nodes.add(pod.spec.nodeName);
      await new Promise((r) => setTimeout(r, 250));
    }
  })();
  try {
    return { result: await work, nodes };
  } finally {
    done = true;
    await poll;
  }
}

describe("a cluster of three kind nodes", () => {
  it("has two workers besides the control plane", () => {
    expect(workers).toHaveLength(2);
  });

  it.each(["kaniko", "buildkit"] as const)(
    "%s: built on one worker, pulled and run on the other; logs and a port-forward reach the pod",
    async (builder) => {
      const [buildNode, runNode] = builder === "kaniko" ? [workers[0], workers[1]] : [workers[1], workers[0]];
      if (!buildNode || !runNode) throw new Error(`two workers needed, found ${workers.join(", ")}`);
      const word = `built-on-${buildNode}-by-${builder}`;
      const path = contextDir(dir, {
        Dockerfile: [
          `FROM ${baseImage()}`,
          `RUN mkdir -p /www && echo ${word} > /www/index.html`,
          'CMD ["sh", "-c", "hostname; exec httpd -f -p 8080 -h /www"]',
        ].join("\n"),
      });
      const tag = uniqueImage(`kind-${builder}`);
      const built = await nodesOfPodsDuring(collect(engineOn(buildNode, builder).build({ tag, path })));
      expect(built.nodes).toEqual(new Set([buildNode]));

      const container = await engineOn(runNode, builder).run(tag, { ports: { "8080/tcp": 0 } });
      try {
        const pod = await ns.admin.call("read", "pod", (o) => ns.admin.core.readNamespacedPod({ name: container.id, namespace: ns.namespace }, o));
        expect(pod.spec?.nodeName).toBe(runNode);
        expect(pod.spec?.nodeName).not.toBe(buildNode);
        const port = container.ports?.["8080/tcp"]?.port;
        expect(await getWithRetry(`http://127.0.0.1:${port}/index.html`)).toBe(`${word}\n`);
        // the first log line is the pod's hostname, printed by the run pod's kubelet on the other worker
        expect((await container.logs()).split("\n")[0]).toBe(container.id);
      } finally {
        await container.kill().catch(() => undefined);
        await container.remove();
      }
    },
  );
});
