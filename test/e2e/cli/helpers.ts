// Running `kce` as a user does: `node dist/cli/main.js …` in a child process, with the output and exit code.
import { execFile, spawn } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { promisify } from "node:util";

export const ROOT = resolve(import.meta.dirname, "../../..");
export const KCE = join(ROOT, "dist/cli/main.js");

export interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs);
  }
  return newest;
}

/** Builds dist/ (tsc -p tsconfig.build.json) when it is missing or older than a file in src/. */
export async function ensureDist(): Promise<void> {
  if (existsSync(KCE) && statSync(KCE).mtimeMs >= newestMtime(join(ROOT, "src"))) return;
  await promisify(execFile)("npx", ["tsc", "-p", "tsconfig.build.json"], { cwd: ROOT, timeout: 170_000 });
}

/** `npm run demo` (scripts/demo) in the repository with exactly `env`; throws with its output when it exits non-zero. */
export async function runDemo(env: NodeJS.ProcessEnv): Promise<{ stdout: string; stderr: string }> {
  const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn("npm", ["run", "--silent", "demo"], { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.setEncoding("utf8").on("data", (c: string) => (out += c));
    child.stderr.setEncoding("utf8").on("data", (c: string) => (err += c));
    child.on("error", reject);
    child.on("close", (c) => resolve({ code: c, stdout: out, stderr: err }));
  });
  if (code !== 0) throw new Error(`npm run demo exited ${code}\n--- stdout\n${stdout}\n--- stderr\n${stderr}`);
  return { stdout, stderr };
}

export interface KceOptions {
  env?: Record<string, string | undefined>;
  input?: string;
  /** Called with each stderr chunk (e.g. to find a forwarded port while the command runs). */
  onStderr?: (text: string, child: ReturnType<typeof spawn>) => void;
  timeoutMs?: number;
  /**
   * Leaves stdout unread until the child exits or this many ms pass, as a busy parent does: the pipe fills
   * and the child's further writes queue in the child.
   */
  stallStdoutMs?: number;
}

/** Runs `node dist/cli/main.js ...args` and resolves when it exits. */
export function kce(args: string[], options: KceOptions = {}): Promise<Run> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...process.env, ...options.env })) if (v !== undefined) env[k] = v;
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [KCE, ...args], { cwd: ROOT, env, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8");
    const readStdout = (): void => void child.stdout.on("data", (c: string) => (stdout += c));
    if (options.stallStdoutMs === undefined) readStdout();
    else {
      const stall = setTimeout(readStdout, options.stallStdoutMs);
      child.on("exit", () => {
        clearTimeout(stall);
        readStdout();
      });
    }
    child.stderr.setEncoding("utf8").on("data", (c: string) => {
      stderr += c;
      options.onStderr?.(stderr, child);
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 170_000);
    child.on("error", reject);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolvePromise({ code, signal, stdout, stderr });
    });
    child.stdin.end(options.input ?? "");
  });
}

/** Every stdout line parsed as JSON (throws on a line that is not). */
export function jsonLines(stdout: string): Record<string, unknown>[] {
  return stdout
    .split("\n")
    .filter((line) => line.length > 0)
    .map((line) => {
      try {
        return JSON.parse(line) as Record<string, unknown>;
      } catch {
        throw new Error(`stdout line is not JSON: ${line}`);
      }
    });
}
