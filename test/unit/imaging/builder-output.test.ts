import { describe, expect, it } from "vitest";
import { parseBuilderDigest, summarizeBuilderFailure } from "../../../src/imaging/builder-output.js";

const DIGEST = `sha256:${"ab12".repeat(16)}`;

describe("parseBuilderDigest", () => {
  it.each([
    [DIGEST, DIGEST],
    [`${DIGEST}\n`, DIGEST],
    ["", null],
    [null, null],
    [undefined, null],
    ["sha256:short", null],
    [`error: something\n${DIGEST}`, null], // a log tail kept after a failure is not a digest
  ])("%j → %j", (message, expected) => {
    expect(parseBuilderDigest(message)).toBe(expected);
  });
});

describe("summarizeBuilderFailure", () => {
  it("reads BuildKit's failing RUN", () => {
    const output = [
      "#5 [2/2] RUN exit 3",
      "#5 ERROR: process \"/bin/sh -c exit 3\" did not complete successfully: exit code: 3",
      "------",
      " > [2/2] RUN exit 3:",
      "------",
      "Dockerfile:2",
      "error: failed to solve: process \"/bin/sh -c exit 3\" did not complete successfully: exit code: 3",
      "",
    ].join("\n");
    const f = summarizeBuilderFailure(output, 1);
    expect(f.summary).toBe('error: failed to solve: process "/bin/sh -c exit 3" did not complete successfully: exit code: 3');
    expect(f.errorLines[0]).toBe('ERROR: process "/bin/sh -c exit 3" did not complete successfully: exit code: 3');
    expect(f.exitCode).toBe(3);
    expect(f.logTail.at(-1)).toBe(f.summary);
  });

  it("reads BuildKit's missing base image, keeping the container's exit code", () => {
    const f = summarizeBuilderFailure(
      ["#2 resolve image config for 10.0.0.5:5000/nope:1", "error: failed to solve: 10.0.0.5:5000/nope:1: not found"],
      1,
    );
    expect(f.summary).toMatch(/not found/);
    expect(f.exitCode).toBe(1);
  });

  it("reads Kaniko's text log and cobra error", () => {
    const output = [
      'level=info msg="Running: [/bin/sh -c exit 3]"',
      'level=error msg="error building image: error building stage: failed to execute command: waiting for process to exit: exit status 3"',
      "Error: error building image: error building stage: failed to execute command: waiting for process to exit: exit status 3",
    ];
    const f = summarizeBuilderFailure(output, 1);
    expect(f.summary).toBe(
      "error building image: error building stage: failed to execute command: waiting for process to exit: exit status 3",
    );
    expect(f.errorLines).toHaveLength(1); // the identical logrus and cobra lines collapse
    expect(f.exitCode).toBe(3);
  });

  it("reads logrus lines with a timestamp", () => {
    const f = summarizeBuilderFailure('time="2025-01-01T00:00:00Z" level=fatal msg="GET \\"x\\": not found"', 1);
    expect(f.summary).toBe('GET "x": not found');
  });

  it("reads Kaniko's colored format too", () => {
    const f = summarizeBuilderFailure("\u001b[31mERRO\u001b[0m[0002] error building image: GET x: not found\n", 1);
    expect(f.summary).toBe("error building image: GET x: not found");
  });

  it("falls back to the last line, or a placeholder", () => {
    expect(summarizeBuilderFailure("step 1\nKilled\n", 137)).toMatchObject({ summary: "Killed", exitCode: 137 });
    expect(summarizeBuilderFailure("", null)).toMatchObject({ summary: "the builder failed without output", exitCode: null });
  });

  it("keeps only the last lines as the tail", () => {
    const lines = Array.from({ length: 50 }, (_, i) => `line ${i}`);
    expect(summarizeBuilderFailure(lines, 1, 5).logTail).toEqual(lines.slice(-5));
  });
});
