// A (privileged) BuildKit pod builds FROM the local base image with
// buildctl-daemonless.sh, pushes to the open registry, and a pod runs the result.
import { describe, it } from "vitest";
import { env, uniqueName } from "../support/cluster-env.js";
import { apply, dockerfileConfigMap } from "../support/kubectl.js";
import { buildkitPod, expectBuildSucceeded, expectImageSaysHi, HI_DOCKERFILE, pullName, useNamespace } from "./helpers.js";

describe("BuildKit in the cluster", () => {
  const ns = useNamespace("kce-e2e-buildkit");

  it("builds, pushes to the open registry, and the image runs", async () => {
    const image = `${env("KCE_REGISTRY_PUSH")}/e2e/buildkit-hi:${uniqueName("t")}`;
    await apply(dockerfileConfigMap(ns(), "context", HI_DOCKERFILE()));
    await apply(buildkitPod(ns(), "build", image));
    await expectBuildSucceeded(ns(), "build");
    await expectImageSaysHi(ns(), pullName(image));
  });
});
