import { describe, expect, it } from "vitest";
import { InvalidInputError } from "../../../src/errors.js";
import { ANNOTATION_CREATED_AT, ANNOTATION_IMAGE, LABEL_INSTANCE, LABEL_MANAGED_BY, LABEL_ROLE } from "../../../src/pods/labels.js";
import {
  ANNOTATION_COMMIT,
  ANNOTATION_REPOSITORY,
  jobPodSelector,
  RUNNER_CONTAINER,
  runnerJob,
  workVolumeBytes,
  type RunnerJobInput,
} from "../../../src/service/runner-job.js";

const MiB = 1024 * 1024;
const COMMIT = "0123456789abcdef0123456789abcdef01234567";

const INPUT: RunnerJobInput = {
  name: "build-jupyterhub-2dbinder-2dexamples-1b6e84-012-de",
  namespace: "kce",
  runnerImage: "registry.example.org/kce:0.1.0",
  command: ["/usr/bin/tini", "--", "python", "-m", "repo2docker_kce.runner"],
  repoUrl: "https://github.com/jupyterhub/binder-examples",
  commit: COMMIT,
  imageName: `registry.example.org/binder/jupyterhub-binder-examples:${COMMIT}`,
  resolve: ["github.com:443:140.82.121.3", "github.com:443:[2606:50c0:8000::154]"],
  maxRepoBytes: 512 * MiB,
  deadlineSeconds: 3600,
  ttlSecondsAfterFinished: 600,
  serviceAccountName: "kce-runner",
  userName: "jovyan",
  userId: 1000,
  env: {},
  resources: { requests: { cpu: "100m", memory: "256Mi" }, limits: { memory: "1Gi" } },
  instance: "kce-service",
  createdAt: new Date("2026-01-02T03:04:05.678Z"),
};

function container(input: Partial<RunnerJobInput> = {}) {
  const c = runnerJob({ ...INPUT, ...input }).spec?.template.spec?.containers[0];
  if (c === undefined) throw new Error("no container");
  return c;
}

describe("runnerJob metadata", () => {
  const job = runnerJob(INPUT);

  it("is a batch/v1 Job named after the build in the service's namespace", () => {
    expect([job.apiVersion, job.kind, job.metadata?.name, job.metadata?.namespace]).toEqual(["batch/v1", "Job", INPUT.name, "kce"]);
  });

  it("carries the engine's labels with the runner role, on the Job and its pods; the pods also the build's", () => {
    const labels = { [LABEL_MANAGED_BY]: "kube-container-engine", [LABEL_INSTANCE]: "kce-service", [LABEL_ROLE]: "runner" };
    expect(job.metadata?.labels).toEqual(labels);
    expect(job.spec?.template.metadata?.labels).toEqual({ ...labels, "kube-container-engine/build": INPUT.name });
  });

  it("selects its pods by the build label, so a spare claimed for the build is adopted", () => {
    expect(job.spec?.manualSelector).toBe(true);
    expect(job.spec?.selector).toEqual({ matchLabels: { "kube-container-engine/build": INPUT.name } });
  });

  it("carries what a restarted service needs to take the build over", () => {
    expect(job.metadata?.annotations).toEqual({
      [ANNOTATION_CREATED_AT]: "2026-01-02T03:04:05.678Z",
      [ANNOTATION_IMAGE]: INPUT.imageName,
      [ANNOTATION_REPOSITORY]: INPUT.repoUrl,
      [ANNOTATION_COMMIT]: COMMIT,
    });
    expect(job.spec?.template.metadata?.annotations).toEqual({ [ANNOTATION_REPOSITORY]: INPUT.repoUrl, [ANNOTATION_COMMIT]: COMMIT });
    expect([ANNOTATION_REPOSITORY, ANNOTATION_COMMIT]).toEqual(["kube-container-engine/repository", "kube-container-engine/commit"]);
  });

  it("refuses an instance id that is not a label value", () => {
    expect(() => runnerJob({ ...INPUT, instance: "not a label!" })).toThrow(InvalidInputError);
    expect(() => runnerJob({ ...INPUT, instance: "" })).toThrow(InvalidInputError);
  });
});

describe("runnerJob spec", () => {
  const job = runnerJob(INPUT);

  it("runs once, within the deadline, and is kept for the TTL", () => {
    expect(job.spec).toMatchObject({ backoffLimit: 0, activeDeadlineSeconds: 3600, ttlSecondsAfterFinished: 600 });
    expect(runnerJob({ ...INPUT, deadlineSeconds: 60, ttlSecondsAfterFinished: 5 }).spec).toMatchObject({ activeDeadlineSeconds: 60, ttlSecondsAfterFinished: 5 });
  });

  it("runs one pod as the runner ServiceAccount, without service links, with time to clean up", () => {
    const pod = job.spec?.template.spec;
    expect(pod?.restartPolicy).toBe("Never");
    expect(pod?.serviceAccountName).toBe("kce-runner");
    expect(pod?.enableServiceLinks).toBe(false);
    expect(pod?.terminationGracePeriodSeconds).toBe(30);
    expect(pod?.containers.map((c) => c.name)).toEqual([RUNNER_CONTAINER]);
    expect(RUNNER_CONTAINER).toBe("runner");
  });

  it("runs the runner image with the given command and resources", () => {
    const c = container();
    expect([c.image, c.imagePullPolicy, c.command, c.resources]).toEqual([INPUT.runnerImage, "IfNotPresent", INPUT.command, INPUT.resources]);
  });

  it("runs unprivileged: non-root, no privilege escalation, read-only root, no capabilities, default seccomp", () => {
    expect(job.spec?.template.spec?.securityContext).toEqual({
      runAsNonRoot: true,
      runAsUser: 1000,
      runAsGroup: 1000,
      fsGroup: 1000,
      seccompProfile: { type: "RuntimeDefault" },
    });
    expect(container().securityContext).toEqual({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ["ALL"] } });
  });

  it("writes only to two size-limited scratch volumes", () => {
    expect(job.spec?.template.spec?.volumes).toEqual([
      { name: "work", emptyDir: { sizeLimit: String(2 * 512 * MiB + 256 * MiB) } },
      { name: "tmp", emptyDir: { sizeLimit: "256Mi" } },
    ]);
    expect(container().volumeMounts).toEqual([
      { name: "work", mountPath: "/work" },
      { name: "tmp", mountPath: "/tmp" },
    ]);
  });
});

describe("runnerJob args", () => {
  it("passes the repository, the commit, the image, the limits and the pins", () => {
    expect(container().args).toEqual([
      "--repo",
      INPUT.repoUrl,
      "--ref",
      COMMIT,
      "--image",
      INPUT.imageName,
      "--max-repo-bytes",
      String(512 * MiB),
      "--user-name",
      "jovyan",
      "--user-id",
      "1000",
      "--workdir",
      "/work",
      "--resolve",
      "github.com:443:140.82.121.3",
      "--resolve",
      "github.com:443:[2606:50c0:8000::154]",
    ]);
  });

  it.each<[Partial<RunnerJobInput>, string[]]>([
    [{ resolve: [] }, []],
    [{ resolve: ["git.internal:8080:10.0.0.7"] }, ["--resolve", "git.internal:8080:10.0.0.7"]],
  ])("pins %j", (input, pins) => {
    expect(container(input).args?.slice(14)).toEqual(pins);
  });

  it("keeps every value one argument, whatever it holds", () => {
    const repoUrl = "https://example.org/a repo;$(rm -rf /)";
    const args = container({ repoUrl, userName: "user name", userId: 1234, maxRepoBytes: 1 }).args ?? [];
    expect(args.slice(0, 14)).toEqual(["--repo", repoUrl, "--ref", COMMIT, "--image", INPUT.imageName, "--max-repo-bytes", "1", "--user-name", "user name", "--user-id", "1234", "--workdir", "/work"]);
  });
});

describe("runnerJob env", () => {
  it.each<[Record<string, string>, Array<[string, string]>]>([
    [{}, []],
    [
      { KCE_BUILDER: "buildkit", A_FIRST: "1", KCE_REGISTRY: "registry:5000" },
      [
        ["A_FIRST", "1"],
        ["KCE_BUILDER", "buildkit"],
        ["KCE_REGISTRY", "registry:5000"],
      ],
    ],
    // the runner's own variables cannot be replaced
    [{ HOME: "/root", TMPDIR: "/var/tmp", KCE_NAMESPACE: "other", KCE_TIMEOUT: "5" }, [["KCE_TIMEOUT", "5"]]],
  ])("%j", (env, extra) => {
    expect(container({ env }).env).toEqual([
      { name: "KCE_NAMESPACE", valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } },
      { name: "HOME", value: "/work" },
      { name: "TMPDIR", value: "/work/tmp" },
      ...extra.map(([name, value]) => ({ name, value })),
    ]);
  });
});

describe("workVolumeBytes", () => {
  it.each([
    [0, 256 * MiB],
    [1, 2 + 256 * MiB],
    [1024 * MiB, 2048 * MiB + 256 * MiB],
  ])("%d → %d", (maxRepoBytes, bytes) => {
    expect(workVolumeBytes(maxRepoBytes)).toBe(bytes);
  });
});

describe("jobPodSelector", () => {
  it.each([
    ["build-a-1", "kube-container-engine/build=build-a-1"],
    [INPUT.name, `kube-container-engine/build=${INPUT.name}`],
  ])("%s → %s", (name, selector) => {
    expect(jobPodSelector(name)).toBe(selector);
  });
});
