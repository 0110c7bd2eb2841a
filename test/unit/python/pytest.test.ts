// The Python adapter's own tests (python/repo2docker-kce/tests: the build runner of `kce serve` and the
// `kce rpc` client), run with pytest as part of the unit run. pytest lives in a cached virtualenv,
// $KCE_HOME/venv-pytest-<hash of the requirements>, created on first use (`python3 -m venv` + pip from PyPI);
// the adapter is taken from this tree through PYTHONPATH, never installed. repo2docker is installed because
// the adapter's package imports repo2docker.engine (its exception classes), as `python -m
// repo2docker_kce.runner` does in the runner image.
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const ADAPTER = join(ROOT, "python", "repo2docker-kce");
const REQUIREMENTS = ["pytest==9.0.3", "jupyter-repo2docker==2026.4.0"];
/** Tests in python/repo2docker-kce/tests (each parametrised case counts): fewer passing means some did not run. */
const MIN_TESTS = 85;
/** Creating the venv on a cold machine (download + install), and the suite on a busy 2-core one. */
const VENV_TIMEOUT_MS = 300_000;
const PYTEST_TIMEOUT_MS = 300_000;

interface Finished {
  code: number | null;
  output: string;
}

/** Runs a command to its end (never rejects for a non-zero exit): its status and stdout+stderr. */
function run(file: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs: number }): Promise<Finished> {
  return new Promise((resolvePromise, reject) => {
    execFile(
      file,
      args,
      { cwd: options.cwd, env: options.env ?? process.env, timeout: options.timeoutMs, killSignal: "SIGKILL", maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error && typeof error.code !== "number" && !error.killed) return reject(error); // could not start
        const code = error ? (typeof error.code === "number" ? error.code : null) : 0;
        resolvePromise({ code, output: `${stdout}${stderr ? `\n--- stderr ---\n${stderr}` : ""}` });
      },
    );
  });
}

async function mustRun(file: string, args: string[], timeoutMs: number): Promise<void> {
  const done = await run(file, args, { timeoutMs });
  if (done.code !== 0) throw new Error(`${file} ${args.join(" ")} exited with ${done.code ?? "a timeout"}:\n${done.output}`);
}

/** The venv's python: reused when it was completed and still imports what the tests need, else (re)made. */
async function pytestVenv(): Promise<string> {
  const home = process.env.KCE_HOME ?? join(homedir(), ".cache", "kce");
  const hash = createHash("sha256").update(REQUIREMENTS.join("\n")).digest("hex").slice(0, 12);
  const venv = join(home, `venv-pytest-${hash}`);
  const python = join(venv, "bin", "python");
  const ready = join(venv, ".kce-ready"); // written last: a venv without it was interrupted
  if (existsSync(ready)) {
    const check = await run(python, ["-c", "import pytest, repo2docker.engine"], { timeoutMs: 60_000 }).catch(() => null);
    if (check?.code === 0) return python;
  }
  rmSync(venv, { recursive: true, force: true });
  mkdirSync(home, { recursive: true });
  await mustRun("python3", ["-m", "venv", venv], 120_000);
  await mustRun(python, ["-m", "pip", "install", "-q", "--disable-pip-version-check", ...REQUIREMENTS], VENV_TIMEOUT_MS);
  writeFileSync(ready, `${REQUIREMENTS.join("\n")}\n`);
  return python;
}

/** Counts of pytest's summary line, e.g. "1 failed, 73 passed, 1 warning in 30.12s". */
function pytestSummary(output: string): Record<string, number> {
  const line = output
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => / in [\d.]+s\b/.test(l) && /\d+ (passed|failed|error|errors|skipped|deselected|no tests ran)/.test(l))
    .pop();
  const counts: Record<string, number> = {};
  for (const m of (line ?? "").matchAll(/(\d+) (passed|failed|errors?|skipped|xfailed|xpassed|deselected)/g)) {
    counts[m[2]!.replace(/^errors$/, "error")] = Number(m[1]);
  }
  return counts;
}

describe("the Python adapter's pytest suite", () => {
  let python = "";

  beforeAll(async () => {
    python = await pytestVenv();
  }, VENV_TIMEOUT_MS + 150_000);

  it("parses pytest's summary line", () => {
    expect(pytestSummary("x\n1 failed, 73 passed, 2 skipped, 1 warning in 30.12s\n")).toEqual({ failed: 1, passed: 73, skipped: 2 });
    expect(pytestSummary("== 74 passed in 1.5s ==")).toEqual({ passed: 74 });
    expect(pytestSummary("1 passed, 2 errors in 0.1s")).toEqual({ passed: 1, error: 2 });
    expect(pytestSummary("nothing here")).toEqual({});
  });

  it(
    "passes, with every test run",
    async () => {
      const env: NodeJS.ProcessEnv = {
        ...process.env,
        PYTHONPATH: ADAPTER,
        PYTHONDONTWRITEBYTECODE: "1", // no __pycache__ in the source tree
      };
      const done = await run(python, ["-m", "pytest", "-q", "-p", "no:cacheprovider", "--color=no", "--rootdir", ADAPTER, "tests"], {
        cwd: ADAPTER,
        env,
        timeoutMs: PYTEST_TIMEOUT_MS,
      });
      const counts = pytestSummary(done.output);
      if (done.code !== 0) throw new Error(`pytest exited with ${done.code ?? "a timeout"}:\n${done.output}`);
      expect(counts.failed ?? 0, done.output).toBe(0);
      expect(counts.error ?? 0, done.output).toBe(0);
      expect(counts.skipped ?? 0, `nothing may be skipped:\n${done.output}`).toBe(0);
      expect(counts.passed ?? 0, done.output).toBeGreaterThanOrEqual(MIN_TESTS);
    },
    PYTEST_TIMEOUT_MS + 30_000,
  );
});
