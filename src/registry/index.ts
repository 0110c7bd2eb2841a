/** The registry layer: named re-exports only. */
export { RegistryClient } from "./client.js";
export type {
  ImageConfigBlob, RegistryCallOptions, RegistryClientOptions, RegistryHostOptions, RegistryReference, ResolvedManifest,
} from "./client.js";
export { RegistryError, parseRegistryErrorBody, registryFailure, type RegistryErrorBody } from "./errors.js";
export { normalizeRegistryHost, parseDockerConfigJson, type BasicCredentials } from "./docker-config.js";
export { imageTag, inspectImage, listImages, mapLimit, toImageConfig } from "./inspect.js";
export type { InspectImageOptions, ListImagesOptions } from "./inspect.js";
export { parseLinkNext, parseWwwAuthenticate, type AuthChallenge } from "./headers.js";
export type { FetchFunction } from "./http.js";
export {
  MANIFEST_ACCEPT, MEDIA_TYPES, formatPlatform, parseManifest, parsePlatform, selectPlatformManifest,
  type Descriptor, type ParsedManifest, type Platform,
} from "./manifest.js";
