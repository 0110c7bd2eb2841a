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
import type { BlockPool } from "./block-pool.js";

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

/** Largest payload of one stored deflate block (its LEN field has 16 bits). */
const STORED_PAYLOAD_BYTES = 0xffff;
/** A whole stored block: 5 header bytes (BFINAL=0, BTYPE=00, byte-aligned LEN and NLEN), then the payload. */
export const STORED_BLOCK_BYTES = 5 + STORED_PAYLOAD_BYTES;
/** The last, empty stored block (BFINAL=1, BTYPE=00, LEN 0, NLEN 0xffff). */
const FINAL_STORED_BLOCK = Buffer.from([0x01, 0x00, 0x00, 0xff, 0xff]);

/** Buffers a {@link Deflater} reuses: the blocks it builds stored blocks in, and its input once used. */
export interface DeflaterBuffers {
  /** Blocks of {@link STORED_BLOCK_BYTES}; each block pushed is lent (its reader releases it). */
  stored: BlockPool;
  /** Called with each input chunk once it was copied or compressed: nothing here reads it again. */
  consumed(chunk: Buffer): void;
}

/**
 * Raw deflate whose level can change between chunks. Level 0 ("auto" starts there) builds stored blocks
 * itself (a copy, no zlib); the first higher level starts zlib, which continues the same deflate stream
 * (stored blocks end on a byte boundary and none is final). zlib applies a new level only while idle: a
 * `params()` issued with writes in flight is silently ignored (Node 20), so this stage hands zlib one chunk
 * at a time and changes the level between two.
 */
export class Deflater extends Transform {
  private zlib: DeflateRaw | null = null;
  private wanted: number;
  /** The stored block being filled, and how many payload bytes it has. */
  private block: Buffer | null = null;
  private used = 0;
  constructor(
    public level: number,
    private readonly buffers?: DeflaterBuffers,
  ) {
    super();
    this.wanted = level;
    if (level > 0) this.startZlib(level);
  }
  /** Takes effect before the next chunk. */
  setLevel(level: number): void {
    this.wanted = level;
  }
  private startZlib(level: number): DeflateRaw {
    this.pushStored(); // what was stored so far goes first; zlib's blocks follow it
    const zlib = createDeflateRaw({ level, chunkSize: GZIP_CHUNK_BYTES });
    zlib.on("data", (chunk: Buffer) => this.push(chunk));
    zlib.on("error", (err) => this.destroy(err));
    this.zlib = zlib;
    this.level = level;
    return zlib;
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (this.zlib === null && this.wanted === 0) {
      this.store(chunk);
      this.buffers?.consumed(chunk);
      cb();
      return;
    }
    const zlib = this.zlib ?? this.startZlib(this.wanted);
    const write = (): void => {
      zlib.write(chunk, (err) => {
        if (!err) this.buffers?.consumed(chunk); // zlib has read all of it
        cb(err ?? null);
      });
    };
    if (this.wanted === this.level) return write();
    this.level = this.wanted;
    zlib.params(this.level, zlibConstants.Z_DEFAULT_STRATEGY, write);
  }
  /** Copies `chunk` into stored blocks, pushing each one that is full. */
  private store(chunk: Buffer): void {
    for (let off = 0; off < chunk.length; ) {
      this.block ??= this.buffers?.stored.take() ?? Buffer.allocUnsafe(STORED_BLOCK_BYTES);
      const n = chunk.copy(this.block, 5 + this.used, off, off + Math.min(STORED_PAYLOAD_BYTES - this.used, chunk.length - off));
      this.used += n;
      off += n;
      if (this.used === STORED_PAYLOAD_BYTES) this.pushStored();
    }
  }
  /** Pushes the stored block being filled (if it has any payload), not final. */
  private pushStored(): void {
    const block = this.block;
    if (block === null || this.used === 0) return;
    block[0] = 0x00;
    block.writeUInt16LE(this.used, 1);
    block.writeUInt16LE(~this.used & 0xffff, 3);
    this.buffers?.stored.lend(block);
    this.push(block.subarray(0, 5 + this.used));
    this.block = null;
    this.used = 0;
  }
  override _flush(cb: TransformCallback): void {
    const zlib = this.zlib;
    if (zlib === null) {
      this.pushStored();
      cb(null, Buffer.from(FINAL_STORED_BLOCK));
      return;
    }
    zlib.once("end", () => cb());
    zlib.end();
  }
  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    this.zlib?.destroy();
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
    // Chunks leave one by one as they came (a byte-mode reader joins what is buffered into a new buffer),
    // so the reader can hand each back to the pool it came from.
    super({ readableObjectMode: true, readableHighWaterMark: 8 });
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
