/** What builds and pushes are given (never the engine itself: imaging/ does not call back up). */
import type { ResolvedEngineConfig } from "../config.js";
import type { KubeApi } from "../kube/api.js";
import type { RegistryAccess } from "../registry/access.js";

export interface BuilderDeps {
  registries: RegistryAccess;
  config: ResolvedEngineConfig;
  /** The cluster, in the namespace builds run in. */
  api: KubeApi;
  log: (message: string) => void;
}
