/** Capped exponential backoff for reconnect loops (watch, log follow). Pure except {@link abortableDelay}. */
import { CancelledError } from "../errors.js";

/** Shape of the backoff. */
export interface BackoffOptions {
  /** First delay, ms (default 250). */
  initialMs?: number;
  /** Cap, ms (default 5000). */
  maxMs?: number;
  /** Growth per attempt (default 2). */
  factor?: number;
  /** Fraction of the delay randomised, 0..1 (default 0.2): delay × (1 − jitter … 1). */
  jitter?: number;
}

/**
 * The delay before retry number `attempt` (0-based): `initialMs × factor^attempt`, capped at `maxMs`, minus up
 * to `jitter` of it. `random` is injectable for tests (returns 0..1).
 */
export function backoffDelay(attempt: number, options: BackoffOptions = {}, random: () => number = Math.random): number {
  const initial = options.initialMs ?? 250;
  const max = options.maxMs ?? 5000;
  const factor = options.factor ?? 2;
  const jitter = Math.min(Math.max(options.jitter ?? 0.2, 0), 1);
  const raw = Math.min(max, initial * Math.pow(factor, Math.max(0, attempt)));
  return Math.round(raw * (1 - jitter * random()));
}

/** A delay function: resolves after `ms`, rejects with {@link CancelledError} when `signal` aborts. */
export type DelayFn = (ms: number, signal?: AbortSignal) => Promise<void>;

/** The real {@link DelayFn}, on a timer. */
export const abortableDelay: DelayFn = (ms, signal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) {
      reject(new CancelledError("cancelled", { cause: signal.reason }));
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(new CancelledError("cancelled", { cause: signal?.reason }));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
