// The README's failure table generator (test/e2e/faults/table.ts): test names built from template literals
// come out as vitest names them, never as source text.
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { collectFaultRows, parseFaultTests } from "../e2e/faults/table.js";

const FAULTS = join(dirname(fileURLToPath(import.meta.url)), "..", "e2e", "faults");

describe("parseFaultTests", () => {
  it("gives one row per case of a for…of loop, with the case's name", () => {
    const source = [
      "const CASES: { name: string; options: () => object }[] = [",
      '  { name: "a missing file", options: () => ({}) },',
      "  { name: 'a $1 tag', options: () => ({ tag: \"x\" }) },",
      "];",
      "for (const c of CASES) {",
      "  // row 1 | bad input | an error",
      "  it(`build with ${c.name} fails`, async () => {",
      "    withinBound(`row1-${c.name}`, 0, 1);",
      "  });",
      "}",
    ].join("\n");
    expect(parseFaultTests(source, "x.test.ts").map((r) => r.test)).toEqual(["build with a missing file fails", "build with a $1 tag fails"]);
  });

  it("adds up integer constants", () => {
    const source = ["const A = 15;", "const B = 3;", "// row 11 | f | d", "it(`gone within ${A + B + 30} s, not ${A - 1}`, () => {});"].join("\n");
    expect(parseFaultTests(source, "x.test.ts")[0]?.test).toBe("gone within 48 s, not 14");
  });

  it("keeps plain names as they are", () => {
    const source = ['// row 2 | f | d', 'it("a \\"quoted\\" name", () => {});'].join("\n");
    expect(parseFaultTests(source, "x.test.ts")[0]?.test).toBe('a "quoted" name');
  });

  it("refuses a template part it cannot work out, naming the place", () => {
    const source = ["// row 3 | f | d", "it(`with ${describeIt()}`, () => {});"].join("\n");
    expect(() => parseFaultTests(source, "x.test.ts")).toThrow(/x\.test\.ts:2: cannot work out \$\{describeIt\(\)\}/);
  });
});

describe("collectFaultRows over test/e2e/faults", () => {
  it("shows no template source in any test name", () => {
    const rows = collectFaultRows(FAULTS);
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.filter((r) => r.test.includes("${"))).toEqual([]);
    expect(rows.filter((r) => r.file === "bad-input.test.ts" && r.test.startsWith("build with a missing Dockerfile"))).toHaveLength(1);
  });
});
