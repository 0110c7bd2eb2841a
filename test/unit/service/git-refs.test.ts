import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { gitLsRemote, pickCommit, RefResolutionError, safeGitConfig } from "../../../src/service/git-refs.js";
import type { CheckedUrl } from "../../../src/service/url-policy.js";

// Recorded from `git ls-remote` (git 2.39) of a repository with three commits, an annotated tag v2, a
// lightweight tag v3, a branch also called v2, a branch with a "/" in its name and a pull request ref.
const ONE = "eb9769179cd0afc000e42636358e12cfbf6834e9";
const TWO = "0bbae7d033281276ff68a07a9c062e997ed6cc4e";
const THREE = "bad964f60e1704fb4b46c4b8f92940e9fc52ce94";
const TAG_OBJECT = "9bc8e5a9d5f8680556fa33e4dd409a6774fce78d";
const LS_REMOTE = [
  `${THREE}\tHEAD`,
  `${ONE}\trefs/heads/feature/x`,
  `${THREE}\trefs/heads/main`,
  `${ONE}\trefs/heads/release/1.x`,
  `${TWO}\trefs/heads/v2`,
  `${TWO}\trefs/pull/12/head`,
  `${TAG_OBJECT}\trefs/tags/v2`,
  `${ONE}\trefs/tags/v2^{}`,
  `${ONE}\trefs/tags/v3`,
  "",
].join("\n");

describe("pickCommit", () => {
  it.each<[string, string | null]>([
    ["HEAD", THREE],
    ["main", THREE],
    ["refs/heads/main", THREE],
    ["heads/main", THREE],
    ["v2", TWO], // the branch before the tag of the same name
    ["refs/tags/v2", ONE], // an annotated tag names its commit, not the tag object
    ["tags/v2", ONE],
    ["v2^{}", ONE],
    ["v3", ONE], // a lightweight tag
    ["refs/tags/v3", ONE],
    ["feature/x", ONE],
    ["x", ONE], // any ref ending in /x
    ["release/1.x", ONE],
    ["1.x", ONE],
    ["refs/pull/12/head", TWO],
    ["pull/12/head", TWO],
    ["ain", null], // a suffix only at a "/"
    ["nope", null],
    ["", null],
  ])("%j → %s", (ref, commit) => {
    expect(pickCommit(LS_REMOTE, ref)).toBe(commit);
  });

  it("prefers the tag's commit over the tag object whatever the order of the lines", () => {
    const reversed = LS_REMOTE.split("\n").reverse().join("\n");
    expect(pickCommit(reversed, "v2")).toBe(TWO);
    expect(pickCommit(reversed, "refs/tags/v2")).toBe(ONE);
    const tagsOnly = `${ONE}\trefs/tags/v2^{}\n${TAG_OBJECT}\trefs/tags/v2\n`;
    expect(pickCommit(tagsOnly, "v2")).toBe(ONE);
  });

  it.each<[string, string, string | null]>([
    ["empty output", "", null],
    ["CRLF and spaces", `${THREE} \trefs/heads/main\r\n`, THREE],
    ["indented", `   ${THREE}\trefs/heads/main`, THREE],
    ["space-separated", `${THREE} refs/heads/main`, THREE],
    ["a warning line", `warning: redirecting to https://example.org/\n${THREE}\trefs/heads/main`, THREE],
    ["a short sha", `${THREE.slice(0, 12)}\trefs/heads/main`, null],
    ["an upper-case sha", `${THREE.toUpperCase()}\trefs/heads/main`, null],
    ["a line without a name", THREE, null],
    ["the same name twice: the first counts", `${ONE}\trefs/heads/main\n${TWO}\trefs/heads/main`, ONE],
  ])("%s", (_, output, commit) => {
    expect(pickCommit(output, "main")).toBe(commit);
  });
});

describe("safeGitConfig", () => {
  it.each<[string[], string[]]>([
    [[], ["http.followRedirects=false", "protocol.allow=never", "protocol.http.allow=always", "protocol.https.allow=always"]],
    [
      ["repo.test:443:203.0.113.10", "repo.test:443:[2001:db8::10]"],
      [
        "http.followRedirects=false",
        "protocol.allow=never",
        "protocol.http.allow=always",
        "protocol.https.allow=always",
        "http.curloptResolve=repo.test:443:203.0.113.10",
        "http.curloptResolve=repo.test:443:[2001:db8::10]",
      ],
    ],
  ])("pins %j", (resolve, pairs) => {
    expect(safeGitConfig(resolve)).toEqual(pairs.flatMap((p) => ["-c", p]));
  });
});

describe("gitLsRemote (a fake git)", () => {
  let dir: string;
  const repo: CheckedUrl = {
    url: "https://repo.test/r.git",
    host: "repo.test",
    port: 443,
    addresses: ["203.0.113.10"],
    resolve: ["repo.test:443:203.0.113.10"],
  };
  /** An executable that stands in for git. */
  const fakeGit = (name: string, script: string): string => {
    const path = join(dir, name);
    writeFileSync(path, `#!/bin/sh\n${script}\n`);
    chmodSync(path, 0o755);
    return path;
  };

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "kce-git-refs-"));
    writeFileSync(join(dir, "output"), LS_REMOTE);
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it("takes a full commit id as it is, without running git", async () => {
    const resolve = gitLsRemote({ git: join(dir, "no-such-git") });
    await expect(resolve(repo, TWO)).resolves.toBe(TWO);
    // anything else runs git (here: fails to)
    await expect(resolve(repo, TWO.toUpperCase())).rejects.toBeInstanceOf(RefResolutionError);
    await expect(resolve(repo, TWO.slice(0, 7))).rejects.toBeInstanceOf(RefResolutionError);
  });

  it("runs ls-remote with the safe settings and the ref and its peeled form, and picks the commit", async () => {
    const git = fakeGit(
      "git-ok",
      [
        `printf '%s\\n' "$@" > "${dir}/args"`,
        `printf '%s\\n' "$GIT_TERMINAL_PROMPT" "$GIT_ASKPASS" "$LC_ALL" > "${dir}/env"`,
        `cat "${dir}/output"`,
      ].join("\n"),
    );
    const resolve = gitLsRemote({ git });
    await expect(resolve(repo, "refs/tags/v2")).resolves.toBe(ONE);
    expect(readFileSync(join(dir, "args"), "utf8").split("\n").slice(0, -1)).toEqual([
      ...safeGitConfig(repo.resolve),
      "ls-remote",
      "--",
      "https://repo.test/r.git",
      "refs/tags/v2",
      "refs/tags/v2^{}",
    ]);
    expect(readFileSync(join(dir, "env"), "utf8")).toBe("0\n/bin/false\nC\n");
    await expect(resolve(repo, "main")).resolves.toBe(THREE);
    await expect(resolve(repo, "no-such-branch")).resolves.toBeNull();
  });

  it("rejects with the last lines of git's error output", async () => {
    const git = fakeGit(
      "git-fail",
      ["echo 'warning: one' >&2", "echo 'warning: two' >&2", "echo 'remote: Repository not found.' >&2", "echo \"fatal: repository 'https://repo.test/r.git/' not found\" >&2", "exit 128"].join(
        "\n",
      ),
    );
    const err = await gitLsRemote({ git })(repo, "main").then(
      () => null,
      (e: unknown) => e as RefResolutionError,
    );
    expect(err).toBeInstanceOf(RefResolutionError);
    expect(err?.message).toBe(
      "cannot list the refs of https://repo.test/r.git: warning: two remote: Repository not found. fatal: repository 'https://repo.test/r.git/' not found",
    );
    expect(err?.cause).toBeInstanceOf(Error);
  });

  it("rejects with the process error when git says nothing", async () => {
    const err = await gitLsRemote({ git: fakeGit("git-silent", "exit 2") })(repo, "main").then(
      () => null,
      (e: unknown) => e as Error,
    );
    expect(err).toBeInstanceOf(RefResolutionError);
    expect(err?.message).toMatch(/^cannot list the refs of https:\/\/repo\.test\/r\.git: Command failed: /);
  });

  it("rejects when git cannot be run", async () => {
    const err = await gitLsRemote({ git: join(dir, "no-such-git") })(repo, "main").then(
      () => null,
      (e: unknown) => e as Error,
    );
    expect(err).toBeInstanceOf(RefResolutionError);
    expect(err?.message).toContain("ENOENT");
  });

  it("rejects when the signal has aborted", async () => {
    const ac = new AbortController();
    ac.abort();
    const git = fakeGit("git-cat", `cat "${dir}/output"`);
    await expect(gitLsRemote({ git })(repo, "main", ac.signal)).rejects.toBeInstanceOf(RefResolutionError);
  });
});
