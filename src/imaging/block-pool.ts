/**
 * Reusable blocks for the context stream. An upload reads every byte of the context into a fresh block, and V8
 * frees such external memory only after it grew by tens of MiB: a 512 MiB upload peaked ≈ 65 MiB of dead
 * blocks (bench P2). A consumer that copies what it reads (the stdin pump does: every frame is copied behind its
 * channel byte) hands each chunk back with `release`, and its block is filled again.
 */

/** Lent blocks tracked at most: a reader that never releases lets the oldest go to the garbage collector. */
const MAX_LOANS = 16;

/** Blocks that are not in use, and the bookkeeping of the ones that are. */
export class BlockPool {
  private readonly spare: ArrayBuffer[] = [];
  /**
   * Blocks handed on and not yet released, oldest first. Strong references, but few: weak ones (a WeakMap)
   * kept every block alive until a full collection, and a reader that never released saw its dead buffers
   * double (unit test context-memory).
   */
  private readonly lent = new Set<ArrayBufferLike>();
  /** Blocks allocated so far (tests, diagnostics). */
  allocated = 0;

  constructor(
    readonly blockBytes: number,
    private readonly maxSpare = 16,
  ) {}

  /** A block to fill: a released one, else a new one. */
  take(): Buffer {
    const reused = this.spare.pop();
    if (reused) return Buffer.from(reused, 0, this.blockBytes);
    this.allocated += 1;
    return Buffer.allocUnsafeSlow(this.blockBytes);
  }

  /** A block of this pool's size (blocks are only ever handed out by {@link take}). */
  private ours(block: ArrayBufferLike): block is ArrayBuffer {
    return block instanceof ArrayBuffer && block.byteLength === this.blockBytes;
  }

  /** Records that `chunk`'s block is handed on; it comes back through {@link release}. */
  lend(chunk: Uint8Array): void {
    if (!this.ours(chunk.buffer)) return;
    this.lent.add(chunk.buffer);
    if (this.lent.size > MAX_LOANS) {
      const oldest = this.lent.values().next().value;
      if (oldest !== undefined) this.lent.delete(oldest);
    }
  }

  /**
   * Takes a lent block back (a chunk read from the stream, once nothing references it any more) and reuses it;
   * chunks of other origin are ignored.
   */
  release(chunk: Uint8Array): void {
    if (this.lent.delete(chunk.buffer)) this.recycle(chunk.buffer);
  }

  /** Takes a block back that nothing uses any more (e.g. zlib has consumed it). */
  recycle(block: ArrayBufferLike): void {
    if (this.ours(block) && !this.lent.has(block) && this.spare.length < this.maxSpare) this.spare.push(block);
  }
}
