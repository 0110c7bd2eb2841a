/**
 * Retrying one API request through a transient failure (the API server restarting, 429, 5xx, a dropped
 * connection), with p-retry's capped exponential backoff and an overall time limit.
 *
 * The reconnect loops of the watch and the log follower stay hand-written (src/kube/backoff.ts): they resume a
 * stream that may run for hours and reset their backoff whenever the stream made progress, which is not one
 * operation that p-retry could own. The builder's create-or-join loop and the pool's move to another daemon
 * are not retries of a request either: each attempt makes a new plan.
 */
import pRetry from "p-retry";
import { CancelledError, ContainerEngineError } from "../errors.js";
import { isTransient } from "./api-errors.js";

export interface TransientRetryOptions {
  /** Give up (rethrowing the last error) once this much time has passed since the first attempt. */
  maxRetryTimeMs: number;
  /** Aborts the wait between attempts with a {@link CancelledError}. */
  signal?: AbortSignal;
  /** First delay, ms (default 250); doubles per attempt up to `maxDelayMs` (default 5000). */
  minDelayMs?: number;
  maxDelayMs?: number;
  /** Which failures are worth another attempt (default: {@link isTransient}). */
  retryIf?: (error: unknown) => boolean;
}

/** Runs `request` until it succeeds, fails for good (not transient), or `maxRetryTimeMs` has passed. */
export async function retryTransient<T>(request: () => Promise<T>, options: TransientRetryOptions): Promise<T> {
  const retryIf = options.retryIf ?? isTransient;
  try {
    return await pRetry(request, {
      retries: Number.MAX_SAFE_INTEGER, // bounded by time, not by count
      maxRetryTime: options.maxRetryTimeMs,
      minTimeout: options.minDelayMs ?? 250,
      maxTimeout: options.maxDelayMs ?? 5_000,
      factor: 2,
      randomize: true,
      shouldRetry: ({ error }) => retryIf(error),
      ...(options.signal ? { signal: options.signal } : {}),
    });
  } catch (err) {
    // p-retry rejects with the signal's reason when aborted between attempts; ours is a typed cancellation.
    if (options.signal?.aborted && !(err instanceof ContainerEngineError)) throw new CancelledError("cancelled", { cause: err });
    throw err;
  }
}
