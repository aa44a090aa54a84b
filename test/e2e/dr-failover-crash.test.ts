// A failover survives its worker: the worker process is SIGKILLed as each step begins (at the gate,
// while fencing, catching up, promoting, scaling up, switching traffic, verifying) and a new one
// takes over every time. The failover completes, every acknowledged write is on the promoted
// standby, and nothing is done twice (one fence, one promotion).
import { Client, Connection } from '@temporalio/client';
import assert from 'node:assert/strict';
import type { drFailoverWorkflow } from '../../workflows/dr-failover.js';
import { approveUpdate } from '../../workflows/messages.js';
import { buildTestBundle, workerFleet } from '../helpers/cli.js';
import { ensureDrPair, siteSql, startWriter } from '../helpers/dr.js';
import { admin } from '../helpers/kubernetes.js';
import { uniqueId, waitForStatus } from '../helpers/temporal.js';

/** Each step and the activity it schedules: the worker is killed as soon as the server has scheduled it (read from the history, not through the worker). */
const STEPS: [string, string][] = [
  ['fence-applications', 'fence'],
  ['fence-ingress', 'restrictIngress'],
  ['fence-database', 'fenceDatabase'],
  ['catch-up', 'waitForCatchUp'],
  ['promote', 'promoteStandby'],
  ['scale-up', 'unfence'],
  ['switch-traffic', 'switchTraffic'],
  ['verify', 'checkWritable'],
];

describe('DR failover under failure (the worker killed at each step)', function () {
  this.timeout(900_000);
  const taskQueue = uniqueId('dr-crash');
  let bundle: string;
  let client: Client;
  const fleet = workerFleet(() => ({ MIMIR_TASK_QUEUE: taskQueue, MIMIR_WORKFLOW_BUNDLE: bundle, MIMIR_LOG_LEVEL: 'INFO' }));
  const worker = fleet.start;

  before(async () => {
    await ensureDrPair();
    await siteSql('primary', 'CREATE TABLE IF NOT EXISTS crash_writes (id bigint PRIMARY KEY)');
    await siteSql('primary', 'TRUNCATE crash_writes');
    bundle = await buildTestBundle();
    client = new Client({ connection: await Connection.connect({ address: process.env.TEMPORAL_ADDRESS }) });
  });

  after(async () => {
    await fleet.killAll();
    await ensureDrPair();
    await siteSql('primary', 'DROP TABLE IF EXISTS crash_writes');
  });

  it('completes correctly with a new worker after each kill; nothing destructive runs twice', async () => {
    const writer = startWriter('primary', 'crash_writes');
    while (writer.acknowledged.length < 100) await new Promise((r) => setTimeout(r, 20));
    let current = await worker();
    const handle = await client.workflow.start<typeof drFailoverWorkflow>('drFailoverWorkflow', {
      taskQueue,
      workflowId: uniqueId('dr-failover-primary-crash'),
      args: [{ site: 'primary', drSite: 'dr', requestedBy: 'ic-dave', incidentId: 'INC-7', severity: 'SEV-1' }],
    });
    const killedAt: string[] = [];
    // At the approval gate.
    await waitForStatus(handle, (x) => x.openGate?.name === 'failover', 60_000);
    await current.killHard();
    killedAt.push('gate:failover');
    current = await worker();
    await handle.executeUpdate(approveUpdate, { args: [{ by: 'alice' }] });
    // Then as each step's activity is scheduled.
    for (const [step, activity] of STEPS) {
      const until = Date.now() + 180_000;
      let done = false;
      for (;;) {
        const history = await handle.fetchHistory();
        const events = history.events ?? [];
        if (events.some((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === activity)) break;
        if (events.some((e) => e.workflowExecutionCompletedEventAttributes || e.workflowExecutionFailedEventAttributes)) {
          done = true;
          break;
        }
        if (Date.now() > until) throw new Error(`step ${step} was never scheduled`);
        await new Promise((r) => setTimeout(r, 50));
      }
      if (done) break;
      await current.killHard();
      killedAt.push(step);
      current = await worker();
    }
    const result = await handle.result();
    await writer.stop();

    assert.equal(result.outcome, 'completed', result.error);
    assert.deepEqual(killedAt, ['gate:failover', ...STEPS.map(([step]) => step)], 'the worker was killed at every step');
    const onDr = new Set((await siteSql<{ id: string }>('dr', 'SELECT id FROM crash_writes')).map((r) => Number(r.id)));
    assert.deepEqual(
      writer.acknowledged.filter((id) => !onDr.has(id)),
      [],
      'every acknowledged write is on the promoted standby',
    );
    assert.equal(result.rpo!.bytes, 0);
    assert.ok(result.rtoSeconds! > 0);
    const history = await handle.fetchHistory();
    const scheduled = (type: string) =>
      history.events!.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === type).length;
    assert.equal(scheduled('fence'), 1, 'fenced once');
    assert.equal(scheduled('promoteStandby'), 1, 'promoted once');
    assert.equal(scheduled('switchTraffic'), 1);
    const api = await admin().apps.readNamespacedDeployment({ name: 'mimir-api', namespace: 'mimir-dr' });
    assert.equal(api.spec!.replicas, 3, 'the DR site runs the recorded replicas');
    assert.equal(api.status!.readyReplicas, 3);
  });
});
