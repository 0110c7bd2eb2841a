import type { V1Container, V1Job } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { InvalidInputError } from "../../../src/errors.js";
import {
  BUILDER_CONTAINER,
  registryCredentialsSecret,
  type BuilderJobInput,
} from "../../../src/imaging/builder-spec.js";
import { kanikoArgs, kanikoIgnoredOptions, kanikoJob } from "../../../src/imaging/kaniko.js";
import { BUILDKIT_SCRIPT, buildctlArgs, buildkitJob, buildkitdConfig } from "../../../src/imaging/buildkit.js";

const SENTINEL = "s3ntinel-PASSWORD";

const base: BuilderJobInput = {
  name: "kce-build-abc123",
  namespace: "builds",
  labels: { "app.kubernetes.io/managed-by": "kube-container-engine", "kce/build": "abc123" },
  annotations: { "kce/context-sha256": "sha256:00" },
  image: "registry.local/kaniko:v1.25.5",
  imagePullPolicy: "IfNotPresent",
  destinations: ["10.0.0.5:5000/r2d-x:latest"],
  dockerfile: "binder/Dockerfile",
  buildArgs: { NB_USER: "jovyan", EMPTY: "" },
  imageLabels: { "repo2docker.version": "2025.08.0", "repo2docker.ref": null },
  push: true,
  insecureRegistries: ["10.0.0.5:5000"],
  deadlineSeconds: 600,
  ttlSecondsAfterFinished: 300,
  containerLimits: { memory: 2 * 1024 ** 3, cpushares: 512 },
  credentialsSecret: "kce-build-abc123-push",
  serviceAccountName: "builder",
  nodeSelector: { "kubernetes.io/os": "linux" },
  tolerations: [{ key: "builds", operator: "Exists", effect: "NoSchedule" }],
};

function container(job: V1Job): V1Container {
  const c = job.spec?.template.spec?.containers[0];
  if (!c) throw new Error("no container");
  return c;
}

function expectCommonJob(job: V1Job, input: BuilderJobInput): void {
  expect(job).toMatchObject({ apiVersion: "batch/v1", kind: "Job" });
  expect(job.metadata).toMatchObject({ name: input.name, namespace: input.namespace, labels: input.labels });
  expect(job.spec).toMatchObject({
    backoffLimit: 0,
    ttlSecondsAfterFinished: 300,
    activeDeadlineSeconds: 630, // the pod's deadline shows first; the Job's also covers a never-started pod
  });
  const pod = job.spec?.template;
  expect(pod?.metadata?.labels).toEqual(input.labels);
  expect(pod?.spec).toMatchObject({
    restartPolicy: "Never",
    activeDeadlineSeconds: 600,
    automountServiceAccountToken: false,
    enableServiceLinks: false,
    serviceAccountName: "builder",
    nodeSelector: { "kubernetes.io/os": "linux" },
    tolerations: input.tolerations,
  });
  expect(pod?.spec?.containers).toHaveLength(1);
  const c = container(job);
  expect(c).toMatchObject({
    name: BUILDER_CONTAINER,
    image: input.image,
    imagePullPolicy: "IfNotPresent",
    stdin: true,
    stdinOnce: true,
    tty: false,
    terminationMessagePath: "/dev/termination-log",
    terminationMessagePolicy: "FallbackToLogsOnError",
    resources: { limits: { memory: String(2 * 1024 ** 3) }, requests: { cpu: "500m" } },
  });
  // No secret material anywhere in the spec: only a reference to the Secret.
  expect(JSON.stringify(job)).not.toContain(SENTINEL);
  for (const e of c.env ?? []) expect(e.valueFrom?.secretKeyRef).toBeUndefined();
  expect(pod?.spec?.volumes?.some((v) => v.hostPath)).toBe(false);
}

describe("kanikoJob", () => {
  const job = kanikoJob(base);

  it("is a one-shot Job with server-side deadline and TTL", () => expectCommonJob(job, base));

  it("passes the build as executor args reading the context from stdin", () => {
    const c = container(job);
    expect(c.command).toBeUndefined(); // the image's entrypoint: /kaniko/executor
    expect(c.args).toEqual([
      "--context=tar://stdin",
      "--dockerfile=binder/Dockerfile",
      "--destination=10.0.0.5:5000/r2d-x:latest",
      "--digest-file=/dev/termination-log",
      "--build-arg=NB_USER=jovyan",
      "--build-arg=EMPTY=",
      "--label=repo2docker.version=2025.08.0",
      "--label=repo2docker.ref=",
      "--insecure-registry=10.0.0.5:5000",
      "--skip-tls-verify-registry=10.0.0.5:5000",
      "--compressed-caching=false",
      "--snapshot-mode=redo",
      "--push-retry=2",
      "--log-format=text",
      "--log-timestamp=false",
      "--verbosity=info",
    ]);
  });

  it("mounts the credentials Secret as /kaniko/.docker/config.json", () => {
    expect(job.spec?.template.spec?.volumes).toEqual([
      { name: "registry-credentials", secret: { secretName: "kce-build-abc123-push" } },
    ]);
    expect(container(job).volumeMounts).toEqual([
      {
        name: "registry-credentials",
        mountPath: "/kaniko/.docker/config.json",
        subPath: ".dockerconfigjson",
        readOnly: true,
      },
    ]);
    expect(container(job).env).toBeUndefined();
  });

  it("meets Pod Security baseline: not privileged, no added capabilities", () => {
    const sc = container(job).securityContext;
    expect(sc?.privileged).toBe(false);
    expect(sc?.capabilities?.add).toBeUndefined();
    expect(job.spec?.template.spec?.securityContext?.seccompProfile?.type).not.toBe("Unconfined");
  });

  it("maps cache, platform and no-push", () => {
    const args = kanikoArgs({ ...base, push: false, cacheRepo: "10.0.0.5:5000/cache", platform: "linux/arm64" });
    expect(args).toEqual(
      expect.arrayContaining([
        "--cache=true",
        "--cache-repo=10.0.0.5:5000/cache",
        "--custom-platform=linux/arm64",
        "--no-push",
      ]),
    );
    expect(kanikoArgs(base)).not.toContain("--no-push");
    expect(kanikoIgnoredOptions({ ...base, cacheFrom: ["x:1"] })).toHaveLength(1);
  });

  it("omits what was not asked for", () => {
    const minimal = kanikoJob({
      name: "b",
      namespace: "n",
      image: "k:1",
      destinations: ["h:5000/x:1"],
      dockerfile: "Dockerfile",
      push: true,
      deadlineSeconds: 60,
      ttlSecondsAfterFinished: 0,
    });
    const c = container(minimal);
    expect(c.resources).toBeUndefined();
    expect(c.volumeMounts).toBeUndefined();
    expect(c.imagePullPolicy).toBeUndefined();
    expect(minimal.spec?.template.spec?.volumes).toBeUndefined();
    expect(minimal.spec?.template.spec?.serviceAccountName).toBeUndefined();
    expect(c.args?.some((a) => a.startsWith("--insecure"))).toBe(false);
  });

  it.each([
    ["a bad name", { name: "Bad_Name" }],
    ["no destination", { destinations: [] }],
    ["a bad destination", { destinations: ["UPPER CASE"] }],
    ["a zero deadline", { deadlineSeconds: 0 }],
    ["a negative TTL", { ttlSecondsAfterFinished: -1 }],
  ])("rejects %s", (_what, patch) => {
    expect(() => kanikoJob({ ...base, ...patch })).toThrow(InvalidInputError);
  });
});

describe("buildkitJob", () => {
  const privileged = buildkitJob({ ...base, image: "registry.local/buildkit:v0.32.2", mode: "privileged" });
  const rootless = buildkitJob({ ...base, image: "registry.local/buildkit:v0.32.2-rootless", mode: "rootless" });

  it("is a one-shot Job with server-side deadline and TTL", () => {
    expectCommonJob(privileged, { ...base, image: "registry.local/buildkit:v0.32.2" });
    expectCommonJob(rootless, { ...base, image: "registry.local/buildkit:v0.32.2-rootless" });
  });

  it("runs the fixed script with buildctl arguments as positional parameters", () => {
    const c = container(privileged);
    expect(c.command?.slice(0, 4)).toEqual(["sh", "-c", BUILDKIT_SCRIPT, "kce-build"]);
    expect(c.command?.slice(4)).toEqual([
      "--progress=plain",
      "--frontend=dockerfile.v0",
      "--local",
      "context=/workspace",
      "--local",
      "dockerfile=/workspace/binder",
      "--opt",
      "filename=Dockerfile",
      "--opt",
      "build-arg:NB_USER=jovyan",
      "--opt",
      "build-arg:EMPTY=",
      "--opt",
      "label:repo2docker.version=2025.08.0",
      "--opt",
      "label:repo2docker.ref=",
      "--output",
      "type=image,name=10.0.0.5:5000/r2d-x:latest,push=true,registry.insecure=true",
      "--export-cache",
      "type=inline",
    ]);
    expect(c.args).toBeUndefined();
    expect(BUILDKIT_SCRIPT).toContain("tar -xzof - -C /workspace");
    expect(BUILDKIT_SCRIPT).toContain('buildctl-daemonless.sh build --metadata-file=/tmp/kce/metadata.json "$@"');
    expect(BUILDKIT_SCRIPT).toContain("containerimage.digest");
    expect(BUILDKIT_SCRIPT).toContain("> /dev/termination-log");
  });

  it("maps cache, cacheFrom, platform, several destinations and no-push", () => {
    const args = buildctlArgs({
      ...base,
      mode: "privileged",
      dockerfile: "Dockerfile",
      destinations: ["h:5000/a:1", "h:5000/a:latest"],
      cacheRepo: "h:5000/cache",
      cacheFrom: ["h:5000/a:0"],
      platform: "linux/amd64",
      push: false,
      insecureRegistries: [],
    });
    expect(args).toEqual(
      expect.arrayContaining([
        "dockerfile=/workspace",
        "filename=Dockerfile",
        "platform=linux/amd64",
        'type=image,"name=h:5000/a:1,h:5000/a:latest"',
        "type=registry,ref=h:5000/cache:buildkit,mode=max",
        "type=registry,ref=h:5000/cache:buildkit",
        "type=registry,ref=h:5000/a:0",
      ]),
    );
    expect(args.filter((a) => a === "--import-cache")).toHaveLength(2);
    expect(args.join(" ")).not.toContain("push=true");
  });

  it("keeps a cache reference that has a tag, and exports no cache for copies", () => {
    const common = { ...base, mode: "privileged" as const, dockerfile: "Dockerfile", destinations: ["h:5000/a:1"], push: true };
    const tagged = buildctlArgs({ ...common, cacheRepo: "h:5000/cache:mine" });
    expect(tagged).toContain("type=registry,ref=h:5000/cache:mine,mode=max");
    const copy = buildctlArgs({ ...common, noCacheExport: true });
    expect(copy).not.toContain("--export-cache");
    expect(copy).not.toContain("--import-cache");
  });

  it("configures insecure registries through a generated buildkitd.toml", () => {
    const toml = buildkitdConfig({ ...base, mode: "privileged", insecureRegistries: ["b:5000", "a:5000"] });
    expect(toml).toBe('[registry."a:5000"]\n  http = true\n  insecure = true\n\n[registry."b:5000"]\n  http = true\n  insecure = true\n');
    expect(container(privileged).env).toEqual([
      { name: "BUILDKITD_FLAGS", value: "--root=/var/lib/buildkit --config=/tmp/kce/buildkitd.toml" },
      { name: "BUILDCTL_CONNECT_RETRIES_MAX", value: "75" },
      { name: "KCE_BUILDKITD_CONFIG", value: buildkitdConfig({ ...base, mode: "privileged" }) },
      { name: "DOCKER_CONFIG", value: "/kce/docker" },
    ]);
    const plain = buildkitJob({ ...base, mode: "privileged", insecureRegistries: [], credentialsSecret: undefined });
    expect(container(plain).env).toEqual([
      { name: "BUILDKITD_FLAGS", value: "--root=/var/lib/buildkit" },
      // a slow daemon start under load must not fail the build (≈ 60 s instead of buildctl-daemonless.sh's 2 s)
      { name: "BUILDCTL_CONNECT_RETRIES_MAX", value: "75" },
    ]);
  });

  it("mounts state, workspace and the credentials as a DOCKER_CONFIG directory", () => {
    expect(privileged.spec?.template.spec?.volumes).toEqual([
      { name: "buildkit-state", emptyDir: {} },
      { name: "workspace", emptyDir: {} },
      {
        name: "registry-credentials",
        secret: { secretName: "kce-build-abc123-push", items: [{ key: ".dockerconfigjson", path: "config.json" }] },
      },
    ]);
    expect(container(privileged).volumeMounts).toEqual([
      { name: "buildkit-state", mountPath: "/var/lib/buildkit" },
      { name: "workspace", mountPath: "/workspace" },
      { name: "registry-credentials", mountPath: "/kce/docker", readOnly: true },
    ]);
  });

  it("privileged mode: a privileged container", () => {
    expect(container(privileged).securityContext).toEqual({ privileged: true });
  });

  it("rootless mode: uid 1000, Unconfined seccomp/AppArmor, no added capability, no process sandbox", () => {
    const c = container(rootless);
    expect(c.securityContext).toEqual({
      runAsUser: 1000,
      runAsGroup: 1000,
      runAsNonRoot: true,
      allowPrivilegeEscalation: true,
      seccompProfile: { type: "Unconfined" },
      appArmorProfile: { type: "Unconfined" },
    });
    expect(c.securityContext?.privileged).toBeUndefined();
    expect(c.env?.find((e) => e.name === "BUILDKITD_FLAGS")?.value).toBe(
      "--root=/var/lib/buildkit --oci-worker-no-process-sandbox --config=/tmp/kce/buildkitd.toml",
    );
  });
});

describe("registryCredentialsSecret", () => {
  it("is a dockerconfigjson Secret holding the credentials only in data", () => {
    const secret = registryCredentialsSecret(
      "kce-build-abc123-push",
      [
        { registry: "10.0.0.5:5001", username: "user", password: SENTINEL },
        { registry: "docker.io", username: "u2", password: "p2" },
      ],
      { namespace: "builds", labels: { "kce/build": "abc123" } },
    );
    expect(secret).toMatchObject({
      apiVersion: "v1",
      kind: "Secret",
      type: "kubernetes.io/dockerconfigjson",
      metadata: { name: "kce-build-abc123-push", namespace: "builds", labels: { "kce/build": "abc123" } },
    });
    expect(JSON.stringify(secret.metadata)).not.toContain(SENTINEL);
    expect(JSON.stringify(secret)).not.toContain(SENTINEL);
    const config = JSON.parse(Buffer.from(secret.data?.[".dockerconfigjson"] ?? "", "base64").toString()) as {
      auths: Record<string, { auth: string }>;
    };
    expect(Object.keys(config.auths)).toEqual(["10.0.0.5:5001", "https://index.docker.io/v1/"]);
    expect(Buffer.from(config.auths["10.0.0.5:5001"]?.auth ?? "", "base64").toString()).toBe(`user:${SENTINEL}`);
  });

  it("rejects incomplete credentials", () => {
    expect(() =>
      registryCredentialsSecret("s", { registry: "", username: "u", password: "p" }),
    ).toThrow(InvalidInputError);
  });
});
