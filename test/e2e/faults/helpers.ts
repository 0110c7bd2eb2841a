// Shared pieces of the fault-injection tests (test/e2e/faults): stopping and restarting cluster components by
// pid through test/cluster/ctl (always started again, even when the test fails), timing a failure, and the
// checks every row makes (error type, an actionable message, a time bound, nothing of ours left behind).
//
// Each test is preceded by a one-line annotation that test/e2e/faults/table.ts turns into the README table:
//   // row <n> | <fault or bad input> | <what the engine does>
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { resolve } from "node:path";
import { promisify } from "node:util";
import type { KubeClient } from "../../../src/kube/client.js";
import { recordMeasurement } from "../../support/measurements.js";
import { expectNoLeftovers } from "../engine/helpers.js";
import { withinBound as withinBoundShared } from "../../support/measurements.js";

export { recordMeasurement };

const run = promisify(execFile);

export const ROOT = resolve(import.meta.dirname, "../../..");
const CTL = resolve(ROOT, "test/cluster/ctl");

/** Components `test/cluster/ctl` can stop, start, freeze and thaw. */
export type Component =
  | "apiserver"
  | "controller-manager"
  | "scheduler"
  | "kubelet"
  | "kube-proxy"
  | "containerd"
  | "etcd"
  | "registry"
  | "auth-registry";

/** `test/cluster/ctl <action> <component>`; resolves once it is done (stopped, or started and healthy). */
export async function ctl(action: "stop" | "start" | "restart" | "kill" | "freeze" | "thaw", component: Component): Promise<void> {
  await run(CTL, [action, component], { timeout: 120_000, env: process.env });
}

/** Whether the component runs now (`ctl status`). */
export async function isRunning(component: Component): Promise<boolean> {
  const { stdout } = await run(CTL, ["status"], { timeout: 30_000 });
  const name = ["apiserver", "controller-manager", "scheduler"].includes(component) ? `kube-${component}` : component;
  const line = stdout.split("\n").find((l) => l.startsWith(`${name} `));
  return line !== undefined && /\brunning\b/.test(line) && !/frozen/.test(line);
}

/**
 * Stops `component`, runs `fn`, and starts the component again — in a finally, so a failing test never
 * leaves the cluster without it. A start that fails is retried once, then reported.
 */
export async function whileStopped<T>(component: Component, fn: () => Promise<T>): Promise<T> {
  await ctl("stop", component);
  try {
    return await fn();
  } finally {
    await ensureRunning(component);
  }
}

/** Starts the component unless it is running (for afterAll hooks: the safety net of whileStopped). */
export async function ensureRunning(component: Component): Promise<void> {
  if (await isRunning(component)) return;
  try {
    await ctl("thaw", component).catch(() => undefined);
    if (await isRunning(component)) return;
    await ctl("start", component);
  } catch {
    await ctl("start", component);
  }
}

/** The error `promise` rejects with, and how long that took; fails the test when it resolves. */
export async function failure(promise: Promise<unknown>, started = Date.now()): Promise<{ error: Error; ms: number }> {
  const outcome = await promise.then(
    () => null,
    (err: unknown) => err,
  );
  const ms = Date.now() - started;
  if (outcome === null) throw new Error(`expected a failure, but it succeeded after ${ms} ms`);
  if (!(outcome instanceof Error)) throw new Error(`expected an Error, got ${String(outcome)}`);
  return { error: outcome, ms };
}

/** Asserts `ms` ≤ `boundMs` × slack (test/support/measurements.ts) and records it as `faults/<name>`. */
export function withinBound(name: string, ms: number, boundMs: number, extra: Record<string, number | string> = {}): void {
  withinBoundShared(`faults/${name}`, ms, boundMs, extra);
}

/** Asserts nothing of ours is left in `admin`'s namespace within `boundMs`, recording how long that took. */
export async function noLeftoversWithin(name: string, admin: KubeClient, boundMs: number): Promise<void> {
  const started = Date.now();
  await expectNoLeftovers(admin, boundMs);
  withinBound(`${name}-cleanup`, Date.now() - started, boundMs);
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `check` every `everyMs` until it returns true or `withinMs` passed; returns the elapsed ms or null. */
export async function eventually(check: () => Promise<boolean>, withinMs: number, everyMs = 500): Promise<number | null> {
  const started = Date.now();
  for (;;) {
    if (await check().catch(() => false)) return Date.now() - started;
    if (Date.now() - started > withinMs) return null;
    await sleep(everyMs);
  }
}

/** `n` numbered lines "line 1" … "line n". */
export function numberedLines(n: number, prefix = "line"): string[] {
  return Array.from({ length: n }, (_, i) => `${prefix} ${i + 1}`);
}

/** A child `node` process whose output is collected (for Ctrl-C and SIGKILL tests). */
export interface Child {
  readonly process: ChildProcess;
  /** stdout and stderr so far, interleaved. */
  output(): string;
  /** Resolves once the output matches `pattern`; rejects after `timeoutMs` or when the process ended first. */
  waitForOutput(pattern: RegExp, timeoutMs: number): Promise<void>;
  /** Resolves when the process exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts `node <args…>` in the repository root with `env` added to this process's environment. */
export function startNode(args: string[], env: Record<string, string> = {}): Child {
  const child = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ["pipe", "pipe", "pipe"] });
  let text = "";
  const listeners = new Set<() => void>();
  const append = (chunk: Buffer): void => {
    text += chunk.toString("utf8");
    for (const l of listeners) l();
  };
  child.stdout?.on("data", append);
  child.stderr?.on("data", append);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.on("close", (code, signal) => r({ code, signal })));
  let done = false;
  void exited.then(() => {
    done = true;
    for (const l of listeners) l();
  });
  return {
    process: child,
    output: () => text,
    exited,
    waitForOutput: (pattern, timeoutMs) =>
      new Promise<void>((resolvePromise, reject) => {
        const check = (): void => {
          if (pattern.test(text)) finish(null);
          else if (done) finish(new Error(`the process exited before printing ${pattern}; output:\n${text}`));
        };
        const timer = setTimeout(() => finish(new Error(`no ${pattern} within ${timeoutMs} ms; output:\n${text}`)), timeoutMs);
        const finish = (err: Error | null): void => {
          clearTimeout(timer);
          listeners.delete(check);
          if (err) reject(err);
          else resolvePromise();
        };
        listeners.add(check);
        check();
      }),
  };
}
