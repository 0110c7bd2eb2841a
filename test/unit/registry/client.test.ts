import { afterEach, describe, expect, it } from "vitest";
import { CancelledError, InvalidInputError } from "../../../src/errors.js";
import { RegistryClient } from "../../../src/registry/client.js";
import { RegistryError } from "../../../src/registry/errors.js";
import { inspectImage, listImages } from "../../../src/registry/inspect.js";
import { addImage, startFakeRegistry, type FakeAuth, type FakeRegistry } from "./fake-registry.js";

const BUSYBOX_CONFIG = { architecture: "amd64", os: "linux", config: { Cmd: ["/bin/sh"], Env: ["PATH=/bin"] } };

let registry: FakeRegistry | undefined;
afterEach(async () => {
  await registry?.close();
  registry = undefined;
});

async function start(auth?: FakeAuth): Promise<FakeRegistry> {
  registry = await startFakeRegistry(auth);
  return registry;
}

describe("RegistryClient against a loopback registry", () => {
  it("resolves index → manifest → config, falling back from https to http on loopback", async () => {
    const r = await start();
    const digests = addImage(r, "busybox", "latest", BUSYBOX_CONFIG, { index: true });
    const client = new RegistryClient();
    const manifest = await client.getManifest(`${r.host}/busybox`);
    expect(manifest).toMatchObject({ digest: digests.manifest, indexDigest: digests.index, config: { digest: digests.config } });
    expect(await client.getConfig(`${r.host}/busybox:latest`)).toEqual(BUSYBOX_CONFIG);
    expect(await client.manifestDigest(`${r.host}/busybox:latest`)).toBe(digests.index);
    await expect(client.getManifest(`${r.host}/busybox`, { platform: "linux/s390x" })).rejects.toMatchObject({
      code: "PLATFORM_UNKNOWN", message: expect.stringContaining("offered: linux/arm64, linux/amd64"),
    });
  });

  it("answers null for a missing tag or repository, and for listTags of a missing repository", async () => {
    const r = await start();
    addImage(r, "busybox", "latest", BUSYBOX_CONFIG);
    const client = new RegistryClient();
    expect(await client.getManifest(`${r.host}/busybox:nope`)).toBeNull();
    expect(await client.getConfig(`${r.host}/nothing/here:latest`)).toBeNull();
    expect(await client.manifestDigest(`${r.host}/busybox:nope`)).toBeNull();
    expect(await client.exists(`${r.host}/busybox:latest`)).toBe(true);
    expect(await client.exists(`${r.host}/nothing`)).toBe(false);
    expect(await client.listTags(`${r.host}/busybox`)).toEqual(["latest"]);
    expect(await client.listTags(`${r.host}/nothing`)).toBeNull();
  });

  it("follows catalog pagination", async () => {
    const r = await start();
    for (const name of ["a", "b", "c", "d", "e"]) addImage(r, name, "1", BUSYBOX_CONFIG);
    r.pageSize = 2;
    const client = new RegistryClient();
    expect(await client.listRepositories(r.host)).toEqual(["a", "b", "c", "d", "e"]);
    expect(r.log.filter((l) => l.startsWith("GET /v2/_catalog"))).toHaveLength(3);
  });

  it("answers Basic challenges and types a missing or wrong password", async () => {
    const r = await start({ kind: "basic", user: "u", password: "p" });
    addImage(r, "busybox", "latest", BUSYBOX_CONFIG);
    const anonymous = new RegistryClient();
    const err = await anonymous.getConfig(`${r.host}/busybox`).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RegistryError);
    expect(err).toMatchObject({ code: "UNAUTHORIZED", host: r.host, message: expect.stringContaining(`registry ${r.host} requires credentials`) });
    const wrong = new RegistryClient({ hosts: { [r.host]: { credentials: { username: "u", password: "x" } } } });
    await expect(wrong.getConfig(`${r.host}/busybox`)).rejects.toMatchObject({
      code: "UNAUTHORIZED", message: expect.stringContaining(`unauthorized: check the credentials for host ${r.host}`),
    });
    const client = new RegistryClient({ hosts: { [r.host]: { credentials: { username: "u", password: "p" } } } });
    expect(await client.getConfig(`${r.host}/busybox`)).toEqual(BUSYBOX_CONFIG);
    // Once Basic is known for the host, credentials go up front: no second 401.
    const before = r.log.length;
    expect(await client.exists(`${r.host}/busybox`)).toBe(true);
    expect(r.log.length - before).toBe(1);
  });

  it("runs the Bearer token flow with credentials and caches tokens per scope", async () => {
    const r = await start({ kind: "bearer", user: "u", password: "p" });
    addImage(r, "busybox", "latest", BUSYBOX_CONFIG, { index: true });
    addImage(r, "other", "latest", BUSYBOX_CONFIG);
    const client = new RegistryClient({ hosts: { [r.host]: { credentials: { username: "u", password: "p" } } } });
    expect(await client.getConfig(`${r.host}/busybox`)).toEqual(BUSYBOX_CONFIG);
    expect(await client.exists(`${r.host}/busybox`)).toBe(true);
    expect(r.tokenRequests).toHaveLength(1);
    expect(Object.fromEntries(r.tokenRequests[0] ?? [])).toMatchObject({ service: "fake", scope: "repository:busybox:pull", account: "u" });
    expect(await client.listRepositories(r.host)).toEqual(["busybox", "other"]);
    expect(await client.exists(`${r.host}/other`)).toBe(true);
    expect(r.tokenRequests.map((p) => p.get("scope"))).toEqual(["repository:busybox:pull", "registry:catalog:*", "repository:other:pull"]);
    const wrong = new RegistryClient({ hosts: { [r.host]: { credentials: { username: "u", password: "no" } } } });
    await expect(wrong.exists(`${r.host}/busybox`)).rejects.toMatchObject({ code: "UNAUTHORIZED" });
  });

  it("gets anonymous tokens", async () => {
    const r = await start({ kind: "bearer" });
    addImage(r, "busybox", "latest", BUSYBOX_CONFIG);
    const client = new RegistryClient();
    expect(await client.exists(`${r.host}/busybox`)).toBe(true);
    expect(r.tokenRequests[0]?.get("account")).toBeNull();
  });

  it("deletes by digest, and explains a registry with deletion disabled", async () => {
    const r = await start();
    const digests = addImage(r, "busybox", "latest", BUSYBOX_CONFIG);
    const client = new RegistryClient();
    r.deleteEnabled = false;
    await expect(client.deleteManifest(`${r.host}/busybox:latest`)).rejects.toMatchObject({ code: "UNSUPPORTED", statusCode: 405 });
    r.deleteEnabled = true;
    expect(await client.deleteManifest(`${r.host}/busybox:latest`)).toBe(true);
    expect(r.log).toContain(`DELETE /v2/busybox/manifests/${digests.manifest}`);
    expect(await client.exists(`${r.host}/busybox:latest`)).toBe(false);
    expect(await client.deleteManifest(`${r.host}/busybox:latest`)).toBe(false);
  });

  it("rejects corrupted content", async () => {
    const r = await start();
    const digests = addImage(r, "busybox", "latest", BUSYBOX_CONFIG);
    r.blobs.set(digests.config, Buffer.from('{"config":{}}'));
    await expect(new RegistryClient().getConfig(`${r.host}/busybox`)).rejects.toMatchObject({ code: "DIGEST_MISMATCH" });
  });

  it("times out, and cancels with CancelledError", async () => {
    const r = await start();
    r.hang.add("/v2/slow/manifests/latest");
    const client = new RegistryClient({ timeoutMs: 300 });
    await client.exists(`${r.host}/warm`); // learn the scheme first
    await expect(client.exists(`${r.host}/slow`)).rejects.toMatchObject({ code: "TIMEOUT" });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    await expect(new RegistryClient().getManifest(`${r.host}/slow`, { signal: controller.signal })).rejects.toBeInstanceOf(CancelledError);
  });

  it("reports an unreachable registry and a reference without host", async () => {
    const client = new RegistryClient({ timeoutMs: 2000 });
    await expect(client.exists("127.0.0.1:1/x")).rejects.toMatchObject({ code: "UNREACHABLE", statusCode: null });
    await expect(client.exists("busybox")).rejects.toBeInstanceOf(InvalidInputError);
  });

  it("routes a host to its endpoint", async () => {
    const r = await start();
    addImage(r, "busybox", "latest", BUSYBOX_CONFIG);
    const client = new RegistryClient({ hosts: { "registry.internal:5000": { endpoint: r.host } } });
    expect(await client.exists("registry.internal:5000/busybox")).toBe(true);
  });
});

describe("inspectImage / listImages", () => {
  it("maps the config blob and strips the default registry from tags", async () => {
    const r = await start();
    addImage(r, "busybox", "latest", BUSYBOX_CONFIG);
    const client = new RegistryClient();
    const image = await inspectImage(client, "busybox", { defaultRegistry: r.host });
    expect(image?.tags).toEqual(["busybox:latest"]);
    expect(image?.config).toEqual({ Cmd: ["/bin/sh"], Env: ["PATH=/bin"], WorkingDir: "" });
    expect(await inspectImage(client, "busybox:nope", { defaultRegistry: r.host })).toBeNull();
    expect(await inspectImage(client, `${r.host}/missing`, { defaultRegistry: "elsewhere:5000" })).toBeNull();
  });

  it("lists repository:tag images, config loaded on request", async () => {
    const r = await start();
    addImage(r, "a", "1", BUSYBOX_CONFIG);
    addImage(r, "a", "2", { config: { WorkingDir: "/w" } });
    addImage(r, "b/c", "latest", BUSYBOX_CONFIG);
    const client = new RegistryClient();
    const images = await listImages(client, r.host);
    expect(images.map((i) => [i.tags, i.config])).toEqual([[["a:1"], null], [["a:2"], null], [["b/c:latest"], null]]);
    const loaded = await listImages(client, r.host, { loadConfig: true, concurrency: 2 });
    expect(loaded.map((i) => i.config?.WorkingDir)).toEqual(["", "/w", ""]);
  });
});

describe("RegistryClient when the registry is busy (429, 502–504)", () => {
  /** A fetch that answers `statuses` in turn (then 200 with a tag list) and records each request. */
  function scripted(statuses: number[]): { fetch: (url: string, init: RequestInit) => Promise<Response>; requests: string[] } {
    const requests: string[] = [];
    return {
      requests,
      fetch: async (url, init) => {
        requests.push(`${init.method ?? "GET"} ${url}`);
        const status = statuses.shift();
        if (status !== undefined) return new Response(JSON.stringify({ errors: [{ code: "UNAVAILABLE", message: "busy" }] }), { status });
        return new Response(JSON.stringify({ name: "a", tags: ["1"] }), { status: 200, headers: { "content-type": "application/json" } });
      },
    };
  }

  it("repeats a read until the registry answers", async () => {
    const f = scripted([503, 429, 502]);
    const client = new RegistryClient({ fetch: f.fetch, busyRetryDelayMs: 1 });
    expect(await client.listTags("localhost:5000/a")).toEqual(["1"]);
    expect(f.requests).toHaveLength(4);
  });

  it("gives up with the registry's answer once busyRetryMs has passed", async () => {
    const f = scripted(Array.from({ length: 500 }, () => 503));
    const client = new RegistryClient({ fetch: f.fetch, busyRetryMs: 60, busyRetryDelayMs: 10 });
    const error = await client.listTags("localhost:5000/a").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RegistryError);
    expect(error).toMatchObject({ statusCode: 503 });
    expect(f.requests.length).toBeGreaterThan(1);
    expect(f.requests.length).toBeLessThan(500);
  });

  it("never repeats a write, and never retries with busyRetryMs 0", async () => {
    const requests: string[] = [];
    const manifest = JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json", config: {}, layers: [] });
    const writer = new RegistryClient({
      busyRetryDelayMs: 1,
      fetch: async (url, init) => {
        requests.push(`${init.method ?? "GET"} ${url}`);
        if (init.method === "PUT") return new Response("busy", { status: 503 });
        return new Response(manifest, { status: 200, headers: { "content-type": "application/vnd.oci.image.manifest.v1+json" } });
      },
    });
    await expect(writer.tagManifest("localhost:5000/a:1", "2")).rejects.toBeInstanceOf(RegistryError);
    expect(requests.filter((r) => r.startsWith("PUT"))).toHaveLength(1);
    const off = scripted([503]);
    await expect(new RegistryClient({ fetch: off.fetch, busyRetryMs: 0 }).listTags("localhost:5000/a")).rejects.toMatchObject({ statusCode: 503 });
    expect(off.requests).toHaveLength(1);
  });
});
