/**
 * The import direction of src/ (README "Architecture"), checked in CI by `npm run lint:deps`:
 *   leaves (contract, errors, image, config) ← kube/ ← pods/ ← registry/ ← imaging/ ← container, cleanup ← engine
 *   ← index ← cli/, rpc/, service/
 * Each rule forbids an import against that direction (an "upward" import), plus cycles.
 */
const LEAVES = "^src/(contract|errors|image|config|registry-hosting)\\.ts$";
const APPS = "^src/(cli|rpc|service)/";
const ENGINE = "^src/(engine|index|container|cleanup)\\.ts$";

module.exports = {
  forbidden: [
    { name: "no-circular", severity: "error", comment: "cycles make the layers meaningless", from: {}, to: { circular: true } },
    {
      name: "leaves-import-nothing-of-ours",
      severity: "error",
      comment: "contract, errors, image and config are the bottom: pure types and values",
      from: { path: LEAVES },
      to: { path: "^src/", pathNot: LEAVES },
    },
    {
      name: "kube-is-io-only",
      severity: "error",
      comment: "kube/ is the I/O layer: it knows no pods/ policy, no builds, no registry, no engine",
      from: { path: "^src/kube/" },
      to: { path: ["^src/(pods|imaging|registry|service|cli|rpc)/", ENGINE] },
    },
    {
      name: "pods-below-builds",
      severity: "error",
      from: { path: "^src/pods/" },
      to: { path: ["^src/(imaging|registry|service|cli|rpc)/", ENGINE] },
    },
    {
      name: "registry-below-builds",
      severity: "error",
      from: { path: "^src/registry/" },
      to: { path: ["^src/(imaging|pods|service|cli|rpc)/", ENGINE] },
    },
    {
      name: "builds-do-not-call-up",
      severity: "error",
      comment: "imaging/ gets what it needs (the registry, the cluster seam) passed in; it never reaches back into the engine",
      from: { path: "^src/imaging/" },
      to: { path: [APPS, ENGINE] },
    },
    {
      name: "engine-below-apps",
      severity: "error",
      from: { path: ENGINE },
      to: { path: APPS },
    },
    {
      name: "cli-uses-the-public-api",
      severity: "error",
      comment: "the CLI is a client of the library: it imports src/index.ts (and the apps beside it), nothing deeper",
      from: { path: "^src/cli/" },
      to: { path: "^src/", pathNot: ["^src/index\\.ts$", APPS] },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    exclude: { path: "^src/service/page/" },
  },
};
