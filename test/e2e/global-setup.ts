// vitest globalSetup for the e2e project: fail fast, with the fix in the
// message, when the local cluster is not up (see test/cluster/README.md).
import { execFile } from "node:child_process";
import { promisify } from "node:util";

const run = promisify(execFile);

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
] as const;

const HOW_TO = 'Start the local cluster first:  eval "$(test/cluster/up)"  (see test/cluster/README.md)';

export default async function setup(): Promise<void> {
  const missing = REQUIRED_ENV.filter((name) => !process.env[name]);
  if (missing.length > 0) {
    throw new Error(`e2e tests need a running cluster; missing environment: ${missing.join(", ")}.\n${HOW_TO}`);
  }
  const kubectl = `${process.env.KCE_BIN_DIR}/kubectl`;
  try {
    await run(kubectl, ["get", "--raw", "/readyz"], { timeout: 15_000 });
  } catch (err) {
    const detail = err instanceof Error ? err.message : String(err);
    throw new Error(`the cluster's API server does not answer (${kubectl} get --raw /readyz):\n${detail}\n${HOW_TO}`);
  }
}
