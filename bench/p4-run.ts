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

type Variant = "kubectl" | "engine" | "cli";

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

/**
 * The kubelet reports a started container at its next relist (generic PLEG: every 1 s), so the time to
 * `running` depends on when in that 1 s cycle a pod is created. Each variant therefore starts right after the
 * previous pod was seen ready (the same phase for all), the order rotates each repetition, and the pods are
 * deleted only at the end (a deletion in between would shift the phase of whatever comes next).
 */
export async function benchRun(b: Bench): Promise<Row[]> {
  const engine = new KubernetesEngine({ namespace: b.namespace, log: () => undefined });
  const times: Record<Variant, number[]> = { kubectl: [], engine: [], cli: [] };
  const pods: string[] = [];
  const variants: Record<Variant, () => Promise<string>> = {
    kubectl: async () => {
      const name = `p4-kubectl-${suffix()}`;
      await kubectl(["run", name, "-n", b.namespace, `--image=${b.baseImage}`, "--restart=Never", "--", "sleep", "3600"]);
      await kubectl(["wait", "-n", b.namespace, "--for=condition=Ready", `pod/${name}`, "--timeout=120s"]);
      return name;
    },
    engine: async () => {
      const container = await engine.run(b.baseImage, { command: ["sleep", "3600"] });
      if (container.status !== "running") throw new Error(`engine.run returned status ${container.status}`);
      return container.id;
    },
    cli: async () => {
      const r = await run("node", [b.cli, "run", "-d", "-q", "-n", b.namespace, b.baseImage, "--", "sleep", "3600"]);
      if (r.code !== 0) throw new Error(`kce run -d exited ${r.code}: ${r.stderr.slice(-1000)}`);
      return r.stdout.trim().split("\n").slice(-1)[0] ?? "";
    },
  };
  const order: Variant[] = ["kubectl", "engine", "cli"];
  try {
    for (let rep = -1; rep < b.options.reps; rep++) {
      const seconds: Partial<Record<Variant, number>> = {};
      for (let i = 0; i < order.length; i++) {
        const variant = order[(i + Math.max(rep, 0)) % order.length] as Variant;
        const t0 = performance.now();
        pods.push(await variants[variant]());
        seconds[variant] = (performance.now() - t0) / 1000;
        if (rep >= 0) times[variant].push(seconds[variant]);
      }
      b.log(`P4 ${rep < 0 ? "warm-up" : `rep ${rep + 1}`}: kubectl ${seconds.kubectl?.toFixed(2)} s, engine ${seconds.engine?.toFixed(2)} s, kce run -d ${seconds.cli?.toFixed(2)} s`);
    }
  } finally {
    await kubectl(["delete", "pod", "-n", b.namespace, "--grace-period=1", "--wait=false", ...pods]).catch(() => undefined);
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
