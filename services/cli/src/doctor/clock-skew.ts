import type pg from 'pg';
import { CheckWarning } from './doctor-check.js';

/** Above this, `nodebatch doctor` warns. Default 1000 ms. */
const DEFAULT_MAX_CLOCK_SKEW_MS = 1000;

/**
 * How far the database's clock is from this process's, measured as the
 * difference to the midpoint of the query's round trip (so network time does
 * not count as skew). Replicas stamp events with their own clock while the
 * database judges ages with its own (retention, a job's lease); a skew of
 * seconds shows up as tasks that look older or newer than they are.
 */
export async function checkClockSkew(
  client: Pick<pg.Client, 'query'>,
  maxSkewMs = DEFAULT_MAX_CLOCK_SKEW_MS,
  now: () => number = Date.now,
): Promise<string> {
  const sent = now();
  const { rows } = await client.query<{ ms: string }>(
    'SELECT (extract(epoch FROM clock_timestamp()) * 1000)::text AS ms',
  );
  const received = now();
  const databaseMs = Number(rows[0]?.ms);
  const skewMs = Math.round(databaseMs - (sent + received) / 2);
  const uncertaintyMs = Math.ceil((received - sent) / 2);
  const detail = `database clock ${skewMs >= 0 ? 'ahead by' : 'behind by'} ${Math.abs(skewMs)} ms (± ${uncertaintyMs} ms)`;
  if (Math.abs(skewMs) - uncertaintyMs > maxSkewMs) {
    throw new CheckWarning(`${detail}, more than ${maxSkewMs} ms`, [
      'Synchronise the clocks of the nodes and the database host (NTP, chrony, the cloud provider’s time service).',
    ]);
  }
  return detail;
}
