import { readFileSync, readdirSync } from 'node:fs';
import type { FastifyInstance, FastifyReply } from 'fastify';

/** The page's own files: hand-written ES modules and CSS, served as they are. */
const PUBLIC_DIR = new URL('../../public/', import.meta.url);
/** What `pnpm build` makes for the page (scripts/build-page.mjs): the UI library and the core's fold. */
const BUILT_DIR = new URL('../../dist/public/', import.meta.url);
const LIBRARY = 'console-lib.js';

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
};

// No inline script or style: everything the page runs comes from this gateway.
const CONTENT_SECURITY_POLICY =
  "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

interface Asset {
  body: Buffer;
  type: string;
}

/** The files under `dir` the page may load, read once: a name not listed here is a 404, never a path. */
function readAssets(dir: URL, names: readonly string[]): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  for (const name of names) {
    const type = CONTENT_TYPES[name.slice(name.lastIndexOf('.'))];
    if (type !== undefined) assets.set(name, { body: readFileSync(new URL(name, dir)), type });
  }
  return assets;
}

function listDir(dir: URL): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

function send(reply: FastifyReply, asset: Asset): FastifyReply {
  return reply
    .type(asset.type)
    .header('cache-control', 'no-cache')
    .header('x-content-type-options', 'nosniff')
    .send(asset.body);
}

/**
 * GET /: the operator's console (public/index.html), its modules under /console/ and the library
 * bundle the build makes. A gateway run from sources that were never built still answers the
 * page, and the bundle's 503 says to run the build.
 */
export async function pagePlugin(app: FastifyInstance): Promise<void> {
  const html = readFileSync(new URL('index.html', PUBLIC_DIR));
  const own = readAssets(new URL('console/', PUBLIC_DIR), listDir(new URL('console/', PUBLIC_DIR)));
  const built = readAssets(
    BUILT_DIR,
    [LIBRARY, `${LIBRARY}.map`].filter((name) => listDir(BUILT_DIR).includes(name)),
  );

  app.get('/', { config: { public: true } }, (_request, reply) =>
    reply
      .type('text/html; charset=utf-8')
      .header('cache-control', 'no-cache')
      .header('content-security-policy', CONTENT_SECURITY_POLICY)
      .send(html),
  );

  app.get<{ Params: { file: string } }>('/console/:file', { config: { public: true } }, (request, reply) => {
    const { file } = request.params;
    const asset = own.get(file) ?? built.get(file);
    if (asset !== undefined) return send(reply, asset);
    if (file === LIBRARY) {
      return reply
        .code(503)
        .type('text/plain; charset=utf-8')
        .send(
          `${LIBRARY} was not built: run \`pnpm build\` (services/gateway/scripts/build-page.mjs makes it)`,
        );
    }
    return reply
      .code(404)
      .type('text/plain; charset=utf-8')
      .send(`no console file ${JSON.stringify(file)}`);
  });
}
