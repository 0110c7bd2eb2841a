/** What build code needs of the registry: where it is (configured or published by the cluster) and a client for it. */
import type { ResolvedRegistry } from "../config.js";
import type { RegistryClient } from "./client.js";

export interface RegistryAccess {
  /** The engine's registry (discovered once: configuration, else the KEP-1755 ConfigMap). */
  registry(): Promise<ResolvedRegistry>;
  /** The HTTP client for `registry` (and the other registries images may name), with their credentials. */
  registryClient(registry: ResolvedRegistry): RegistryClient;
}
