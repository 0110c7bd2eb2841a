// Least privilege, for real: the RBAC of manifests/ (ServiceAccount, Role, RoleBinding, the kube-public reader)
// applied to a fresh namespace, and the engine run with that ServiceAccount's token — build (Kaniko, also with
// registry credentials), inspect, run, logs, port-forward, kill, remove, gc. What the Role leaves out is a
// typed 403 with an actionable message.
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BuildError, KubernetesApiError, KubernetesEngine, type KubernetesEngineOptions } from "../../../src/index.js";
import { KubeClient } from "../../../src/kube/client.js";
import { execInPod } from "../../../src/kube/stdin.js";
import { collect, expectNoLeftovers, tarOf, uniqueImage } from "../engine/helpers.js";
import { baseImage, deleteNamespace, namespaceClient, waitDone } from "../kube/helpers.js";
import {
  adminKubectl,
  applyObjects,
  deleteOutside,
  kubeConfigFrom,
  rbacFor,
  serviceAccountKubeconfig,
  type ManifestObject,
} from "./service-account.js";
import { getWithRetry } from "../../support/http.js";

let admin: KubeClient;
let rbac: ManifestObject[] = [];
let kubeconfig: string;
let dir: string;

/** The engine as the ServiceAccount; the namespace comes from the kubeconfig's context, as for a user. */
function engine(options: KubernetesEngineOptions = {}, env: Record<string, string | undefined> = process.env): KubernetesEngine {
  return new KubernetesEngine({ kubeConfig: kubeConfigFrom(kubeconfig), builder: "kaniko", log: () => undefined, ...options }, env);
}

beforeAll(async () => {
  admin = await namespaceClient("e2e-rbac");
  rbac = await rbacFor(admin.namespace);
  await applyObjects(rbac);
  kubeconfig = await serviceAccountKubeconfig(admin.namespace, "kce");
  dir = mkdtempSync(join(tmpdir(), "kce-rbac-"));
  // A fresh context each run: the engine skips building a context it built before (content hash).
  const nonce = randomBytes(6).toString("hex");
  writeFileSync(join(dir, "Dockerfile"), `FROM ${baseImage()}\nRUN echo built-as-sa > /sa.txt\nLABEL nonce=${nonce}\nCMD ["cat", "/sa.txt"]\n`);
});

afterAll(async () => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  if (admin) {
    await expectNoLeftovers(admin);
    await deleteOutside(admin.namespace, rbac);
    await deleteNamespace(admin);
  }
});

describe("the manifests' Role", () => {
  it("is namespaced and grants no exec, no secrets read and nothing cluster-wide", () => {
    const role = rbac.find((o) => o.kind === "Role" && o.metadata.namespace === admin.namespace);
    const verbs = (resource: string): string[] => (role?.rules ?? []).filter((r) => r.resources?.includes(resource)).flatMap((r) => r.verbs);
    expect(verbs("pods/exec")).toEqual([]);
    expect(verbs("secrets")).not.toContain("get");
    expect(verbs("secrets")).not.toContain("watch");
    expect((role?.rules ?? []).flatMap((r) => r.verbs)).not.toContain("*");
    expect(rbac.some((o) => o.kind.startsWith("Cluster"))).toBe(false);
  });

  it("lets the engine find the registry through kube-public/local-registry-hosting", async () => {
    const env = { ...process.env, KCE_REGISTRY: undefined, KCE_REGISTRY_PUSH: undefined };
    const published = await adminKubectl(["get", "configmap", "-n", "kube-public", "local-registry-hosting", "-o", "jsonpath={.data.localRegistryHosting\\.v1}"]);
    const registry = await engine({}, env).registry();
    expect(published).toContain(registry.host);
  });

  let image: string;
  it("builds with Kaniko", async () => {
    image = uniqueImage("rbac");
    const stream = engine().build({ tag: image, path: dir });
    const lines = await collect(stream);
    expect(lines.join("")).toMatch(/RUN echo built-as-sa/);
    expect((await stream.result).digest).toMatch(/^sha256:/);
    expect((await engine().inspectImage(image))?.config?.Cmd).toEqual(["cat", "/sa.txt"]);
  });

  it("builds with registry credentials (a Secret created, owned by the Job, deleted with it)", async () => {
    const host = process.env.KCE_AUTH_REGISTRY ?? "";
    const e = engine({
      registry: { host, pushHost: process.env.KCE_AUTH_REGISTRY_PUSH ?? host, insecure: true },
      registryCredentials: { registry: host, username: process.env.KCE_AUTH_USER ?? "", password: process.env.KCE_AUTH_PASSWORD ?? "" },
    });
    // FROM scratch: the base image's registry is not the authenticated one (and Kaniko would pull it over HTTPS).
    const tag = uniqueImage("rbac-auth");
    const stream = e.build({ tag, context: tarOf({ Dockerfile: "FROM scratch\nCOPY hello.txt /\n", "hello.txt": "hi\n" }) });
    await collect(stream);
    expect((await stream.result).digest).toMatch(/^sha256:/);
  });

  it("runs the image, reads its logs, waits for its exit code and removes it", async () => {
    const container = await engine().run(image);
    expect((await container.wait()).exitCode).toBe(0);
    expect(await container.logs()).toBe("built-as-sa\n");
    const streamed = await collect(container.streamLogs({ timestamps: true }));
    expect(streamed[0]).toMatch(/^\d{4}-\d\d-\d\dT\S+ built-as-sa\n$/);
    await container.remove();
    await expect(container.reload()).rejects.toThrow();
  });

  it("forwards a port, kills and removes", async () => {
    const container = await engine().run(baseImage(), {
      command: ["sh", "-c", "mkdir -p /tmp/w && echo sa-http > /tmp/w/index.html && exec httpd -f -p 8080 -h /tmp/w"],
      ports: { "8080/tcp": 0 },
    });
    const port = container.ports?.["8080/tcp"]?.port ?? 0;
    expect(await getWithRetry(`http://127.0.0.1:${port}/index.html`)).toBe("sa-http\n");
    await container.kill();
    expect(container.status).toBe("exited");
    expect(container.exitcode).toBe(137);
    await container.remove();
    await container.remove();
  });

  it("garbage-collects what a crashed client left behind", async () => {
    const container = await engine().run(baseImage(), { command: ["true"] });
    await container.wait();
    await waitDone(admin, container.id); // the pod's phase follows the container's exit a moment later
    const actions = await engine().gc({});
    expect(actions.map((a) => `${a.kind}/${a.name}`)).toContain(`Pod/${container.id}`);
  });

  it("reports a builder pod the cluster refuses to create (reads the Job's events)", async () => {
    await adminKubectl(["create", "quota", "no-pods", "-n", admin.namespace, "--hard=pods=0"]);
    try {
      const stream = engine({ timeouts: { buildSeconds: 60 } }).build({ tag: uniqueImage("rbac-quota"), path: dir });
      const failure = await collect(stream).catch((err: unknown) => err);
      expect(failure).toBeInstanceOf(BuildError);
      expect((failure as BuildError).message).toMatch(/refused to create the builder pod.*quota/i);
    } finally {
      await adminKubectl(["delete", "quota", "no-pods", "-n", admin.namespace]);
    }
  });
});

describe("outside the Role", () => {
  const forbidden = async (promise: Promise<unknown>): Promise<KubernetesApiError> => {
    const err = await promise.then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(KubernetesApiError);
    expect((err as KubernetesApiError).statusCode).toBe(403);
    expect((err as KubernetesApiError).message).toMatch(/forbidden: the service account or user "system:serviceaccount:e2e-rbac-[0-9a-f]+:kce"/);
    expect((err as KubernetesApiError).message).toMatch(/README "RBAC"/);
    return err as KubernetesApiError;
  };

  it("cannot list nodes", async () => {
    const client = new KubeClient({ kubeConfig: kubeConfigFrom(kubeconfig), namespace: admin.namespace });
    const err = await forbidden(client.call("list", "nodes", (o) => client.core.listNode({}, o)));
    expect(err.message).toMatch(/cannot list nodes/);
  });

  it("cannot run in another namespace", async () => {
    const err = await forbidden(engine({ namespace: "default" }).run(baseImage(), { command: ["true"] }));
    expect(err.message).toMatch(/cannot create pods in namespace "default"/);
  });

  it("cannot exec into pods or read other kube-public ConfigMaps", async () => {
    const client = new KubeClient({ kubeConfig: kubeConfigFrom(kubeconfig), namespace: admin.namespace });
    const container = await engine().run(baseImage(), { command: ["sleep", "300"] });
    try {
      await forbidden(execInPod(client, { pod: container.id, container: "main", command: ["true"] }));
    } finally {
      await container.kill();
      await container.remove();
    }
    const other = new KubeClient({ kubeConfig: kubeConfigFrom(kubeconfig), namespace: "kube-public" });
    await forbidden(other.call("get", "configmaps", (o) => other.core.readNamespacedConfigMap({ name: "kube-root-ca.crt", namespace: "kube-public" }, o)));
  });
});
