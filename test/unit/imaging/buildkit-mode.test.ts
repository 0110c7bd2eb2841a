import { describe, expect, it } from "vitest";
import { chooseBuildkitMode, rootlessEvidence } from "../../../src/imaging/buildkit-mode.js";
import { InvalidInputError } from "../../../src/errors.js";

const rootImage = { image: "10.0.0.5:5000/kce/buildkit:v0.32.2", user: "" };

describe("chooseBuildkitMode", () => {
  it("an explicit privileged choice wins, with a warning", () => {
    const choice = chooseBuildkitMode("privileged", { image: "moby/buildkit:v0.32.2-rootless", user: "1000:1000" });
    expect(choice.mode).toBe("privileged");
    expect(choice.reason).toMatch(/explicit/);
    expect(choice.warning).toMatch(/root on the node/);
  });

  it("an explicit rootless choice wins, even for a root image", () => {
    const choice = chooseBuildkitMode("rootless", rootImage);
    expect(choice).toMatchObject({ mode: "rootless", warning: null });
  });

  it.each([
    [{ image: "moby/buildkit:v0.32.2-rootless", user: "1000:1000" }, /runs as user 1000:1000/],
    [{ image: "moby/buildkit:v0.32.2-rootless", user: null }, /tag "v0.32.2-rootless"/],
    [{ image: "r:5000/buildkit:custom", user: "user" }, /runs as user user/],
  ])("auto picks rootless for a rootless image (%o)", (facts, reason) => {
    const choice = chooseBuildkitMode("auto", facts);
    expect(choice.mode).toBe("rootless");
    expect(choice.reason).toMatch(/^BuildKit mode rootless \(auto\): /);
    expect(choice.reason).toMatch(reason);
  });

  it.each([
    ["root by default", rootImage],
    ["root by name", { image: "x/buildkit:1", user: "root:root" }],
    ["uid 0", { image: "x/buildkit:1", user: "0" }],
    ["unreadable", { image: "docker.io/moby/buildkit:v0.32.2", user: null }],
    ["a rootless tag that runs as root", { image: "x/buildkit:rootless", user: "" }],
  ])("auto never falls back to privileged silently: %s → an actionable InvalidInputError", (_what, facts) => {
    expect(() => chooseBuildkitMode("auto", facts)).toThrow(InvalidInputError);
    expect(() => chooseBuildkitMode("auto", facts)).toThrow(/buildkitMode "privileged".*KCE_BUILDKIT_MODE=privileged/s);
    expect(() => chooseBuildkitMode("auto", facts)).toThrow(/rootless BuildKit image/);
  });

  it("rootlessEvidence ignores malformed image names", () => {
    expect(rootlessEvidence({ image: "Not An Image", user: null })).toBeNull();
  });
});
