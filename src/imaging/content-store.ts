/**
 * The registry side of content-addressed builds: finds the image pushed for a content hash
 * (`<repository>:kce-<hash16>`) and gives it the requested tag, by copying the manifest within the repository
 * (no image bytes move). Only for images in the engine's own registry, whose address and credentials the
 * client knows. A registry that cannot answer is not an error here: the build then simply runs.
 */
import { ContainerEngineError } from "../errors.js";
import type { RegistryClient } from "../registry/client.js";
import { contentTag } from "./content-hash.js";
import type { ImageTarget } from "./plan.js";

/** Looks up and re-tags content-addressed images. */
export class ContentStore {
  constructor(
    private readonly client: RegistryClient,
    private readonly log: (message: string) => void,
  ) {}

  /**
   * The digest of the image built earlier for `hash`, after making `target` name it (when `tag` is set);
   * null when there is none, the target is not in the engine's registry, or the registry failed (logged).
   * @throws CancelledError when `signal` aborts.
   */
  async reuse(target: ImageTarget, hash: string, tag: boolean, signal?: AbortSignal): Promise<string | null> {
    if (!target.inEngineRegistry) return null;
    const call = signal ? { signal } : {};
    const contentRef = { ...target.tag, tag: contentTag(hash) };
    try {
      const digest = await this.client.manifestDigest(contentRef, call);
      if (!digest || !tag) return digest;
      const current = await this.client.manifestDigest(target.tag, call);
      if (current === digest) return digest;
      const tagged = await this.client.tagManifest({ ...contentRef, tag: null, digest }, target.tag.tag, call);
      return tagged === digest ? digest : null;
    } catch (err) {
      if (signal?.aborted || !(err instanceof ContainerEngineError)) throw err;
      this.log(`build: the content-hash lookup in the registry failed, building instead: ${err.message}`);
      return null;
    }
  }
}
