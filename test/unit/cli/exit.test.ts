import { describe, expect, it } from "vitest";
import { exitWhenFlushed, type FlushableStream } from "../../../src/cli/exit.js";

/** A stream whose writes complete only when the test says so, like a pipe nobody reads yet. */
function heldStream(state: Partial<Pick<FlushableStream, "writableEnded" | "destroyed">> = {}) {
  const callbacks: ((error?: Error | null) => void)[] = [];
  const stream: FlushableStream = {
    write: (_chunk, callback) => {
      callbacks.push(callback);
      return false;
    },
    writableEnded: state.writableEnded ?? false,
    destroyed: state.destroyed ?? false,
  };
  return { stream, complete: (error?: Error) => callbacks.splice(0).forEach((cb) => cb(error)) };
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

  it("a failed write (the reader went away) still exits, once", () => {
    const out = heldStream();
    const exits: number[] = [];
    exitWhenFlushed(0, [out.stream], (code) => exits.push(code));
    out.complete(new Error("EPIPE"));
    expect(exits).toEqual([0]);
  });

  it("ended or destroyed streams are not waited for", () => {
    const ended = heldStream({ writableEnded: true });
    const destroyed = heldStream({ destroyed: true });
    const exits: number[] = [];
    exitWhenFlushed(1, [ended.stream, destroyed.stream], (code) => exits.push(code));
    expect(exits).toEqual([1]);
  });
});
