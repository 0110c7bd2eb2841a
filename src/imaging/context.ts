/**
 * The build context as a stream: a deterministic tar (sorted entries, mtime 0, uid/gid 0, normalized modes,
 * symlinks kept, directories included, no special files) in gzip framing (compressed or not: see
 * context-compression.ts), with backpressure from the consumer back to the disk reads. The content hash is
 * the sha256 of the uncompressed tar, so the same tree gives the same hash whether it came from a directory
 * or from a tar stream, and whatever its mtimes or listing order.
 */
import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Readable, Transform, Writable, pipeline, type TransformCallback } from "node:stream";
import { crc32 } from "node:zlib";
import { ContainerEngineError, InvalidInputError } from "../errors.js";
import { validateDockerfilePath } from "./build-options.js";
import { BlockPool } from "./block-pool.js";
import { AUTO_COMPRESSION, Deflater, STORED_BLOCK_BYTES, GzipFraming, watchLink, type AutoCompressionPolicy, type ContextCompression } from "./context-compression.js";
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
  /**
   * Optional: hands a chunk read from `stream` back once nothing references it any more (it was copied or
   * written): its memory is reused for later chunks instead of being left to the garbage collector. Never
   * call it for a chunk still in use.
   */
  release(chunk: Uint8Array): void;
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

  private source(pool?: BlockPool): Readable {
    if (this.disposed) throw new InvalidInputError("the build context was disposed of");
    return Readable.from(tarBlocks(this.entries, TAR_BLOCK_BYTES, pool), { objectMode: false, highWaterMark: TAR_BLOCK_BYTES });
  }

  open(options: OpenOptions = {}): ContextStream {
    const compression = options.compression ?? "auto";
    let level = compression === "auto" ? 0 : compression;
    const tar = new TarMeter(true);
    const onProgress = options.onProgress;
    const gz = new GzipFraming(() => ({ crc: tar.crc, bytes: tar.bytes }), (gzipBytes) =>
      onProgress?.({ tarBytes: tar.bytes, gzipBytes, totalTarBytes: this.tarBytes, compressionLevel: level }),
    );
    // Failures of any stage destroy every stage with that error; `done` reads it from the last one.
    // Tar blocks are reused once deflated; stored blocks once the reader releases them.
    const tarBlocks = new BlockPool(TAR_BLOCK_BYTES);
    const storedBlocks = new BlockPool(STORED_BLOCK_BYTES);
    const deflate = new Deflater(level, { stored: storedBlocks, consumed: (chunk) => tarBlocks.recycle(chunk.buffer) });
    const stream = pipeline(this.source(tarBlocks), tar, deflate, gz, () => undefined);
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
    return { stream, done, release: (chunk) => storedBlocks.release(chunk) };
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
