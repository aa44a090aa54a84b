// DR drill: prove the site's database can be brought back, without touching production. Restore the
// latest base backup and the WAL archive into a scratch cluster (activities/drill.ts says why that
// and not a dump), verify it serves the data, measure RTO and RPO against the profile's objectives,
// notify when the drill fails or misses one, and always tear the scratch cluster down, also when the
// drill is cancelled in the middle of the restore. A site with `drill.namespace` also gets its app
// tier: copies of its deployments in that scratch namespace, pointed at the scratch cluster, ready
// before the RTO stops; torn down by their drill label. Run by hand or from a Temporal Schedule
// (`mimir-recovery drill schedule`).
import {
  ActivityCancellationType,
  ApplicationFailure,
  CancellationScope,
  isCancellation,
  proxyActivities,
  workflowInfo,
} from '@temporalio/workflow';
import type { DrillPlan, DrillVerification } from '../activities/drill.js';
import type { Activities } from '../activities/index.js';
import { drDrillInput } from './inputs.js';
import { rootMessage } from './lib/journal.js';
import { Procedure } from './lib/procedure.js';
import { dbQuery, drillRestore, notifyCall, scratchTeardown } from './lib/presets.js';
import { durationMs, parseInput } from './lib/validate.js';
import type { DrDrillInput, DrDrillResult } from './types.js';

const db = proxyActivities<Activities>({ ...dbQuery, summary: 'DR drill: plan and verify' });
// The workflow waits for the restore to acknowledge a cancellation before the teardown runs, so the
// teardown never races a copy or a server start still in progress.
const restore = proxyActivities<Activities>({
  ...drillRestore,
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  summary: 'DR drill: restore into a scratch cluster',
});
const appTier = proxyActivities<Activities>({
  ...drillRestore,
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  summary: 'DR drill: bring up the app tier in the scratch namespace',
});
const teardown = proxyActivities<Activities>({ ...scratchTeardown, summary: 'DR drill: tear down the scratch app tier and cluster' });
const { notify } = proxyActivities<Activities>({ ...notifyCall, summary: 'Notify people' });

const seconds = (ms: number) => Math.round(ms / 100) / 10;

export async function drDrillWorkflow(rawInput: DrDrillInput): Promise<DrDrillResult> {
  const input = parseInput(drDrillInput, rawInput);
  const proc = new Procedure('dr-drill', input);
  const { journal } = proc;
  const wf = workflowInfo();
  const startedAt = Date.now();
  // The scratch place is named after this run: a second run never shares it, a retry finds it.
  const drillId = wf.runId.replaceAll('-', '').slice(0, 12);

  let plan: DrillPlan | undefined;
  let failure: unknown;
  let verified: { at: number; v: DrillVerification } | undefined;
  let appUp: Awaited<ReturnType<Activities['startScratchApp']>> | undefined;
  // Every failure, from an unknown site on, ends here: a drill that cannot run notifies like one that fails.
  const site = { name: input.site };
  try {
    await proc.resolveSite();
    proc.phase = 'running';
    plan = await journal.step(
      'plan',
      `Find the latest base backup of ${site.name} and a scratch place for it`,
      () => db.planDrill({ site: site.name, drillId }),
      {
        details: (p) => ({
          baseBackup: p.baseBackup.name,
          finishedAt: p.baseBackup.finishedAt,
          scratchDir: p.scratchDir,
          objectives: p.objectives,
        }),
      },
    );
    const base = plan.baseBackup.name;
    const cluster = await journal.step(
      'restore',
      `Restore base backup '${base}' and replay the WAL archive into a scratch cluster`,
      () => restore.startScratchCluster({ site: site.name, drillId, baseBackup: base }),
      { details: (c) => ({ ...c }) },
    );
    const v = await journal.step(
      'verify',
      'Verify the scratch copy serves every table with its rows; measure the RPO against the primary',
      async () => {
        const r = await db.verifyScratch({ site: site.name, port: cluster.port });
        if (!r.ok) {
          throw ApplicationFailure.create({
            type: 'VerificationError',
            nonRetryable: true,
            message: `the restore lacks data: missing tables [${r.missingTables.join(', ')}], empty tables [${r.emptyTables.join(', ')}]`,
          });
        }
        return r;
      },
      { details: (r) => ({ ...r }) },
    );
    const app = plan.app;
    if (app) {
      appUp = await journal.step(
        'app',
        `Bring up ${app.deployments.map((d) => `${d.name} x${d.replicas}`).join(', ')} in ${app.namespace}, pointed at the scratch cluster`,
        () => appTier.startScratchApp({ site: site.name, drillId, port: cluster.port }),
        { details: (a) => ({ namespace: a.namespace, deployments: a.deployments.map((d) => d.name), durationMs: a.durationMs }) },
      );
    }
    verified = { at: Date.now(), v };
  } catch (err) {
    failure = err;
  }

  // Always once a plan named the scratch place (nothing is created before), also when cancelled:
  // nothing of the drill may stay behind. The app tier first: its clients go before their database.
  const appNamespace = plan?.app?.namespace;
  const tornApp = await CancellationScope.nonCancellable(async () =>
    !appNamespace
      ? undefined
      : journal
          .step('teardown-app', `Delete everything labelled with drill ${drillId} in ${appNamespace}`, () =>
            teardown.teardownScratchApp({ site: site.name, drillId }),
          )
          .catch((err: unknown) => err as Error),
  );
  const torn = await CancellationScope.nonCancellable(async () =>
    !plan
      ? undefined
      : journal
          .step('teardown', 'Tear down the scratch cluster (stop it, delete its directory)', () =>
            teardown.teardownScratchCluster({ site: site.name, drillId }),
          )
          .catch((err: unknown) => err as Error),
  );
  const teardownError =
    [torn, tornApp]
      .filter((t) => t instanceof Error)
      .map((t) => rootMessage(t))
      .join('; ') || undefined;

  const objectives = plan?.objectives;
  const rtoSeconds = verified ? seconds(verified.at - startedAt) : undefined;
  const rpoSeconds = verified?.v.rpoSeconds;
  const missed: string[] = [];
  if (objectives && rtoSeconds !== undefined && rtoSeconds * 1000 > durationMs(objectives.rto)!)
    missed.push(`RTO ${rtoSeconds}s is over the objective ${objectives.rto}`);
  if (objectives && rpoSeconds !== undefined && rpoSeconds * 1000 > durationMs(objectives.rpo)!)
    missed.push(`RPO ${rpoSeconds}s is over the objective ${objectives.rpo}`);

  const cancelled = failure !== undefined && isCancellation(failure);
  const problem = cancelled
    ? undefined
    : failure !== undefined
      ? `failed: ${rootMessage(failure)}`
      : missed.length > 0
        ? `missed its objectives: ${missed.join('; ')}`
        : undefined;
  const alerts = [
    problem,
    teardownError ? `teardown failed, scratch cluster or app ${drillId} may remain: ${teardownError}` : undefined,
  ].filter(Boolean);
  if (alerts.length > 0) {
    await CancellationScope.nonCancellable(() =>
      journal.step('notify', `Notify: the DR drill ${alerts.join('; ')}`, () =>
        notify({
          kind: 'alert',
          subject: `${wf.workflowId}: DR drill on ${site.name} ${failure !== undefined && !cancelled ? 'FAILED' : 'needs attention'}`,
          text: `The DR drill ${alerts.join('; ')}.`,
          workflowId: wf.workflowId,
          details: {
            drillId,
            rtoSeconds,
            rpoSeconds,
            objectives,
            missed,
            baseBackup: plan?.baseBackup.name,
            ...(problem ? { problem } : {}),
          },
        }),
      ),
    ).catch(() => undefined); // a notification that cannot be delivered must not hide the drill's own outcome
  }

  if (failure !== undefined) {
    proc.phase = 'failed';
    if (cancelled) throw failure;
    throw ApplicationFailure.create({
      type: 'DrillFailedError',
      nonRetryable: true,
      message: `DR drill ${problem}`,
      cause: failure as Error,
    });
  }
  if (teardownError) {
    proc.phase = 'failed';
    throw ApplicationFailure.create({ type: 'TeardownError', nonRetryable: true, message: `DR drill teardown failed: ${teardownError}` });
  }
  const done = torn instanceof Error ? undefined : torn;
  if (!plan || !verified || !objectives || !done || tornApp instanceof Error || (plan.app && (!appUp || !tornApp)))
    throw ApplicationFailure.nonRetryable('DR drill: no verified restore after the restore stage');
  proc.phase = 'completed';
  return {
    outcome: missed.length > 0 ? 'missed-objectives' : 'passed',
    site: site.name,
    drillId,
    baseBackup: { name: plan.baseBackup.name, finishedAt: plan.baseBackup.finishedAt },
    rtoSeconds: rtoSeconds!,
    rpoSeconds: verified.v.rpoSeconds,
    objectives,
    missed,
    verification: { tables: verified.v.tables, rows: verified.v.rows, restoredLastCommitAt: verified.v.restoredLastCommitAt },
    teardown: { ...done, ...(tornApp ? { app: tornApp } : {}) },
    ...(appUp ? { app: appUp } : {}),
    journal: journal.entries,
  };
}
