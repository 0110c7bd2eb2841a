/**
 * P5 concurrency: 8 Kaniko builds (each its own RUN line, layer cache and content hash off so each really
 * builds) at once from one engine in one process, vs the same 8 one after another; all must succeed. The
 * engine's CPU time (process.cpuUsage: user + system) is measured for both.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { KubernetesEngine } from "../src/index.js";
import type { Bench } from "./context.js";
import { OUT, stats, suffix } from "./lib.js";
import { compare, type Row } from "./report.js";

async function prepare(b: Bench, count: number): Promise<string[]> {
  const dirs: string[] = [];
  for (let i = 0; i < count; i++) {
    const dir = join(OUT, "contexts", `p5-${i}`);
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, "Dockerfile"), `FROM ${b.baseImage}\nRUN echo ${suffix()} > /built\n`);
    dirs.push(dir);
  }
  return dirs;
}

async function build(engine: KubernetesEngine, dir: string, i: number): Promise<void> {
  const stream = engine.build({ tag: `kce-bench/p5-${i}:${suffix()}`, path: dir });
  for await (const _line of stream) {
    // output not needed
  }
  await stream.result;
}

function cpuSeconds(since: NodeJS.CpuUsage): number {
  const u = process.cpuUsage(since);
  return (u.user + u.system) / 1e6;
}

export async function benchConcurrency(b: Bench): Promise<Row[]> {
  const n = b.options.quick ? 3 : 8;
  const reps = b.options.quick ? 1 : Math.min(b.options.reps, 3);
  const engine = new KubernetesEngine({ namespace: b.namespace, builder: "kaniko", layerCache: false, contentAddressed: false, log: () => undefined });
  const wall = { parallel: [] as number[], sequential: [] as number[] };
  const cpu = { parallel: [] as number[], sequential: [] as number[] };
  const failures: string[] = [];
  for (let rep = 0; rep < reps; rep++) {
    let dirs = await prepare(b, n);
    let cpu0 = process.cpuUsage();
    let t0 = performance.now();
    const results = await Promise.allSettled(dirs.map((dir, i) => build(engine, dir, i)));
    wall.parallel.push((performance.now() - t0) / 1000);
    cpu.parallel.push(cpuSeconds(cpu0));
    for (const r of results) if (r.status === "rejected") failures.push(String(r.reason).split("\n")[0] ?? "");
    dirs = await prepare(b, n);
    cpu0 = process.cpuUsage();
    t0 = performance.now();
    for (const [i, dir] of dirs.entries()) await build(engine, dir, i);
    wall.sequential.push((performance.now() - t0) / 1000);
    cpu.sequential.push(cpuSeconds(cpu0));
    b.log(
      `P5 rep ${rep + 1}: ${n} at once ${wall.parallel[rep]?.toFixed(1)} s (${results.filter((r) => r.status === "fulfilled").length}/${n} ok, CPU ${cpu.parallel[rep]?.toFixed(2)} s), ` +
        `in sequence ${wall.sequential[rep]?.toFixed(1)} s (CPU ${cpu.sequential[rep]?.toFixed(2)} s)`,
    );
  }
  b.facts.p5 = { builds: n, failures, wall, cpu };
  const seq: Row = { id: "P5", name: `${n} builds in sequence, wall`, unit: "s", stats: stats(wall.sequential) };
  const par: Row = {
    id: "P5",
    name: `${n} builds at once, wall`,
    unit: "s",
    stats: stats(wall.parallel),
    goal: "all succeed",
    met: failures.length === 0,
    ...(failures.length > 0 ? { note: `${failures.length} failed: ${failures[0]}` } : {}),
  };
  return [
    seq,
    compare(par, seq),
    { id: "P5", name: `engine CPU (user+sys), ${n} builds at once`, unit: "s", stats: stats(cpu.parallel) },
    { id: "P5", name: `engine CPU (user+sys), ${n} builds in sequence`, unit: "s", stats: stats(cpu.sequential) },
  ];
}
