/**
 * `npm run bench [-- --quick] [--reps N] [--only P1,P4]`: brings up or reuses the local cluster, runs the
 * benchmarks P1…P5 in a namespace of their own, prints a table and writes bench/out/results.json.
 * See bench/README.md for what each one measures.
 */
import { writeFileSync, mkdirSync, readFileSync } from "node:fs";
import { cpus, totalmem, release } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import type { Bench, BenchOptions } from "./context.js";
import { BUILD, ensureCluster, kubectl, machineLoad, OUT, REPO, run, suffix } from "./lib.js";
import { benchBuild } from "./p1-build.js";
import { benchUpload } from "./p2-upload.js";
import { benchCache } from "./p3-cache.js";
import { benchRun } from "./p4-run.js";
import { benchConcurrency } from "./p5-concurrency.js";
import { benchService } from "./p6-service.js";
import { benchPool } from "./p7-pool.js";
import { table, type Row } from "./report.js";

const SUITES: Record<string, (b: Bench) => Promise<Row[]>> = {
  P1: benchBuild,
  P2: benchUpload,
  P3: benchCache,
  P4: benchRun,
  P5: benchConcurrency,
  P6: benchService,
  P7: benchPool,
};

function options(): BenchOptions {
  const { values } = parseArgs({
    options: {
      quick: { type: "boolean", default: false },
      reps: { type: "string" },
      only: { type: "string" },
    },
  });
  const quick = values.quick === true;
  const reps = values.reps !== undefined ? Number(values.reps) : quick ? 1 : 5;
  if (!Number.isInteger(reps) || reps < 1) throw new Error(`--reps ${values.reps}: a positive integer`);
  const only = new Set((values.only ?? Object.keys(SUITES).join(",")).split(",").map((s) => s.trim().toUpperCase()));
  for (const id of only) if (!SUITES[id]) throw new Error(`--only: unknown benchmark ${id} (P1…P7)`);
  return { quick, reps, only };
}

async function versions(): Promise<Record<string, string>> {
  const kc = await run(join(process.env.KCE_BIN_DIR ?? "", "kubectl"), ["version", "-o", "json"]);
  let server = "?";
  let client = "?";
  try {
    const v = JSON.parse(kc.stdout) as { clientVersion?: { gitVersion?: string }; serverVersion?: { gitVersion?: string } };
    client = v.clientVersion?.gitVersion ?? "?";
    server = v.serverVersion?.gitVersion ?? "?";
  } catch {
    // left as "?"
  }
  const pkg = (name: string): string => {
    try {
      return (JSON.parse(readFileSync(join(REPO, "node_modules", name, "package.json"), "utf8")) as { version: string }).version;
    } catch {
      return "?";
    }
  };
  const commit = (await run("git", ["-C", REPO, "rev-parse", "--short", "HEAD"])).stdout.trim();
  const dirty = (await run("git", ["-C", REPO, "status", "--porcelain", "--", "src"])).stdout.trim() !== "";
  return {
    node: process.version,
    kubectl: client,
    apiServer: server,
    clientNode: pkg("@kubernetes/client-node"),
    ws: pkg("ws"),
    commit: `${commit}${dirty ? " (src/ has uncommitted changes)" : ""}`,
    kaniko: process.env.KCE_KANIKO_IMAGE ?? "?",
    buildkit: process.env.KCE_BUILDKIT_IMAGE ?? "?",
  };
}

/** Waits up to 5 minutes for the API server's /readyz and a Ready node. */
async function waitReady(log: (m: string) => void): Promise<void> {
  const kubectlBin = join(process.env.KCE_BIN_DIR ?? "", "kubectl");
  const deadline = Date.now() + 300_000;
  let said = false;
  for (;;) {
    const ready = await run(kubectlBin, ["get", "--raw", "/readyz", "--request-timeout=5s"]);
    const node = ready.code === 0 ? await run(kubectlBin, ["wait", "--for=condition=Ready", "nodes", "--all", "--timeout=5s"]) : null;
    if (node?.code === 0) return;
    if (Date.now() > deadline) throw new Error("the cluster did not become ready within 5 minutes");
    if (!said) log("waiting for the API server and the node to be ready");
    said = true;
    await new Promise((r) => setTimeout(r, 3000));
  }
}

async function main(): Promise<void> {
  const opts = options();
  const log = (m: string): void => void process.stderr.write(`bench: ${m}\n`);
  const started = new Date();
  const env = await ensureCluster(log);
  const namespace = `kce-bench-${suffix()}`;
  await kubectl(["create", "namespace", namespace]);
  await kubectl(["label", "namespace", namespace, "app.kubernetes.io/managed-by=kube-container-engine-bench"]);
  // The default ServiceAccount must exist before pods can be created.
  for (let i = 0; i < 100; i++) {
    if ((await run(join(env.KCE_BIN_DIR ?? "", "kubectl"), ["get", "serviceaccount", "default", "-n", namespace])).code === 0) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  const need = (name: string): string => {
    const v = process.env[name];
    if (!v) throw new Error(`${name} is not set (cluster.env)`);
    return v;
  };
  const bench: Bench = {
    options: opts,
    env,
    namespace,
    registry: need("KCE_REGISTRY"),
    pushRegistry: process.env.KCE_REGISTRY_PUSH ?? need("KCE_REGISTRY"),
    baseImage: need("KCE_BASE_IMAGE"),
    kanikoImage: need("KCE_KANIKO_IMAGE"),
    cli: join(BUILD, "src", "cli", "main.js"),
    log,
    facts: {},
  };
  const loadBefore = await machineLoad();
  log(`namespace ${namespace}; load ${loadBefore.loadavg}, ${loadBefore.pods} pods in the cluster; ${opts.reps} repetition(s)`);
  const rows: Row[] = [];
  const errors: Record<string, string> = {};
  const loads: Record<string, unknown> = {};
  const retried: string[] = [];
  try {
    for (const [id, suite] of Object.entries(SUITES)) {
      if (!opts.only.has(id)) continue;
      const t0 = performance.now();
      // Other work on a shared dev cluster (fault-injection tests) may stop the API server or the kubelet for
      // a while: wait for it, and run a suite that failed on a connection error once more.
      for (let attempt = 1; attempt <= 2; attempt++) {
        await waitReady(log);
        try {
          rows.push(...(await suite(bench)));
          delete errors[id];
          break;
        } catch (err) {
          errors[id] = err instanceof Error ? (err.stack ?? err.message) : String(err);
          log(`${id} failed (attempt ${attempt}): ${errors[id]}`);
          if (!/ECONNREFUSED|ECONNRESET|was refused|connection refused|10250|cannot reach/i.test(errors[id] ?? "")) break;
          retried.push(id);
        }
      }
      loads[id] = { ...(await machineLoad()), seconds: Math.round((performance.now() - t0) / 100) / 10 };
      log(`${id} done in ${(performance.now() - t0) / 1000} s`);
    }
  } finally {
    await kubectl(["delete", "namespace", namespace, "--wait=false"]).catch((err: unknown) => log(`cleanup: ${String(err)}`));
  }
  const loadAfter = await machineLoad();
  const result = {
    startedAt: started.toISOString(),
    finishedAt: new Date().toISOString(),
    seconds: Math.round((Date.now() - started.getTime()) / 1000),
    options: { quick: opts.quick, reps: opts.reps, only: [...opts.only] },
    machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? "?", memoryGiB: Math.round(totalmem() / 2 ** 30), kernel: release() },
    versions: await versions(),
    load: { before: loadBefore, after: loadAfter, perSuite: loads },
    rows,
    errors,
    retried,
    facts: bench.facts,
  };
  mkdirSync(OUT, { recursive: true });
  writeFileSync(join(OUT, "results.json"), `${JSON.stringify(result, null, 2)}\n`);
  const text = table(rows);
  writeFileSync(join(OUT, "results.md"), `${text}\n`);
  process.stdout.write(`${text}\n\nbench/out/results.json written (${result.seconds} s)\n`);
  if (Object.keys(errors).length > 0) {
    process.stdout.write(`failed: ${Object.keys(errors).join(", ")}\n`);
    process.exitCode = 1;
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
