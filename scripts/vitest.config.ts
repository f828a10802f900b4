import { vitestConfig } from '../vitest.shared.ts';

export default vitestConfig({ include: ['local-services/**/*.test.ts', 'bench/**/*.test.ts', '*.test.ts'] });
