import { describe, expect, it } from "vitest";
import { abortableDelay, backoffDelay } from "../../../src/kube/backoff.js";
import { CancelledError } from "../../../src/errors.js";

describe("backoffDelay", () => {
  it("grows exponentially and is capped", () => {
    const noJitter = { initialMs: 100, maxMs: 1000, factor: 2, jitter: 0 };
    expect([0, 1, 2, 3, 4, 10].map((a) => backoffDelay(a, noJitter))).toEqual([100, 200, 400, 800, 1000, 1000]);
  });

  it("subtracts at most the jitter fraction", () => {
    expect(backoffDelay(0, { initialMs: 1000, jitter: 0.2 }, () => 1)).toBe(800);
    expect(backoffDelay(0, { initialMs: 1000, jitter: 0.2 }, () => 0)).toBe(1000);
  });

  it("defaults to 250 ms doubling up to 5 s", () => {
    expect(backoffDelay(0, {}, () => 0)).toBe(250);
    expect(backoffDelay(20, {}, () => 0)).toBe(5000);
  });
});

describe("abortableDelay", () => {
  it("rejects with CancelledError on abort", async () => {
    const c = new AbortController();
    const p = abortableDelay(10_000, c.signal);
    c.abort();
    await expect(p).rejects.toBeInstanceOf(CancelledError);
  });
});
