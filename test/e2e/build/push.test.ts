// push() and build({push}) to the local cluster's htpasswd registry: with credentials the copy lands there (made
// by a builder Job, no image bytes through the client); without them, or with a wrong password, ImageLoadError
// saying what to do. The password appears in no pod spec, env, args, annotation, Job, event, engine output or
// log message, nor in the user's docker config; the per-push Secret goes with the Job.
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { BuildError, ImageLoadError, type KubernetesEngine, type KubernetesEngineOptions } from "../../../src/index.js";
import { RegistryClient } from "../../../src/registry/client.js";
import { baseImage } from "../engine/helpers.js";
import { env } from "../support/cluster-env.js";
import { authRegistry, basicAuth, leaksIn, pushWith } from "../support/registry-auth.js";
import { builderOptions, contextDir, timed, useBuildScope } from "./helpers.js";

const registry = authRegistry();
const { host: AUTH, pushHost: AUTH_PUSH, user: USER, password: PASSWORD } = registry;
const WRONG = `wrong-${randomBytes(6).toString("hex")}`;
const DOCKER_CONFIG = join(process.env.DOCKER_CONFIG ?? join(homedir(), ".docker"), "config.json");

const scope = useBuildScope("push");
const output: string[] = [];
const messages: string[] = [];
const dockerConfigBefore = existsSync(DOCKER_CONFIG) ? statSync(DOCKER_CONFIG).mtimeMs : null;

function engine(options: KubernetesEngineOptions = {}): KubernetesEngine {
  return scope.ns.engine({ insecureRegistries: [AUTH_PUSH], log: (m) => messages.push(m), ...options });
}

const withCredentials = (password = PASSWORD): KubernetesEngineOptions => pushWith(registry, password);

/** Collects a stream's lines into `output`, rethrowing its error. */
async function drain(lines: AsyncIterable<string>): Promise<string[]> {
  const mine: string[] = [];
  try {
    for await (const line of lines) mine.push(line);
  } finally {
    output.push(...mine);
  }
  return mine;
}

function authClient(): RegistryClient {
  return new RegistryClient({ hosts: { [AUTH]: { insecure: true, credentials: { username: USER, password: PASSWORD } } } });
}

async function buildLocal(builder: "kaniko" | "buildkit"): Promise<string> {
  const repository = `kce-e2e/pushme-${builder}-${randomBytes(4).toString("hex")}`;
  const path = contextDir(scope.dir, {
    Dockerfile: `FROM ${baseImage()}\nLABEL org.example.pushed=yes\nENV PUSHED=1\nRUN echo pushed-${builder} > /pushed\nCMD ["cat", "/pushed"]\n`,
  });
  await drain(engine(builderOptions(builder)).build({ tag: `${repository}:1`, path }));
  return repository;
}

describe.each(["kaniko", "buildkit"] as const)("push with %s", (builder) => {
  it("copies an image to the auth registry with credentials, through a builder Job", async () => {
    const repository = await buildLocal(builder);
    const jobsBefore = scope.jobs.names();
    const e = engine({ ...builderOptions(builder), ...withCredentials() });
    const { value: lines, ms } = await timed(() => drain(e.push(`${AUTH}/${repository}:1`)));
    console.log(`push with ${builder}: ${ms} ms`);
    expect(lines.at(-1)).toMatch(new RegExp(`^Pushed ${AUTH}/${repository}:1@sha256:[0-9a-f]{64}\\n$`));
    const pushJobs = scope.jobs.namesSince(jobsBefore);
    expect(pushJobs.length, "the push created no Job that the recorder saw").toBeGreaterThan(0);
    expect(pushJobs.every((n) => n.startsWith("kce-push-")), pushJobs.join(", ")).toBe(true);

    const client = authClient();
    const copy = await client.getManifest(`${AUTH}/${repository}:1`);
    const source = await e.registryClient(await e.registry()).getManifest(`${env("KCE_REGISTRY")}/${repository}:1`);
    expect(copy).not.toBeNull();
    // Fidelity: the same layer blobs; the runtime config is inherited by FROM.
    expect(copy?.layers.map((l) => l.digest)).toEqual(source?.layers.map((l) => l.digest));
    const config = (await client.getConfig(`${AUTH}/${repository}:1`))?.config;
    expect(config).toMatchObject({ Cmd: ["cat", "/pushed"], Labels: { "org.example.pushed": "yes" } });
    expect(config?.["Env"]).toContain("PUSHED=1");
    // Kaniko sets a new `created`; BuildKit drops the source's inline cache metadata; nothing else differs.
    const sourceConfig = await e.registryClient(await e.registry()).getConfig(`${env("KCE_REGISTRY")}/${repository}:1`);
    const copyConfig = await client.getConfig(`${AUTH}/${repository}:1`);
    const strip = (c: Record<string, unknown> | null | undefined): Record<string, unknown> => {
      const { created: _created, "moby.buildkit.cache.v0": _cache, ...rest } = c ?? {};
      return rest;
    };
    expect(strip(copyConfig)).toEqual(strip(sourceConfig));
    console.log(`push fidelity (${builder}): manifest ${copy?.digest === source?.digest ? "identical" : "differs"}`);
  });
});

describe("push failures", () => {
  let repository: string;
  beforeAll(async () => {
    repository = await buildLocal("kaniko");
  });

  it("without credentials is an ImageLoadError that says which setting to use", async () => {
    const error = await drain(engine({ builder: "kaniko" }).push(`${AUTH}/${repository}:1`)).then(() => null, (err: unknown) => err);
    expect(error).toBeInstanceOf(ImageLoadError);
    expect(String(error)).toMatch(new RegExp(`unauthorized: registry ${AUTH_PUSH.replace(/\./g, "\\.")} refused`));
    expect(String(error)).toMatch(/set registryCredentials \(or CONTAINER_ENGINE_REGISTRY_CREDENTIALS\)/);
  });

  it("with a wrong password is an ImageLoadError asking to check the credentials", async () => {
    const error = await drain(engine({ builder: "kaniko", ...withCredentials(WRONG) }).push(`${AUTH}/${repository}:1`)).then(
      () => null,
      (err: unknown) => err,
    );
    expect(error).toBeInstanceOf(ImageLoadError);
    expect(String(error)).toMatch(/check the username and password configured for/);
    messages.push(String(error));
  });

  it("of an image the engine never built is an ImageLoadError before any pod", async () => {
    const before = scope.pods.names();
    await expect(drain(engine(withCredentials()).push(`${AUTH}/kce-e2e/never-built:1`))).rejects.toThrow(ImageLoadError);
    await expect(drain(engine(withCredentials()).push(`${AUTH}/kce-e2e/never-built:1`))).rejects.toThrow(/build it first/);
    expect(scope.pods.namesSince(before)).toEqual([]);
  });

  it("to the engine's own registry has nothing to do", async () => {
    const lines = await drain(engine().push(`${repository}:1`));
    expect(lines.join("")).toMatch(/is in the engine's registry already .*nothing to push/);
  });
});

describe("build({push}) to the auth registry", () => {
  const path = (): string => contextDir(scope.dir, { Dockerfile: `FROM ${baseImage()}\nRUN echo direct > /direct\n` });
  it("pushes directly with credentials", async () => {
    const tag = `${AUTH}/kce-e2e/direct-${randomBytes(4).toString("hex")}:1`;
    const stream = engine({ builder: "kaniko", ...withCredentials() }).build({ tag, path: path(), push: true });
    await drain(stream);
    const result = await stream.result;
    expect(result.digest).toMatch(/^sha256:/);
    expect(await authClient().manifestDigest(tag)).toBe(result.digest);
  });

  it("fails with a BuildError without credentials", async () => {
    const tag = `${AUTH}/kce-e2e/direct-${randomBytes(4).toString("hex")}:1`;
    const error = await drain(engine({ builder: "kaniko" }).build({ tag, path: path(), push: true })).then(() => null, (err: unknown) => err);
    expect(error).toBeInstanceOf(BuildError);
    expect(String(error)).toMatch(/^BuildError: unauthorized: registry .* set registryCredentials/);
  });
});

describe("the auth registry as the engine's registry, with only a credentials Secret", () => {
  it("builds and pushes with the Secret, and the engine's own registry requests (inspectImage, images) use it too", async () => {
    const { admin, namespace } = scope.ns;
    const name = `registry-${randomBytes(3).toString("hex")}`;
    const dockerconfig = JSON.stringify({ auths: { [AUTH]: { auth: basicAuth(USER, PASSWORD) }, [AUTH_PUSH]: { auth: basicAuth(USER, PASSWORD) } } });
    await admin.call("create", "secrets", (o) =>
      admin.core.createNamespacedSecret(
        {
          namespace,
          body: {
            metadata: { name, labels: { "app.kubernetes.io/managed-by": "kube-container-engine-test" } },
            type: "kubernetes.io/dockerconfigjson",
            data: { ".dockerconfigjson": Buffer.from(dockerconfig).toString("base64") },
          },
        },
        o,
      ),
    );
    const e = engine({
      builder: "kaniko",
      registry: { host: AUTH, pushHost: AUTH_PUSH, insecure: true, credentialsSecret: name },
      insecureRegistries: [AUTH_PUSH, env("KCE_REGISTRY")], // the FROM image is on the open registry
    });
    const repository = `kce-e2e/secret-only-${randomBytes(4).toString("hex")}`;
    const stream = e.build({ tag: `${repository}:1`, path: contextDir(scope.dir, { Dockerfile: `FROM ${baseImage()}\nRUN echo s > /s\n` }) });
    await drain(stream);
    const result = await stream.result;
    expect(await authClient().manifestDigest(`${AUTH}/${repository}:1`)).toBe(result.digest);
    // Without the Secret's credentials these were 401s.
    expect((await e.inspectImage(`${repository}:1`))?.tags).toEqual([`${repository}:1`]);
    expect((await e.images()).flatMap((i) => i.tags)).toContain(`${repository}:1`);
  });
});

describe("credentials", () => {
  it("appear in no pod spec, Job, event, engine output or log message, nor in the user's docker config", async () => {
    const { admin, namespace } = scope.ns;
    const events = await admin.call("list", "events", (o) => admin.core.listNamespacedEvent({ namespace }, o));
    const haystacks: Record<string, string> = {
      pods: scope.pods.json(),
      jobs: scope.jobs.json(),
      events: JSON.stringify(events.items),
      output: output.join(""),
      messages: messages.join("\n"),
    };
    expect(scope.pods.names().length).toBeGreaterThan(0);
    const needles = [PASSWORD, WRONG].flatMap((secret) => [secret, basicAuth(USER, secret)]);
    expect(leaksIn(haystacks, needles), "these contain a credential").toEqual([]);
    if (dockerConfigBefore === null) expect(existsSync(DOCKER_CONFIG)).toBe(false);
    else {
      expect(statSync(DOCKER_CONFIG).mtimeMs).toBe(dockerConfigBefore);
      expect(readFileSync(DOCKER_CONFIG, "utf8")).not.toContain(basicAuth(USER, PASSWORD));
    }
  });
});
