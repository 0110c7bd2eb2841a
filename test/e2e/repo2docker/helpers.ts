// Setup of the repo2docker e2e tests: a virtualenv with repo2docker from PyPI and our adapter, a `kce`
// wrapper on PATH (dist/cli/main.js, built when missing or stale), and running the real `repo2docker` CLI.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { KCE_NODE_FLAGS } from "../support/node-flags.js";

const run = promisify(execFile);

export const R2D_VERSION = "2026.4.0";
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const ADAPTER = join(ROOT, "python", "repo2docker-kce");

export interface R2dEnvironment {
  venv: string;
  /** Environment for repo2docker: the wrapper and the venv on PATH, no KCE_REGISTRY* (zero configuration). */
  env: NodeJS.ProcessEnv;
  python: string;
}

/** Newest modification time under `dir` (files only). */
function newest(dir: string): number {
  let latest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    latest = Math.max(latest, entry.isDirectory() ? newest(path) : statSync(path).mtimeMs);
  }
  return latest;
}

/** Builds dist/ when dist/cli/main.js is missing or older than a source file. */
async function ensureDist(): Promise<string> {
  const main = join(ROOT, "dist", "cli", "main.js");
  if (!existsSync(main) || statSync(main).mtimeMs < newest(join(ROOT, "src"))) {
    await run("npx", ["tsc", "-p", "tsconfig.build.json"], { cwd: ROOT, timeout: 300_000 });
  }
  return main;
}

/** The venv ($KCE_HOME/venv-r2d-<version>, reused when present) with repo2docker and the current adapter. */
export async function setupRepo2docker(): Promise<R2dEnvironment> {
  const home = process.env.KCE_HOME ?? join(homedir(), ".cache", "kce");
  const venv = join(home, `venv-r2d-${R2D_VERSION}`);
  const python = join(venv, "bin", "python");
  if (!existsSync(join(venv, "bin", "repo2docker"))) {
    mkdirSync(home, { recursive: true });
    await run("python3", ["-m", "venv", venv], { timeout: 120_000 });
    await run(python, ["-m", "pip", "install", "-q", `jupyter-repo2docker==${R2D_VERSION}`, "wheel"], { timeout: 600_000 });
  }
  // `wheel` lets the venv's own setuptools build the adapter below (venvs made before this line lack it)
  if (!(await run(python, ["-c", "import wheel"]).then(() => true, () => false))) {
    await run(python, ["-m", "pip", "install", "-q", "wheel"], { timeout: 300_000 });
  }
  // The adapter under test, always (it is small): no dependency resolution, so no network once cached.
  // --no-build-isolation: built with the venv's setuptools and wheel (pyproject asks setuptools >= 64; the venv has
  // 65), so this step needs no package index — test/kind runs the tests in a network namespace with no way out
  await run(python, ["-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--force-reinstall", ADAPTER], { timeout: 300_000 });
  const main = await ensureDist();
  const bin = mkdtempSync(join(tmpdir(), "kce-r2d-bin-"));
  writeFileSync(join(bin, "kce"), `#!/bin/sh\nexec node ${KCE_NODE_FLAGS.join(" ")} ${JSON.stringify(main)} "$@"\n`, { mode: 0o755 });
  const env: NodeJS.ProcessEnv = { ...process.env, PATH: `${bin}:${join(venv, "bin")}:${process.env.PATH ?? ""}` };
  for (const name of ["KCE_REGISTRY", "KCE_REGISTRY_PUSH", "KCE_REGISTRY_INSECURE", "KCE_BIN", "CONTAINER_ENGINE_REGISTRY_CREDENTIALS"]) {
    delete env[name];
  }
  return { venv, env, python };
}

/** A repository with its own Dockerfile (`FROM $KCE_BASE_IMAGE`) and a marker unique to this run. */
export function dockerfileRepo(marker: string, extra = ""): string {
  const dir = mkdtempSync(join(tmpdir(), "kce-r2d-repo-"));
  const base = process.env.KCE_BASE_IMAGE;
  if (!base) throw new Error("KCE_BASE_IMAGE is not set: source ~/.cache/kce/cluster.env");
  writeFileSync(join(dir, "Dockerfile"), `FROM ${base}\nRUN echo ${marker} > /built\n${extra}CMD ["sh", "-c", "cat /built"]\n`);
  return dir;
}

export interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** stdout and stderr interleaved (repo2docker logs to both). */
  output: string;
}

/** Starts `repo2docker` (the console script of the venv) with `args`. */
export function startRepo2docker(r2d: R2dEnvironment, args: string[], env: NodeJS.ProcessEnv = {}): { child: ChildProcess; done: Promise<Finished>; output: () => string } {
  const child = spawn(join(r2d.venv, "bin", "repo2docker"), args, { env: { ...r2d.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout?.on("data", (d: Buffer) => (output += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (output += d.toString()));
  const done = new Promise<Finished>((resolvePromise, reject) => {
    child.on("error", reject);
    child.on("close", (code, signal) => resolvePromise({ code, signal, output }));
  });
  return { child, done, output: () => output };
}

/** Runs `repo2docker` to completion (killed after `timeoutMs`). */
export async function repo2docker(r2d: R2dEnvironment, args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 240_000): Promise<Finished> {
  const started = startRepo2docker(r2d, args, env);
  const timer = setTimeout(() => started.child.kill("SIGKILL"), timeoutMs);
  try {
    return await started.done;
  } finally {
    clearTimeout(timer);
  }
}

/** Runs a Python snippet in the venv (for the protocol-failure tests). */
export async function python(r2d: R2dEnvironment, code: string, env: NodeJS.ProcessEnv = {}, timeoutMs = 60_000): Promise<Finished> {
  const child = spawn(r2d.python, ["-c", code], { env: { ...r2d.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout.on("data", (d: Buffer) => (output += d.toString()));
  child.stderr.on("data", (d: Buffer) => (output += d.toString()));
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  return new Promise((resolvePromise, reject) => {
    child.on("error", reject);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolvePromise({ code, signal, output });
    });
  });
}

/** PIDs of `kce rpc` processes serving `namespace` (none should outlive repo2docker). */
export async function rpcProcesses(namespace: string): Promise<string[]> {
  try {
    const { stdout } = await run("pgrep", ["-f", `main.js rpc --namespace ${namespace}`]);
    return stdout.split("\n").filter(Boolean);
  } catch {
    return []; // pgrep exits 1 when nothing matches
  }
}
