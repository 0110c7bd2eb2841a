import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { RegistryClient } from "../../../src/registry/client.js";
import { RegistryError } from "../../../src/registry/errors.js";

const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json", layers: [] }));
const digest = `sha256:${createHash("sha256").update(manifest).digest("hex")}`;

function stub(putStatus = 201) {
  const calls: { method: string; url: string; type: string | null; body: Buffer | null }[] = [];
  const fetch = async (url: string, init: RequestInit): Promise<Response> => {
    const headers = new Headers(init.headers);
    calls.push({ method: init.method ?? "GET", url, type: headers.get("content-type"), body: init.body ? Buffer.from(init.body as Uint8Array) : null });
    if (init.method === "GET" && url.endsWith("/manifests/kce-0123456789abcdef")) {
      return new Response(manifest, { status: 200, headers: { "content-type": "application/vnd.oci.image.manifest.v1+json" } });
    }
    if (init.method === "GET") return new Response('{"errors":[{"code":"MANIFEST_UNKNOWN"}]}', { status: 404 });
    if (init.method === "PUT") return new Response(null, { status: putStatus, headers: putStatus === 201 ? { "docker-content-digest": digest } : {} });
    return new Response(null, { status: 500 });
  };
  return { calls, client: new RegistryClient({ fetch, hosts: { "r:5000": { insecure: true } } }) };
}

describe("RegistryClient.tagManifest", () => {
  it("PUTs the source manifest's exact bytes and media type under the new tag", async () => {
    const { calls, client } = stub();
    expect(await client.tagManifest("r:5000/a/b:kce-0123456789abcdef", "latest")).toBe(digest);
    const put = calls.find((c) => c.method === "PUT");
    expect(put?.url).toMatch(/\/v2\/a\/b\/manifests\/latest$/);
    expect(put?.type).toBe("application/vnd.oci.image.manifest.v1+json");
    expect(put?.body?.equals(manifest)).toBe(true);
  });

  it("returns null for a missing source and throws for a refused PUT", async () => {
    expect(await stub().client.tagManifest("r:5000/a/b:missing", "latest")).toBeNull();
    await expect(stub(403).client.tagManifest("r:5000/a/b:kce-0123456789abcdef", "latest")).rejects.toBeInstanceOf(RegistryError);
  });
});
