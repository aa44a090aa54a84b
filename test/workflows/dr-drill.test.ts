// DR drills against the real test sandbox: the primary's latest base backup and its WAL archive are
// restored into a scratch PostgreSQL cluster, the site's app tier copied into the scratch namespace
// mimir-drill and brought up against it, verified, measured and torn down; from a Temporal Schedule
// through the real CLI, cancelled mid-restore, over its objectives, failing, and with bad input.
import { CancelledFailure, WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { execFileSync } from 'node:child_process';
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import pg from 'pg';
import { createActivities } from '../../activities/index.js';
import type { DrillSchedule } from '../../client/drills.js';
import type { drDrillWorkflow } from '../../workflows/dr-drill.js';
import { rootMessage } from '../../workflows/lib/journal.js';
import type { DrDrillResult, ProcedureStatus } from '../../workflows/types.js';
import { statusQuery } from '../../workflows/messages.js';
import { cli } from '../helpers/cli.js';
import { admin } from '../helpers/kubernetes.js';
import { startReceiver } from '../helpers/receiver.js';
import { sandboxProfile, testWorker, uniqueId, waitForStatus, type TestWorker } from '../helpers/temporal.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function start(w: TestWorker, input: Record<string, unknown> = {}) {
  return w.client.workflow.start<typeof drDrillWorkflow>('drDrillWorkflow', {
    taskQueue: w.taskQueue,
    workflowId: uniqueId('dr-drill-primary'),
    args: [{ site: 'primary', requestedBy: 'drill-bot', ...input } as never],
  });
}

/** Whether any process still runs with the scratch directory on its command line (a postmaster left behind). */
function processesUsing(dir: string): string[] {
  return execFileSync('ps', ['-eo', 'pid,args'], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => l.includes(dir));
}

function scratchDirOf(s: ProcedureStatus): string {
  return s.journal.find((e) => e.step === 'plan')!.details!.scratchDir as string;
}

const DRILL_NS = 'mimir-drill';

/** Every object in the scratch namespace carrying the drill label (of `drillId`, or of any drill). */
async function drillObjects(drillId?: string): Promise<string[]> {
  const a = admin();
  const q = { namespace: DRILL_NS, labelSelector: drillId ? `mimir-recovery.io/drill=${drillId}` : 'mimir-recovery.io/drill' };
  const [d, rs, pods] = await Promise.all([
    a.apps.listNamespacedDeployment(q),
    a.apps.listNamespacedReplicaSet(q),
    a.core.listNamespacedPod(q),
  ]);
  return [...d.items, ...rs.items, ...pods.items].map((o) => `${o.kind ?? ''}${o.metadata!.name!}`);
}

/** Production's deployments as the drill must leave them: replicas and generation. */
async function productionShape() {
  const list = await admin().apps.listNamespacedDeployment({ namespace: 'mimir-production' });
  return Object.fromEntries(list.items.map((d) => [d.metadata!.name!, { replicas: d.spec?.replicas, generation: d.metadata?.generation }]));
}

async function primary<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: process.env.MIMIR_PRIMARY_DATABASE_URL });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

describe('DR drill (restore the latest base backup into a scratch cluster)', () => {
  const acts = createActivities({ profile: sandboxProfile(), env: process.env });
  const mock = new MockActivityEnvironment({}, { logger: new DefaultLogger('ERROR') });

  before(async () => {
    await mock.run(acts.baseBackup, { site: 'primary', name: uniqueId('drill-base') });
    // A commit after the base backup, so the restore has WAL to replay and a newest commit to compare.
    await primary((c) => c.query(`UPDATE articles SET title = title WHERE id = (SELECT min(id) FROM articles)`));
  });

  it('every drill command has --help', async () => {
    for (const cmd of ['schedule', 'pause', 'unpause', 'trigger', 'list', 'delete']) {
      const r = await cli(['drill', cmd, '--help']);
      assert.equal(r.code, 0, `drill ${cmd} --help: ${r.stderr}`);
      assert.match(r.stdout, new RegExp(`^Usage: mimir-recovery drill ${cmd}`));
    }
    assert.match(
      (await cli(['drill', 'schedule', '--site', 'primary', '--cron', '0 3 * * *', '--overlap', 'sometimes'])).stderr,
      /Allowed choices are skip, buffer-one/,
    );
  });

  it('refuses bad input before any change: no activity is scheduled, every bad field is named', async () => {
    const w = await testWorker();
    await w.run(async () => {
      const handle = await start(w, { site: 'Primary', requestedBy: ' ', scratchDir: '/tmp/x' });
      const err = await handle.result().catch((e: unknown) => e);
      assert.ok(err instanceof WorkflowFailedError);
      const message = rootMessage(err);
      assert.match(message, /site: must be a lowercase name/);
      assert.match(message, /requestedBy: must name the person/);
      assert.match(message, /Unrecognized key.*scratchDir/);
      const history = await handle.fetchHistory();
      assert.ok(!history.events!.some((e) => e.activityTaskScheduledEventAttributes), 'no activity may run for a refused input');
    });
  });

  it('runs from its Temporal Schedule (triggered through the CLI), reports RTO and RPO, and leaves nothing behind', async () => {
    const w = await testWorker();
    const env = { MIMIR_TASK_QUEUE: w.taskQueue };
    const production = await productionShape();
    await w.run(async () => {
      try {
        const created = await cli(
          ['drill', 'schedule', '--site', 'primary', '--cron', '0 3 * * *', '--overlap', 'skip', '--as', 'alice'],
          env,
        );
        assert.equal(created.code, 0, created.stderr);
        assert.match(created.stdout, /created schedule dr-drill-primary; next runs: \d{4}-/);
        const again = await cli(
          ['drill', 'schedule', '--site', 'primary', '--cron', '0 4 * * *', '--overlap', 'buffer-one', '--as', 'alice'],
          env,
        );
        assert.match(again.stdout, /updated schedule dr-drill-primary/, again.stderr);

        const trigger = await cli(['drill', 'trigger', '--site', 'primary'], env);
        assert.equal(trigger.code, 0, trigger.stderr);
        let schedule: DrillSchedule | undefined;
        for (let i = 0; i < 600; i++) {
          const listed = await cli(['drill', 'list', '--site', 'primary', '--json'], env);
          assert.equal(listed.code, 0, listed.stderr);
          schedule = (JSON.parse(listed.stdout) as DrillSchedule[])[0];
          if (schedule?.recentRuns[0] && schedule.recentRuns[0].status !== 'RUNNING') break;
          await sleep(500);
        }
        assert.equal(schedule!.cron, '0 4 * * *');
        assert.equal(schedule!.overlap, 'buffer-one');
        const run = schedule!.recentRuns[0]!;
        assert.equal(run.status, 'COMPLETED', JSON.stringify(run));
        assert.match(run.workflowId, /^dr-drill-primary/);
        assert.equal(run.outcome, 'passed');
        assert.ok(run.rtoSeconds! > 0, 'the RTO is measured');
        assert.ok(run.rpoSeconds! >= 0 && run.rpoSeconds! < 300, `the RPO is measured (${run.rpoSeconds}s)`);

        const result = (await w.client.workflow.getHandle(run.workflowId, run.runId).result()) as DrDrillResult;
        assert.deepEqual(result.objectives, { rto: '15m', rpo: '5m' });
        assert.ok(result.verification.tables >= 3);
        assert.ok(result.verification.rows.articles!.restored > 0, 'the restore serves the articles');
        assert.deepEqual(
          result.journal.map((e) => [e.step, e.outcome]),
          [
            ['resolve-site', 'succeeded'],
            ['plan', 'succeeded'],
            ['restore', 'succeeded'],
            ['verify', 'succeeded'],
            ['app', 'succeeded'],
            ['teardown-app', 'succeeded'],
            ['teardown', 'succeeded'],
          ],
        );
        // The app tier came up in the scratch namespace, pointed at the scratch cluster, before the RTO stopped.
        const id = result.drillId;
        assert.equal(result.app!.namespace, DRILL_NS);
        assert.match(result.app!.database, /^127\.0\.0\.1:\d+\/mimir_news$/);
        assert.deepEqual(
          result.app!.deployments.map((d) => [d.name, d.copyOf, d.replicas]),
          [
            [`mimir-api-${id}`, 'mimir-api', 2],
            [`mimir-worker-${id}`, 'mimir-worker', 1],
          ],
        );
        assert.ok(
          result.app!.deployments.every((d) => d.omittedRefs.includes(`${d.copyOf}: env MASTER_KEY`)),
          'no production secret reference is copied',
        );
        assert.ok(result.rtoSeconds * 1000 >= result.app!.durationMs, 'the RTO counts the app tier coming up');
        assert.deepEqual(result.teardown.app, {
          namespace: DRILL_NS,
          selector: `mimir-recovery.io/drill=${id}`,
          deleted: [`mimir-api-${id}`, `mimir-worker-${id}`],
        });
        assert.deepEqual(await drillObjects(id), [], 'nothing labelled with the drill id is left');
        assert.deepEqual(await productionShape(), production, 'production deployments untouched');
        assert.deepEqual({ stopped: result.teardown.stopped, removed: result.teardown.removed }, { stopped: true, removed: true });
        assert.equal(existsSync(result.teardown.scratchDir), false, 'the scratch directory is gone');
        assert.deepEqual(processesUsing(result.teardown.scratchDir), [], 'no scratch server process is left');

        const listed = await cli(['drill', 'list'], env);
        assert.match(listed.stdout, /dr-drill-primary {2}cron '0 4 \* \* \*' {2}overlap buffer-one {2}active/);
        assert.match(listed.stdout, /COMPLETED {2}passed {2}RTO [\d.]+s {2}RPO [\d.]+s/);

        const paused = await cli(['drill', 'pause', '--site', 'primary', '--note', 'maintenance window'], env);
        assert.equal(paused.code, 0, paused.stderr);
        assert.match((await cli(['drill', 'list'], env)).stdout, /PAUSED \(maintenance window\)/);
        assert.equal((await cli(['drill', 'unpause', '--site', 'primary'], env)).code, 0);
        assert.match((await cli(['drill', 'list'], env)).stdout, /buffer-one {2}active/);
      } finally {
        const deleted = await cli(['drill', 'delete', '--site', 'primary'], env);
        assert.equal(deleted.code, 0, deleted.stderr);
      }
      const gone = await cli(['drill', 'pause', '--site', 'primary'], env);
      assert.equal(gone.code, 2);
      assert.match(gone.stderr, /no drill schedule for site primary/);
    });
  });

  it('cancelled mid-restore, still tears down: no scratch server, no scratch directory', async () => {
    // WAL to replay after the base backup, so the restore takes a while (a table written, then dropped).
    await primary(async (c) => {
      await c.query(`CREATE TABLE drill_ballast AS SELECT g, repeat('x', 300) AS pad FROM generate_series(1, 400000) g`);
      await c.query('DROP TABLE drill_ballast');
      await c.query('SELECT pg_switch_wal()');
    });
    const production = await productionShape();
    const w = await testWorker();
    await w.run(async () => {
      const handle: WorkflowHandle<typeof drDrillWorkflow> = await start(w);
      const restoring = await waitForStatus(handle, (s) => s.journal.some((e) => e.step === 'restore' && e.outcome === 'running'), 60_000);
      const dir = scratchDirOf(restoring);
      for (let i = 0; i < 100 && !existsSync(dir); i++) await sleep(100);
      assert.ok(existsSync(dir), 'the restore has begun writing its scratch directory');
      await handle.cancel();
      const err = await handle.result().catch((e: unknown) => e);
      assert.ok(
        err instanceof WorkflowFailedError && err.cause instanceof CancelledFailure,
        `cancelled, got ${String(err)}: ${rootMessage(err)}`,
      );
      const s = await handle.query(statusQuery);
      const steps = Object.fromEntries(s.journal.map((e) => [e.step, e.outcome]));
      assert.equal(steps.restore, 'failed', 'the restore was interrupted, not finished');
      assert.equal(steps.verify, undefined);
      assert.equal(steps.app, undefined, 'the app tier never started');
      assert.equal(steps.teardown, 'succeeded');
      assert.equal(steps['teardown-app'], 'succeeded');
      assert.deepEqual(await drillObjects(), [], 'the scratch namespace holds no drill objects');
      assert.deepEqual(await productionShape(), production, 'production deployments untouched');
      assert.equal(existsSync(dir), false, 'the scratch directory is gone');
      assert.deepEqual(processesUsing(dir), [], 'no scratch server process is left');
    });
  });

  it('a drill over its objectives notifies the webhook and reports what it missed', async () => {
    const receiver = await startReceiver();
    try {
      const w = await testWorker({
        profile: sandboxProfile({ notify: { webhookUrl: { env: 'MIMIR_NOTIFY_WEBHOOK_URL' } }, objectives: { rto: '1ms', rpo: '1h' } }),
        env: { MIMIR_NOTIFY_WEBHOOK_URL: receiver.url },
      });
      const result = await w.run(async () => {
        const handle = await start(w);
        const r = await handle.result();
        const history = historyToJSON(await handle.fetchHistory());
        const password = new URL(process.env.MIMIR_PRIMARY_DATABASE_URL!).password;
        assert.ok(password.length > 8 && !history.includes(password), 'the database password never enters workflow history');
        // Refresh the committed replay history with: MIMIR_RECORD_HISTORY=1 npx mocha test/workflows/dr-drill.test.ts
        if (process.env.MIMIR_RECORD_HISTORY) writeFileSync('test/replay/histories/dr-drill.json', history);
        return r;
      });
      assert.equal(result.outcome, 'missed-objectives');
      assert.equal(result.missed.length, 1);
      assert.match(result.missed[0]!, /^RTO [\d.]+s is over the objective 1ms$/);
      assert.equal(receiver.received.length, 1);
      assert.equal(receiver.received[0]!.kind, 'alert');
      assert.match(String(receiver.received[0]!.subject), /DR drill on primary needs attention/);
      assert.match(String(receiver.received[0]!.text), /missed its objectives: RTO/);
      assert.equal(existsSync(result.teardown.scratchDir), false);
    } finally {
      await receiver.close();
    }
  });

  it('a drill that cannot run fails visibly and notifies (a site without a server to drill on, an unknown site)', async () => {
    const receiver = await startReceiver();
    try {
      // The sandbox's DR site has a server (failback rebuilds it); this profile's DR site has none.
      const profile = sandboxProfile({ notify: { webhookUrl: { env: 'MIMIR_NOTIFY_WEBHOOK_URL' } } });
      const { server: _server, ...database } = profile.sites.dr!.database;
      profile.sites = { ...profile.sites, dr: { ...profile.sites.dr!, database } };
      const w = await testWorker({ profile, env: { MIMIR_NOTIFY_WEBHOOK_URL: receiver.url } });
      const [err, unknown] = await w.run(async () => {
        const fail = async (site: string) => (await start(w, { site })).result().catch((e: unknown) => e);
        return [await fail('dr'), await fail('nowhere')];
      });
      assert.ok(err instanceof WorkflowFailedError);
      assert.match(rootMessage(err), /sites\.dr\.database\.server: not configured/);
      assert.match(String(receiver.received[0]!.subject), /DR drill on dr FAILED/);
      assert.match(String(receiver.received[0]!.text), /failed: sites\.dr\.database\.server: not configured/);
      assert.match(rootMessage(unknown), /site: 'nowhere' is not defined in profile 'mimir-sandbox'/);
      assert.equal(receiver.received.length, 2, 'one notification per failed drill; one that cannot even resolve its site notifies too');
      assert.match(String(receiver.received[1]!.subject), /DR drill on nowhere FAILED/);
    } finally {
      await receiver.close();
    }
  });
});
