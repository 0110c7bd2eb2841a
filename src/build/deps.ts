/** What builds and pushes are given (never the engine itself: build/ does not call back up). */
import type { ResolvedEngineConfig } from "../config.js";
import type { KubeClient } from "../kube/client.js";
import type { RegistryAccess } from "../registry/access.js";

export interface BuilderDeps {
  registries: RegistryAccess;
  config: ResolvedEngineConfig;
  client: KubeClient;
  log: (message: string) => void;
}
