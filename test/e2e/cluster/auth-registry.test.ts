// The htpasswd registry: a Kaniko push without credentials fails; with a
// kubernetes.io/dockerconfigjson Secret it succeeds, and a pod pulls the image
// with the same Secret as imagePullSecret.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { env, uniqueName } from "../support/cluster-env.js";
import {
  apply, createNamespace, deleteNamespace, dockerfileConfigMap, kubectl, logs, runOncePod, waitForPodDone,
} from "../support/kubectl.js";
import { HI_DOCKERFILE, kanikoPod } from "./kaniko-pod.js";

describe("auth registry", () => {
  let ns: string | undefined;
  beforeAll(async () => {
    ns = await createNamespace("kce-e2e-auth");
    await apply(dockerfileConfigMap(ns, "context", HI_DOCKERFILE()));
  });
  afterAll(async () => {
    await deleteNamespace(ns);
  });

  it("rejects a push without credentials", async () => {
    const image = `${env("KCE_AUTH_REGISTRY_PUSH")}/e2e/auth-hi:${uniqueName("t")}`;
    await apply(kanikoPod(ns!, "anonymous", image));
    expect(await waitForPodDone(ns!, "anonymous")).toBe("Failed");
    expect(await logs(ns!, "anonymous")).toMatch(/UNAUTHORIZED|authentication required|401/i);
  });

  it("accepts a push with a dockerconfigjson Secret, and pulls with it", async () => {
    const registry = env("KCE_AUTH_REGISTRY_PUSH");
    await kubectl([
      "-n", ns!, "create", "secret", "docker-registry", "regcred",
      `--docker-server=${registry}`, `--docker-username=${env("KCE_AUTH_USER")}`,
      `--docker-password=${env("KCE_AUTH_PASSWORD")}`,
    ]);
    // the nodes pull from KCE_AUTH_REGISTRY: the Secret must name that host too
    if (env("KCE_AUTH_REGISTRY") !== registry) throw new Error("test assumes push and pull hosts are equal");
    const image = `${registry}/e2e/auth-hi:${uniqueName("t")}`;
    await apply(kanikoPod(ns!, "authorized", image, "regcred"));
    const phase = await waitForPodDone(ns!, "authorized");
    expect(phase, await logs(ns!, "authorized")).toBe("Succeeded");

    await apply(runOncePod(ns!, "run", image, ["cat", "/hi"], { imagePullSecrets: [{ name: "regcred" }] }));
    expect(await waitForPodDone(ns!, "run")).toBe("Succeeded");
    expect(await logs(ns!, "run")).toBe("hi\n");
  });
});
