import { describe, expect, it } from "vitest";
import {
  buildContentHash, contentJobName, contentTag, isContentTag, randomJobName, repositorySlug, type BuildIdentity,
} from "../../../src/imaging/content-hash.js";

const identity: BuildIdentity = {
  contextSha256: `sha256:${"a".repeat(64)}`,
  dockerfile: "Dockerfile",
  buildArgs: { A: "1", B: "2" },
  labels: { "org.example": "x" },
  platform: null,
  builder: "kaniko",
};

describe("buildContentHash", () => {
  it("is a stable hex sha256 that ignores the order of args and labels", () => {
    const hash = buildContentHash(identity);
    expect(hash).toMatch(/^[0-9a-f]{64}$/);
    expect(buildContentHash({ ...identity, buildArgs: { B: "2", A: "1" } })).toBe(hash);
    expect(buildContentHash(structuredClone(identity))).toBe(hash);
  });

  it.each<[string, Partial<BuildIdentity>]>([
    ["context", { contextSha256: `sha256:${"b".repeat(64)}` }],
    ["dockerfile path", { dockerfile: "binder/Dockerfile" }],
    ["build arg value", { buildArgs: { A: "1", B: "3" } }],
    ["build arg added", { buildArgs: { A: "1", B: "2", C: "" } }],
    ["label", { labels: { "org.example": "y" } }],
    ["platform", { platform: "linux/amd64" }],
    ["builder", { builder: "buildkit" }],
  ])("changes with the %s", (_what, change) => {
    expect(buildContentHash({ ...identity, ...change })).not.toBe(buildContentHash(identity));
  });

  it("does not confuse an arg with a label of the same name", () => {
    const a = buildContentHash({ ...identity, buildArgs: { K: "v" }, labels: {} });
    const b = buildContentHash({ ...identity, buildArgs: {}, labels: { K: "v" } });
    expect(a).not.toBe(b);
  });
});

describe("content tags and job names", () => {
  const hash = "0123456789abcdef".repeat(4);

  it("tags with kce- and 16 hex digits", () => {
    expect(contentTag(hash)).toBe("kce-0123456789abcdef");
    expect(isContentTag(contentTag(hash))).toBe(true);
    expect(isContentTag("latest")).toBe(false);
    expect(() => contentTag("not-hex")).toThrow(TypeError);
  });

  it("names the Job deterministically per hash and repository, as a DNS label of at most 52 characters", () => {
    const name = contentJobName(hash, "10.0.0.5:5000/some/Very_Long-repository.name-that-goes-on-and-on");
    expect(name).toBe(contentJobName(hash, "10.0.0.5:5000/some/Very_Long-repository.name-that-goes-on-and-on"));
    expect(name).not.toBe(contentJobName(hash, "10.0.0.5:5000/other"));
    expect(name).not.toBe(contentJobName("f".repeat(64), "10.0.0.5:5000/some/Very_Long-repository.name-that-goes-on-and-on"));
    expect(name.length).toBeLessThanOrEqual(52);
    expect(name).toMatch(/^[a-z0-9](?:[a-z0-9-]*[a-z0-9])$/);
  });

  it("slugs repository tails and falls back to 'image'", () => {
    expect(repositorySlug("a/b/My_Repo")).toBe("my-repo");
    expect(repositorySlug("___")).toBe("image");
    expect(randomJobName("push", "x/y", () => "0011aabb")).toBe("kce-push-y-0011aabb");
  });
});
