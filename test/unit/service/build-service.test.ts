// The build service's decisions against a fake cluster: when a build starts a runner Job, when it joins one,
// what a reconnect gets, what is refused before any pod, and what the queue and the token limits do.
import type { V1Job } from "@kubernetes/client-node";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { BuildService, parseEventId, type BuildRequest, type ServiceEvent } from "../../../src/service/build-service.js";
import { resolveServiceConfig, type ServiceConfig } from "../../../src/service/config.js";
import type { RefResolver } from "../../../src/service/git-refs.js";
import { buildName, imageName, serverName } from "../../../src/service/naming.js";
import { RUNNER_CONTAINER } from "../../../src/service/runner-job.js";
import { ServiceMetrics } from "../../../src/service/service-metrics.js";
import { SparePool } from "../../../src/service/spare-runners.js";
import { HubClient } from "../../../src/service/hub.js";
import { FakeHub } from "../../support/fake-hub.js";
import { UrlChecker } from "../../../src/service/url-policy.js";
import { apiError, FakeCluster, jobPod } from "../../support/fake-cluster.js";

const COMMIT_A = "a".repeat(40);
const COMMIT_B = "b".repeat(40);
const REPO_A = "https://git.example.org/a.git";
const REPO_B = "https://git.example.org/b.git";
const SPEC_A = `${encodeURIComponent(REPO_A)}/main`;
const SPEC_B = `${encodeURIComponent(REPO_B)}/main`;
const NAME_A = buildName(REPO_A, COMMIT_A);

interface Harness {
  cluster: FakeCluster;
  service: BuildService;
  existing: Set<string>;
  metrics: ServiceMetrics;
}

function harness(overrides: Record<string, unknown> = {}, spares?: (cluster: FakeCluster) => SparePool, hub?: HubClient): Harness {
  const cluster = new FakeCluster();
  const existing = new Set<string>();
  const config: ServiceConfig = resolveServiceConfig({
    urls: { allowedHosts: ["git.example.org"] },
    runner: { image: "runner:1" },
    ...overrides,
  });
  const commits: Record<string, string> = { [`${REPO_A} main`]: COMMIT_A, [`${REPO_B} main`]: COMMIT_B };
  const resolveRef: RefResolver = async (repo, ref) => commits[`${repo.url} ${ref}`] ?? null;
  const metrics = new ServiceMetrics();
  const service = new BuildService({
    ...(spares ? { spares: spares(cluster) } : {}),
    ...(hub ? { hub } : {}),
    config,
    api: cluster,
    urls: new UrlChecker(config.urls, async () => ["203.0.113.7"]),
    resolveRef,
    imageExists: async (image) => existing.has(image),
    registryHost: async () => "reg.example:5000",
    runnerImage: async () => "runner:1",
    runnerEnv: { KCE_BUILDER: "kaniko" },
    instance: "svc-test",
    metrics,
    graces: { pullGraceSeconds: 30, unschedulableGraceSeconds: 60 },
    log: () => undefined,
  });
  return { cluster, service, existing, metrics };
}

const requests: AbortController[] = [];
afterEach(() => {
  for (const r of requests.splice(0)) r.abort();
});

function request(spec: string, extra: Partial<BuildRequest> = {}): BuildRequest {
  const ctrl = new AbortController();
  requests.push(ctrl);
  return { provider: "git", spec, buildOnly: true, lastEventId: null, identity: { kind: "token", name: "t1" }, signal: ctrl.signal, ...extra };
}

async function collect(events: AsyncIterable<ServiceEvent>, until?: (e: ServiceEvent) => boolean): Promise<ServiceEvent[]> {
  const out: ServiceEvent[] = [];
  for await (const e of events) {
    out.push(e);
    if (until?.(e)) break;
  }
  return out;
}

/** Plays the Job controller and the kubelet: the runner starts, prints `lines`, exits with `exitCode`. */
function runnerPlays(cluster: FakeCluster, lines: string[], exitCode = 0, hold?: Promise<void>): void {
  cluster.onJobCreated = (job: V1Job) => {
    const name = job.metadata?.name ?? "";
    void (async () => {
      cluster.putPod(jobPod(name, RUNNER_CONTAINER, "running"));
      const [first, ...rest] = lines;
      if (first !== undefined) cluster.appendLog(`${name}-pod`, first);
      await hold;
      cluster.appendLog(`${name}-pod`, ...rest);
      cluster.putPod(jobPod(name, RUNNER_CONTAINER, { exitCode }));
      cluster.endLog(`${name}-pod`);
      cluster.setJobStatus(name, { conditions: [{ type: exitCode === 0 ? "Complete" : "Failed", status: "True" }] });
    })();
  };
}

const LINES = [
  '{"phase":"fetching","message":"Fetching repo\\n"}',
  '{"message":"Picked Git content provider.\\n"}',
  '{"phase":"building","message":"Step 1/2 : FROM base\\n"}',
  "not json at all",
];

describe("BuildService", () => {
  it("answers an image that exists with ready at once and creates nothing", async () => {
    const h = harness();
    const image = imageName("reg.example:5000/binder/", REPO_A, COMMIT_A);
    h.existing.add(image);
    const events = await collect(h.service.build(request(SPEC_A)));
    expect(events.map((e) => e.data)).toEqual([{ phase: "ready", imageName: image, message: "Done! Found built image\n" }]);
    expect(h.cluster.calls.filter((c) => c.startsWith("create"))).toEqual([]);
  });

  it("builds: waiting, the runner's lines as they are, then ready with the image name", async () => {
    const h = harness();
    runnerPlays(h.cluster, LINES);
    const events = await collect(h.service.build(request(SPEC_A)));
    expect(events[0]?.data).toEqual({ phase: "waiting", message: "Waiting for build to start...\n" });
    expect(events.slice(1, 5).map((e) => e.data)).toEqual([
      { phase: "fetching", message: "Fetching repo\n" },
      { message: "Picked Git content provider.\n" },
      { phase: "building", message: "Step 1/2 : FROM base\n" },
      { message: "not json at all\n" },
    ]);
    expect(events.slice(1).map((e) => e.id)).toEqual([0, 1, 2, 3, 4].map((p) => `${NAME_A}/${p}`));
    expect(events.at(-1)?.data).toMatchObject({ phase: "ready", message: "Done! Image built\n" });
    expect(String(events.at(-1)?.data.imageName)).toMatch(/^reg\.example:5000\/binder\/.*:a{40}$/);
    expect(h.cluster.calls.filter((c) => c.startsWith("create"))).toEqual([`create jobs/${NAME_A}`]);
    expect(h.metrics.builds.get({ outcome: "success" })).toBe(1);
  });

  it("gives the runner Job the build's name, the checked URL, the commit and the address pins", async () => {
    const h = harness();
    let created: V1Job | null = null;
    h.cluster.onJobCreated = (job) => (created = job);
    const events = h.service.build(request(SPEC_A));
    await collect(events, (e) => e.data.phase === "waiting");
    await waitUntil(() => created !== null);
    const args = (created as V1Job | null)?.spec?.template.spec?.containers[0]?.args ?? [];
    expect(args).toEqual(expect.arrayContaining(["--repo", REPO_A, "--ref", COMMIT_A, "--resolve", "git.example.org:443:203.0.113.7"]));
    expect((created as V1Job | null)?.metadata?.labels?.["kube-container-engine/role"]).toBe("runner");
  });

  it("joins: a second client of the same build gets the log so far and no second Job", async () => {
    const h = harness();
    let release!: () => void;
    const hold = new Promise<void>((r) => (release = r));
    runnerPlays(h.cluster, LINES, 0, hold);
    const first = collect(h.service.build(request(SPEC_A)));
    await waitUntil(() => h.cluster.calls.includes(`follow pods/${NAME_A}-pod/log`));
    const second = collect(h.service.build(request(SPEC_A)));
    release();
    const [a, b] = await Promise.all([first, second]);
    const log = (events: ServiceEvent[]): unknown[] => events.filter((e) => /\/\d+$/.test(e.id)).map((e) => e.data);
    expect(log(b)).toEqual(log(a));
    expect(h.cluster.calls.filter((c) => c.startsWith("create"))).toEqual([`create jobs/${NAME_A}`]);
    expect(b.at(-1)?.data.phase).toBe("ready");
  });

  it("two requests arriving together queue one build, not two", async () => {
    const h = harness();
    runnerPlays(h.cluster, LINES);
    const [a, b] = await Promise.all([collect(h.service.build(request(SPEC_A))), collect(h.service.build(request(SPEC_A)))]);
    expect(h.cluster.calls.filter((c) => c.startsWith("create jobs/"))).toHaveLength(1);
    for (const events of [a, b]) {
      expect(events.some((e) => e.data.position !== undefined)).toBe(false); // nobody waited for a slot
      expect(events.at(-1)?.data.phase).toBe("ready");
    }
  });

  it("resumes after Last-Event-ID: the rest of the log, nothing repeated, no new build", async () => {
    const h = harness();
    runnerPlays(h.cluster, LINES);
    const all = await collect(h.service.build(request(SPEC_A)));
    const again = await collect(h.service.build(request(SPEC_A, { lastEventId: `${NAME_A}/1` })));
    expect(again.map((e) => e.id)).toEqual([`${NAME_A}/2`, `${NAME_A}/3`, `${NAME_A}/4`]);
    expect(again.map((e) => e.data)).toEqual(all.slice(3).map((e) => e.data));
    expect(h.cluster.calls.filter((c) => c.startsWith("create"))).toHaveLength(1);
  });

  it("reports ready on the runner's success line once the image is in the registry, before the pod ends; the slot is held until it ends", async () => {
    const h = harness({ limits: { maxRunning: 1 } });
    const image = imageName("reg.example:5000/binder/", REPO_A, COMMIT_A);
    h.cluster.onJobCreated = (job) => {
      const name = job.metadata?.name ?? "";
      h.cluster.putPod(jobPod(name, RUNNER_CONTAINER, "running"));
      h.existing.add(image);
      h.cluster.appendLog(`${name}-pod`, LINES[0] as string, '{"kce_runner":"succeeded"}');
    };
    const events = await collect(h.service.build(request(SPEC_A)));
    expect(events.at(-1)?.data).toMatchObject({ phase: "ready", imageName: image });
    expect(events.some((e) => "kce_runner" in e.data)).toBe(false);
    // The pod still runs: a second build waits for the slot.
    const second: ServiceEvent[] = [];
    const done = (async () => {
      for await (const e of h.service.build(request(SPEC_B, { identity: { kind: "token", name: "t2" } }))) second.push(e);
    })();
    await waitUntil(() => second.some((e) => e.data.position === 1));
    expect(h.cluster.calls.filter((c) => c.startsWith("create jobs/"))).toHaveLength(1);
    runnerPlays(h.cluster, LINES);
    h.cluster.putPod(jobPod(NAME_A, RUNNER_CONTAINER, { exitCode: 0 }));
    await done;
    expect(second.at(-1)?.data.phase).toBe("ready");
  });

  it("does not trust the runner's success line without the image in the registry", async () => {
    const h = harness();
    h.cluster.onJobCreated = (job) => {
      const name = job.metadata?.name ?? "";
      h.cluster.putPod(jobPod(name, RUNNER_CONTAINER, "running"));
      h.cluster.appendLog(`${name}-pod`, '{"kce_runner":"succeeded"}');
      setTimeout(() => {
        h.cluster.putPod(jobPod(name, RUNNER_CONTAINER, { exitCode: 1 }));
        h.cluster.endLog(`${name}-pod`);
      }, 20);
    };
    const events = await collect(h.service.build(request(SPEC_A)));
    expect(events.at(-1)?.data.phase).toBe("failed");
  });

  it("answers a request after a finished build from the registry, not by replaying the build", async () => {
    const h = harness();
    runnerPlays(h.cluster, LINES);
    const first = await collect(h.service.build(request(SPEC_A)));
    h.existing.add(String(first.at(-1)?.data.imageName)); // what the runner pushed
    const second = await collect(h.service.build(request(SPEC_A)));
    expect(second.map((e) => e.data.message)).toEqual(["Done! Found built image\n"]);
  });

  it("builds again after a failed build in the same process", async () => {
    const h = harness();
    runnerPlays(h.cluster, ['{"phase":"failed","message":"boom\\n"}'], 1);
    expect((await collect(h.service.build(request(SPEC_A)))).at(-1)?.data.phase).toBe("failed");
    runnerPlays(h.cluster, LINES);
    expect((await collect(h.service.build(request(SPEC_A)))).at(-1)?.data.phase).toBe("ready");
    expect(h.cluster.calls.filter((c) => c === `create jobs/${NAME_A}`)).toHaveLength(2);
  });

  it("reports a failed build once, with the runner's verdict and last lines", async () => {
    const h = harness();
    runnerPlays(h.cluster, ['{"phase":"building","message":"RUN false\\n"}', '{"phase":"failed","message":"Error during build: exit 1\\n"}'], 1);
    const events = await collect(h.service.build(request(SPEC_A)));
    const last = events.at(-1)?.data;
    expect(last?.phase).toBe("failed");
    // The runner's verdict comes once, in the final event, above the build's last lines.
    expect(last?.message).toBe("Error during build: exit 1\n--- last lines of the build ---\nRUN false\n");
    expect(events.filter((e) => e.data.phase === "failed")).toHaveLength(1);
    expect(h.metrics.builds.get({ outcome: "failure" })).toBe(1);
  });

  it("says that a build hit its time limit (the Job's deadline)", async () => {
    const h = harness();
    h.cluster.onJobCreated = (job) => {
      const name = job.metadata?.name ?? "";
      void (async () => {
        h.cluster.putPod(jobPod(name, RUNNER_CONTAINER, "running"));
        h.cluster.appendLog(`${name}-pod`, '{"phase":"building","message":"RUN sleep 9999\\n"}');
        h.cluster.setJobStatus(name, {
          conditions: [{ type: "Failed", status: "True", reason: "DeadlineExceeded", message: "Job was active longer than specified deadline" }],
        });
        h.cluster.putPod(jobPod(name, RUNNER_CONTAINER, { exitCode: 137, reason: "Error" }));
        h.cluster.endLog(`${name}-pod`);
      })();
    };
    const events = await collect(h.service.build(request(SPEC_A)));
    expect(events.at(-1)?.data.phase).toBe("failed");
    expect(String(events.at(-1)?.data.message)).toMatch(/^the build failed: DeadlineExceeded: Job was active longer than specified deadline\n--- last lines of the build ---\nRUN sleep 9999\n$/);
  });

  it("says why a runner that failed without a verdict failed (its exit code)", async () => {
    const h = harness();
    runnerPlays(h.cluster, ['{"phase":"building","message":"Step 1/2\\n"}'], 2);
    const events = await collect(h.service.build(request(SPEC_A)));
    expect(events.at(-1)?.data.message).toBe("the build failed (exit code 2)\n--- last lines of the build ---\nStep 1/2\n");
  });

  it.each([
    ["an unknown provider", { provider: "zz" }, 400, /No provider found for prefix zz/],
    ["a host outside the allowlist", { spec: `${encodeURIComponent("https://evil.example/x.git")}/main` }, 403, /not allowed/],
    ["a file:// URL", { spec: `${encodeURIComponent("file:///etc")}/main` }, 403, /scheme file/],
    ["a ref that does not exist", { spec: `${encodeURIComponent(REPO_A)}/nope` }, 404, /Could not resolve ref/],
    ["a request without build_only", { buildOnly: false }, 400, /build_only=true/],
  ])("refuses %s before any pod", async (_what, extra, status, message) => {
    const h = harness();
    const events = await collect(h.service.build(request(SPEC_A, extra as Partial<BuildRequest>)));
    expect(events).toHaveLength(1);
    expect(events[0]?.data).toMatchObject({ phase: "failed", status_code: status });
    expect(String(events[0]?.data.message)).toMatch(message);
    expect(h.cluster.calls.filter((c) => c.startsWith("create"))).toEqual([]);
  });

  it("queues beyond maxRunning with positions, then starts the waiting build", async () => {
    const h = harness({ limits: { maxRunning: 1 } });
    let release!: () => void;
    const hold = new Promise<void>((r) => (release = r));
    runnerPlays(h.cluster, LINES, 0, hold);
    const first = collect(h.service.build(request(SPEC_A)));
    await waitUntil(() => h.cluster.calls.some((c) => c.startsWith("create jobs/")));
    const secondEvents: ServiceEvent[] = [];
    const second = (async () => {
      for await (const e of h.service.build(request(SPEC_B, { identity: { kind: "token", name: "t2" } }))) secondEvents.push(e);
    })();
    await waitUntil(() => secondEvents.some((e) => e.data.phase === "waiting" && e.data.position === 1));
    expect(h.cluster.calls.filter((c) => c.startsWith("create"))).toHaveLength(1);
    release();
    await Promise.all([first, second]);
    expect(h.cluster.calls.filter((c) => c.startsWith("create"))).toHaveLength(2);
    expect(secondEvents.at(-1)?.data.phase).toBe("ready");
  });

  it("gives up a queued build when its only client leaves", async () => {
    const h = harness({ limits: { maxRunning: 1 } });
    let release!: () => void;
    runnerPlays(h.cluster, LINES, 0, new Promise<void>((r) => (release = r)));
    const first = collect(h.service.build(request(SPEC_A)));
    await waitUntil(() => h.cluster.calls.some((c) => c.startsWith("create jobs/")));
    const leaving = request(SPEC_B, { identity: { kind: "token", name: "t2" } });
    const ctrl = requests.at(-1) as AbortController;
    await collect(h.service.build(leaving), (e) => e.data.position === 1);
    ctrl.abort();
    release();
    await first;
    await new Promise((r) => setTimeout(r, 20));
    expect(h.cluster.calls.filter((c) => c.startsWith("create"))).toHaveLength(1);
  });

  it("joins a runner Job another replica created a moment before (409 on create)", async () => {
    const h = harness();
    runnerPlays(h.cluster, LINES);
    const create = h.cluster.jobs.create;
    h.cluster.jobs.create = async (job) => {
      await create(job); // the other replica's, just before ours
      throw apiError("create", "jobs", 409, "AlreadyExists");
    };
    const events = await collect(h.service.build(request(SPEC_A)));
    expect(events.at(-1)?.data.phase).toBe("ready");
    expect(events.filter((e) => /\/\d+$/.test(e.id))).toHaveLength(LINES.length + 1);
  });

  it("after a restart, follows the runner Jobs it finds and lets a reconnect continue", async () => {
    const h = harness();
    runnerPlays(h.cluster, LINES);
    await collect(h.service.build(request(SPEC_A)));
    // A new service process over the same cluster.
    const fresh = new BuildService({
      ...(h.service as unknown as { deps: ConstructorParameters<typeof BuildService>[0] }).deps,
      metrics: new ServiceMetrics(),
    });
    expect(await fresh.adoptRunningBuilds()).toBe(1);
    const rest = await collect(fresh.build(request(SPEC_A, { lastEventId: `${NAME_A}/2` })));
    expect(rest.map((e) => e.id)).toEqual([`${NAME_A}/3`, `${NAME_A}/4`]);
    expect(rest.at(-1)?.data.phase).toBe("ready");
  });

  it("builds a failed build again: the failed Job is deleted first", async () => {
    const h = harness();
    runnerPlays(h.cluster, ['{"phase":"failed","message":"boom\\n"}'], 1);
    await collect(h.service.build(request(SPEC_A)));
    const fresh = harness();
    // Same cluster, new service: the failed Job is found and replaced.
    const service = new BuildService({
      ...(h.service as unknown as { deps: ConstructorParameters<typeof BuildService>[0] }).deps,
      metrics: fresh.metrics,
    });
    runnerPlays(h.cluster, LINES);
    const events = await collect(service.build(request(SPEC_A)));
    expect(events.at(-1)?.data.phase).toBe("ready");
    expect(h.cluster.calls.filter((c) => c === `delete jobs/${NAME_A}`)).toHaveLength(1);
    expect(h.cluster.calls.filter((c) => c === `create jobs/${NAME_A}`)).toHaveLength(2);
  });

  it("limits concurrent builds per token (joining is free)", async () => {
    const h = harness({ limits: { concurrentBuildsPerToken: 1 } });
    let release!: () => void;
    runnerPlays(h.cluster, LINES, 0, new Promise<void>((r) => (release = r)));
    const first = collect(h.service.build(request(SPEC_A)));
    await waitUntil(() => h.cluster.calls.some((c) => c.startsWith("create jobs/")));
    const refused = await collect(h.service.build(request(SPEC_B)));
    expect(refused[0]?.data).toMatchObject({ phase: "failed", status_code: 429 });
    const joined = collect(h.service.build(request(SPEC_A)));
    release();
    expect((await joined).at(-1)?.data.phase).toBe("ready");
    await first;
  });

  it("refuses new builds while draining", async () => {
    const h = harness();
    h.service.drain();
    const events = await collect(h.service.build(request(SPEC_A)));
    expect(events[0]?.data).toMatchObject({ phase: "failed", status_code: 503 });
  });
});

describe("BuildService with warm runners", () => {
  it("claims a started spare before creating the Job (which adopts it), and follows the spare's log", async () => {
    let pool!: SparePool;
    const h = harness({}, (cluster) => {
      pool = new SparePool({
        api: cluster,
        settings: () => h.service.podSettings(),
        target: 1,
        maxWaitSeconds: 600,
        buildTimeoutSeconds: 600,
        log: () => undefined,
      });
      return pool;
    });
    await pool.fill();
    const [spare] = await h.cluster.pods.list("kube-container-engine/role=spare");
    const spareName = spare?.metadata?.name ?? "";
    h.cluster.putPod({ ...jobPod("x", RUNNER_CONTAINER, "running"), metadata: spare?.metadata ?? {}, spec: spare?.spec ?? { containers: [] } });
    h.cluster.onJobCreated = () => {
      // The Job adopted the claimed spare: it prints the build and ends.
      h.cluster.appendLog(spareName, ...LINES);
      const claimed = jobPod("x", RUNNER_CONTAINER, { exitCode: 0 });
      h.cluster.putPod({ ...claimed, metadata: { ...spare?.metadata, labels: { "kube-container-engine/build": NAME_A } } });
      h.cluster.endLog(spareName);
    };
    const events = await collect(h.service.build(request(SPEC_A)));
    expect(events.at(-1)?.data.phase).toBe("ready");
    const order = h.cluster.calls.filter((c) => c === `patch pods/${spareName}` || c === `create jobs/${NAME_A}`);
    expect(order).toEqual([`patch pods/${spareName}`, `create jobs/${NAME_A}`]);
    expect(h.cluster.calls).toContain(`follow pods/${spareName}/log`);
  });

  it("removes the claimed spare when the Job exists already (another replica's build)", async () => {
    let pool!: SparePool;
    const h = harness({}, (cluster) => {
      pool = new SparePool({ api: cluster, settings: () => h.service.podSettings(), target: 1, maxWaitSeconds: 600, buildTimeoutSeconds: 600, log: () => undefined });
      return pool;
    });
    await pool.fill();
    const [spare] = await h.cluster.pods.list("kube-container-engine/role=spare");
    const spareName = spare?.metadata?.name ?? "";
    h.cluster.putPod({ ...jobPod("x", RUNNER_CONTAINER, "running"), metadata: spare?.metadata ?? {}, spec: spare?.spec ?? { containers: [] } });
    runnerPlays(h.cluster, LINES);
    const create = h.cluster.jobs.create;
    h.cluster.jobs.create = async (job) => {
      await create(job);
      throw apiError("create", "jobs", 409, "AlreadyExists");
    };
    const events = await collect(h.service.build(request(SPEC_A)));
    expect(events.at(-1)?.data.phase).toBe("ready");
    expect(h.cluster.calls).toContain(`delete pods/${spareName}`);
  });
});

describe("BuildService launching servers through JupyterHub", () => {
  let fakeHub: FakeHub;
  let hubClient: HubClient;
  const alice = { kind: "hub", name: "alice" } as const;
  const launchRequest = (extra: Partial<BuildRequest> = {}): BuildRequest => request(SPEC_A, { buildOnly: false, identity: alice, ...extra });

  beforeEach(async () => {
    fakeHub = new FakeHub();
    const apiUrl = await fakeHub.start();
    hubClient = new HubClient({ apiUrl, apiToken: "service-token", publicUrl: "http://hub.example:8000/", serviceName: "binder", launchTimeoutSeconds: 30, tokenExpiresSeconds: 600 });
  });
  afterEach(async () => {
    await fakeHub.stop().catch(() => undefined);
  });

  it("builds, then starts the user's server with the image: built, launching…, ready with url and a token for that server", async () => {
    const h = harness({}, undefined, hubClient);
    runnerPlays(h.cluster, LINES);
    const events = await collect(h.service.build(launchRequest()));
    const tail = events.slice(-6, -1).map((e) => [e.data.phase, e.data.message]);
    expect(tail).toEqual([
      ["built", "Built image, launching...\n"],
      ["launching", "Launching server...\n"],
      ["launching", "Server requested\n"],
      ["launching", "Pod created\n"],
      ["launching", expect.stringMatching(/^Server ready at \/user\/alice\//)],
    ]);
    const ready = events.at(-1)?.data ?? {};
    expect(ready.phase).toBe("ready");
    const server = serverName(REPO_A);
    expect(ready.url).toBe(`http://hub.example:8000/user/alice/${server}/`);
    expect(fakeHub.tokens.get(String(ready.token))).toEqual({ name: "alice", scopes: [`access:servers!server=alice/${server}`] });
    const userOptions = fakeHub.servers.get("alice")?.get(server)?.userOptions;
    expect(userOptions).toMatchObject({ image: ready.image, repo_url: REPO_A });
    expect(events.map((e) => e.data.phase)).toEqual(expect.arrayContaining(["built", "launching", "ready"]));
  });

  it("launches from an image that exists without building, and a second user gets a server of their own", async () => {
    const h = harness({}, undefined, hubClient);
    h.existing.add(imageName("reg.example:5000/binder/", REPO_A, COMMIT_A));
    const a = await collect(h.service.build(launchRequest()));
    const b = await collect(h.service.build(launchRequest({ identity: { kind: "hub", name: "bob" } })));
    expect(a[0]?.data).toMatchObject({ phase: "built", message: "Found built image, launching...\n" });
    expect(a.at(-1)?.data.url).toMatch(/\/user\/alice\//);
    expect(b.at(-1)?.data.url).toMatch(/\/user\/bob\//);
    expect(h.cluster.calls.filter((c) => c.startsWith("create"))).toEqual([]);
  });

  it("fails the launch clearly while the hub is down, and launches on a retry once it is back", async () => {
    const h = harness({}, undefined, hubClient);
    h.existing.add(imageName("reg.example:5000/binder/", REPO_A, COMMIT_A));
    await fakeHub.stop();
    const down = await collect(h.service.build(launchRequest()));
    expect(down.at(-1)?.data).toMatchObject({ phase: "failed", status_code: 503 });
    expect(String(down.at(-1)?.data.message)).toMatch(/^Launching failed: JupyterHub at .* cannot be reached.*try again once JupyterHub is back/);
    const back = new FakeHub();
    await back.start();
    const retryClient = new HubClient({ ...hubClient.settings, apiUrl: back.url });
    const h2 = harness({}, undefined, retryClient);
    h2.existing.add(imageName("reg.example:5000/binder/", REPO_A, COMMIT_A));
    expect((await collect(h2.service.build(launchRequest()))).at(-1)?.data.phase).toBe("ready");
    await back.stop();
  });

  it("reports the hub's reason when the spawn fails", async () => {
    const h = harness({}, undefined, hubClient);
    h.existing.add(imageName("reg.example:5000/binder/", REPO_A, COMMIT_A));
    fakeHub.spawnFailure = "Spawn failed: ImagePullBackOff";
    const events = await collect(h.service.build(launchRequest()));
    expect(events.at(-1)?.data).toMatchObject({ phase: "failed", message: "Launching failed: Spawn failed: ImagePullBackOff\n" });
  });

  it("refuses to launch for a client with a service token (no hub user)", async () => {
    const h = harness({}, undefined, hubClient);
    const events = await collect(h.service.build(request(SPEC_A, { buildOnly: false })));
    expect(events[0]?.data).toMatchObject({ phase: "failed", status_code: 400 });
    expect(String(events[0]?.data.message)).toMatch(/needs a JupyterHub user's token/);
  });
});

describe("parseEventId", () => {
  it.each([
    ["build-x-1/4", { build: "build-x-1", position: 4 }],
    ["build-x/-1", { build: "build-x", position: -1 }],
    ["build-x/ready", null],
    ["", null],
    [null, null],
  ])("%s", (id, expected) => {
    expect(parseEventId(id)).toEqual(expected);
  });
});

async function waitUntil(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 5));
  }
}
