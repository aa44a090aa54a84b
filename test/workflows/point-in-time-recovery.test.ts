// True point-in-time recovery of the test primary (base backup + WAL archive replay), with writes
// running before and after the target. Runs last among the workflow tests: it replaces the primary's
// data directory (the replication slot of the DR standby does not survive that, as in production).
import { WorkflowFailedError } from '@temporalio/client';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import pg from 'pg';
import { createActivities } from '../../activities/index.js';
import type { databaseRecoveryWorkflow } from '../../workflows/database-recovery.js';
import { rootMessage } from '../../workflows/lib/journal.js';
import { approveUpdate } from '../../workflows/messages.js';
import { admin } from '../helpers/kubernetes.js';
import { sandboxProfile, testWorker, uniqueId, waitForStatus, type TestWorker } from '../helpers/temporal.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const replicas = async (name: string) =>
  (await admin().apps.readNamespacedDeployment({ name, namespace: 'mimir-production' })).spec!.replicas;

function start(w: TestWorker, targetTime: string) {
  return w.client.workflow.start<typeof databaseRecoveryWorkflow>('databaseRecoveryWorkflow', {
    taskQueue: w.taskQueue,
    workflowId: uniqueId('db-recovery-primary-pitr'),
    args: [{ site: 'primary', requestedBy: 'alice', source: { targetTime } }],
  });
}

/** Inserts a row every 50 ms until stopped; records when each insert started and when its commit was acknowledged. */
function writer(tag: string) {
  const rows: { url: string; startedAt: number; ackAt?: number }[] = [];
  let running = true;
  const done = (async () => {
    const c = new pg.Client({ connectionString: process.env.MIMIR_PRIMARY_DATABASE_URL });
    await c.connect();
    for (let i = 0; running; i++) {
      const row: (typeof rows)[number] = { url: `${tag}-${i}`, startedAt: Date.now() };
      rows.push(row);
      await c.query(`INSERT INTO articles (title, url, source, content, published_at) VALUES ('pitr', $1, 'test', 'x', now())`, [row.url]);
      row.ackAt = Date.now();
      await sleep(50);
    }
    await c.end();
  })();
  return {
    rows,
    stop: async () => {
      running = false;
      await done;
    },
  };
}

describe('point-in-time recovery (base backup + WAL replay)', () => {
  const acts = createActivities({ profile: sandboxProfile(), env: process.env });
  const mock = new MockActivityEnvironment({}, { logger: new DefaultLogger('ERROR') });
  let baseFinishedAt: string;

  before(async () => {
    const base = (await mock.run(acts.baseBackup, { site: 'primary', name: uniqueId('base') })) as Awaited<
      ReturnType<typeof acts.baseBackup>
    >;
    baseFinishedAt = base.finishedAt;
  });

  it('refuses a target in the future, before the oldest base backup, or malformed, with nothing fenced', async () => {
    const w = await testWorker();
    const apiBefore = await replicas('mimir-api');
    await w.run(async () => {
      const failure = async (t: string) => {
        const e = await (await start(w, t)).result().catch((err: unknown) => err);
        assert.ok(e instanceof WorkflowFailedError);
        return rootMessage(e);
      };
      assert.match(await failure(new Date(Date.now() + 3_600_000).toISOString()), /source\.targetTime: .* is in the future/);
      assert.match(
        await failure(new Date(Date.parse(baseFinishedAt) - 3_600_000).toISOString()),
        /is before the oldest base backup \(finished /,
      );
      assert.match(await failure('2026-12-03 17:05'), /source.targetTime: must be an ISO 8601 timestamp with a time zone/);
      assert.match(await failure('yesterday'), /source.targetTime: must be an ISO 8601 timestamp with a time zone/);
    });
    assert.equal(await replicas('mimir-api'), apiBefore);
  });

  it('restores the database as it was at the target: writes acknowledged before it are there, none started after it', async function () {
    this.timeout(600_000);
    const original = { api: await replicas('mimir-api'), worker: await replicas('mimir-worker') };
    const tag = uniqueId('pitr');
    const load = writer(tag);
    await sleep(2500);
    const target = new Date();
    await sleep(2500);
    await load.stop();
    // The same instant written in another time zone: the plan states it in UTC.
    const offset = new Date(target.getTime() + 3_600_000).toISOString().replace('Z', '+01:00');

    const w = await testWorker();
    const result = await w.run(async () => {
      const handle = await start(w, offset);
      const gate = await waitForStatus(handle, (s) => s.openGate?.name === 'restore', 120_000);
      const plan = gate.openGate!.details as { pointInTime: { targetTime: string; walFiles: number } };
      assert.equal(plan.pointInTime.targetTime, target.toISOString(), 'the target is normalised to UTC');
      await handle.executeUpdate(approveUpdate, { args: [{ by: 'bob' }] });
      await waitForStatus(handle, (s) => s.openGate?.name === 'resume-traffic', 300_000);
      await handle.executeUpdate(approveUpdate, { args: [{ by: 'carol' }] });
      return handle.result();
    });
    assert.equal(result.outcome, 'completed');

    const c = new pg.Client({ connectionString: process.env.MIMIR_PRIMARY_DATABASE_URL });
    await c.connect();
    const present = new Set(
      (await c.query<{ url: string }>('SELECT url FROM articles WHERE url LIKE $1', [`${tag}-%`])).rows.map((r) => r.url),
    );
    await c.end();
    const before = load.rows.filter((r) => r.ackAt !== undefined && r.ackAt < target.getTime() - 5);
    const after = load.rows.filter((r) => r.startedAt > target.getTime() + 5);
    assert.ok(before.length > 10 && after.length > 10, 'writes ran on both sides of the target');
    assert.deepEqual(
      before.filter((r) => !present.has(r.url)).map((r) => r.url),
      [],
      'every write acknowledged before the target is recovered',
    );
    assert.deepEqual(
      after.filter((r) => present.has(r.url)).map((r) => r.url),
      [],
      'no write started after the target is recovered',
    );

    assert.ok(result.restored!.lastCommitAt! <= target.toISOString());
    assert.ok(result.rpoSeconds !== undefined && result.rpoSeconds >= 0 && result.rpoSeconds < 5, `RPO ${result.rpoSeconds}s`);
    assert.ok(result.plan.pointInTime!.walFiles >= 1);
    assert.ok(
      existsSync(
        `${process.env.MIMIR_PRIMARY_DATA_DIR}.pre-pitr-${(await import('node:path')).basename(result.plan.safetyBackup).replace(/^safety-/, '')}`,
      ),
      'the replaced data directory is kept',
    );
    assert.equal(await replicas('mimir-api'), original.api);
    assert.equal(await replicas('mimir-worker'), original.worker);
  });
});
