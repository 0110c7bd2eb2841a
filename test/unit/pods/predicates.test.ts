import { describe, expect, it } from "vitest";
import { hasStarted, isDeleting, isReadyForLogs, isScheduled, isTerminal } from "../../../src/pods/predicates.js";
import { fixtureNames, loadPod } from "./fixtures.js";

const options = { now: new Date("2026-11-28T21:41:30Z"), pullGraceSeconds: 60, unschedulableGraceSeconds: 60 };

// fixture → [hasStarted, isReadyForLogs, isTerminal, isScheduled, isDeleting]
const table: Record<string, [boolean, boolean, boolean, boolean, boolean]> = {
  "create-config-error": [false, false, true, true, false],
  "deadline-exceeded": [true, true, true, true, false],
  "err-image-pull": [false, false, true, true, false],
  evicted: [true, false, true, true, false], // ContainerStatusUnknown: no container id, no logs to follow
  "failed-exit-3": [true, true, true, true, false],
  "invalid-image-name": [false, false, true, true, false],
  "job-pod-job-failed": [true, true, true, true, false],
  "job-pod-job-succeeded": [true, true, true, true, false],
  "killed-after-delete": [true, true, true, true, true],
  "oom-killed": [true, true, true, true, false],
  running: [true, true, false, true, false],
  "sigterm-trap-after-delete": [true, true, true, true, true],
  succeeded: [true, true, true, true, false],
  unschedulable: [false, false, true, false, false],
};

describe("pod predicates over the recorded pods", () => {
  it("has a row for every fixture", () => {
    expect(Object.keys(table).sort()).toEqual(fixtureNames("pods"));
  });
  it.each(Object.entries(table))("%s", (name, [started, logs, terminal, scheduled, deleting]) => {
    const pod = loadPod(name);
    expect(hasStarted(pod)).toBe(started);
    expect(isReadyForLogs(pod)).toBe(logs);
    expect(isTerminal(pod, options)).toBe(terminal);
    expect(isScheduled(pod)).toBe(scheduled);
    expect(isDeleting(pod)).toBe(deleting);
  });
});
