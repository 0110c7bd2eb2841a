import { describe, expect, it } from "vitest";
import { InvalidInputError } from "../../src/errors.js";
import {
  formatImageReference,
  Image,
  parseImageReference,
  resolveImageReference,
  type ImageReference,
} from "../../src/image.js";

const SHA = `sha256:${"a".repeat(64)}`;

const ref = (registry: string | null, repository: string, tag: string | null = null, digest: string | null = null): ImageReference => ({
  registry,
  repository,
  tag,
  digest,
});

describe("parseImageReference", () => {
  it.each<[string, ImageReference]>([
    // No registry: the first component has no '.', ':' and is not localhost.
    ["ubuntu", ref(null, "ubuntu")],
    ["ubuntu:22.04", ref(null, "ubuntu", "22.04")],
    ["library/ubuntu", ref(null, "library/ubuntu")],
    ["jupyter/base-notebook:latest", ref(null, "jupyter/base-notebook", "latest")],
    ["a/b/c/d", ref(null, "a/b/c/d")],
    ["my_org/my__repo", ref(null, "my_org/my__repo")],
    ["foo--bar/x.y", ref(null, "foo--bar/x.y")],
    ["r2d-5f3a:abc_DEF-1.2", ref(null, "r2d-5f3a", "abc_DEF-1.2")],
    [`ubuntu@${SHA}`, ref(null, "ubuntu", null, SHA)],
    [`ubuntu:22.04@${SHA}`, ref(null, "ubuntu", "22.04", SHA)],
    // A first component with a '.' is a registry.
    ["docker.io/library/ubuntu", ref("docker.io", "library/ubuntu")],
    ["ghcr.io/org/img:v1", ref("ghcr.io", "org/img", "v1")],
    ["quay.io/jupyter/minimal-notebook@" + SHA, ref("quay.io", "jupyter/minimal-notebook", null, SHA)],
    // ':' (a port) makes a registry, and the port is not mistaken for a tag.
    ["registry:5000/foo", ref("registry:5000", "foo")],
    ["kind-registry:5000/foo:bar", ref("kind-registry:5000", "foo", "bar")],
    ["10.96.0.10:5000/a/b:1", ref("10.96.0.10:5000", "a/b", "1")],
    ["127.0.0.1/x", ref("127.0.0.1", "x")],
    // localhost, with or without a port.
    ["localhost/foo", ref("localhost", "foo")],
    ["localhost:5001/foo", ref("localhost:5001", "foo")],
    ["localhost:5001/foo:tag", ref("localhost:5001", "foo", "tag")],
    [`localhost:5001/foo:tag@${SHA}`, ref("localhost:5001", "foo", "tag", SHA)],
    // IPv6 literal hosts.
    ["[::1]:5000/foo", ref("[::1]:5000", "foo")],
    ["[fe80::1]/foo:t", ref("[fe80::1]", "foo", "t")],
    // Upper case in the first component makes it a registry (Docker's rule); the repository stays lower case.
    ["Registry/foo", ref("Registry", "foo")],
    // Without a slash, "localhost:5000" is a repository "localhost" with tag "5000" (as in Docker).
    ["localhost:5000", ref(null, "localhost", "5000")],
    ["localhost", ref(null, "localhost")],
    // Digests with other algorithms and upper-case hex.
    [`img@sha512:${"F".repeat(128)}`, ref(null, "img", null, `sha512:${"F".repeat(128)}`)],
    [`img@multihash+base58:${"0".repeat(32)}`, ref(null, "img", null, `multihash+base58:${"0".repeat(32)}`)],
    // The longest tag allowed: 128 characters.
    [`img:${"t".repeat(128)}`, ref(null, "img", "t".repeat(128))],
  ])("parses %s", (input, expected) => {
    expect(parseImageReference(input)).toEqual(expected);
  });

  it.each<[string, RegExp]>([
    ["", /empty/],
    ["Ubuntu", /lowercase/],
    ["library/Ubuntu", /lowercase/],
    ["docker.io/Library/ubuntu", /lowercase/],
    ["foo/", /lowercase/],
    ["/foo", /lowercase/],
    ["foo//bar", /lowercase/],
    ["-foo", /lowercase/],
    ["foo-", /lowercase/],
    ["foo.", /lowercase/],
    ["foo___bar", /lowercase/],
    ["foo..bar", /lowercase/],
    ["foo bar", /lowercase/],
    ["localhost:5001/", /lowercase/],
    ["foo:", /tag/],
    ["foo:-bar", /tag/],
    ["foo:.bar", /tag/],
    ["foo:a/b", /registry "foo:a"/],
    [`img:${"t".repeat(129)}`, /tag/],
    ["foo:bar:baz", /lowercase/],
    ["foo@", /digest/],
    ["foo@sha256", /digest/],
    ["foo@sha256:abc", /digest/],
    [`foo@SHA256:${"a".repeat(64)}`, /digest/],
    [`foo@sha256:${"g".repeat(64)}`, /digest/],
    [`@${SHA}`, /lowercase/],
    ["my-registry_.io:5000/foo", /registry/],
    ["reg.io:port/foo", /registry/],
    ["-reg.io/foo", /registry/],
    ["https://docker.io/foo", /registry "https:"/],
  ])("rejects %j", (input, message) => {
    let error: unknown;
    try {
      parseImageReference(input);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(InvalidInputError);
    expect((error as Error).message).toMatch(message);
    expect((error as Error).message).toContain(JSON.stringify(input));
  });

  it("limits the name (registry/repository) to 255 characters, tag and digest excluded", () => {
    const repo255 = `a/${"b".repeat(253)}`;
    expect(parseImageReference(repo255).repository).toHaveLength(255);
    expect(parseImageReference(`${repo255}:${"t".repeat(128)}@${SHA}`).tag).toHaveLength(128);
    expect(() => parseImageReference(`${repo255}c`)).toThrow(/longer than 255/);
    // The registry and its slash count.
    const withRegistry = `reg.io/${"x".repeat(248)}`;
    expect(withRegistry).toHaveLength(255);
    expect(parseImageReference(withRegistry).registry).toBe("reg.io");
    expect(() => parseImageReference(`${withRegistry}x`)).toThrow(/longer than 255/);
  });
});

describe("formatImageReference", () => {
  it.each([
    "ubuntu",
    "ubuntu:22.04",
    "library/ubuntu:22.04",
    "ghcr.io/org/img:v1",
    "localhost:5001/foo",
    "localhost:5001/foo:tag",
    `localhost:5001/foo:tag@${SHA}`,
    `quay.io/a/b@${SHA}`,
    "[::1]:5000/foo:bar",
    "kind-registry:5000/a/b/c:d",
  ])("round-trips %s", (input) => {
    const parsed = parseImageReference(input);
    expect(formatImageReference(parsed)).toBe(input);
    expect(parseImageReference(formatImageReference(parsed))).toEqual(parsed);
  });

  it.each<[ImageReference, string]>([
    [ref(null, "x"), "x"],
    [ref("r.io", "x"), "r.io/x"],
    [ref("r.io", "x", "t"), "r.io/x:t"],
    [ref(null, "x", null, SHA), `x@${SHA}`],
    [ref("r.io:1", "a/x", "t", SHA), `r.io:1/a/x:t@${SHA}`],
  ])("formats %j", (input, expected) => {
    expect(formatImageReference(input)).toBe(expected);
  });
});

describe("resolveImageReference", () => {
  it.each<[string, ImageReference]>([
    ["ubuntu", ref("localhost:5001", "ubuntu", "latest")],
    ["ubuntu:22.04", ref("localhost:5001", "ubuntu", "22.04")],
    ["a/b", ref("localhost:5001", "a/b", "latest")],
    ["ghcr.io/org/img", ref("ghcr.io", "org/img", "latest")],
    ["other:5000/img:t", ref("other:5000", "img", "t")],
    // A digest pins the image: no "latest" is added.
    [`ubuntu@${SHA}`, ref("localhost:5001", "ubuntu", null, SHA)],
    [`ubuntu:1@${SHA}`, ref("localhost:5001", "ubuntu", "1", SHA)],
    [`ghcr.io/x@${SHA}`, ref("ghcr.io", "x", null, SHA)],
  ])("resolves %s", (input, expected) => {
    expect(resolveImageReference(input, "localhost:5001")).toEqual(expected);
  });

  it("formats what nodes pull", () => {
    expect(formatImageReference(resolveImageReference("r2d-abc", "kind-registry:5000"))).toBe("kind-registry:5000/r2d-abc:latest");
  });

  it("rejects what parseImageReference rejects", () => {
    expect(() => resolveImageReference("Bad", "localhost:5001")).toThrow(InvalidInputError);
    expect(() => resolveImageReference("", "localhost:5001")).toThrow(InvalidInputError);
  });
});

describe("Image", () => {
  it("defaults to no tags and no config", () => {
    const image = new Image({});
    expect(image.tags).toEqual([]);
    expect(image.config).toBeNull();
    expect(new Image({ tags: null, config: null }).tags).toEqual([]);
  });
  it("prints like the seed's Image", () => {
    const image = new Image({ tags: ["a:1"], config: { WorkingDir: "/home" } });
    expect(String(image)).toBe('Image(tags=["a:1"], config={"WorkingDir":"/home"})');
  });
});
