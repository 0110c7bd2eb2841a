// The Builder's decisions against the fake cluster and a fake registry: which objects a build creates and in
// which order, how it joins or replaces a Job of the same name, what it cleans up when a build fails or is
// cancelled, and that an image already built for the same content costs no cluster call.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { V1Job } from "@kubernetes/client-node";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Builder, type BuildResult } from "../../../src/imaging/builder.js";
import { contentTag } from "../../../src/imaging/content-hash.js";
import { ANNOTATION_CONTENT_HASH } from "../../../src/imaging/plan.js";
import { resolveEngineConfig, resolveRegistry, type KubernetesEngineOptions } from "../../../src/config.js";
import type { BuildOptions } from "../../../src/contract.js";
import { BuildError, CancelledError, KubernetesApiError } from "../../../src/errors.js";
import type { DeleteOptions } from "../../../src/kube/api.js";
import { RegistryClient } from "../../../src/registry/client.js";
import { apiError, FakeCluster } from "../../support/fake-cluster.js";
import { addImage, startFakeRegistry, type FakeRegistry } from "../registry/fake-registry.js";
import { playBuilder, terminatedBuilder } from "./fake-builder.js";

let registry: FakeRegistry;
let dirs: string[] = [];
let repositories = 0;

beforeAll(async () => {
  registry = await startFakeRegistry();
});

afterAll(async () => {
  await registry.close();
});

afterEach(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  dirs = [];
});

/** A fresh repository per test: the registry is shared. */
function repository(): string {
  repositories += 1;
  return `demo/app${repositories}`;
}

/** A build context directory whose content no other test has. */
function contextDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "kce-builder-test-"));
  writeFileSync(join(dir, "Dockerfile"), `FROM scratch\nLABEL test=${dir}\n`);
  dirs.push(dir);
  return dir;
}

function builderOn(fake: FakeCluster, options: KubernetesEngineOptions = {}): Builder {
  const config = resolveEngineConfig({ instanceId: "t1", builder: "kaniko", contextCompression: "none", ...options }, {});
  const resolved = resolveRegistry({ host: registry.host, insecure: true });
  const client = new RegistryClient({ hosts: { [registry.host]: { insecure: true } } });
  return new Builder({ registries: { registry: async () => resolved, registryClient: () => client }, config, api: fake, log: () => undefined });
}

/** What the fake builder does with its context: pushes the image under its tag and its content tag. */
function pushesTo(repo: string, tag: string): (job: V1Job) => void {
  return (job) => {
    const config = { architecture: "amd64", os: "linux", config: { Labels: { repo } } };
    addImage(registry, repo, tag, config);
    const hash = job.metadata?.annotations?.[ANNOTATION_CONTENT_HASH];
    if (hash) addImage(registry, repo, contentTag(hash), config);
  };
}

interface Built {
  lines: string[];
  result: BuildResult | null;
  error: unknown;
}

async function build(builder: Builder, options: BuildOptions, lines: string[] = []): Promise<Built> {
  const stream = builder.build(options);
  try {
    for await (const line of stream) lines.push(line);
    return { lines, result: await stream.result, error: null };
  } catch (error) {
    return { lines, result: null, error };
  }
}

/** Waits until `check` holds (the build runs on later ticks). */
async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 400 && !check(); i++) await new Promise((r) => setTimeout(r, 5));
  expect(check()).toBe(true);
}

/** The calls that change the cluster, in order. */
const writes = (fake: FakeCluster): string[] => fake.calls.filter((c) => /^(create|patch|delete) /.test(c));

/** The name the build's content-addressed Job gets, found by a create the fake refuses. */
async function jobNameFor(fake: FakeCluster, options: BuildOptions): Promise<string> {
  fake.failNext("create", "jobs", apiError("create", "jobs", 403, "Forbidden"));
  await build(builderOn(fake), options);
  const name = fake.calls.find((c) => c.startsWith("create jobs/"))?.slice("create jobs/".length) ?? "";
  fake.calls.splice(0);
  return name;
}

describe("Builder.build with a builder Job", () => {
  it("creates the Job, streams the context into its pod, confirms the image in the registry and deletes the Job", async () => {
    const fake = new FakeCluster();
    const repo = repository();
    playBuilder(fake, { lines: ["INFO building", "INFO pushed"], onBuilt: pushesTo(repo, "1") });

    const built = await build(builderOn(fake), { tag: `${registry.host}/${repo}:1`, path: contextDir() });

    expect(built.error).toBeNull();
    const job = writes(fake)[0]?.slice("create jobs/".length) ?? "";
    expect(job).toMatch(/^kce-build-app\d+-[0-9a-f]{12}$/);
    expect(built.result).toMatchObject({ image: `${registry.host}/${repo}:1`, pod: `${job}-pod`, source: "built", pushed: true });
    expect(built.result?.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(built.lines).toEqual(["INFO building\n", "INFO pushed\n"]);
    expect(fake.stdin.map((d) => d.pod)).toEqual([`${job}-pod`]);
    expect(writes(fake)).toEqual([`create jobs/${job}`, `delete jobs/${job}`]);
    // Deleted at once with its pod, and only if it is still ours (the uid).
    expect(fake.deleteOptions.get(`jobs/${job}`)).toMatchObject({ propagationPolicy: "Background", gracePeriodSeconds: 0, preconditions: { uid: expect.any(String) } });
    expect(fake.names("jobs")).toEqual([]);
  });

  it("with credentials: creates the Secret before the Job, then makes the Job its owner (it goes with the Job)", async () => {
    const fake = new FakeCluster();
    const repo = repository();
    let ownerDuringBuild: unknown = null;
    playBuilder(fake, {
      onBuilt: (job) => {
        pushesTo(repo, "1")(job);
        const secret = fake.names("secrets")[0] ?? "";
        ownerDuringBuild = { job, owners: fake.peek("secrets", secret)?.metadata?.ownerReferences };
      },
    });
    const builder = builderOn(fake, { registryCredentials: { registry: registry.host, username: "u", password: "p" } });

    const built = await build(builder, { tag: `${registry.host}/${repo}:1`, path: contextDir() });

    expect(built.error).toBeNull();
    const [createSecret, createJob, patchSecret, deleteJob] = writes(fake);
    const secret = createSecret?.slice("create secrets/".length) ?? "";
    const job = createJob?.slice("create jobs/".length) ?? "";
    expect(secret).toMatch(new RegExp(`^${job}-registry-[0-9a-f]{6}$`));
    expect([createSecret, createJob, patchSecret, deleteJob]).toEqual([`create secrets/${secret}`, `create jobs/${job}`, `patch secrets/${secret}`, `delete jobs/${job}`]);
    expect(fake.calls.indexOf(`patch secrets/${secret}`)).toBeLessThan(fake.calls.indexOf(`attach pods/${job}-pod`));
    const seen = ownerDuringBuild as { job: V1Job; owners: unknown };
    expect(seen.owners).toEqual([{ apiVersion: "batch/v1", kind: "Job", name: job, uid: seen.job.metadata?.uid, blockOwnerDeletion: false }]);
    // No delete of its own: the cluster removes it with its Job.
    expect(fake.names("secrets")).toEqual([]);
    expect(writes(fake)).toHaveLength(4);
  });

  it("a Job that cannot be created: the Secret made for it is deleted and the create's error is thrown", async () => {
    const fake = new FakeCluster();
    fake.failNext("create", "jobs", apiError("create", "jobs", 403, "Forbidden"));
    const builder = builderOn(fake, { registryCredentials: { registry: registry.host, username: "u", password: "p" } });

    const built = await build(builder, { tag: `${registry.host}/${repository()}:1`, path: contextDir() });

    expect(built.error).toBeInstanceOf(KubernetesApiError);
    expect(built.error).toMatchObject({ statusCode: 403, resource: "jobs" });
    const secret = fake.calls[0]?.slice("create secrets/".length) ?? "";
    expect(writes(fake)).toEqual([`create secrets/${secret}`, expect.stringMatching(/^create jobs\//), `delete secrets/${secret}`]);
    expect(fake.names("secrets")).toEqual([]);
    expect(fake.names("jobs")).toEqual([]);
  });

  it("a failed build is a BuildError, and its Job is deleted", async () => {
    const fake = new FakeCluster();
    playBuilder(fake, { lines: ["error building image: exit status 2"], exitCode: 1 });

    const built = await build(builderOn(fake), { tag: `${registry.host}/${repository()}:1`, path: contextDir() });

    expect(built.error).toBeInstanceOf(BuildError);
    expect(built.error).toMatchObject({ reason: "failed", exitCode: 2 });
    const job = writes(fake)[0]?.slice("create jobs/".length) ?? "";
    expect(writes(fake)).toEqual([`create jobs/${job}`, `delete jobs/${job}`]);
    expect(fake.names("jobs")).toEqual([]);
  });

  it("a builder that reports success but pushed nothing: BuildError not-found, and the Job is deleted", async () => {
    const fake = new FakeCluster();
    playBuilder(fake, { lines: ["INFO pushed (not really)"] });

    const built = await build(builderOn(fake), { tag: `${registry.host}/${repository()}:1`, path: contextDir() });

    expect(built.error).toBeInstanceOf(BuildError);
    expect(built.error).toMatchObject({ reason: "not-found" });
    expect(String(built.error)).toContain("the builder reported success but");
    expect(fake.names("jobs")).toEqual([]);
  });

  it("cancelled mid-build: CancelledError, and the Job is deleted", async () => {
    const fake = new FakeCluster();
    playBuilder(fake, { hold: true });
    const ctrl = new AbortController();
    const running = build(builderOn(fake), { tag: `${registry.host}/${repository()}:1`, path: contextDir(), signal: ctrl.signal });
    await until(() => fake.stdin.length === 1);
    ctrl.abort();

    const built = await running;

    expect(built.error).toBeInstanceOf(CancelledError);
    expect(String(built.error)).toContain("the builder was deleted");
    const job = writes(fake)[0]?.slice("create jobs/".length) ?? "";
    expect(writes(fake)).toEqual([`create jobs/${job}`, `delete jobs/${job}`]);
    expect(fake.names("jobs")).toEqual([]);
  });

  it("unchanged content: the image built for the same content is reused, without any cluster call", async () => {
    const repo = repository();
    const path = contextDir();
    const first = new FakeCluster();
    playBuilder(first, { onBuilt: pushesTo(repo, "1") });
    const built = await build(builderOn(first), { tag: `${registry.host}/${repo}:1`, path });
    expect(built.result?.source).toBe("built");

    const second = new FakeCluster();
    const again = await build(builderOn(second), { tag: `${registry.host}/${repo}:1`, path });

    expect(again.error).toBeNull();
    expect(again.result).toMatchObject({ source: "existing", pod: null, digest: built.result?.digest, contextBytes: 0 });
    expect(again.lines[0]).toMatch(/^Using existing image for content hash [0-9a-f]{16}: .* \(no builder pod started\)\n$/);
    expect(second.calls).toEqual([]);
  });
});

describe("Builder.build: create or join", () => {
  it("409 on create: joins the identical build that runs, sends nothing, and shares its result", async () => {
    const fake = new FakeCluster();
    const repo = repository();
    const path = contextDir();
    const builder = playBuilder(fake, { hold: true, lines: ["INFO built once"], onBuilt: pushesTo(repo, "1") });
    const first = build(builderOn(fake), { tag: `${registry.host}/${repo}:1`, path });
    await until(() => fake.stdin.length === 1);
    const joinerLines: string[] = [];
    const second = build(builderOn(fake), { tag: `${registry.host}/${repo}:1`, path }, joinerLines);
    await until(() => joinerLines.some((l) => l.startsWith("Joining the identical build")));
    builder.finish();

    const [own, joined] = await Promise.all([first, second]);

    expect(own.result?.source).toBe("built");
    expect(joined.error).toBeNull();
    expect(joined.result).toMatchObject({ source: "joined", digest: own.result?.digest, contextBytes: 0 });
    const job = writes(fake)[0]?.slice("create jobs/".length) ?? "";
    expect(joinerLines[0]).toBe(`Joining the identical build already running in job ${job} (content hash ${own.result?.contentHash?.slice(0, 16)})\n`);
    expect(joined.lines).toContain("INFO built once\n");
    // Both tried to create it; one context went to the one pod; only its creator deleted it.
    expect(writes(fake)).toEqual([`create jobs/${job}`, `create jobs/${job}`, `delete jobs/${job}`]);
    expect(fake.stdin).toHaveLength(1);
  });

  it("a finished Job of that name left behind: deleted (that very one, by uid), then replaced by a new one", async () => {
    const fake = new FakeCluster();
    const repo = repository();
    const options = { tag: `${registry.host}/${repo}:1`, path: contextDir() };
    const name = await jobNameFor(fake, options);
    const left = await fake.jobs.create({ metadata: { name }, spec: { template: { spec: { containers: [] } } } });
    fake.setJobStatus(name, { conditions: [{ type: "Complete", status: "True" }] });
    fake.calls.splice(0);
    const deleted: Array<DeleteOptions | undefined> = [];
    const deleteJob = fake.jobs.deleteIfExists;
    fake.jobs.deleteIfExists = (jobName, o) => {
      deleted.push(o);
      return deleteJob(jobName, o);
    };
    playBuilder(fake, { onBuilt: pushesTo(repo, "1") });

    const built = await build(builderOn(fake), options);

    expect(built.error).toBeNull();
    expect(built.result?.source).toBe("built");
    expect(fake.calls.filter((c) => c.includes("jobs"))).toEqual([
      `create jobs/${name}`, // 409
      `get jobs/${name}`,
      `delete jobs/${name}`,
      "watch jobs",
      `create jobs/${name}`,
      `delete jobs/${name}`,
    ]);
    expect(deleted[0]?.preconditions).toEqual({ uid: left.metadata?.uid });
    expect(deleted[1]?.preconditions?.uid).not.toBe(left.metadata?.uid);
  });

  it("gives up after 3 attempts when every Job it joins fails without a result", async () => {
    const fake = new FakeCluster();
    const repo = repository();
    const options = { tag: `${registry.host}/${repo}:1`, path: contextDir() };
    const name = await jobNameFor(fake, options);
    // Another client's Job whose builder died without a word (its creator vanished mid-upload).
    await fake.jobs.create({ metadata: { name }, spec: { template: { spec: { containers: [] } } } });
    fake.putPod(terminatedBuilder(name, 1));
    fake.calls.splice(0);

    const built = await build(builderOn(fake), options);

    expect(built.error).toBeInstanceOf(BuildError);
    expect(built.error).toMatchObject({ reason: "deleted" });
    expect(String(built.error)).toContain(`could not start or join the builder job ${name} after 3 attempts`);
    expect(built.lines.filter((l) => l.startsWith("Joining the identical build"))).toHaveLength(3);
    expect(writes(fake)).toEqual([`create jobs/${name}`, `create jobs/${name}`, `create jobs/${name}`]);
    expect(fake.calls.some((c) => c.startsWith("attach "))).toBe(false);
    expect(fake.names("jobs")).toEqual([name]); // someone else's: left alone
  });
});
