/**
 * The build context as a stream: a deterministic tar (sorted entries, mtime 0, uid/gid 0, normalized modes,
 * symlinks kept, directories included, no special files) in gzip framing (compressed or not: see
 * context-compression.ts), with backpressure from the consumer back to the disk reads. The content hash is the sha256 of the uncompressed tar, so the same tree gives the
 * same hash whether it came from a directory or from a tar stream, and whatever its mtimes or listing order.
 */
import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Readable, Transform, Writable, pipeline, type TransformCallback } from "node:stream";
import { constants as zlibConstants, crc32, createDeflateRaw, type DeflateRaw } from "node:zlib";
import { ContainerEngineError, InvalidInputError } from "../errors.js";
import { validateDockerfilePath } from "./build-options.js";
import { AUTO_COMPRESSION, nextAutoPhase, type AutoCompressionPolicy, type AutoPhase, type ContextCompression } from "./context-compression.js";
import { listDirectory } from "./context-dir.js";
import { readTarStream } from "./context-tar.js";
import { TAR_BLOCK_BYTES, tarBlocks, tarSize, type ContextEntry } from "./tar-format.js";

/** Where the context comes from: exactly one of `path` and `context`. */
export interface BuildContextSource {
  /** Absolute or relative build-context directory; `.dockerignore` in it is honoured. */
  path?: string;
  /** A tar stream of the context (plain or gzip); read completely by {@link createBuildContext}. */
  context?: NodeJS.ReadableStream;
  /** Dockerfile path relative to the context; default "Dockerfile". */
  dockerfile?: string;
  /** Directory for the temporary spool of a tar `context`; default `os.tmpdir()`. */
  tmpDir?: string;
}

/** Progress of one stream, reported as bytes flow. */
export interface ContextProgress {
  /** Uncompressed tar bytes produced so far. */
  tarBytes: number;
  /** Gzip bytes produced so far. */
  gzipBytes: number;
  /** The exact uncompressed size the tar will have (known before streaming). */
  totalTarBytes: number;
  /** The gzip level in use (0: stored; "auto" raises it on a slow link). */
  compressionLevel: number;
}

/** Options of {@link BuildContext.open}. */
export interface OpenOptions {
  onProgress?: (progress: ContextProgress) => void;
  /** Default "auto": stored, compressed once the upload waits on a slow link. */
  compression?: ContextCompression;
  /** Tuning of "auto" (tests). */
  autoPolicy?: Partial<AutoCompressionPolicy>;
}

/** The identity of a context: its hash and sizes. */
export interface ContextDigest {
  /** "sha256:<hex>" of the uncompressed deterministic tar. */
  sha256: string;
  /** Uncompressed tar size in bytes. */
  tarBytes: number;
  /** Number of regular files. */
  files: number;
}

/** What one completed stream produced. */
export interface ContextSummary extends ContextDigest {
  /** Gzip size in bytes: what was sent. */
  gzipBytes: number;
  /** The gzip level at the end. */
  compressionLevel: number;
}

/** One pass over the context: the gzip bytes and, once they were all read, their summary. */
export interface ContextStream {
  /** Gzip-compressed tar; reading drives the disk reads (no read-ahead beyond a few chunks). */
  readonly stream: Readable;
  /**
   * Resolves when `stream` ended (every byte was read). Rejects when it failed or was destroyed first.
   * Never an unhandled rejection: the promise is observed internally.
   */
  readonly done: Promise<ContextSummary>;
}

/** A prepared, validated build context. Stream it as often as needed; dispose of it when done. */
export interface BuildContext {
  readonly kind: "directory" | "tar";
  /** The Dockerfile's normalized path inside the context. */
  readonly dockerfile: string;
  /** Number of regular files. */
  readonly files: number;
  /** Exact uncompressed tar size in bytes. */
  readonly tarBytes: number;
  /** Entries that were skipped (devices, FIFOs, sockets). */
  readonly warnings: readonly string[];
  /** A fresh stream of the tar in gzip framing. */
  open(options?: OpenOptions): ContextStream;
  /** The hash without producing gzip output; cached, and taken from a completed stream when there was one. */
  digest(): Promise<ContextDigest>;
  /** Removes temporary files (the spool of a tar input). Idempotent. */
  dispose(): Promise<void>;
}

/** zlib's output buffer: fewer, larger chunks (and stdin frames) than the 16 KiB default. */
const GZIP_CHUNK_BYTES = 64 * 1024;

/** Hashes and counts the uncompressed bytes flowing through it (and takes their CRC-32 for gzip's trailer). */
class TarMeter extends Transform {
  readonly hash = createHash("sha256");
  bytes = 0;
  crc = 0;
  constructor(private readonly withCrc: boolean) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    if (this.withCrc) this.crc = crc32(chunk, this.crc);
    this.bytes += chunk.length;
    cb(null, chunk);
  }
}

/**
 * Raw deflate whose level can change between chunks. zlib applies a new level only while idle: a `params()`
 * issued with writes in flight is silently ignored (Node 20), so this stage hands zlib one chunk at a time and
 * changes the level between two.
 */
class Deflater extends Transform {
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
class GzipFraming extends Transform {
  bytes = 0;
  private started = false;
  constructor(
    private readonly tar: TarMeter,
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
    const trailer = Buffer.alloc(8);
    trailer.writeUInt32LE(this.tar.crc >>> 0, 0);
    trailer.writeUInt32LE(this.tar.bytes % 2 ** 32, 4); // ISIZE: the size modulo 2^32
    this.bytes += trailer.length;
    this.report(this.bytes);
    cb(null, trailer);
  }
}

/**
 * Runs "auto" compression: samples whether packed output waits for the consumer and, window by window, lets
 * {@link nextAutoPhase} decide the gzip level. Returns the function that stops watching.
 */
function watchLink(
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

class PreparedContext implements BuildContext {
  readonly files: number;
  readonly tarBytes: number;
  private cachedDigest: Promise<ContextDigest> | null = null;
  private disposed = false;

  constructor(
    readonly kind: "directory" | "tar",
    readonly dockerfile: string,
    private readonly entries: readonly ContextEntry[],
    readonly warnings: readonly string[],
    private readonly tmp: string | null,
  ) {
    this.files = entries.filter((e) => e.type === "file").length;
    this.tarBytes = tarSize(entries);
  }

  private source(): Readable {
    if (this.disposed) throw new InvalidInputError("the build context was disposed of");
    return Readable.from(tarBlocks(this.entries), { objectMode: false, highWaterMark: TAR_BLOCK_BYTES });
  }

  open(options: OpenOptions = {}): ContextStream {
    const compression = options.compression ?? "auto";
    let level = compression === "auto" ? 0 : compression;
    const tar = new TarMeter(true);
    const onProgress = options.onProgress;
    const gz = new GzipFraming(tar, (gzipBytes) =>
      onProgress?.({ tarBytes: tar.bytes, gzipBytes, totalTarBytes: this.tarBytes, compressionLevel: level }),
    );
    // Failures of any stage destroy every stage with that error; `done` reads it from the last one.
    const deflate = new Deflater(level);
    const stream = pipeline(this.source(), tar, deflate, gz, () => undefined);
    const stopWatching =
      compression === "auto"
        ? watchLink(stream, { gzipBytes: () => gz.bytes, tarBytes: () => tar.bytes }, { ...AUTO_COMPRESSION, ...options.autoPolicy }, (next) => {
            level = next;
            deflate.setLevel(next);
          })
        : () => undefined;
    const done = new Promise<ContextSummary>((resolveDone, reject) => {
      let ended = false;
      stream.once("end", () => {
        ended = true;
        const summary = { sha256: `sha256:${tar.hash.digest("hex")}`, tarBytes: tar.bytes, files: this.files };
        this.cachedDigest ??= Promise.resolve(summary);
        resolveDone({ ...summary, gzipBytes: gz.bytes, compressionLevel: level });
      });
      stream.once("error", reject);
      stream.once("close", () => {
        stopWatching();
        if (!ended) reject(new ContainerEngineError("the build context stream was closed before it ended"));
      });
    });
    done.catch(() => undefined); // observed: the caller may only read `stream`
    return { stream, done };
  }

  digest(): Promise<ContextDigest> {
    this.cachedDigest ??= this.computeDigest();
    return this.cachedDigest;
  }

  private async computeDigest(): Promise<ContextDigest> {
    const tar = new TarMeter(false);
    const sink = new Writable({ write: (_chunk, _enc, cb) => cb() });
    await new Promise<void>((resolveDone, reject) =>
      pipeline(this.source(), tar, sink, (err) => (err ? reject(err) : resolveDone())),
    );
    return { sha256: `sha256:${tar.hash.digest("hex")}`, tarBytes: tar.bytes, files: this.files };
  }

  async dispose(): Promise<void> {
    this.disposed = true;
    if (this.tmp) await rm(this.tmp, { recursive: true, force: true });
  }
}

/**
 * Prepares a build context: validates the input completely (throws `InvalidInputError` for a missing
 * directory or Dockerfile, both or neither of `path`/`context`, `..` or absolute paths and escaping links in a
 * tar) before returning, so nothing has been sent anywhere when it fails. A tar `context` is read to its end
 * and spooled to a temporary file; call `dispose()` when done.
 */
export async function createBuildContext(source: BuildContextSource): Promise<BuildContext> {
  const dockerfile = validateDockerfilePath(source.dockerfile);
  const hasPath = source.path !== undefined && source.path !== null;
  if (hasPath === (source.context !== undefined && source.context !== null)) {
    throw new InvalidInputError("a build needs exactly one of `path` (a directory) and `context` (a tar stream)");
  }
  if (source.path !== undefined && source.path !== null) {
    if (typeof source.path !== "string" || source.path === "") {
      throw new InvalidInputError("the build context `path` must be a non-empty string");
    }
    const listing = await listDirectory(resolve(source.path), dockerfile);
    return new PreparedContext("directory", dockerfile, listing.entries, listing.warnings, null);
  }
  const input = source.context;
  if (!input || typeof (input as Partial<AsyncIterable<unknown>>)[Symbol.asyncIterator] !== "function") {
    throw new InvalidInputError("the build `context` must be a readable stream of a tar archive");
  }
  const tmp = await mkdtemp(join(source.tmpDir ?? tmpdir(), "kce-context-"));
  try {
    const listing = await readTarStream(input, dockerfile, join(tmp, "spool"));
    return new PreparedContext("tar", dockerfile, listing.entries, listing.warnings, tmp);
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
}

/** The context's hash and sizes without producing gzip output (prepares, hashes and disposes). */
export async function computeContextDigest(source: BuildContextSource): Promise<ContextDigest> {
  const context = await createBuildContext(source);
  try {
    return await context.digest();
  } finally {
    await context.dispose();
  }
}
