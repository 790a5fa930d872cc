import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    pool: 'forks',
    testTimeout: 20_000,
    hookTimeout: 60_000,
    projects: [
      {
        extends: true,
        test: { name: 'unit', include: ['test/**/*.test.ts'], exclude: ['test/airflow/**', 'test/replicas/**', 'test/reliability/exactly-once.test.ts', 'test/reliability/airflow-outage.test.ts', 'test/console/replay.test.ts', 'test/deploy/prometheus-e2e.test.ts'], sequence: { groupOrder: 0 } },
      },
      {
        // Real Airflow and several bridge processes are heavy on two cores: one file at a
        // time, after the unit tests.
        extends: true,
        test: { name: 'system', include: ['test/airflow/**/*.test.ts', 'test/replicas/**/*.test.ts', 'test/reliability/exactly-once.test.ts', 'test/reliability/airflow-outage.test.ts', 'test/console/replay.test.ts', 'test/deploy/prometheus-e2e.test.ts'], fileParallelism: false, sequence: { groupOrder: 1 } },
      },
    ],
  },
});
