// Running the engine as the manifests' ServiceAccount instead of cluster-admin: render manifests/ with
// kubectl's kustomize, apply the RBAC parts to a test namespace, mint a token and write a kubeconfig for it.
// Setup and teardown use the admin kubeconfig ($KUBECONFIG); only what the tests hand the engine is the
// ServiceAccount's.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { KubeConfig } from "@kubernetes/client-node";
import * as yaml from "js-yaml";
import { kubectl } from "../support/kubectl.js";

/** The repository's manifests/ directory. */
export const MANIFESTS = resolve(import.meta.dirname, "../../../manifests");

/** The namespace the manifests install into; rewritten to the test namespace. */
const MANIFEST_NAMESPACE = "kce";

/** A Kubernetes object as rendered by kustomize (only the fields we rewrite are typed). */
export interface ManifestObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; [k: string]: unknown };
  subjects?: { kind: string; name: string; namespace?: string }[];
  roleRef?: { kind: string; name: string; apiGroup: string };
  rules?: { apiGroups?: string[]; resources?: string[]; verbs: string[]; resourceNames?: string[] }[];
  [k: string]: unknown;
}

/** Runs kubectl with the admin kubeconfig; resolves with stdout. Bounded to a minute: setup must not hang the suite. */
export function adminKubectl(args: string[], input?: string): Promise<string> {
  return kubectl(args, { input, timeoutMs: 60_000 });
}

/** `kubectl kustomize manifests/<dir>` as objects. */
export async function renderManifests(dir: string): Promise<ManifestObject[]> {
  const text = await adminKubectl(["kustomize", join(MANIFESTS, dir)]);
  return yaml.loadAll(text).filter((o): o is ManifestObject => typeof o === "object" && o !== null);
}

/**
 * The RBAC of manifests/rbac-only moved to `namespace`: ServiceAccount, Role and RoleBinding there, and the
 * kube-public reader Role/RoleBinding renamed per namespace (several test namespaces may coexist).
 * With `subject`, the ServiceAccount is not created: the RoleBinding names that existing one instead.
 */
export async function rbacFor(
  namespace: string,
  subject?: { namespace: string; name: string },
): Promise<ManifestObject[]> {
  const objects = await renderManifests("rbac-only");
  const out: ManifestObject[] = [];
  for (const object of objects) {
    if (object.kind === "Namespace") continue;
    if (object.kind === "ServiceAccount" && subject) continue;
    const copy = structuredClone(object);
    if (copy.metadata.namespace === MANIFEST_NAMESPACE) copy.metadata.namespace = namespace;
    else copy.metadata.name = `${copy.metadata.name}-${namespace}`;
    if (copy.roleRef && copy.metadata.namespace !== namespace) copy.roleRef.name = `${copy.roleRef.name}-${namespace}`;
    for (const s of copy.subjects ?? []) {
      if (s.kind !== "ServiceAccount") continue;
      if (subject) {
        s.namespace = subject.namespace;
        s.name = subject.name;
      } else if (s.namespace === MANIFEST_NAMESPACE) {
        s.namespace = namespace;
      }
    }
    out.push(copy);
  }
  return out;
}

/** Applies objects with the admin kubeconfig. */
export async function applyObjects(objects: ManifestObject[]): Promise<void> {
  await adminKubectl(["apply", "-f", "-"], objects.map((o) => yaml.dump(o)).join("---\n"));
}

/** Deletes the objects that live outside `namespace` (deleting the namespace removes the rest). */
export async function deleteOutside(namespace: string, objects: ManifestObject[]): Promise<void> {
  for (const o of objects) {
    if (o.metadata.namespace === namespace || !o.metadata.namespace) continue;
    await adminKubectl(["delete", "--ignore-not-found", "-n", o.metadata.namespace, `${o.kind.toLowerCase()}.rbac.authorization.k8s.io/${o.metadata.name}`]);
  }
}

/**
 * A kubeconfig file that authenticates as `serviceAccount` in `namespace` with a fresh token
 * (`kubectl create token`), for the admin kubeconfig's cluster, with `namespace` as the context's default.
 */
export async function serviceAccountKubeconfig(namespace: string, serviceAccount: string, durationSeconds = 7200): Promise<string> {
  const token = (await adminKubectl(["create", "token", serviceAccount, "-n", namespace, `--duration=${durationSeconds}s`])).trim();
  const admin = new KubeConfig();
  admin.loadFromDefault();
  const cluster = admin.getCurrentCluster();
  if (!cluster) throw new Error("the admin kubeconfig has no current cluster");
  const clusterEntry: Record<string, unknown> = { server: cluster.server };
  if (cluster.caData) clusterEntry["certificate-authority-data"] = cluster.caData;
  else if (cluster.caFile) clusterEntry["certificate-authority"] = cluster.caFile;
  if (cluster.skipTLSVerify) clusterEntry["insecure-skip-tls-verify"] = true;
  const user = `system:serviceaccount:${namespace}:${serviceAccount}`;
  const config = {
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: "kce", cluster: clusterEntry }],
    users: [{ name: user, user: { token } }],
    contexts: [{ name: "kce-sa", context: { cluster: "kce", user, namespace } }],
    "current-context": "kce-sa",
  };
  const file = join(mkdtempSync(join(tmpdir(), "kce-sa-")), "kubeconfig");
  writeFileSync(file, yaml.dump(config), { mode: 0o600 });
  return file;
}

/** A KubeConfig loaded from a file. */
export function kubeConfigFrom(file: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(file);
  return kc;
}

/**
 * The ServiceAccount the whole e2e suite runs the engine as, when `KCE_E2E_KUBECONFIG` is set
 * (test/e2e/rbac/as-service-account sets it): `KCE_E2E_SERVICE_ACCOUNT` = "namespace/name".
 */
export function suiteServiceAccount(env = process.env): { kubeconfig: string; namespace: string; name: string } | null {
  const kubeconfig = env.KCE_E2E_KUBECONFIG;
  if (!kubeconfig) return null;
  const [namespace, name] = (env.KCE_E2E_SERVICE_ACCOUNT ?? "kce/kce").split("/");
  if (!namespace || !name) throw new Error(`KCE_E2E_SERVICE_ACCOUNT must be "namespace/name"`);
  return { kubeconfig, namespace, name };
}

/**
 * In suite-as-ServiceAccount mode, binds the manifests' Role in a fresh test namespace to that ServiceAccount
 * (a Role is namespaced: the real install binds it in `kce` only). No-op otherwise.
 */
export async function grantSuiteServiceAccount(namespace: string): Promise<void> {
  const sa = suiteServiceAccount();
  if (!sa) return;
  const objects = (await rbacFor(namespace, sa)).filter((o) => o.metadata.namespace === namespace);
  await applyObjects(objects);
}
