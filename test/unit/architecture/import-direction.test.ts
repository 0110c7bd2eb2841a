import { execFile } from "node:child_process";
import { cp, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";

// `npm run lint:deps` (dependency-cruiser) is what CI runs; these tests keep it from passing vacuously: a
// TypeScript it cannot read (7.0 has no JavaScript API) made it report "no violations" for 0 modules.
const root = resolve(import.meta.dirname, "../../..");
const run = promisify(execFile);

interface CruiseReport {
  modules: number;
  violations: { rule: string; from: string; to: string }[];
}

/** Runs dependency-cruiser with the project's config in `cwd` and returns what it cruised and found. */
async function depcruise(cwd: string): Promise<CruiseReport> {
  const bin = join(root, "node_modules", ".bin", "depcruise");
  const args = ["src", "--config", ".dependency-cruiser.cjs", "--output-type", "json"];
  // depcruise exits non-zero when it finds violations; its JSON report is on stdout either way
  const { stdout } = await run(bin, args, { cwd, maxBuffer: 64 * 1024 * 1024 }).catch((err: { stdout?: string }) => ({ stdout: err.stdout ?? "" }));
  const json = JSON.parse(stdout) as {
    summary: { totalCruised: number; violations: { rule: { name: string }; from: string; to: string }[] };
  };
  return {
    modules: json.summary.totalCruised,
    violations: json.summary.violations.map((v) => ({ rule: v.rule.name, from: v.from, to: v.to })),
  };
}

describe("import direction (dependency-cruiser, as CI runs it)", () => {
  const dirs: string[] = [];
  afterAll(async () => {
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  });

  it("reads every module of src/ and finds no upward import or cycle", async () => {
    const report = await depcruise(root);
    expect(report.modules).toBeGreaterThan(100);
    expect(report.violations).toEqual([]);
  }, 60_000);

  it("fails on a planted upward import (kube/ reaching the engine)", async () => {
    const dir = await mkdtemp(join(tmpdir(), "kce-depcruise-"));
    dirs.push(dir);
    await cp(join(root, "src"), join(dir, "src"), { recursive: true });
    for (const file of ["tsconfig.json", ".dependency-cruiser.cjs"]) await cp(join(root, file), join(dir, file));
    await symlink(join(root, "node_modules"), join(dir, "node_modules"));
    const planted = join(dir, "src", "kube", "retry.ts");
    await writeFile(planted, `${await readFile(planted, "utf8")}\nexport { KubernetesEngine } from "../engine.js";\n`);

    const report = await depcruise(dir);
    expect(report.modules).toBeGreaterThan(100);
    expect(report.violations).toContainEqual({ rule: "kube-is-io-only", from: "src/kube/retry.ts", to: "src/engine.ts" });
  }, 60_000);
});
