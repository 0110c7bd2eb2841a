import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { KCE_NODE_FLAGS, shebangNodeFlags } from "../../e2e/support/node-flags.js";

const ROOT = resolve(import.meta.dirname, "../../..");

describe("the Node.js flags kce runs with", () => {
  it("come from main.ts's shebang, which env -S splits", () => {
    expect(shebangNodeFlags("#!/usr/bin/env -S node --max-semi-space-size=2 --x")).toEqual(["--max-semi-space-size=2", "--x"]);
    expect(shebangNodeFlags("#!/usr/bin/env node")).toEqual([]);
    expect(() => shebangNodeFlags("#!/bin/sh")).toThrow(/not a node shebang/);
    expect(KCE_NODE_FLAGS).toContain("--max-semi-space-size=2");
  });

  it("are the ones the service image's kce wrapper passes", () => {
    const dockerfile = readFileSync(resolve(ROOT, "Dockerfile"), "utf8");
    expect(dockerfile).toContain(`exec node ${KCE_NODE_FLAGS.join(" ")} /app/dist/cli/main.js`);
  });
});
