/**
 * Manifest media types and the pure parts of reading them: classifying a manifest body, and choosing the
 * manifest for a platform from an index / manifest list.
 */

/** The manifest media types we ask for and understand. */
export const MEDIA_TYPES = {
  ociIndex: "application/vnd.oci.image.index.v1+json",
  ociManifest: "application/vnd.oci.image.manifest.v1+json",
  dockerManifestList: "application/vnd.docker.distribution.manifest.list.v2+json",
  dockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  ociConfig: "application/vnd.oci.image.config.v1+json",
  dockerConfig: "application/vnd.docker.container.image.v1+json",
} as const;

/** The `Accept` header for manifest requests: indexes and lists first, then single-platform manifests. */
export const MANIFEST_ACCEPT = [
  MEDIA_TYPES.ociIndex,
  MEDIA_TYPES.dockerManifestList,
  MEDIA_TYPES.ociManifest,
  MEDIA_TYPES.dockerManifest,
].join(", ");

const INDEX_TYPES: ReadonlySet<string> = new Set([MEDIA_TYPES.ociIndex, MEDIA_TYPES.dockerManifestList]);
const MANIFEST_TYPES: ReadonlySet<string> = new Set([MEDIA_TYPES.ociManifest, MEDIA_TYPES.dockerManifest]);
/** Config media types of container images (as opposed to OCI artifacts such as Helm charts). */
export const IMAGE_CONFIG_TYPES: ReadonlySet<string> = new Set([MEDIA_TYPES.ociConfig, MEDIA_TYPES.dockerConfig]);

/** An OS/architecture pair, with an optional variant (`arm/v7`). */
export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

/** A content descriptor: what a manifest or index points at. */
export interface Descriptor {
  mediaType: string;
  digest: string;
  /** Bytes. */
  size: number;
  platform?: Platform;
  annotations?: Record<string, string>;
}

/** A manifest body, classified. `unsupported` covers schema 1 and anything else we cannot read. */
export type ParsedManifest =
  | { kind: "index"; mediaType: string; manifests: Descriptor[] }
  | { kind: "manifest"; mediaType: string; config: Descriptor; layers: Descriptor[] }
  | { kind: "unsupported"; mediaType: string; reason: string };

type JsonObject = Record<string, unknown>;
const isObject = (value: unknown): value is JsonObject =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/** The media type of a `Content-Type` header value, without parameters and lowercased. */
export function mediaTypeOf(contentType: string | null): string | null {
  const type = contentType?.split(";")[0]?.trim().toLowerCase();
  return type ? type : null;
}

function parsePlatformObject(value: unknown): Platform | undefined {
  if (!isObject(value) || typeof value.os !== "string" || typeof value.architecture !== "string") return undefined;
  return typeof value.variant === "string" && value.variant !== ""
    ? { os: value.os, architecture: value.architecture, variant: value.variant }
    : { os: value.os, architecture: value.architecture };
}

function parseDescriptor(value: unknown): Descriptor | null {
  if (!isObject(value) || typeof value.digest !== "string") return null;
  const descriptor: Descriptor = {
    mediaType: typeof value.mediaType === "string" ? value.mediaType : "",
    digest: value.digest,
    size: typeof value.size === "number" ? value.size : 0,
  };
  const platform = parsePlatformObject(value.platform);
  if (platform) descriptor.platform = platform;
  if (isObject(value.annotations)) {
    const entries = Object.entries(value.annotations).filter((e): e is [string, string] => typeof e[1] === "string");
    descriptor.annotations = Object.fromEntries(entries);
  }
  return descriptor;
}

/**
 * Classifies a parsed manifest body. The media type comes from the response's `Content-Type` when it is a
 * manifest type we know, else from the body's `mediaType`, else from its shape (`manifests` → index,
 * `config` → manifest); some registries serve OCI manifests as `application/json`.
 */
export function parseManifest(body: unknown, contentType: string | null): ParsedManifest {
  const header = mediaTypeOf(contentType);
  if (!isObject(body)) return { kind: "unsupported", mediaType: header ?? "", reason: "the body is not a JSON object" };
  const declared = typeof body.mediaType === "string" ? body.mediaType : null;
  const known = (t: string | null): t is string => t !== null && (INDEX_TYPES.has(t) || MANIFEST_TYPES.has(t));
  let mediaType = known(header) ? header : known(declared) ? declared : null;
  if (body.schemaVersion === 1) {
    return { kind: "unsupported", mediaType: header ?? "", reason: "Docker schema 1 manifests are not supported" };
  }
  if (mediaType === null) {
    if (Array.isArray(body.manifests)) mediaType = MEDIA_TYPES.ociIndex;
    else if (isObject(body.config)) mediaType = MEDIA_TYPES.ociManifest;
    else return { kind: "unsupported", mediaType: header ?? declared ?? "", reason: "unknown manifest media type" };
  }
  if (INDEX_TYPES.has(mediaType)) {
    const manifests = Array.isArray(body.manifests) ? body.manifests.map(parseDescriptor) : [];
    if (manifests.some((d) => d === null)) return { kind: "unsupported", mediaType, reason: "malformed descriptor" };
    return { kind: "index", mediaType, manifests: manifests as Descriptor[] };
  }
  const config = parseDescriptor(body.config);
  if (!config) return { kind: "unsupported", mediaType, reason: "the manifest has no config descriptor" };
  const layers = Array.isArray(body.layers) ? body.layers.map(parseDescriptor) : [];
  return { kind: "manifest", mediaType, config, layers: layers.filter((d): d is Descriptor => d !== null) };
}

/** Parses `os/architecture[/variant]` (e.g. `linux/amd64`, `linux/arm/v7`); null when malformed. */
export function parsePlatform(text: string): Platform | null {
  const parts = text.split("/");
  const [os, architecture, variant] = parts;
  if (parts.length < 2 || parts.length > 3 || !os || !architecture || variant === "") return null;
  return variant ? { os, architecture, variant } : { os, architecture };
}

/** Formats a platform as `os/architecture[/variant]`. */
export function formatPlatform(platform: Platform): string {
  return `${platform.os}/${platform.architecture}${platform.variant ? `/${platform.variant}` : ""}`;
}

/** BuildKit attaches provenance/SBOM manifests to indexes with this annotation and platform unknown/unknown. */
const ATTESTATION_ANNOTATION = "vnd.docker.reference.type";

/** The variant a platform has when none is written (containerd's normalisation: arm64 → v8). */
function normalVariant(platform: Platform): string | undefined {
  if (platform.variant) return platform.variant;
  if (platform.architecture === "arm64") return "v8";
  return undefined;
}

/**
 * Chooses the manifest for `wanted` from an index's descriptors: same OS and architecture; when `wanted` has
 * a variant, the same (normalised) variant; otherwise a descriptor without variant is preferred. Attestation
 * manifests are skipped. Returns null when no descriptor matches.
 */
export function selectPlatformManifest(manifests: readonly Descriptor[], wanted: Platform): Descriptor | null {
  const candidates = manifests.filter(
    (d) =>
      d.platform !== undefined &&
      d.annotations?.[ATTESTATION_ANNOTATION] === undefined &&
      d.platform.os === wanted.os &&
      d.platform.architecture === wanted.architecture,
  );
  const wantedVariant = normalVariant(wanted);
  if (wanted.variant !== undefined) {
    return candidates.find((d) => d.platform && normalVariant(d.platform) === wantedVariant) ?? null;
  }
  return candidates.find((d) => d.platform?.variant === undefined) ?? candidates[0] ?? null;
}

/** The platforms an index offers (attestations excluded), for error messages. */
export function listPlatforms(manifests: readonly Descriptor[]): string[] {
  return manifests
    .filter((d) => d.platform !== undefined && d.annotations?.[ATTESTATION_ANNOTATION] === undefined)
    .map((d) => formatPlatform(d.platform as Platform));
}
