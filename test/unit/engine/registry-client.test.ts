import { KubeConfig } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { resolveRegistry } from "../../../src/config.js";
import { KubernetesEngine } from "../../../src/engine.js";

function kubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: "c", server: "https://127.0.0.1:1" }],
    users: [{ name: "u" }],
    contexts: [{ name: "x", cluster: "c", user: "u" }],
    currentContext: "x",
  });
  return kc;
}

type Target = { insecure: boolean; credentials: { username: string; password: string } | null };

describe("KubernetesEngine.registryClient", () => {
  it("knows push targets: insecure registries and the credentials' registry, besides its own", () => {
    const engine = new KubernetesEngine(
      {
        kubeConfig: kubeConfig(),
        insecureRegistries: ["192.0.2.2:5001"],
        registryCredentials: { registry: "http://192.0.2.2:5001", username: "u", password: "p" },
        log: () => undefined,
      },
      {},
    );
    const client = engine.registryClient(resolveRegistry({ host: "192.0.2.2:5000", insecure: true }));
    const target = (host: string): Target => (client as unknown as { target(h: string): Target }).target(host);
    expect(target("192.0.2.2:5000")).toMatchObject({ insecure: true, credentials: null });
    expect(target("192.0.2.2:5001")).toMatchObject({ insecure: true, credentials: { username: "u", password: "p" } });
    expect(target("registry.example.com")).toMatchObject({ insecure: false, credentials: null });
  });

  it("credentials for another registry that is not listed as insecure stay https", () => {
    const engine = new KubernetesEngine(
      { kubeConfig: kubeConfig(), registryCredentials: { registry: "quay.io", username: "u", password: "p" }, log: () => undefined },
      {},
    );
    const client = engine.registryClient(resolveRegistry({ host: "localhost:5000" }));
    const target = (host: string): Target => (client as unknown as { target(h: string): Target }).target(host);
    expect(target("quay.io")).toMatchObject({ insecure: false, credentials: { username: "u", password: "p" } });
    expect(target("localhost:5000")).toMatchObject({ credentials: null });
  });
});
