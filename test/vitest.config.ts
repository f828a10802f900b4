import { vitestConfig } from '../vitest.shared.ts';

export default vitestConfig({ include: ['**/*.test.ts'], testTimeout: 120_000 });
