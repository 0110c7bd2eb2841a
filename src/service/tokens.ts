/**
 * Bearer tokens for the build service, from a Kubernetes Secret mounted as a directory: one file per token,
 * the file name is the token's name (used for per-token limits and logs), the content the token. The
 * directory is re-read when it changes (Secret updates swap the mounted files), so tokens rotate without a
 * restart. Tokens are compared as SHA-256 digests in constant time and never logged.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";

/** The outcome of checking a request's Authorization header. */
export type AuthResult =
  | { ok: true; tokenName: string }
  /** 401: no credentials; 403: credentials that match no token. */
  | { ok: false; status: 401 | 403; message: string };

/** Where tokens come from: names → token values. */
export interface TokenSource {
  tokens(): ReadonlyMap<string, Buffer>;
}

const digest = (value: string): Buffer => createHash("sha256").update(value, "utf8").digest();

/** Tokens given directly (tests, `kce serve --token-file`). */
export class StaticTokens implements TokenSource {
  private readonly map: Map<string, Buffer>;
  constructor(tokens: Record<string, string>) {
    this.map = new Map(Object.entries(tokens).map(([name, value]) => [name, digest(value.trim())]));
  }
  tokens(): ReadonlyMap<string, Buffer> {
    return this.map;
  }
}

/** Tokens in a mounted Secret's directory, re-read at most every `recheckMs` when the directory changed. */
export class DirectoryTokens implements TokenSource {
  private cached = new Map<string, Buffer>();
  private stamp = "";
  private checkedAt = -Infinity;

  constructor(
    private readonly dir: string,
    private readonly recheckMs = 5_000,
    private readonly now: () => number = Date.now,
  ) {}

  tokens(): ReadonlyMap<string, Buffer> {
    if (this.now() - this.checkedAt < this.recheckMs) return this.cached;
    this.checkedAt = this.now();
    // Kubernetes swaps a `..data` symlink on update: the directory's listing and mtimes change together.
    const names = readdirSync(this.dir).filter((n) => !n.startsWith(".")).sort();
    const stamp = names.map((n) => `${n}:${statSync(join(this.dir, n)).mtimeMs}`).join("|");
    if (stamp === this.stamp) return this.cached;
    const next = new Map<string, Buffer>();
    for (const name of names) {
      const value = readFileSync(join(this.dir, name), "utf8").trim();
      if (value !== "") next.set(name, digest(value));
    }
    this.cached = next;
    this.stamp = stamp;
    return next;
  }
}

/** The token in `Authorization: Bearer <t>` or `Authorization: token <t>` (JupyterHub's form), else null. */
export function bearerToken(header: string | undefined): string | null {
  const match = /^(?:bearer|token)\s+(\S+)\s*$/i.exec(header ?? "");
  return match?.[1] ?? null;
}

/** Checks a request's Authorization header against the known tokens. */
export function authenticate(header: string | undefined, source: TokenSource): AuthResult {
  const token = bearerToken(header);
  if (token === null) {
    return { ok: false, status: 401, message: "authentication required: send 'Authorization: Bearer <token>'" };
  }
  const given = digest(token);
  let match: string | null = null;
  for (const [name, expected] of source.tokens()) {
    if (timingSafeEqual(given, expected) && match === null) match = name;
  }
  return match !== null ? { ok: true, tokenName: match } : { ok: false, status: 403, message: "the token is not valid for this service" };
}
