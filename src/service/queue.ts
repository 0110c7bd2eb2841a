/**
 * The build queue: at most `maxRunning` builds at once, and at most `maxPerRepository` of one repository;
 * the rest wait in arrival order, each told its position whenever it changes. Pure in-memory scheduling.
 */
import { CancelledError } from "../errors.js";

export interface QueueLimits {
  /** Builds running at once in this service (≥ 1). */
  maxRunning: number;
  /** Builds of one repository running at once (≥ 1). */
  maxPerRepository: number;
}

/** Frees a running slot; calling it again does nothing. */
export type Release = () => void;

interface Waiter {
  key: string;
  onPosition: (position: number) => void;
  grant: (release: Release) => void;
  lastPosition: number;
}

export class BuildQueue {
  private readonly waiting: Waiter[] = [];
  private readonly runningByKey = new Map<string, number>();
  private runningCount = 0;

  constructor(private readonly limits: QueueLimits) {}

  get length(): number {
    return this.waiting.length;
  }

  get running(): number {
    return this.runningCount;
  }

  /**
   * Waits for a slot for a build of repository `key`. `onPosition` gets the 1-based position among the
   * waiting builds (first call right away unless the slot is free at once).
   * @throws CancelledError when `signal` aborts first (the place in the queue is given up).
   */
  acquire(key: string, options: { onPosition?: (position: number) => void; signal?: AbortSignal } = {}): Promise<Release> {
    if (options.signal?.aborted) return Promise.reject(new CancelledError("left the build queue"));
    return new Promise<Release>((resolve, reject) => {
      const waiter: Waiter = {
        key,
        onPosition: options.onPosition ?? (() => undefined),
        grant: (release) => {
          options.signal?.removeEventListener("abort", onAbort);
          resolve(release);
        },
        lastPosition: 0,
      };
      const onAbort = (): void => {
        const i = this.waiting.indexOf(waiter);
        if (i < 0) return;
        this.waiting.splice(i, 1);
        reject(new CancelledError("left the build queue"));
        this.schedule();
      };
      options.signal?.addEventListener("abort", onAbort, { once: true });
      this.waiting.push(waiter);
      this.schedule();
    });
  }

  /** Counts a build that is already running (found in the cluster after a restart) against the limits. */
  adopt(key: string): Release {
    return this.take(key);
  }

  private take(key: string): Release {
    this.runningCount += 1;
    this.runningByKey.set(key, (this.runningByKey.get(key) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.runningCount -= 1;
      const left = (this.runningByKey.get(key) ?? 1) - 1;
      if (left === 0) this.runningByKey.delete(key);
      else this.runningByKey.set(key, left);
      this.schedule();
    };
  }

  private canStart(key: string): boolean {
    return this.runningCount < this.limits.maxRunning && (this.runningByKey.get(key) ?? 0) < this.limits.maxPerRepository;
  }

  /** Starts every waiter that fits, in arrival order (a repository at its limit does not block others), then tells the rest their positions. */
  private schedule(): void {
    for (let i = 0; i < this.waiting.length; ) {
      const w = this.waiting[i];
      if (w !== undefined && this.canStart(w.key)) {
        this.waiting.splice(i, 1);
        w.grant(this.take(w.key));
      } else {
        i += 1;
      }
    }
    this.waiting.forEach((w, i) => {
      if (w.lastPosition === i + 1) return;
      w.lastPosition = i + 1;
      w.onPosition(i + 1);
    });
  }
}
