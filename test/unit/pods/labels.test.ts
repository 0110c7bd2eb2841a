import { describe, expect, it } from "vitest";
import { InvalidInputError } from "../../../src/errors.js";
import {
  ANNOTATION_CREATED_AT,
  createdAtOf,
  engineAnnotations,
  engineLabels,
  engineSelector,
  isManagedByUs,
  isValidLabelKey,
  isValidLabelValue,
  roleOf,
  selectorFromLabels,
} from "../../../src/pods/labels.js";

describe("engineLabels", () => {
  it("labels every object with managed-by, instance and role", () => {
    expect(engineLabels({ instance: "laptop-1", role: "container" })).toEqual({
      "app.kubernetes.io/managed-by": "kube-container-engine",
      "kube-container-engine/instance": "laptop-1",
      "kube-container-engine/role": "container",
    });
  });
  it("adds configured labels but never lets them override ours", () => {
    expect(engineLabels({ instance: "a", role: "builder", extra: { team: "data", "example.com/x": "y" } })).toMatchObject({
      team: "data",
      "example.com/x": "y",
      "kube-container-engine/role": "builder",
    });
    expect(() => engineLabels({ instance: "a", role: "builder", extra: { "kube-container-engine/role": "container" } })).toThrow(
      /set by the engine/,
    );
  });
  it.each([
    [{ instance: "" }, /instance id/],
    [{ instance: "has space" }, /instance id/],
    [{ instance: "x".repeat(64) }, /instance id/],
    [{ instance: "a", extra: { "bad key!": "v" } }, /label key/],
    [{ instance: "a", extra: { k: "bad value!" } }, /not a valid label value/],
  ])("rejects %j", (input, message) => {
    expect(() => engineLabels({ role: "container", ...input })).toThrow(InvalidInputError);
    expect(() => engineLabels({ role: "container", ...input })).toThrow(message);
  });
});

describe("label syntax", () => {
  it.each([
    ["", true],
    ["a", true],
    ["a.b-c_d", true],
    ["x".repeat(63), true],
    ["x".repeat(64), false],
    ["-a", false],
    ["a/b", false],
  ])("value %j → %s", (value, ok) => expect(isValidLabelValue(value)).toBe(ok));
  it.each([
    ["app", true],
    ["app.kubernetes.io/managed-by", true],
    ["Example.com/x", false],
    ["/x", false],
    ["a/b/c", false],
  ])("key %j → %s", (key, ok) => expect(isValidLabelKey(key)).toBe(ok));
});

describe("annotations", () => {
  it("records creation time, image and remove", () => {
    expect(engineAnnotations({ createdAt: new Date("2026-01-02T03:04:05Z"), image: "r2dabc:latest", remove: true })).toEqual({
      "kube-container-engine/created-at": "2026-01-02T03:04:05.000Z",
      "kube-container-engine/image": "r2dabc:latest",
      "kube-container-engine/remove": "true",
    });
    expect(engineAnnotations({ createdAt: new Date(0) })).toEqual({ [ANNOTATION_CREATED_AT]: "1970-01-01T00:00:00.000Z" });
  });
});

describe("selectors", () => {
  it("narrows by instance and role", () => {
    expect(engineSelector()).toBe("app.kubernetes.io/managed-by=kube-container-engine");
    expect(engineSelector({ instance: "i1", role: "builder" })).toBe(
      "app.kubernetes.io/managed-by=kube-container-engine,kube-container-engine/instance=i1,kube-container-engine/role=builder",
    );
    expect(() => engineSelector({ instance: "a,b=c" })).toThrow(InvalidInputError);
  });
  it("selects exact labels in a stable order", () => {
    expect(selectorFromLabels({ b: "2", a: "1" })).toBe("a=1,b=2");
  });
});

describe("reading our metadata back", () => {
  const ours = { metadata: { labels: engineLabels({ instance: "i1", role: "builder" }) } };
  it("recognises our objects and their role", () => {
    expect(isManagedByUs(ours)).toBe(true);
    expect(isManagedByUs(ours, "i1")).toBe(true);
    expect(isManagedByUs(ours, "i2")).toBe(false);
    expect(isManagedByUs({ metadata: {} })).toBe(false);
    expect(roleOf(ours)).toBe("builder");
    expect(roleOf({ metadata: { labels: { "kube-container-engine/role": "other" } } })).toBeNull();
  });
  it("reads the creation time from our annotation, else the server's timestamp", () => {
    const at = "2026-01-02T03:04:05.000Z";
    expect(createdAtOf({ metadata: { annotations: { [ANNOTATION_CREATED_AT]: at } } })?.toISOString()).toBe(at);
    expect(createdAtOf({ metadata: { creationTimestamp: "2026-01-02T03:04:05Z" } })?.toISOString()).toBe(at);
    expect(createdAtOf({ metadata: { creationTimestamp: new Date(at) } })?.toISOString()).toBe(at);
    expect(createdAtOf({ metadata: { annotations: { [ANNOTATION_CREATED_AT]: "garbage" } } })).toBeNull();
  });
});
