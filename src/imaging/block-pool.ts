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
   * Views of a lent block not yet released, by block, oldest first. Strong references, but few: weak ones
   * (WeakMap) kept every block alive until a full collection, and a reader that never released saw its dead
   * buffers double (unit test context-memory).
   */
  private readonly loans = new Map<ArrayBufferLike, number>();
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

  /** Records that `views` views of `chunk`'s block are handed on; each comes back through {@link release}. */
  lend(chunk: Uint8Array, views: number): void {
    if (!this.ours(chunk.buffer) || views <= 0) return;
    this.loans.set(chunk.buffer, (this.loans.get(chunk.buffer) ?? 0) + views);
    if (this.loans.size > MAX_LOANS) {
      const oldest = this.loans.keys().next().value;
      if (oldest !== undefined) this.loans.delete(oldest);
    }
  }

  /**
   * Takes back one view of a block (a chunk read from the stream, once nothing references it any more). The
   * block is reused when its last view came back; chunks of other origin are ignored.
   */
  release(chunk: Uint8Array): void {
    const block = chunk.buffer;
    const left = this.loans.get(block);
    if (left === undefined) return;
    if (left > 1) {
      this.loans.set(block, left - 1);
      return;
    }
    this.loans.delete(block);
    this.recycle(block);
  }

  /** Takes a block back that no view of is in use (e.g. zlib has consumed it). */
  recycle(block: ArrayBufferLike): void {
    if (this.ours(block) && !this.loans.has(block) && this.spare.length < this.maxSpare) this.spare.push(block);
  }
}
