// `npm run demo` (scripts/demo) against the already-running cluster: it builds examples/hello in the cluster,
// runs it and prints its output.
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { KubeClient } from "../../../src/kube/client.js";
import { expectNoLeftovers } from "../engine/helpers.js";
import { deleteNamespace, namespaceClient } from "../kube/helpers.js";
import { grantSuiteServiceAccount, suiteServiceAccount } from "../rbac/service-account.js";
import { ensureDist, runDemo } from "./helpers.js";

let admin: KubeClient;

beforeAll(async () => {
  await ensureDist();
  admin = await namespaceClient("e2e-demo");
  await grantSuiteServiceAccount(admin.namespace);
});

afterAll(async () => {
  if (admin) {
    await expectNoLeftovers(admin);
    await deleteNamespace(admin);
  }
});

it("npm run demo builds examples/hello in the cluster and prints its output", async () => {
  const sa = suiteServiceAccount();
  const env = {
    ...process.env,
    KCE_NAMESPACE: admin.namespace,
    KCE_DEMO_IMAGE: `kce-e2e/demo:${randomBytes(4).toString("hex")}`,
    ...(sa ? { KUBECONFIG: sa.kubeconfig } : {}),
  };
  const { stdout, stderr } = await runDemo(env);
  expect(stderr).toMatch(/\[demo\] using the cluster of/);
  expect(stderr).toMatch(/built \S+kce-e2e\/demo:[0-9a-f]+@sha256:[0-9a-f]{64} in [\d.]+s/);
  expect(stdout).toMatch(/Hello from kube-container-engine: this image was built inside Kubernetes\.\nbuilt at \S+ in a builder pod\n$/);
});
