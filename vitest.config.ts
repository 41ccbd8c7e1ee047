import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["tests/**/*.test.ts", "tests/**/*.test.tsx"],
    // A fresh database per run on the shared PostgreSQL (see tests/helpers/global_setup.ts).
    globalSetup: ["tests/helpers/global_setup.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Integration suites start their own servers and processes; two cores, so keep files serial.
    fileParallelism: false,
    pool: "forks",
  },
});
