import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    pool: 'forks',
    testTimeout: 20_000,
    hookTimeout: 60_000,
    projects: [
      {
        extends: true,
        test: { name: 'unit', include: ['test/**/*.test.ts'], exclude: ['test/airflow/**'], sequence: { groupOrder: 0 } },
      },
      {
        // Real Airflow is heavy on two cores: one version at a time, after the unit tests.
        extends: true,
        test: { name: 'airflow', include: ['test/airflow/**/*.test.ts'], fileParallelism: false, sequence: { groupOrder: 1 } },
      },
    ],
  },
});
