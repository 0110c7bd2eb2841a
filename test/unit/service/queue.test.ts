// The queue schedules synchronously (inside acquire and release); its promises only report the outcome.
// `settled` reads a promise's state without waiting for anything but already-queued reactions.
import { describe, expect, it } from "vitest";
import { CancelledError } from "../../../src/errors.js";
import { BuildQueue, type QueueLimits, type Release } from "../../../src/service/queue.js";

const PENDING = "pending" as const;

/** The promise's value if it has settled, else "pending" (a rejection rejects). */
function settled<T>(promise: Promise<T>): Promise<T | typeof PENDING> {
  return Promise.race([promise, Promise.resolve(PENDING)]);
}

interface Entry {
  key: string;
  promise: Promise<Release>;
  positions: number[];
}

function enqueue(queue: BuildQueue, key: string, signal?: AbortSignal): Entry {
  const positions: number[] = [];
  const promise = queue.acquire(key, { onPosition: (p) => positions.push(p), ...(signal ? { signal } : {}) });
  return { key, promise, positions };
}

async function release(entry: Entry): Promise<void> {
  const r = await settled(entry.promise);
  if (r === PENDING) throw new Error(`${entry.key} has no slot to release`);
  r();
}

async function granted(entries: Entry[]): Promise<boolean[]> {
  return Promise.all(entries.map(async (e) => (await settled(e.promise)) !== PENDING));
}

describe("BuildQueue: who starts", () => {
  it.each<{ limits: QueueLimits; keys: string[]; started: boolean[]; positions: number[][] }>([
    { limits: { maxRunning: 5, maxPerRepository: 5 }, keys: ["a", "b", "a"], started: [true, true, true], positions: [[], [], []] },
    { limits: { maxRunning: 1, maxPerRepository: 1 }, keys: ["a", "b", "c"], started: [true, false, false], positions: [[], [1], [2]] },
    {
      limits: { maxRunning: 2, maxPerRepository: 1 },
      keys: ["a", "a", "b", "c"],
      // the second `a` waits for its repository; `b` is not held up by it
      started: [true, false, true, false],
      positions: [[], [1], [], [2]],
    },
    {
      limits: { maxRunning: 3, maxPerRepository: 2 },
      keys: ["a", "a", "a", "b", "b"],
      started: [true, true, false, true, false],
      positions: [[], [], [1], [], [2]],
    },
    { limits: { maxRunning: 2, maxPerRepository: 2 }, keys: ["a", "a", "a"], started: [true, true, false], positions: [[], [], [1]] },
  ])("$limits.maxRunning running, $limits.maxPerRepository per repository: $keys", async ({ limits, keys, started, positions }) => {
    const queue = new BuildQueue(limits);
    const entries = keys.map((k) => enqueue(queue, k));
    expect(await granted(entries)).toEqual(started);
    expect(entries.map((e) => e.positions)).toEqual(positions);
    expect(queue.running).toBe(started.filter(Boolean).length);
    expect(queue.length).toBe(started.filter((s) => !s).length);
  });

  it("starts nothing when at the limit, and the next waiter in arrival order when a slot frees", async () => {
    const queue = new BuildQueue({ maxRunning: 1, maxPerRepository: 1 });
    const [a, b, c] = ["a", "b", "c"].map((k) => enqueue(queue, k)) as [Entry, Entry, Entry];
    await release(a);
    expect(await granted([b, c])).toEqual([true, false]);
    expect(b.positions).toEqual([1]);
    expect(c.positions).toEqual([2, 1]);
    expect([queue.running, queue.length]).toEqual([1, 1]);
    await release(b);
    expect(await granted([c])).toEqual([true]);
    expect(c.positions).toEqual([2, 1]);
    expect([queue.running, queue.length]).toEqual([1, 0]);
    await release(c);
    expect([queue.running, queue.length]).toEqual([0, 0]);
  });

  it("lets a later build of another repository pass one whose repository is at its limit", async () => {
    const queue = new BuildQueue({ maxRunning: 2, maxPerRepository: 1 });
    const a1 = enqueue(queue, "a");
    const b1 = enqueue(queue, "b");
    const a2 = enqueue(queue, "a");
    const c1 = enqueue(queue, "c");
    expect(await granted([a1, b1, a2, c1])).toEqual([true, true, false, false]);
    await release(b1);
    // a2 still cannot start (a1 runs); c1 can
    expect(await granted([a2, c1])).toEqual([false, true]);
    expect(a2.positions).toEqual([1]); // unchanged, so not told again
    expect(c1.positions).toEqual([2]);
    await release(a1);
    expect(await granted([a2])).toEqual([true]);
    expect([queue.running, queue.length]).toEqual([2, 0]);
  });

  it("frees a repository's slot so the same repository can start again", async () => {
    const queue = new BuildQueue({ maxRunning: 4, maxPerRepository: 1 });
    const first = enqueue(queue, "a");
    await release(first);
    const second = enqueue(queue, "a");
    expect(await granted([second])).toEqual([true]);
    expect(second.positions).toEqual([]);
  });

  it("frees a slot once however often release is called", async () => {
    const queue = new BuildQueue({ maxRunning: 1, maxPerRepository: 1 });
    const a = enqueue(queue, "a");
    const b = enqueue(queue, "b");
    const c = enqueue(queue, "c");
    const r = await a.promise;
    r();
    r();
    r();
    expect(await granted([b, c])).toEqual([true, false]);
    expect([queue.running, queue.length]).toEqual([1, 1]);
  });
});

describe("BuildQueue: positions", () => {
  it("tells each waiter its position when it changes, and only then", async () => {
    const queue = new BuildQueue({ maxRunning: 1, maxPerRepository: 1 });
    const entries = ["r", "w1", "w2", "w3", "w4"].map((k) => enqueue(queue, k));
    const [running, w1, w2, w3, w4] = entries as [Entry, Entry, Entry, Entry, Entry];
    expect(entries.map((e) => e.positions)).toEqual([[], [1], [2], [3], [4]]);
    await release(running);
    expect(entries.map((e) => e.positions)).toEqual([[], [1], [2, 1], [3, 2], [4, 3]]);
    await release(w1);
    expect([w2, w3, w4].map((e) => e.positions)).toEqual([[2, 1], [3, 2, 1], [4, 3, 2]]);
  });

  it("works without an onPosition callback", async () => {
    const queue = new BuildQueue({ maxRunning: 1, maxPerRepository: 1 });
    const a = queue.acquire("a");
    const b = queue.acquire("b");
    (await a)();
    expect(await settled(b)).toBeTypeOf("function");
  });
});

describe("BuildQueue: leaving", () => {
  it("rejects at once, without queueing, when the signal has already aborted", async () => {
    const queue = new BuildQueue({ maxRunning: 1, maxPerRepository: 1 });
    const positions: number[] = [];
    const ac = new AbortController();
    ac.abort();
    await expect(queue.acquire("a", { signal: ac.signal, onPosition: (p) => positions.push(p) })).rejects.toBeInstanceOf(CancelledError);
    expect([queue.running, queue.length, positions]).toEqual([0, 0, []]);
  });

  it("gives up the place in the queue when the signal aborts, and moves the others up", async () => {
    const queue = new BuildQueue({ maxRunning: 1, maxPerRepository: 1 });
    const ac = new AbortController();
    const running = enqueue(queue, "r");
    const leaving = enqueue(queue, "x", ac.signal);
    const after = enqueue(queue, "y");
    ac.abort();
    await expect(leaving.promise).rejects.toThrow(new CancelledError("left the build queue"));
    expect(after.positions).toEqual([2, 1]);
    expect([queue.running, queue.length]).toEqual([1, 1]);
    await release(running);
    expect(await granted([after])).toEqual([true]);
  });

  it("lets a build of the same repository start when one waiting ahead of it leaves", async () => {
    const queue = new BuildQueue({ maxRunning: 1, maxPerRepository: 1 });
    const ac = new AbortController();
    const running = enqueue(queue, "r");
    const leaving = enqueue(queue, "a", ac.signal);
    const next = enqueue(queue, "a");
    ac.abort();
    await expect(leaving.promise).rejects.toBeInstanceOf(CancelledError);
    await release(running);
    expect(await granted([next])).toEqual([true]);
  });

  it("ignores an abort after the slot was granted", async () => {
    const queue = new BuildQueue({ maxRunning: 1, maxPerRepository: 1 });
    const ac = new AbortController();
    const a = enqueue(queue, "a", ac.signal);
    const b = enqueue(queue, "b");
    const r = await a.promise;
    ac.abort();
    expect([queue.running, queue.length]).toEqual([1, 1]);
    expect(await granted([b])).toEqual([false]);
    r();
    expect(await granted([b])).toEqual([true]);
  });
});

describe("BuildQueue: adopted builds", () => {
  it("count against both limits", async () => {
    const queue = new BuildQueue({ maxRunning: 2, maxPerRepository: 1 });
    const adopted = queue.adopt("a");
    expect(queue.running).toBe(1);
    const a = enqueue(queue, "a");
    const b = enqueue(queue, "b");
    const c = enqueue(queue, "c");
    expect(await granted([a, b, c])).toEqual([false, true, false]);
    adopted();
    expect(await granted([a, c])).toEqual([true, false]);
    expect([queue.running, queue.length]).toEqual([2, 1]);
  });

  it("are counted even beyond the limits (they already run), and hold new builds back until enough have ended", async () => {
    const queue = new BuildQueue({ maxRunning: 1, maxPerRepository: 1 });
    const adopted = [queue.adopt("a"), queue.adopt("a"), queue.adopt("b")];
    expect(queue.running).toBe(3);
    const c = enqueue(queue, "c");
    adopted[0]?.();
    adopted[1]?.();
    expect(await granted([c])).toEqual([false]);
    adopted[2]?.();
    expect(await granted([c])).toEqual([true]);
    expect(queue.running).toBe(1);
  });
});
