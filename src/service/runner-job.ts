/**
 * The build runner's objects (pure): repo2docker, unmodified, with `--engine kubernetes`, in a pod of its own,
 * as BinderHub runs it — so a build outlives the service pod that started it, and the repository is fetched
 * in that pod, never in the service. A build is a Job named after the build (repository + commit): a second
 * request for the same build gets 409 on create and joins the running one. Its pods are selected by the
 * build label, so the Job also adopts a warm spare runner claimed for it (a bare pod started ahead of demand
 * that waits for its assignment; the claim labels it and hands it the arguments in one update).
 */
import type { V1EnvVar, V1Job, V1Pod, V1PodSpec, V1ResourceRequirements } from "@kubernetes/client-node";
import { engineAnnotations, engineLabels, LABEL_ROLE } from "../pods/labels.js";

export const RUNNER_CONTAINER = "runner";

/** Annotations that let a restarted service (or another replica) take over a build from its Job alone. */
export const ANNOTATION_REPOSITORY = "kube-container-engine/repository";
export const ANNOTATION_COMMIT = "kube-container-engine/commit";
/** The label that ties a runner pod to its build (the Job's selector). */
export const LABEL_BUILD = "kube-container-engine/build";
/** On a spare: the runner arguments of its build (a JSON list), set when it is claimed. */
export const ANNOTATION_ASSIGNMENT = "kube-container-engine/assignment";

/** The label selector of a build's runner pod(s). */
export function jobPodSelector(buildName: string): string {
  return `${LABEL_BUILD}=${buildName}`;
}

/** How runner pods run, whatever they build. */
export interface RunnerPodSettings {
  namespace: string;
  /** The image with Python, repo2docker, the adapter and kce (by default the service's own). */
  runnerImage: string;
  /** argv of the runner before its options, e.g. ["/usr/bin/tini", "--", "python", "-m", "repo2docker_kce.runner"]. */
  command: string[];
  serviceAccountName: string;
  /** Environment for the engine in the runner (KCE_* settings). */
  env: Record<string, string>;
  resources: V1ResourceRequirements;
  /** Sizes the scratch volume (see {@link workVolumeBytes}). */
  maxRepoBytes: number;
  /** The service's engine instance id (label). */
  instance: string;
  createdAt: Date;
}

/** What one build is. */
export interface RunnerBuild {
  /** The build's name (BinderHub's build name: a DNS label). */
  name: string;
  repoUrl: string;
  commit: string;
  /** The image to build, with its registry host. */
  imageName: string;
  /** `host:port:address` pins from the URL check. */
  resolve: string[];
  /** repo2docker's `--user-name` / `--user-id`. */
  userName: string;
  userId: number;
}

export interface RunnerJobInput extends RunnerPodSettings, RunnerBuild {
  /** Server-side limit of the whole build, s. */
  deadlineSeconds: number;
  ttlSecondsAfterFinished: number;
}

/** Bytes the runner's scratch volume may hold: the repository twice (checkout + the tar sent to the builder) and slack. */
export function workVolumeBytes(maxRepoBytes: number): number {
  return maxRepoBytes * 2 + 256 * 1024 * 1024;
}

/** The runner's arguments for one build (the Job's args, and a spare's assignment). */
export function runnerArgs(build: RunnerBuild, maxRepoBytes: number): string[] {
  return [
    "--repo",
    build.repoUrl,
    "--ref",
    build.commit,
    "--image",
    build.imageName,
    "--max-repo-bytes",
    String(maxRepoBytes),
    "--user-name",
    build.userName,
    "--user-id",
    String(build.userId),
    "--workdir",
    "/work",
    ...build.resolve.flatMap((r) => ["--resolve", r]),
  ];
}

function runnerPodSpec(settings: RunnerPodSettings, args: string[], extraEnv: V1EnvVar[] = []): V1PodSpec {
  const env: V1EnvVar[] = [
    { name: "KCE_NAMESPACE", valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } },
    { name: "HOME", value: "/work" },
    // The adapter spools the build context (the whole repository) into $TMPDIR: the work volume is sized for it.
    { name: "TMPDIR", value: "/work/tmp" },
    ...extraEnv,
    ...Object.entries(settings.env)
      .filter(([k]) => !["KCE_NAMESPACE", "HOME", "TMPDIR", "POD_NAME"].includes(k))
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([name, value]) => ({ name, value })),
  ];
  return {
    restartPolicy: "Never",
    serviceAccountName: settings.serviceAccountName,
    enableServiceLinks: false,
    // repo2docker forwards SIGTERM to its build, which deletes its builder: give it time to.
    terminationGracePeriodSeconds: 30,
    securityContext: {
      runAsNonRoot: true,
      runAsUser: 1000,
      runAsGroup: 1000,
      fsGroup: 1000,
      seccompProfile: { type: "RuntimeDefault" },
    },
    containers: [
      {
        name: RUNNER_CONTAINER,
        image: settings.runnerImage,
        imagePullPolicy: "IfNotPresent",
        command: settings.command,
        args,
        env,
        resources: settings.resources,
        securityContext: {
          allowPrivilegeEscalation: false,
          readOnlyRootFilesystem: true,
          capabilities: { drop: ["ALL"] },
        },
        volumeMounts: [
          { name: "work", mountPath: "/work" },
          { name: "tmp", mountPath: "/tmp" },
        ],
      },
    ],
    volumes: [
      { name: "work", emptyDir: { sizeLimit: String(workVolumeBytes(settings.maxRepoBytes)) } },
      { name: "tmp", emptyDir: { sizeLimit: "256Mi" } },
    ],
  };
}

function buildAnnotations(build: RunnerBuild): Record<string, string> {
  return { [ANNOTATION_REPOSITORY]: build.repoUrl, [ANNOTATION_COMMIT]: build.commit };
}

export function runnerJob(input: RunnerJobInput): V1Job {
  const labels = engineLabels({ instance: input.instance, role: "runner" });
  const annotations = { ...engineAnnotations({ createdAt: input.createdAt, image: input.imageName }), ...buildAnnotations(input) };
  return {
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: { name: input.name, namespace: input.namespace, labels, annotations },
    spec: {
      backoffLimit: 0,
      activeDeadlineSeconds: input.deadlineSeconds,
      ttlSecondsAfterFinished: input.ttlSecondsAfterFinished,
      // Selected by the build label, not the Job's generated one: a spare claimed for the build is adopted.
      manualSelector: true,
      selector: { matchLabels: { [LABEL_BUILD]: input.name } },
      template: {
        metadata: { labels: { ...labels, [LABEL_BUILD]: input.name }, annotations: buildAnnotations(input) },
        spec: runnerPodSpec(input, runnerArgs(input, input.maxRepoBytes)),
      },
    },
  };
}

export interface SparePodInput extends RunnerPodSettings {
  /** A unique name (e.g. `kce-runner-spare-<random>`). */
  name: string;
  /** The spare exits 0 when no build came within this many seconds. */
  maxWaitSeconds: number;
  /** A claimed spare runs a build: its server-side limit covers the wait and the longest build. */
  buildTimeoutSeconds: number;
}

/** A warm runner: started ahead of demand, it waits (silently) for the assignment of a build. */
export function sparePod(input: SparePodInput): V1Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name: input.name,
      namespace: input.namespace,
      labels: engineLabels({ instance: input.instance, role: "spare" }),
      annotations: engineAnnotations({ createdAt: input.createdAt }),
    },
    spec: {
      ...runnerPodSpec(input, ["--wait-for-assignment", "--max-wait", String(input.maxWaitSeconds)], [
        { name: "POD_NAME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
      ]),
      activeDeadlineSeconds: input.maxWaitSeconds + input.buildTimeoutSeconds + 60,
    },
  };
}

/**
 * The merge patch that claims a spare for a build: it becomes that build's runner (labels the Job selects,
 * the build's annotations) and gets its arguments. `resourceVersion` makes it fail with 409 when another
 * claim (or any change) came first.
 */
export function claimPatch(spare: V1Pod, build: RunnerBuild, args: string[]): object {
  return {
    metadata: {
      resourceVersion: spare.metadata?.resourceVersion,
      labels: { [LABEL_ROLE]: "runner", [LABEL_BUILD]: build.name },
      annotations: { ...buildAnnotations(build), [ANNOTATION_ASSIGNMENT]: JSON.stringify(args) },
    },
  };
}
