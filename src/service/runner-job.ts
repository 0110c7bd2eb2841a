/**
 * The build runner's Job (pure): repo2docker, unmodified, with `--engine kubernetes`, in a pod of its own, as
 * BinderHub runs it — so a build outlives the service pod that started it, and the repository is fetched in
 * that pod, never in the service. Named after the build (repository + commit): a second request for the same
 * build gets 409 on create and joins the running one.
 */
import type { V1EnvVar, V1Job, V1ResourceRequirements } from "@kubernetes/client-node";
import { engineAnnotations, engineLabels } from "../pods/labels.js";

export const RUNNER_CONTAINER = "runner";

/** Annotations that let a restarted service (or another replica) take over a build from its Job alone. */
export const ANNOTATION_REPOSITORY = "kube-container-engine/repository";
export const ANNOTATION_COMMIT = "kube-container-engine/commit";

/** The label selector of a Job's pods (set by the Job controller). */
export function jobPodSelector(jobName: string): string {
  return `batch.kubernetes.io/job-name=${jobName}`;
}

export interface RunnerJobInput {
  /** The build's name (BinderHub's build name: a DNS label). */
  name: string;
  namespace: string;
  /** The image with Python, repo2docker, the adapter and kce (by default the service's own). */
  runnerImage: string;
  /** argv of the runner before its options, e.g. ["/usr/bin/tini", "--", "python", "-m", "repo2docker_kce.runner"]. */
  command: string[];
  repoUrl: string;
  commit: string;
  /** The image to build, with its registry host. */
  imageName: string;
  /** `host:port:address` pins from the URL check. */
  resolve: string[];
  maxRepoBytes: number;
  /** Server-side limit of the whole build, s. */
  deadlineSeconds: number;
  ttlSecondsAfterFinished: number;
  serviceAccountName: string;
  /** repo2docker's `--user-name` / `--user-id`. */
  userName: string;
  userId: number;
  /** Environment for the engine in the runner (KCE_* settings). */
  env: Record<string, string>;
  resources: V1ResourceRequirements;
  /** The service's engine instance id (label). */
  instance: string;
  createdAt: Date;
}

/** Bytes the runner's scratch volume may hold: the repository twice (checkout + the tar sent to the builder) and slack. */
export function workVolumeBytes(maxRepoBytes: number): number {
  return maxRepoBytes * 2 + 256 * 1024 * 1024;
}

export function runnerJob(input: RunnerJobInput): V1Job {
  const labels = engineLabels({ instance: input.instance, role: "runner" });
  const annotations = {
    ...engineAnnotations({ createdAt: input.createdAt, image: input.imageName }),
    [ANNOTATION_REPOSITORY]: input.repoUrl,
    [ANNOTATION_COMMIT]: input.commit,
  };
  const args = [
    "--repo",
    input.repoUrl,
    "--ref",
    input.commit,
    "--image",
    input.imageName,
    "--max-repo-bytes",
    String(input.maxRepoBytes),
    "--user-name",
    input.userName,
    "--user-id",
    String(input.userId),
    "--workdir",
    "/work",
    ...input.resolve.flatMap((r) => ["--resolve", r]),
  ];
  const env: V1EnvVar[] = [
    { name: "KCE_NAMESPACE", valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } },
    { name: "HOME", value: "/work" },
    // The adapter spools the build context (the whole repository) into $TMPDIR: the work volume is sized for it.
    { name: "TMPDIR", value: "/work/tmp" },
    ...Object.entries(input.env)
      .filter(([k]) => !["KCE_NAMESPACE", "HOME", "TMPDIR"].includes(k))
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([name, value]) => ({ name, value })),
  ];
  return {
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: { name: input.name, namespace: input.namespace, labels, annotations },
    spec: {
      backoffLimit: 0,
      activeDeadlineSeconds: input.deadlineSeconds,
      ttlSecondsAfterFinished: input.ttlSecondsAfterFinished,
      template: {
        metadata: { labels, annotations: { [ANNOTATION_REPOSITORY]: input.repoUrl, [ANNOTATION_COMMIT]: input.commit } },
        spec: {
          restartPolicy: "Never",
          serviceAccountName: input.serviceAccountName,
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
              image: input.runnerImage,
              imagePullPolicy: "IfNotPresent",
              command: input.command,
              args,
              env,
              resources: input.resources,
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
            { name: "work", emptyDir: { sizeLimit: String(workVolumeBytes(input.maxRepoBytes)) } },
            { name: "tmp", emptyDir: { sizeLimit: "256Mi" } },
          ],
        },
      },
    },
  };
}
