import { describe, expect, it } from "vitest";
import {
  MEDIA_TYPES, listPlatforms, parseManifest, parsePlatform, selectPlatformManifest, type Descriptor,
} from "../../../src/registry/manifest.js";

const d = (digest: string, platform?: Descriptor["platform"], annotations?: Record<string, string>): Descriptor => ({
  mediaType: MEDIA_TYPES.ociManifest, digest, size: 1,
  ...(platform ? { platform } : {}), ...(annotations ? { annotations } : {}),
});

describe("parseManifest", () => {
  const manifestBody = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.dockerManifest,
    config: { mediaType: MEDIA_TYPES.dockerConfig, digest: "sha256:c", size: 10 },
    layers: [{ mediaType: "application/vnd.docker.image.rootfs.diff.tar.gzip", digest: "sha256:l", size: 20 }],
  };
  it("reads a Docker v2 manifest", () => {
    const parsed = parseManifest(manifestBody, `${MEDIA_TYPES.dockerManifest}; charset=utf-8`);
    expect(parsed).toEqual({
      kind: "manifest", mediaType: MEDIA_TYPES.dockerManifest,
      config: { mediaType: MEDIA_TYPES.dockerConfig, digest: "sha256:c", size: 10 },
      layers: [{ mediaType: "application/vnd.docker.image.rootfs.diff.tar.gzip", digest: "sha256:l", size: 20 }],
    });
  });
  it("falls back to the body's mediaType, then to the shape", () => {
    expect(parseManifest(manifestBody, "application/json").mediaType).toBe(MEDIA_TYPES.dockerManifest);
    const { mediaType: _drop, ...noType } = manifestBody;
    expect(parseManifest(noType, null)).toMatchObject({ kind: "manifest", mediaType: MEDIA_TYPES.ociManifest });
    expect(parseManifest({ schemaVersion: 2, manifests: [] }, null)).toMatchObject({ kind: "index", manifests: [] });
  });
  it("reads OCI indexes and Docker manifest lists with platforms", () => {
    const body = {
      schemaVersion: 2,
      manifests: [
        { mediaType: MEDIA_TYPES.dockerManifest, digest: "sha256:a", size: 1, platform: { os: "linux", architecture: "amd64" } },
        { mediaType: MEDIA_TYPES.dockerManifest, digest: "sha256:b", size: 1, platform: { os: "linux", architecture: "arm", variant: "v7" } },
      ],
    };
    const parsed = parseManifest(body, MEDIA_TYPES.dockerManifestList);
    expect(parsed.kind).toBe("index");
    if (parsed.kind !== "index") return;
    expect(parsed.manifests.map((m) => m.platform)).toEqual([
      { os: "linux", architecture: "amd64" },
      { os: "linux", architecture: "arm", variant: "v7" },
    ]);
    expect(parseManifest(body, MEDIA_TYPES.ociIndex).mediaType).toBe(MEDIA_TYPES.ociIndex);
  });
  it.each([
    [{ schemaVersion: 1, name: "x", fsLayers: [] }, "application/vnd.docker.distribution.manifest.v1+prettyjws"],
    [[1, 2], "application/json"],
    [{ schemaVersion: 2 }, "text/plain"],
    [{ schemaVersion: 2, mediaType: MEDIA_TYPES.ociManifest }, null],
  ])("reports unsupported bodies: %j", (body, contentType) => {
    expect(parseManifest(body, contentType).kind).toBe("unsupported");
  });
});

describe("parsePlatform", () => {
  it.each([
    ["linux/amd64", { os: "linux", architecture: "amd64" }],
    ["linux/arm/v7", { os: "linux", architecture: "arm", variant: "v7" }],
    ["linux", null],
    ["linux/", null],
    ["linux/arm/", null],
    ["a/b/c/d", null],
  ])("%s", (text, expected) => expect(parsePlatform(text)).toEqual(expected));
});

describe("selectPlatformManifest", () => {
  const index = [
    d("sha256:arm7", { os: "linux", architecture: "arm", variant: "v7" }),
    d("sha256:arm64", { os: "linux", architecture: "arm64", variant: "v8" }),
    d("sha256:amd64", { os: "linux", architecture: "amd64" }),
    d("sha256:att", { os: "unknown", architecture: "unknown" }, { "vnd.docker.reference.type": "attestation-manifest" }),
    d("sha256:win", { os: "windows", architecture: "amd64" }),
  ];
  it.each([
    [{ os: "linux", architecture: "amd64" }, "sha256:amd64"],
    [{ os: "linux", architecture: "arm", variant: "v7" }, "sha256:arm7"],
    [{ os: "linux", architecture: "arm64" }, "sha256:arm64"],
    [{ os: "linux", architecture: "arm64", variant: "v8" }, "sha256:arm64"],
    [{ os: "windows", architecture: "amd64" }, "sha256:win"],
    [{ os: "linux", architecture: "arm", variant: "v6" }, null],
    [{ os: "linux", architecture: "s390x" }, null],
  ])("%j → %s", (wanted, digest) => {
    expect(selectPlatformManifest(index, wanted)?.digest ?? null).toBe(digest);
  });
  it("prefers the variant-less descriptor when none is wanted", () => {
    const both = [d("sha256:v2", { os: "linux", architecture: "amd64", variant: "v2" }), d("sha256:plain", { os: "linux", architecture: "amd64" })];
    expect(selectPlatformManifest(both, { os: "linux", architecture: "amd64" })?.digest).toBe("sha256:plain");
  });
  it("matches arm64 without variant against a wanted v8", () => {
    const noVariant = [d("sha256:a", { os: "linux", architecture: "arm64" })];
    expect(selectPlatformManifest(noVariant, { os: "linux", architecture: "arm64", variant: "v8" })?.digest).toBe("sha256:a");
  });
  it("lists offered platforms without attestations", () => {
    expect(listPlatforms(index)).toEqual(["linux/arm/v7", "linux/arm64/v8", "linux/amd64", "windows/amd64"]);
  });
});
