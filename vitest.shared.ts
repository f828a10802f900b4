import { defineConfig } from 'vitest/config';

/**
 * One Vitest configuration for every package: TypeScript sources of sibling
 * packages are resolved through the `source` export condition (no build needed),
 * and each run writes a JSON report that scripts/run-tests.mjs sums up.
 */
export function vitestConfig(options: { testTimeout?: number; include?: string[] } = {}) {
  return defineConfig({
    resolve: { conditions: ['source'] },
    ssr: { resolve: { conditions: ['source'], externalConditions: ['source'] } },
    test: {
      include: options.include ?? ['src/**/*.test.ts', 'test/**/*.test.ts'],
      // A package with a test script and no test file fails (see also scripts/run-tests.mjs).
      passWithNoTests: false,
      testTimeout: options.testTimeout ?? 30_000,
      hookTimeout: 60_000,
      reporters: ['default', ['json', { outputFile: '.vitest/report.json' }]],
    },
  });
}
