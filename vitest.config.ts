import { defineConfig } from "vitest/config";

// Four projects, run one group after the other: `unit` needs nothing but Node; `e2e` needs the local
// cluster (`eval "$(test/cluster/up)"` exports KUBECONFIG, KCE_REGISTRY, …); `faults` stops and restarts the
// cluster's API server, kubelet and containerd, so it runs last and alone. `kind` needs a cluster of several
// nodes: it exists only when KCE_KIND is set (the environment of test/kind/up), and test/kind/test runs it with
// `e2e` against that cluster.
const e2e = {
  testTimeout: 180_000,
  hookTimeout: 180_000,
  // The cluster is one 2-core node: keep files sequential so timings stay sane.
  fileParallelism: false,
  globalSetup: ["test/e2e/global-setup.ts"],
};

export default defineConfig({
  test: {
    projects: [
      {
        test: { name: "unit", include: ["test/unit/**/*.test.ts"], sequence: { groupOrder: 0 } },
      },
      {
        test: {
          name: "e2e",
          include: ["test/e2e/**/*.test.ts"],
          exclude: ["test/e2e/faults/**", "test/e2e/kind/**"],
          ...e2e,
          sequence: { groupOrder: 1 },
        },
      },
      ...(process.env.KCE_KIND
        ? [{ test: { name: "kind", include: ["test/e2e/kind/**/*.test.ts"], ...e2e, sequence: { groupOrder: 3 } } }]
        : []),
      {
        test: { name: "faults", include: ["test/e2e/faults/**/*.test.ts"], ...e2e, sequence: { groupOrder: 2 } },
      },
    ],
  },
});
