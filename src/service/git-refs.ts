/**
 * Resolves a branch, tag or `HEAD` to a commit with `git ls-remote`, as BinderHub's git provider does, for
 * every provider (no hosting API, so no API token and no rate limit). Git connects only to the addresses the
 * URL policy checked (`http.curloptResolve`), follows no redirects and speaks only http(s).
 */
import { execFile } from "node:child_process";
import { ContainerEngineError } from "../errors.js";
import { isCommitId } from "./providers.js";
import type { CheckedUrl } from "./url-policy.js";

/** The commit `ref` names, or null when the repository has no such ref. */
export type RefResolver = (repo: CheckedUrl, ref: string, signal?: AbortSignal) => Promise<string | null>;

/** The repository could not be asked (unreachable, not a git repository, timed out). */
export class RefResolutionError extends ContainerEngineError {}

/**
 * The commit of `ref` in `git ls-remote` output ("<sha>\t<refname>" lines): a branch before a tag, a tag's
 * commit (its `^{}` line) before the tag object, an exact refname, then any ref ending in `/<ref>`. Pure.
 */
export function pickCommit(lsRemoteOutput: string, ref: string): string | null {
  const refs = new Map<string, string>();
  for (const line of lsRemoteOutput.split("\n")) {
    const [sha, name] = line.trim().split(/\s+/);
    if (sha && name && isCommitId(sha) && !refs.has(name)) refs.set(name, sha);
  }
  // An annotated tag's own line names the tag object; its `^{}` line names the commit.
  const peeled = (name: string, sha: string): string => refs.get(`${name}^{}`) ?? sha;
  const preferred = [`refs/heads/${ref}`, `refs/tags/${ref}`, ref];
  for (const name of preferred) {
    const sha = refs.get(name);
    if (sha) return peeled(name, sha);
  }
  for (const [name, sha] of refs) if (name.endsWith(`/${ref}`)) return peeled(name, sha);
  return null;
}

/** Git settings that keep a fetch on the checked addresses and off other protocols. */
export function safeGitConfig(resolve: string[]): string[] {
  const pairs = [
    "http.followRedirects=false",
    "protocol.allow=never",
    "protocol.http.allow=always",
    "protocol.https.allow=always",
    ...resolve.map((r) => `http.curloptResolve=${r}`),
  ];
  return pairs.flatMap((p) => ["-c", p]);
}

/** A {@link RefResolver} that runs `git ls-remote` (a commit id is taken as it is, as BinderHub does). */
export function gitLsRemote(options: { git?: string; timeoutMs?: number } = {}): RefResolver {
  const git = options.git ?? "git";
  const timeoutMs = options.timeoutMs ?? 30_000;
  return (repo, ref, signal) => {
    if (isCommitId(ref)) return Promise.resolve(ref);
    const args = [...safeGitConfig(repo.resolve), "ls-remote", "--", repo.url, ref, `${ref}^{}`];
    return new Promise((resolve, reject) => {
      execFile(
        git,
        args,
        {
          timeout: timeoutMs,
          maxBuffer: 8 * 1024 * 1024,
          env: { ...process.env, GIT_TERMINAL_PROMPT: "0", GIT_ASKPASS: "/bin/false", LC_ALL: "C" },
          ...(signal ? { signal } : {}),
        },
        (err, stdout, stderr) => {
          if (err) {
            const why = (stderr || err.message).trim().split("\n").slice(-3).join(" ");
            reject(new RefResolutionError(`cannot list the refs of ${repo.url}: ${why}`, { cause: err }));
            return;
          }
          resolve(pickCommit(stdout, ref));
        },
      );
    });
  };
}
