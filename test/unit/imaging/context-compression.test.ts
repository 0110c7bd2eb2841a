import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync, inflateRawSync } from "node:zlib";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createBuildContext, type BuildContext, type OpenOptions } from "../../../src/imaging/context.js";
import { AUTO_COMPRESSION, Deflater, linkIsSlow, nextAutoPhase, parseContextCompression, STORED_BLOCK_BYTES } from "../../../src/imaging/context-compression.js";
import { InvalidInputError } from "../../../src/errors.js";

const MiB = 1024 * 1024;

describe("linkIsSlow", () => {
  const window = { samples: 10, backloggedSamples: 10, bytes: 5 * MiB, tarBytes: 5 * MiB, ms: 1000 };
  it("is true when output waited on a consumer taking less than the threshold", () => {
    expect(linkIsSlow(window)).toBe(true);
    expect(linkIsSlow({ ...window, backloggedSamples: 8 })).toBe(true);
  });
  it("is false when the consumer mostly waited on the packer (the packer is the bottleneck, not the link)", () => {
    expect(linkIsSlow({ ...window, backloggedSamples: 7 })).toBe(false);
    expect(linkIsSlow({ ...window, backloggedSamples: 0, bytes: 1 })).toBe(false);
  });
  it("is false for a fast link even when output waits (compressing would make the packer the bottleneck)", () => {
    expect(linkIsSlow({ ...window, bytes: 80 * MiB })).toBe(false);
    expect(linkIsSlow({ ...window, bytes: 30 * MiB, ms: 1000 })).toBe(false);
    expect(linkIsSlow({ ...window, bytes: 30 * MiB, ms: 2000 })).toBe(true);
  });
  it("is false for an empty window", () => {
    expect(linkIsSlow({ samples: 0, backloggedSamples: 0, bytes: 0, tarBytes: 0, ms: 0 })).toBe(false);
    expect(linkIsSlow({ ...window, ms: 0 })).toBe(false);
  });
  it("has the documented defaults", () => {
    expect(AUTO_COMPRESSION).toMatchObject({ slowLinkBytesPerSecond: 24 * MiB, level: 1, windowMs: 1000 });
  });
});

describe("nextAutoPhase", () => {
  const slow = { samples: 10, backloggedSamples: 10, bytes: 4 * MiB, tarBytes: 4 * MiB, ms: 1000 };
  const fast = { ...slow, backloggedSamples: 0, bytes: 90 * MiB, tarBytes: 90 * MiB };

  it("stays stored while the link keeps up", () => {
    expect(nextAutoPhase({ kind: "stored" }, fast)).toEqual({ phase: { kind: "stored" } });
  });

  it("compresses on a slow link, settles until the stored bytes drained, then keeps compression that pays", () => {
    const switched = nextAutoPhase({ kind: "stored" }, slow);
    expect(switched).toEqual({ phase: { kind: "settling", storedTarRate: 4 * MiB, leftBytes: 8 * MiB }, level: 1 });
    const settling = nextAutoPhase(switched.phase, slow);
    expect(settling).toEqual({ phase: { kind: "settling", storedTarRate: 4 * MiB, leftBytes: 4 * MiB } });
    const trial = nextAutoPhase(settling.phase, slow);
    expect(trial).toEqual({ phase: { kind: "trial", storedTarRate: 4 * MiB } });
    // Same gzip rate on the link, 2.5× the tar: compression pays.
    expect(nextAutoPhase(trial.phase, { ...slow, tarBytes: 10 * MiB })).toEqual({ phase: { kind: "decided" } });
  });

  it("goes back to stored when the tar moves less than minGain faster (the consumer is slow at something else)", () => {
    const trial = { kind: "trial", storedTarRate: 4 * MiB } as const;
    expect(nextAutoPhase(trial, { ...slow, tarBytes: 4.5 * MiB })).toEqual({ phase: { kind: "decided" }, level: 0 });
    expect(nextAutoPhase(trial, { ...slow, tarBytes: 4.8 * MiB })).toEqual({ phase: { kind: "decided" } });
  });

  it("does nothing once decided", () => {
    expect(nextAutoPhase({ kind: "decided" }, slow)).toEqual({ phase: { kind: "decided" } });
  });
});

describe("parseContextCompression", () => {
  it.each<[unknown, unknown]>([
    ["auto", "auto"],
    ["none", 0],
    ["0", 0],
    [" 9 ", 9],
    [1, 1],
  ])("%j → %j", (value, expected) => {
    expect(parseContextCompression(value, "x")).toBe(expected);
  });
  it.each([["10"], [-1], [1.5], ["gzip"], [""], [null]])("refuses %j with InvalidInputError", (value) => {
    expect(() => parseContextCompression(value, "opt")).toThrow(InvalidInputError);
    expect(() => parseContextCompression(value, "opt")).toThrow(/^opt must be "auto", "none" or a gzip level 0–9/);
  });
});

describe("context stream compression", () => {
  let dir: string;
  let ctx: BuildContext;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "kce-compress-"));
    await writeFile(join(dir, "Dockerfile"), "FROM x\n");
    // Compressible text, 4 MiB.
    const line = "the quick brown fox jumps over the lazy dog 0123456789\n";
    await writeFile(join(dir, "words.txt"), line.repeat(Math.ceil((4 * MiB) / line.length)));
    ctx = await createBuildContext({ path: dir });
  });
  afterEach(async () => {
    await ctx.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  /** Reads the stream, pausing `pauseMs` after every chunk (a slow link); returns the gzip bytes and summary. */
  async function consume(options: OpenOptions, pauseMs: number) {
    const { stream, done } = ctx.open(options);
    const parts: Buffer[] = [];
    for await (const chunk of stream) {
      parts.push(chunk as Buffer);
      if (pauseMs > 0) await new Promise((r) => setTimeout(r, pauseMs));
    }
    return { gz: Buffer.concat(parts), summary: await done };
  }

  it("a fixed level is used as given, and every level unpacks to the same tar and hash", async () => {
    const stored = await consume({ compression: 0 }, 0);
    const best = await consume({ compression: 9 }, 0);
    expect(stored.summary.compressionLevel).toBe(0);
    expect(stored.gz.length).toBeGreaterThan(stored.summary.tarBytes);
    expect(best.gz.length).toBeLessThan(stored.summary.tarBytes / 20);
    expect(gunzipSync(best.gz).equals(gunzipSync(stored.gz))).toBe(true);
    expect(best.summary.sha256).toBe(stored.summary.sha256);
  });

  it("auto stays stored when the consumer keeps up", async () => {
    const fast = await consume({ autoPolicy: { windowMs: 50, samplesPerWindow: 5 } }, 0);
    expect(fast.summary.compressionLevel).toBe(0);
    expect(fast.gz.length).toBeGreaterThan(fast.summary.tarBytes);
  });

  // 64 KiB chunks every 20 ms ≈ 3 MiB/s: below a 16 MiB/s threshold, with the packer always ahead.
  const slowLink = { windowMs: 200, samplesPerWindow: 10, slowLinkBytesPerSecond: 16 * MiB, settleBytes: 256 * 1024 };

  it("auto switches to level 1 mid-stream when output waits on a slow consumer, and the gzip stays valid", async () => {
    const slow = await consume({ autoPolicy: slowLink }, 20);
    expect(slow.summary.compressionLevel).toBe(1);
    expect(slow.gz.length).toBeLessThan(slow.summary.tarBytes / 2);
    const tar = gunzipSync(slow.gz);
    expect(tar.length).toBe(slow.summary.tarBytes);
    expect((await consume({ compression: 0 }, 0)).summary.sha256).toBe(slow.summary.sha256);
  });

  it("auto goes back to stored when compressing does not make the tar move faster (incompressible data)", async () => {
    await writeFile(join(dir, "words.txt"), randomBytes(4 * MiB));
    await ctx.dispose();
    ctx = await createBuildContext({ path: dir });
    const slow = await consume({ autoPolicy: slowLink }, 20);
    expect(slow.summary.compressionLevel).toBe(0);
    expect(gunzipSync(slow.gz).length).toBe(slow.summary.tarBytes);
  });
});

describe("Deflater", () => {
  /** Feeds `chunks` (calling `between(i)` before chunk i) and returns the output chunks. */
  async function deflate(level: number, chunks: Buffer[], between: (d: Deflater, i: number) => void = () => undefined): Promise<Buffer[]> {
    const d = new Deflater(level);
    const out: Buffer[] = [];
    d.on("data", (c: Buffer) => out.push(c));
    const ended = new Promise((r) => d.on("end", r));
    for (const [i, chunk] of chunks.entries()) {
      between(d, i);
      await new Promise<void>((r) => d.write(chunk, () => r()));
    }
    d.end();
    await ended;
    return out;
  }
  const input = [randomBytes(300_000), Buffer.alloc(0), randomBytes(1), Buffer.alloc(200_000, 7), randomBytes(70_000)];

  it("level 0: stored blocks of at most 64 KiB across chunk boundaries, then a final empty one", async () => {
    const out = await deflate(0, input);
    expect(inflateRawSync(Buffer.concat(out))).toEqual(Buffer.concat(input));
    expect(out.every((c) => c.length <= STORED_BLOCK_BYTES)).toBe(true);
    expect(out.slice(0, -2).every((c) => c.length === STORED_BLOCK_BYTES)).toBe(true); // full until the end
    expect(out.at(-1)).toEqual(Buffer.from([0x01, 0x00, 0x00, 0xff, 0xff]));
  });

  it("a level raised mid-stream hands the rest to zlib: one valid deflate stream, and smaller", async () => {
    const out = await deflate(0, input, (d, i) => i === 3 && d.setLevel(6));
    const all = Buffer.concat(out);
    expect(inflateRawSync(all)).toEqual(Buffer.concat(input));
    expect(all.length).toBeLessThan(Buffer.concat(input).length - 150_000); // the 200 000 sevens compressed
  });

  it("starts compressed and may go back to level 0 inside zlib", async () => {
    const out = await deflate(1, input, (d, i) => i === 2 && d.setLevel(0));
    expect(inflateRawSync(Buffer.concat(out))).toEqual(Buffer.concat(input));
  });
});
