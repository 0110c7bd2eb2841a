// A 300 MiB / 20k-file context builds: every file arrives in the builder, and the engine's memory stays
// bounded while it streams. The peak RSS is recorded in bench/out/ (targets live in bench/, not here).
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { KubernetesEngine } from "../../../src/index.js";
import { recordMeasurement } from "../../support/measurements.js";
import { baseImage, collect, deleteNamespace, engineNamespace, expectNoLeftovers, uniqueImage, type EngineNamespace } from "./helpers.js";

const FILES = 20_000;
const FILE_BYTES = 15 * 1024 + 371; // ≈ 300 MiB in all; random, so gzip cannot shrink it

let ns: EngineNamespace;
let engine: KubernetesEngine;
let dir: string;

beforeAll(async () => {
  ns = await engineNamespace("e2e-large");
  engine = ns.engine({ builder: "kaniko" });
  dir = mkdtempSync(join(tmpdir(), "kce-large-"));
  for (let i = 0; i < FILES; i++) {
    const sub = join(dir, "data", String(i % 100));
    if (i < 100) mkdirSync(sub, { recursive: true });
    writeFileSync(join(sub, `f${i}.bin`), randomBytes(FILE_BYTES));
  }
  // The builder counts what arrived; nothing else of the 300 MiB is kept in a layer.
  writeFileSync(
    join(dir, "Dockerfile"),
    `FROM ${baseImage()}\nCOPY data /data\nRUN find /data -type f | wc -l > /count && du -sk /data > /size && rm -rf /data\nCMD ["cat", "/count"]\n`,
  );
});

afterAll(async () => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  if (ns) await expectNoLeftovers(ns.admin);
  await deleteNamespace(ns?.admin);
});

const MAX_GROWTH_MIB = 128;

it("builds a 300 MiB / 20k-file context with bounded memory", async () => {
  const baseline = process.memoryUsage().rss;
  let peak = baseline;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 50);
  let sent = 0;
  const started = Date.now();
  try {
    const stream = engine.build({
      tag: uniqueImage("large"),
      path: dir,
      onProgress: (p) => {
        if (p.kind === "context") sent = p.gzipBytes;
      },
    });
    await collect(stream);
    const result = await stream.result;
    expect(result.contextBytes).toBeGreaterThan(300 * 1000 * 1000);
    expect(sent).toBeGreaterThan(300 * 1000 * 1000);
    const container = await engine.run(result.image);
    await container.wait();
    expect((await container.logs()).trim()).toBe(String(FILES));
    await container.remove();
  } finally {
    clearInterval(sampler);
  }
  const mib = (bytes: number): number => Math.round((bytes / 1024 / 1024) * 10) / 10;
  recordMeasurement("large-context", {
    files: FILES,
    contextMiB: mib(FILES * FILE_BYTES),
    gzipSentMiB: mib(sent),
    seconds: (Date.now() - started) / 1000,
    baselineRssMiB: mib(baseline),
    peakRssMiB: mib(peak),
    growthMiB: mib(peak - baseline),
  });
  // The bound that makes this a memory test: the context is streamed, never held. Growth seen here is ≈ 40 MiB
  // (the file list and socket buffers); holding the 300 MiB context, or its gzip, would exceed the bound.
  expect(mib(peak - baseline), "RSS growth during the build (MiB)").toBeLessThan(MAX_GROWTH_MIB);
});
