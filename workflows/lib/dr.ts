// What failover and failback share: moving the writable database and the users from one site to
// another. Fence the serving site (its applications to 0, its ingress closed, its database
// read-only), wait until the other site has replayed everything, promote it, bring its applications
// up, switch traffic, verify. Promotion takes a `Fenced` value that only a successful fence creates:
// without one there is no code path to `promoteStandby`, which is the guard against split brain.
import { ApplicationFailure, CancellationScope, isCancellation, proxyActivities, sleep, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../../activities/index.js';
import type { FenceRecord } from '../../activities/kubernetes.js';
import type { CatchUp, DrReport, HealthCheck, SiteView } from '../types.js';
import { rootMessage } from './journal.js';
import type { Procedure } from './procedure.js';
import { dbQuery, drWait, k8sCall } from './presets.js';
import { durationMs } from './validate.js';

const db = proxyActivities<Activities>({ ...dbQuery, summary: 'Database' });
const k8s = proxyActivities<Activities>({ ...k8sCall, summary: 'Kubernetes' });
const waits = proxyActivities<Activities>({ ...drWait, summary: 'DR (waits for the database or the cluster)' });

/** The allow-list a fenced ingress gets: nobody from outside. */
export const FENCED_SOURCE_RANGE = '127.0.0.1/32';

export const targetOf = (site: SiteView) => ({ context: site.kubernetes.context, namespace: site.kubernetes.namespace });

/** Proof that a site was fenced; only `Switchover.fence` makes one, and `promote` accepts no other. */
export interface Fenced {
  readonly site: string;
  readonly records: FenceRecord[];
  readonly database: 'fenced' | 'unreachable';
}
const proofs = new WeakSet<Fenced>();

export type ApprovalRecord = DrReport['approvals'][number];

export class Switchover {
  constructor(
    private readonly proc: Procedure,
    private readonly approvals: ApprovalRecord[],
  ) {}

  /**
   * Fences `site`: applications to 0 (replicas recorded first), ingress restricted, database
   * read-only with its sessions ended. Each part registers its undo before it runs. On any failure
   * the compensations run (the site serves again) and the error is rethrown: nothing is promoted.
   * `tolerateUnreachableDatabase`: a database that does not answer cannot take writes from fenced
   * applications either; a failover goes on, a planned switchover does not.
   */
  async fence(site: SiteView, opts: { tolerateUnreachableDatabase: boolean }): Promise<Fenced> {
    const { journal, saga } = this.proc;
    const target = targetOf(site);
    try {
      saga.addOnce(`fence:${site.name}`, `Unfence ${site.name}'s applications to their recorded replicas`, () =>
        waits.unfence({ target, deployments: site.kubernetes.deployments.map((name) => ({ name })) }),
      );
      const records = await journal.step(
        'fence-applications',
        `Fence ${site.name}: ${site.kubernetes.deployments.join(', ')} to 0 (replicas recorded)`,
        () => waits.fence({ target, deployments: site.kubernetes.deployments, by: workflowInfo().workflowId }),
        { details: (r) => ({ recorded: r }) },
      );
      if (site.kubernetes.ingress) {
        const name = site.kubernetes.ingress;
        saga.addOnce(`ingress:${site.name}`, `Restore ${site.name}'s ingress allow-list`, () => k8s.restoreIngress({ target, name }));
        await journal.step(
          'fence-ingress',
          `Restrict ${site.name}'s ingress ${name} to ${FENCED_SOURCE_RANGE}`,
          () => k8s.restrictIngress({ target, name, sourceRange: FENCED_SOURCE_RANGE }),
          { details: (r) => ({ ...r }) },
        );
      }
      saga.addOnce(`database:${site.name}`, `Let ${site.name}'s database take writes again`, () => db.unfenceDatabase({ site: site.name }));
      let database: Fenced['database'] = 'fenced';
      try {
        await journal.step(
          'fence-database',
          `Make ${site.database.name} on ${site.name} read-only and end its sessions`,
          async () => ({ ...(await db.fenceDatabase({ site: site.name })), ...(await db.terminateClientSessions({ site: site.name })) }),
          { details: (r) => ({ ...r }) },
        );
      } catch (err) {
        const unreachable = failureType(err) === 'DatabaseUnavailableError';
        if (!(unreachable && opts.tolerateUnreachableDatabase)) throw err;
        database = 'unreachable';
        journal.note(
          'fence-database-unreachable',
          `${site.database.name} on ${site.name} does not answer: it cannot take writes either`,
          'skipped',
          {
            error: rootMessage(err),
          },
        );
      }
      const proof: Fenced = { site: site.name, records, database };
      proofs.add(proof);
      return proof;
    } catch (err) {
      this.proc.phase = 'compensating';
      const failed = await saga.compensate();
      journal.note('fence-failed', `Fencing ${site.name} failed: nothing promoted, ${site.name} unfenced`, 'failed', {
        error: rootMessage(err),
        ...(failed.length ? { compensationsFailed: failed } : {}),
      });
      throw err;
    }
  }

  /** Bounded wait until `standby` replayed everything `primary` flushed. */
  async catchUp(primary: SiteView, standby: SiteView, timeout: string): Promise<CatchUp> {
    return this.proc.journal.step(
      'catch-up',
      `Wait (at most ${timeout}) until ${standby.name} has replayed everything ${primary.name} flushed`,
      () => waits.waitForCatchUp({ primary: primary.name, standby: standby.name, timeoutMs: durationMs(timeout)! }),
      {
        details: (c) => ({
          caughtUp: c.caughtUp,
          basis: c.basis,
          lagBytes: c.lagBytes,
          lagSeconds: c.lagSeconds,
          replayLsn: c.replayLsn,
          primaryFlushLsn: c.primaryFlushLsn,
          receiveLsn: c.receiveLsn,
        }),
      },
    );
  }

  /** Promotes `standby`; needs the proof that the old primary is fenced. */
  async promote(standby: SiteView, fenced: Fenced) {
    if (!proofs.has(fenced)) throw ApplicationFailure.nonRetryable(`refusing to promote ${standby.name}: the old primary is not fenced`);
    return this.proc.journal.step(
      'promote',
      `Promote ${standby.database.name} on ${standby.name} (pg_promote) and wait until it takes writes`,
      () => waits.promoteStandby({ site: standby.name }),
      { details: (r) => ({ ...r, oldPrimary: fenced.site }) },
    );
  }

  /** Brings `site`'s applications up to `replicas` (and opens its ingress if a fence closed it), waits until ready. */
  async activate(site: SiteView, replicas: { name: string; replicas?: number }[]) {
    const target = targetOf(site);
    await this.proc.journal.step(
      'scale-up',
      `Scale up ${site.name}: ${replicas.map((r) => `${r.name}=${r.replicas ?? 'recorded'}`).join(', ')}, wait until ready`,
      () => waits.unfence({ target, deployments: replicas }),
      { details: (r) => ({ replicas: r }) },
    );
    if (site.kubernetes.ingress) {
      const name = site.kubernetes.ingress;
      await this.proc.journal.step('open-ingress', `Open ${site.name}'s ingress ${name}`, () => k8s.restoreIngress({ target, name }), {
        details: (r) => ({ ...r }),
      });
    }
  }

  /** Sends users to `site`: through its provider, or a person confirms at the `traffic` gate (manual). */
  async switchTraffic(site: SiteView): Promise<DrReport['traffic']> {
    const traffic = site.traffic!;
    if (traffic.provider === 'manual') {
      const gate = await this.proc.approval(site, {
        name: 'traffic',
        title: `Point DNS at ${site.name}, then approve: ${traffic.instructions ?? 'the users must reach the site now serving'}`,
        details: { site: site.name, ...(site.healthUrl ? { healthUrl: site.healthUrl } : {}) },
      });
      gate.approvals.forEach((a) => this.approvals.push({ gate: 'traffic', ...a }));
      if (!gate.approved) throw ApplicationFailure.nonRetryable(`traffic: DNS change to ${site.name} not confirmed (${gate.outcome})`);
      return { provider: 'manual', now: site.name };
    }
    const r = await this.proc.journal.step(
      'switch-traffic',
      `Switch traffic to ${site.name} (${traffic.provider}${traffic.entry ? `: ${traffic.entry} → ${traffic.target}` : ''})`,
      () => waits.switchTraffic({ site: site.name, workflowId: workflowInfo().workflowId }),
      { details: (x) => ({ ...x }) },
    );
    return { provider: r.provider, ...('previous' in r ? { previous: r.previous } : {}), now: r.now };
  }

  /** The site's health endpoint reports healthy and its database takes writes (a short bounded wait). */
  async verify(site: SiteView): Promise<{ health: HealthCheck; writable: boolean }> {
    return this.proc.journal.step(
      'verify',
      `Verify ${site.name}: health endpoint healthy and ${site.database.name} writable`,
      async () => {
        for (let attempt = 1; ; attempt++) {
          const health = await db.checkHealth({ site: site.name });
          const w = await db.checkWritable({ site: site.name });
          if (health.healthy && w.writable) return { health, writable: true };
          if (attempt >= 30) {
            throw ApplicationFailure.create({
              type: 'VerificationError',
              message: `${site.name} is not healthy after ${attempt} checks: health ${health.httpStatus ?? health.error}, writable ${w.writable}${w.error ? ` (${w.error})` : ''}`,
            });
          }
          await sleep('1s');
        }
      },
      { details: (v) => ({ health: v.health.body ?? v.health.httpStatus, writable: v.writable }) },
    );
  }

  /**
   * Runs what comes between the fence and the takeover (catch-up, promotion). A failure stops at
   * `on-failure`: retry; approve to roll back (the old primary unfenced, serving again), which is
   * done only while `standby` is verifiably still a standby; or reject to keep it fenced for a person.
   */
  async beforeTakeover<T>(
    primary: SiteView,
    standby: SiteView,
    run: () => Promise<T>,
  ): Promise<{ ok: true; value: T } | { ok: false; outcome: 'rolled-back' | 'kept-fenced'; error: string }> {
    const { journal, saga } = this.proc;
    for (;;) {
      try {
        return { ok: true, value: await run() };
      } catch (err) {
        if (isCancellation(err)) throw err;
        const error = rootMessage(err);
        const choice = await CancellationScope.nonCancellable(() =>
          this.proc.approval(standby, {
            name: 'on-failure',
            title: `Failed before ${standby.name} took over (${error}). Retry, approve to roll back (${primary.name} unfenced, serving again), or reject to keep ${primary.name} fenced for a person`,
            details: { error, compensations: saga.pending },
            allowRetry: true,
          }),
        );
        choice.approvals.forEach((a) => this.approvals.push({ gate: 'on-failure', ...a }));
        if (choice.outcome === 'retry') continue;
        if (choice.approved) {
          const state = await db.replicationStatus({ primary: primary.name, standby: standby.name }).catch(() => undefined);
          if (state?.standbyInRecovery) {
            this.proc.phase = 'compensating';
            const failed = await saga.compensate();
            if (failed.length === 0) return { ok: false, outcome: 'rolled-back', error };
            journal.note('rollback-incomplete', `Rollback incomplete (${failed.join(', ')})`, 'failed');
          } else {
            journal.note(
              'no-rollback',
              `${standby.name} is (or may be) promoted already: ${primary.name} stays fenced, no split brain`,
              'skipped',
            );
          }
        }
        journal.note('kept-fenced', `${primary.name} kept fenced for a person to resume`, 'skipped', { error, pending: saga.pending });
        return { ok: false, outcome: 'kept-fenced', error };
      }
    }
  }

  /**
   * After the promotion: `site`'s applications up to `replicas`, traffic switched, verified, then the
   * `more` stages. Nothing is undone from here on (the saga is cleared): a failing stage waits at
   * `on-failure`, where `retry` runs it again; otherwise the procedure stops for a person (`stopped`
   * says where and why).
   */
  async serve(
    site: SiteView,
    replicas: { name: string; replicas?: number }[],
    more: [string, () => Promise<unknown>][] = [],
  ): Promise<{ traffic?: DrReport['traffic']; stopped?: string }> {
    this.proc.saga.clear();
    let traffic: DrReport['traffic'];
    const stages: [string, () => Promise<unknown>][] = [
      ['scale-up', () => this.activate(site, replicas)],
      ['switch-traffic', async () => (traffic = await this.switchTraffic(site))],
      ['verify', () => this.verify(site)],
      ...more,
    ];
    for (let i = 0; i < stages.length;) {
      const [name, run] = stages[i]!;
      try {
        await run();
        i++;
      } catch (err) {
        const error = rootMessage(err);
        const choice = await this.proc.approval(site, {
          name: 'on-failure',
          title: `Step '${name}' failed after promotion (${error}). Retry it, or reject to stop here for a person (nothing is undone after promotion)`,
          details: { error, failedStep: name },
          allowRetry: true,
        });
        choice.approvals.forEach((a) => this.approvals.push({ gate: 'on-failure', ...a }));
        if (choice.outcome !== 'retry') {
          const stopped = `${name}: ${error}`;
          this.proc.journal.note('stopped', `Stopped for a person: ${site.name} is promoted, ${stopped}`, 'failed');
          return { traffic, stopped };
        }
      }
    }
    return { traffic };
  }
}

/** The failure type of an activity failure (its ApplicationFailure cause's type). */
export function failureType(err: unknown): string | undefined {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    if (e instanceof ApplicationFailure && e.type) return e.type;
  }
  return undefined;
}

/** Seconds between two ISO times, to a tenth. */
export const secondsBetween = (from: string | number, to: string | number) =>
  Math.round((new Date(to).getTime() - new Date(from).getTime()) / 100) / 10;
