// The cluster runs a pod from the local busybox image: its output is readable
// as logs and its exit code (3) is reported.
import { describe, expect, it } from "vitest";
import { baseImage } from "../support/cluster-env.js";
import { apply, exitCode, logs, runOncePod, waitForPodDone } from "../support/kubectl.js";
import { useNamespace } from "./helpers.js";

describe("cluster smoke", () => {
  const ns = useNamespace("kce-e2e-smoke");

  it("runs a busybox pod that prints lines and exits 3", async () => {
    const pod = "print-and-exit";
    await apply(runOncePod(ns(), pod, baseImage(), ["sh", "-c", "echo first line; echo second line; exit 3"]));
    expect(await waitForPodDone(ns(), pod)).toBe("Failed");
    expect(await exitCode(ns(), pod)).toBe(3);
    expect(await logs(ns(), pod)).toBe("first line\nsecond line\n");
  });
});
