/**
 * Plays the Job controller, the kubelet and the builder container on a {@link FakeCluster}: a created builder
 * Job gets a running pod; once the context arrived on its stdin, the builder "builds" (the test's `onBuilt`
 * pushes to a fake registry), prints its lines and exits, writing the digest to its termination log.
 */
import type { V1Job, V1Pod } from "@kubernetes/client-node";
import { BUILDER_CONTAINER } from "../../../src/imaging/builder-spec.js";
import { type FakeCluster, jobPod } from "../../support/fake-cluster.js";

export interface BuilderScript {
  /** What the builder prints once it read its context. */
  lines?: string[];
  /** Its exit code (default 0). */
  exitCode?: number;
  /** What it writes to its termination log (a digest); none by default. */
  terminationMessage?: string;
  /** Called with its Job and the context it read, before it prints and exits. */
  onBuilt?: (job: V1Job, context: Buffer) => void;
  /** Wait for `finish()` after the context arrived instead of exiting at once. */
  hold?: boolean;
}

export interface PlayedBuilder {
  /** Lets held builders print and exit. */
  finish(): void;
}

/** The builder pod of `jobName` terminated with `exitCode`. */
export function terminatedBuilder(jobName: string, exitCode: number, terminationMessage?: string): V1Pod {
  const pod = jobPod(jobName, BUILDER_CONTAINER, { exitCode });
  const terminated = pod.status?.containerStatuses?.[0]?.state?.terminated;
  if (terminated && terminationMessage !== undefined) terminated.message = terminationMessage;
  return pod;
}

export function playBuilder(fake: FakeCluster, script: BuilderScript = {}): PlayedBuilder {
  const jobOfPod = new Map<string, string>();
  const held: Array<() => void> = [];
  fake.onJobCreated = (job) => {
    const name = job.metadata?.name ?? "";
    const pod = jobPod(name, BUILDER_CONTAINER, "running");
    jobOfPod.set(pod.metadata?.name ?? "", name);
    queueMicrotask(() => fake.putPod(pod));
  };
  fake.onStdinClosed = ({ pod, bytes }) => {
    const jobName = jobOfPod.get(pod) ?? "";
    const exit = (): void => {
      const job = fake.peek("jobs", jobName);
      if (!job) return; // deleted meanwhile (the build was cancelled)
      script.onBuilt?.(job, bytes);
      fake.appendLog(pod, ...(script.lines ?? []));
      fake.putPod(terminatedBuilder(jobName, script.exitCode ?? 0, script.terminationMessage));
      fake.endLog(pod);
    };
    if (script.hold) held.push(exit);
    else exit();
  };
  return {
    finish: () => {
      for (const exit of held.splice(0)) exit();
    },
  };
}
