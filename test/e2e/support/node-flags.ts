// The Node.js flags `kce` runs with: its shebang's (`#!/usr/bin/env -S node <flags>`), so tests and benchmarks
// that start `node dist/cli/main.js` themselves run it as the installed command does.
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";

/** src/cli/main.ts of the checkout this file is in (run from test/, or compiled under bench/out/build/). */
function mainSource(): string {
  for (let dir = import.meta.dirname; dir !== dirname(dir); dir = dirname(dir)) {
    const main = join(dir, "src", "cli", "main.ts");
    if (existsSync(main)) return main;
  }
  throw new Error(`src/cli/main.ts not found above ${import.meta.dirname}`);
}

/** Parses `#!/usr/bin/env -S node --a --b` → ["--a", "--b"]. */
export function shebangNodeFlags(firstLine: string): string[] {
  const match = /^#!\/usr\/bin\/env(?: -S)? node((?: +-[^ ]+)*) *$/.exec(firstLine);
  if (!match) throw new Error(`not a node shebang: ${firstLine}`);
  return (match[1] ?? "").trim().split(/ +/).filter(Boolean);
}

export const KCE_NODE_FLAGS: readonly string[] = shebangNodeFlags(readFileSync(mainSource(), "utf8").split("\n", 1)[0] ?? "");
