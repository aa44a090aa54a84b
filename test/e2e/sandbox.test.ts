// The sandbox itself: idempotent, replicating, archiving, and able to come back from what a killed
// run leaves behind (stale pid files, a SIGKILLed server, a half-initialised data directory).
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { sandboxStatus, sandboxUp } from '../../sandbox/index.js';
import { asPostgres, pgPaths, psqlSuper } from '../../sandbox/postgres.js';
import { isAlive } from '../../sandbox/process.js';
import { testInstance } from '../helpers/global.js';
import { testClient, uniqueId } from '../helpers/temporal.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function query<T extends pg.QueryResultRow>(url: string, sql: string, params: unknown[] = []): Promise<T[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<T>(sql, params)).rows;
  } finally {
    await c.end();
  }
}

async function eventually(what: string, check: () => Promise<boolean>, ms = 30_000) {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`not within ${ms}ms: ${what}`);
    await sleep(250);
  }
}

describe('sandbox', () => {
  it('a second up is a no-op', async () => {
    const { changed } = await sandboxUp(testInstance);
    assert.equal(changed, false);
  });

  it('is seeded, the DR standby streams from the primary, and the primary archives WAL', async () => {
    const primary = process.env.MIMIR_PRIMARY_DATABASE_URL!;
    const dr = process.env.MIMIR_DR_DATABASE_URL!;
    const [counts] = await query<{ articles: string; users: string; failed_logins: string }>(
      primary,
      `SELECT (SELECT count(*) FROM articles) AS articles, (SELECT count(*) FROM users WHERE last_login_at > now() - interval '24 hours') AS users,
              (SELECT count(*) FROM activity_log WHERE action = 'login' AND status = 'failed' AND created_at > now() - interval '1 hour') AS failed_logins`,
    );
    assert.ok(Number(counts!.articles) >= 20000, 'the generated articles are there');
    assert.ok(Number(counts!.users) > 0 && Number(counts!.failed_logins) > 0, 'the runbook queries find rows');
    const [role] = await query<{ standby: boolean }>(dr, 'SELECT pg_is_in_recovery() AS standby');
    assert.equal(role!.standby, true);
    const marker = uniqueId('replicated');
    await query(primary, `INSERT INTO articles (title, url, source, content, published_at) VALUES ($1, $1, 'test', 'x', now())`, [marker]);
    await eventually(
      'the new row reaches the standby',
      async () => (await query(dr, 'SELECT 1 FROM articles WHERE url = $1', [marker])).length === 1,
    );

    const segment = await psqlSuper(testInstance, 'primary', 'SELECT pg_walfile_name(pg_current_wal_lsn()); SELECT pg_switch_wal();');
    const name = segment.split('\n')[0]!.trim();
    await eventually(`WAL segment ${name} is archived`, async () => existsSync(join(pgPaths(testInstance).archive, name)));
  });

  it('comes back after a killed run: SIGKILLed servers, stale pid files, a half-initialised standby; workflows persist', async () => {
    const client = await testClient();
    const parked = await client.workflow.start('gateProbeWorkflow', {
      taskQueue: uniqueId('nobody-polls'),
      workflowId: uniqueId('persisted'),
      args: [{ requestedBy: 'alice', approvers: [], required: 1, escalateAfter: '1h', deadline: '2h' }],
    });
    const p = pgPaths(testInstance);
    const temporalPid = Number(readFileSync(join(testInstance.stateDir, 'temporal', 'server.pid'), 'utf8'));
    const postmasterPid = Number(readFileSync(join(p.primary.data, 'postmaster.pid'), 'utf8').split('\n')[0]);
    process.kill(temporalPid, 'SIGKILL');
    process.kill(postmasterPid, 'SIGKILL');
    await asPostgres('pg_ctl', ['stop', '-D', p.dr.data, '-m', 'immediate']);
    rmSync(p.dr.ready); // as if a run was killed in the middle of building the standby
    await eventually('the killed processes are gone', async () => !isAlive(temporalPid) && !isAlive(postmasterPid));
    await sleep(1000); // let orphaned backends notice their postmaster died
    assert.ok(existsSync(join(p.primary.data, 'postmaster.pid')), 'the stale pid file is still there');

    const { changed } = await sandboxUp(testInstance);
    assert.equal(changed, true);
    const status = await sandboxStatus(testInstance);
    assert.match(status.temporal, /^running/);
    assert.match(status.postgresPrimary, /^running/);
    assert.match(status.postgresDr, /^running/);
    assert.equal((await parked.describe()).status.name, 'RUNNING', 'a workflow started before the kill survives it (SQLite persistence)');
    await parked.terminate('test done');
    const [row] = await query<{ n: string }>(process.env.MIMIR_DR_DATABASE_URL!, 'SELECT count(*) AS n FROM articles');
    assert.ok(Number(row!.n) >= 20000, 'the rebuilt standby has the data');
    assert.ok(readdirSync(p.archive).length > 0);
  });
});
