// vitest globalSetup for the e2e project: fail fast, with the fix in the
// message, when the local cluster is not up (see test/cluster/README.md).
import { kubectl, kubectlPath } from "./support/kubectl.js";

/** Variables `test/cluster/up` exports; e2e tests rely on these exact names. */
export const REQUIRED_ENV = [
  "KUBECONFIG",
  "KCE_BIN_DIR",
  "KCE_REGISTRY",
  "KCE_REGISTRY_PUSH",
  "KCE_BASE_IMAGE",
  "KCE_AUTH_REGISTRY",
  "KCE_AUTH_REGISTRY_PUSH",
  "KCE_AUTH_USER",
  "KCE_AUTH_PASSWORD",
  "KCE_KANIKO_IMAGE",
  "KCE_BUILDKIT_IMAGE",
  "KCE_BUILDKIT_ROOTLESS_IMAGE",
  "KCE_PYTHON_BASE_IMAGE",
  "KCE_NODE_IP",
] as const;

const HOW_TO = 'Start the local cluster first:  eval "$(test/cluster/up)"  (see test/cluster/README.md)';

export default async function setup(): Promise<void> {
  const missing = REQUIRED_ENV.filter((name) => !process.env[name]);
  if (missing.length > 0) {
    throw new Error(`e2e tests need a running cluster; missing environment: ${missing.join(", ")}.\n${HOW_TO}`);
  }
  try {
    await kubectl(["get", "--raw", "/readyz"], { timeoutMs: 15_000 });
  } catch (err) {
    const detail = err instanceof Error ? err.message : String(err);
    throw new Error(`the cluster's API server does not answer (${kubectlPath()} get --raw /readyz):\n${detail}\n${HOW_TO}`);
  }
}

/**
 * After the whole e2e suite: nothing the engine created may remain anywhere in the cluster (label
 * app.kubernetes.io/managed-by=kube-container-engine). Garbage collection of deleted Jobs' pods and Secrets
 * takes a moment, so this waits up to a minute before failing the run.
 */
export async function teardown(): Promise<void> {
  const list = async (): Promise<string> => {
    const args = ["get", "pods,jobs,secrets,configmaps", "-A", "-l", "app.kubernetes.io/managed-by=kube-container-engine", "-o", "name"];
    return (await kubectl(args, { timeoutMs: 15_000 })).trim();
  };
  let left = await list();
  for (let waited = 0; left !== "" && waited < 60_000; waited += 2_000) {
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    left = await list();
  }
  if (left !== "") throw new Error(`the e2e suite left objects of the engine in the cluster:\n${left}`);
}
