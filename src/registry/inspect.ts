/**
 * The contract's `inspect_image` and `images` over a registry: vendor shapes (config blobs, catalog) become
 * our {@link Image} here.
 */
import { Image, formatImageReference, parseImageReference, resolveImageReference, type ImageConfig } from "../image.js";
import type { ImageConfigBlob, RegistryClient } from "./client.js";

/**
 * Maps a config blob to the contract's `ImageConfig`: the blob's `config` object with `WorkingDir` always
 * present ("" when the image sets none). Keys whose value is null (Docker writes `"Cmd": null`) are dropped,
 * so optional fields are either absent or of their documented type.
 */
export function toImageConfig(blob: ImageConfigBlob): ImageConfig {
  const source = typeof blob.config === "object" && blob.config !== null && !Array.isArray(blob.config) ? blob.config : {};
  const entries = Object.entries(source).filter(([, value]) => value !== null);
  const config: Record<string, unknown> = Object.fromEntries(entries);
  return { ...config, WorkingDir: typeof config.WorkingDir === "string" ? config.WorkingDir : "" };
}

/**
 * How an image is named in `Image.tags`: the resolved reference (`latest` when no tag or digest was given),
 * without the host when it is the engine's default registry (`r2d-x` → `r2d-x:latest`;
 * `other.io/a:1` stays as it is).
 */
export function imageTag(ref: string, defaultRegistry: string): string {
  const resolved = resolveImageReference(ref, defaultRegistry);
  const sameHost = resolved.registry?.toLowerCase() === defaultRegistry.toLowerCase();
  return formatImageReference({ ...resolved, registry: sameHost ? null : resolved.registry });
}

/** Options of {@link inspectImage}. */
export interface InspectImageOptions {
  /** The registry that references without a host resolve to (the engine's registry). */
  defaultRegistry: string;
  /** `os/arch[/variant]` chosen from multi-platform images; default: the client's platform. */
  platform?: string;
  signal?: AbortSignal;
}

/**
 * The contract's `inspect_image`: the image `ref` names, with its config loaded. No host → `defaultRegistry`,
 * no tag → `latest`.
 * @returns null when the repository or tag does not exist (never throws for that).
 * @throws InvalidInputError for a malformed reference; RegistryError when the registry fails or refuses
 *   (unauthorized, unreachable, not an image, no manifest for the platform); CancelledError.
 */
export async function inspectImage(client: RegistryClient, ref: string, options: InspectImageOptions): Promise<Image | null> {
  const resolved = resolveImageReference(ref, options.defaultRegistry);
  const callOptions = { ...(options.signal ? { signal: options.signal } : {}), ...(options.platform ? { platform: options.platform } : {}) };
  const blob = await client.getConfig(resolved, callOptions);
  if (blob === null) return null;
  return new Image({ tags: [imageTag(ref, options.defaultRegistry)], config: toImageConfig(blob) });
}

/** Options of {@link listImages}. */
export interface ListImagesOptions {
  /** Load each image's config (one manifest + one blob request per tag); default false → `config: null`. */
  loadConfig?: boolean;
  /** Requests in flight at once; default 8. */
  concurrency?: number;
  signal?: AbortSignal;
}

/**
 * The contract's legacy `images()` for one registry: one {@link Image} per repository:tag in the catalog,
 * tagged `name:tag` (no host: it is the engine's registry). Tags sharing a digest are not merged (that would
 * cost a request per tag). By default `config` is null, the seed's "not loaded": listing stays one request
 * per repository; callers wanting a config use {@link inspectImage} or `loadConfig`. Repositories or tags
 * deleted while listing are skipped.
 * @throws RegistryError when the registry has no catalog API or fails; CancelledError.
 */
export async function listImages(client: RegistryClient, registryHost: string, options: ListImagesOptions = {}): Promise<Image[]> {
  const concurrency = Math.max(1, options.concurrency ?? 8);
  const call = options.signal ? { signal: options.signal } : {};
  const repositories = await client.listRepositories(registryHost, call);
  const tagLists = await mapLimit(repositories, concurrency, async (repository) => {
    const tags = await client.listTags({ registry: registryHost, repository, tag: null, digest: null }, call);
    return (tags ?? []).map((tag) => ({ repository, tag }));
  });
  const named = tagLists.flat();
  const images = await mapLimit(named, concurrency, async ({ repository, tag }) => {
    const name = `${repository}:${tag}`;
    if (!options.loadConfig) return new Image({ tags: [name] });
    const blob = await client.getConfig(parseImageReference(`${registryHost}/${name}`), call);
    return blob === null ? null : new Image({ tags: [name], config: toImageConfig(blob) });
  });
  return images.filter((image): image is Image => image !== null);
}

/**
 * Maps `items` through `fn` with at most `limit` calls in flight, keeping the order. The first rejection
 * stops new calls and is rethrown once the ones in flight settle.
 */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (!failed && next < items.length) {
      const index = next++;
      try {
        results[index] = await fn(items[index] as T);
      } catch (error) {
        failed = true;
        throw error;
      }
    }
  };
  const workers = Array.from({ length: Math.min(limit, items.length) }, () => worker());
  const settled = await Promise.allSettled(workers);
  const rejected = settled.find((s): s is PromiseRejectedResult => s.status === "rejected");
  if (rejected) throw rejected.reason;
  return results;
}
