/**
 * P2 context upload into a waiting busybox pod, the same command on the pod side for every variant
 * (`tar xz` into an empty directory, then count the files that arrived):
 *  - `tar cz -C <dir> . | kubectl exec -i <pod> -- …` (the recipe; gzip level 6);
 *  - the same with `tar c | gzip -1` (the engine's compression level, to tell compression from transport);
 *  - the engine: its context packer (deterministic tar, gzip level 1, backpressure) into `execInPod`, in a
 *    child process (upload-child.ts) whose peak RSS (VmHWM) is its own.
 * Throughput = the files' bytes / wall time of the whole command (process start included for all).
 * Then the engine's peak RSS at 64 MiB, 512 MiB and 2 GiB contexts.
 */
import { join } from "node:path";
import type { Bench } from "./context.js";
import { bash, BUILD, kubectl, kubectlPath, makeTree, MiB, OUT, q, round, run, stats, type Tree } from "./lib.js";
import { compare, type Row } from "./report.js";

const POD = "bench-sink";
const DIR = "/tmp/upload";
/** Pod side of every variant: unpack, then print how many files arrived. */
const SINK = `mkdir -p ${DIR} && tar xz -C ${DIR} && find ${DIR} -type f | wc -l`;

interface ChildReport {
  exitCode: number | null;
  stdout: string;
  stderr: string;
  bytesSent: number;
  tarBytes: number;
  gzipBytes: number;
  files: number;
  listMs: number;
  transferMs: number;
  baselineRssMiB: number | null;
  hwmMiB: number | null;
  protocol: string;
}

async function clean(b: Bench): Promise<void> {
  await kubectl(["exec", "-n", b.namespace, POD, "--", "rm", "-rf", DIR]);
}

/** The engine's upload in a child process: wall seconds and what it reported. */
async function engineUpload(b: Bench, tree: Tree): Promise<{ seconds: number; report: ChildReport }> {
  const r = await run("node", [join(BUILD, "bench", "upload-child.js"), b.namespace, POD, tree.dir, JSON.stringify(["sh", "-c", SINK])]);
  if (r.code !== 0) throw new Error(`upload-child exited ${r.code}: ${r.stderr.slice(-2000)}`);
  const report = JSON.parse(r.stdout.trim().split("\n").pop() ?? "{}") as ChildReport;
  if (report.exitCode !== 0) throw new Error(`the pod's tar exited ${report.exitCode}: ${report.stderr}`);
  if (Number(report.stdout) !== tree.files + 2) throw new Error(`engine: ${report.stdout} files arrived, ${tree.files + 2} expected`);
  return { seconds: r.ms / 1000, report };
}

async function kubectlUpload(b: Bench, tree: Tree, level: "default" | 1): Promise<number> {
  const pack = level === 1 ? `tar c -C ${q(tree.dir)} . | gzip -1` : `tar cz -C ${q(tree.dir)} .`;
  const r = await bash(`${pack} | ${q(kubectlPath())} exec -i -n ${b.namespace} ${POD} -- sh -c ${q(SINK)}`);
  if (Number(r.stdout.trim()) !== tree.files + 2) throw new Error(`kubectl: ${r.stdout.trim()} files arrived, ${tree.files + 2} expected`);
  return r.ms / 1000;
}

export async function benchUpload(b: Bench): Promise<Row[]> {
  const dockerfile = `FROM ${b.baseImage}\n`;
  const contexts = join(OUT, "contexts");
  const speedShape = b.options.quick ? { files: 5_000, bytes: 64 * MiB } : { files: 50_000, bytes: 512 * MiB };
  b.log(`P2: writing the ${speedShape.bytes / MiB} MiB / ${speedShape.files}-file context (reused by later runs)`);
  const speedTree = await makeTree(join(contexts, `p2-${speedShape.bytes / MiB}m`), speedShape.files, speedShape.bytes, dockerfile);

  await kubectl(["run", POD, "-n", b.namespace, `--image=${b.baseImage}`, "--restart=Never", "--", "sleep", "86400"]);
  await kubectl(["wait", "-n", b.namespace, "--for=condition=Ready", `pod/${POD}`, "--timeout=120s"]);

  const reps = b.options.quick ? 1 : Math.min(b.options.reps, 3);
  const times = { kubectl: [] as number[], kubectlGzip1: [] as number[], engine: [] as number[] };
  const reports: ChildReport[] = [];
  for (let rep = 0; rep < reps; rep++) {
    times.kubectl.push(await kubectlUpload(b, speedTree, "default"));
    await clean(b);
    times.kubectlGzip1.push(await kubectlUpload(b, speedTree, 1));
    await clean(b);
    const e = await engineUpload(b, speedTree);
    times.engine.push(e.seconds);
    reports.push(e.report);
    await clean(b);
    b.log(`P2 rep ${rep + 1}: kubectl ${times.kubectl[rep]?.toFixed(2)} s, kubectl gzip -1 ${times.kubectlGzip1[rep]?.toFixed(2)} s, engine ${e.seconds.toFixed(2)} s (list ${(e.report.listMs / 1000).toFixed(2)} s, peak RSS ${e.report.hwmMiB?.toFixed(0)} MiB)`);
  }
  const mibps = (secs: number[]): number[] => secs.map((s) => speedTree.bytes / MiB / s);
  const label = `${speedShape.bytes / MiB} MiB / ${speedShape.files / 1000}k files`;
  const recipe: Row = { id: "P2", name: `upload ${label}: tar cz | kubectl exec -i`, unit: "MiB/s", stats: stats(mibps(times.kubectl)) };
  const gz1: Row = { id: "P2", name: `upload ${label}: tar c | gzip -1 | kubectl exec -i`, unit: "MiB/s", stats: stats(mibps(times.kubectlGzip1)) };
  const engine: Row = { id: "P2", name: `upload ${label}: engine packer + execInPod`, unit: "MiB/s", stats: stats(mibps(times.engine)) };
  const rows: Row[] = [recipe, compare(gz1, recipe), compare(engine, recipe, { text: "≥ 1.5×", ok: (r) => r >= 1.5 })];
  const last = reports[reports.length - 1];
  b.facts.p2 = {
    speedContext: { files: speedTree.files, bytes: speedTree.bytes, tarBytes: last?.tarBytes, gzipBytes: last?.gzipBytes, protocol: last?.protocol },
    seconds: times,
    engineListSeconds: reports.map((r) => round(r.listMs / 1000)),
  };

  // Peak RSS of the engine's process at growing context sizes.
  const sizes = b.options.quick
    ? [{ files: 5_000, bytes: 64 * MiB }]
    : [
        { files: 5_000, bytes: 64 * MiB },
        { files: 50_000, bytes: 512 * MiB },
        { files: 20_000, bytes: 2048 * MiB },
      ];
  const rss: Record<string, unknown>[] = [];
  for (const shape of sizes) {
    const name = `p2-${shape.bytes / MiB}m`;
    const tree = name === speedTree.dir.split("/").pop() ? speedTree : await makeTree(join(contexts, name), shape.files, shape.bytes, dockerfile);
    const known = tree === speedTree ? reports : [];
    const measured = known.length > 0 ? known : [(await engineUpload(b, tree)).report];
    if (known.length === 0) await clean(b);
    const hwm = measured.map((r) => r.hwmMiB ?? Number.NaN);
    const base = measured.map((r) => r.baselineRssMiB ?? Number.NaN);
    const row: Row = {
      id: "P2",
      name: `engine peak RSS (VmHWM), ${shape.bytes >= 1024 * MiB ? `${shape.bytes / 1024 / MiB} GiB` : `${shape.bytes / MiB} MiB`} / ${shape.files / 1000}k files`,
      unit: "MiB",
      stats: stats(hwm),
      goal: "≤ 150 MiB",
      met: stats(hwm).max <= 150,
      note: `baseline ${stats(base).median.toFixed(0)} MiB`,
    };
    rows.push(row);
    rss.push({ bytes: tree.bytes, files: tree.files, hwmMiB: hwm, baselineRssMiB: base, transferSeconds: measured.map((r) => round(r.transferMs / 1000)) });
    b.log(`P2 RSS ${tree.bytes / MiB} MiB: peak ${hwm.map((h) => h.toFixed(0)).join(", ")} MiB (baseline ${base.map((x) => x.toFixed(0)).join(", ")})`);
  }
  b.facts.p2rss = rss;
  await kubectl(["delete", "pod", POD, "-n", b.namespace, "--grace-period=0", "--force", "--wait=false"]).catch(() => undefined);
  return rows;
}
