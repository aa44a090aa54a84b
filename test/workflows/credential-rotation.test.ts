// Credential rotation on the sandbox's real cluster and primary: the new key in the secret, the
// previous one kept until verified, users active in the window flagged and counted, consumers
// restarted and ready; and a rollout that cannot complete (a pod quota) restores the previous key.
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { ANNOTATIONS, fingerprint } from '../../activities/kubernetes.js';
import { renderReport } from '../../client/render.js';
import type { credentialRotationWorkflow } from '../../workflows/credential-rotation.js';
import { statusQuery } from '../../workflows/messages.js';
import type { CredentialRotationInput } from '../../workflows/types.js';
import { admin, readyPods, scratchNamespace } from '../helpers/kubernetes.js';
import { sql } from '../helpers/postgres.js';
import { secretData, securityProfile } from '../helpers/security.js';
import { testWorker, uniqueId, type TestWorker } from '../helpers/temporal.js';

function start(w: TestWorker, input: Partial<CredentialRotationInput>) {
  return w.client.workflow.start<typeof credentialRotationWorkflow>('credentialRotationWorkflow', {
    taskQueue: w.taskQueue,
    workflowId: uniqueId('credential-rotation'),
    args: [{ site: 'primary', requestedBy: 'alice', incidentId: uniqueId('INC'), ...input }],
  });
}

const template = async (namespace: string, name: string) =>
  (await admin().apps.readNamespacedDeployment({ name, namespace })).spec!.template.metadata?.annotations?.[ANNOTATIONS.restartedAt];

describe('credential rotation', () => {
  afterEach(async () => sql('UPDATE users SET password_reset_required = false WHERE password_reset_required')); // the seeded shape

  it('rotates api-keys, keeps the previous key until verified, flags and counts active users, restarts the consumers', async () => {
    const NS = 'mimir-production';
    const before = await secretData(NS, 'api-keys');
    const replicas = { api: await readyPods(NS, 'app=mimir-api'), worker: await readyPods(NS, 'app=mimir-worker') };
    const w = await testWorker({ profile: securityProfile({ contact: false }) });
    let report = '';
    const result = await w.run(async () => {
      const handle = await start(w, {});
      const r = await handle.result();
      report = renderReport({ status: await handle.query(statusQuery), execution: 'COMPLETED', result: r });
      // Refresh the committed replay history with: MIMIR_RECORD_HISTORY=1 npm test
      if (process.env.MIMIR_RECORD_HISTORY)
        writeFileSync('test/replay/histories/credential-rotation.json', historyToJSON(await handle.fetchHistory()));
      return r;
    });
    assert.match(report, /## Credential rotation/);
    assert.match(report, new RegExp(`Password reset forced\\*\\*: ${result.passwordReset.touched} users`));

    assert.equal(result.outcome, 'rotated');
    const after = await secretData(NS, 'api-keys');
    assert.equal(result.fingerprint, fingerprint(after!['master-key']), 'the new key is in the secret');
    assert.equal(result.previousFingerprint, fingerprint(before!['master-key']));
    assert.notEqual(after!['master-key'], before!['master-key']);
    assert.equal(Buffer.from(Buffer.from(after!['master-key']!, 'base64').toString(), 'base64').length, 32, '32 random bytes');
    const steps = result.journal.map((e) => `${e.step}:${e.outcome}`);
    assert.deepEqual(steps.slice(steps.indexOf('rotate:succeeded')), [
      'rotate:succeeded',
      'force-password-reset:succeeded',
      'restart:mimir-api:succeeded',
      'restart:mimir-worker:succeeded',
      'verify:succeeded',
      'delete-rollback-copy:succeeded',
    ]);
    assert.equal(result.backupDeleted, true);
    assert.equal(await secretData(NS, result.backup), undefined, 'the rollback copy is deleted once the new key is verified');

    const [{ n }] = (await sql<{ n: string }>('SELECT count(*) AS n FROM users WHERE last_login_at > $1', [
      result.passwordReset.since,
    ])) as [{ n: string }];
    assert.ok(Number(n) > 0);
    assert.equal(result.passwordReset.touched, Number(n), 'every user active in the window is counted');
    const [{ flagged }] = (await sql<{ flagged: string }>('SELECT count(*) AS flagged FROM users WHERE password_reset_required')) as [
      { flagged: string },
    ];
    assert.equal(Number(flagged), Number(n), 'exactly those users must reset their password');
    assert.ok(Date.parse(result.passwordReset.since) < Date.now() - 23.9 * 3600_000);

    for (const [name, want] of [
      ['mimir-api', replicas.api],
      ['mimir-worker', replicas.worker],
    ] as const) {
      assert.ok(await template(NS, name), `${name} was restarted`);
      assert.equal(await readyPods(NS, `app=${name}`), want, `${name} is back at ${want} ready pods`);
    }
  });

  it('a rollout that cannot complete puts the previous key back, undoes the restart and keeps the rollback copy', async () => {
    const { target, cleanup } = await scratchNamespace();
    try {
      const a = admin();
      for (let i = 0; i < 100 && (await readyPods(target.namespace, 'app=api')) < 3; i++) await new Promise((r) => setTimeout(r, 200));
      // The namespace may run no more pods than it has: a rolling restart cannot start its first new pod.
      await a.core.createNamespacedResourceQuota({
        namespace: target.namespace,
        body: { metadata: { name: 'pods' }, spec: { hard: { pods: '3' } } },
      });
      for (let i = 0; i < 100; i++) {
        const q = await a.core.readNamespacedResourceQuota({ name: 'pods', namespace: target.namespace });
        if (q.status?.used?.pods === '3') break;
        await new Promise((r) => setTimeout(r, 200));
      }
      const before = await secretData(target.namespace, 'api-keys');
      const w = await testWorker({
        profile: securityProfile({ contact: false, scratch: { namespace: target.namespace, deployments: ['api'], consumers: ['api'] } }),
      });
      const result = await w.run(async () => (await start(w, { site: 'scratch', rolloutTimeout: '3s' })).result());

      assert.equal(result.outcome, 'rolled-back');
      assert.match(result.error!, /api at 3 replicas: not reached within 3s/);
      assert.deepEqual(await secretData(target.namespace, 'api-keys'), before, 'the previous key (and every other key) is back');
      const copy = await secretData(target.namespace, result.backup);
      assert.equal(copy?.['master-key'], before!['master-key'], 'the rollback copy is kept after a rollback');
      assert.equal(await template(target.namespace, 'api'), undefined, 'the restart is undone');
      assert.equal(await readyPods(target.namespace, 'app=api'), 3);
      const steps = result.journal.map((e) => `${e.step}:${e.outcome}`);
      assert.deepEqual(steps.slice(steps.indexOf('restart:api:failed')), [
        'restart:api:failed',
        'undo:rotate:succeeded',
        'undo:restart:api:succeeded',
        'rolled-back:compensated',
      ]);
    } finally {
      await cleanup();
    }
  });
});
