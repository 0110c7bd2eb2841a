/**
 * Validation of {@link BuildOptions} before anything touches the cluster (reliability row 1). Every helper is
 * pure, checks at run time (callers may be untyped: a Python bridge, a CLI), and throws `InvalidInputError`
 * naming the offending option.
 */
import { posix } from "node:path";
import type { BuildOptions } from "../contract.js";
import { InvalidInputError } from "../errors.js";
import { parseImageReference, type ImageReference } from "../image.js";

/** The options of a build, checked and normalized. */
export interface ValidatedBuildOptions {
  tag: ImageReference;
  /** Normalized relative POSIX path; "Dockerfile" by default. */
  dockerfile: string;
  buildArgs: Record<string, string>;
  /** Null values became "". */
  labels: Record<string, string>;
  cacheFrom: ImageReference[];
  platform: string | null;
  /** Bytes, when a memory limit was asked for. */
  memoryLimit: number | null;
}

const KNOWN_BUILD_OPTIONS: ReadonlySet<string> = new Set([
  "tag", "path", "dockerfile", "context", "buildArgs", "labels", "cacheFrom", "containerLimits", "platform",
  "push", "load", "signal", "onProgress",
]);

const PLATFORM = /^[a-z0-9_]+\/[a-z0-9_]+(?:\/[a-z0-9_.]+)?$/;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Parses the tag with Docker's grammar; a digest is not a valid build tag. */
export function validateTag(tag: unknown): ImageReference {
  if (typeof tag !== "string") throw new InvalidInputError("the build `tag` must be a string");
  const ref = parseImageReference(tag);
  if (ref.digest) throw new InvalidInputError(`the build tag ${JSON.stringify(tag)} must not contain a digest`);
  return ref;
}

/** `undefined` → "Dockerfile"; otherwise a relative path that stays inside the context, normalized. */
export function validateDockerfilePath(dockerfile: unknown): string {
  if (dockerfile === undefined || dockerfile === null) return "Dockerfile";
  if (typeof dockerfile !== "string" || dockerfile.trim() === "") {
    throw new InvalidInputError("`dockerfile` must be a non-empty path relative to the build context");
  }
  if (dockerfile.includes("\0")) throw new InvalidInputError("`dockerfile` must not contain NUL bytes");
  if (posix.isAbsolute(dockerfile) || /^[A-Za-z]:[\\/]/.test(dockerfile)) {
    throw new InvalidInputError(`dockerfile ${JSON.stringify(dockerfile)} must be relative to the build context`);
  }
  const normalized = posix.normalize(dockerfile).replace(/\/+$/, "");
  if (normalized === "." || normalized === ".." || normalized.startsWith("../")) {
    throw new InvalidInputError(`dockerfile ${JSON.stringify(dockerfile)} must name a file inside the build context`);
  }
  return normalized;
}

function checkKey(kind: string, key: string): void {
  if (key === "" || key.includes("=") || /[\s\0]/.test(key)) {
    throw new InvalidInputError(`${kind} name ${JSON.stringify(key)} must be non-empty, without "=" or whitespace`);
  }
}

/** Build arguments: a record of string values. */
export function validateBuildArgs(buildArgs: unknown): Record<string, string> {
  if (buildArgs === undefined || buildArgs === null) return {};
  if (!isRecord(buildArgs)) throw new InvalidInputError("`buildArgs` must be an object of string values");
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(buildArgs)) {
    checkKey("build argument", key);
    if (typeof value !== "string") {
      throw new InvalidInputError(`build argument ${key} must be a string, got ${value === null ? "null" : typeof value}`);
    }
    out[key] = value;
  }
  return out;
}

/** Image labels: string or null values (null → ""). */
export function validateLabels(labels: unknown): Record<string, string> {
  if (labels === undefined || labels === null) return {};
  if (!isRecord(labels)) throw new InvalidInputError("`labels` must be an object of string or null values");
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(labels)) {
    checkKey("label", key);
    if (value !== null && typeof value !== "string") {
      throw new InvalidInputError(`label ${key} must be a string or null, got ${typeof value}`);
    }
    out[key] = value ?? "";
  }
  return out;
}

/** `os/arch[/variant]`, lowercase, e.g. "linux/amd64", "linux/arm64/v8". */
export function validatePlatform(platform: unknown): string | null {
  if (platform === undefined || platform === null || platform === "") return null;
  if (typeof platform !== "string" || !PLATFORM.test(platform)) {
    throw new InvalidInputError(
      `platform ${JSON.stringify(platform)} must look like os/arch[/variant], e.g. "linux/amd64"`,
    );
  }
  return platform;
}

/** Each `cacheFrom` entry must be a valid image reference. */
export function validateCacheFrom(cacheFrom: unknown): ImageReference[] {
  if (cacheFrom === undefined || cacheFrom === null) return [];
  if (!Array.isArray(cacheFrom)) throw new InvalidInputError("`cacheFrom` must be a list of image references");
  return cacheFrom.map((ref: unknown) => {
    if (typeof ref !== "string") throw new InvalidInputError("`cacheFrom` entries must be strings");
    return parseImageReference(ref);
  });
}

function validateMemory(limits: unknown): number | null {
  if (limits === undefined || limits === null) return null;
  if (!isRecord(limits)) throw new InvalidInputError("`containerLimits` must be an object");
  const memory = limits["memory"];
  if (memory === undefined || memory === null) return null;
  if (typeof memory !== "number" || !Number.isSafeInteger(memory) || memory <= 0) {
    throw new InvalidInputError("`containerLimits.memory` must be a positive whole number of bytes");
  }
  return memory;
}

/** Option names the contract does not know (repo2docker passes extras): the engine warns and ignores them. */
export function unknownBuildOptions(options: object): string[] {
  return Object.keys(options).filter((k) => !KNOWN_BUILD_OPTIONS.has(k));
}

/**
 * Checks every option of a build (not the context's contents: {@link createBuildContext} does that). Throws
 * `InvalidInputError` for a bad tag, both or neither of `path` and `context`, a bad dockerfile path,
 * non-string build arguments, bad labels, platform or cacheFrom, or a bad memory limit.
 */
export function validateBuildOptions(options: BuildOptions): ValidatedBuildOptions {
  if (!isRecord(options)) throw new InvalidInputError("build options must be an object");
  const tag = validateTag(options.tag);
  const hasPath = options.path !== undefined && options.path !== null;
  const hasContext = options.context !== undefined && options.context !== null;
  if (hasPath === hasContext) {
    throw new InvalidInputError("a build needs exactly one of `path` (a directory) and `context` (a tar stream)");
  }
  if (hasPath && (typeof options.path !== "string" || options.path === "")) {
    throw new InvalidInputError("the build context `path` must be a non-empty string");
  }
  return {
    tag,
    dockerfile: validateDockerfilePath(options.dockerfile),
    buildArgs: validateBuildArgs(options.buildArgs),
    labels: validateLabels(options.labels),
    cacheFrom: validateCacheFrom(options.cacheFrom),
    platform: validatePlatform(options.platform),
    memoryLimit: validateMemory(options.containerLimits),
  };
}
