// The Node.js flags `kce` runs with: its shebang's (`#!/usr/bin/env -S node <flags>`), so tests and benchmarks
// that start `node dist/cli/main.js` themselves run it as the installed command does.
import { readFileSync } from "node:fs";
import { resolve } from "node:path";

const MAIN = resolve(import.meta.dirname, "../../../src/cli/main.ts");

/** Parses `#!/usr/bin/env -S node --a --b` → ["--a", "--b"]. */
export function shebangNodeFlags(firstLine: string): string[] {
  const match = /^#!\/usr\/bin\/env(?: -S)? node((?: +-[^ ]+)*) *$/.exec(firstLine);
  if (!match) throw new Error(`not a node shebang: ${firstLine}`);
  return (match[1] ?? "").trim().split(/ +/).filter(Boolean);
}

export const KCE_NODE_FLAGS: readonly string[] = shebangNodeFlags(readFileSync(MAIN, "utf8").split("\n", 1)[0] ?? "");
