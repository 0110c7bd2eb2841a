import type { V1Container, V1Pod } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { InvalidInputError } from "../../../src/errors.js";
import { engineLabels } from "../../../src/pods/labels.js";
import { parsePortBindings } from "../../../src/pods/ports.js";
import { parseEnvironment, parseUser, parseVolumes, validateRunOptions } from "../../../src/pods/run-options.js";
import type { RunOptions } from "../../../src/contract.js";
import {
  defaultPullPolicy,
  defaultRunSecurityContext,
  resourcesFromLimits,
  runPodSpec,
  type RunPodInput,
} from "../../../src/pods/run-pod.js";

const labels = engineLabels({ instance: "test", role: "container" });
const base: RunPodInput = { name: "kce-run-abc12", namespace: "fx", image: "localhost:5001/r2dabc:latest", labels };
/** The pod for `overrides`, its raw run options checked first as the engine does. */
type Overrides = Partial<Omit<RunPodInput, "run">> & { run?: RunOptions };
const build = ({ run, ...overrides }: Overrides = {}): V1Pod =>
  runPodSpec({ ...base, ...overrides, ...(run ? { run: validateRunOptions(run) } : {}) });
const container = (pod: V1Pod): V1Container => {
  const c = pod.spec?.containers[0];
  if (!c) throw new Error("no container");
  return c;
};

describe("runPodSpec", () => {
  it("builds a minimal, locked-down pod", () => {
    const pod = build();
    expect(pod).toMatchObject({ apiVersion: "v1", kind: "Pod", metadata: { name: "kce-run-abc12", namespace: "fx", labels } });
    expect(pod.spec).toMatchObject({ restartPolicy: "Never", enableServiceLinks: false, automountServiceAccountToken: false });
    expect(pod.spec?.containers).toHaveLength(1);
    expect(container(pod)).toMatchObject({
      name: "main",
      image: "localhost:5001/r2dabc:latest",
      terminationMessagePolicy: "FallbackToLogsOnError",
      securityContext: defaultRunSecurityContext(),
    });
    expect(container(pod).command).toBeUndefined();
    expect(container(pod).args).toBeUndefined();
    expect(pod.spec?.activeDeadlineSeconds).toBeUndefined();
    expect(pod.spec?.imagePullSecrets).toBeUndefined();
  });

  it("passes command as args, so the image ENTRYPOINT stays", () => {
    const c = container(build({ run: { command: ["jupyter", "notebook", "--ip=0.0.0.0"] } }));
    expect(c.args).toEqual(["jupyter", "notebook", "--ip=0.0.0.0"]);
    expect(c.command).toBeUndefined();
    expect(container(build({ run: { command: [] } })).args).toEqual([]);
  });

  it("sets the environment, empty values included", () => {
    expect(container(build({ run: { environment: ["A=1", "EMPTY=", "URL=http://x/?a=b"] } })).env).toEqual([
      { name: "A", value: "1" },
      { name: "EMPTY", value: "" },
      { name: "URL", value: "http://x/?a=b" },
    ]);
  });

  it("runs as a numeric user on top of the security context", () => {
    expect(container(build({ run: { user: "root" } })).securityContext).toMatchObject({ runAsUser: 0, allowPrivilegeEscalation: false });
    expect(container(build({ run: { user: "1000:100" } })).securityContext).toMatchObject({ runAsUser: 1000, runAsGroup: 100 });
  });

  it("declares the forwarded ports", () => {
    const forwards = parsePortBindings({ "8888/tcp": 8888, "9000": null });
    expect(container(build({ forwards })).ports).toEqual([
      { containerPort: 9000, protocol: "TCP" },
      { containerPort: 8888, protocol: "TCP" },
    ]);
    expect(container(build({ forwards: [] })).ports).toBeUndefined();
  });

  it("carries annotations, deadline, pull secret and scheduling options", () => {
    const pod = build({
      annotations: { "kube-container-engine/image": "r2dabc" },
      activeDeadlineSeconds: 3600,
      pullSecretName: "kce-registry",
      nodeSelector: { pool: "build" },
      tolerations: [{ key: "dedicated", operator: "Exists" }],
      serviceAccountName: "runner",
      terminationGracePeriodSeconds: 5,
    });
    expect(pod.metadata?.annotations).toEqual({ "kube-container-engine/image": "r2dabc" });
    expect(pod.spec).toMatchObject({
      activeDeadlineSeconds: 3600,
      imagePullSecrets: [{ name: "kce-registry" }],
      nodeSelector: { pool: "build" },
      tolerations: [{ key: "dedicated", operator: "Exists" }],
      serviceAccountName: "runner",
      terminationGracePeriodSeconds: 5,
    });
  });

  it("lets the security context be replaced, keeping the user", () => {
    const c = container(build({ securityContext: { capabilities: { drop: ["ALL"] }, runAsNonRoot: true }, run: { user: 1000 } }));
    expect(c.securityContext).toEqual({ capabilities: { drop: ["ALL"] }, runAsNonRoot: true, runAsUser: 1000 });
  });

  it("chooses the pull policy from the tag unless configured", () => {
    expect(container(build()).imagePullPolicy).toBe("Always");
    expect(container(build({ image: "localhost:5001/r2dabc:v1" })).imagePullPolicy).toBe("IfNotPresent");
    expect(container(build({ imagePullPolicy: "Never" })).imagePullPolicy).toBe("Never");
  });

  it("maps Docker limits onto resources", () => {
    expect(container(build({ limits: { memory: 512 * 1024 * 1024, cpushares: 512 } })).resources).toEqual({
      limits: { memory: "536870912" },
      requests: { cpu: "500m" },
    });
  });

  it("mounts explicitly remote volumes", () => {
    const pod = build({ run: { volumes: { "pvc:home/alice": { bind: "/home/jovyan", mode: "rw" }, "node:/data": "/data" } } });
    expect(pod.spec?.volumes).toEqual([
      { name: "volume-0", persistentVolumeClaim: { claimName: "home" } },
      { name: "volume-1", hostPath: { path: "/data" } },
    ]);
    expect(container(pod).volumeMounts).toEqual([
      { name: "volume-0", mountPath: "/home/jovyan", readOnly: false, subPath: "alice" },
      { name: "volume-1", mountPath: "/data", readOnly: false },
    ]);
  });

  it.each<[string, Overrides, RegExp]>([
    ["a client volume", { run: { volumes: { "/home/me/repo": { bind: "/home/jovyan", mode: "rw" } } } }, /cannot be mounted into a pod on the cluster.*pvc:<claim-name>/],
    ["KEY without =", { run: { environment: ["KEY"] } }, /has no "=": pass "KEY=value"/],
    ["a user name", { run: { user: "jovyan" } }, /is a name, but Kubernetes runs containers by numeric id/],
    ["a bad pod name", { name: "Bad_Name" }, /pod name/],
    ["a bad namespace", { namespace: "a.b" }, /namespace/],
    ["a zero deadline", { activeDeadlineSeconds: 0 }, /activeDeadlineSeconds/],
    ["a bad image", { image: "UPPER/Case::bad" }, /invalid image reference/],
    ["a bad memory limit", { limits: { memory: -1 } }, /memory limit/],
    ["a non-string command", { run: { command: [1 as unknown as string] } }, /command must be a list of strings/],
  ])("rejects %s before any API call", (_, overrides, message) => {
    expect(() => build(overrides)).toThrow(InvalidInputError);
    expect(() => build(overrides)).toThrow(message);
  });

  it("does not share the default security context between pods", () => {
    const a = container(build());
    a.securityContext?.capabilities?.drop?.push("ALL");
    expect(container(build()).securityContext?.capabilities?.drop).toEqual(["NET_RAW"]);
  });
});

describe("parseEnvironment", () => {
  it("lets a later entry win, at its position", () => {
    expect(parseEnvironment(["A=1", "B=2", "A=3"])).toEqual([
      { name: "B", value: "2" },
      { name: "A", value: "3" },
    ]);
    expect(parseEnvironment(undefined)).toEqual([]);
  });
  it.each([["KEY"], ["=value"], ["A\nB=1"]])("rejects %j", (entry) => {
    expect(() => parseEnvironment([entry])).toThrow(InvalidInputError);
  });
});

describe("parseUser", () => {
  it.each<[string | number | undefined, ReturnType<typeof parseUser>]>([
    [undefined, null],
    ["", null],
    [0, { runAsUser: 0 }],
    [1000, { runAsUser: 1000 }],
    ["1000", { runAsUser: 1000 }],
    ["root", { runAsUser: 0 }],
    ["root:root", { runAsUser: 0, runAsGroup: 0 }],
    ["1000:100", { runAsUser: 1000, runAsGroup: 100 }],
  ])("%j", (user, expected) => expect(parseUser(user)).toEqual(expected));
  it.each<[string | number, RegExp]>([
    ["jovyan", /is a name/],
    ["1000:users", /the group "users" is a name/],
    [-1, /not a uid/],
    [1.5, /not a uid/],
    ["99999999999", /too large/],
    ["1:2:3", /expected "uid" or "uid:gid"/],
  ])("rejects %j", (user, message) => expect(() => parseUser(user)).toThrow(message));
});

describe("parseVolumes", () => {
  it("accepts read-only mounts and plain bind strings", () => {
    expect(parseVolumes({ "pvc:data": { bind: "/data", mode: "ro" } }).mounts).toEqual([
      { name: "volume-0", mountPath: "/data", readOnly: true },
    ]);
    expect(parseVolumes(undefined)).toEqual({ volumes: [], mounts: [] });
  });
  it.each<[Record<string, unknown>, RegExp]>([
    [{ "./repo": "/srv" }, /cannot be mounted/],
    [{ "pvc:Bad_Claim": "/data" }, /not a claim name/],
    [{ "pvc:data/../etc": "/data" }, /must not contain/],
    [{ "node:relative": "/data" }, /must be absolute \(node:/],
    [{ "pvc:data": "relative" }, /bind path "relative" must be absolute/],
    [{ "pvc:data": { bind: "/data", mode: "z" } }, /mode "z"/],
    [{ "pvc:data": { mode: "rw" } }, /expected \{bind/],
    [{ "pvc:a": "/data", "pvc:b": "/data" }, /already the target/],
  ])("rejects %j", (volumes, message) => {
    expect(() => parseVolumes(volumes as Parameters<typeof parseVolumes>[0])).toThrow(InvalidInputError);
    expect(() => parseVolumes(volumes as Parameters<typeof parseVolumes>[0])).toThrow(message);
  });
});

describe("defaultPullPolicy and resourcesFromLimits", () => {
  it.each([
    ["r2dabc", "Always"],
    ["r2dabc:latest", "Always"],
    ["localhost:5001/r2dabc:v2", "IfNotPresent"],
    [`busybox@sha256:${"a".repeat(64)}`, "IfNotPresent"],
  ])("%s → %s", (image, policy) => expect(defaultPullPolicy(image)).toBe(policy));

  it("overlays limits on the engine's resources without mutating them", () => {
    const engine = { limits: { memory: "1Gi", cpu: "2" }, requests: { cpu: "100m" } };
    expect(resourcesFromLimits({ memory: 1024, cpusetcpus: "0-1", memswap: 5 }, engine)).toEqual({
      limits: { memory: "1024", cpu: "2" },
      requests: { cpu: "100m" },
    });
    expect(engine.limits.memory).toBe("1Gi");
    expect(resourcesFromLimits(undefined)).toEqual({});
    expect(resourcesFromLimits({ cpushares: 1 })).toEqual({ requests: { cpu: "1m" } });
  });
});
