import { describe, expect, it } from "vitest";
import { planCleanup, type CleanupAction, type CleanupCandidate, type CleanupPolicy } from "../../../src/pods/cleanup.js";
import { ANNOTATION_CREATED_AT, engineLabels } from "../../../src/pods/labels.js";

const NOW = new Date("2026-01-01T12:00:00Z");
const DEADLINE = 3600;

/** An RFC 3339 time `seconds` before NOW. */
const ago = (seconds: number): string => new Date(NOW.getTime() - seconds * 1000).toISOString();

interface Spec {
  kind: CleanupCandidate["kind"];
  /** Age in seconds, from our annotation (default) or, with `serverTime`, the server's creationTimestamp. */
  age?: number;
  finished?: boolean;
  role?: "builder" | "container";
  /** Owned by a Job (builder pods, builder Secrets). */
  owned?: boolean;
  serverTime?: boolean;
}

function candidate(name: string, spec: Spec): CleanupCandidate {
  const metadata: CleanupCandidate["metadata"] = {
    labels: engineLabels({ instance: "i1", role: spec.role ?? (spec.kind === "Pod" && !spec.owned ? "container" : "builder") }),
  };
  if (spec.age !== undefined) {
    if (spec.serverTime) metadata.creationTimestamp = new Date(ago(spec.age));
    else metadata.annotations = { [ANNOTATION_CREATED_AT]: ago(spec.age) };
  }
  if (spec.owned) metadata.ownerReferences = [{ kind: "Job" }];
  return { kind: spec.kind, name, metadata, finished: spec.finished ?? false };
}

const policy = (extra: Partial<CleanupPolicy> = {}): CleanupPolicy => ({ now: NOW, buildDeadlineSeconds: DEADLINE, ...extra });

/** The plan for one candidate: its reason, or null when it is kept. */
function whyFor(spec: Spec, extra: Partial<CleanupPolicy> = {}): string | null {
  const actions = planCleanup([candidate("x", spec)], policy(extra));
  expect(actions.length).toBeLessThanOrEqual(1);
  return actions[0]?.why ?? null;
}

describe("planCleanup: default policy", () => {
  it.each<[string, Spec, string | null]>([
    // Finished objects go.
    ["a finished builder Job", { kind: "Job", age: 10, finished: true }, "finished job"],
    ["a finished run pod", { kind: "Pod", age: 10, finished: true }, "finished pod"],
    ["a run pod that finished just now", { kind: "Pod", age: 0, finished: true }, "finished pod"],
    // What still runs belongs to a live client.
    ["a running builder Job", { kind: "Job", age: 60 }, null],
    ["a running run pod", { kind: "Pod", age: 60 }, null],
    ["a run pod running for a week", { kind: "Pod", age: 7 * 86400 }, null],
    // A builder Job the server should have ended long ago is stuck.
    ["a builder Job at its deadline", { kind: "Job", age: DEADLINE }, null],
    ["a builder Job within the 60 s grace", { kind: "Job", age: DEADLINE + 60 }, null],
    ["a builder Job past its deadline", { kind: "Job", age: DEADLINE + 61 }, "builder past its deadline"],
    // Pods of a Job are deleted with their Job, never on their own.
    ["a finished builder pod (owned by its Job)", { kind: "Pod", age: 10, finished: true, owned: true }, null],
    ["a builder pod past the deadline (owned by its Job)", { kind: "Pod", age: DEADLINE * 2, owned: true }, null],
    // A builder Secret without an owner is from a build whose Job was never created.
    ["an orphaned builder Secret after 301 s", { kind: "Secret", age: 301 }, "credentials of a build that never started"],
    ["an orphaned builder Secret at 300 s", { kind: "Secret", age: 300 }, null],
    ["a fresh orphaned builder Secret", { kind: "Secret", age: 5 }, null],
    ["an owned builder Secret (goes with its Job)", { kind: "Secret", age: 3600, owned: true }, null],
    ["a container Secret", { kind: "Secret", age: 3600, role: "container" }, null],
    ["an orphaned builder Secret dated by the server", { kind: "Secret", age: 301, serverTime: true }, "credentials of a build that never started"],
    ["a builder Job past its deadline dated by the server", { kind: "Job", age: DEADLINE + 61, serverTime: true }, "builder past its deadline"],
    // No timestamp at all: as old as can be.
    ["an orphaned builder Secret without a timestamp", { kind: "Secret" }, "credentials of a build that never started"],
    ["a running Job without a timestamp", { kind: "Job" }, "builder past its deadline"],
    ["a running run pod without a timestamp", { kind: "Pod" }, null],
    // ConfigMaps never finish: only --all removes them.
    ["a ConfigMap", { kind: "ConfigMap", age: 86400 }, null],
  ])("%s → %s", (_name, spec, why) => {
    expect(whyFor(spec)).toBe(why);
  });

  it("uses the buildDeadlineSeconds it is given", () => {
    expect(whyFor({ kind: "Job", age: 200 }, { buildDeadlineSeconds: 100 })).toBe("builder past its deadline");
    expect(whyFor({ kind: "Job", age: 160 }, { buildDeadlineSeconds: 100 })).toBeNull();
  });

  it("prefers our created-at annotation to the server's creationTimestamp", () => {
    const c = candidate("s", { kind: "Secret", age: 10 });
    c.metadata.creationTimestamp = new Date(ago(10_000));
    expect(planCleanup([c], policy())).toEqual([]);
    c.metadata.annotations = { [ANNOTATION_CREATED_AT]: "not a time" };
    expect(planCleanup([c], policy())).toEqual([{ kind: "Secret", name: "s", why: "credentials of a build that never started" }]);
  });

  it("accepts the server's creationTimestamp as a string, as a raw watch delivers it", () => {
    const c = candidate("s", { kind: "Secret" });
    c.metadata.creationTimestamp = ago(400);
    expect(planCleanup([c], policy())).toHaveLength(1);
    c.metadata.creationTimestamp = ago(100);
    expect(planCleanup([c], policy())).toHaveLength(0);
  });
});

describe("planCleanup: olderThanSeconds", () => {
  it.each<[string, Spec, number, string | null]>([
    ["a finished Job younger than the limit", { kind: "Job", age: 59, finished: true }, 60, null],
    ["a finished Job exactly at the limit", { kind: "Job", age: 60, finished: true }, 60, "finished job"],
    ["a finished pod older than the limit", { kind: "Pod", age: 7200, finished: true }, 3600, "finished pod"],
    ["a stuck Job younger than the limit", { kind: "Job", age: DEADLINE + 100 }, 86400, null],
    ["an orphaned Secret younger than the limit", { kind: "Secret", age: 1000 }, 3600, null],
    ["an object without a timestamp", { kind: "Pod", finished: true }, 86400, "finished pod"],
    // The limit never makes a running object eligible.
    ["a running pod older than the limit", { kind: "Pod", age: 7200 }, 60, null],
  ])("%s", (_name, spec, olderThanSeconds, why) => {
    expect(whyFor(spec, { olderThanSeconds })).toBe(why);
  });
});

describe("planCleanup: all", () => {
  it.each<[string, Spec]>([
    ["a running builder Job", { kind: "Job", age: 10 }],
    ["a running run pod", { kind: "Pod", age: 10 }],
    ["a fresh builder Secret", { kind: "Secret", age: 1 }],
    ["an owned builder Secret", { kind: "Secret", age: 1, owned: true }],
    ["a ConfigMap", { kind: "ConfigMap", age: 1 }],
    ["a finished Job", { kind: "Job", age: 1, finished: true }],
    // With --all, pods of Jobs go too (their Job is being deleted anyway).
    ["a running builder pod", { kind: "Pod", age: 10, owned: true }],
  ])("deletes %s", (_name, spec) => {
    expect(whyFor(spec, { all: true })).toBe("--all");
  });

  it("still honours olderThanSeconds", () => {
    expect(whyFor({ kind: "Pod", age: 10 }, { all: true, olderThanSeconds: 60 })).toBeNull();
    expect(whyFor({ kind: "Pod", age: 60 }, { all: true, olderThanSeconds: 60 })).toBe("--all");
  });
});

describe("planCleanup: a namespace after crashed clients", () => {
  const candidates = [
    candidate("kce-build-done", { kind: "Job", age: 900, finished: true }),
    candidate("kce-build-done-pod", { kind: "Pod", age: 900, finished: true, owned: true }),
    candidate("kce-build-done-creds", { kind: "Secret", age: 900, owned: true }),
    candidate("kce-build-live", { kind: "Job", age: 120 }),
    candidate("kce-build-live-pod", { kind: "Pod", age: 120, owned: true }),
    candidate("kce-build-stuck", { kind: "Job", age: DEADLINE + 600 }),
    candidate("kce-build-stuck-pod", { kind: "Pod", age: DEADLINE + 600, owned: true }),
    candidate("kce-build-orphan-creds", { kind: "Secret", age: 900 }),
    candidate("kce-run-exited", { kind: "Pod", age: 300, finished: true }),
    candidate("kce-run-live", { kind: "Pod", age: 300 }),
  ];

  it("deletes what is finished, stuck or orphaned, in input order, and keeps what a live client uses", () => {
    expect(planCleanup(candidates, policy())).toEqual<CleanupAction[]>([
      { kind: "Job", name: "kce-build-done", why: "finished job" },
      { kind: "Job", name: "kce-build-stuck", why: "builder past its deadline" },
      { kind: "Secret", name: "kce-build-orphan-creds", why: "credentials of a build that never started" },
      { kind: "Pod", name: "kce-run-exited", why: "finished pod" },
    ]);
  });

  it("with olderThanSeconds, keeps the younger ones", () => {
    expect(planCleanup(candidates, policy({ olderThanSeconds: 600 })).map((a) => a.name)).toEqual([
      "kce-build-done",
      "kce-build-stuck",
      "kce-build-orphan-creds",
    ]);
  });

  it("with all, deletes everything", () => {
    expect(planCleanup(candidates, policy({ all: true })).map((a) => a.name)).toEqual(candidates.map((c) => c.name));
  });

  it("plans nothing for nothing", () => {
    expect(planCleanup([], policy({ all: true }))).toEqual([]);
  });
});
