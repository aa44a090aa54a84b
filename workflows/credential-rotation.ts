// The runbook's "Unauthorized Access / Immediate Response": rotate the API key (cryptographically
// random; the previous data kept in a rollback copy until the new key is verified), force a password
// reset for users active in the window, restart the deployments that read the secret and wait until
// they are ready. A rollout that fails puts the previous key back and undoes the restarts. Runs alone
// or as a child of breach containment.
import { ApplicationFailure, CancellationScope, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import { credentialRotationInput } from './inputs.js';
import { rootMessage } from './lib/journal.js';
import { Procedure } from './lib/procedure.js';
import { dbQuery, k8sCall, k8sRollout, k8sWait } from './lib/presets.js';
import { durationMs, parseInput } from './lib/validate.js';
import type { CredentialRotationInput, CredentialRotationResult } from './types.js';

const k8s = proxyActivities<Activities>({ ...k8sCall, summary: 'Kubernetes' });
const k8sLong = proxyActivities<Activities>({ ...k8sWait, summary: 'Kubernetes (waits for the cluster)' });
const rollout = proxyActivities<Activities>({ ...k8sRollout, summary: 'Rollout restart (waits until ready)' });
const db = proxyActivities<Activities>({ ...dbQuery, summary: 'Database' });

export async function credentialRotationWorkflow(rawInput: CredentialRotationInput): Promise<CredentialRotationResult> {
  const input = parseInput(credentialRotationInput, rawInput);
  const proc = new Procedure('credential-rotation', input);
  const { journal } = proc;
  const wf = workflowInfo();

  // Preflight: nothing is changed before the secret, its key and its consumers are known.
  const site = await proc.resolveSite();
  const target = { context: site.kubernetes.context, namespace: site.kubernetes.namespace };
  const plan = await journal.step(
    'preflight',
    'Preflight: credentials in the profile, the deployments that read them present',
    async () => {
      const security = await k8s.resolveSecurity();
      const deployments = await k8s.readReplicas({ target, deployments: input.deployments ?? security.credentials.consumers });
      return {
        secret: input.secret ?? security.credentials.secret,
        key: input.key ?? security.credentials.key,
        deployments: deployments.map((d) => ({ name: d.name, replicas: d.replicas })),
      };
    },
    { details: (p) => ({ ...p }) },
  );
  // Stable across retries and replays, new for every run: a second rotation for the incident rotates again.
  const rotationId = `rot-${wf.runId.slice(0, 8).toLowerCase()}`;
  const restartedAt = new Date().toISOString();
  const since = new Date(Date.now() - durationMs(input.resetUsersActiveWithin)!).toISOString();
  const timeoutMs = durationMs(input.rolloutTimeout)!;
  const names = plan.deployments.map((d) => d.name);
  proc.phase = 'running';

  // 1. Rotate: the previous data goes to a rollback copy first; only fingerprints come back.
  const rotated = await journal.step(
    'rotate',
    `Rotate ${plan.secret}/${plan.key} to a random value (previous kept as a rollback copy)`,
    () => k8s.rotateSecretKey({ target, name: plan.secret, key: plan.key, rotationId }),
    { details: (r) => ({ ...r }) },
  );
  // 2. Force a password reset for the users active in the window.
  const passwordReset = await journal.step(
    'force-password-reset',
    `Force a password reset for users active since ${since}`,
    () => db.forcePasswordReset({ site: site.name, since }),
    { details: (r) => ({ ...r }) },
  );
  const result = (outcome: CredentialRotationResult['outcome'], extra: Partial<CredentialRotationResult>): CredentialRotationResult => {
    proc.phase = outcome === 'rotated' ? 'completed' : 'failed';
    return {
      outcome,
      site: site.name,
      secret: plan.secret,
      key: plan.key,
      rotationId,
      fingerprint: rotated.fingerprint,
      previousFingerprint: rotated.previousFingerprint,
      backup: rotated.backup,
      backupDeleted: false,
      passwordReset,
      restarted: [],
      journal: journal.entries,
      ...extra,
    };
  };

  // 3. Restart the consumers, so they read the new key; wait until ready. 4. Verify, then drop the copy.
  const restarted: { name: string; revision: number }[] = [];
  try {
    for (const name of names) {
      restarted.push(
        await journal.step(
          `restart:${name}`,
          `Rollout restart ${name} and wait until ready`,
          () => rollout.rolloutRestart({ target, name, restartedAt, timeoutMs }),
          { details: (r) => ({ ...r }) },
        ),
      );
    }
    await journal.step(
      'verify',
      `Verify: ${names.join(', ')} ready at their replicas with the new key`,
      async () => {
        const now = await k8s.readReplicas({ target, deployments: names });
        const lagging = now.filter(
          (d, i) => d.readyReplicas !== plan.deployments[i]!.replicas || d.replicas !== plan.deployments[i]!.replicas,
        );
        if (lagging.length > 0) {
          throw ApplicationFailure.create({
            type: 'VerificationError',
            nonRetryable: true,
            message: `not ready after the restart: ${lagging.map((d) => `${d.name} ${d.readyReplicas}/${d.replicas}`).join(', ')}`,
          });
        }
        return now.map((d) => ({ name: d.name, ready: d.readyReplicas }));
      },
      { details: (r) => ({ deployments: r, fingerprint: rotated.fingerprint }) },
    );
  } catch (err) {
    // The new key is not in service: the previous one goes back, then the restarts are undone, so
    // any pod the undo starts reads the previous key.
    const error = rootMessage(err);
    proc.phase = 'compensating';
    const failed: string[] = [];
    await CancellationScope.nonCancellable(async () => {
      await journal
        .step('undo:rotate', `Restore the previous ${plan.secret} from ${rotated.backup}`, () =>
          k8s.restoreSecret({ target, name: plan.secret, rotationId }),
        )
        .catch(() => failed.push('rotate'));
      for (const name of [...names].reverse()) {
        await journal
          .step(`undo:restart:${name}`, `Undo the restart of ${name} (rollout undo)`, () =>
            k8sLong.rolloutUndo({ target, name, ifRestartedAt: restartedAt, timeoutMs }),
          )
          .catch(() => failed.push(`restart:${name}`));
      }
    });
    if (failed.length > 0) {
      throw ApplicationFailure.create({
        type: 'CompensationError',
        nonRetryable: true,
        message: `rotation rollback incomplete (${failed.join(', ')} failed) after: ${error}; the previous data is in secret ${rotated.backup}`,
      });
    }
    journal.note('rolled-back', `Rotation rolled back; the rollback copy ${rotated.backup} is kept`, 'compensated', { error });
    return result('rolled-back', { restarted, error });
  }
  await journal.step(
    'delete-rollback-copy',
    `New key verified: delete the rollback copy ${rotated.backup}`,
    () => k8s.deleteSecretBackup({ target, name: plan.secret, rotationId }),
    { details: (r) => ({ ...r }) },
  );
  return result('rotated', { restarted, backupDeleted: true });
}
