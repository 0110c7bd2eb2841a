// The package as a user installs it: `npm pack` of the checkout, installed into an empty directory, and its
// `kce` and library import used from there — nothing of the checkout (src/, dev dependencies) is reachable.
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { KubeClient } from "../../../src/kube/client.js";
import { expectNoLeftovers, uniqueImage } from "../engine/helpers.js";
import { baseImage, deleteNamespace, namespaceClient } from "../kube/helpers.js";
import { ensureDist, ROOT } from "./helpers.js";

const exec = promisify(execFile);

let admin: KubeClient;
let scratch: string;
/** The empty project the tarball is installed into. */
let app: string;

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `file args` in the installed app; resolves with the exit code instead of throwing. */
async function inApp(file: string, args: string[], timeout = 170_000): Promise<Result> {
  try {
    const { stdout, stderr } = await exec(file, args, { cwd: app, timeout, env: process.env, maxBuffer: 64 * 1024 * 1024 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof err.code === "number" ? err.code : -1, stdout: err.stdout ?? "", stderr: err.stderr ?? "" };
  }
}

function expectOk(r: Result, what: string): void {
  if (r.code !== 0) throw new Error(`${what} exited ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`);
}

beforeAll(async () => {
  await ensureDist();
  admin = await namespaceClient("e2e-pack");
  scratch = mkdtempSync(join(tmpdir(), "kce-pack-"));
  await exec("npm", ["pack", "--silent", "--ignore-scripts", "--pack-destination", scratch], { cwd: ROOT, timeout: 170_000 });
  const tarball = readdirSync(scratch).find((f) => f.endsWith(".tgz"));
  if (!tarball) throw new Error(`npm pack wrote no tarball into ${scratch}`);
  app = join(scratch, "app");
  mkdirSync(app);
  writeFileSync(join(app, "package.json"), JSON.stringify({ name: "kce-user", version: "1.0.0", private: true, type: "module" }));
  // Dependencies come from npm's cache when `npm ci` already fetched them, else from the registry.
  await exec("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error", join(scratch, tarball)], {
    cwd: app,
    timeout: 170_000,
  });
});

afterAll(async () => {
  if (scratch) rmSync(scratch, { recursive: true, force: true });
  if (admin) {
    await expectNoLeftovers(admin);
    await deleteNamespace(admin);
  }
});

describe("the packed tarball, installed into an empty project", () => {
  it("ships the program and the library, not the sources or tests", () => {
    const installed = join(app, "node_modules", "kube-container-engine");
    const top = readdirSync(installed).sort();
    expect(top).toEqual(expect.arrayContaining(["README.md", "dist", "manifests", "package.json"]));
    expect(top).not.toContain("src");
    expect(top).not.toContain("test");
  });

  it("its declarations keep client-node's pod objects out of PodContainer (private constructor, internal start)", () => {
    const dist = join(app, "node_modules", "kube-container-engine", "dist");
    const container = readFileSync(join(dist, "container.d.ts"), "utf8");
    expect(container).toContain("export declare class PodContainer");
    expect(container).toContain("private constructor();");
    for (const hidden of ["V1Pod", "PodContainerInit", "StartContainer", "static start"]) expect(container).not.toContain(hidden);
    expect(readFileSync(join(dist, "index.d.ts"), "utf8")).not.toMatch(/\bV1[A-Z]/);
  });

  it("npx kce --help prints the usage", async () => {
    const r = await inApp("npx", ["--no-install", "kce", "--help"]);
    expectOk(r, "npx kce --help");
    expect(r.stdout).toMatch(/Usage: kce <command>/);
  });

  it("its kce builds an image in the cluster and runs it", async () => {
    const context = join(scratch, "context");
    mkdirSync(context);
    const nonce = randomBytes(6).toString("hex");
    writeFileSync(join(context, "Dockerfile"), `FROM ${baseImage()}\nRUN echo "packed ${nonce}" > /hello.txt\nCMD ["cat", "/hello.txt"]\n`);
    const image = uniqueImage("packed");
    const kce = join(app, "node_modules", ".bin", "kce");
    const built = await inApp(kce, ["-n", admin.namespace, "build", context, "-t", image]);
    expectOk(built, "kce build");
    const ran = await inApp(kce, ["-n", admin.namespace, "run", "--rm", image]);
    expectOk(ran, "kce run --rm");
    expect(ran.stdout).toBe(`packed ${nonce}\n`);

    // The library, imported by its package name from the user's project.
    const script = [
      'import { KubernetesEngine, BuildError } from "kube-container-engine";',
      `const engine = new KubernetesEngine({ namespace: ${JSON.stringify(admin.namespace)}, log: () => {} });`,
      `const found = await engine.inspectImage(${JSON.stringify(image)});`,
      "console.log(JSON.stringify({ tags: found?.tags ?? null, cmd: found?.config?.Cmd ?? null, buildError: typeof BuildError }));",
    ].join("\n");
    const lib = await inApp(process.execPath, ["--input-type=module", "-e", script]);
    expectOk(lib, "the library import");
    expect(JSON.parse(lib.stdout)).toEqual({ tags: [image], cmd: ["cat", "/hello.txt"], buildError: "function" });
  });
});
