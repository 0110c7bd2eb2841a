/**
 * P4 run:
 *  - `engine.run()` in a warm process until it returns a `running` container, vs
 *  - `kubectl run … -- sleep` + `kubectl wait --for=condition=Ready` (two processes), and
 *  - `kce run -d` (a fresh CLI process, like kubectl);
 * then the API requests of whole container lifecycles (run → wait → logs → remove) for a container that
 * lives 1 s and one that lives 8 s: with watches instead of polling, the count does not grow with the time.
 */
import { KubernetesEngine } from "../src/index.js";
import { ApiCounter, countByKind, type ApiRequest } from "./api-counter.js";
import type { Bench } from "./context.js";
import { kubectl, run, stats, suffix } from "./lib.js";
import { compare, type Row } from "./report.js";

async function lifecycle(engine: KubernetesEngine, b: Bench, seconds: number, counter: ApiCounter): Promise<{ requests: ApiRequest[]; wallSeconds: number }> {
  const mark = counter.requests.length;
  const started = performance.now();
  const container = await engine.run(b.baseImage, { command: ["sh", "-c", `echo hello; sleep ${seconds}; echo bye`] });
  const { exitCode } = await container.wait();
  const logs = await container.logs();
  await container.remove();
  if (exitCode !== 0 || !logs.includes("bye")) throw new Error(`P4 lifecycle: exit ${exitCode}, logs ${JSON.stringify(logs)}`);
  return { requests: counter.since(mark), wallSeconds: (performance.now() - started) / 1000 };
}

export async function benchRun(b: Bench): Promise<Row[]> {
  const engine = new KubernetesEngine({ namespace: b.namespace, log: () => undefined });
  const times = { kubectl: [] as number[], engine: [] as number[], cli: [] as number[] };
  const cleanup: string[] = [];
  for (let rep = -1; rep < b.options.reps; rep++) {
    // kubectl run + wait
    const name = `p4-kubectl-${suffix()}`;
    let t0 = performance.now();
    await kubectl(["run", name, "-n", b.namespace, `--image=${b.baseImage}`, "--restart=Never", "--", "sleep", "3600"]);
    await kubectl(["wait", "-n", b.namespace, "--for=condition=Ready", `pod/${name}`, "--timeout=120s"]);
    const kubectlSeconds = (performance.now() - t0) / 1000;
    cleanup.push(name);
    // engine.run in this process
    t0 = performance.now();
    const container = await engine.run(b.baseImage, { command: ["sleep", "3600"] });
    const engineSeconds = (performance.now() - t0) / 1000;
    if (container.status !== "running") throw new Error(`engine.run returned status ${container.status}`);
    cleanup.push(container.id);
    // kce run -d
    t0 = performance.now();
    const r = await run("node", [b.cli, "run", "-d", "-q", "-n", b.namespace, b.baseImage, "--", "sleep", "3600"]);
    const cliSeconds = (performance.now() - t0) / 1000;
    if (r.code !== 0) throw new Error(`kce run -d exited ${r.code}: ${r.stderr.slice(-1000)}`);
    cleanup.push(...r.stdout.trim().split("\n").slice(-1));
    if (rep >= 0) {
      times.kubectl.push(kubectlSeconds);
      times.engine.push(engineSeconds);
      times.cli.push(cliSeconds);
    }
    b.log(`P4 ${rep < 0 ? "warm-up" : `rep ${rep + 1}`}: kubectl ${kubectlSeconds.toFixed(2)} s, engine ${engineSeconds.toFixed(2)} s, kce run -d ${cliSeconds.toFixed(2)} s`);
    await kubectl(["delete", "pod", "-n", b.namespace, "--grace-period=1", "--wait=false", ...cleanup.splice(0)]).catch(() => undefined);
  }

  const server = new URL(engine.kubeConfig.getCurrentCluster()?.server ?? "https://127.0.0.1:6443");
  const counter = new ApiCounter(`${server.hostname}:${server.port || "443"}`);
  const lifecycles: Record<string, unknown>[] = [];
  try {
    for (const seconds of [1, 8]) {
      const l = await lifecycle(engine, b, seconds, counter);
      const counts = countByKind(l.requests);
      lifecycles.push({ containerSeconds: seconds, wallSeconds: Math.round(l.wallSeconds * 100) / 100, total: l.requests.length, byKind: counts, requests: l.requests });
      b.log(`P4 lifecycle of a ${seconds} s container (${l.wallSeconds.toFixed(1)} s): ${l.requests.length} API requests ${JSON.stringify(counts)}`);
    }
  } finally {
    counter.stop();
  }
  b.facts.p4 = { lifecycles };
  const kubectlRow: Row = { id: "P4", name: "kubectl run + kubectl wait --for=condition=Ready", unit: "s", stats: stats(times.kubectl) };
  const engineRow: Row = { id: "P4", name: "engine.run() until running, warm process", unit: "s", stats: stats(times.engine) };
  const cliRow: Row = { id: "P4", name: "kce run -d (CLI process)", unit: "s", stats: stats(times.cli) };
  const goal = { text: "≤ 1.05×", ok: (r: number) => r <= 1.05 };
  const count = (i: number): number => Number((lifecycles[i] as { total?: number } | undefined)?.total ?? Number.NaN);
  const requestRow = (i: number, s: number): Row => ({
    id: "P4",
    name: `API requests, lifecycle of a ${s} s container (run, wait, logs, remove)`,
    unit: "requests",
    stats: stats([count(i)]),
    note: JSON.stringify((lifecycles[i] as { byKind?: unknown } | undefined)?.byKind ?? {}),
  });
  const short = requestRow(0, 1);
  const long = requestRow(1, 8);
  return [
    kubectlRow,
    compare(engineRow, kubectlRow, goal),
    compare(cliRow, kubectlRow, goal),
    short,
    { ...compare(long, short), goal: "no polling: same count", met: count(1) === count(0) },
  ];
}
