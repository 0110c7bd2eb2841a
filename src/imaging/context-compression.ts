/**
 * How the build context is compressed on its way to the builder. Both builders read gzip, but on the links a
 * context usually takes (loopback to a local cluster; a cluster network between engine, API server and
 * kubelet) compressing is slower than sending: gzip level 1 packed ≈ 45–65 MiB/s on one core of the bench
 * machine, while the API server → kubelet path moved ≈ 85 MiB/s uncompressed. So "auto" sends gzip's stored
 * blocks (the framing, no compression, as `docker build` sends its context uncompressed by default), turns
 * compression on once the upload is seen waiting on a link slower than gzip, and turns it off again when the
 * tar then moves no faster (the consumer was slow at something else, e.g. writing many small files).
 *
 * Here: the policy (pure: {@link nextAutoPhase}), the stream stages (a deflate whose level can change, gzip's
 * framing) and the watcher that applies the policy to a running stream.
 */
import { Transform, type Readable, type TransformCallback } from "node:stream";
import { constants as zlibConstants, createDeflateRaw, type DeflateRaw } from "node:zlib";
import type { ContextCompression } from "../config.js";

export { parseContextCompression, type ContextCompression } from "../config.js";

/** The knobs of "auto" (exported for tests and tuning). */
export interface AutoCompressionPolicy {
  /** Length of one observation window, ms. */
  windowMs: number;
  /** Samples of the output buffer per window. */
  samplesPerWindow: number;
  /** A link that takes fewer bytes per second than this, while the packer waits on it, is slow. */
  slowLinkBytesPerSecond: number;
  /** Share of a window's samples that must find output waiting for the consumer. */
  backloggedShare: number;
  /** The gzip level once compression is on: 1, the fastest, so gzip does not become the bottleneck. */
  level: number;
  /**
   * After switching, gzip bytes to let through before judging: what was packed stored and still sits in
   * buffers and in the socket's window must drain first.
   */
  settleBytes: number;
  /** Compression stays on only if the tar then moves at least this many times faster. */
  minGain: number;
}

export const AUTO_COMPRESSION: AutoCompressionPolicy = {
  windowMs: 1000,
  samplesPerWindow: 10,
  slowLinkBytesPerSecond: 24 * 1024 * 1024,
  backloggedShare: 0.8,
  level: 1,
  settleBytes: 8 * 1024 * 1024,
  minGain: 1.2,
};

/** What one window saw. */
export interface LinkWindow {
  samples: number;
  /** Samples that found packed output waiting for the consumer (the link is behind, not the packer). */
  backloggedSamples: number;
  /** Gzip bytes the consumer took in the window. */
  bytes: number;
  /** Tar bytes packed in the window. */
  tarBytes: number;
  ms: number;
}

/** Where "auto" is: watching a stored upload, waiting for stored bytes to drain, judging, or decided. */
export type AutoPhase =
  | { kind: "stored" }
  | { kind: "settling"; storedTarRate: number; leftBytes: number }
  | { kind: "trial"; storedTarRate: number }
  | { kind: "decided" };

/**
 * Pure: the phase after a window, and the gzip level to set when it changes. Stored → (slow link) compressed
 * and settling → trial → kept, or back to stored when the tar did not move `minGain` times faster.
 */
export function nextAutoPhase(
  phase: AutoPhase,
  window: LinkWindow,
  policy: AutoCompressionPolicy = AUTO_COMPRESSION,
): { phase: AutoPhase; level?: number } {
  const tarRate = window.ms > 0 ? (window.tarBytes * 1000) / window.ms : 0;
  switch (phase.kind) {
    case "stored":
      if (!linkIsSlow(window, policy)) return { phase };
      return { phase: { kind: "settling", storedTarRate: tarRate, leftBytes: policy.settleBytes }, level: policy.level };
    case "settling": {
      const leftBytes = phase.leftBytes - window.bytes;
      if (leftBytes > 0) return { phase: { ...phase, leftBytes } };
      return { phase: { kind: "trial", storedTarRate: phase.storedTarRate } };
    }
    case "trial":
      if (tarRate >= phase.storedTarRate * policy.minGain) return { phase: { kind: "decided" } };
      return { phase: { kind: "decided" }, level: 0 };
    case "decided":
      return { phase };
  }
}

/** Pure: does a window show an upload bound by a link slow enough that compressing pays? */
export function linkIsSlow(window: LinkWindow, policy: AutoCompressionPolicy = AUTO_COMPRESSION): boolean {
  if (window.samples === 0 || window.ms <= 0) return false;
  const backlogged = window.backloggedSamples / window.samples >= policy.backloggedShare;
  return backlogged && (window.bytes * 1000) / window.ms < policy.slowLinkBytesPerSecond;
}

/** zlib's output buffer: fewer, larger chunks (and stdin frames) than the 16 KiB default. */
const GZIP_CHUNK_BYTES = 64 * 1024;

/**
 * Raw deflate whose level can change between chunks. zlib applies a new level only while idle: a `params()`
 * issued with writes in flight is silently ignored (Node 20), so this stage hands zlib one chunk at a time and
 * changes the level between two.
 */
export class Deflater extends Transform {
  private readonly zlib: DeflateRaw;
  private wanted: number;
  constructor(public level: number) {
    super();
    this.wanted = level;
    this.zlib = createDeflateRaw({ level, chunkSize: GZIP_CHUNK_BYTES });
    this.zlib.on("data", (chunk: Buffer) => this.push(chunk));
    this.zlib.on("error", (err) => this.destroy(err));
  }
  /** Takes effect before the next chunk. */
  setLevel(level: number): void {
    this.wanted = level;
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    const write = (): void => {
      this.zlib.write(chunk, (err) => cb(err ?? null));
    };
    if (this.wanted === this.level) return write();
    this.level = this.wanted;
    this.zlib.params(this.level, zlibConstants.Z_DEFAULT_STRATEGY, write);
  }
  override _flush(cb: TransformCallback): void {
    this.zlib.once("end", () => cb());
    this.zlib.end();
  }
  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    this.zlib.destroy();
    cb(err);
  }
}

/** gzip's member header: deflate, no flags, mtime 0, no extra flags, OS unknown (deterministic bytes). */
const GZIP_HEADER = Buffer.from([0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 0xff]);

/**
 * Wraps a raw deflate stream in gzip's header and trailer, counts what leaves and reports progress. The
 * framing is ours because Node's gzip streams ignore `params()` (a level change mid-stream), raw deflate
 * streams do not.
 */
export class GzipFraming extends Transform {
  bytes = 0;
  private started = false;
  constructor(
    /** The CRC-32 and size of the uncompressed bytes, read at the end for the trailer. */
    private readonly uncompressed: () => { crc: number; bytes: number },
    private readonly report: (gzipBytes: number) => void,
  ) {
    super();
  }
  private start(): void {
    if (this.started) return;
    this.started = true;
    this.bytes += GZIP_HEADER.length;
    this.push(GZIP_HEADER);
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.start();
    this.bytes += chunk.length;
    this.report(this.bytes);
    cb(null, chunk);
  }
  override _flush(cb: TransformCallback): void {
    this.start();
    const { crc, bytes } = this.uncompressed();
    const trailer = Buffer.alloc(8);
    trailer.writeUInt32LE(crc >>> 0, 0);
    trailer.writeUInt32LE(bytes % 2 ** 32, 4); // ISIZE: the size modulo 2^32
    this.bytes += trailer.length;
    this.report(this.bytes);
    cb(null, trailer);
  }
}

/**
 * Runs "auto" compression: samples whether packed output waits for the consumer and, window by window, lets
 * {@link nextAutoPhase} decide the gzip level. Returns the function that stops watching.
 */
export function watchLink(
  output: Readable,
  counters: { gzipBytes: () => number; tarBytes: () => number },
  policy: AutoCompressionPolicy,
  setLevel: (level: number) => void,
): () => void {
  let phase: AutoPhase = { kind: "stored" };
  let samples = 0;
  let backloggedSamples = 0;
  let start = { ms: performance.now(), gzip: counters.gzipBytes(), tar: counters.tarBytes() };
  const timer = setInterval(() => {
    samples += 1;
    if (output.readableLength > 0) backloggedSamples += 1;
    if (samples < policy.samplesPerWindow) return;
    const now = { ms: performance.now(), gzip: counters.gzipBytes(), tar: counters.tarBytes() };
    const window = { samples, backloggedSamples, bytes: now.gzip - start.gzip, tarBytes: now.tar - start.tar, ms: now.ms - start.ms };
    const next = nextAutoPhase(phase, window, policy);
    phase = next.phase;
    if (next.level !== undefined) setLevel(next.level);
    if (phase.kind === "decided") clearInterval(timer);
    samples = 0;
    backloggedSamples = 0;
    start = now;
  }, policy.windowMs / policy.samplesPerWindow);
  timer.unref();
  return () => clearInterval(timer);
}
