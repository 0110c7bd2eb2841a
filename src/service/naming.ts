/**
 * Build and image names exactly as BinderHub derives them (binderhub/builder.py: `_safe_build_slug`,
 * `_generate_build_name`, the image name), so an image BinderHub built is found by us and the other way round.
 * Pure.
 */
import { createHash } from "node:crypto";

const SAFE = /^[A-Za-z0-9]$/;

/**
 * escapism.escape(text, safe=ASCII letters and digits, escape_char="-"): every other character becomes
 * `-XX` per UTF-8 byte (upper-case hex), so distinct inputs stay distinct.
 */
export function escapeSlug(text: string): string {
  let out = "";
  for (const ch of text) {
    if (SAFE.test(ch)) {
      out += ch;
      continue;
    }
    for (const byte of Buffer.from(ch, "utf8")) out += `-${byte.toString(16).toUpperCase()}`;
  }
  return out;
}

/** BinderHub's `_safe_build_slug`: the escaped slug cut to fit `limit` with a hash of the original appended. */
export function safeBuildSlug(slug: string, limit: number, hashLength = 6): string {
  const hash = createHash("sha256").update(slug, "utf8").digest("hex");
  const keep = Math.max(0, limit - hashLength - 1);
  return `${escapeSlug(slug).slice(0, keep)}-${hash.slice(0, hashLength)}`.toLowerCase();
}

/**
 * BinderHub's `_generate_build_name`: a DNS label (≤ 63 characters) that is the same for the same repository
 * and commit — the name of the build's Job, which is what makes concurrent requests join one build.
 */
export function buildName(slug: string, commit: string, prefix = "build-", limit = 63, refLength = 6): string {
  const safeSlug = safeBuildSlug(slug, limit - prefix.length - refLength - 1);
  const safeRef = safeBuildSlug(commit, refLength, 2);
  return `${prefix}${safeSlug}-${safeRef.slice(0, refLength)}`.toLowerCase();
}

/** BinderHub's image name: `<prefix><safe slug>:<commit>`, lower case, `_` → `-`. */
export function imageName(prefix: string, slug: string, commit: string): string {
  const safeSlug = safeBuildSlug(slug, 255 - prefix.length);
  return `${prefix}${safeSlug}:${commit}`.replace(/_/g, "-").toLowerCase();
}

/**
 * The name of a user's server launched from a repository: readable (the repository's last path segment) and
 * distinct per repository (a hash of the slug), at most 28 characters of `[a-z0-9-]`. One server per user and
 * repository, as BinderHub names them; a new commit replaces the old server's image only after it stopped.
 */
export function serverName(slug: string): string {
  const tail = slug.replace(/\/+$/, "").replace(/\.git$/, "").split(/[/:]/).pop() ?? "";
  const readable = tail.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 20).replace(/-+$/, "");
  const hash = createHash("sha256").update(slug, "utf8").digest("hex").slice(0, 6);
  return readable === "" ? `repo-${hash}` : `${readable}-${hash}`;
}
