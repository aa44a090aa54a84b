// Database recovery survives its infrastructure: the worker SIGKILLed (with its pg_restore) in the
// middle of the restore and again at a gate, and the Temporal server SIGKILLed and restarted
// mid-procedure. A new worker finishes; data verifies; replicas come back exactly; nothing
// destructive runs twice.
import { Client, Connection } from '@temporalio/client';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { createActivities } from '../../activities/index.js';
import { status } from '../../client/client.js';
import { sandboxUp } from '../../sandbox/index.js';
import type { databaseRecoveryWorkflow } from '../../workflows/database-recovery.js';
import { approveUpdate } from '../../workflows/messages.js';
import { buildTestBundle, workerFleet } from '../helpers/cli.js';
import { testInstance } from '../helpers/global.js';
import { admin, readyPods } from '../helpers/kubernetes.js';
import { sandboxProfile, uniqueId, waitForStatus } from '../helpers/temporal.js';

async function sql<T extends pg.QueryResultRow>(text: string): Promise<T[]> {
  const c = new pg.Client({ connectionString: process.env.MIMIR_PRIMARY_DATABASE_URL });
  await c.connect();
  try {
    return (await c.query<T>(text)).rows;
  } finally {
    await c.end();
  }
}
const count = async (table: string) => Number((await sql<{ n: string }>(`SELECT count(*) AS n FROM ${table}`))[0]!.n);
const replicas = async (name: string) =>
  (await admin().apps.readNamespacedDeployment({ name, namespace: 'mimir-production' })).spec!.replicas;

describe('database recovery under failure (worker and server killed)', () => {
  const acts = createActivities({ profile: sandboxProfile(), env: process.env });
  const mock = new MockActivityEnvironment({}, { logger: new DefaultLogger('ERROR') });
  const backup = uniqueId('crash');
  const taskQueue = uniqueId('crash');
  let bundle: string;
  let client: Client;
  const fleet = workerFleet(() => ({ MIMIR_TASK_QUEUE: taskQueue, MIMIR_WORKFLOW_BUNDLE: bundle, MIMIR_LOG_LEVEL: 'INFO' }));
  const worker = fleet.start;
  let expected: { articles: number; bulk: number };

  before(async () => {
    // A table big enough that the restore takes a few seconds, so the worker can die in the middle of it.
    await sql(`CREATE TABLE IF NOT EXISTS bulk (id bigint PRIMARY KEY, payload text NOT NULL)`);
    await sql(`INSERT INTO bulk SELECT i, repeat(md5(i::text), 6) FROM generate_series(1, 600000) i ON CONFLICT DO NOTHING`);
    await sql(`CREATE INDEX IF NOT EXISTS bulk_payload ON bulk (payload)`);
    await mock.run(acts.dumpDatabase, { site: 'primary', name: backup, jobs: 2 });
    expected = { articles: await count('articles'), bulk: await count('bulk') };
    bundle = await buildTestBundle();
    client = new Client({ connection: await Connection.connect({ address: process.env.TEMPORAL_ADDRESS }) });
  });

  after(async () => {
    await fleet.killAll();
    await sql('DROP TABLE IF EXISTS bulk'); // keep the rest of the suite fast
  });

  it('a worker killed during the restore and at a gate is replaced; the restore is resumed, nothing destructive runs twice', async () => {
    const original = { api: await replicas('mimir-api'), worker: await replicas('mimir-worker') };
    await sql('DELETE FROM bulk WHERE id % 3 = 0'); // damage to repair
    const first = await worker();
    const handle = await client.workflow.start<typeof databaseRecoveryWorkflow>('databaseRecoveryWorkflow', {
      taskQueue,
      workflowId: uniqueId('db-recovery-primary-crash'),
      args: [{ site: 'primary', requestedBy: 'alice', source: { backup }, jobs: 2 }],
    });
    await waitForStatus(handle, (s) => s.openGate?.name === 'restore');
    await handle.executeUpdate(approveUpdate, { args: [{ by: 'bob' }] });
    await waitForStatus(handle, (s) => s.journal.some((e) => e.step === 'restore' && e.outcome === 'running'), 120_000);
    // pg_restore is at work, and the status shows its progress (from the activity's heartbeats).
    let progress: unknown;
    for (let i = 0; i < 30 && progress === undefined; i++) {
      const live = await status({ client, close: async () => undefined }, handle.workflowId);
      progress = live.running?.find((a) => a.activity === 'restoreDump')?.progress;
      if (progress === undefined) await new Promise((r) => setTimeout(r, 200));
    }
    assert.match(JSON.stringify(progress), /"step":"restore".*"itemsTotal":\d+/);
    await first.killHard();

    const second = await worker();
    await waitForStatus(handle, (s) => s.openGate?.name === 'resume-traffic', 180_000);
    await second.killHard(); // and again, while waiting for a person
    await worker();
    await handle.executeUpdate(approveUpdate, { args: [{ gate: 'resume-traffic', by: 'carol' }] });
    const result = await handle.result();

    assert.equal(result.outcome, 'completed');
    assert.ok((result.restored!.attempt ?? 0) >= 2, `the restore was resumed by a retry (attempt ${result.restored!.attempt})`);
    assert.equal(await count('bulk'), expected.bulk, 'the restored data is complete');
    assert.equal(await count('articles'), expected.articles);
    assert.equal(await replicas('mimir-api'), original.api, 'replicas come back exactly');
    assert.equal(await replicas('mimir-worker'), original.worker);
    assert.equal(await readyPods('mimir-production', 'app=mimir-api'), original.api);

    const history = await handle.fetchHistory();
    const scheduled = (type: string) =>
      history.events!.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === type).length;
    assert.equal(scheduled('fence'), 1, 'fenced once');
    assert.equal(scheduled('terminateClientSessions'), 1);
    assert.equal(scheduled('dumpDatabase'), 1, 'one safety backup');
    assert.equal(scheduled('restoreDump'), 1, 'one restore, resumed by its retry');
    const manifest = JSON.parse(readFileSync(join(process.env.MIMIR_PRIMARY_BACKUP_DIR!, `${result.plan.safetyBackup}.json`), 'utf8'));
    assert.equal(
      manifest.tables.bulk.rows,
      expected.bulk - Math.floor(expected.bulk / 3),
      'the safety backup holds the damaged state, taken once',
    );
  });

  it('the Temporal server killed and restarted mid-procedure: the procedure completes', async () => {
    await worker();
    const handle = await client.workflow.start<typeof databaseRecoveryWorkflow>('databaseRecoveryWorkflow', {
      taskQueue,
      workflowId: uniqueId('db-recovery-primary-restart'),
      args: [{ site: 'primary', requestedBy: 'alice', source: { backup }, jobs: 2 }],
    });
    await waitForStatus(handle, (s) => s.openGate?.name === 'restore');
    const pid = Number(readFileSync(join(testInstance.stateDir, 'temporal', 'server.pid'), 'utf8'));
    process.kill(pid, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 500));
    const { changed } = await sandboxUp(testInstance);
    assert.equal(changed, true, 'the server was restarted');
    await waitForStatus(handle, (s) => s.openGate?.name === 'restore', 60_000);
    await handle.executeUpdate(approveUpdate, { args: [{ by: 'bob' }] });
    await waitForStatus(handle, (s) => s.openGate?.name === 'resume-traffic', 180_000);
    await handle.executeUpdate(approveUpdate, { args: [{ by: 'carol' }] });
    const result = await handle.result();
    assert.equal(result.outcome, 'completed');
    assert.equal(await count('bulk'), expected.bulk);
  });
});
