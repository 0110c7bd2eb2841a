// BinderHub's repoproviders.py is the reference: the same spec must name the same repository, ref and slug
// here as there, or image names differ and a build made by one is not found by the other.
import { describe, expect, it } from "vitest";
import { InvalidInputError } from "../../../src/errors.js";
import { DEFAULT_PROVIDERS, isCommitId, parseRepoSpec, SpecError, type ProviderSettings } from "../../../src/service/providers.js";
import { thrown } from "../../support/thrown.js";

const COMMIT = "0123456789abcdef0123456789abcdef01234567";

/** The error a call throws (fails the test when it does not throw). */

describe("parseRepoSpec: gh", () => {
  it.each([
    {
      spec: "jupyterhub/binder-examples/main",
      repoUrl: "https://github.com/jupyterhub/binder-examples",
      ref: "main",
      slug: "jupyterhub-binder-examples",
      resolved: `jupyterhub/binder-examples/${COMMIT}`,
      refUrl: `https://github.com/jupyterhub/binder-examples/tree/${COMMIT}`,
    },
    {
      // the ref keeps its slashes: split into at most three parts
      spec: "user/repo/feature/deep/branch",
      repoUrl: "https://github.com/user/repo",
      ref: "feature/deep/branch",
      slug: "user-repo",
      resolved: `user/repo/${COMMIT}`,
      refUrl: `https://github.com/user/repo/tree/${COMMIT}`,
    },
    {
      // ".git" is stripped from the repository
      spec: "user/repo.git/HEAD",
      repoUrl: "https://github.com/user/repo",
      ref: "HEAD",
      slug: "user-repo",
      resolved: `user/repo/${COMMIT}`,
      refUrl: `https://github.com/user/repo/tree/${COMMIT}`,
    },
    {
      // only a trailing ".git": one inside the name stays
      spec: "user/repo.github.io/v1.0",
      repoUrl: "https://github.com/user/repo.github.io",
      ref: "v1.0",
      slug: "user-repo.github.io",
      resolved: `user/repo.github.io/${COMMIT}`,
      refUrl: `https://github.com/user/repo.github.io/tree/${COMMIT}`,
    },
    {
      // parts are not URL-decoded
      spec: "user/repo/feature%2Fx",
      repoUrl: "https://github.com/user/repo",
      ref: "feature%2Fx",
      slug: "user-repo",
      resolved: `user/repo/${COMMIT}`,
      refUrl: `https://github.com/user/repo/tree/${COMMIT}`,
    },
    {
      // a trailing "/" is ignored
      spec: "user/repo/main/",
      repoUrl: "https://github.com/user/repo",
      ref: "main",
      slug: "user-repo",
      resolved: `user/repo/${COMMIT}`,
      refUrl: `https://github.com/user/repo/tree/${COMMIT}`,
    },
  ])("$spec", ({ spec, repoUrl, ref, slug, resolved, refUrl }) => {
    const parsed = parseRepoSpec("gh", spec);
    expect(parsed.provider).toBe("gh");
    expect(parsed.spec).toBe(spec.replace(/\/+$/, ""));
    expect(parsed.repoUrl).toBe(repoUrl);
    expect(parsed.ref).toBe(ref);
    expect(parsed.slug).toBe(slug);
    expect(parsed.resolvedSpec(COMMIT)).toBe(resolved);
    expect(parsed.refUrl(COMMIT)).toBe(refUrl);
  });

  it.each([
    ["user/repo/main", "https://github.example.org", "https://github.example.org/user/repo"],
    ["user/repo/main", "https://github.example.org/", "https://github.example.org/user/repo"],
    ["user/repo/main", "https://example.org/github//", "https://example.org/github/user/repo"],
  ])("%s on base %s → %s", (spec, baseUrl, repoUrl) => {
    const settings: ProviderSettings = { ...DEFAULT_PROVIDERS, gh: { baseUrl } };
    const parsed = parseRepoSpec("gh", spec, settings);
    expect(parsed.repoUrl).toBe(repoUrl);
    expect(parsed.refUrl(COMMIT)).toBe(`${repoUrl}/tree/${COMMIT}`);
  });

  it.each([
    ["user/repo", 'Spec is not of the form "user/repo/ref", provided: "user/repo". Did you mean "user/repo/HEAD"?'],
    ["user/repo/", 'Spec is not of the form "user/repo/ref", provided: "user/repo". Did you mean "user/repo/HEAD"?'],
    ["user/main", 'Spec is not of the form "user/repo/ref", provided: "user/main".'],
    ["user/master", 'Spec is not of the form "user/repo/ref", provided: "user/master".'],
    ["user/HEAD", 'Spec is not of the form "user/repo/ref", provided: "user/HEAD".'],
    ["user", 'Spec is not of the form "user/repo/ref", provided: "user".'],
    ["", 'Spec is not of the form "user/repo/ref", provided: "".'],
    ["user//main", 'Spec is not of the form "user/repo/ref", provided: "user//main".'],
    ["/repo/main", 'Spec is not of the form "user/repo/ref", provided: "/repo/main".'],
  ])("%j is refused: %s", (spec, message) => {
    const err = thrown(() => parseRepoSpec("gh", spec));
    expect(err).toBeInstanceOf(SpecError);
    expect(err).toBeInstanceOf(InvalidInputError);
    expect(err.message).toBe(message);
  });
});

describe("parseRepoSpec: gl", () => {
  it.each([
    {
      spec: "gitlab-org%2Fgitlab-foss/master",
      repoUrl: "https://gitlab.com/gitlab-org/gitlab-foss.git",
      ref: "master",
      slug: "gitlab_-org-gitlab_-foss",
      resolved: `gitlab-org%2Fgitlab-foss/${COMMIT}`,
      refUrl: `https://gitlab.com/gitlab-org/gitlab-foss/tree/${COMMIT}`,
    },
    {
      // nested groups; the ref is decoded too and may then contain "/"
      spec: "group%2Fsub-group%2Fmy-project/feature%2Fx",
      repoUrl: "https://gitlab.com/group/sub-group/my-project.git",
      ref: "feature/x",
      slug: "group-sub_-group-my_-project",
      resolved: `group%2Fsub-group%2Fmy-project/${COMMIT}`,
      refUrl: `https://gitlab.com/group/sub-group/my-project/tree/${COMMIT}`,
    },
    {
      // split once: an unescaped "/" after the first belongs to the ref
      spec: "group%2Fproject/release/2024",
      repoUrl: "https://gitlab.com/group/project.git",
      ref: "release/2024",
      slug: "group-project",
      resolved: `group%2Fproject/${COMMIT}`,
      refUrl: `https://gitlab.com/group/project/tree/${COMMIT}`,
    },
    {
      spec: "group%2Fa--b/HEAD/",
      repoUrl: "https://gitlab.com/group/a--b.git",
      ref: "HEAD",
      slug: "group-a_-_-b",
      resolved: `group%2Fa--b/${COMMIT}`,
      refUrl: `https://gitlab.com/group/a--b/tree/${COMMIT}`,
    },
  ])("$spec", ({ spec, repoUrl, ref, slug, resolved, refUrl }) => {
    const parsed = parseRepoSpec("gl", spec);
    expect(parsed.provider).toBe("gl");
    expect(parsed.repoUrl).toBe(repoUrl);
    expect(parsed.ref).toBe(ref);
    expect(parsed.slug).toBe(slug);
    expect(parsed.resolvedSpec(COMMIT)).toBe(resolved);
    expect(parsed.refUrl(COMMIT)).toBe(refUrl);
  });

  it("uses the configured GitLab", () => {
    const parsed = parseRepoSpec("gl", "a%2Fb/main", { ...DEFAULT_PROVIDERS, gl: { baseUrl: "https://git.example.org/" } });
    expect(parsed.repoUrl).toBe("https://git.example.org/a/b.git");
    expect(parsed.refUrl(COMMIT)).toBe(`https://git.example.org/a/b/tree/${COMMIT}`);
  });

  it.each([
    ["group%2Fproject", "An unresolved ref is required"],
    ["group%2Fproject/", "An unresolved ref is required"],
    ["/main", 'Spec is not of the form "<escaped namespace>/<ref>", provided: "/main".'],
    ["group%ZZ/main", 'GitLab project "group%ZZ" is not validly URL-escaped'],
    ["group/ref%E0", 'ref "ref%E0" is not validly URL-escaped'],
  ])("%j is refused: %s", (spec, message) => {
    const err = thrown(() => parseRepoSpec("gl", spec));
    expect(err).toBeInstanceOf(SpecError);
    expect(err.message).toBe(message);
  });
});

describe("parseRepoSpec: git", () => {
  it.each([
    {
      spec: "https%3A%2F%2Fgithub.com%2Fjupyterhub%2Fbinder-examples/main",
      repoUrl: "https://github.com/jupyterhub/binder-examples",
      ref: "main",
      resolved: `https%3A%2F%2Fgithub.com%2Fjupyterhub%2Fbinder-examples/${COMMIT}`,
    },
    {
      spec: "http%3A%2F%2F192.0.2.2%3A8000%2Fgit%2Frepo-a.git/feature%2Fx",
      repoUrl: "http://192.0.2.2:8000/git/repo-a.git",
      ref: "feature/x",
      resolved: `http%3A%2F%2F192.0.2.2%3A8000%2Fgit%2Frepo-a.git/${COMMIT}`,
    },
    {
      // split once: the rest is the ref
      spec: "https%3A%2F%2Fexample.org%2Frepo/release/1.x",
      repoUrl: "https://example.org/repo",
      ref: "release/1.x",
      resolved: `https%3A%2F%2Fexample.org%2Frepo/${COMMIT}`,
    },
  ])("$spec", ({ spec, repoUrl, ref, resolved }) => {
    const parsed = parseRepoSpec("git", spec);
    expect(parsed.provider).toBe("git");
    expect(parsed.repoUrl).toBe(repoUrl);
    expect(parsed.ref).toBe(ref);
    expect(parsed.slug).toBe(repoUrl);
    expect(parsed.resolvedSpec(COMMIT)).toBe(resolved);
    expect(parsed.refUrl(COMMIT)).toBe(repoUrl);
  });

  it.each([
    ["https%3A%2F%2Fexample.org%2Frepo", "`unresolved_ref` must be specified in the url for the basic git provider"],
    ["https%3A%2F%2Fexample.org%2Frepo/", "`unresolved_ref` must be specified in the url for the basic git provider"],
    ["/main", 'Spec is not of the form "<escaped repository URL>/<ref>", provided: "/main".'],
    ["https%3A%2F%2Fexample.org%2Frepo%/main", 'repository URL "https%3A%2F%2Fexample.org%2Frepo%" is not validly URL-escaped'],
  ])("%j is refused: %s", (spec, message) => {
    const err = thrown(() => parseRepoSpec("git", spec));
    expect(err).toBeInstanceOf(SpecError);
    expect(err.message).toBe(message);
  });
});

describe("parseRepoSpec: providers", () => {
  it.each([
    ["zenodo", DEFAULT_PROVIDERS],
    ["", DEFAULT_PROVIDERS],
    ["GH", DEFAULT_PROVIDERS],
    ["gl", { ...DEFAULT_PROVIDERS, enabled: ["gh", "git"] }],
    ["git", { ...DEFAULT_PROVIDERS, enabled: [] }],
  ] satisfies Array<[string, ProviderSettings]>)("%j (enabled: %j) is not answered", (provider, settings) => {
    const err = thrown(() => parseRepoSpec(provider, "a/b/c", settings));
    expect(err).toBeInstanceOf(SpecError);
    expect(err.message).toBe(`No provider found for prefix ${provider}`);
  });

  it("answers an enabled provider when others are disabled", () => {
    expect(parseRepoSpec("gl", "a%2Fb/main", { ...DEFAULT_PROVIDERS, enabled: ["gl"] }).repoUrl).toBe("https://gitlab.com/a/b.git");
  });

  it("enables all three by default", () => {
    expect(DEFAULT_PROVIDERS).toEqual({
      gh: { baseUrl: "https://github.com" },
      gl: { baseUrl: "https://gitlab.com" },
      enabled: ["gh", "gl", "git"],
    });
  });
});

describe("isCommitId", () => {
  it.each<[string, boolean]>([
    [COMMIT, true],
    ["a".repeat(40), true],
    ["0".repeat(40), true],
    [COMMIT.toUpperCase(), false],
    [COMMIT.slice(0, 39), false],
    [`${COMMIT}0`, false],
    [COMMIT.slice(0, 7), false],
    [`${COMMIT.slice(0, 39)}g`, false],
    ["main", false],
    ["HEAD", false],
    ["", false],
    [` ${COMMIT}`, false],
  ])("%j → %s", (ref, expected) => {
    expect(isCommitId(ref)).toBe(expected);
  });
});
