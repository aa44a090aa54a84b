// Real sessions on the test sandbox's primary: idle ones to be cleaned up, busy ones to be spared.
import pg from 'pg';

export async function openSessions(n: number, applicationName: string): Promise<pg.Client[]> {
  const clients = await Promise.all(
    Array.from({ length: n }, async () => {
      const c = new pg.Client({ connectionString: process.env.MIMIR_PRIMARY_DATABASE_URL, application_name: applicationName });
      c.on('error', () => undefined); // termination is what the tests expect
      await c.connect();
      await c.query('SELECT 1');
      return c;
    }),
  );
  return clients;
}

/** Whether the session still answers (it was not terminated). */
export async function alive(c: pg.Client): Promise<boolean> {
  try {
    await c.query('SELECT 1');
    return true;
  } catch {
    return false;
  }
}

export async function closeAll(clients: pg.Client[]): Promise<void> {
  await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
}

export async function backendPid(c: pg.Client): Promise<number> {
  return (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
}

/** Which of these backend pids still have a session, seen from a separate observer connection (so the sessions' idle clocks are not reset). */
export async function present(pids: number[]): Promise<number[]> {
  const [observer] = await openSessions(1, 'test-observer');
  try {
    const { rows } = await observer!.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE pid = ANY($1::int[]) ORDER BY pid', [
      pids,
    ]);
    return rows.map((r) => r.pid);
  } finally {
    await observer!.end();
  }
}

/** One statement on the test primary, on its own connection. */
export async function sql<T extends pg.QueryResultRow>(text: string, params: unknown[] = []): Promise<T[]> {
  const c = new pg.Client({ connectionString: process.env.MIMIR_PRIMARY_DATABASE_URL });
  await c.connect();
  try {
    return (await c.query<T>(text, params)).rows;
  } finally {
    await c.end();
  }
}
