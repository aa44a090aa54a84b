// The runbook's "Failover to DR Site" as one durable procedure, and its way back. Failover: check
// readiness (a `force` gate if not ready), approval (`failover`), fence the primary, let the standby
// catch up, promote it, scale up the DR site, switch traffic, verify, report RTO and RPO. Failback:
// approval (`failback`), rebuild the old primary as a standby of the new one, a planned switchover
// back with zero data loss, verified, and the DR site rebuilt as a standby again.
import { ApplicationFailure, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import { drFailbackInput, drFailoverInput } from './inputs.js';
import { type ApprovalRecord, secondsBetween, Switchover, targetOf } from './lib/dr.js';
import { rootMessage, type Journal } from './lib/journal.js';
import { Procedure } from './lib/procedure.js';
import { dbQuery, drWait, k8sCall } from './lib/presets.js';
import { parseInput } from './lib/validate.js';
import type { CatchUp, DrFailbackInput, DrFailoverInput, DrReadiness, DrReport, SiteView } from './types.js';

const db = proxyActivities<Activities>({ ...dbQuery, summary: 'Database' });
const k8s = proxyActivities<Activities>({ ...k8sCall, summary: 'Kubernetes' });
const waits = proxyActivities<Activities>({ ...drWait, summary: 'DR (waits for the database or the cluster)' });

/** Resolves the second site of a DR procedure and checks it can serve: a traffic provider and a health endpoint. */
async function resolveDrSite(journal: Journal, name: string, role: string): Promise<SiteView> {
  const site = await journal.step(`resolve-${role}`, `Resolve ${role} '${name}' in the profile`, () => db.resolveSite({ site: name }), {
    details: (s) => ({ namespace: s.kubernetes.namespace, database: s.database.name, traffic: s.traffic?.provider ?? null }),
  });
  return site;
}

function requireServing(site: SiteView, field: string): void {
  if (!site.traffic) {
    throw ApplicationFailure.create({
      type: 'ConfigError',
      nonRetryable: true,
      message: `${field}: site '${site.name}' has no traffic provider; set sites.${site.name}.traffic in the profile (provider manual, kubernetes or webhook)`,
    });
  }
  if (!site.healthUrl) {
    throw ApplicationFailure.create({
      type: 'ConfigError',
      nonRetryable: true,
      message: `${field}: site '${site.name}' has no health endpoint; set sites.${site.name}.healthUrl in the profile`,
    });
  }
}

const rpoOf = (c: CatchUp): NonNullable<DrReport['rpo']> => ({
  bytes: c.lagBytes,
  seconds: c.lagSeconds,
  basis: c.basis,
  replayLsn: c.replayLsn,
  primaryFlushLsn: c.primaryFlushLsn,
});

function timelineOf(journal: Journal): DrReport['timeline'] {
  return journal.entries.map((e) => ({ at: e.startedAt, step: e.step, outcome: e.outcome, title: e.title }));
}

/** Seconds spent in each step from `fromIso` on (the database and Kubernetes waits; the rest of the RTO is orchestration). */
function phasesOf(journal: Journal, fromIso: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const e of journal.entries) {
    if (e.startedAt < fromIso || !e.endedAt || e.step.startsWith('gate:')) continue;
    out[e.step] = Math.round(((out[e.step] ?? 0) + secondsBetween(e.startedAt, e.endedAt)) * 10) / 10;
  }
  return out;
}

async function readiness(journal: Journal, primary: SiteView, dr: SiteView, maxLagSeconds: number): Promise<DrReadiness> {
  return journal.step(
    'readiness',
    `Readiness: ${dr.name} streaming with little lag, its deployments present, its health endpoint answering`,
    async () => {
      const reasons: string[] = [];
      const replication = await db.replicationStatus({ primary: primary.name, standby: dr.name });
      if (!replication.standbyInRecovery) reasons.push(`${dr.name}'s database is not a standby (already promoted?)`);
      else if (replication.receiverStatus !== 'streaming')
        reasons.push(`${dr.name} is not streaming (WAL receiver: ${replication.receiverStatus ?? 'none'})`);
      if (!replication.primaryReachable)
        reasons.push(`${primary.name}'s database does not answer: data loss cannot be measured, only estimated`);
      if (replication.lagSeconds === null || replication.lagSeconds > maxLagSeconds) {
        reasons.push(
          `replay lag ${replication.lagSeconds ?? 'unknown'}s (${replication.lagBytes ?? 'unknown'} bytes) exceeds ${maxLagSeconds}s`,
        );
      }
      const deployments = async (site: SiteView) =>
        (await k8s.readReplicas({ target: targetOf(site), deployments: site.kubernetes.deployments })).map((d) => ({
          name: d.name,
          replicas: d.fencedReplicas ?? d.replicas,
        }));
      const drDeployments = await deployments(dr).catch((err: unknown) => {
        reasons.push(`${dr.name}'s deployments: ${rootMessage(err)}`);
        return [];
      });
      const primaryDeployments = await deployments(primary).catch((err: unknown) => {
        reasons.push(`${primary.name}'s deployments cannot be read (${rootMessage(err)}): give replicas in the input`);
        return [];
      });
      const drHealth = await db.checkHealth({ site: dr.name });
      if (!drHealth.answered) reasons.push(`${dr.name}'s health endpoint does not answer: ${drHealth.error}`);
      return { ready: reasons.length === 0, reasons, replication, drDeployments, primaryDeployments, drHealth, traffic: dr.traffic! };
    },
    { details: (r) => ({ ready: r.ready, reasons: r.reasons, lagBytes: r.replication.lagBytes, lagSeconds: r.replication.lagSeconds }) },
  );
}

export async function drFailoverWorkflow(rawInput: DrFailoverInput): Promise<DrReport> {
  const input = parseInput(drFailoverInput, rawInput);
  const proc = new Procedure('dr-failover', input);
  const { journal } = proc;
  const approvals: ApprovalRecord[] = [];
  const record = (gate: string, a: { by: string; comment?: string; at: string }[]) => a.forEach((x) => approvals.push({ gate, ...x }));

  // 1. Preflight: both sites resolve, the DR site can serve; then readiness. Nothing changes before the approval.
  const primary = await proc.resolveSite();
  const dr = await resolveDrSite(journal, input.drSite, 'dr-site');
  requireServing(dr, 'drSite');
  const ready = await readiness(journal, primary, dr, input.maxLagSeconds);
  const report = (outcome: DrReport['outcome'], extra: Partial<DrReport> = {}): DrReport => {
    proc.phase = outcome === 'completed' || outcome === 'dry-run' ? 'completed' : outcome === 'rejected' ? 'rejected' : 'failed';
    return {
      outcome,
      site: primary.name,
      drSite: dr.name,
      readiness: ready,
      approvals,
      timeline: timelineOf(journal),
      journal: journal.entries,
      ...extra,
    };
  };
  if (input.dryRun) {
    journal.note('dry-run', 'Dry run: readiness above, nothing changed', 'skipped');
    return report('dry-run');
  }
  proc.phase = 'running';
  if (!ready.ready) {
    const force = await proc.approval(dr, {
      name: 'force',
      title: `${dr.name} is NOT ready (${ready.reasons.join('; ')}). Approve only to force the failover anyway`,
      details: { ...ready },
    });
    record('force', force.approvals);
    if (!force.approved) return report('not-ready', { error: ready.reasons.join('; ') });
  }

  // 2. Approval, with the expected data loss.
  const replicas = dr.kubernetes.deployments.map((name) => ({
    name,
    replicas: input.replicas?.[name] ?? ready.primaryDeployments.find((d) => d.name === name)?.replicas ?? 1,
  }));
  const go = await proc.approval(dr, {
    name: 'failover',
    title: `Approve failover from ${primary.name} to ${dr.name} (expected data loss: ${ready.replication.lagBytes ?? 'unknown'} bytes, ${ready.replication.lagSeconds ?? 'unknown'}s of WAL not replayed)`,
    details: { readiness: ready, plan: { fence: primary.name, promote: dr.name, replicas, traffic: dr.traffic } },
  });
  record('failover', go.approvals);
  if (!go.approved) return report('rejected');
  const approvedAt = new Date().toISOString();

  // 3. Fence the primary. A failed fence is compensated (the primary serves again) and nothing is promoted.
  const sw = new Switchover(proc, approvals);
  let fenced;
  try {
    fenced = await sw.fence(primary, { tolerateUnreachableDatabase: true });
  } catch (err) {
    return report('fence-failed', { error: `fencing ${primary.name} failed, so ${dr.name} was not promoted: ${rootMessage(err)}` });
  }

  // 4. Catch up (bounded); what is not replayed by then is the RPO. 5. Promote.
  const takeover = await sw.beforeTakeover(primary, dr, async () => {
    const caught: CatchUp = await sw.catchUp(primary, dr, input.catchUpTimeout);
    await sw.promote(dr, fenced);
    return caught;
  });
  if (!takeover.ok) return report(takeover.outcome, { error: takeover.error });
  const rpo = rpoOf(takeover.value);
  // 6. Scale up the DR site, 7. switch traffic, 8. verify. From here on nothing is undone.
  const { traffic, stopped } = await sw.serve(dr, replicas);
  if (stopped) return report('failed', { rpo, traffic, error: stopped });
  // 9. Report.
  const healthyAt = new Date().toISOString();
  journal.note('healthy', `${dr.name} serves: healthy and writable`, 'succeeded', { rtoSeconds: secondsBetween(approvedAt, healthyAt) });
  return report('completed', { rtoSeconds: secondsBetween(approvedAt, healthyAt), rpo, traffic, phases: phasesOf(journal, approvedAt) });
}

export async function drFailbackWorkflow(rawInput: DrFailbackInput): Promise<DrReport> {
  const input = parseInput(drFailbackInput, rawInput);
  const proc = new Procedure('dr-failback', input);
  const { journal } = proc;
  const approvals: ApprovalRecord[] = [];
  const runId = workflowInfo().workflowId;

  // Preflight: `site` is the original primary to return to, `drSite` the site serving now.
  const home = await proc.resolveSite();
  const serving = await resolveDrSite(journal, input.drSite, 'serving-site');
  requireServing(home, 'site');
  for (const [s, field] of [
    [home, 'site'],
    [serving, 'drSite'],
  ] as const) {
    if (!s.hasServer) {
      throw ApplicationFailure.create({
        type: 'ConfigError',
        nonRetryable: true,
        message: `${field}: site '${s.name}' has no sites.${s.name}.database.server in the profile, so it cannot be rebuilt as a standby`,
      });
    }
  }
  const now = await journal.step('state', `State: ${serving.name} serving, ${home.name} to be rebuilt`, async () => ({
    serving: await db.checkWritable({ site: serving.name }),
    home: await db.checkDatabase({ site: home.name }).catch((err: unknown) => ({ reachable: false, error: rootMessage(err) })),
  }));
  if (!now.serving.writable) {
    throw ApplicationFailure.create({
      type: 'SafetyCheckError',
      nonRetryable: true,
      message: `drSite: '${serving.name}' does not take writes (${now.serving.error ?? 'in recovery'}); fail back from the site that serves`,
    });
  }
  const report = (outcome: DrReport['outcome'], extra: Partial<DrReport> = {}): DrReport => {
    proc.phase = outcome === 'completed' || outcome === 'dry-run' ? 'completed' : outcome === 'rejected' ? 'rejected' : 'failed';
    return { outcome, site: home.name, drSite: serving.name, approvals, timeline: timelineOf(journal), journal: journal.entries, ...extra };
  };
  if (input.dryRun) {
    journal.note('dry-run', 'Dry run: the state above, nothing changed', 'skipped');
    return report('dry-run');
  }
  proc.phase = 'running';
  const go = await proc.approval(home, {
    name: 'failback',
    title: `Approve failback to ${home.name}: rebuild it as a standby of ${serving.name} (pg_rewind, else pg_basebackup), then switch over with zero data loss`,
    details: {
      state: now,
      plan: { rebuild: home.name, from: serving.name, then: `fence ${serving.name}, promote ${home.name}, traffic to ${home.name}` },
    },
  });
  go.approvals.forEach((a) => approvals.push({ gate: 'failback', ...a }));
  if (!go.approved) return report('rejected');
  const approvedAt = new Date().toISOString();

  // Rebuild the old primary as a standby of the serving site, and wait until it has caught up.
  await journal.step(
    'rebuild-home',
    `Rebuild ${home.name} as a standby of ${serving.name}`,
    () => waits.rebuildAsStandby({ site: home.name, from: serving.name, runId }),
    { details: (r) => ({ ...r }) },
  );
  const sw = new Switchover(proc, approvals);
  const before = await sw.catchUp(serving, home, input.catchUpTimeout);
  if (!before.caughtUp)
    return report('failed', { error: `${home.name} did not catch up with ${serving.name} within ${input.catchUpTimeout}` });

  // The planned switchover: zero data loss, or nothing is promoted.
  let fenced;
  try {
    fenced = await sw.fence(serving, { tolerateUnreachableDatabase: false });
  } catch (err) {
    return report('fence-failed', { error: `fencing ${serving.name} failed, so ${home.name} was not promoted: ${rootMessage(err)}` });
  }
  const takeover = await sw.beforeTakeover(serving, home, async () => {
    const caught = await sw.catchUp(serving, home, input.catchUpTimeout);
    if (!caught.caughtUp) {
      throw ApplicationFailure.create({
        type: 'DataLossRiskError',
        message: `${home.name} has not replayed all of ${serving.name}'s WAL (${caught.lagBytes ?? 'unknown'} bytes missing): no promotion without zero data loss`,
      });
    }
    await sw.promote(home, fenced);
    return caught;
  });
  if (!takeover.ok) return report(takeover.outcome, { error: takeover.error });
  const rpo = rpoOf(takeover.value);
  const { traffic, stopped } = await sw.serve(
    home,
    home.kubernetes.deployments.map((name) => ({ name })),
    [
      [
        'rebuild-dr',
        async () => {
          // The DR site becomes a cold standby again: a standby of the original primary, its applications at 0, its ingress open.
          await journal.step(
            'rebuild-dr',
            `Rebuild ${serving.name} as a standby of ${home.name}`,
            () => waits.rebuildAsStandby({ site: serving.name, from: home.name, runId }),
            { details: (r) => ({ ...r }) },
          );
          const target = targetOf(serving);
          await journal.step('standby-site', `Leave ${serving.name} cold: applications at 0, fence records cleared`, () =>
            waits.unfence({ target, deployments: serving.kubernetes.deployments.map((name) => ({ name, replicas: 0 })) }),
          );
          if (serving.kubernetes.ingress) {
            const name = serving.kubernetes.ingress;
            await journal.step('standby-ingress', `Open ${serving.name}'s ingress ${name} again`, () =>
              k8s.restoreIngress({ target, name }),
            );
          }
        },
      ],
    ],
  );
  if (stopped) return report('failed', { rpo, traffic, error: stopped });
  const done = new Date().toISOString();
  const healthy = journal.entries.find((e) => e.step === 'verify' && e.outcome === 'succeeded')?.endedAt ?? done;
  return report('completed', { rtoSeconds: secondsBetween(approvedAt, healthy), rpo, traffic, phases: phasesOf(journal, approvedAt) });
}
