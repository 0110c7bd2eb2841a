/**
 * BinderHub's repository providers (binderhub/repoproviders.py): how `<provider>/<spec>` names a repository
 * and a ref, and the slug that image and build names derive from. Pure; ref resolution is in git-refs.ts.
 *
 * | provider | spec | repository URL | slug |
 * |---|---|---|---|
 * | gh  | `user/repo/ref` (ref may contain `/`)           | `<gh base>/<user>/<repo>`     | `user-repo` |
 * | gl  | `<escaped namespace>/<escaped ref>`             | `<gl base>/<namespace>.git`   | namespace parts joined by `-`, `-` → `_-` |
 * | git | `<escaped repository URL>/<escaped ref>`        | the URL                        | the URL |
 */
import { InvalidInputError } from "../errors.js";

export type ProviderId = "gh" | "gl" | "git";

/** Base URLs of the hosted providers (GitHub Enterprise, a self-hosted GitLab…). */
export interface ProviderSettings {
  /** Default https://github.com. */
  gh: { baseUrl: string };
  /** Default https://gitlab.com. */
  gl: { baseUrl: string };
  /** Which providers the service answers; default all three. */
  enabled: ProviderId[];
}

export const DEFAULT_PROVIDERS: ProviderSettings = {
  gh: { baseUrl: "https://github.com" },
  gl: { baseUrl: "https://gitlab.com" },
  enabled: ["gh", "gl", "git"],
};

/** A parsed build request: which repository, which (unresolved) ref. */
export interface RepoSpec {
  provider: ProviderId;
  /** The spec as requested (still escaped, as BinderHub keeps it). */
  spec: string;
  repoUrl: string;
  /** Branch, tag, `HEAD` or a commit, as requested. */
  ref: string;
  /** What build and image names derive from (BinderHub's `get_build_slug`). */
  slug: string;
  /** The spec with the ref replaced by `commit` (BinderHub's `get_resolved_spec`). */
  resolvedSpec(commit: string): string;
  /** A page of the repository at `commit`, for humans. */
  refUrl(commit: string): string;
}

/** The request's spec is malformed or names an unknown provider (a `failed` event, no build). */
export class SpecError extends InvalidInputError {}

function decode(part: string, what: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new SpecError(`${what} ${JSON.stringify(part)} is not validly URL-escaped`);
  }
}

function trimBase(url: string): string {
  return url.replace(/\/+$/, "");
}

function splitOnce(spec: string): [string, string] {
  const i = spec.indexOf("/");
  return i < 0 ? [spec, ""] : [spec.slice(0, i), spec.slice(i + 1)];
}

/**
 * Parses `<provider>/<spec>` the way BinderHub does (the spec still URL-escaped, trailing `/` ignored).
 * @throws SpecError for an unknown or disabled provider or a spec of the wrong form.
 */
export function parseRepoSpec(provider: string, rawSpec: string, settings: ProviderSettings = DEFAULT_PROVIDERS): RepoSpec {
  const spec = rawSpec.replace(/\/+$/, "");
  if (!(settings.enabled as string[]).includes(provider)) throw new SpecError(`No provider found for prefix ${provider}`);
  switch (provider as ProviderId) {
    case "gh":
      return github(spec, trimBase(settings.gh.baseUrl));
    case "gl":
      return gitlab(spec, trimBase(settings.gl.baseUrl));
    case "git":
      return plainGit(spec);
  }
}

function github(spec: string, base: string): RepoSpec {
  const parts = spec.split("/");
  if (parts.length < 3 || parts.slice(0, 3).some((p) => p === "")) {
    const hint = parts.length === 2 && !["main", "master", "HEAD"].includes(parts[1] ?? "") ? ` Did you mean "${spec}/HEAD"?` : "";
    throw new SpecError(`Spec is not of the form "user/repo/ref", provided: "${spec}".${hint}`);
  }
  const [user = "", rawRepo = ""] = parts;
  const ref = parts.slice(2).join("/");
  const repo = rawRepo.replace(/\.git$/, "");
  return {
    provider: "gh",
    spec,
    repoUrl: `${base}/${user}/${repo}`,
    ref,
    slug: `${user}-${repo}`,
    resolvedSpec: (commit) => `${user}/${repo}/${commit}`,
    refUrl: (commit) => `${base}/${user}/${repo}/tree/${commit}`,
  };
}

function gitlab(spec: string, base: string): RepoSpec {
  const [rawNamespace, rawRef] = splitOnce(spec);
  const namespace = decode(rawNamespace, "GitLab project");
  const ref = decode(rawRef, "ref");
  if (namespace === "") throw new SpecError(`Spec is not of the form "<escaped namespace>/<ref>", provided: "${spec}".`);
  if (ref === "") throw new SpecError("An unresolved ref is required");
  return {
    provider: "gl",
    spec,
    repoUrl: `${base}/${namespace}.git`,
    ref,
    slug: namespace.split("/").map((p) => p.replace(/-/g, "_-")).join("-"),
    resolvedSpec: (commit) => `${rawNamespace}/${commit}`,
    refUrl: (commit) => `${base}/${namespace}/tree/${commit}`,
  };
}

function plainGit(spec: string): RepoSpec {
  const [rawUrl, rawRef] = splitOnce(spec);
  const repoUrl = decode(rawUrl, "repository URL");
  const ref = decode(rawRef, "ref");
  if (repoUrl === "") throw new SpecError(`Spec is not of the form "<escaped repository URL>/<ref>", provided: "${spec}".`);
  if (ref === "") throw new SpecError("`unresolved_ref` must be specified in the url for the basic git provider");
  return {
    provider: "git",
    spec,
    repoUrl,
    ref,
    slug: repoUrl,
    resolvedSpec: (commit) => `${rawUrl}/${commit}`,
    refUrl: () => repoUrl,
  };
}

/** A full commit id (BinderHub accepts exactly 40 lower-case hex digits as already resolved). */
export function isCommitId(ref: string): boolean {
  return /^[0-9a-f]{40}$/.test(ref);
}
