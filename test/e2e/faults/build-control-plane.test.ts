// Rows 12 and 13 of the reliability matrix, for builds: a build that spans an API server restart, and one that
// spans a 30 s kubelet stop, both finish, and the builder's output is complete and free of duplicates (the log
// follower resumes with sinceTime; the watch relists).
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { baseImage, deleteNamespace, engineNamespace, expectNoLeftovers, uniqueImage, type EngineNamespace } from "../engine/helpers.js";
import { ctl, ensureRunning, numberedLines, sleep, whileStopped, withinBound } from "./helpers.js";

let ns: EngineNamespace;
let dir: string;

beforeAll(async () => {
  ns = await engineNamespace("e2e-faults-buildcp");
  dir = mkdtempSync(join(tmpdir(), "kce-faults-buildcp-"));
});

afterAll(async () => {
  await ensureRunning("apiserver");
  await ensureRunning("kubelet");
  rmSync(dir, { recursive: true, force: true });
  if (ns) await expectNoLeftovers(ns.admin);
  await deleteNamespace(ns?.admin);
});

/**
 * Builds an image whose RUN prints `count` numbered lines, one every `everyMs`; once the first line is out,
 * runs `fault`. Checks the build succeeded with a digest and its output holds every line once, in order.
 */
async function buildSurvives(name: string, count: number, everyMs: number, fault: () => Promise<void>): Promise<void> {
  const path = mkdtempSync(join(dir, "ctx-"));
  const seconds = (everyMs / 1000).toFixed(3);
  writeFileSync(
    join(path, "Dockerfile"),
    `FROM ${baseImage()}\nRUN echo nonce-${Date.now()} && i=1; while [ $i -le ${count} ]; do echo "build-line $i"; i=$((i+1)); sleep ${seconds}; done\n`,
  );
  const stream = ns.engine({ builder: "kaniko" }).build({ tag: uniqueImage(name), path });
  const lines: string[] = [];
  let faulted: Promise<void> | null = null;
  const started = Date.now();
  const marks: Record<string, number> = {};
  for await (const line of stream) {
    lines.push(line);
    if (line.startsWith("build-line 1\n")) marks.firstLine = Date.now() - started;
    if (line.startsWith(`build-line ${count}\n`)) marks.lastLine = Date.now() - started;
    if (faulted === null && line.startsWith("build-line 1\n")) faulted = fault();
  }
  marks.outputEnd = Date.now() - started;
  await faulted;
  const result = await stream.result;
  const ms = Date.now() - started;
  console.log(`${name}: ${JSON.stringify(marks)} result after ${ms} ms`);
  expect(result.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
  const numbered = lines.map((l) => l.replace(/\n$/, "")).filter((l) => /^build-line \d+$/.test(l));
  expect(numbered.length - new Set(numbered).size, "duplicated lines").toBe(0);
  expect(numbered).toEqual(numberedLines(count, "build-line"));
  withinBound(name, ms, 60_000, { lines: numbered.length });
}

describe("rows 12 and 13 — builds across control plane and node faults", () => {
  // row 12 | API server restarted (~6 s down) mid-build | the build completes with its digest; the builder's output is complete and duplicate-free
  it("a build spanning an API server restart finishes, output complete", async () => {
    await buildSurvives("row12-build-apiserver-restart", 150, 100, async () => {
      await sleep(1_000);
      await ctl("restart", "apiserver");
    });
  });

  // row 13 | kubelet stopped 30 s mid-build | the build completes (the builder keeps running under containerd); output resumes via sinceTime, complete and duplicate-free
  it("a build spanning a 30 s kubelet stop finishes, output complete", async () => {
    await buildSurvives("row13-build-kubelet-stopped", 330, 100, async () => {
      await sleep(1_000);
      await whileStopped("kubelet", () => sleep(30_000));
    });
  });
});
