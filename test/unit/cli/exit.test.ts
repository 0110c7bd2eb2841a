import { describe, expect, it } from "vitest";
import { exitWhenFlushed, type FlushableStream } from "../../../src/cli/exit.js";

/** A stream whose writes complete only when the test says so, like a pipe nobody reads yet. */
function heldStream(state: Partial<Pick<FlushableStream, "writableEnded" | "destroyed" | "writableLength">> = {}) {
  const callbacks: ((error?: Error | null) => void)[] = [];
  const errorListeners: ((error: Error) => void)[] = [];
  const writes: string[] = [];
  const stream: FlushableStream = {
    write: (chunk, callback) => {
      writes.push(chunk);
      callbacks.push(callback);
      return false;
    },
    once: (_event, listener) => errorListeners.push(listener),
    writableLength: state.writableLength ?? 4096,
    writableEnded: state.writableEnded ?? false,
    destroyed: state.destroyed ?? false,
  };
  return {
    stream,
    writes,
    complete: (error?: Error) => callbacks.splice(0).forEach((cb) => cb(error)),
    // Node reports a failed write twice: to its callback and as an 'error' event.
    fail: (error: Error) => {
      errorListeners.splice(0).forEach((listener) => listener(error));
      callbacks.splice(0).forEach((cb) => cb(error));
    },
  };
}

describe("exitWhenFlushed", () => {
  it("exits only after every stream's queued writes completed", () => {
    const out = heldStream();
    const err = heldStream();
    const exits: number[] = [];
    exitWhenFlushed(3, [out.stream, err.stream], (code) => exits.push(code));
    expect(exits).toEqual([]);
    out.complete();
    expect(exits).toEqual([]);
    err.complete();
    expect(exits).toEqual([3]);
  });

  it("a failed write (the reader went away) still exits, once; its error event is handled", () => {
    const out = heldStream();
    const err = heldStream();
    const exits: number[] = [];
    exitWhenFlushed(0, [out.stream, err.stream], (code) => exits.push(code));
    out.fail(new Error("EPIPE"));
    expect(exits).toEqual([]);
    err.complete();
    expect(exits).toEqual([0]);
  });

  it("streams with nothing queued, ended or destroyed are neither waited for nor written to", () => {
    const idle = heldStream({ writableLength: 0 });
    const ended = heldStream({ writableEnded: true });
    const destroyed = heldStream({ destroyed: true });
    const exits: number[] = [];
    exitWhenFlushed(1, [idle.stream, ended.stream, destroyed.stream], (code) => exits.push(code));
    expect(exits).toEqual([1]);
    expect([...idle.writes, ...ended.writes, ...destroyed.writes]).toEqual([]);
  });
});
