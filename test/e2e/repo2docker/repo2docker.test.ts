// The unmodified `repo2docker` CLI from PyPI drives the engine: `repo2docker --engine kubernetes …` through the
// Python adapter (python/repo2docker-kce) and `kce rpc`, with zero configuration (the registry comes from the
// cluster's local-registry-hosting ConfigMap: KCE_REGISTRY is unset for repo2docker).
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { KubeClient } from "../../../src/kube/client.js";
import { deleteNamespace, expectNoLeftovers } from "../engine/helpers.js";
import { namespaceClient } from "../kube/helpers.js";
import { dockerfileRepo, repo2docker, ROOT, rpcProcesses, setupRepo2docker, startRepo2docker, type R2dEnvironment } from "./helpers.js";
import { get, getWithRetry } from "../../support/http.js";

let r2d: R2dEnvironment;
let admin: KubeClient;
let common: string[];
const marker = `built-${randomBytes(4).toString("hex")}`;
const image = `kce-e2e/r2d-dockerfile:${randomBytes(4).toString("hex")}`;
let repo: string;

beforeAll(async () => {
  r2d = await setupRepo2docker();
  admin = await namespaceClient("e2e-r2d");
  // repo2docker refuses to build as root without these (it mirrors the invoking user into the image).
  common = ["--engine", "kubernetes", `--KubernetesEngine.namespace=${admin.namespace}`, "--user-id", "1000", "--user-name", "jovyan"];
  repo = dockerfileRepo(marker);
}, 900_000);

afterAll(async () => {
  if (admin) await expectNoLeftovers(admin);
  await deleteNamespace(admin);
});

describe("repo2docker --engine kubernetes", () => {
  it("a warm `kce rpc --listen` started ahead serves the whole build with repo2docker's environment, then exits", async () => {
    const socket = join(tmpdir(), `kce-warm-${randomBytes(4).toString("hex")}.sock`);
    // Started with nothing of the cluster's configuration: KUBECONFIG and the rest come from the client.
    const warm = spawn(process.execPath, [join(ROOT, "dist", "cli", "main.js"), "rpc", "--listen", socket], {
      env: { PATH: process.env.PATH ?? "", HOME: tmpdir() },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let warmOutput = "";
    warm.stdout.on("data", (d: Buffer) => (warmOutput += d.toString()));
    warm.stderr.on("data", (d: Buffer) => (warmOutput += d.toString()));
    const exited = new Promise<number | null>((resolveExit) => warm.on("close", resolveExit));
    try {
      await waitFor(async () => existsSync(socket), 30_000, "the warm kce to listen");
      const warmImage = `kce-e2e/r2d-warm:${randomBytes(4).toString("hex")}`;
      // A kce command that does not exist: the adapter must not start one.
      const { code, output } = await repo2docker(r2d, [...common, "--no-run", "--image-name", warmImage, repo], {
        KCE_RPC_SOCKET: socket,
        KCE_BIN: "/nonexistent/kce",
      });
      expect(code, output).toBe(0);
      expect(output).toContain(marker); // the builder's output came through the warm engine
      expect(output).not.toContain("cannot start");
      expect(await exited, warmOutput).toBe(0); // its client is gone: it exits
      expect(warmOutput).toBe(""); // stdout and stderr both travel on the socket
      expect(existsSync(socket)).toBe(false);
    } finally {
      warm.kill("SIGKILL");
    }
  });

  it("builds a repository's own Dockerfile with --no-run", async () => {
    const { code, output } = await repo2docker(r2d, [...common, "--no-run", "--image-name", image, repo]);
    expect(output).toContain("Using DockerBuildPack builder");
    expect(output).toContain(`RUN echo ${marker} > /built`); // the builder's output, streamed line by line
    expect(code, output).toBe(0);
  });

  it("a second invocation with the same image name reuses the image (find_image → inspect_image)", async () => {
    const { code, output } = await repo2docker(r2d, [...common, "--no-run", "--image-name", image, repo]);
    expect(code, output).toBe(0);
    expect(output).toContain(`Reusing existing image (${image}), not building.`);
    expect(output).not.toContain("Using DockerBuildPack builder");
  });

  it("runs the image with a command: repo2docker reports its output and exit code", async () => {
    const { code, output } = await repo2docker(r2d, [...common, "--image-name", image, repo, "sh", "-c", "cat /built; echo answer-$((6*7)); exit 3"]);
    expect(output).toContain("Reusing existing image");
    expect(output).toContain(marker);
    expect(output).toContain("answer-42");
    expect(output).toContain("CONTAINER FINISHED RUNNING");
    expect(code, output).toBe(3);
    await expectNoLeftovers(admin);
  });

  it("a server it starts with -p is reachable at 127.0.0.1; Ctrl-C's shutdown sequence leaves nothing behind", async () => {
    const port = await freePort();
    const server = "mkdir -p /tmp/www && echo hello-from-r2d > /tmp/www/index.html && echo serving && exec httpd -f -v -p 8080 -h /tmp/www";
    const started = startRepo2docker(r2d, [...common, "--image-name", image, "-p", `${port}:8080`, repo, "sh", "-c", server]);
    try {
      const body = await getWithRetry(`http://127.0.0.1:${port}/index.html`, { withinMs: 120_000, everyMs: 500, gaveUp: () => started.child.exitCode !== null });
      expect(body).toBe("hello-from-r2d\n");
      // Ctrl-C: repo2docker leaves its log stream, then reload → kill → exitcode → wait → logs(since) → remove.
      started.child.kill("SIGINT");
      const { code, output } = await started.done;
      expect(output).toContain("serving");
      expect(output).toContain("Stopping container...");
      expect(output).toContain("CONTAINER FINISHED RUNNING");
      expect(code, output).toBe(137); // repo2docker exits with the container's code: SIGKILL
    } finally {
      if (started.child.exitCode === null) started.child.kill("SIGKILL");
    }
    await expectNoLeftovers(admin);
    await expect(get(`http://127.0.0.1:${port}/index.html`)).rejects.toThrow(); // the forward is gone
    await waitFor(async () => (await rpcProcesses(admin.namespace)).length === 0, 15_000, "kce rpc to exit with repo2docker");
  });

  it("--push to the auth registry with CONTAINER_ENGINE_REGISTRY_CREDENTIALS", async () => {
    const registry = process.env.KCE_AUTH_REGISTRY ?? "";
    const user = process.env.KCE_AUTH_USER ?? "";
    const password = process.env.KCE_AUTH_PASSWORD ?? "";
    const tag = randomBytes(4).toString("hex");
    const pushed = `${registry}/kce-e2e/r2d-push:${tag}`;
    const { code, output } = await repo2docker(
      r2d,
      // The auth registry is plain HTTP on a non-private address: say so, as Docker's insecure-registries would.
      [...common, `--KubernetesEngine.insecure_registries=${registry}`, "--no-run", "--push", "--image-name", pushed, repo],
      { CONTAINER_ENGINE_REGISTRY_CREDENTIALS: JSON.stringify({ registry, username: user, password }) },
    );
    expect(code, output).toBe(0);
    expect(output).not.toContain(password);
    const manifest = await fetch(`http://${registry}/v2/kce-e2e/r2d-push/manifests/${tag}`, {
      headers: {
        authorization: `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`,
        accept: "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.index.v1+json",
      },
    });
    expect(manifest.status).toBe(200);
    await expectNoLeftovers(admin); // no builder, no credentials Secret
  });
});

function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolvePort(port));
    });
  });
}

async function waitFor(check: () => Promise<boolean>, withinMs: number, what: string): Promise<void> {
  const deadline = Date.now() + withinMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}
