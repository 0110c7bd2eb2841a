import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import type { BuildOptions } from "../../../src/contract.js";
import { InvalidInputError } from "../../../src/errors.js";
import {
  unknownBuildOptions,
  validateBuildArgs,
  validateBuildOptions,
  validateDockerfilePath,
  validateLabels,
  validatePlatform,
  validateTag,
} from "../../../src/imaging/build-options.js";

describe("validateBuildOptions", () => {
  it("normalizes a repository-Dockerfile build", () => {
    const v = validateBuildOptions({
      tag: "r2d-abc",
      path: "/repo",
      dockerfile: "./binder//Dockerfile",
      buildArgs: { NB_USER: "jovyan" },
      labels: { "repo2docker.ref": null, a: "b" },
      cacheFrom: ["10.0.0.5:5000/r2d-abc:old"],
      platform: "linux/amd64",
      containerLimits: { memory: 1024 },
    });
    expect(v).toEqual({
      tag: { registry: null, repository: "r2d-abc", tag: null, digest: null },
      dockerfile: "binder/Dockerfile",
      buildArgs: { NB_USER: "jovyan" },
      labels: { "repo2docker.ref": "", a: "b" },
      cacheFrom: [{ registry: "10.0.0.5:5000", repository: "r2d-abc", tag: "old", digest: null }],
      platform: "linux/amd64",
      memoryLimit: 1024,
    });
  });

  it("accepts a tar-stream build with defaults", () => {
    const v = validateBuildOptions({ tag: "host:5000/x:1", context: Readable.from([]) });
    expect(v).toMatchObject({ dockerfile: "Dockerfile", buildArgs: {}, labels: {}, platform: null, memoryLimit: null });
  });

  it.each<[string, Partial<BuildOptions> & Record<string, unknown>, RegExp]>([
    ["a bad tag", { tag: "Bad Tag" }, /invalid image reference/],
    ["a digest tag", { tag: `x@sha256:${"a".repeat(64)}` }, /digest/],
    ["no context", { path: undefined }, /exactly one/],
    ["both contexts", { context: Readable.from([]) }, /exactly one/],
    ["an absolute dockerfile", { dockerfile: "/etc/Dockerfile" }, /relative/],
    ["an escaping dockerfile", { dockerfile: "a/../../Dockerfile" }, /inside the build context/],
    ["a non-string build arg", { buildArgs: { N: 1 as unknown as string } }, /build argument N must be a string/],
    ["a build arg name with =", { buildArgs: { "K=V": "x" } }, /build argument name/],
    ["a numeric label", { labels: { l: 3 as unknown as string } }, /label l must be a string or null/],
    ["a bad platform", { platform: "amd64" }, /os\/arch/],
    ["a bad cacheFrom", { cacheFrom: ["NOPE NOPE"] }, /invalid image reference/],
    ["a bad memory limit", { containerLimits: { memory: -1 } }, /memory/],
  ])("rejects %s", (_what, patch, message) => {
    const options = { tag: "x", path: "/repo", ...patch } as BuildOptions;
    expect(() => validateBuildOptions(options)).toThrow(InvalidInputError);
    expect(() => validateBuildOptions(options)).toThrow(message);
  });
});

describe("single validators", () => {
  it("tags", () => {
    expect(validateTag("localhost:5001/a/b:v1")).toEqual({ registry: "localhost:5001", repository: "a/b", tag: "v1", digest: null });
    expect(() => validateTag(42)).toThrow(InvalidInputError);
  });
  it("dockerfile paths", () => {
    expect(validateDockerfilePath(undefined)).toBe("Dockerfile");
    expect(validateDockerfilePath("sub/Dockerfile.dev")).toBe("sub/Dockerfile.dev");
    for (const bad of ["", "..", ".", "C:\\x", "../x", "a\0b"]) expect(() => validateDockerfilePath(bad)).toThrow(InvalidInputError);
  });
  it("build args and labels", () => {
    expect(validateBuildArgs(undefined)).toEqual({});
    expect(() => validateBuildArgs(["A=1"])).toThrow(InvalidInputError);
    expect(() => validateBuildArgs({ "": "x" })).toThrow(InvalidInputError);
    expect(validateLabels({ a: null })).toEqual({ a: "" });
  });
  it("platforms", () => {
    expect(validatePlatform("linux/arm64/v8")).toBe("linux/arm64/v8");
    expect(validatePlatform(undefined)).toBeNull();
    for (const bad of ["linux", "linux/", "Linux/AMD64", "linux/amd64/v8/x"]) expect(() => validatePlatform(bad)).toThrow(InvalidInputError);
  });
  it("unknown options", () => {
    expect(unknownBuildOptions({ tag: "x", path: "/r", rm: true, forcerm: true })).toEqual(["rm", "forcerm"]);
  });
});
