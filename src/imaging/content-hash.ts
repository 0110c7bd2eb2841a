/**
 * Content-addressed builds (pure). A build is identified by the hash of everything that decides its result
 * and that we can see: the context's content hash (the sha256 of the deterministic tar, which includes the
 * Dockerfile), the Dockerfile's path, build arguments, labels, platform and builder. The image built for a hash
 * is pushed a second time as `<repository>:kce-<hash16>`, so a later build finds it with one HEAD request.
 *
 * What the hash cannot see: a base image that moved under the same tag (`FROM x:latest`), or network fetches
 * in `RUN`. Like Docker's layer cache, an unchanged build reuses the earlier image; turn the feature off
 * (`contentAddressed: false`) or change an input to force a rebuild.
 */
import { createHash } from "node:crypto";

/** Bumped when the meaning of the hash changes, so old tags are no longer matched. */
export const CONTENT_HASH_VERSION = "kce-build-v1";

/** The tag prefix of content-addressed tags. */
export const CONTENT_TAG_PREFIX = "kce-";

/** Everything that identifies a build. */
export interface BuildIdentity {
  /** "sha256:<hex>" of the context's deterministic tar (`BuildContext.digest()`). */
  contextSha256: string;
  /** The Dockerfile's normalized path inside the context. */
  dockerfile: string;
  buildArgs: Record<string, string>;
  /** Labels with null already mapped to "". */
  labels: Record<string, string>;
  platform: string | null;
  builder: "kaniko" | "buildkit";
}

function sortedEntries(record: Record<string, string>): [string, string][] {
  return Object.entries(record).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * The build's content hash: lowercase hex sha256 over a canonical JSON document of the identity (keys of
 * args and labels sorted, so their order does not matter).
 */
export function buildContentHash(identity: BuildIdentity): string {
  const canonical = JSON.stringify([
    CONTENT_HASH_VERSION,
    identity.contextSha256,
    identity.dockerfile,
    sortedEntries(identity.buildArgs),
    sortedEntries(identity.labels),
    identity.platform ?? "",
    identity.builder,
  ]);
  return createHash("sha256").update(canonical).digest("hex");
}

/** The registry tag of a content hash: `kce-` and its first 16 hex digits (64 bits). */
export function contentTag(hash: string): string {
  if (!/^[0-9a-f]{16,}$/.test(hash)) throw new TypeError(`not a hex content hash: ${JSON.stringify(hash)}`);
  return `${CONTENT_TAG_PREFIX}${hash.slice(0, 16)}`;
}

/** True for tags that {@link contentTag} made (listed images may hide them). */
export function isContentTag(tag: string): boolean {
  return /^kce-[0-9a-f]{16}$/.test(tag);
}

/**
 * The builder Job's name for a content hash: the same for the same hash and destination repository, so two
 * identical builds started at once meet at one Job (the second `create` gets 409 AlreadyExists and follows the
 * first one's pod). `kce-build-<repository tail>-<12 hex>`, at most 52 characters (pod names add a suffix).
 */
export function contentJobName(hash: string, pushRepository: string): string {
  const key = createHash("sha256").update(`${hash}\n${pushRepository}`).digest("hex").slice(0, 12);
  return `kce-build-${repositorySlug(pushRepository)}-${key}`;
}

/** A random builder Job name (`kce-<purpose>-<repository tail>-<random>`), for builds that are not content-addressed. */
export function randomJobName(purpose: "build" | "push", repository: string, random: () => string): string {
  return `kce-${purpose}-${repositorySlug(repository)}-${random()}`;
}

/** The repository's last path segment as a DNS-label fragment of at most 26 characters. */
export function repositorySlug(repository: string): string {
  const tail = repository.split("/").pop() ?? "";
  const slug = tail.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 26).replace(/-+$/, "");
  return slug || "image";
}
