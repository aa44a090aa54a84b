// The runbook's "Point-in-Time Recovery" as one durable procedure: preflight, approval, fence the
// writers, safety backup, restore, verify, approval, unfence exactly as before, report. Every
// destructive step registers its undo first; a failure after fencing stops at an `on-failure` gate
// (roll back, or keep fenced for a person), which rolls back on its own at the deadline.
import { ApplicationFailure, CancellationScope, isCancellation, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import { databaseRecoveryInput } from './inputs.js';
import { rootMessage } from './lib/journal.js';
import { Procedure } from './lib/procedure.js';
import { dbQuery, k8sCall, k8sWait, longDbOp } from './lib/presets.js';
import { parseInput } from './lib/validate.js';
import type { DatabaseRecoveryInput, DatabaseRecoveryPlan, DatabaseRecoveryReport } from './types.js';

const db = proxyActivities<Activities>({ ...dbQuery, summary: 'Database' });
const tools = proxyActivities<Activities>({ ...longDbOp, summary: 'pg_dump / pg_restore' });
const k8s = proxyActivities<Activities>({ ...k8sCall, summary: 'Kubernetes' });
const k8sLong = proxyActivities<Activities>({ ...k8sWait, summary: 'Kubernetes (waits for the cluster)' });

const seconds = (from: Date, to: Date) => Math.round((to.getTime() - from.getTime()) / 100) / 10;

export async function databaseRecoveryWorkflow(rawInput: DatabaseRecoveryInput): Promise<DatabaseRecoveryReport> {
  const input = parseInput(databaseRecoveryInput, rawInput);
  const proc = new Procedure('database-recovery', input);
  const { journal, saga } = proc;
  const approvals: DatabaseRecoveryReport['approvals'] = [];
  const record = (gate: string, a: { by: string; comment?: string; at: string }[]) => a.forEach((x) => approvals.push({ gate, ...x }));

  // 1. Preflight: nothing is changed before the plan is known to be sound.
  const site = await proc.resolveSite();
  const target = { context: site.kubernetes.context, namespace: site.kubernetes.namespace };
  const source = input.source;
  const pointInTime = 'targetTime' in source ? source.targetTime : undefined;
  const plan: DatabaseRecoveryPlan = await journal.step(
    'preflight',
    pointInTime
      ? `Preflight: ${pointInTime} covered by a base backup and the WAL archive, ${site.database.name} reachable, deployments present`
      : `Preflight: backup '${'backup' in source ? source.backup : ''}' readable, ${site.database.name} reachable, deployments present`,
    async () => {
      const backup = 'backup' in source ? await tools.inspectBackup({ site: site.name, name: source.backup }) : undefined;
      const pitr = pointInTime ? await tools.planPointInTime({ site: site.name, targetTime: pointInTime }) : undefined;
      const databaseCheck = await db.checkDatabase({ site: site.name });
      const deployments = await k8s.readReplicas({ target, deployments: site.kubernetes.deployments });
      return {
        site: site.name,
        database: site.database.name,
        ...(backup
          ? {
              backup: {
                name: backup.name,
                createdAt: backup.createdAt,
                lastCommitAt: backup.lastCommitAt,
                bytes: backup.bytes,
                items: backup.items,
                tables: Object.fromEntries(Object.entries(backup.tables).map(([t, s]) => [t, { rows: s.rows }])),
              },
            }
          : {}),
        ...(pitr ? { pointInTime: pitr } : {}),
        databaseCheck,
        deployments: deployments.map((d) => ({
          name: d.name,
          replicas: d.fencedReplicas ?? d.replicas,
          ...(d.hpa ? { hpa: { minReplicas: d.hpa.minReplicas, maxReplicas: d.hpa.maxReplicas } } : {}),
        })),
        safetyBackup: `safety-${workflowInfo().workflowId}`,
      };
    },
    {
      details: (p) => ({
        ...(p.backup ? { backup: p.backup.name, backupCreatedAt: p.backup.createdAt } : {}),
        ...(p.pointInTime
          ? { targetTime: p.pointInTime.targetTime, baseBackup: p.pointInTime.baseBackup.name, walFiles: p.pointInTime.walFiles }
          : {}),
        deployments: p.deployments,
      }),
    },
  );
  const what = plan.pointInTime ? `its state at ${plan.pointInTime.targetTime} (UTC)` : `'${plan.backup!.name}'`;
  const report = (outcome: DatabaseRecoveryReport['outcome'], extra: Partial<DatabaseRecoveryReport> = {}): DatabaseRecoveryReport => {
    proc.phase = outcome === 'completed' || outcome === 'dry-run' ? 'completed' : outcome === 'rejected' ? 'rejected' : 'failed';
    return { outcome, plan, approvals, journal: journal.entries, ...extra };
  };
  if (input.dryRun) {
    journal.note('dry-run', 'Dry run: the plan above, nothing changed', 'skipped');
    return report('dry-run');
  }

  // 2. Approval of the plan.
  proc.phase = 'running';
  const go = await proc.approval(site, {
    name: 'restore',
    title: `Approve restoring ${site.database.name} on ${site.name} to ${what} (writers fenced meanwhile)`,
    details: { ...plan },
  });
  record('restore', go.approvals);
  if (!go.approved) return report('rejected');

  const fencedAt = new Date();
  let restored: DatabaseRecoveryReport['restored'];
  let verification: DatabaseRecoveryReport['verification'];
  // Steps 3-6, each a stage: a failure stops at the `on-failure` gate, where `retry` runs the failed
  // stage again, approve rolls back and reject keeps the site fenced for a person.
  const pitr = plan.pointInTime;
  const stages: [string, () => Promise<unknown>][] = [
    [
      'fence',
      async () => {
        // 3. Fence the writers; their replicas are recorded (plan, and annotations) before any scale-down.
        saga.addOnce('fence', 'Unfence the deployments to their recorded replicas', () =>
          k8sLong.unfence({ target, deployments: plan.deployments.map((d) => ({ name: d.name, replicas: d.replicas })) }),
        );
        await journal.step(
          'fence',
          `Fence writers: ${site.kubernetes.deployments.join(', ')} to 0`,
          () => k8sLong.fence({ target, deployments: site.kubernetes.deployments, by: workflowInfo().workflowId }),
          { details: (r) => ({ recorded: r }) },
        );
        await journal.step('end-sessions', 'End the remaining client sessions', () => db.terminateClientSessions({ site: site.name }), {
          details: (r) => ({ ...r }),
        });
      },
    ],
    [
      'safety-backup',
      async () => {
        // 4. Safety backup of the current state, named after this workflow: a retry reuses it.
        const safety = await journal.step(
          'safety-backup',
          `Safety backup '${plan.safetyBackup}' of the current state`,
          () => tools.dumpDatabase({ site: site.name, name: plan.safetyBackup, jobs: input.jobs }),
          { details: (m) => ({ name: m.name, bytes: m.bytes, sha256: m.files.map((f) => `${f.file}:${f.sha256}`) }) },
        );
        saga.addOnce('restore', `Restore the safety backup '${safety.name}'`, () =>
          tools.restoreDump({ site: site.name, name: safety.name, jobs: input.jobs }),
        );
      },
    ],
    [
      'restore',
      async () => {
        // 5. Restore.
        restored = pitr
          ? await journal.step(
              'restore',
              `Replay base backup '${pitr.baseBackup.name}' and ${pitr.walFiles} WAL segment(s) to ${pitr.targetTime}`,
              async () => {
                const r = await tools.restorePointInTime({
                  site: site.name,
                  baseBackup: pitr.baseBackup.name,
                  targetTime: pitr.targetTime,
                  runId: workflowInfo().workflowId,
                });
                return { durationMs: r.durationMs, lastCommitAt: r.lastCommitAt, walBytes: pitr.walBytes };
              },
              { details: (r) => ({ ...r }) },
            )
          : await journal.step(
              'restore',
              `Restore '${plan.backup!.name}' (pg_restore -j ${input.jobs})`,
              () => tools.restoreDump({ site: site.name, name: plan.backup!.name, jobs: input.jobs }),
              { details: (r) => ({ ...r }) },
            );
      },
    ],
    [
      'verify',
      async () => {
        // 6. Verify: against the backup's own counts and checksums, or: nothing committed after the target.
        verification = await journal.step(
          'verify',
          pitr
            ? `Verify the last recovered commit is not after ${pitr.targetTime}`
            : 'Verify per-table row counts and checksums against the backup',
          async () => {
            const expected = pitr ? {} : (await tools.inspectBackup({ site: site.name, name: plan.backup!.name })).tables;
            const v = await tools.verifyTables({ site: site.name, expected });
            const late = pitr && restored?.lastCommitAt && restored.lastCommitAt > pitr.targetTime;
            if (!v.ok || late) {
              const message = late
                ? `a commit at ${restored!.lastCommitAt} is after the target ${pitr.targetTime}`
                : `restored data differs from the backup: ${JSON.stringify(v.mismatches)}`;
              throw ApplicationFailure.create({ type: 'VerificationError', nonRetryable: true, message });
            }
            return { ...v, ...(pitr ? { lastCommitAt: restored?.lastCommitAt ?? null, targetTime: pitr.targetTime } : {}) };
          },
          { details: (v) => ({ ...v }) },
        );
      },
    ],
  ];
  const failed = await runStages(stages);
  if (failed) return failed;
  if (!verification) throw ApplicationFailure.nonRetryable('verification missing after the verify stage');

  // 7. Approval to let traffic back.
  const resume = await proc.approval(site, {
    name: 'resume-traffic',
    title: `Approve resuming traffic on ${site.name} (verification: ${verification.tables} tables match, ${verification.articles} articles)`,
    details: { verification, restored },
  });
  record('resume-traffic', resume.approvals);
  if (!resume.approved) {
    journal.note('kept-fenced', 'Traffic not resumed: the site stays fenced for a person to decide', 'skipped', { pending: saga.pending });
    return report('kept-fenced', { restored, verification });
  }

  // 8. Unfence to exactly the recorded replicas, then check health.
  const unfenced = await runStages([
    [
      'unfence',
      async () => {
        await journal.step(
          'unfence',
          'Unfence to the recorded replicas and wait until ready',
          () => k8sLong.unfence({ target, deployments: plan.deployments.map((d) => ({ name: d.name, replicas: d.replicas })) }),
          { details: (r) => ({ restored: r }) },
        );
        await journal.step('health', `Check ${site.database.name} answers`, () => db.checkDatabase({ site: site.name }), {
          details: (c) => ({ ...c }),
        });
      },
    ],
  ]);
  if (unfenced) return unfenced;
  saga.clear();
  const healthyAt = new Date();
  // RPO: what the restored database lacks. From a backup: every commit after its snapshot (taken when
  // the dump started) until the fence. To a point in time: the gap between the target and the last
  // commit actually recovered.
  const recoveredUpTo = plan.pointInTime ? restored?.lastCommitAt : plan.backup?.createdAt;
  const rpoEnd = plan.pointInTime ? new Date(plan.pointInTime.targetTime) : fencedAt;
  return report('completed', {
    restored,
    verification,
    rtoSeconds: seconds(fencedAt, healthyAt),
    ...(recoveredUpTo ? { rpoSeconds: Math.max(seconds(new Date(recoveredUpTo), rpoEnd), 0) } : {}),
  });

  /** Runs stages in order; on a failure, asks at the `on-failure` gate. Returns a report if the procedure ends there. */
  async function runStages(list: [string, () => Promise<unknown>][]): Promise<DatabaseRecoveryReport | undefined> {
    for (let i = 0; i < list.length;) {
      try {
        await list[i]![1]();
        i++;
      } catch (err) {
        const decision = await onFailure(err, list[i]![0]);
        if (decision !== 'retry') return decision;
      }
    }
    return undefined;
  }

  /** After fencing: a person chooses retry, rollback or keep-fenced; no answer by the deadline rolls back. */
  async function onFailure(err: unknown, stage: string): Promise<DatabaseRecoveryReport | 'retry'> {
    const error = rootMessage(err);
    if (isCancellation(err)) {
      await saga.compensate();
      throw err;
    }
    const choice = await CancellationScope.nonCancellable(() =>
      proc.approval(site, {
        name: 'on-failure',
        title: `Step '${stage}' failed (${error}). Retry it, approve to roll back (restore the safety backup, unfence), or reject to keep the site fenced`,
        details: { error, failedStep: stage, compensations: saga.pending },
        allowRetry: true,
        deadline: input.onFailureDeadline,
        escalateAfter: input.onFailureDeadline,
        onDeadline: 'approve',
      }),
    );
    record('on-failure', choice.approvals);
    if (choice.outcome === 'retry') return 'retry';
    if (!choice.approved) {
      journal.note('kept-fenced', 'Kept fenced after the failure, for a person to resume', 'skipped', { error, pending: saga.pending });
      return report('kept-fenced', { restored, verification, error });
    }
    proc.phase = 'compensating';
    const failed = await saga.compensate();
    if (failed.length > 0) {
      throw ApplicationFailure.create({
        type: 'CompensationError',
        nonRetryable: true,
        message: `rollback incomplete (${failed.join(', ')} failed) after: ${error}`,
      });
    }
    return report('rolled-back', { restored, verification, error });
  }
}
