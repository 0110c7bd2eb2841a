/**
 * The registry client against the local cluster's real registries (distribution/registry):
 * KCE_REGISTRY (open, plain HTTP) and KCE_AUTH_REGISTRY (htpasswd Basic auth). Needs `source ~/.cache/kce/cluster.env`.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { promisify } from "node:util";
import { beforeAll, describe, expect, it } from "vitest";
import { parseImageReference } from "../../../src/image.js";
import { RegistryClient } from "../../../src/registry/client.js";
import { RegistryError } from "../../../src/registry/errors.js";
import { imageTag, inspectImage, listImages } from "../../../src/registry/inspect.js";
import { env } from "../support/cluster-env.js";

const run = promisify(execFile);

describe("registry client on the local cluster", () => {
  let open: string;
  let auth: string;
  let user: string;
  let password: string;
  let base: string;
  let baseRepository: string;
  const suffix = randomBytes(4).toString("hex");

  beforeAll(() => {
    open = env("KCE_REGISTRY");
    auth = env("KCE_AUTH_REGISTRY");
    user = env("KCE_AUTH_USER");
    password = env("KCE_AUTH_PASSWORD");
    base = env("KCE_BASE_IMAGE");
    baseRepository = parseImageReference(base).repository;
  });

  const openClient = (): RegistryClient => new RegistryClient({ hosts: { [open]: { insecure: true } } });

  it("inspects the base image: busybox config with WorkingDir and Cmd", async () => {
    const image = await inspectImage(openClient(), base, { defaultRegistry: open });
    expect(image).not.toBeNull();
    expect(image?.tags).toEqual([imageTag(base, open)]);
    expect(image?.tags[0]).not.toContain(open);
    expect(typeof image?.config?.WorkingDir).toBe("string");
    expect(image?.config?.Cmd).toEqual(["/bin/sh"]);
  });

  it("answers null for an unknown tag and an unknown repository", async () => {
    const client = openClient();
    expect(await inspectImage(client, `${baseRepository}:no-such-tag-${suffix}`, { defaultRegistry: open })).toBeNull();
    expect(await inspectImage(client, `no-such-repo-${suffix}`, { defaultRegistry: open })).toBeNull();
    expect(await client.listTags(`${open}/no-such-repo-${suffix}`)).toBeNull();
    expect(await client.manifestDigest(`${open}/${baseRepository}:no-such-tag-${suffix}`)).toBeNull();
  });

  it("lists the base image's repository and tags", async () => {
    const client = openClient();
    expect(await client.listRepositories(open)).toContain(baseRepository);
    const images = await listImages(client, open);
    expect(images.map((i) => i.tags[0])).toContain(imageTag(base, open));
    expect(images.every((i) => i.config === null)).toBe(true);
    expect(await client.manifestDigest(parseImageReference(base).registry ? base : `${open}/${base}`)).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  describe("the htpasswd registry", () => {
    let copy: string;
    beforeAll(async () => {
      copy = `${auth}/e2e/registry-busybox:${suffix}`;
      const source = parseImageReference(base).registry ? base : `${open}/${base}`;
      await run("skopeo", [
        "copy", "-q", "--src-tls-verify=false", "--dest-tls-verify=false", "--dest-creds", `${user}:${password}`,
        `docker://${source}`, `docker://${copy}`,
      ]);
    });

    it("refuses anonymous reads with a typed unauthorized error", async () => {
      const error = await new RegistryClient({ hosts: { [auth]: { insecure: true } } }).getConfig(copy).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(RegistryError);
      expect(error).toMatchObject({ code: "UNAUTHORIZED", host: auth, statusCode: 401 });
      expect((error as Error).message).toContain(`registry ${auth} requires credentials`);
    });

    it("refuses a wrong password with advice", async () => {
      const client = new RegistryClient({ hosts: { [auth]: { insecure: true, credentials: { username: user, password: `${password}-wrong` } } } });
      await expect(client.exists(copy)).rejects.toMatchObject({
        code: "UNAUTHORIZED", message: expect.stringContaining(`check the credentials for host ${auth}`),
      });
    });

    it("reads, lists and deletes with credentials", async () => {
      const client = new RegistryClient({ hosts: { [auth]: { insecure: true, credentials: { username: user, password } } } });
      const image = await inspectImage(client, copy, { defaultRegistry: open });
      expect(image?.config?.Cmd).toEqual(["/bin/sh"]);
      expect(image?.tags).toEqual([copy]); // another registry: the host stays
      expect(await client.listRepositories(auth)).toContain("e2e/registry-busybox");
      expect(await client.listTags(`${auth}/e2e/registry-busybox`)).toContain(suffix);
      expect(await client.deleteManifest(copy)).toBe(true);
      expect(await client.exists(copy)).toBe(false);
    });
  });
});
