import { describe, expect, it } from "vitest";
import { BlockPool } from "../../../src/imaging/block-pool.js";

describe("BlockPool", () => {
  it("hands a lent block out again only after it came back", () => {
    const pool = new BlockPool(1024);
    const block = pool.take();
    pool.lend(block);
    expect(pool.take().buffer).not.toBe(block.buffer); // still out
    pool.release(block.subarray(0, 10)); // a view of it, as a reader gets it
    expect(pool.take().buffer).toBe(block.buffer);
    expect(pool.allocated).toBe(2);
  });

  it("recycle takes back a block nobody was lent; not one still lent", () => {
    const pool = new BlockPool(512);
    const lent = pool.take();
    pool.lend(lent);
    pool.recycle(lent.buffer);
    const free = pool.take();
    pool.recycle(free.buffer);
    expect(pool.take().buffer).toBe(free.buffer);
    expect(pool.take().buffer).not.toBe(lent.buffer);
  });

  it("ignores buffers of another size, and releases of what was not lent", () => {
    const pool = new BlockPool(256);
    const foreign = Buffer.allocUnsafeSlow(512);
    pool.lend(foreign);
    pool.release(foreign);
    pool.recycle(foreign.buffer);
    const block = pool.take();
    expect(block.buffer).not.toBe(foreign.buffer);
    pool.release(block); // never lent: stays out of the pool (it may still be in use)
    expect(pool.take().buffer).not.toBe(block.buffer);
  });

  it("tracks at most 16 lent blocks: a reader that never releases leaves them to the garbage collector", () => {
    const pool = new BlockPool(64);
    const first = pool.take();
    pool.lend(first);
    for (let i = 0; i < 16; i++) pool.lend(pool.take());
    pool.release(first); // forgotten: not taken back
    expect(pool.take().buffer).not.toBe(first.buffer);
  });

  it("keeps at most maxSpare blocks", () => {
    const pool = new BlockPool(128, 2);
    const blocks = [pool.take(), pool.take(), pool.take()];
    for (const b of blocks) pool.recycle(b.buffer);
    pool.take();
    pool.take();
    expect(pool.allocated).toBe(3);
    pool.take();
    expect(pool.allocated).toBe(4);
  });
});
