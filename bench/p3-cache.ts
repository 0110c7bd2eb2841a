/**
 * P3 cache, with the engine's defaults (Kaniko layer cache in the registry, content-addressed builds):
 *  - cold: a new repository (empty cache) and a new RUN line: everything is built;
 *  - warm: the same build after a change to the file copied by the last line: the RUN layer comes from the
 *    cache, only the last layer is rebuilt;
 *  - unchanged: the same build again: the content hash names an image the registry holds, so no builder pod
 *    starts (checked: `result.source` is "existing", `result.pod` null, and no API request created anything).
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { KubernetesEngine, type BuildResult } from "../src/index.js";
import { ApiCounter, countByKind } from "./api-counter.js";
import type { Bench } from "./context.js";
import { OUT, stats, suffix } from "./lib.js";
import { compare, type Row } from "./report.js";

async function build(engine: KubernetesEngine, tag: string, dir: string): Promise<{ seconds: number; result: BuildResult }> {
  const started = performance.now();
  const stream = engine.build({ tag, path: dir });
  for await (const _line of stream) {
    // output not needed
  }
  const result = await stream.result;
  return { seconds: (performance.now() - started) / 1000, result };
}

export async function benchCache(b: Bench): Promise<Row[]> {
  const dir = join(OUT, "contexts", "p3");
  await mkdir(dir, { recursive: true });
  const engine = new KubernetesEngine({ namespace: b.namespace, builder: "kaniko", log: () => undefined });
  const server = new URL(engine.kubeConfig.getCurrentCluster()?.server ?? "https://127.0.0.1:6443");
  const reps = b.options.quick ? 1 : Math.min(b.options.reps, 3);
  const times = { cold: [] as number[], warm: [] as number[], unchanged: [] as number[] };
  const unchangedRequests: Record<string, number>[] = [];
  const problems: string[] = [];
  for (let rep = 0; rep < reps; rep++) {
    const nonce = suffix();
    // ~3 s of work and an 8 MiB layer before the last line, like installing dependencies before COPY.
    await writeFile(
      join(dir, "Dockerfile"),
      `FROM ${b.baseImage}\nRUN sleep 3 && dd if=/dev/urandom of=/deps bs=1M count=8 2>/dev/null && echo ${nonce} > /id\nCOPY last.txt /last.txt\n`,
    );
    await writeFile(join(dir, "last.txt"), "first\n");
    const tag = `kce-bench/p3-${nonce}:v1`;
    const cold = await build(engine, tag, dir);
    await writeFile(join(dir, "last.txt"), "second\n");
    const warm = await build(engine, tag, dir);
    const counter = new ApiCounter(`${server.hostname}:${server.port || "443"}`);
    let unchanged: { seconds: number; result: BuildResult };
    try {
      unchanged = await build(engine, tag, dir);
    } finally {
      counter.stop();
    }
    const requests = countByKind(counter.requests);
    unchangedRequests.push(requests);
    if (unchanged.result.source !== "existing" || unchanged.result.pod !== null) {
      problems.push(`rep ${rep + 1}: the unchanged rebuild was ${unchanged.result.source} by pod ${unchanged.result.pod}`);
    }
    if ((requests.create ?? 0) > 0) problems.push(`rep ${rep + 1}: the unchanged rebuild created ${requests.create} object(s)`);
    times.cold.push(cold.seconds);
    times.warm.push(warm.seconds);
    times.unchanged.push(unchanged.seconds);
    b.log(
      `P3 rep ${rep + 1}: cold ${cold.seconds.toFixed(2)} s (${cold.result.source}), warm ${warm.seconds.toFixed(2)} s (${warm.result.source}), ` +
        `unchanged ${unchanged.seconds.toFixed(2)} s (${unchanged.result.source}, pod ${unchanged.result.pod}, API requests ${JSON.stringify(requests)})`,
    );
  }
  const cold: Row = { id: "P3", name: "cold build (RUN 3 s + 8 MiB layer, COPY)", unit: "s", stats: stats(times.cold) };
  const warm: Row = { id: "P3", name: "warm rebuild, last layer changed (layer cache)", unit: "s", stats: stats(times.warm) };
  const unchangedRow: Row = {
    id: "P3",
    name: "unchanged rebuild (content hash, no pod)",
    unit: "s",
    stats: stats(times.unchanged),
    goal: "≤ 1 s, no pod",
    met: stats(times.unchanged).max <= 1 && problems.length === 0,
    note: `API requests: ${JSON.stringify(unchangedRequests[0] ?? {})}`,
  };
  b.facts.p3 = { problems, unchangedApiRequests: unchangedRequests };
  return [cold, compare(warm, cold, { text: "≤ 0.3×", ok: (r) => r <= 0.3 }), unchangedRow];
}
