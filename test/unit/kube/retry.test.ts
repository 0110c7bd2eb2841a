import { describe, expect, it } from "vitest";
import { CancelledError, KubernetesApiError } from "../../../src/errors.js";
import { retryTransient } from "../../../src/kube/retry.js";

const apiError = (statusCode: number | null): KubernetesApiError =>
  new KubernetesApiError(`status ${statusCode}`, { verb: "get", resource: "pods", statusCode });

/** A request that fails with `failures` in turn, then answers "ok"; counts its calls. */
function flaky(failures: unknown[]): { request: () => Promise<string>; calls: () => number } {
  let calls = 0;
  return {
    request: async () => {
      const failure = failures[calls++];
      if (failure !== undefined) throw failure;
      return "ok";
    },
    calls: () => calls,
  };
}

const fast = { minDelayMs: 1, maxDelayMs: 2 };

describe("retryTransient", () => {
  it("retries 5xx, 429 and unreachable until the request answers", async () => {
    const r = flaky([apiError(503), apiError(429), apiError(null)]);
    await expect(retryTransient(r.request, { maxRetryTimeMs: 10_000, ...fast })).resolves.toBe("ok");
    expect(r.calls()).toBe(4);
  });

  it("gives up at once on a failure that is not transient (404, 403, 409)", async () => {
    for (const code of [404, 403, 409]) {
      const r = flaky([apiError(code)]);
      await expect(retryTransient(r.request, { maxRetryTimeMs: 10_000, ...fast })).rejects.toMatchObject({ statusCode: code });
      expect(r.calls()).toBe(1);
    }
  });

  it("rethrows the last transient error once the time limit has passed", async () => {
    const r = flaky(Array.from({ length: 1000 }, () => apiError(503)));
    const started = Date.now();
    await expect(retryTransient(r.request, { maxRetryTimeMs: 50, minDelayMs: 10, maxDelayMs: 10 })).rejects.toMatchObject({ statusCode: 503 });
    expect(r.calls()).toBeGreaterThan(1);
    expect(r.calls()).toBeLessThan(1000);
    expect(Date.now() - started).toBeLessThan(5_000); // bounded by the limit, not by the 1000 failures
  });

  it("follows retryIf instead of the transient rule when given", async () => {
    const r = flaky([new Error("custom")]);
    await expect(retryTransient(r.request, { maxRetryTimeMs: 1_000, retryIf: () => false, ...fast })).rejects.toThrow("custom");
    expect(r.calls()).toBe(1);
  });

  it("turns an abort between attempts into a CancelledError", async () => {
    const ctrl = new AbortController();
    const r = flaky(Array.from({ length: 1000 }, () => apiError(503)));
    setTimeout(() => ctrl.abort(new Error("user")), 20);
    const outcome = await retryTransient(r.request, { maxRetryTimeMs: 60_000, minDelayMs: 5, maxDelayMs: 5, signal: ctrl.signal }).catch((e: unknown) => e);
    expect(outcome).toBeInstanceOf(CancelledError);
  });
});
