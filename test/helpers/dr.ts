// The DR pair of the test sandbox in its seeded shape before a test that needs it: the original
// primary writable, the DR standby streaming from it via slot `mimir_dr`, production at its seeded
// replicas with its ingress open, the DR site at 0, traffic pointing at production. Other tests (a
// point-in-time recovery, a failover in another file) may have left anything else.
import pg from 'pg';
import { ensureDrPair as ensureSandboxDrPair } from '../../sandbox/dr.js';
import { testInstance } from './global.js';

export async function ensureDrPair(): Promise<void> {
  await ensureSandboxDrPair(testInstance);
}

/** A query on a site's database (`primary` or `dr`) as the application user. */
export async function siteSql<T extends pg.QueryResultRow>(site: 'primary' | 'dr', text: string, params: unknown[] = []): Promise<T[]> {
  const c = new pg.Client({ connectionString: process.env[site === 'primary' ? 'MIMIR_PRIMARY_DATABASE_URL' : 'MIMIR_DR_DATABASE_URL'] });
  c.on('error', () => undefined);
  await c.connect();
  try {
    return (await c.query<T>(text, params)).rows;
  } finally {
    await c.end().catch(() => undefined);
  }
}

/**
 * An application writing to a site as fast as it can, one autocommit insert at a time, reconnecting
 * after an error, until stopped. `acknowledged` holds every id whose COMMIT the server confirmed.
 */
export function startWriter(site: 'primary' | 'dr', table: string, firstId = 1) {
  const acknowledged: number[] = [];
  const errors: string[] = [];
  let stopped = false;
  const done = (async () => {
    let seq = firstId - 1;
    while (!stopped) {
      const c = new pg.Client({
        connectionString: process.env[site === 'primary' ? 'MIMIR_PRIMARY_DATABASE_URL' : 'MIMIR_DR_DATABASE_URL'],
      });
      c.on('error', () => undefined);
      try {
        await c.connect();
        while (!stopped) {
          const id = ++seq;
          await c.query(`INSERT INTO ${table} (id) VALUES ($1)`, [id]);
          acknowledged.push(id);
        }
      } catch (e) {
        errors.push((e as Error).message);
        await new Promise((r) => setTimeout(r, 50));
      } finally {
        await c.end().catch(() => undefined);
      }
    }
  })();
  return {
    acknowledged,
    errors,
    stop: async () => {
      stopped = true;
      await done;
    },
  };
}
