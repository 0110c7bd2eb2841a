import { describe, expect, it } from "vitest";
import type { RegistryOptions } from "../../src/config.js";
import { LOCAL_REGISTRY_HOSTING, registryFromLocalRegistryHosting } from "../../src/registry-hosting.js";

describe("LOCAL_REGISTRY_HOSTING", () => {
  it("names KEP-1755's ConfigMap and key", () => {
    expect(LOCAL_REGISTRY_HOSTING).toEqual({ namespace: "kube-public", name: "local-registry-hosting", key: "localRegistryHosting.v1" });
  });
});

describe("registryFromLocalRegistryHosting", () => {
  it.each<[string, string, RegistryOptions]>([
    [
      "kind's documented example (host only)",
      'host: "localhost:5001"\nhelp: "https://kind.sigs.k8s.io/docs/user/local-registry/"\n',
      { host: "localhost:5001", pushHost: "localhost:5001", apiHost: "localhost:5001", insecure: true },
    ],
    [
      "all three addresses (KEP-1755)",
      'host: "localhost:5001"\nhostFromContainerRuntime: "kind-registry:5000"\nhostFromClusterNetwork: "kind-registry:5000"\n' +
        'help: "https://kind.sigs.k8s.io/docs/user/local-registry/"\n',
      // Nodes pull the runtime address; the client's address being localhost makes it insecure.
      { host: "kind-registry:5000", pushHost: "kind-registry:5000", apiHost: "localhost:5001", insecure: true },
    ],
    [
      "different runtime and cluster-network addresses",
      "host: localhost:5001\nhostFromContainerRuntime: localhost:5001\nhostFromClusterNetwork: kind-registry:5000\n",
      { host: "localhost:5001", pushHost: "kind-registry:5000", apiHost: "localhost:5001", insecure: true },
    ],
    [
      "no hostFromContainerRuntime: nodes use host",
      "host: 192.168.49.2:5000\nhostFromClusterNetwork: registry.kube-system.svc:80\n",
      { host: "192.168.49.2:5000", pushHost: "registry.kube-system.svc:80", apiHost: "192.168.49.2:5000", insecure: true },
    ],
    [
      "no host: the client uses the runtime address",
      "hostFromContainerRuntime: registry.local:5000\n",
      { host: "registry.local:5000", pushHost: "registry.local:5000", apiHost: "registry.local:5000", insecure: false },
    ],
    [
      "a node's public IP address: plain HTTP allowed (KEP-1755 registries are local ones)",
      'host: "192.0.2.2:5000"\nhostFromClusterNetwork: "192.0.2.2:5000"\nhostFromContainerRuntime: "192.0.2.2:5000"\n',
      { host: "192.0.2.2:5000", pushHost: "192.0.2.2:5000", apiHost: "192.0.2.2:5000", insecure: true },
    ],
    [
      "an IPv6 literal",
      'host: "[2001:db8::1]:5000"\n',
      { host: "[2001:db8::1]:5000", pushHost: "[2001:db8::1]:5000", apiHost: "[2001:db8::1]:5000", insecure: true },
    ],
    [
      "a public registry is not insecure",
      "host: registry.example.com\n",
      { host: "registry.example.com", pushHost: "registry.example.com", apiHost: "registry.example.com", insecure: false },
    ],
    [
      "empty strings count as missing",
      'host: "localhost:5001"\nhostFromContainerRuntime: ""\nhostFromClusterNetwork: ""\n',
      { host: "localhost:5001", pushHost: "localhost:5001", apiHost: "localhost:5001", insecure: true },
    ],
    [
      "non-string fields are ignored",
      "host: localhost:5001\nhostFromContainerRuntime: 5000\nhostFromClusterNetwork: [a, b]\n",
      { host: "localhost:5001", pushHost: "localhost:5001", apiHost: "localhost:5001", insecure: true },
    ],
    [
      "JSON is YAML too",
      '{"host":"localhost:5001","hostFromClusterNetwork":"kind-registry:5000"}',
      { host: "localhost:5001", pushHost: "kind-registry:5000", apiHost: "localhost:5001", insecure: true },
    ],
  ])("maps %s", (_name, document, expected) => {
    expect(registryFromLocalRegistryHosting(document)).toEqual(expected);
  });

  it.each<[string, string, RegistryOptions]>([
    [
      "kind's recipe: the registry as pods reach it, plain HTTP as the document's localhost host says",
      'host: "localhost:5001"\nhostFromContainerRuntime: "kind-registry:5000"\nhostFromClusterNetwork: "kind-registry:5000"\n',
      { host: "kind-registry:5000", pushHost: "kind-registry:5000", apiHost: "kind-registry:5000", insecure: true },
    ],
    [
      "no hostFromClusterNetwork: the runtime's address",
      'host: "localhost:5001"\nhostFromContainerRuntime: "registry.internal:5000"\n',
      { host: "registry.internal:5000", pushHost: "registry.internal:5000", apiHost: "registry.internal:5000", insecure: true },
    ],
    [
      "only host: that one (nothing else is published)",
      "host: registry.example.com\n",
      { host: "registry.example.com", pushHost: "registry.example.com", apiHost: "registry.example.com", insecure: false },
    ],
  ])("from a pod, maps %s", (_name, document, expected) => {
    expect(registryFromLocalRegistryHosting(document, "pod")).toEqual(expected);
  });

  it.each<[string, string]>([
    ["an empty document", ""],
    ["only a comment", "# nothing here\n"],
    ["null", "null\n"],
    ["only help", 'help: "https://kind.sigs.k8s.io/docs/user/local-registry/"\n'],
    ["only hostFromClusterNetwork", "hostFromClusterNetwork: kind-registry:5000\n"],
    ["an empty host", 'host: ""\n'],
    ["a numeric host", "host: 5001\n"],
    ["a scalar document", "localhost:5001"],
    ["a list", "- host: localhost:5001\n"],
    ["invalid YAML", "host: [localhost:5001\n"],
    ["a tab-indented mapping", "host:\n\t- x\n"],
  ])("returns null for %s", (_name, document) => {
    expect(registryFromLocalRegistryHosting(document)).toBeNull();
  });
});
