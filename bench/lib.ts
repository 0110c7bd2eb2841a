/**
 * Helpers of the benchmark runner: the cluster's environment, child processes, timing statistics, context
 * trees on disk, and peak memory of a process.
 */
import { spawn, type SpawnOptions } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root (bench/out/build/bench/lib.js → ../../../..). */
export const REPO = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "..");
export const OUT = join(REPO, "bench", "out");
/** The compiled tree of this run: src/ and bench/ as tsc wrote them. */
export const BUILD = join(OUT, "build");

export const MiB = 1024 * 1024;

/** What a finished child process did. */
export interface Exited {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Wall time from spawn to exit, ms. */
  ms: number;
}

/** Runs a command to its end, collecting its output; never rejects for a non-zero exit. */
export function run(command: string, args: string[], options: SpawnOptions & { input?: string } = {}): Promise<Exited> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { ...options, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout?.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr?.setEncoding("utf8").on("data", (d: string) => (stderr = (stderr + d).slice(-64 * 1024)));
    child.once("error", reject);
    child.once("close", (code) => resolve({ code, stdout, stderr, ms: performance.now() - started }));
    child.stdin?.on("error", () => undefined); // a command that does not read its stdin may exit first
    child.stdin?.end(options.input ?? "");
  });
}

/** Like {@link run}, but a non-zero exit is an error carrying the command's stderr. */
export async function check(command: string, args: string[], options: SpawnOptions & { input?: string } = {}): Promise<Exited> {
  const r = await run(command, args, options);
  if (r.code !== 0) throw new Error(`${command} ${args.join(" ")} exited ${r.code}: ${r.stderr.trim().slice(-2000)}`);
  return r;
}

/** Runs a bash script with `set -euo pipefail`. */
export function bash(script: string, options: SpawnOptions = {}): Promise<Exited> {
  return check("bash", ["-c", `set -euo pipefail\n${script}`], options);
}

/** Single-quotes a string for bash. */
export function q(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The cluster's variables, as `test/cluster/up` exports them. */
export type ClusterEnv = Record<string, string>;

export function parseExports(text: string): ClusterEnv {
  const env: ClusterEnv = {};
  for (const line of text.split("\n")) {
    const m = /^export ([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line.trim());
    if (!m || m[1] === undefined || m[2] === undefined) continue;
    env[m[1]] = m[2].replace(/^'(.*)'$/, "$1").replace(/^"(.*)"$/, "$1");
  }
  return env;
}

/**
 * Reuses the local cluster when `$KCE_HOME/cluster.env` exists and its API server answers; otherwise runs
 * `test/cluster/up` (which starts only what is not running). Puts the variables into `process.env`.
 */
export async function ensureCluster(log: (m: string) => void): Promise<ClusterEnv> {
  const home = process.env.KCE_HOME ?? join(homedir(), ".cache", "kce");
  const file = join(home, "cluster.env");
  if (existsSync(file)) {
    const env = parseExports(readFileSync(file, "utf8"));
    const kubectl = join(env.KCE_BIN_DIR ?? "", "kubectl");
    let answer = "no kubectl";
    for (let attempt = 0; attempt < 5 && existsSync(kubectl); attempt++) {
      const ready = await run(kubectl, ["get", "--raw", "/readyz", "--request-timeout=5s"], { env: { ...process.env, ...env } });
      if (ready.code === 0) {
        Object.assign(process.env, env);
        return env;
      }
      answer = (ready.stderr || ready.stdout).trim().slice(-300);
      await sleep(2000);
    }
    log(`the cluster in ${file} does not answer (${answer}): running test/cluster/up`);
  } else {
    log(`${file} is missing: running test/cluster/up (a cold start builds everything, ≈ 9 minutes)`);
  }
  const up = await run(join(REPO, "test", "cluster", "up"), [], { env: { ...process.env, KCE_HOME: home }, stdio: "pipe" });
  if (up.code !== 0) throw new Error(`test/cluster/up failed (${up.code}):\n${up.stderr.slice(-4000)}`);
  const env = parseExports(up.stdout);
  Object.assign(process.env, env);
  return env;
}

export function kubectlPath(): string {
  const dir = process.env.KCE_BIN_DIR;
  if (!dir) throw new Error("KCE_BIN_DIR is not set");
  return join(dir, "kubectl");
}

export function kubectl(args: string[], options: SpawnOptions & { input?: string } = {}): Promise<Exited> {
  return check(kubectlPath(), args, options);
}

/** Summary statistics of repeated measurements. */
export interface Stats {
  n: number;
  median: number;
  min: number;
  max: number;
  values: number[];
}

export function stats(values: number[]): Stats {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const median =
    sorted.length === 0 ? Number.NaN : sorted.length % 2 === 1 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
  return { n: values.length, median, min: sorted[0] ?? Number.NaN, max: sorted[sorted.length - 1] ?? Number.NaN, values };
}

export function round(x: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

export function suffix(): string {
  return randomBytes(3).toString("hex");
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A context tree on disk. */
export interface Tree {
  dir: string;
  files: number;
  /** Sum of the files' sizes (the Dockerfile excluded). */
  bytes: number;
}

/** 8 MiB of text from a vocabulary of random words: compresses like prose or source (≈ 3:1 with gzip -6). */
function textPool(): Buffer {
  const words = Array.from({ length: 2000 }, () => randomBytes(2 + (randomBytes(1)[0] ?? 0) % 8).toString("base64url").toLowerCase());
  const parts: string[] = [];
  let size = 0;
  const picks = randomBytes(4 * 1024 * 1024);
  for (let i = 0; size < 8 * MiB; i += 2) {
    const w = words[((picks[i % picks.length] ?? 0) * 256 + (picks[(i + 1) % picks.length] ?? 0)) % words.length] ?? "x";
    const sep = (picks[(i + 7) % picks.length] ?? 0) % 12 === 0 ? ";\n" : " ";
    parts.push(w, sep);
    size += w.length + sep.length;
  }
  return Buffer.from(parts.join(""));
}

/**
 * Writes `files` files of `bytes / files` bytes each under `dir/data/<i % 100>/`, plus a Dockerfile. Each file
 * is half random bytes (like images or archives) and half text taken at a random place of an 8 MiB word pool
 * (like source), so gzip -1 shrinks the tree to about 60 %. Reused when `dir/.complete` says the same shape
 * was written before.
 */
export async function makeTree(dir: string, files: number, bytes: number, dockerfile: string): Promise<Tree> {
  const size = Math.floor(bytes / files);
  const marker = join(dir, ".complete");
  const shape = `${files} ${size} v2\n`;
  if (existsSync(marker) && readFileSync(marker, "utf8") === shape) {
    await writeFile(join(dir, "Dockerfile"), dockerfile);
    return { dir, files, bytes: size * files };
  }
  await rm(dir, { recursive: true, force: true });
  for (let d = 0; d < Math.min(100, files); d++) await mkdir(join(dir, "data", String(d)), { recursive: true });
  const text = textPool();
  const half = Math.floor(size / 2);
  const offsets = randomBytes(4 * files);
  const batch = 64;
  for (let i = 0; i < files; i += batch) {
    const writes: Promise<void>[] = [];
    for (let j = i; j < Math.min(files, i + batch); j++) {
      const at = offsets.readUInt32LE(4 * j) % (text.length - (size - half));
      const content = Buffer.concat([randomBytes(half), text.subarray(at, at + (size - half))]);
      writes.push(writeFile(join(dir, "data", String(j % 100), `f${j}.bin`), content));
    }
    await Promise.all(writes);
  }
  await writeFile(join(dir, "Dockerfile"), dockerfile);
  await writeFile(marker, shape);
  return { dir, files, bytes: size * files };
}

/** Peak (VmHWM) and current (VmRSS) resident memory of a process, MiB; null when it is gone. */
export function memoryOf(pid: number | "self"): { hwmMiB: number; rssMiB: number } | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kib = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? Number.NaN);
    return { hwmMiB: kib("VmHWM") / 1024, rssMiB: kib("VmRSS") / 1024 };
  } catch {
    return null;
  }
}

/** Load average and the cluster's pod count, to tell how busy the machine was. */
export async function machineLoad(): Promise<{ loadavg: string; pods: number }> {
  const loadavg = readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
  const r = await run(kubectlPath(), ["get", "pods", "-A", "--no-headers"]);
  return { loadavg, pods: r.stdout.split("\n").filter((l) => l.trim() !== "").length };
}
