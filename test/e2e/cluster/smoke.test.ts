// The cluster runs a pod from the local busybox image: its output is readable
// as logs and its exit code (3) is reported.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { env } from "../support/cluster-env.js";
import { apply, createNamespace, deleteNamespace, exitCode, logs, runOncePod, waitForPodDone } from "../support/kubectl.js";

describe("cluster smoke", () => {
  let ns: string | undefined;
  beforeAll(async () => {
    ns = await createNamespace("kce-e2e-smoke");
  });
  afterAll(async () => {
    await deleteNamespace(ns);
  });

  it("runs a busybox pod that prints lines and exits 3", async () => {
    const pod = "print-and-exit";
    await apply(runOncePod(ns!, pod, env("KCE_BASE_IMAGE"), ["sh", "-c", "echo first line; echo second line; exit 3"]));
    expect(await waitForPodDone(ns!, pod)).toBe("Failed");
    expect(await exitCode(ns!, pod)).toBe(3);
    expect(await logs(ns!, pod)).toBe("first line\nsecond line\n");
  });
});
