import { describe, expect, it } from "vitest";
import { imageTag, mapLimit, toImageConfig } from "../../../src/registry/inspect.js";

describe("toImageConfig", () => {
  it("keeps the config and defaults WorkingDir", () => {
    expect(toImageConfig({ config: { Cmd: ["/bin/sh"], Env: ["PATH=/bin"] } })).toEqual({ Cmd: ["/bin/sh"], Env: ["PATH=/bin"], WorkingDir: "" });
    expect(toImageConfig({ config: { WorkingDir: "/srv" } })).toEqual({ WorkingDir: "/srv" });
  });
  it("drops null values and survives a missing config", () => {
    expect(toImageConfig({ config: { Cmd: null, Entrypoint: null, User: "" } })).toEqual({ User: "", WorkingDir: "" });
    expect(toImageConfig({})).toEqual({ WorkingDir: "" });
    expect(toImageConfig({ config: null })).toEqual({ WorkingDir: "" });
  });
});

describe("imageTag", () => {
  it.each([
    ["r2d-abc", "r2d-abc:latest"],
    ["10.0.0.1:5000/r2d-abc:v1", "r2d-abc:v1"],
    ["10.0.0.1:5000/ns/x", "ns/x:latest"],
    ["ghcr.io/a/b:1", "ghcr.io/a/b:1"],
    [`x@sha256:${"a".repeat(64)}`, `x@sha256:${"a".repeat(64)}`],
  ])("%s → %s", (ref, tag) => expect(imageTag(ref, "10.0.0.1:5000")).toBe(tag));
});

describe("mapLimit", () => {
  it("keeps order and caps concurrency", async () => {
    let inFlight = 0;
    let peak = 0;
    const out = await mapLimit([5, 1, 4, 2, 3], 2, async (n) => {
      inFlight++;
      peak = Math.max(peak, inFlight);
      await new Promise((r) => setTimeout(r, n));
      inFlight--;
      return n * 10;
    });
    expect(out).toEqual([50, 10, 40, 20, 30]);
    expect(peak).toBe(2);
  });
  it("rethrows the first failure after in-flight calls settle", async () => {
    const started: number[] = [];
    await expect(
      mapLimit([1, 2, 3, 4], 1, async (n) => {
        started.push(n);
        if (n === 2) throw new Error("boom");
        return n;
      }),
    ).rejects.toThrow("boom");
    expect(started).toEqual([1, 2]);
  });
  it("handles an empty list", async () => expect(await mapLimit([], 4, async (x) => x)).toEqual([]));
});
