import { readFile } from 'node:fs/promises';
import { NodebatchClient, type TokenProvider } from '@nodebatch/client';

/** NODEBATCH_URL / NODEBATCH_TOKEN / NODEBATCH_TOKEN_FILE are missing or wrong. */
export class GatewayEnvironmentError extends Error {
  override readonly name = 'GatewayEnvironmentError';
}

/**
 * The client the gateway commands use, from the environment:
 * - `NODEBATCH_URL`: the gateway's URL, or several replicas' separated by commas
 *   (a follow moves to the next when one goes away);
 * - `NODEBATCH_TOKEN`, or `NODEBATCH_TOKEN_FILE` (a mounted secret, read again
 *   after a 401 so that a rotated token is picked up). Neither: no token.
 */
export function clientFromEnv(env: NodeJS.ProcessEnv = process.env): NodebatchClient {
  const raw = env.NODEBATCH_URL?.trim();
  if (!raw) {
    throw new GatewayEnvironmentError(
      'NODEBATCH_URL is not set: export NODEBATCH_URL=https://nodebatch.example.com (several gateways: comma-separated)',
    );
  }
  const urls = raw
    .split(',')
    .map((url) => url.trim())
    .filter(Boolean);
  urls.forEach((url, i) => {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new GatewayEnvironmentError(
        `NODEBATCH_URL${urls.length > 1 ? ` (entry ${i + 1})` : ''}: ${JSON.stringify(url)} is not an absolute URL such as http://127.0.0.1:8080`,
      );
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
      throw new GatewayEnvironmentError(
        `NODEBATCH_URL: ${JSON.stringify(url)} must start with http:// or https://`,
      );
    }
  });
  return new NodebatchClient({ url: urls, ...tokenFromEnv(env) });
}

function tokenFromEnv(env: NodeJS.ProcessEnv): { token?: TokenProvider } {
  const token = env.NODEBATCH_TOKEN?.trim();
  const file = env.NODEBATCH_TOKEN_FILE?.trim();
  if (token && file) {
    throw new GatewayEnvironmentError('NODEBATCH_TOKEN and NODEBATCH_TOKEN_FILE are both set: keep one');
  }
  if (token) return { token };
  if (!file) return {};
  return {
    token: async () => {
      let text: string;
      try {
        text = await readFile(file, 'utf8');
      } catch (error) {
        throw new GatewayEnvironmentError(
          `NODEBATCH_TOKEN_FILE ${file}: cannot read it (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`,
        );
      }
      const value = text.trim();
      if (!value) throw new GatewayEnvironmentError(`NODEBATCH_TOKEN_FILE ${file} is empty`);
      return value;
    },
  };
}
