// Shared setup of the kube/ e2e tests: a KubeClient on the local cluster, a namespace per test file, and
// test pods labelled as test objects (not as the engine's).
import { KubeConfig, type V1Pod } from "@kubernetes/client-node";
import { KubeClient } from "../../../src/kube/client.js";
import { containerStarted } from "../../../src/kube/logs.js";
import { podsCollection, ResourceWatch, waitFor, type KubeObject, type Watchable } from "../../../src/kube/watch.js";
import { baseImage, uniqueName } from "../support/cluster-env.js";

export { baseImage };

export const TEST_LABELS = { "app.kubernetes.io/managed-by": "kube-container-engine-test" };

export function loadKubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromDefault();
  return kc;
}

/** Creates a fresh namespace and returns a client for it (waits for its default ServiceAccount). */
export async function namespaceClient(prefix: string): Promise<KubeClient> {
  const kc = loadKubeConfig();
  const ns = uniqueName(prefix);
  const admin = new KubeClient({ kubeConfig: kc, namespace: ns });
  await admin.call("create", "namespaces", (o) =>
    admin.core.createNamespace({ body: { metadata: { name: ns, labels: TEST_LABELS } } }, o),
  );
  const sa = new ResourceWatch(admin, { resource: "serviceaccounts", path: `/api/v1/namespaces/${ns}/serviceaccounts` }, {
    fieldSelector: "metadata.name=default",
  });
  await waitFor(sa, () => true, { timeoutMs: 60_000, description: "the default ServiceAccount" });
  return admin;
}

export async function deleteNamespace(client: KubeClient | undefined): Promise<void> {
  if (!client) return;
  await client.call("delete", "namespaces", (o) => client.core.deleteNamespace({ name: client.namespace }, o), {
    timeoutMs: 30_000,
  });
}

/** A one-container busybox pod labelled as a test object. */
export function testPod(name: string, command: string[], extra: Partial<V1Pod["spec"]> = {}, container: object = {}): V1Pod {
  return {
    metadata: { name, labels: { ...TEST_LABELS, "kce-test/pod": name } },
    spec: {
      restartPolicy: "Never",
      terminationGracePeriodSeconds: 1,
      containers: [{ name: "main", image: baseImage(), imagePullPolicy: "IfNotPresent", command, ...container }],
      ...extra,
    },
  };
}

export async function createPod(client: KubeClient, pod: V1Pod): Promise<V1Pod> {
  return client.call("create", "pods", (o) => client.core.createNamespacedPod({ namespace: client.namespace, body: pod }, o));
}

export function podWatch(client: KubeClient, name: string): ResourceWatch<V1Pod> {
  return new ResourceWatch<V1Pod>(client, podsCollection(client.namespace), { fieldSelector: `metadata.name=${name}` });
}

/** Waits until the container runs (or ran). */
export async function waitStarted(client: KubeClient, name: string): Promise<V1Pod> {
  const out = await waitFor(podWatch(client, name), (p) => containerStarted(p, "main"), { timeoutMs: 90_000 });
  if (out.kind !== "matched") throw new Error(`pod ${name} vanished`);
  return out.object;
}

/** Waits until the pod finished. */
export async function waitDone(client: KubeClient, name: string): Promise<V1Pod> {
  const done = (p: V1Pod) => p.status?.phase === "Succeeded" || p.status?.phase === "Failed";
  const out = await waitFor(podWatch(client, name), done, { timeoutMs: 120_000 });
  if (out.kind !== "matched") throw new Error(`pod ${name} vanished`);
  return out.object;
}

/**
 * Wraps a watch so that a test can act only after the watch has listed: whatever happens after `listed`
 * resolves reaches the watcher as an event, never as a list it did not see (a pod deleted before the first
 * list is simply absent from it, and no DELETED event ever comes).
 */
export function afterFirstList<T extends KubeObject>(watch: Watchable<T>): { watch: Watchable<T>; listed: Promise<void> } {
  let markListed!: () => void;
  const listed = new Promise<void>((resolve) => (markListed = resolve));
  return {
    listed,
    watch: {
      async *events(signal?: AbortSignal) {
        for await (const ev of watch.events(signal)) {
          if (ev.type === "relisted") markListed();
          yield ev;
        }
      },
    },
  };
}
