// `npm run demo` on the kind cluster as a kind user runs it: a kubeconfig and nothing else of ours — no
// KCE_REGISTRY*, no insecure-registry list. The engine finds kind's registry in kube-public/local-registry-hosting
// (KEP-1755): builder pods push to kind-registry:5000, the nodes pull from there, and the CLI on this machine
// reads it at localhost:5001. Only the base image and Kaniko's image are given: Docker Hub and ghcr.io are out of
// reach here (an air-gapped cluster mirrors them the same way).
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { KubeClient } from "../../../src/kube/client.js";
import { env } from "../support/cluster-env.js";
import { ensureDist, runDemo } from "../cli/helpers.js";
import { expectNoLeftovers } from "../engine/helpers.js";
import { deleteNamespace, namespaceClient } from "../kube/helpers.js";

let admin: KubeClient;

beforeAll(async () => {
  await ensureDist();
  admin = await namespaceClient("e2e-kind-demo");
});

afterAll(async () => {
  if (admin) {
    await expectNoLeftovers(admin);
    await deleteNamespace(admin);
  }
});

it("npm run demo works with only a kubeconfig: the registry comes from kind's ConfigMap", async () => {
  const tag = `kce-e2e/kind-demo:${randomBytes(4).toString("hex")}`;
  const kindUser: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    KCE_HOME: process.env.KCE_HOME,
    KUBECONFIG: env("KUBECONFIG"),
    KCE_NAMESPACE: admin.namespace,
    KCE_DEMO_IMAGE: tag,
    KCE_BASE_IMAGE: env("KCE_BASE_IMAGE"),
    KCE_KANIKO_IMAGE: env("KCE_KANIKO_IMAGE"),
  };
  const { stdout, stderr } = await runDemo(kindUser);
  expect(stderr).toMatch(/\[demo\] using the cluster of/);
  // pushed and named by the address pods and nodes use, which only the ConfigMap names
  expect(stderr).toMatch(new RegExp(`built kind-registry:5000/${tag.replace(/[.:/]/g, "\\$&")}@sha256:[0-9a-f]{64} in [\\d.]+s`));
  expect(stdout).toMatch(/Hello from kube-container-engine: this image was built inside Kubernetes\.\nbuilt at \S+ in a builder pod\n$/);
});
