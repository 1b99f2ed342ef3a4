import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
        },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          // One moto for the run, started only when integration files are selected.
          globalSetup: ['test/support/global-setup.ts'],
          setupFiles: ['test/support/integration-setup.ts'],
          // The files share that moto and reset it when they start: one file at a time.
          fileParallelism: false,
          // Real servers: IAM loads ~1,000 managed policies on first use after each reset.
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
    ],
  },
});
