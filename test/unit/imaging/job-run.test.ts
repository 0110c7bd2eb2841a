// The builder Job run's decisions against the fake cluster (which pod and container get the context, which
// lines are yielded, what a deleted pod, a failed builder, a refused upload, an API outage or an abort become),
// and blameUpload's reading of a builder's last lines.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import type { CoreV1Event, V1Job, V1Pod } from "@kubernetes/client-node";
import { afterEach, describe, expect, it, vi } from "vitest";
import { BUILDER_CONTAINER } from "../../../src/imaging/builder-spec.js";
import { createBuildContext, type BuildContext } from "../../../src/imaging/context.js";
import { blameUpload, JobRunner, LOG_TAIL_LINES, type JobOutcome, type JobRunInput } from "../../../src/imaging/job-run.js";
import { BuilderJobs } from "../../../src/imaging/jobs.js";
import { resolveEngineConfig } from "../../../src/config.js";
import type { BuildProgress } from "../../../src/contract.js";
import { BuildError, CancelledError, KubernetesApiError } from "../../../src/errors.js";
import { apiError, FakeCluster, jobPod } from "../../support/fake-cluster.js";

describe("blameUpload", () => {
  it("blames the upload when the builder said nothing of its own", () => {
    expect(blameUpload([])).toBe(true);
    expect(blameUpload(["kce: receiving the build context"])).toBe(true);
  });

  it("blames the upload when the builder's error is about the archive", () => {
    expect(blameUpload(['time="x" level=fatal msg="error building image: unexpected EOF"'])).toBe(true);
    expect(blameUpload(["tar: short read", "error: gzip: invalid header"])).toBe(true);
  });

  it("keeps the builder's own failure (a failing RUN) when the session merely closed late", () => {
    expect(
      blameUpload([
        "about-to-fail",
        "error building image: error building stage: failed to execute command: waiting for process to exit: exit status 3",
      ]),
    ).toBe(false);
    expect(blameUpload(["#6 ERROR: process \"/bin/sh -c exit 3\" did not complete successfully: exit code: 3"])).toBe(false);
  });
});

describe("blameUpload with Kaniko's bare top-level errors", () => {
  it("keeps a refused push as the builder's failure", () => {
    expect(
      blameUpload([
        'time="x" level=info msg="To simulate EOF and exit, press \'Ctrl+D\'"',
        'error checking push permissions -- make sure you entered the correct tag name, and that you are authenticated correctly, and try again: checking push permission for "h:5001/x:1": POST http://h:5001/v2/x/blobs/uploads/: UNAUTHORIZED: authentication required',
      ]),
    ).toBe(false);
  });
});

// ---- the Job run's decisions, against the fake cluster ----------------------------------------------------

const JOB = "kce-build-demo-1234";
const POD = `${JOB}-pod`;
const IMAGE = "registry:5000/demo:1";
const DIGEST = `sha256:${"a".repeat(64)}`;
const config = resolveEngineConfig({ instanceId: "t1", contextCompression: "none" }, {});

let dir: string | null = null;
afterEach(() => {
  vi.useRealTimers();
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = null;
});

async function context(): Promise<BuildContext> {
  dir = mkdtempSync(join(tmpdir(), "kce-job-run-test-"));
  writeFileSync(join(dir, "Dockerfile"), "FROM scratch\nLABEL job-run-test=1\n");
  return createBuildContext({ path: dir });
}

/** A fake cluster holding the builder Job, and a runner over it. */
async function setup(): Promise<{ fake: FakeCluster; runner: JobRunner; job: V1Job }> {
  const fake = new FakeCluster();
  const job = await fake.jobs.create({
    metadata: { name: JOB },
    spec: { selector: { matchLabels: { "batch.kubernetes.io/job-name": JOB } }, template: { spec: { containers: [] } } },
  });
  return { fake, runner: new JobRunner({ api: fake, config, jobs: new BuilderJobs(fake) }), job };
}

/** The builder pod terminated with `exitCode`, its termination log holding `message`. */
function terminated(exitCode: number, message?: string): V1Pod {
  const pod = jobPod(JOB, BUILDER_CONTAINER, { exitCode });
  const state = pod.status?.containerStatuses?.[0]?.state?.terminated;
  if (state && message !== undefined) state.message = message;
  return pod;
}

/** Plays a builder that, once it read its stdin, prints `lines` and exits with `exitCode`. */
function builderPrintsAndExits(fake: FakeCluster, lines: string[], exitCode: number, message?: string): void {
  fake.onStdinClosed = ({ pod }) => {
    fake.appendLog(pod, ...lines);
    fake.putPod(terminated(exitCode, message));
    fake.endLog(pod);
  };
}

interface Ran {
  lines: string[];
  outcome: JobOutcome | null;
  error: unknown;
}

/** Runs the generator to its end: the lines it yielded, and its outcome or error. */
async function drain(run: AsyncGenerator<string, JobOutcome>): Promise<Ran> {
  const lines: string[] = [];
  try {
    for (;;) {
      const step = await run.next();
      if (step.done) return { lines, outcome: step.value, error: null };
      lines.push(step.value);
    }
  } catch (error) {
    return { lines, outcome: null, error };
  }
}

/** Waits (without timers, which some tests fake) until `check` holds. */
async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 2000 && !check(); i++) await new Promise((r) => setImmediate(r));
  expect(check()).toBe(true);
}

function input(job: V1Job, extra: Partial<JobRunInput> = {}): JobRunInput {
  return { job, context: null, image: IMAGE, progress: () => undefined, signal: undefined, ...extra };
}

describe("JobRunner.run", () => {
  it("streams the context into the builder container of the Job's pod, yields its lines in order, returns the digest", async () => {
    const { fake, runner, job } = await setup();
    fake.putPod(jobPod(JOB, BUILDER_CONTAINER, "running"));
    builderPrintsAndExits(fake, ["INFO step 1/2", "INFO step 2/2", "INFO pushed"], 0, DIGEST);
    const phases: string[] = [];
    const progress = (p: BuildProgress): void => void (p.kind === "phase" && phases.push(p.message));

    const ran = await drain(runner.run(input(job, { context: await context(), progress })));

    expect(ran.error).toBeNull();
    expect(ran.lines).toEqual(["INFO step 1/2\n", "INFO step 2/2\n", "INFO pushed\n"]);
    expect(ran.outcome).toEqual({ pod: POD, digest: DIGEST });
    expect(phases).toEqual([`builder pod ${POD} started`]);
    expect(fake.stdin.map((d) => [d.pod, d.container])).toEqual([[POD, BUILDER_CONTAINER]]);
    const tar = gunzipSync(fake.stdin[0]?.bytes ?? Buffer.alloc(0)).toString("latin1");
    expect(tar).toContain("Dockerfile");
    expect(tar).toContain("LABEL job-run-test=1");
    // Nothing is created or deleted here: the Job is the caller's.
    expect(fake.calls.filter((c) => /^(create|delete) /.test(c))).toEqual([`create jobs/${JOB}`]);
  });

  it("joining (no context): follows the same pod and sends nothing", async () => {
    const { fake, runner, job } = await setup();
    fake.putPod(terminated(0, DIGEST));
    fake.appendLog(POD, "built by its creator");
    fake.endLog(POD);

    const ran = await drain(runner.run(input(job)));

    expect(ran.outcome).toEqual({ pod: POD, digest: DIGEST });
    expect(ran.lines).toEqual(["built by its creator\n"]);
    expect(fake.calls.some((c) => c.startsWith("attach "))).toBe(false);
    expect(fake.stdin).toEqual([]);
  });

  it("a pod deleted after its output but before it reported a result is a BuildError 'deleted'", async () => {
    const { fake, runner, job } = await setup();
    fake.putPod(jobPod(JOB, BUILDER_CONTAINER, "running"));
    fake.onStdinClosed = ({ pod }) => {
      fake.appendLog(pod, "half-way");
      fake.remove("pods", pod);
    };

    const ran = await drain(runner.run(input(job, { context: await context() })));

    expect(ran.lines).toEqual(["half-way\n"]);
    expect(ran.error).toBeInstanceOf(BuildError);
    expect(ran.error).toMatchObject({ reason: "deleted" });
    expect(String(ran.error)).toContain(`the builder pod ${POD} of job ${JOB} was deleted before it reported a result`);
  });

  it("a pod deleted before its container started is a BuildError 'deleted'", async () => {
    const { fake, runner, job } = await setup();
    fake.putPod(jobPod(JOB, BUILDER_CONTAINER, "waiting"));
    const running = drain(runner.run(input(job, { context: await context() })));
    await until(() => fake.calls.includes("watch pods"));
    fake.remove("pods", POD);

    const ran = await running;

    expect(ran.error).toBeInstanceOf(BuildError);
    expect(ran.error).toMatchObject({ reason: "deleted" });
    expect(String(ran.error)).toContain(`the builder pod of job ${JOB} was deleted before it started`);
    expect(fake.calls.some((c) => c.startsWith("attach "))).toBe(false);
  });

  it("a failed builder is a BuildError with its exit code and its last lines", async () => {
    const { fake, runner, job } = await setup();
    fake.putPod(jobPod(JOB, BUILDER_CONTAINER, "running"));
    const output = Array.from({ length: 24 }, (_, i) => `INFO line ${i + 1}`);
    output.push("error building image: error building stage: failed to execute command: waiting for process to exit: exit status 3");
    builderPrintsAndExits(fake, output, 3);

    const ran = await drain(runner.run(input(job, { context: await context() })));

    expect(ran.lines).toHaveLength(25);
    expect(ran.error).toBeInstanceOf(BuildError);
    const error = ran.error as BuildError;
    expect(error).toMatchObject({ reason: "failed", exitCode: 3 });
    expect(error.message).toMatch(/^build failed: .*exit status 3/);
    expect(error.message).toContain("--- last builder output ---");
    expect(error.logTail).toHaveLength(LOG_TAIL_LINES);
    expect(error.logTail.at(-1)).toMatch(/exit status 3$/);
    expect(error.logTail).not.toContain("INFO line 1");
  });

  it("a transient failure (503) of the final pod read is retried", async () => {
    const { fake, runner, job } = await setup();
    fake.putPod(jobPod(JOB, BUILDER_CONTAINER, "running"));
    builderPrintsAndExits(fake, ["done"], 0, DIGEST);
    fake.failNext("get", "pods", apiError("get", "pods", 503, "ServiceUnavailable"), 2);

    const ran = await drain(runner.run(input(job, { context: await context() })));

    expect(ran.error).toBeNull();
    expect(ran.outcome).toEqual({ pod: POD, digest: DIGEST });
    expect(fake.calls.filter((c) => c === `get pods/${POD}`)).toHaveLength(3);
  });

  it("a lasting failure (403) of the final pod read is not retried: a BuildError 'failed' naming it", async () => {
    const { fake, runner, job } = await setup();
    fake.putPod(jobPod(JOB, BUILDER_CONTAINER, "running"));
    builderPrintsAndExits(fake, ["done"], 0, DIGEST);
    fake.failNext("get", "pods", apiError("get", "pods", 403, "Forbidden"));

    const ran = await drain(runner.run(input(job, { context: await context() })));

    expect(ran.error).toBeInstanceOf(BuildError);
    expect(ran.error).toMatchObject({ reason: "failed", message: `build of ${IMAGE} failed: get pods: Forbidden` });
    expect((ran.error as BuildError).cause).toBeInstanceOf(KubernetesApiError);
    expect(fake.calls.filter((c) => c === `get pods/${POD}`)).toHaveLength(1);
  });

  it("aborted mid-build: CancelledError saying the builder is deleted, and no further calls", async () => {
    const { fake, runner, job } = await setup();
    fake.putPod(jobPod(JOB, BUILDER_CONTAINER, "running"));
    const ctrl = new AbortController();
    fake.onStdinClosed = ({ pod }) => {
      fake.appendLog(pod, "working");
      setImmediate(() => ctrl.abort());
    };

    const ran = await drain(runner.run(input(job, { context: await context(), signal: ctrl.signal })));

    expect(ran.error).toBeInstanceOf(CancelledError);
    expect(String(ran.error)).toContain(`build of ${IMAGE} cancelled; the builder was deleted`);
    expect(fake.calls.some((c) => c.startsWith("get pods/"))).toBe(false);
  });

  it("aborted while joining: CancelledError saying the shared builder keeps running", async () => {
    const { fake, runner, job } = await setup();
    fake.putPod(jobPod(JOB, BUILDER_CONTAINER, "running"));
    const ctrl = new AbortController();
    const running = drain(runner.run(input(job, { signal: ctrl.signal })));
    await until(() => fake.calls.includes(`follow pods/${POD}/log`));
    ctrl.abort();

    const ran = await running;

    expect(ran.error).toBeInstanceOf(CancelledError);
    expect(String(ran.error)).toContain("(the shared builder keeps running for its creator)");
  });

  it("a refused upload with a builder that then fails on the truncated archive is a BuildError 'upload'", async () => {
    const { fake, runner, job } = await setup();
    fake.putPod(jobPod(JOB, BUILDER_CONTAINER, "running"));
    fake.failNext("attach", "pods", apiError("create", "pods/attach", 500, "InternalError"));
    const running = drain(runner.run(input(job, { context: await context() })));
    await until(() => fake.calls.includes(`attach pods/${POD}`));
    fake.appendLog(POD, "error: unexpected EOF while reading the build context");
    fake.putPod(terminated(1));
    fake.endLog(POD);

    const ran = await running;

    expect(ran.error).toBeInstanceOf(BuildError);
    expect(ran.error).toMatchObject({ reason: "upload", exitCode: 1 });
    expect(String(ran.error)).toContain("the build context could not be delivered: ");
  });

  it("a refused upload with a builder that keeps waiting: stops following after the grace, BuildError 'upload'", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    const { fake, runner, job } = await setup();
    fake.putPod(jobPod(JOB, BUILDER_CONTAINER, "running"));
    fake.failNext("attach", "pods", apiError("create", "pods/attach", 500, "InternalError"));
    const running = drain(runner.run(input(job, { context: await context() })));
    await until(() => fake.calls.includes(`attach pods/${POD}`));
    await vi.advanceTimersByTimeAsync(10_000);

    const ran = await running;

    expect(ran.error).toBeInstanceOf(BuildError);
    expect(ran.error).toMatchObject({ reason: "upload" });
    expect(String(ran.error)).toContain("the build context could not be delivered to the builder: ");
  });

  it("a pod that does not appear: the Job's FailedCreate event is the BuildError; a Pod's event of that name is not", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    const { fake, runner, job } = await setup();
    const event = (kind: string, message: string): CoreV1Event => ({
      metadata: {},
      involvedObject: { kind, name: JOB },
      reason: "FailedCreate",
      message,
    });
    fake.events = [event("Pod", "not about the Job")];
    const running = drain(runner.run(input(job, { context: await context() })));
    await until(() => fake.calls.includes("watch pods"));
    await vi.advanceTimersByTimeAsync(5_000);
    await until(() => fake.calls.includes(`get jobs/${JOB}`));
    fake.events.push(event("Job", 'pods "kce-build-demo-1234-x" is forbidden: exceeded quota'));
    await vi.advanceTimersByTimeAsync(5_000);

    const ran = await running;

    expect(ran.error).toBeInstanceOf(BuildError);
    expect(ran.error).toMatchObject({ reason: "failed" });
    expect(String(ran.error)).toContain('the cluster refused to create the builder pod: pods "kce-build-demo-1234-x" is forbidden: exceeded quota');
  });

  it("a pod that does not appear and a Job deleted meanwhile: BuildError 'deleted'", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    const { fake, runner, job } = await setup();
    const running = drain(runner.run(input(job, { context: await context() })));
    await until(() => fake.calls.includes("watch pods"));
    fake.remove("jobs", JOB);
    await vi.advanceTimersByTimeAsync(5_000);

    const ran = await running;

    expect(ran.error).toBeInstanceOf(BuildError);
    expect(ran.error).toMatchObject({ reason: "deleted" });
    expect(String(ran.error)).toContain(`the builder job ${JOB} was deleted before its pod started`);
  });
});
