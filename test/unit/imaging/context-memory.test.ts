import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setImmediate as tick } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createBuildContext } from "../../../src/imaging/context.js";

const MiB = 1024 * 1024;
const FILES = 50;
const FILE_SIZE = 4 * MiB; // 200 MiB in all, incompressible for deflate (1 MiB random block > 32 KiB window)

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "kce-ctx-mem-"));
  const block = randomBytes(MiB);
  const file = Buffer.concat(Array.from({ length: FILE_SIZE / MiB }, () => block));
  await writeFile(join(dir, "Dockerfile"), "FROM scratch\n");
  for (let i = 0; i < FILES; i++) {
    file.writeUInt32BE(i, 0); // distinct files
    await writeFile(join(dir, `blob-${String(i).padStart(3, "0")}.bin`), file);
  }
}, 120_000);
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("build context memory", () => {
  it("streams 200 MiB to a slow consumer with flat memory", async () => {
    const ctx = await createBuildContext({ path: dir });
    expect(ctx.tarBytes).toBeGreaterThan(FILES * FILE_SIZE);
    global.gc?.();
    const base = process.memoryUsage();
    let peakRss = 0;
    let peakBuffers = 0;
    const { stream, done } = ctx.open();
    let chunks = 0;
    let received = 0;
    for await (const chunk of stream) {
      received += (chunk as Buffer).length;
      // A slow consumer: yield to the event loop on every chunk and pause now and then, so a producer that
      // ignored backpressure would run far ahead and pile the context up in memory.
      await tick();
      if (++chunks % 256 === 0) {
        await new Promise((r) => setTimeout(r, 2));
        const m = process.memoryUsage();
        peakRss = Math.max(peakRss, m.rss - base.rss);
        peakBuffers = Math.max(peakBuffers, m.arrayBuffers - base.arrayBuffers);
      }
    }
    const summary = await done;
    expect(summary.gzipBytes).toBe(received);
    expect(summary.tarBytes).toBe(ctx.tarBytes);
    expect(summary.files).toBe(FILES + 1);
    // Growth well under the 200 MiB context: a few chunks in flight, the block pools (≤ 16 spare and 16 lent
    // blocks) and garbage not yet collected — this reader never releases, so every stored block is new
    // (measured 28 MiB of buffers before the pools, 37–48 MiB with them; a producer ignoring backpressure
    // holds the whole context).
    expect(peakBuffers).toBeLessThan(96 * MiB);
    expect(peakRss).toBeLessThan(100 * MiB);
  }, 120_000);
});
