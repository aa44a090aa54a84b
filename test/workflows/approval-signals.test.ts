// Approvals by signal (what a sender without Updates, such as a UI or a chat bridge, can send): the
// same rules as the Updates; a refused signal changes nothing and is journaled as refused.
import assert from 'node:assert/strict';
import { approveSignal, rejectSignal } from '../../workflows/messages.js';
import type { gateProbeWorkflow } from '../workflows/fixtures/index.js';
import { testWorker, uniqueId, waitForStatus } from '../helpers/temporal.js';

describe('approvals by signal', () => {
  it('refuses the requester, a non-approver, a closed gate and an anonymous sender (journaled), then accepts an approver', async () => {
    const w = await testWorker();
    const result = await w.run(async () => {
      const handle = await w.client.workflow.start<typeof gateProbeWorkflow>('gateProbeWorkflow', {
        taskQueue: w.taskQueue,
        workflowId: uniqueId('gate-probe'),
        args: [{ requestedBy: 'alice', approvers: ['bob', 'carol'], required: 1, escalateAfter: '1h', deadline: '2h' }],
      });
      await waitForStatus(handle, (s) => s.openGate?.name === 'release');
      await handle.signal(approveSignal, { gate: 'release', by: 'alice' });
      await handle.signal(approveSignal, { by: 'mallory', comment: 'let me in' });
      await handle.signal(approveSignal, { gate: 'deploy', by: 'bob' });
      await handle.signal(rejectSignal, { by: ' ' });
      const refused = await waitForStatus(handle, (s) => s.journal.filter((e) => e.step.startsWith('refused:')).length === 4);
      assert.equal(refused.openGate?.approvals.length, 0, 'a refused signal changes nothing');
      assert.deepEqual(
        refused.journal.filter((e) => e.step.startsWith('refused:')).map((e) => [e.step, e.outcome, e.actor, e.error]),
        [
          [
            'refused:approve',
            'skipped',
            'alice',
            "approve: 'alice' requested this procedure and may not approve it; another approver must",
          ],
          ['refused:approve', 'skipped', 'mallory', "approve: 'mallory' is not an approver of gate 'release' (approvers: bob, carol)"],
          ['refused:approve', 'skipped', 'bob', "approve: gate 'deploy' is not open; the open gate is 'release'"],
          ['refused:reject', 'skipped', 'unknown', "reject: 'by' must name the person deciding"],
        ],
      );
      await handle.signal(approveSignal, { gate: 'release', by: 'bob', comment: 'signed off from the UI' });
      return handle.result();
    });
    assert.equal(result.outcome, 'approved');
    assert.deepEqual(
      result.approvals.map((a) => [a.by, a.comment]),
      [['bob', 'signed off from the UI']],
    );
    assert.deepEqual(result.journal.find((e) => e.step === 'gate:release')!.outcome, 'approved');
  });

  it('a reject signal from an approver rejects the gate', async () => {
    const w = await testWorker();
    const result = await w.run(async () => {
      const handle = await w.client.workflow.start<typeof gateProbeWorkflow>('gateProbeWorkflow', {
        taskQueue: w.taskQueue,
        workflowId: uniqueId('gate-probe'),
        args: [{ requestedBy: 'alice', approvers: ['bob'], required: 1, escalateAfter: '1h', deadline: '2h' }],
      });
      await waitForStatus(handle, (s) => s.openGate?.name === 'release');
      await handle.signal(rejectSignal, { by: 'bob', comment: 'not now' });
      return handle.result();
    });
    assert.equal(result.outcome, 'rejected');
    assert.equal(result.rejectedBy, 'bob');
  });
});
