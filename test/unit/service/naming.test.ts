// Names must match BinderHub's byte for byte: the expected values were computed with BinderHub's own
// functions (escapism 1.0.1, Python 3.11), so images either side built are found by the other.
import { describe, expect, it } from "vitest";
import { buildName, escapeSlug, imageName, safeBuildSlug } from "../../../src/service/naming.js";

const CASES = [
  {
    slug: "jupyterhub-binder-examples",
    commit: "0123456789abcdef0123456789abcdef01234567",
    build: "build-jupyterhub-2dbinder-2dexamples-1b6e84-012-de",
    image: "kce-binder-jupyterhub-2dbinder-2dexamples-1b6e84:0123456789abcdef0123456789abcdef01234567",
  },
  {
    slug: "http://192.0.2.2:8000/git/repo-a.git",
    commit: "a".repeat(40),
    build: "build-http-3a-2f-2f192-2e0-2e2-2e2-3a8000-2fgit-2-14c88a-aaa-e3",
    image: `kce-binder-http-3a-2f-2f192-2e0-2e2-2e2-3a8000-2fgit-2frepo-2da-2egit-14c88a:${"a".repeat(40)}`,
  },
  {
    slug: "user/Répo_x",
    commit: "deadbeef",
    build: "build-user-2fr-c3-a9po-5fx-7badeb-dea-2b",
    image: "kce-binder-user-2fr-c3-a9po-5fx-7badeb:deadbeef",
  },
];

describe("BinderHub naming", () => {
  it("escapes like escapism: -XX per UTF-8 byte, upper-case hex, no padding", () => {
    expect(escapeSlug("a/b_c.d-é")).toBe("a-2Fb-5Fc-2Ed-2D-C3-A9");
    expect(escapeSlug("a\nb\tc")).toBe("a-Ab-9c"); // '%X' % byte: no zero padding
  });

  it.each(CASES)("build and image name of $slug", ({ slug, commit, build, image }) => {
    expect(buildName(slug, commit)).toBe(build);
    expect(imageName("kce-binder-", slug, commit)).toBe(image);
  });

  it("keeps build names within a DNS label and distinct for different repositories", () => {
    const long = `https://example.org/${"x".repeat(300)}.git`;
    const a = buildName(long, "b".repeat(40));
    const b = buildName(`${long}2`, "b".repeat(40));
    expect(a.length).toBeLessThanOrEqual(63);
    expect(a).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
    expect(a).not.toBe(b);
    expect(safeBuildSlug(long, 40)).toHaveLength(40);
  });
});
