// `npm run demo` (scripts/demo) against the already-running cluster: it builds examples/hello in the cluster,
// runs it and prints its output.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { KubeClient } from "../../../src/kube/client.js";
import { expectNoLeftovers } from "../engine/helpers.js";
import { deleteNamespace, namespaceClient } from "../kube/helpers.js";
import { grantSuiteServiceAccount, suiteServiceAccount } from "../rbac/service-account.js";
import { ensureDist, ROOT } from "./helpers.js";

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
  const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn("npm", ["run", "--silent", "demo"], { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.setEncoding("utf8").on("data", (c: string) => (out += c));
    child.stderr.setEncoding("utf8").on("data", (c: string) => (err += c));
    child.on("error", reject);
    child.on("close", (c) => resolve({ code: c, stdout: out, stderr: err }));
  });
  if (code !== 0) throw new Error(`npm run demo exited ${code}\n--- stdout\n${stdout}\n--- stderr\n${stderr}`);
  expect(stderr).toMatch(/\[demo\] using the cluster of/);
  expect(stderr).toMatch(/built \S+kce-e2e\/demo:[0-9a-f]+@sha256:[0-9a-f]{64} in [\d.]+s/);
  expect(stdout).toMatch(/Hello from kube-container-engine: this image was built inside Kubernetes\.\nbuilt at \S+ in a builder pod\n$/);
});
