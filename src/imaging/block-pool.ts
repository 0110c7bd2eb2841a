/**
 * Reusable blocks for the context stream. An upload reads every byte of the context into a fresh block, and V8
 * frees such external memory only after it grew by tens of MiB: a 512 MiB upload peaked ≈ 65 MiB of dead
 * blocks (bench P2). A consumer that copies what it reads (the stdin pump does: every frame is copied behind its
 * channel byte) hands each chunk back with `release`, and its block is filled again.
 */

/** Blocks that are not in use, and the bookkeeping of the ones that are. */
export class BlockPool {
  private readonly spare: ArrayBuffer[] = [];
  /** Blocks of this pool (others are never taken back). */
  private readonly issued = new WeakSet<ArrayBufferLike>();
  /** Views of a block not yet released, by block (weak: a reader that never releases leaks nothing). */
  private readonly loans = new WeakMap<ArrayBufferLike, number>();
  /** Blocks allocated so far (tests, diagnostics). */
  allocated = 0;

  constructor(
    readonly blockBytes: number,
    private readonly maxSpare = 32,
  ) {}

  /** A block to fill: a released one, else a new one. */
  take(): Buffer {
    const reused = this.spare.pop();
    if (reused) return Buffer.from(reused, 0, this.blockBytes);
    const block = Buffer.allocUnsafeSlow(this.blockBytes);
    this.issued.add(block.buffer);
    this.allocated += 1;
    return block;
  }

  /** Records that `views` views of `chunk`'s block are handed on; each comes back through {@link release}. */
  lend(chunk: Uint8Array, views: number): void {
    if (!this.issued.has(chunk.buffer) || views <= 0) return;
    this.loans.set(chunk.buffer, (this.loans.get(chunk.buffer) ?? 0) + views);
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
    if (block instanceof ArrayBuffer && this.issued.has(block) && !this.loans.has(block) && this.spare.length < this.maxSpare) {
      this.spare.push(block);
    }
  }
}
