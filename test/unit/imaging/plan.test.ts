import type { V1Job } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { describePushFailure } from "../../../src/imaging/push.js";
import {
  ANNOTATION_CONTENT_HASH, cacheFromRefs, imageTarget, insecureRegistries, isBuildArtifact, layerCacheRepository, planBuilderJob,
  type JobPlanInput,
} from "../../../src/imaging/plan.js";
import { resolveEngineConfig, resolveRegistry, type KubernetesEngineOptions } from "../../../src/config.js";
import { parseImageReference } from "../../../src/image.js";

const registry = resolveRegistry({ host: "localhost:5001", pushHost: "kind-registry:5000" });
const SENTINEL = "s3ntinel-PASSWORD";
const HASH = "ab".repeat(32);

function input(options: KubernetesEngineOptions = {}, over: Partial<JobPlanInput> = {}): JobPlanInput {
  const config = resolveEngineConfig({ instanceId: "kce-test", ...options }, {});
  return {
    config,
    registry,
    namespace: "ns",
    jobName: "kce-build-x-0123456789ab",
    secretName: "kce-build-x-0123456789ab-registry-aaaaaa",
    target: imageTarget(parseImageReference("r2d/x"), registry),
    options: { tag: parseImageReference("r2d/x"), dockerfile: "Dockerfile", buildArgs: {}, labels: {}, cacheFrom: [], platform: null, memoryLimit: null },
    push: true,
    contentHash: HASH,
    buildkitMode: "privileged",
    createdAt: new Date("2026-01-01T00:00:00Z"),
    ...over,
  };
}

const args = (job: V1Job): string[] => {
  const c = job.spec?.template.spec?.containers[0];
  return [...(c?.command ?? []), ...(c?.args ?? [])];
};

describe("imageTarget", () => {
  it("fills in the engine registry and latest, and pushes through the pods' address", () => {
    const t = imageTarget(parseImageReference("r2d/x"), registry);
    expect(t).toMatchObject({ image: "localhost:5001/r2d/x:latest", pushRef: "kind-registry:5000/r2d/x:latest", inEngineRegistry: true });
  });

  it("keeps another registry as it is", () => {
    const t = imageTarget(parseImageReference("quay.io/o/x:1"), registry);
    expect(t).toMatchObject({ image: "quay.io/o/x:1", pushRef: "quay.io/o/x:1", inEngineRegistry: false });
  });

  it("resolves cacheFrom like tags", () => {
    expect(cacheFromRefs([parseImageReference("r2d/x:old"), parseImageReference("quay.io/o/x:1")], registry)).toEqual([
      "kind-registry:5000/r2d/x:old",
      "quay.io/o/x:1",
    ]);
  });
});

describe("isBuildArtifact", () => {
  it.each([
    ["r2d/x:kce-0123456789abcdef", true],
    ["r2d/x/kce-cache:buildkit", true],
    ["r2d/x/kce-cache:0a1b", true],
    ["r2d/x:latest", false],
    ["r2d/kce-cache-not:1", false],
    ["r2d/x:kce-short", false],
  ])("%s → %s", (name, expected) => {
    expect(isBuildArtifact(name)).toBe(expected);
  });
});

describe("insecureRegistries", () => {
  const secure = resolveRegistry({ host: "registry.example", insecure: false });
  it("lists the insecure engine registry, the configured hosts and a conventionally insecure destination", () => {
    const config = resolveEngineConfig({}, { KCE_INSECURE_REGISTRIES: "192.0.2.2:5001, other:5000" });
    expect(config.insecureRegistries).toEqual(["192.0.2.2:5001", "other:5000"]);
    const target = imageTarget(parseImageReference("10.1.2.3:5000/x:1"), registry);
    expect(insecureRegistries(config, registry, target)).toEqual([
      "localhost:5001", "kind-registry:5000", "192.0.2.2:5001", "other:5000", "10.1.2.3:5000",
    ]);
  });
  it("lists nothing for a secure engine registry and a public destination", () => {
    const target = imageTarget(parseImageReference("quay.io/o/x:1"), secure);
    expect(insecureRegistries(resolveEngineConfig({}, {}), secure, target)).toEqual([]);
  });
  it("rejects a host with a scheme", () => {
    expect(() => resolveEngineConfig({ insecureRegistries: ["http://x:5000"] }, {})).toThrow(/host\[:port\]/);
  });
});

describe("layer cache decisions", () => {
  const own = imageTarget(parseImageReference("r2d/x"), registry);
  const other = imageTarget(parseImageReference("quay.io/o/x:1"), registry);
  it("is on by default next to images in the engine's registry only", () => {
    const config = resolveEngineConfig({}, {});
    expect(layerCacheRepository(config, own, registry)).toBe("kind-registry:5000/r2d/x/kce-cache");
    expect(layerCacheRepository(config, other, registry)).toBeNull();
  });
  it("can be turned off (option or KCE_LAYER_CACHE=0) or pointed elsewhere", () => {
    expect(layerCacheRepository(resolveEngineConfig({ layerCache: false }, {}), own, registry)).toBeNull();
    expect(layerCacheRepository(resolveEngineConfig({}, { KCE_LAYER_CACHE: "0" }), own, registry)).toBeNull();
    const elsewhere = resolveEngineConfig({ layerCache: { repository: "cache.example:5000/all" } }, {});
    expect(layerCacheRepository(elsewhere, other, registry)).toBe("cache.example:5000/all");
  });
});

describe("planBuilderJob", () => {
  it("Kaniko: pushes the tag and the content tag, caches in the cache repo, annotates the hash", () => {
    const plan = planBuilderJob(input({ builder: "kaniko" }));
    expect(args(plan.job)).toEqual(
      expect.arrayContaining([
        "--destination=kind-registry:5000/r2d/x:latest",
        `--destination=kind-registry:5000/r2d/x:kce-${HASH.slice(0, 16)}`,
        "--cache=true",
        "--cache-repo=kind-registry:5000/r2d/x/kce-cache",
      ]),
    );
    expect(plan.contentRef).toMatchObject({ registry: "localhost:5001", repository: "r2d/x", tag: `kce-${HASH.slice(0, 16)}` });
    expect(plan.job.metadata?.annotations?.[ANNOTATION_CONTENT_HASH]).toBe(HASH);
    expect(plan.secret).toBeNull();
  });

  it("BuildKit: registry cache mode=max, both names, the chosen mode", () => {
    const plan = planBuilderJob(input({ builder: "buildkit" }, { buildkitMode: "privileged" }));
    const all = args(plan.job);
    expect(all).toContain("type=registry,ref=kind-registry:5000/r2d/x/kce-cache:buildkit,mode=max");
    expect(all.join(" ")).toContain(`"name=kind-registry:5000/r2d/x:latest,kind-registry:5000/r2d/x:kce-${HASH.slice(0, 16)}"`);
    expect(plan.job.spec?.template.spec?.containers[0]?.securityContext?.privileged).toBe(true);
  });

  it("no content tag without a hash, without push, or outside the engine's registry", () => {
    expect(planBuilderJob(input({}, { contentHash: null })).contentRef).toBeNull();
    expect(planBuilderJob(input({}, { push: false })).contentRef).toBeNull();
    const other = imageTarget(parseImageReference("quay.io/o/x:1"), registry);
    const plan = planBuilderJob(input({}, { target: other }));
    expect(plan.contentRef).toBeNull();
    expect(args(plan.job).join(" ")).not.toContain("--cache=true");
  });

  it("copies (noCache) export and import no cache", () => {
    const plan = planBuilderJob(input({ builder: "buildkit" }, { noCache: true, contentHash: null }));
    expect(args(plan.job)).not.toContain("--export-cache");
    expect(args(plan.job)).not.toContain("--import-cache");
  });

  it("puts credentials only in the per-build Secret, named by the caller, never in the Job", () => {
    const plan = planBuilderJob(
      input({ registryCredentials: { registry: "quay.io", username: "u", password: SENTINEL } }),
    );
    expect(plan.secret?.metadata?.name).toBe("kce-build-x-0123456789ab-registry-aaaaaa");
    expect(plan.secret?.type).toBe("kubernetes.io/dockerconfigjson");
    const config = JSON.parse(Buffer.from(plan.secret?.data?.[".dockerconfigjson"] ?? "", "base64").toString()) as {
      auths: Record<string, { auth: string }>;
    };
    expect(Buffer.from(config.auths["quay.io"]?.auth ?? "", "base64").toString()).toBe(`u:${SENTINEL}`);
    expect(JSON.stringify(plan.job)).not.toContain(SENTINEL);
    expect(JSON.stringify(plan.job)).not.toContain(Buffer.from(`u:${SENTINEL}`).toString("base64"));
    expect(JSON.stringify(plan.job)).toContain("kce-build-x-0123456789ab-registry-aaaaaa");
  });

  it("warns that Kaniko ignores cacheFrom", () => {
    const plan = planBuilderJob(
      input({ builder: "kaniko" }, { options: { ...input().options, cacheFrom: [parseImageReference("r2d/x:old")] } }),
    );
    expect(plan.ignored.join()).toMatch(/cacheFrom/);
  });
});

describe("describePushFailure", () => {
  const out = 'error pushing image: failed to push to destination 10.0.0.5:5001/x:1: UNAUTHORIZED: authentication required';
  it("says what to do without credentials", () => {
    expect(describePushFailure(out, "10.0.0.5:5001/x:1", null)).toMatch(
      /^unauthorized: registry 10\.0\.0\.5:5001 refused .*set registryCredentials \(or CONTAINER_ENGINE_REGISTRY_CREDENTIALS\) for 10\.0\.0\.5:5001/,
    );
  });
  it("names credentials for the wrong registry", () => {
    expect(describePushFailure(out, "10.0.0.5:5001/x:1", "quay.io")).toMatch(/credentials are for quay\.io, not 10\.0\.0\.5:5001/);
  });
  it("asks to check wrong credentials", () => {
    expect(describePushFailure(out, "10.0.0.5:5001/x:1", "10.0.0.5:5001")).toMatch(/check the username and password configured for 10\.0\.0\.5:5001/);
    expect(describePushFailure("401 Unauthorized", "10.0.0.5:5001/x:1", "")).toMatch(/^unauthorized: /);
  });
  it("passes other failures on", () => {
    expect(describePushFailure("no space left on device", "q.io/x:1", null)).toBe("push of q.io/x:1 failed: no space left on device");
  });
});
