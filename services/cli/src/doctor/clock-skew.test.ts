import { createTestDatabase, type TestDatabase } from '@nodebatch/testkit';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkClockSkew } from './clock-skew.js';
import { CheckWarning } from './doctor-check.js';

describe('checkClockSkew', () => {
  let db: TestDatabase;
  let client: pg.Client;

  beforeAll(async () => {
    db = await createTestDatabase({ prefix: 'clock' });
    client = new pg.Client({ connectionString: db.url });
    await client.connect();
  });
  afterAll(async () => {
    await client.end();
    await db.drop();
  });

  it('passes when this process and the database read the same clock', async () => {
    await expect(checkClockSkew(client)).resolves.toMatch(/^database clock (ahead|behind) by \d+ ms/);
  });

  it('warns, with the size and direction, when the service clock is a minute behind the database', async () => {
    const behind = () => Date.now() - 60_000;
    const error = await checkClockSkew(client, 1000, behind).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(CheckWarning);
    expect((error as CheckWarning).message).toMatch(
      /^database clock ahead by (59|60)\d{3} ms .*more than 1000 ms/,
    );
  });

  it('warns when the service clock is ahead', async () => {
    const ahead = () => Date.now() + 5_000;
    await expect(checkClockSkew(client, 1000, ahead)).rejects.toThrow(
      /database clock behind by [45]\d{3} ms/,
    );
  });
});
