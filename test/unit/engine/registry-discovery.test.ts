// The engine finds its registry in the cluster's KEP-1755 ConfigMap (kube-public/local-registry-hosting), read
// through the seam; a cluster that publishes none, or does not let us read it, means "no registry configured".
import { KubeConfig } from "@kubernetes/client-node";
import { afterEach, describe, expect, it } from "vitest";
import { KubernetesEngine } from "../../../src/engine.js";
import { InvalidInputError, KubernetesApiError } from "../../../src/errors.js";
import { json, startFakeApiServer, type FakeApiServer } from "../kube/fake-apiserver.js";

let server: FakeApiServer | null = null;

afterEach(async () => {
  await server?.close();
  server = null;
});

/** An engine whose cluster answers the ConfigMap read with `code` and `body`; and the paths it was asked. */
async function engineWhoseClusterAnswers(code: number, body: unknown, env: Record<string, string> = {}): Promise<{ engine: KubernetesEngine; asked: string[] }> {
  const asked: string[] = [];
  server = await startFakeApiServer((url, _req, res) => {
    asked.push(url.pathname);
    json(res, code, body);
  });
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromOptions({
    clusters: [{ name: "c", server: server.client.server, skipTLSVerify: true }],
    users: [{ name: "u" }],
    contexts: [{ name: "x", cluster: "c", user: "u", namespace: "ns" }],
    currentContext: "x",
  });
  return { engine: new KubernetesEngine({ kubeConfig, log: () => undefined }, env), asked };
}

const status = (code: number, reason: string): { kind: string; code: number; reason: string; message: string } => ({ kind: "Status", code, reason, message: reason });

describe("registry discovery (KEP-1755)", () => {
  it("uses the registry the cluster publishes", async () => {
    const document = 'host: "localhost:5001"\nhostFromClusterNetwork: "kind-registry:5000"\n';
    const { engine, asked } = await engineWhoseClusterAnswers(200, { metadata: { name: "local-registry-hosting" }, data: { "localRegistryHosting.v1": document } });
    expect(await engine.registry()).toMatchObject({ host: "localhost:5001", pushHost: "kind-registry:5000", insecure: true });
    expect(asked).toEqual(["/api/v1/namespaces/kube-public/configmaps/local-registry-hosting"]);
  });

  it("in a pod (KUBERNETES_SERVICE_HOST set) it reads the registry where pods reach it, not at the user's localhost", async () => {
    const document = 'host: "localhost:5001"\nhostFromContainerRuntime: "kind-registry:5000"\nhostFromClusterNetwork: "kind-registry:5000"\n';
    const configMap = { metadata: { name: "local-registry-hosting" }, data: { "localRegistryHosting.v1": document } };
    const inPod = await engineWhoseClusterAnswers(200, configMap, { KUBERNETES_SERVICE_HOST: "10.96.0.1" });
    expect(await inPod.engine.registry()).toMatchObject({ host: "kind-registry:5000", apiHost: "kind-registry:5000", insecure: true });
    await server?.close();
    const onLaptop = await engineWhoseClusterAnswers(200, configMap);
    expect(await onLaptop.engine.registry()).toMatchObject({ host: "kind-registry:5000", apiHost: "localhost:5001" });
  });

  it.each([
    [404, "NotFound"],
    [403, "Forbidden"],
  ])("a ConfigMap answered %i: no registry configured (InvalidInputError)", async (code, reason) => {
    const { engine } = await engineWhoseClusterAnswers(code, status(code, reason));
    await expect(engine.registry()).rejects.toBeInstanceOf(InvalidInputError);
    await expect(engine.registry()).rejects.toThrow(/no registry configured: .*kube-public\/local-registry-hosting ConfigMap/);
  });

  it("any other failure of the read is the API error", async () => {
    const { engine } = await engineWhoseClusterAnswers(500, status(500, "InternalError"));
    await expect(engine.registry()).rejects.toBeInstanceOf(KubernetesApiError);
  });
});
