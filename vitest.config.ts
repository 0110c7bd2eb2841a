import { defineConfig } from "vitest/config";

// Two projects: `unit` needs nothing but Node; `e2e` needs the local cluster
// (`eval "$(test/cluster/up)"` exports KUBECONFIG, KCE_REGISTRY, …).
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          include: ["test/unit/**/*.test.ts"],
        },
      },
      {
        test: {
          name: "e2e",
          include: ["test/e2e/**/*.test.ts"],
          testTimeout: 180_000,
          hookTimeout: 180_000,
          // The cluster is one 2-core node: keep files sequential so timings stay sane.
          fileParallelism: false,
          globalSetup: ["test/e2e/global-setup.ts"],
        },
      },
    ],
  },
});
