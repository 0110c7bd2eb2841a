/**
 * Exiting without losing output. On a pipe, Node writes what fits into the pipe at once and queues the rest;
 * `process.exit()` drops that queue. A slow reader (a busy parent process, a pipe shrunk to a few pages when
 * the user's pipe quota is spent) then gets a listing cut short — with exit code 0. So the CLI exits only
 * once every write before it has been handed to the OS.
 */

/** The part of a writable stream this needs (process.stdout / process.stderr, or a test double). */
export interface FlushableStream {
  write(chunk: string, callback: (error?: Error | null) => void): boolean;
  once(event: "error", listener: (error: Error) => void): unknown;
  /** Bytes written and not yet handed to the OS. */
  readonly writableLength: number;
  readonly writableEnded: boolean;
  readonly destroyed: boolean;
}

/**
 * Calls `exit(code)` once the writes queued on every stream have completed (or failed: a closed reader must
 * not keep the process alive, nor crash it). Streams with nothing queued, ended or destroyed are not waited for
 * (nor written to: `kce rpc --listen` reroutes stderr to a client that may be gone).
 */
export function exitWhenFlushed(code: number, streams: readonly FlushableStream[], exit: (code: number) => void): void {
  const queued = streams.filter((stream) => stream.writableLength > 0 && !stream.writableEnded && !stream.destroyed);
  let pending = queued.length;
  if (pending === 0) {
    exit(code);
    return;
  }
  const flushedOnce = (): (() => void) => {
    let called = false;
    return () => {
      if (called) return;
      called = true;
      pending -= 1;
      if (pending === 0) exit(code);
    };
  };
  for (const stream of queued) {
    const flushed = flushedOnce();
    stream.once("error", flushed);
    // An empty write completes after every write queued before it: writes on a stream complete in order.
    stream.write("", flushed);
  }
}
