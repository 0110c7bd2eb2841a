/**
 * P6 build service: `kce serve` deployed from manifests/service/ (its image built by kce), against the same
 * build by the `repo2docker --engine kubernetes` CLI run directly on this machine (what a client without the
 * service would run; also what running repo2docker inside the service's pod would cost per build).
 *  - time to `ready` (service) vs time to exit 0 (CLI), and the time to the first line of each, for a
 *    Dockerfile repository with a fresh commit every repetition (no cache hits), alternating, with no sampler
 *    running (memory is sampled in separate, untimed rounds);
 *  - memory per build: the runner pod's peak working set (kubelet summary) vs the CLI's processes'
 *    (repo2docker + its `kce rpc`) peak RSS summed;
 *  - 20 clients on one new commit at once: runner Jobs created (must be 1) and time until all are ready;
 *  - the service process's RSS idle and its peak with 4 builds at once; a waiting warm runner's RSS (it holds
 *    its engine, started ahead).
 */
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { GitServer } from "../test/e2e/support/git-server.js";
import { deployService, gitSpec, jobsOf, readStream, serviceImage, undeployService, type Deployed, type ReceivedEvent } from "../test/e2e/service/helpers.js";
import type { Bench } from "./context.js";
import { check, memoryOf, REPO, run, sleep, stats, suffix } from "./lib.js";
import { compare, type Row } from "./report.js";

const R2D_VERSION = "2026.4.0";
const TOKEN = `bench-${suffix()}${suffix()}`;
const isEnd = (e: ReceivedEvent): boolean => e.data.phase === "ready" || e.data.phase === "failed";

/** The venv the repo2docker e2e tests use ($KCE_HOME/venv-r2d-<version>), with the adapter of this checkout. */
async function repo2dockerVenv(): Promise<string> {
  const home = process.env.KCE_HOME ?? join(homedir(), ".cache", "kce");
  const venv = join(home, `venv-r2d-${R2D_VERSION}`);
  if (!existsSync(join(venv, "bin", "repo2docker"))) {
    await check("python3", ["-m", "venv", venv]);
    await check(join(venv, "bin", "python"), ["-m", "pip", "install", "-q", `jupyter-repo2docker==${R2D_VERSION}`]);
  }
  await check(join(venv, "bin", "python"), ["-m", "pip", "install", "-q", "--no-deps", "--force-reinstall", join(REPO, "python", "repo2docker-kce")]);
  return venv;
}

/** A process's RSS, MiB; 0 for one that is gone or a zombie (no VmRSS). */
function finiteRss(pid: number): number {
  const rss = memoryOf(pid)?.rssMiB ?? 0;
  return Number.isFinite(rss) ? rss : 0;
}

/** Peak summed RSS (MiB) of a process tree, sampled every 200 ms until `done` settles. */
async function peakTreeRss(rootPid: number, done: Promise<unknown>): Promise<number> {
  let peak = 0;
  let finished = false;
  void done.finally(() => (finished = true));
  while (!finished) {
    const pids = [rootPid, ...(await run("pgrep", ["-P", String(rootPid)])).stdout.split("\n").filter(Boolean).map(Number)];
    const grandchildren = await Promise.all(pids.slice(1).map(async (p) => (await run("pgrep", ["-P", String(p)])).stdout.split("\n").filter(Boolean).map(Number)));
    const all = [...pids, ...grandchildren.flat()];
    peak = Math.max(peak, all.reduce((sum, pid) => sum + finiteRss(pid), 0));
    await sleep(200);
  }
  return peak;
}

/** `pid` and its descendants. */
async function processTree(pid: number): Promise<number[]> {
  const children = (await run("pgrep", ["-P", String(pid)])).stdout.split("\n").filter(Boolean).map(Number);
  return [pid, ...(await Promise.all(children.map(processTree))).flat()];
}

/** Whether the process's command line has `args` (NUL-separated) in it; false for a process that is gone. */
function cmdlineHas(pid: number, args: string[]): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(`\0${args.join("\0")}\0`);
  } catch {
    return false;
  }
}

/**
 * Peak summed RSS (MiB) of the runner pods' processes while `done` is pending. The pods run on this machine,
 * so their processes are visible here: the same measure as the CLI's (the kubelet's summary API refreshes every
 * ~10 s, too slowly for a build of a few seconds).
 */
async function peakRunnerRss(done: Promise<unknown>): Promise<number> {
  let peak = 0;
  let finished = false;
  void done.finally(() => (finished = true));
  // A runner that builds has the repo2docker CLI below it; a warm spare waiting for a build (same module) has
  // not. Decided from /proc alone: a kubectl call per sample cost ≈ 0.1 s of CPU each and slowed only this
  // variant (the CLI's sampler below reads /proc too).
  while (!finished) {
    const roots = (await run("pgrep", ["-f", "repo2docker_kce.runner"])).stdout.split("\n").filter(Boolean).map(Number);
    const trees = (await Promise.all(roots.map(processTree))).filter((pids) => pids.some((pid) => cmdlineHas(pid, ["--engine", "kubernetes"])));
    const pids = [...new Set(trees.flat())]; // tini and its python both match
    peak = Math.max(peak, pids.reduce((sum, pid) => sum + finiteRss(pid), 0));
    await sleep(200);
  }
  return peak;
}

/** Summed RSS (MiB) of a waiting warm runner's processes (the runner and the engine it started ahead). */
async function waitingSpareRss(): Promise<number> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const roots = (await run("pgrep", ["-f", "repo2docker_kce.runner --wait-for-assignment"])).stdout.split("\n").filter(Boolean).map(Number);
    const pids = [...new Set((await Promise.all(roots.map(processTree))).flat())];
    // ready once its engine listens (a `kce rpc --listen` below the runner)
    if (pids.some((pid) => cmdlineHas(pid, ["rpc", "--listen"]))) {
      await sleep(3_000); // settled: its engine loaded
      return pids.reduce((sum, pid) => sum + finiteRss(pid), 0);
    }
    if (Date.now() > deadline) throw new Error("no waiting warm runner with its engine within 60 s");
    await sleep(500);
  }
}

async function serviceRssMiB(url: string): Promise<{ rss: number; peak: number }> {
  const text = await (await fetch(`${url}metrics`)).text();
  const value = (name: string): number => Number(new RegExp(`^${name} (\\S+)$`, "m").exec(text)?.[1] ?? Number.NaN) / 2 ** 20;
  return { rss: value("process_resident_memory_bytes"), peak: value("kce_service_peak_resident_memory_bytes") };
}

export async function benchService(b: Bench): Promise<Row[]> {
  const nodeIp = b.env.KCE_NODE_IP ?? "";
  const git = new GitServer(nodeIp);
  await git.start();
  let deployed: Deployed | undefined;
  const venv = await repo2dockerVenv();
  const bin = mkdtempSync(join(tmpdir(), "kce-bench-r2d-"));
  // The CLI of dist/ (scripts/service-image builds it below): the adapter runs `kce rpc`, which reads the
  // package's version next to it.
  writeFileSync(join(bin, "kce"), `#!/bin/sh\nexec node ${JSON.stringify(join(REPO, "dist", "cli", "main.js"))} "$@"\n`, { mode: 0o755 });
  // What the service's runner gives repo2docker: its Git content provider only (the others reach the Internet).
  const config = join(bin, "repo2docker_config.py");
  writeFileSync(config, "from repo2docker.contentproviders import Git\nc.Repo2Docker.content_providers = [Git]\n");
  const times = { service: [] as number[], cli: [] as number[], serviceFirst: [] as number[], cliFirst: [] as number[] };
  const memory = { runner: [] as number[], cli: [] as number[] };
  try {
    deployed = await deployService(
      await serviceImage(),
      {
        imagePrefix: "kce-bench/binder-",
        urls: { allowedHosts: [nodeIp] },
        limits: { maxRunning: 4, maxPerRepository: 1, concurrentBuildsPerToken: 100, buildsPerTokenPerHour: 1000 },
        runner: { serviceAccountName: "kce", env: { KCE_KANIKO_IMAGE: b.kanikoImage } },
        lingerSeconds: 5,
      },
      { bench: TOKEN },
    );
    const url = deployed.url;
    const idle = await serviceRssMiB(url);
    const spareRss = await waitingSpareRss();
    // Timed rounds first, with nothing else running; then rounds that sample memory (the samplers cost CPU,
    // not the same for both variants) and are not timed.
    const memoryRounds = Math.min(3, b.options.reps);
    for (let rep = -1; rep < b.options.reps + memoryRounds; rep++) {
      const memoryRound = rep >= b.options.reps;
      for (const variant of rep % 2 === 0 ? (["service", "cli"] as const) : (["cli", "service"] as const)) {
        const repo = await git.push(`p6-${variant}`, { Dockerfile: `FROM ${b.baseImage}\nRUN echo ${suffix()} > /built\n` });
        const started = performance.now();
        let first = Number.NaN;
        if (variant === "service") {
          let markDone = (): void => undefined;
          const sampled = memoryRound ? peakRunnerRss(new Promise<void>((r) => (markDone = r))) : Promise.resolve(0);
          const result = await readStream(`${url}build/${gitSpec(repo.url, "main")}?build_only=true`, {
            token: TOKEN,
            stop: (e) => {
              if (Number.isNaN(first) && e.data.phase !== "waiting") first = (performance.now() - started) / 1000;
              return isEnd(e);
            },
          });
          markDone();
          const peak = await sampled;
          if (result.events.at(-1)?.data.phase !== "ready") throw new Error(`service build failed: ${JSON.stringify(result.events.at(-1)?.data)}`);
          if (memoryRound) memory.runner.push(peak);
        } else {
          const image = `${b.registry}/kce-bench/p6-cli:${repo.commit}`;
          const child = spawn(
            join(venv, "bin", "repo2docker"),
            ["--engine", "kubernetes", "--no-run", "--push", "--json-logs", "--config", config, "--user-name", "jovyan", "--user-id", "1000", "--ref", repo.commit, "--image-name", image, repo.url],
            { env: { ...process.env, PATH: `${bin}:${join(venv, "bin")}:${process.env.PATH ?? ""}`, KCE_NAMESPACE: "kce" }, stdio: ["ignore", "pipe", "pipe"] },
          );
          const onData = (): void => {
            if (Number.isNaN(first)) first = (performance.now() - started) / 1000;
          };
          child.stdout.on("data", onData);
          let errText = "";
          child.stderr.on("data", (d: Buffer) => {
            onData();
            errText = (errText + d.toString()).slice(-4000);
          });
          const exited = new Promise<number | null>((resolve) => child.on("close", resolve));
          const peak = memoryRound ? await peakTreeRss(child.pid ?? 0, exited) : 0;
          const code = await exited;
          if (code !== 0) throw new Error(`repo2docker exited ${code}: ${errText}`);
          if (memoryRound) memory.cli.push(peak);
        }
        const seconds = (performance.now() - started) / 1000;
        if (rep >= 0 && !memoryRound) {
          times[variant].push(seconds);
          times[variant === "service" ? "serviceFirst" : "cliFirst"].push(first);
        }
        b.log(`P6 ${rep < 0 ? "warm-up" : memoryRound ? "memory" : `rep ${rep + 1}`} ${variant}: ${seconds.toFixed(2)} s (first line ${first.toFixed(2)} s)`);
      }
    }

    // 20 clients on one new commit: one runner Job, everybody gets ready.
    const shared = await git.push("p6-shared", { Dockerfile: `FROM ${b.baseImage}\nRUN echo ${suffix()} && sleep 2\n` });
    const runnersBefore = new Set(await jobsOf("runner"));
    const t20 = performance.now();
    const twenty = await Promise.all(
      Array.from({ length: 20 }, () => readStream(`${url}build/${gitSpec(shared.url, "main")}?build_only=true`, { token: TOKEN, stop: isEnd })),
    );
    const twentySeconds = (performance.now() - t20) / 1000;
    const newRunners = (await jobsOf("runner")).filter((j) => !runnersBefore.has(j));
    const allReady = twenty.every((r) => r.events.at(-1)?.data.phase === "ready");

    // 4 builds at once: the service's own memory.
    const four = await Promise.all([1, 2, 3, 4].map((i) => git.push(`p6-four-${i}`, { Dockerfile: `FROM ${b.baseImage}\nRUN echo ${suffix()} && sleep 3\n` })));
    let busyPeak = 0;
    let busyDone = false;
    const busySampler = (async () => {
      while (!busyDone) {
        busyPeak = Math.max(busyPeak, (await serviceRssMiB(url)).rss);
        await sleep(300);
      }
    })();
    const fourResults = await Promise.all(four.map((r) => readStream(`${url}build/${gitSpec(r.url, "main")}?build_only=true`, { token: TOKEN, stop: isEnd })));
    busyDone = true;
    await busySampler;
    const fourOk = fourResults.every((r) => r.events.at(-1)?.data.phase === "ready");
    const after = await serviceRssMiB(url);

    const row = (name: string, values: number[], unit = "s"): Row => ({ id: "P6", name, unit, stats: stats(values) });
    const cli = row("repo2docker --engine kubernetes CLI, to exit 0", times.cli);
    const cliFirst = row("repo2docker CLI: first output line", times.cliFirst);
    const cliMemory = row("memory per build: repo2docker + kce rpc processes (peak RSS)", memory.cli, "MiB");
    b.facts.p6 = { idle, after, busyPeak, twentySeconds, newRunners, allReady, fourOk };
    return [
      cli,
      compare(row("kce serve: request → ready", times.service), cli, { text: "≤ 1.1×", ok: (r) => r <= 1.1 }),
      cliFirst,
      compare(row("kce serve: first event after waiting (runner pod up)", times.serviceFirst), cliFirst),
      cliMemory,
      compare(row("memory per build: runner pod's processes (peak RSS)", memory.runner, "MiB"), cliMemory),
      {
        id: "P6",
        name: "20 clients on one repository at once: runner Jobs created",
        unit: "",
        stats: stats([newRunners.length]),
        goal: "= 1",
        met: newRunners.length === 1 && allReady,
        note: `all ${allReady ? "" : "NOT "}ready in ${twentySeconds.toFixed(1)} s`,
      },
      { id: "P6", name: "service RSS idle", unit: "MiB", stats: stats([idle.rss]) },
      { id: "P6", name: "a warm runner waiting, with its engine started ahead (summed RSS)", unit: "MiB", stats: stats([spareRss]) },
      {
        id: "P6",
        name: "service RSS, 4 builds at once (peak sampled)",
        unit: "MiB",
        stats: stats([busyPeak]),
        note: `${fourOk ? "all 4 ready" : "NOT all ready"}; process peak (VmHWM) over the whole run ${after.peak.toFixed(0)} MiB`,
      },
    ];
  } finally {
    await undeployService(deployed).catch((err: unknown) => b.log(`P6 cleanup: ${String(err)}`));
    await git.stop();
  }
}
