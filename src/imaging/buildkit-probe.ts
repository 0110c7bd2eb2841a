/**
 * Resolves the BuildKit mode for a build (see buildkit-mode.ts for the decision): for `auto`, reads the builder
 * image's config from the engine's registry to see whether it is a rootless image, then prints the choice and
 * its reason — and the warning of privileged mode — through the engine's log.
 */
import type { ResolvedEngineConfig, ResolvedRegistry } from "../config.js";
import { ContainerEngineError } from "../errors.js";
import { parseImageReference } from "../image.js";
import type { RegistryAccess } from "../registry/access.js";
import { chooseBuildkitMode } from "./buildkit-mode.js";

/** The engine parts the probe uses. */
export interface BuildkitProbeDeps {
  registries: Pick<RegistryAccess, "registryClient">;
  config: ResolvedEngineConfig;
  log: (message: string) => void;
}

/** Chooses privileged or rootless BuildKit for the configured image. */
export class BuildkitModes {
  constructor(private readonly deps: BuildkitProbeDeps) {}

  /**
   * The mode to run, announced through the log.
   * @throws InvalidInputError when `auto` finds no rootless image (nothing has been created).
   */
  async resolve(registry: ResolvedRegistry): Promise<"privileged" | "rootless"> {
    const { config } = this.deps;
    const image = config.builderImages.buildkit;
    const user = config.buildkitMode === "auto" ? await this.imageUser(image, registry) : null;
    const choice = chooseBuildkitMode(config.buildkitMode, { image, user });
    this.deps.log(choice.reason);
    if (choice.warning) this.deps.log(choice.warning);
    return choice.mode;
  }

  /** The image config's `User` ("" for root), or null when the image is not in the engine's registry or unreadable. */
  private async imageUser(image: string, registry: ResolvedRegistry): Promise<string | null> {
    let ref;
    try {
      ref = parseImageReference(image);
    } catch {
      return null; // the Job's creation reports a malformed image name
    }
    if (ref.registry !== registry.host && ref.registry !== registry.pushHost) return null;
    try {
      const blob = await this.deps.registries.registryClient(registry).getConfig({ ...ref, registry: registry.host });
      const user = blob?.config?.["User"];
      return blob ? (typeof user === "string" ? user : "") : null;
    } catch (err) {
      if (!(err instanceof ContainerEngineError)) throw err;
      return null;
    }
  }
}
