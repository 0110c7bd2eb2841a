// push(ref)'s decisions against the fake cluster and a fake registry: the copy Job it creates (and deletes),
// what it reports, and the typed errors of a reference it cannot push.
import { gunzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Builder } from "../../../src/imaging/builder.js";
import { resolveEngineConfig, resolveRegistry, type KubernetesEngineOptions } from "../../../src/config.js";
import { CancelledError, ImageLoadError, InvalidInputError } from "../../../src/errors.js";
import { RegistryClient } from "../../../src/registry/client.js";
import { FakeCluster } from "../../support/fake-cluster.js";
import { addImage, startFakeRegistry, type FakeRegistry } from "../registry/fake-registry.js";
import { playBuilder } from "./fake-builder.js";

const DEST = "dest.example:5000";
const PUSHED = `sha256:${"e".repeat(64)}`;

let registry: FakeRegistry;
let repositories = 0;

beforeAll(async () => {
  registry = await startFakeRegistry();
});

afterAll(async () => {
  await registry.close();
});

/** A repository that holds `team/appN:1` in the engine's registry; returns its name and the source digest. */
function sourceImage(): { repo: string; digest: string } {
  repositories += 1;
  const repo = `team/app${repositories}`;
  return { repo, digest: addImage(registry, repo, "1", { architecture: "amd64", os: "linux", config: { Labels: { repo } } }).manifest };
}

function builderOn(fake: FakeCluster, options: KubernetesEngineOptions = {}): Builder {
  const config = resolveEngineConfig({ instanceId: "t1", builder: "kaniko", contextCompression: "none", ...options }, {});
  const resolved = resolveRegistry({ host: registry.host, insecure: true });
  const client = new RegistryClient({ hosts: { [registry.host]: { insecure: true } } });
  return new Builder({ registries: { registry: async () => resolved, registryClient: () => client }, config, api: fake, log: () => undefined });
}

async function push(builder: Builder, ref: string, signal?: AbortSignal): Promise<{ lines: string[]; error: unknown }> {
  const lines: string[] = [];
  try {
    for await (const line of builder.push(ref, signal ? { signal } : {})) lines.push(line);
    return { lines, error: null };
  } catch (error) {
    return { lines, error };
  }
}

const writes = (fake: FakeCluster): string[] => fake.calls.filter((c) => /^(create|patch|delete) /.test(c));

describe("push", () => {
  it("copies the image with a kce-push Job built FROM the source's digest, reports the pushed digest, deletes the Job", async () => {
    const fake = new FakeCluster();
    const { repo, digest } = sourceImage();
    playBuilder(fake, { lines: ["INFO pushing"], terminationMessage: PUSHED });

    const pushed = await push(builderOn(fake), `${DEST}/${repo}:1`);

    expect(pushed.error).toBeNull();
    expect(pushed.lines).toEqual([
      `Pushing ${registry.host}/${repo}:1 to ${DEST}/${repo}:1 through an in-cluster kaniko builder\n`,
      "INFO pushing\n",
      `Pushed ${DEST}/${repo}:1@${PUSHED}\n`,
    ]);
    const job = writes(fake)[0]?.slice("create jobs/".length) ?? "";
    expect(job).toMatch(/^kce-push-app\d+-[0-9a-f]{8}$/);
    expect(writes(fake)).toEqual([`create jobs/${job}`, `delete jobs/${job}`]);
    expect(fake.stdin.map((d) => d.pod)).toEqual([`${job}-pod`]);
    expect(gunzipSync(fake.stdin[0]?.bytes ?? Buffer.alloc(0)).toString("latin1")).toContain(`FROM ${registry.host}/${repo}@${digest}\n`);
    expect(fake.names("jobs")).toEqual([]);
  });

  it("with credentials: their Secret is created first and owned by the push Job", async () => {
    const fake = new FakeCluster();
    const { repo } = sourceImage();
    playBuilder(fake, { terminationMessage: PUSHED });

    const pushed = await push(builderOn(fake, { registryCredentials: { registry: DEST, username: "u", password: "p" } }), `${DEST}/${repo}:1`);

    expect(pushed.error).toBeNull();
    const job = writes(fake)[1]?.slice("create jobs/".length) ?? "";
    expect(writes(fake)).toEqual([`create secrets/${job}-registry`, `create jobs/${job}`, `patch secrets/${job}-registry`, `delete jobs/${job}`]);
    expect(fake.names("secrets")).toEqual([]); // gone with its Job
  });

  it("an image missing from the engine's registry is an ImageLoadError before any Job is created", async () => {
    const fake = new FakeCluster();

    const pushed = await push(builderOn(fake), `${DEST}/team/missing:1`);

    expect(pushed.error).toBeInstanceOf(ImageLoadError);
    expect(String(pushed.error)).toContain(`there is no image team/missing:1 in the engine's registry ${registry.host} to push: build it first`);
    expect(fake.calls).toEqual([]);
  });

  it("a reference with a digest is an InvalidInputError, before anything is asked of registry or cluster", async () => {
    const fake = new FakeCluster();
    const asked = registry.log.length;

    const pushed = await push(builderOn(fake), `${DEST}/team/app@${PUSHED}`);

    expect(pushed.error).toBeInstanceOf(InvalidInputError);
    expect(String(pushed.error)).toContain("push needs a tag, not a digest");
    expect(fake.calls).toEqual([]);
    expect(registry.log.length).toBe(asked);
  });

  it("an image already in the engine's registry: nothing to push, no Job", async () => {
    const fake = new FakeCluster();
    const { repo, digest } = sourceImage();

    const pushed = await push(builderOn(fake), `${registry.host}/${repo}:1`);

    expect(pushed.error).toBeNull();
    expect(pushed.lines).toEqual([`${registry.host}/${repo}:1 is in the engine's registry already (${digest}): nothing to push\n`]);
    expect(fake.calls).toEqual([]);
  });

  it.each([
    ["no credentials", undefined, `no credentials are configured: set registryCredentials (or CONTAINER_ENGINE_REGISTRY_CREDENTIALS) for ${DEST}`],
    ["credentials for another registry", "other.example:5000", `the configured credentials are for other.example:5000, not ${DEST}`],
    ["credentials for that registry", DEST, `check the username and password configured for ${DEST}`],
  ])("a push Job refused by the registry (%s): ImageLoadError naming the credentials used, and the Job deleted", async (_case, credentialsFor, hint) => {
    const fake = new FakeCluster();
    const { repo } = sourceImage();
    playBuilder(fake, { lines: [`error pushing image: POST https://${DEST}/v2/${repo}/blobs/uploads/: UNAUTHORIZED: authentication required`], exitCode: 1 });
    const options = credentialsFor ? { registryCredentials: { registry: credentialsFor, username: "u", password: "p" } } : {};

    const pushed = await push(builderOn(fake, options), `${DEST}/${repo}:1`);

    expect(pushed.error).toBeInstanceOf(ImageLoadError);
    const message = String((pushed.error as ImageLoadError).message);
    expect(message).toMatch(new RegExp(`^unauthorized: registry ${DEST} refused to accept ${DEST}/${repo}:1: `));
    expect(message).toContain(hint);
    expect(message).toContain("UNAUTHORIZED: authentication required");
    expect(fake.names("jobs")).toEqual([]);
    expect(writes(fake).at(-1)).toMatch(/^delete jobs\/kce-push-/);
  });

  it("a builder that reports no digest: ImageLoadError, the push unconfirmed", async () => {
    const fake = new FakeCluster();
    const { repo } = sourceImage();
    playBuilder(fake);

    const pushed = await push(builderOn(fake), `${DEST}/${repo}:1`);

    expect(pushed.error).toBeInstanceOf(ImageLoadError);
    expect(String(pushed.error)).toContain(`the builder reported no digest for ${DEST}/${repo}:1: the push is unconfirmed`);
    expect(fake.names("jobs")).toEqual([]);
  });

  it("cancelled: CancelledError, and the push Job is deleted", async () => {
    const fake = new FakeCluster();
    const { repo } = sourceImage();
    playBuilder(fake, { hold: true });
    const ctrl = new AbortController();
    const running = push(builderOn(fake), `${DEST}/${repo}:1`, ctrl.signal);
    for (let i = 0; i < 400 && fake.stdin.length === 0; i++) await new Promise((r) => setTimeout(r, 5));
    expect(fake.stdin).toHaveLength(1);
    ctrl.abort();

    const pushed = await running;

    expect(pushed.error).toBeInstanceOf(CancelledError);
    expect(writes(fake)).toEqual([expect.stringMatching(/^create jobs\/kce-push-/), expect.stringMatching(/^delete jobs\/kce-push-/)]);
    expect(fake.names("jobs")).toEqual([]);
  });
});
