// The first procedure, end to end against the real dev server and the real primary: the runbook's
// "Database Connection Issues" with its approval gate.
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import { WorkflowExecutionAlreadyStartedError, WorkflowFailedError } from '@temporalio/client';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import type pg from 'pg';
import { rootMessage } from '../../workflows/lib/journal.js';
import { approveUpdate } from '../../workflows/messages.js';
import type { connectionCleanupWorkflow } from '../../workflows/remediation.js';
import type { ConnectionCleanupInput, ConnectionCleanupResult } from '../../workflows/types.js';
import { alive, backendPid, closeAll, openSessions, present } from '../helpers/postgres.js';
import { startReceiver } from '../helpers/receiver.js';
import { assertRefused, sandboxProfile, testWorker, uniqueId, waitForStatus, type TestWorker } from '../helpers/temporal.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);

function start(w: TestWorker, input: Partial<ConnectionCleanupInput>, workflowId = uniqueId('connection-cleanup')) {
  return w.client.workflow.start<typeof connectionCleanupWorkflow>('connectionCleanupWorkflow', {
    taskQueue: w.taskQueue,
    workflowId,
    args: [{ site: 'primary', requestedBy: 'alice', ...input }],
  });
}

async function failureOf(p: Promise<unknown>): Promise<{ message: string; type?: string }> {
  const err = await p.then(
    () => assert.fail('expected the workflow to fail'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof WorkflowFailedError, `expected WorkflowFailedError, got ${String(err)}`);
  let cause: unknown = err;
  while (cause instanceof Error && cause.cause instanceof Error) cause = cause.cause;
  return { message: rootMessage(err), type: (cause as { type?: string }).type };
}

describe('connection cleanup (Database Connection Issues)', () => {
  let idle: pg.Client[] = [];
  let fresh: pg.Client[] = [];
  let busy: pg.Client[] = [];
  let idlePids: number[] = [];
  let ping: NodeJS.Timeout | undefined;
  const app = uniqueId('leaky-app');

  beforeEach(async () => {
    idle = await openSessions(3, app);
    idlePids = await Promise.all(idle.map(backendPid)); // before the wait: any query resets the idle clock
    await sleep(2500); // these three are now idle for more than 2s
    fresh = await openSessions(1, app);
    // A healthy pooled session: used every half second, so never idle for 2s.
    ping = setInterval(() => void fresh[0]!.query('SELECT 1').catch(() => undefined), 500);
    busy = await openSessions(1, app);
    void busy[0]!.query('SELECT pg_sleep(20)').catch(() => undefined); // active, not idle
  });

  afterEach(async () => {
    clearInterval(ping);
    await closeAll([...idle, ...fresh, ...busy]);
  });

  it('plans, waits for a second person, terminates exactly the idle sessions, verifies, and journals every step', async () => {
    const w = await testWorker();
    const result: ConnectionCleanupResult = await w.run(async () => {
      const handle = await start(w, { idleFor: '2s', incidentId: 'INC-42', severity: 'SEV-2' });
      const waiting = await waitForStatus(handle, (s) => s.openGate?.name === 'terminate');
      assert.equal(waiting.phase, 'awaiting-approval');
      const planned = (waiting.openGate!.details.sessions as { pid: number }[]).map((s) => s.pid);
      assert.deepEqual(sorted(planned), sorted(idlePids));
      assert.deepEqual(await present(idlePids), sorted(idlePids), 'nothing is terminated before approval');
      await idle[2]!.query('SELECT 1'); // this session wakes up between the plan and the approval

      await handle.executeUpdate(approveUpdate, { args: [{ gate: 'terminate', by: 'bob', comment: 'leak confirmed' }] });
      const r = await handle.result();
      const history = historyToJSON(await handle.fetchHistory());
      const password = new URL(process.env.MIMIR_PRIMARY_DATABASE_URL!).password;
      assert.ok(password.length > 8 && !history.includes(password), 'the database password never enters workflow history');
      // Refresh the committed replay history with: MIMIR_RECORD_HISTORY=1 npm test
      if (process.env.MIMIR_RECORD_HISTORY) writeFileSync('test/replay/histories/connection-cleanup.json', history);
      return r;
    });

    assert.equal(result.outcome, 'completed');
    assert.deepEqual(sorted(result.terminated), sorted(idlePids.slice(0, 2)));
    assert.deepEqual(result.skipped, [{ pid: idlePids[2], reason: 'no longer idle' }], 'a session active since the plan is spared');
    assert.equal(await alive(idle[0]!), false, 'idle sessions are terminated');
    assert.equal(await alive(idle[1]!), false);
    assert.ok(await alive(idle[2]!));
    assert.ok(await alive(fresh[0]!), 'a session idle for less than idleFor is spared');
    assert.ok(result.before.total >= 5);
    assert.deepEqual(
      result.journal.map((e) => [e.step, e.outcome, e.actor]),
      [
        ['resolve-site', 'succeeded', 'mimir-recovery'],
        ['check-database', 'succeeded', 'mimir-recovery'],
        ['count-connections', 'succeeded', 'mimir-recovery'],
        ['find-idle-sessions', 'succeeded', 'mimir-recovery'],
        ['gate:terminate', 'approved', 'bob'],
        ['terminate-sessions', 'succeeded', 'mimir-recovery'],
        ['verify', 'succeeded', 'mimir-recovery'],
      ],
    );
    for (const e of result.journal) assert.ok(e.endedAt && e.endedAt >= e.startedAt, `${e.step} has start and end`);
    assert.equal((result.journal[4]!.details!.approvals as { comment: string }[])[0]!.comment, 'leak confirmed');
  });

  it('a dry run returns the plan and terminates nothing', async () => {
    const w = await testWorker();
    const result = await w.run(async () => (await start(w, { idleFor: '2s', dryRun: true })).result());
    assert.equal(result.outcome, 'dry-run');
    assert.equal(result.candidates.length, 3);
    assert.deepEqual(await present(idlePids), sorted(idlePids));
  });

  it('an unanswered gate escalates to the webhook, then is rejected at its deadline; nothing is terminated', async () => {
    const receiver = await startReceiver();
    try {
      const w = await testWorker({
        profile: sandboxProfile({ notify: { webhookUrl: { env: 'MIMIR_NOTIFY_WEBHOOK_URL' } } }),
        env: { MIMIR_NOTIFY_WEBHOOK_URL: receiver.url },
      });
      const result = await w.run(async () =>
        (await start(w, { idleFor: '2s', approval: { escalateAfter: '1s', deadline: '3s' } })).result(),
      );
      assert.equal(result.outcome, 'rejected');
      const gate = result.journal.find((e) => e.step === 'gate:terminate')!;
      assert.equal(gate.outcome, 'timed-out');
      assert.ok(result.journal.some((e) => e.step === 'escalate:terminate'));
      assert.equal(receiver.received.length, 1);
      assert.equal(receiver.received[0]!.kind, 'escalation');
      assert.match(String(receiver.received[0]!.subject), /gate 'terminate' awaits a decision/);
      assert.equal((await present(idlePids)).length, 3, 'a timed-out gate changes nothing');
    } finally {
      await receiver.close();
    }
  });

  it('refuses an approver who is not on the profile list, and the requester, before anything changes', async () => {
    const w = await testWorker();
    await w.run(async () => {
      const handle = await start(w, { idleFor: '2s' });
      await waitForStatus(handle, (s) => s.openGate?.name === 'terminate');
      await assertRefused(
        handle.executeUpdate(approveUpdate, { args: [{ by: 'mallory' }] }),
        /'mallory' is not an approver of gate 'terminate' \(approvers: alice, bob, carol\)/,
      );
      await assertRefused(handle.executeUpdate(approveUpdate, { args: [{ by: 'alice' }] }), /'alice' requested this procedure/);
      assert.equal((await present(idlePids)).length, 3);
      await handle.terminate('test done');
    });
  });

  it('rejects bad input naming the field, before any side effect', async () => {
    const w = await testWorker();
    await w.run(async () => {
      const bad = await failureOf(start(w, { idleFor: 'soon' }).then((h) => h.result()));
      assert.equal(bad.type, 'InvalidInputError');
      assert.match(bad.message, /idleFor: must be a positive duration/);
      const badSite = await failureOf(start(w, { site: 'Prod!' }).then((h) => h.result()));
      assert.match(badSite.message, /site: must be a lowercase name/);
      const noRequester = await failureOf(start(w, { requestedBy: ' ' }).then((h) => h.result()));
      assert.match(noRequester.message, /requestedBy: must name the person/);
      const unknown = await failureOf(start(w, { site: 'staging', idleFor: '2s' }).then((h) => h.result()));
      assert.equal(unknown.type, 'UnknownSiteError');
      assert.match(unknown.message, /site: 'staging' is not defined in profile 'mimir-sandbox' \(known sites: primary, dr\)/);
    });
    assert.equal((await present(idlePids)).length, 3, 'refused input changes nothing on the database');
  });

  it('a second start for the same site and incident is refused, not doubled', async () => {
    const w = await testWorker();
    await w.run(async () => {
      const id = uniqueId('connection-cleanup-primary-INC');
      const first = await start(w, { idleFor: '2s' }, id);
      await assert.rejects(start(w, { idleFor: '2s' }, id), WorkflowExecutionAlreadyStartedError);
      await first.terminate('test done');
    });
  });
});
