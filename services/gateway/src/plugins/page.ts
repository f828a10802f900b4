import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';

const PAGE_HTML = readFileSync(new URL('../../public/index.html', import.meta.url), 'utf8');

/** GET /: the live progress page. */
export async function pagePlugin(app: FastifyInstance): Promise<void> {
  app.get('/', { config: { public: true } }, (_request, reply) =>
    reply
      .type('text/html; charset=utf-8')
      .header('cache-control', 'no-cache')
      .header(
        'content-security-policy',
        "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'",
      )
      .send(PAGE_HTML),
  );
}
