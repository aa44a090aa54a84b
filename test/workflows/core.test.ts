// The procedure core in the real workflow sandbox: multi-approver gates and the saga.
import { WorkflowUpdateFailedError } from '@temporalio/client';
import assert from 'node:assert/strict';
import { approveUpdate, rejectUpdate } from '../../workflows/messages.js';
import type { gateProbeWorkflow, sagaProbeWorkflow } from './fixtures/index.js';
import { assertRefused, testWorker, uniqueId, waitForStatus, type TestWorker } from '../helpers/temporal.js';

/** Starts the gate probe for requester alice and waits until its gate is open. */
async function openProbeGate(w: TestWorker, approvers: string[], required: number) {
  const handle = await w.client.workflow.start<typeof gateProbeWorkflow>('gateProbeWorkflow', {
    taskQueue: w.taskQueue,
    workflowId: uniqueId('gate-probe'),
    args: [{ requestedBy: 'alice', approvers, required, escalateAfter: '1h', deadline: '2h' }],
  });
  await waitForStatus(handle, (s) => s.openGate?.name === 'release');
  return handle;
}

describe('procedure core', () => {
  it('a two-approver gate needs two distinct approvers, neither the requester, and journals both', async () => {
    const w = await testWorker();
    await w.run(async () => {
      const handle = await openProbeGate(w, ['bob', 'carol', 'alice'], 2);
      await assertRefused(
        handle.executeUpdate(approveUpdate, { args: [{ by: 'alice' }] }),
        /requested this procedure and may not approve it/,
      );
      const first = await handle.executeUpdate(approveUpdate, { args: [{ by: 'bob', comment: 'evidence reviewed' }] });
      assert.deepEqual(first, { gate: 'release', decision: 'approve', by: 'bob', remaining: 1 });
      await assertRefused(handle.executeUpdate(approveUpdate, { args: [{ by: 'bob' }] }), /has already approved/);
      await handle.executeUpdate(approveUpdate, { args: [{ gate: 'release', by: 'carol' }] });
      const result = await handle.result();
      assert.equal(result.outcome, 'approved');
      assert.deepEqual(
        result.approvals.map((a) => a.by),
        ['bob', 'carol'],
      );
      const gate = result.journal.find((e) => e.step === 'gate:release')!;
      assert.equal(gate.outcome, 'approved');
      assert.equal(gate.actor, 'bob, carol');
    });
  });

  it('a gate that is not open refuses decisions, and the requester may still withdraw by rejecting', async () => {
    const w = await testWorker();
    await w.run(async () => {
      const handle = await openProbeGate(w, ['bob'], 1);
      const err = await handle.executeUpdate(approveUpdate, { args: [{ gate: 'restore', by: 'bob' }] }).catch((e: unknown) => e);
      assert.ok(err instanceof WorkflowUpdateFailedError);
      assert.match(String((err.cause as Error).message), /gate 'restore' is not open; the open gate is 'release'/);
      await assertRefused(handle.executeUpdate(rejectUpdate, { args: [{ by: 'mallory' }] }), /'mallory' is not an approver/);
      await handle.executeUpdate(rejectUpdate, { args: [{ by: 'alice', comment: 'false alarm' }] });
      const result = await handle.result();
      assert.equal(result.outcome, 'rejected');
      assert.equal(result.rejectedBy, 'alice');
      await assert.rejects(handle.executeUpdate(approveUpdate, { args: [{ by: 'bob' }] }));
    });
  });

  it('the saga compensates newest first, journals each undo, and goes on past an undo that fails', async () => {
    const w = await testWorker();
    await w.run(async () => {
      const result = await w.client.workflow.execute<typeof sagaProbeWorkflow>('sagaProbeWorkflow', {
        taskQueue: w.taskQueue,
        workflowId: uniqueId('saga-probe'),
        args: [{ failStep: 'restore', failCompensation: 'backup' }],
      });
      assert.deepEqual(result.undone, ['restore', 'fence']);
      assert.deepEqual(result.failed, ['backup']);
      const steps = result.journal.map((e) => `${e.step}:${e.outcome}`);
      assert.deepEqual(steps, [
        'fence:succeeded',
        'backup:succeeded',
        'restore:failed',
        'undo:restore:compensated',
        'undo:backup:failed',
        'undo:fence:compensated',
      ]);
    });
  });
});
