// The build service on the real cluster, deployed from manifests/service/ with its image built by kce in the
// cluster: the unmodified @jupyterhub/binderhub-client builds a Dockerfile repository from the tests' own git
// server, builds are shared and resumable, bad input is refused before any pod, limits hold, and a build
// outlives the service pod that started it.
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KubernetesEngine } from "../../../src/engine.js";
import { env } from "../support/cluster-env.js";
import { GitServer } from "../support/git-server.js";
import { kubectl } from "../support/kubectl.js";
import {
  deployService,
  dockerfileRepo,
  gitSpec,
  jobsOf,
  readStream,
  serviceImage,
  servicePods,
  undeployService,
  waitReachable,
  apiServerEndpoint,
  testMachineUrls,
  type Deployed,
  type ReceivedEvent,
} from "./helpers.js";

const TOKEN = randomBytes(24).toString("hex");
const OTHER_TOKEN = randomBytes(24).toString("hex");
const MAX_REPO_BYTES = 2 * 1024 * 1024;

let git: GitServer;
let deployed: Deployed | undefined;
let engine: KubernetesEngine;
/** "address:port" of the API server as pods reach it. */
let apiServer = "";

function buildUrl(spec: string, query = "build_only=true"): string {
  return `${deployed?.url ?? ""}build/${spec}?${query}`;
}

/** Waits until a service pod other than `old` is ready and the Service answers through it. */
async function replacementReady(old: string): Promise<void> {
  const deadline = Date.now() + 180_000;
  while (!(await servicePods()).some((p) => p.name !== old && p.ready && !p.deleting)) {
    if (Date.now() > deadline) throw new Error("no replacement service pod became ready within 180 s");
    await new Promise((r) => setTimeout(r, 500));
  }
  await waitReachable(deployed?.url ?? "");
}

const isEnd = (e: ReceivedEvent): boolean => e.data.phase === "ready" || e.data.phase === "failed";
/** The ids of the build's log events (waiting events repeat the resume point: not log lines). */
const logIds = (events: ReceivedEvent[]): string[] =>
  events.filter((e) => e.data.phase !== "waiting").map((e) => e.id ?? "").filter((id) => /\/\d+$/.test(id));

beforeAll(async () => {
  const nodeIp = env("KCE_NODE_IP");
  git = new GitServer(nodeIp);
  await git.start();
  const machine = testMachineUrls(nodeIp);
  apiServer = await apiServerEndpoint();
  const image = await serviceImage();
  deployed = await deployService(
    image,
    {
      imagePrefix: "kce-e2e-binder/",
      // the API server's host too, so that its refusal comes from the API-server check, not from the host list
      urls: { ...machine, allowedHosts: [...machine.allowedHosts, apiServer.replace(/:\d+$/, ""), "127.0.0.1", "localhost"] },
      limits: { maxRunning: 2, maxPerRepository: 1, maxRepoBytes: MAX_REPO_BYTES, buildTimeoutSeconds: 600, concurrentBuildsPerToken: 8 },
      runner: {
        serviceAccountName: "kce",
        resources: { requests: { cpu: "50m", memory: "128Mi" }, limits: { memory: "1Gi" } },
        // The cluster's own builder images (no registry outside is reachable), as an air-gapped cluster sets them.
        env: { KCE_KANIKO_IMAGE: env("KCE_KANIKO_IMAGE"), KCE_BUILDKIT_IMAGE: env("KCE_BUILDKIT_ROOTLESS_IMAGE") },
      },
      lingerSeconds: 30,
    },
    { e2e: TOKEN, other: OTHER_TOKEN },
  );
  engine = new KubernetesEngine({ namespace: "default" });
}, 1_800_000);

afterAll(async () => {
  await undeployService(deployed);
  await git?.stop();
}, 300_000);

describe("kce serve (deployed from manifests/service/)", () => {
  it("answers /health, /versions and /metrics", async () => {
    const health = await fetch(`${deployed?.url}health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ ok: true });
    const versions = (await (await fetch(`${deployed?.url}versions`)).json()) as Record<string, unknown>;
    expect(String(versions.binderhub)).toMatch(/kube-container-engine/);
    expect(await (await fetch(`${deployed?.url}metrics`)).text()).toMatch(/# TYPE kce_service_builds_total counter/);
  });

  it("refuses requests without a token (401) or with a wrong one (403), creating nothing", async () => {
    const repo = await git.push("auth-check", dockerfileRepo("auth"));
    const before = await jobsOf("runner");
    const none = await readStream(buildUrl(gitSpec(repo.url, "main")));
    expect(none.status).toBe(401);
    expect(none.events[0]?.data).toMatchObject({ phase: "failed", status_code: 401 });
    const wrong = await readStream(buildUrl(gitSpec(repo.url, "main")), { token: "not-a-token" });
    expect(wrong.status).toBe(403);
    expect(wrong.events[0]?.data).toMatchObject({ phase: "failed", status_code: 403 });
    expect(await jobsOf("runner")).toEqual(before);
    expect(git.requestsFor("auth-check")).toEqual([]);
  });

  it.each([
    ["a file:// URL", "file:///etc/passwd", 403, /scheme file/],
    ["a loopback address", "http://127.0.0.1:8080/x.git", 403, /internal address/],
    ["the API server's address", "https://APISERVER/x.git", 403, /API server/],
  ])("refuses %s before any pod", async (_what, rawUrl, status, message) => {
    const url = rawUrl.replace("APISERVER", apiServer);
    const before = await jobsOf("runner");
    const result = await readStream(buildUrl(gitSpec(url, "main")), { token: TOKEN });
    expect(result.events).toHaveLength(1);
    expect(result.events[0]?.data).toMatchObject({ phase: "failed", status_code: status });
    expect(String(result.events[0]?.data.message)).toMatch(message);
    expect(await jobsOf("runner")).toEqual(before);
  });

  it("refuses a ref that does not exist (404), before any pod", async () => {
    const repo = await git.push("no-such-ref", dockerfileRepo("ref"));
    const before = await jobsOf("runner");
    const result = await readStream(buildUrl(gitSpec(repo.url, "nope")), { token: TOKEN });
    expect(result.events[0]?.data).toMatchObject({ phase: "failed", status_code: 404 });
    expect(String(result.events[0]?.data.message)).toMatch(/Could not resolve ref/);
    expect(await jobsOf("runner")).toEqual(before);
  });

  it("builds a Dockerfile repository; the image runs and prints what the Dockerfile baked in", async () => {
    const marker = `built-${randomBytes(4).toString("hex")}`;
    const repo = await git.push("hello", dockerfileRepo(marker));
    const result = await readStream(buildUrl(gitSpec(repo.url, "main")), { token: TOKEN, stop: isEnd });
    const phases = result.events.map((e) => e.data.phase);
    expect(phases[0]).toBe("waiting");
    expect(phases).toContain("building");
    const ready = result.events.at(-1);
    expect(ready?.data).toMatchObject({ phase: "ready", message: "Done! Image built\n" });
    const image = String(ready?.data.imageName);
    expect(image).toContain(`:${repo.commit}`);
    const container = await engine.run(image, {});
    const { exitCode } = await container.wait();
    const output = await container.logs();
    await container.remove();
    expect(exitCode).toBe(0);
    expect(output).toContain(marker);
  });

  it("the unmodified @jupyterhub/binderhub-client builds a repository and gets ready with the image name", async () => {
    // binderhub-client 0.5 is browser code: fetch-event-source uses window.fetch/setTimeout (Node has them on
    // globalThis) and unregisters a document listener when closed. The client itself is imported as it is.
    const g = globalThis as { window?: unknown; document?: unknown };
    g.window ??= globalThis;
    g.document ??= { hidden: false, addEventListener: () => undefined, removeEventListener: () => undefined };
    const { BinderRepository } = await import("@jupyterhub/binderhub-client/client.js");
    const marker = `client-${randomBytes(4).toString("hex")}`;
    const repo = await git.push("client", dockerfileRepo(marker));
    const binder = new BinderRepository(gitSpec(repo.url, "main"), new URL("build/", deployed?.url), { apiToken: TOKEN, buildOnly: true });
    const seen: Array<{ phase?: string; message?: string; imageName?: string }> = [];
    // As BinderHub's page does: close on ready/failed, and keep reading until the iterator ends, so a server
    // that closed too early would show up as a "failed: Event stream closed unexpectedly" after ready.
    for await (const event of binder.fetch() as AsyncIterable<{ phase?: string; message?: string; imageName?: string }>) {
      seen.push(event);
      if (event.phase === "ready" || event.phase === "failed") binder.close();
    }
    expect(seen.filter((e) => e.phase === "failed"), JSON.stringify(seen.slice(-3))).toEqual([]);
    const ready = seen.at(-1);
    expect(ready?.phase).toBe("ready");
    const container = await engine.run(String(ready?.imageName), {});
    await container.wait();
    const output = await container.logs();
    await container.remove();
    expect(output).toContain(marker);
  });

  it("the page at / builds a repository in headless Chromium: log lines live, the image name at the end", async () => {
    const marker = `page-${randomBytes(4).toString("hex")}`;
    const repo = await git.push("page", dockerfileRepo(marker, "RUN for i in 1 2 3 4; do echo page-step $i; sleep 1; done\n"));
    const profile = mkdtempSync(join(tmpdir(), "kce-chromium-"));
    const browser = await chromium.launch({
      executablePath: process.env.KCE_CHROMIUM ?? "/usr/bin/chromium",
      args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    });
    try {
      const page = await browser.newPage();
      await page.goto(deployed?.url ?? "");
      await page.fill("#repo", repo.url);
      await page.fill("#ref", "main");
      await page.fill("#token", TOKEN);
      await page.click("#build");
      // Live: the builder's lines are on the page while the build still runs (no image name yet).
      await page.waitForFunction('(document.getElementById("log")?.textContent ?? "").includes("page-step 1")', undefined, { timeout: 120_000 });
      const resultHiddenWhileBuilding = await page.locator("#result").isHidden();
      await page.waitForSelector("#result:not([hidden])", { timeout: 180_000 });
      const image = (await page.textContent("#image")) ?? "";
      const status = (await page.textContent("#status")) ?? "";
      const log = (await page.textContent("#log")) ?? "";
      const shots = join(process.cwd(), "test-results");
      mkdirSync(shots, { recursive: true });
      await page.screenshot({ path: join(shots, "service-page.png"), fullPage: true });
      expect(resultHiddenWhileBuilding).toBe(true);
      expect(status).toBe("Built.");
      expect(image).toContain(`:${repo.commit}`);
      expect(log).toMatch(/page-step 4/);
    } finally {
      await browser.close();
      rmSync(profile, { recursive: true, force: true });
    }
  });

  it("answers an image that exists with ready at once, creating no pod", async () => {
    const repo = await git.push("again", dockerfileRepo("again"));
    await readStream(buildUrl(gitSpec(repo.url, "main")), { token: TOKEN, stop: isEnd });
    const before = await jobsOf("runner");
    const again = await readStream(buildUrl(gitSpec(repo.url, "main")), { token: OTHER_TOKEN, stop: isEnd });
    expect(again.events.map((e) => e.data)).toEqual([
      expect.objectContaining({ phase: "ready", message: "Done! Found built image\n" }),
    ]);
    expect(await jobsOf("runner")).toEqual(before);
  });

  it("two clients on one (repository, ref) share one build; a reconnect with Last-Event-ID gets the rest", async () => {
    // (ids are "<build>/<position>"; a client that left after position p gets p+1… on reconnect)
    const repo = await git.push("shared", dockerfileRepo("shared", "RUN for i in 1 2 3 4 5; do echo step $i; sleep 1; done\n"));
    const url = buildUrl(gitSpec(repo.url, "main"));
    const full = readStream(url, { token: TOKEN, stop: isEnd });
    // The second client leaves after three log events and comes back with the id of the last one.
    const partial = await readStream(url, { token: OTHER_TOKEN, stop: (_e, all) => logIds(all).length >= 3 });
    const lastId = logIds(partial.events).at(-1) ?? "";
    const rest = await readStream(url, { token: OTHER_TOKEN, lastEventId: lastId, stop: isEnd });
    const whole = await full;
    const seen = [...logIds(partial.events), ...logIds(rest.events)];
    const show = (events: ReceivedEvent[]): unknown => events.slice(0, 6).map((e) => [e.id, String(e.data.message).slice(0, 60)]);
    expect(seen, JSON.stringify({ partial: show(partial.events), rest: show(rest.events), whole: show(whole.events), lastId })).toEqual(logIds(whole.events));
    expect(new Set(seen).size).toBe(seen.length);
    expect(rest.events.at(-1)?.data.phase).toBe("ready");
    const runners = (await jobsOf("runner")).filter((name) => name === String(whole.events.at(-1)?.id).split("/")[0]);
    expect(runners).toHaveLength(1);
  });

  it("refuses a repository over the size limit with a failed event; no builder pod", async () => {
    const big = randomBytes(MAX_REPO_BYTES * 2);
    const repo = await git.push("too-big", { ...dockerfileRepo("big"), "blob.bin": big });
    const buildersBefore = await jobsOf("builder");
    const result = await readStream(buildUrl(gitSpec(repo.url, "main")), { token: TOKEN, stop: isEnd });
    const last = result.events.at(-1);
    expect(last?.data.phase).toBe("failed");
    expect(String(last?.data.message)).toMatch(/larger than the limit/);
    expect(await jobsOf("builder")).toEqual(buildersBefore);
  });

  it("reports a failing build with the builder's last lines", async () => {
    const repo = await git.push("fails", { Dockerfile: `FROM ${env("KCE_BASE_IMAGE")}\nRUN echo about-to-fail && exit 7\n` });
    const result = await readStream(buildUrl(gitSpec(repo.url, "main")), { token: TOKEN, stop: isEnd });
    const last = result.events.at(-1);
    expect(last?.data.phase).toBe("failed");
    expect(String(last?.data.message)).toMatch(/about-to-fail/);
  });

  it("holds the concurrency limit with many repositories: waiting shows positions, all finish", async () => {
    const repos = await Promise.all([1, 2, 3, 4, 5].map((i) => git.push(`many-${i}`, dockerfileRepo(`many-${i}`, "RUN sleep 2\n"))));
    let maxActive = 0;
    let snapshot = "";
    let watching = true;
    const sampler = (async () => {
      while (watching) {
        // Builds whose runner container has not terminated: what the limit is about. (A Job's `active` count and a
        // pod's phase lag behind: the kubelet sets the terminal phase only once the pod is torn down.) Counted by
        // build label, not by pod: when a claimed warm runner is adopted, the Job controller may create a pod of
        // its own for a moment before it sees the adopted one (its informers lag), then deletes the extra one.
        const out = await kubectl(["-n", "kce", "get", "pods", "-l", "kube-container-engine/role=runner", "-o", "json"]);
        type Pod = {
          metadata: { name: string; labels?: Record<string, string> };
          status?: { phase?: string; containerStatuses?: Array<{ state?: { terminated?: object } }> };
        };
        const items = (JSON.parse(out) as { items: Pod[] }).items;
        const ended = (p: Pod): boolean => p.status?.phase === "Succeeded" || p.status?.phase === "Failed" || p.status?.containerStatuses?.[0]?.state?.terminated !== undefined;
        const activeLabels = items.filter((p) => !ended(p)).map((p) => p.metadata.labels?.["kube-container-engine/build"] ?? p.metadata.name);
        const activeBuilds = new Set(activeLabels);
        if (activeBuilds.size < activeLabels.length) console.log(`a build with two active runner pods: ${JSON.stringify(activeLabels)}`);
        if (activeBuilds.size > maxActive) {
          snapshot = JSON.stringify(items.map((p) => [p.metadata.name, p.metadata.labels?.["kube-container-engine/build"], p.status?.phase, p.status?.containerStatuses?.[0]?.state]));
        }
        maxActive = Math.max(maxActive, activeBuilds.size);
        await new Promise((r) => setTimeout(r, 500));
      }
    })();
    const results = await Promise.all(repos.map((r) => readStream(buildUrl(gitSpec(r.url, "main")), { token: TOKEN, stop: isEnd })));
    watching = false;
    await sampler;
    for (const r of results) expect(r.events.at(-1)?.data.phase).toBe("ready");
    const positions = results.flatMap((r) => r.events.filter((e) => e.data.phase === "waiting" && typeof e.data.position === "number"));
    expect(positions.length).toBeGreaterThan(0);
    expect(maxActive, snapshot).toBeLessThanOrEqual(2);
  });

  it("on SIGTERM the service pod takes no new builds but its open stream follows its build to the end", async () => {
    const repo = await git.push("draining", dockerfileRepo("draining", "RUN for i in $(seq 1 8); do echo drain $i; sleep 1; done\n"));
    const url = buildUrl(gitSpec(repo.url, "main"));
    const ids: string[] = [];
    let deleted = false;
    const [old] = (await servicePods()).filter((p) => !p.deleting);
    const result = await readStream(url, {
      token: TOKEN,
      stop: (e) => {
        if (e.id) ids.push(e.id);
        if (!deleted && /drain 1\b/.test(String(e.data.message))) {
          deleted = true;
          // A graceful delete (SIGTERM): the stream must go on on the old pod.
          void kubectl(["-n", "kce", "delete", "pod", old?.name ?? "", "--wait=false"]);
        }
        return isEnd(e);
      },
    });
    expect(deleted).toBe(true);
    expect(result.events.at(-1)?.data.phase).toBe("ready");
    expect(result.events.some((e) => /drain 8\b/.test(String(e.data.message)))).toBe(true);
    await replacementReady(old?.name ?? "");
  });

  it("no token appears in a log line, an event or an annotation of anything in the namespace", async () => {
    const objects = await kubectl(["-n", "kce", "get", "jobs,pods,events,configmaps", "-o", "json"]);
    const pods = (await servicePods()).map((p) => p.name);
    const runnerPods = (await kubectl(["-n", "kce", "get", "pods", "-l", "kube-container-engine/role=runner", "-o", "jsonpath={.items[*].metadata.name}"]))
      .split(/\s+/)
      .filter(Boolean);
    const logs = await Promise.all([...pods, ...runnerPods].map((p) => kubectl(["-n", "kce", "logs", p, "--all-containers"]).catch(() => "")));
    expect(runnerPods.length).toBeGreaterThan(0);
    for (const text of [objects, ...logs]) {
      expect(text).not.toContain(TOKEN);
      expect(text).not.toContain(OTHER_TOKEN);
    }
  });

  it("a build outlives the service pod that started it; the new pod reports it to a reconnecting client", async () => {
    const repo = await git.push("survivor", dockerfileRepo("survivor", "RUN for i in $(seq 1 15); do echo tick $i; sleep 1; done\n"));
    const url = buildUrl(gitSpec(repo.url, "main"));
    const first = await readStream(url, { token: TOKEN, stop: (e) => /tick 2\b/.test(String(e.data.message)) });
    const lastId = logIds(first.events).at(-1) ?? "";
    const [old] = (await servicePods()).filter((p) => !p.deleting);
    await kubectl(["-n", "kce", "delete", "pod", old?.name ?? "", "--grace-period=0", "--force", "--wait=false"]);
    await replacementReady(old?.name ?? "");
    const rest = await readStream(url, { token: TOKEN, lastEventId: lastId, stop: isEnd });
    const seen = [...logIds(first.events), ...logIds(rest.events)];
    expect(new Set(seen).size).toBe(seen.length);
    expect(rest.events.some((e) => /tick 15\b/.test(String(e.data.message)))).toBe(true);
    expect(rest.events.at(-1)?.data.phase).toBe("ready");
  });
});
