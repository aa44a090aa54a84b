// Database recovery end to end: the real test primary, the real API server's mimir-production
// deployments, the real dev server. Restore from a dump taken earlier, with both gates.
import { WorkflowFailedError } from '@temporalio/client';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import assert from 'node:assert/strict';
import { existsSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { createActivities } from '../../activities/index.js';
import type { databaseRecoveryWorkflow } from '../../workflows/database-recovery.js';
import { rootMessage } from '../../workflows/lib/journal.js';
import { approveUpdate, retryUpdate, statusQuery } from '../../workflows/messages.js';
import { renderReport } from '../../client/render.js';
import type { DatabaseRecoveryInput } from '../../workflows/types.js';
import { admin, readyPods } from '../helpers/kubernetes.js';
import { sql } from '../helpers/postgres.js';
import { assertRefused, sandboxProfile, testWorker, uniqueId, waitForStatus, type TestWorker } from '../helpers/temporal.js';

const replicas = async (name: string) =>
  (await admin().apps.readNamespacedDeployment({ name, namespace: 'mimir-production' })).spec!.replicas;

function start(w: TestWorker, input: Partial<DatabaseRecoveryInput>) {
  return w.client.workflow.start<typeof databaseRecoveryWorkflow>('databaseRecoveryWorkflow', {
    taskQueue: w.taskQueue,
    workflowId: uniqueId('db-recovery-primary'),
    args: [{ site: 'primary', requestedBy: 'alice', source: { backup: 'none' }, ...input }],
  });
}

describe('database recovery (restore from a backup)', () => {
  const acts = createActivities({ profile: sandboxProfile(), env: process.env });
  const mock = new MockActivityEnvironment({}, { logger: new DefaultLogger('ERROR') });
  const backup = uniqueId('nightly');
  let articlesAtBackup = 0;

  before(async () => {
    const manifest = (await mock.run(acts.dumpDatabase, { site: 'primary', name: backup, jobs: 2 })) as Awaited<
      ReturnType<typeof acts.dumpDatabase>
    >;
    articlesAtBackup = manifest.tables.articles!.rows;
    assert.ok(articlesAtBackup >= 20000);
    const again = (await mock.run(acts.dumpDatabase, { site: 'primary', name: backup })) as typeof manifest;
    assert.equal(again.createdAt, manifest.createdAt, 'a backup is written once, never overwritten');
  });

  it('fences, backs up, restores, verifies, waits for approval, and unfences exactly as before', async () => {
    const before = { api: await replicas('mimir-api'), worker: await replicas('mimir-worker') };
    await sql(`DELETE FROM articles WHERE id % 10 = 0`); // the incident: data lost after the backup
    await sql(`UPDATE users SET email = 'pwned-' || id WHERE id < 50`);
    const w = await testWorker();
    let report = '';
    const result = await w.run(async () => {
      const handle = await start(w, { source: { backup }, incidentId: 'INC-9', jobs: 2 });
      const waiting = await waitForStatus(handle, (s) => s.openGate?.name === 'restore');
      const plan = waiting.openGate!.details as { backup: { name: string }; deployments: { name: string; replicas: number }[] };
      assert.equal(plan.backup.name, backup);
      assert.deepEqual(
        plan.deployments.map((d) => [d.name, d.replicas]),
        [
          ['mimir-api', before.api],
          ['mimir-worker', before.worker],
        ],
      );
      assert.equal(await replicas('mimir-api'), before.api, 'nothing is fenced before approval');
      await handle.executeUpdate(approveUpdate, { args: [{ gate: 'restore', by: 'bob', comment: 'restore approved' }] });

      const verified = await waitForStatus(handle, (s) => s.openGate?.name === 'resume-traffic', 120_000);
      assert.equal(await replicas('mimir-api'), 0, 'writers are fenced while the database is restored');
      assert.equal(await replicas('mimir-worker'), 0);
      assert.equal((verified.openGate!.details.verification as { ok: boolean }).ok, true);
      const [{ n }] = (await sql<{ n: string }>('SELECT count(*) AS n FROM articles')) as [{ n: string }];
      assert.equal(Number(n), articlesAtBackup, 'the restored database has the backup data');
      await handle.executeUpdate(approveUpdate, { args: [{ gate: 'resume-traffic', by: 'carol' }] });
      const r = await handle.result();
      report = renderReport({ status: await handle.query(statusQuery), execution: 'COMPLETED', result: r });
      return r;
    });

    assert.equal(result.outcome, 'completed');
    assert.match(report, /^# Incident Report: database-recovery on primary \(INC-9\)/);
    assert.match(report, /- \*\*RTO\*\* \(fence to healthy\): [\d.]+ s/);
    assert.match(report, /- restore: approved by bob/);
    assert.match(report, /restored from backup nightly-/);
    assert.equal(await replicas('mimir-api'), before.api);
    assert.equal(await replicas('mimir-worker'), before.worker);
    assert.equal(await readyPods('mimir-production', 'app=mimir-api'), before.api, 'pods are back and ready');
    assert.equal((await sql(`SELECT 1 FROM users WHERE email LIKE 'pwned-%'`)).length, 0);
    assert.deepEqual(
      result.approvals.map((a) => [a.gate, a.by]),
      [
        ['restore', 'bob'],
        ['resume-traffic', 'carol'],
      ],
    );
    assert.ok(result.rtoSeconds! > 0 && result.rpoSeconds! >= 0);
    assert.ok(result.restored!.bytes! > 0 && result.restored!.mbPerSecond! > 0);
    assert.deepEqual(
      result.journal.map((e) => [e.step, e.outcome]),
      [
        ['resolve-site', 'succeeded'],
        ['preflight', 'succeeded'],
        ['gate:restore', 'approved'],
        ['fence', 'succeeded'],
        ['end-sessions', 'succeeded'],
        ['safety-backup', 'succeeded'],
        ['restore', 'succeeded'],
        ['verify', 'succeeded'],
        ['gate:resume-traffic', 'approved'],
        ['unfence', 'succeeded'],
        ['health', 'succeeded'],
      ],
    );
    const safety = join(process.env.MIMIR_PRIMARY_BACKUP_DIR!, `${result.plan.safetyBackup}.json`);
    assert.ok(existsSync(safety), 'the safety backup is kept');
  });

  it('a failure after fencing waits at on-failure; retry runs the failed step again and the procedure completes', async () => {
    const dir = join(process.env.MIMIR_PRIMARY_BACKUP_DIR!, backup);
    const original = await replicas('mimir-api');
    const w = await testWorker();
    const result = await w.run(async () => {
      const handle = await start(w, { source: { backup }, jobs: 2 });
      await waitForStatus(handle, (s) => s.openGate?.name === 'restore');
      renameSync(dir, `${dir}.away`); // the backup volume goes away after the plan
      try {
        await handle.executeUpdate(approveUpdate, { args: [{ by: 'bob' }] });
        const failed = await waitForStatus(handle, (s) => s.openGate?.name === 'on-failure', 120_000);
        assert.equal(failed.openGate!.details.failedStep, 'restore');
        assert.equal(await replicas('mimir-api'), 0, 'stopped in a state a person can resume from: still fenced');
        await assertRefused(handle.executeUpdate(approveUpdate, { args: [{ by: 'mallory' }] }), /not an approver/);
      } finally {
        renameSync(`${dir}.away`, dir);
      }
      await handle.executeUpdate(retryUpdate, { args: [{ by: 'bob', comment: 'volume remounted' }] });
      await waitForStatus(handle, (s) => s.openGate?.name === 'resume-traffic', 120_000);
      await handle.executeUpdate(approveUpdate, { args: [{ by: 'carol' }] });
      return handle.result();
    });
    assert.equal(result.outcome, 'completed');
    const steps = result.journal.map((e) => `${e.step}:${e.outcome}`);
    assert.deepEqual(steps.slice(steps.indexOf('safety-backup:succeeded') + 1, steps.indexOf('verify:succeeded') + 1), [
      'restore:failed',
      'gate:on-failure:retry',
      'restore:succeeded',
      'verify:succeeded',
    ]);
    assert.equal(steps.filter((x) => x.startsWith('fence:')).length, 1, 'the fence is not repeated');
    assert.equal(await replicas('mimir-api'), original);
  });

  it('an unanswered on-failure gate rolls back at its deadline: the safety backup is restored and the site unfenced', async () => {
    const dir = join(process.env.MIMIR_PRIMARY_BACKUP_DIR!, backup);
    const marker = uniqueId('written-after-backup');
    await sql(`INSERT INTO articles (title, url, source, content, published_at) VALUES ('x', $1, 'test', 'x', now())`, [marker]);
    const original = { api: await replicas('mimir-api'), worker: await replicas('mimir-worker') };
    const w = await testWorker();
    const result = await w.run(async () => {
      const handle = await start(w, { source: { backup }, jobs: 2, onFailureDeadline: '2s' });
      await waitForStatus(handle, (s) => s.openGate?.name === 'restore');
      renameSync(dir, `${dir}.away`);
      try {
        await handle.executeUpdate(approveUpdate, { args: [{ by: 'bob' }] });
        return await handle.result();
      } finally {
        renameSync(`${dir}.away`, dir);
      }
    });
    assert.equal(result.outcome, 'rolled-back');
    assert.match(result.error!, /backup '.*' does not exist/);
    assert.equal((await sql('SELECT 1 FROM articles WHERE url = $1', [marker])).length, 1, 'the state before the recovery is back');
    assert.equal(await replicas('mimir-api'), original.api);
    assert.equal(await replicas('mimir-worker'), original.worker);
    const steps = result.journal.map((e) => `${e.step}:${e.outcome}`);
    assert.ok(steps.includes('gate:on-failure:timed-out'));
    assert.deepEqual(
      steps.filter((x) => x.startsWith('undo:')),
      ['undo:restore:compensated', 'undo:fence:compensated'],
    );
  });

  it('a dry run returns the plan and fences nothing', async () => {
    const w = await testWorker();
    const result = await w.run(async () => (await start(w, { source: { backup }, dryRun: true })).result());
    assert.equal(result.outcome, 'dry-run');
    assert.equal(result.plan.backup!.tables.articles!.rows, articlesAtBackup);
    assert.ok(result.plan.deployments.every((d) => d.replicas > 0));
    assert.equal(await replicas('mimir-api'), result.plan.deployments[0]!.replicas);
  });

  it('refuses an unknown backup or a malformed name in preflight, with nothing fenced', async () => {
    const w = await testWorker();
    const apiBefore = await replicas('mimir-api');
    await w.run(async () => {
      const unknown = await (await start(w, { source: { backup: 'no-such-backup' } })).result().catch((e: unknown) => e);
      assert.ok(unknown instanceof WorkflowFailedError);
      assert.match(rootMessage(unknown), /source\.backup: 'no-such-backup' does not exist for site primary/);
      const bad = await (await start(w, { source: { backup: '../etc/passwd' } })).result().catch((e: unknown) => e);
      assert.ok(bad instanceof WorkflowFailedError);
      assert.match(rootMessage(bad), /source\.backup: must name a backup/);
    });
    assert.equal(await replicas('mimir-api'), apiBefore);
  });

  it('refuses a database that does not exist in preflight, with nothing fenced', async () => {
    const profile = sandboxProfile();
    const primary = profile.sites.primary!;
    const url = new URL(process.env.MIMIR_PRIMARY_DATABASE_URL!);
    url.pathname = '/no_such_db';
    const w = await testWorker({
      profile: { ...profile, sites: { ...profile.sites, primary: { ...primary, database: { ...primary.database, name: 'no_such_db' } } } },
      env: { MIMIR_PRIMARY_DATABASE_URL: url.toString() },
    });
    const apiBefore = await replicas('mimir-api');
    const err = await w.run(async () => (await start(w, { source: { backup } })).result().catch((e: unknown) => e));
    assert.ok(err instanceof WorkflowFailedError);
    assert.match(rootMessage(err), /database no_such_db is unreachable: database "no_such_db" does not exist/);
    assert.ok(!rootMessage(err).includes(url.password), 'the password is not in the error');
    assert.equal(await replicas('mimir-api'), apiBefore);
  });
});
