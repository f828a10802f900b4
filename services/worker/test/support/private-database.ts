import { startPostgres } from '@nodebatch/testkit';
import type { PostgresServer } from '@nodebatch/testkit';
import { openBatchSetup } from './batch-setup.js';
import type { BatchSetup, BatchSetupOptions } from './batch-setup.js';

/** A set-up whose database is a private server of its own. */
export interface PrivateDatabaseSetup extends BatchSetup {
  server: PostgresServer;
}

/**
 * A set-up on a private PostgreSQL, for tests that stop the server or alter its roles (the
 * queue stays on the shared Redis); close() removes the server.
 */
export async function startPrivateDatabaseSetup(
  options: BatchSetupOptions = {},
): Promise<PrivateDatabaseSetup> {
  const server = await startPostgres();
  const setup = await openBatchSetup({ url: server.url, remove: () => server.destroy() }, options);
  return { ...setup, server };
}
