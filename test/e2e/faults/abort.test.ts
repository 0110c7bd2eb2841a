// Row 10 of the reliability matrix: the caller aborts — an AbortSignal in the library, Ctrl-C on `kce` — and
// gets a CancelledError (or kce's non-zero exit) within ~5 s, and our objects are gone within ~10 s: the
// delete runs on its own deadline, not on the aborted signal.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CancelledError } from "../../../src/index.js";
import { ensureDist, KCE } from "../cli/helpers.js";
import { baseImage, collect, deleteNamespace, engineNamespace, expectNoLeftovers, leftovers, uniqueImage, type EngineNamespace } from "../engine/helpers.js";
import { failure, startNode, withinBound } from "./helpers.js";

let ns: EngineNamespace;
let dir: string;

beforeAll(async () => {
  await ensureDist();
  ns = await engineNamespace("e2e-faults-abort");
  dir = mkdtempSync(join(tmpdir(), "kce-faults-abort-"));
});

afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  if (ns) await expectNoLeftovers(ns.admin);
  await deleteNamespace(ns?.admin);
});

/** A context whose build prints `marker` and then sleeps (unique, so no content-hash reuse). */
function sleepingContext(marker: string): string {
  const path = mkdtempSync(join(dir, "ctx-"));
  writeFileSync(join(path, "Dockerfile"), `FROM ${baseImage()}\nRUN echo ${marker}-${Date.now()} && sleep 600\n`);
  return path;
}

/** Asserts nothing of ours is left within `ms`, recording how long the cleanup took. */
async function goneWithin(name: string, ms: number): Promise<void> {
  const started = Date.now();
  await expectNoLeftovers(ns.admin, ms);
  withinBound(name, Date.now() - started, ms);
}

describe("row 10 — the caller aborts", () => {
  // row 10 | AbortSignal during a build | CancelledError within 5 s; the builder Job, its pod and Secret gone within 10 s
  it("build aborted by AbortSignal: CancelledError within 5 s, objects gone within 10 s", async () => {
    const engine = ns.engine({ builder: "kaniko" });
    const controller = new AbortController();
    const stream = engine.build({ tag: uniqueImage("abort"), path: sleepingContext("build-sleeping"), signal: controller.signal });
    let abortedAt = 0;
    const consume = (async () => {
      for await (const line of stream) {
        if (line.includes("build-sleeping") && abortedAt === 0) {
          abortedAt = Date.now();
          controller.abort();
        }
      }
    })();
    const { error } = await failure(consume);
    expect(error).toBeInstanceOf(CancelledError);
    expect(error.message).toMatch(/cancelled/);
    withinBound("row10-build-abort", Date.now() - abortedAt, 5_000);
    await goneWithin("row10-build-abort-cleanup", 10_000);
  });

  // row 10 | AbortSignal while `run` waits for its pod (e.g. a slow pull) | CancelledError within 5 s; the pod gone within 10 s
  it("run aborted while the pod is pending: CancelledError within 5 s, pod gone within 10 s", async () => {
    const engine = ns.engine({ timeouts: { imagePullGraceSeconds: 600 } });
    const controller = new AbortController();
    const running = engine.run(`${process.env.KCE_REGISTRY}/kce-e2e/never-pulled:x`, { command: ["true"], signal: controller.signal });
    // Let the pod exist and sit in ErrImagePull/back-off.
    for (let i = 0; i < 50 && (await leftovers(ns.admin)).length === 0; i++) await new Promise((r) => setTimeout(r, 100));
    await new Promise((r) => setTimeout(r, 1_000));
    const started = Date.now();
    controller.abort();
    const { error } = await failure(running, started);
    expect(error).toBeInstanceOf(CancelledError);
    withinBound("row10-run-abort", Date.now() - started, 5_000);
    await goneWithin("row10-run-abort-cleanup", 10_000);
  });

  // row 10 | Ctrl-C on `kce build` | kce exits 1 within 5 s saying the build was cancelled; the builder's objects gone within 10 s
  it("Ctrl-C on kce build: exits within 5 s, objects gone within 10 s", async () => {
    const child = startNode([KCE, "-n", ns.namespace, "build", sleepingContext("cli-sleeping"), "-t", uniqueImage("cli-abort")]);
    await child.waitForOutput(/cli-sleeping/, 120_000);
    const started = Date.now();
    child.process.kill("SIGINT");
    const { code } = await child.exited;
    withinBound("row10-cli-build-ctrl-c", Date.now() - started, 5_000);
    expect(code).toBe(1);
    expect(child.output()).toMatch(/cancelled/);
    await goneWithin("row10-cli-build-ctrl-c-cleanup", 10_000);
  });

  // row 10 | Ctrl-C on `kce run --rm` | the container is stopped (SIGTERM), kce exits with its code within 5 s; the pod gone within 10 s
  it("Ctrl-C on kce run --rm: exits within 5 s, the pod gone within 10 s", async () => {
    const script = "trap 'echo got-sigterm; exit 143' TERM; echo cli-running; while :; do sleep 0.2; done";
    const child = startNode([KCE, "-n", ns.namespace, "run", "--rm", baseImage(), "--", "sh", "-c", script]);
    await child.waitForOutput(/cli-running/, 60_000);
    const started = Date.now();
    child.process.kill("SIGINT");
    const { code } = await child.exited;
    withinBound("row10-cli-run-ctrl-c", Date.now() - started, 5_000);
    expect(code).toBe(143);
    expect(child.output()).toContain("got-sigterm");
    await goneWithin("row10-cli-run-ctrl-c-cleanup", 10_000);
  });
});
