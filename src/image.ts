import { InvalidInputError } from "./errors.js";

/** The OCI/Docker image config (the `config` object of the config blob). `WorkingDir` is always present. */
export interface ImageConfig {
  WorkingDir: string;
  Env?: string[];
  Cmd?: string[];
  Entrypoint?: string[];
  ExposedPorts?: Record<string, object>;
  Labels?: Record<string, string>;
  User?: string;
  [key: string]: unknown;
}

/** The seed's Image: tags (without the engine's own registry host) and, when loaded, the config. */
export class Image {
  readonly tags: string[];
  /** null when not loaded; otherwise has `WorkingDir`. */
  readonly config: ImageConfig | null;
  constructor(init: { tags?: string[] | null; config?: ImageConfig | null }) {
    this.tags = init.tags ?? [];
    this.config = init.config ?? null;
  }
  toString(): string {
    return `Image(tags=${JSON.stringify(this.tags)}, config=${JSON.stringify(this.config)})`;
  }
}

/** A parsed image reference, `[registry/]repository[:tag][@digest]`. */
export interface ImageReference {
  /** Registry host[:port]; null when the reference names none. */
  registry: string | null;
  repository: string;
  tag: string | null;
  digest: string | null;
}

const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?$|^\[[0-9a-fA-F:.]+\](?::[0-9]+)?$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-fA-F0-9]{32,}$/;

/** Parses a reference with Docker's grammar; throws `InvalidInputError` with the reason when it is malformed. */
export function parseImageReference(ref: string): ImageReference {
  const bad = (why: string): never => {
    throw new InvalidInputError(`invalid image reference ${JSON.stringify(ref)}: ${why}`);
  };
  if (ref.length === 0) bad("it is empty");
  let rest = ref;
  let digest: string | null = null;
  const at = rest.indexOf("@");
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) bad(`digest ${JSON.stringify(digest)} is not algorithm:hex`);
  }
  let tag: string | null = null;
  const lastColon = rest.lastIndexOf(":");
  if (lastColon > rest.lastIndexOf("/")) {
    tag = rest.slice(lastColon + 1);
    rest = rest.slice(0, lastColon);
    if (!TAG.test(tag)) bad(`tag ${JSON.stringify(tag)} must match [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`);
  }
  const parts = rest.split("/");
  let registry: string | null = null;
  const first = parts[0] ?? "";
  if (parts.length > 1 && (first.includes(".") || first.includes(":") || first === "localhost" || /[A-Z]/.test(first))) {
    registry = first;
    parts.shift();
    if (!DOMAIN.test(registry)) bad(`registry ${JSON.stringify(registry)} is not a host[:port]`);
  }
  if (parts.length === 0 || parts.some((p) => !PATH_COMPONENT.test(p))) {
    bad("the repository must be lowercase letters, digits and separators (. _ __ -), in /-separated parts");
  }
  const repository = parts.join("/");
  if ((registry ? registry.length + 1 : 0) + repository.length > 255) bad("the name is longer than 255 characters");
  return { registry, repository, tag, digest };
}

/** Formats a reference back into a string. */
export function formatImageReference(ref: ImageReference): string {
  return (
    (ref.registry ? `${ref.registry}/` : "") +
    ref.repository +
    (ref.tag ? `:${ref.tag}` : "") +
    (ref.digest ? `@${ref.digest}` : "")
  );
}

/**
 * Applies the engine's defaults: no registry → `defaultRegistry`, no tag and no digest → `latest`.
 * The result is what nodes pull and what builders push to.
 */
export function resolveImageReference(ref: string, defaultRegistry: string): ImageReference {
  const parsed = parseImageReference(ref);
  return {
    registry: parsed.registry ?? defaultRegistry,
    repository: parsed.repository,
    tag: parsed.tag ?? (parsed.digest ? null : "latest"),
    digest: parsed.digest,
  };
}
