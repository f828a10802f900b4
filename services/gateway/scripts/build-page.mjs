// Builds the console page's library bundle (page/console-lib.ts -> dist/public/console-lib.js):
// preact, htm and the core's fold as one browser ES module. The page's own modules in public/
// need no build; the gateway serves both (src/plugins/page.ts). Runs as part of `pnpm build`.
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

await build({
  absWorkingDir: root,
  entryPoints: ['page/console-lib.ts'],
  outfile: 'dist/public/console-lib.js',
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['es2022'],
  // The workspace packages' TypeScript sources: the bundle does not wait for their own build.
  conditions: ['source'],
  minify: true,
  sourcemap: true,
  legalComments: 'linked',
  logLevel: 'warning',
});
