import { vitestConfig } from '../../vitest.shared.ts';

// The CLI tests run `nodebatch` as child processes, which load TypeScript sources.
export default vitestConfig({ testTimeout: 120_000 });
