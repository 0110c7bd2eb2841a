/**
 * KEP-1755 "local-registry-hosting": a ConfigMap in `kube-public` through which a cluster publishes its local
 * registry. kind, minikube, k3d and our test cluster create it; reading it makes the engine zero-config there.
 */
import * as yaml from "js-yaml";
import type { RegistryOptions } from "./config.js";
import { isConventionallyInsecure } from "./config.js";

export const LOCAL_REGISTRY_HOSTING = { namespace: "kube-public", name: "local-registry-hosting", key: "localRegistryHosting.v1" } as const;

/**
 * Maps the ConfigMap's `localRegistryHosting.v1` document onto our registry options: image names use the
 * address the nodes' runtime pulls from, builders push to the one reachable from pods, and this client talks
 * to `host` — or, when it runs in a pod itself (`from: "pod"`: a build service, a hub), to the address pods
 * use, since `host` is the user's machine's view (kind: `localhost:5001`, nothing listens there in a pod).
 * Returns null when the document names no host, or is not a YAML mapping at all (the engine then
 * reports that no registry is configured, instead of a raw YAML parser error that is no ContainerEngineError).
 */
export function registryFromLocalRegistryHosting(document: string, from: "client" | "pod" = "client"): RegistryOptions | null {
  let loaded: unknown;
  try {
    loaded = yaml.load(document);
  } catch {
    return null;
  }
  if (loaded === null || typeof loaded !== "object" || Array.isArray(loaded)) return null;
  const parsed = loaded as Record<string, unknown>;
  const text = (key: string): string | undefined => {
    const value = parsed[key];
    return typeof value === "string" && value.length > 0 ? value : undefined;
  };
  const host = text("host");
  const runtime = text("hostFromContainerRuntime") ?? host;
  if (!runtime) return null;
  const pushHost = text("hostFromClusterNetwork") ?? runtime;
  const apiHost = from === "pod" ? pushHost : (host ?? runtime);
  return {
    host: runtime,
    pushHost,
    apiHost,
    // the document's own view decides: kind's `host: localhost:5001` marks a local plain-HTTP registry for pods too
    insecure: [runtime, host ?? runtime, apiHost].some((h) => isConventionallyInsecure(h) || isIpLiteral(h)),
  };
}

/**
 * A registry this document publishes by IP address is taken as plain HTTP (HTTPS is still tried first).
 * KEP-1755 publishes a cluster's *local* development registry, and every implementation (kind, k3d, minikube,
 * microk8s, ctlptl, our test cluster) serves it over plain HTTP; the document has no field for the scheme.
 * By a loopback or private address that is already the convention; a node's address may be public, though
 * (a VM or bare-metal node), so any IP literal counts here — certificates for bare IP addresses are rare.
 * Registries published by DNS name keep strict TLS. Only cluster admins can write the ConfigMap.
 */
function isIpLiteral(host: string): boolean {
  const name = host.replace(/:\d+$/, "");
  return /^\d{1,3}(?:\.\d{1,3}){3}$/.test(name) || /^\[[0-9a-fA-F:.]+\]$/.test(name);
}
