import { describe, expect, it } from "vitest";
import { BoundaryDeduper, compareTimestamps, LineSplitter, parseLogLine, parseTimestamp } from "../../../src/kube/lines.js";

describe("LineSplitter", () => {
  it("joins lines split across chunks and keeps the partial tail", () => {
    const s = new LineSplitter();
    expect(s.push(Buffer.from("a\nb"))).toEqual(["a"]);
    expect(s.push(Buffer.from("c\r\n\nd"))).toEqual(["bc", ""]);
    expect(s.pending).toBe(1);
    expect(s.flush()).toBe("d");
    expect(s.flush()).toBeNull();
  });

  it("does not break a multi-byte character split between chunks", () => {
    const bytes = Buffer.from("é€\n");
    const s = new LineSplitter();
    const out = [...s.push(bytes.subarray(0, 1)), ...s.push(bytes.subarray(1, 3)), ...s.push(bytes.subarray(3))];
    expect(out).toEqual(["é€"]);
  });
});

describe("log line parsing", () => {
  it("splits the kubelet's timestamp prefix", () => {
    expect(parseLogLine("2025-01-02T03:04:05.123456789Z hello world")).toEqual({
      timestamp: "2025-01-02T03:04:05.123456789Z",
      text: "hello world",
    });
    expect(parseLogLine("2025-01-02T03:04:05Z")).toEqual({ timestamp: "2025-01-02T03:04:05Z", text: "" });
    expect(parseLogLine("2025-01-02T03:04:05Z ")).toEqual({ timestamp: "2025-01-02T03:04:05Z", text: "" });
    expect(parseLogLine("no timestamp here")).toBeNull();
  });

  it("orders timestamps whose trailing zeros the kubelet trimmed", () => {
    // String order says .1Z > .12Z; time order says the opposite.
    expect(compareTimestamps("2025-01-02T03:04:05.1Z", "2025-01-02T03:04:05.12Z")).toBe(-1);
    expect(compareTimestamps("2025-01-02T03:04:05.5Z", "2025-01-02T03:04:05.500000000Z")).toBe(0);
    expect(compareTimestamps("2025-01-02T03:04:06Z", "2025-01-02T03:04:05.999999999Z")).toBe(1);
    expect(compareTimestamps("2025-01-02T05:04:05+02:00", "2025-01-02T03:04:05Z")).toBe(0);
    expect(parseTimestamp("2025-01-02T03:04:05.000000001Z")! - parseTimestamp("2025-01-02T03:04:05Z")!).toBe(1n);
  });
});

describe("BoundaryDeduper", () => {
  const L = (ts: string, text: string) => ({ timestamp: `2025-01-01T00:00:${ts}Z`, text });

  it("accepts everything on the first read, even slightly out of order", () => {
    const d = new BoundaryDeduper();
    expect([L("01.2", "a"), L("01.1", "b"), L("01.3", "c")].map((l) => d.accept(l))).toEqual([true, true, true]);
    expect(d.lastTimestamp).toBe("2025-01-01T00:00:01.3Z");
  });

  it("drops what a resume from the truncated second repeats, keeps what is new", () => {
    const d = new BoundaryDeduper();
    for (const l of [L("01.1", "a"), L("01.2", "b"), L("01.2", "b")]) expect(d.accept(l)).toBe(true);
    d.beginResume();
    // The server resumes from 00:00:01 (seconds): a, b, b repeat; a third "b" at .2 is new; then newer lines.
    const resumed = [L("01.1", "a"), L("01.2", "b"), L("01.2", "b"), L("01.2", "b"), L("01.3", "c"), L("01.25", "late")];
    expect(resumed.map((l) => d.accept(l))).toEqual([false, false, false, true, true, true]);
  });

  it("keeps a line equal to an earlier one once past the boundary", () => {
    const d = new BoundaryDeduper();
    d.accept(L("01", "x"));
    d.beginResume();
    expect(d.accept(L("01", "x"))).toBe(false);
    expect(d.accept(L("02", "x"))).toBe(true);
    expect(d.accept(L("02", "x"))).toBe(true);
  });
});
