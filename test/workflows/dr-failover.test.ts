// DR failover and failback end to end on the real sandbox: the PostgreSQL primary and its streaming
// standby, the real API server's mimir-production and mimir-dr sites, each site's real health
// service, the real dev server. An application writes to the primary until fencing stops it.
import { WorkflowFailedError } from '@temporalio/client';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Profile } from '../../config/profile.js';
import type { drFailbackWorkflow, drFailoverWorkflow } from '../../workflows/dr-failover.js';
import { rootMessage } from '../../workflows/lib/journal.js';
import { approveUpdate, rejectUpdate, retryUpdate } from '../../workflows/messages.js';
import type { DrFailoverInput } from '../../workflows/types.js';
import { ensureDrPair, siteSql, startWriter } from '../helpers/dr.js';
import { admin, readyPods } from '../helpers/kubernetes.js';
import { startReceiver } from '../helpers/receiver.js';
import { sandboxProfile, testWorker, uniqueId, waitForStatus, type TestWorker } from '../helpers/temporal.js';

const MINIMAL = { site: 'primary', drSite: 'dr', requestedBy: 'ic-dave', incidentId: 'INC-7', severity: 'SEV-1' } as const;

const replicas = async (namespace: string, name: string) =>
  (await admin().apps.readNamespacedDeployment({ name, namespace })).spec!.replicas;
const edge = async () => (await admin().core.readNamespacedService({ name: 'mimir-public', namespace: 'mimir-edge' })).spec!.externalName;
const inRecovery = async (site: 'primary' | 'dr') => (await siteSql<{ r: boolean }>(site, 'SELECT pg_is_in_recovery() AS r'))[0]!.r;

function startFailover(w: TestWorker, input: Partial<DrFailoverInput> = {}) {
  return w.client.workflow.start<typeof drFailoverWorkflow>('drFailoverWorkflow', {
    taskQueue: w.taskQueue,
    workflowId: uniqueId('dr-failover-primary'),
    args: [{ ...MINIMAL, ...input }],
  });
}

/** Runs a failover with its one human action (alice approves `failover`) and returns its report. */
async function failover(w: TestWorker) {
  const handle = await startFailover(w);
  await waitForStatus(handle, (s) => s.openGate?.name === 'failover', 60_000);
  await handle.executeUpdate(approveUpdate, { args: [{ by: 'alice' }] });
  return handle.result();
}

async function failureOf(p: Promise<unknown>): Promise<string> {
  const err = await p.then(
    () => assert.fail('expected the workflow to fail'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof WorkflowFailedError, String(err));
  let type = '';
  for (let e: unknown = err; e instanceof Error && !type; e = e.cause) type = (e as { type?: string }).type ?? '';
  return `${type}: ${rootMessage(err)}`;
}

/** Activity types the workflow scheduled, from its history. */
async function scheduled(w: TestWorker, workflowId: string): Promise<string[]> {
  const history = await w.client.workflow.getHandle(workflowId).fetchHistory();
  return history.events!.flatMap((e) => e.activityTaskScheduledEventAttributes?.activityType?.name ?? []);
}

describe('DR failover and failback', () => {
  before(async () => {
    await ensureDrPair();
    await siteSql('primary', 'CREATE TABLE IF NOT EXISTS failover_writes (id bigint PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())');
    await siteSql('primary', 'TRUNCATE failover_writes');
  });

  after(async () => {
    await ensureDrPair();
    await siteSql('primary', 'DROP TABLE IF EXISTS failover_writes');
  });

  it('refuses bad input before any change: unknown site, DR site equal to the primary, a DR site without a traffic provider', async () => {
    const noTraffic: Profile = sandboxProfile();
    const { traffic: _ignored, ...drWithoutTraffic } = noTraffic.sites.dr!;
    const profile = { ...noTraffic, sites: { ...noTraffic.sites, dr: drWithoutTraffic } };
    const cases: [Profile | undefined, Partial<DrFailoverInput>, RegExp][] = [
      [undefined, { drSite: 'nowhere' }, /UnknownSiteError: site: 'nowhere' is not defined .*known sites: primary, dr/],
      [undefined, { drSite: 'primary' }, /InvalidInputError: invalid input: drSite: must name another site than `site`/],
      [profile, {}, /ConfigError: drSite: site 'dr' has no traffic provider; set sites\.dr\.traffic/],
    ];
    for (const [p, input, pattern] of cases) {
      const w = await testWorker(p ? { profile: p } : {});
      await w.run(async () => {
        const handle = await startFailover(w, input);
        assert.match(await failureOf(handle.result()), pattern);
        const acts = await scheduled(w, handle.workflowId);
        assert.ok(
          acts.every((a) => a === 'resolveSite'),
          `only the sites were resolved, nothing else: ${acts.join(', ')}`,
        );
      });
    }
    assert.equal(await inRecovery('dr'), true, 'the standby is still a standby');
    assert.equal(await replicas('mimir-production', 'mimir-api'), 3);
    assert.equal(await edge(), 'mimir-api.mimir-production.svc.cluster.local');
  });

  it('not ready (a DR deployment missing): stops at the force gate; rejected, nothing changes; a dry run only reports', async () => {
    const base = sandboxProfile();
    const dr = base.sites.dr!;
    const profile = {
      ...base,
      sites: { ...base.sites, dr: { ...dr, kubernetes: { ...dr.kubernetes, deployments: [...dr.kubernetes.deployments, 'mimir-gone'] } } },
    };
    const w = await testWorker({ profile });
    await w.run(async () => {
      const handle = await startFailover(w);
      const s = await waitForStatus(handle, (x) => x.openGate !== undefined, 60_000);
      assert.equal(s.openGate!.name, 'force');
      assert.match(s.openGate!.title, /dr is NOT ready \(dr's deployments: deployment: 'mimir-gone' does not exist/);
      await handle.executeUpdate(rejectUpdate, { args: [{ by: 'alice', comment: 'not without the deployment' }] });
      const result = await handle.result();
      assert.equal(result.outcome, 'not-ready');
      assert.match(result.error!, /mimir-gone/);
      const acts = await scheduled(w, handle.workflowId);
      assert.ok(!acts.some((a) => ['fence', 'fenceDatabase', 'promoteStandby'].includes(a)), acts.join(', '));

      const dry = await startFailover(w, { dryRun: true, incidentId: 'INC-8' });
      const planned = await dry.result();
      assert.equal(planned.outcome, 'dry-run');
      assert.equal(planned.readiness!.replication.receiverStatus, 'streaming');
      assert.equal(typeof planned.readiness!.replication.lagBytes, 'number');
      assert.equal(planned.readiness!.drHealth.answered, true);
      assert.equal(planned.readiness!.drHealth.httpStatus, 503, 'the standby answers: read-only');
    });
    assert.equal(await inRecovery('dr'), true);
    assert.equal(await replicas('mimir-production', 'mimir-api'), 3);
  });

  it('split brain guard: when fencing fails, the primary is unfenced and the standby is not promoted', async () => {
    const base = sandboxProfile();
    // The ingress to restrict does not exist: the second part of the fence fails (after the scale-down).
    const profile = {
      ...base,
      sites: {
        ...base.sites,
        primary: { ...base.sites.primary!, kubernetes: { ...base.sites.primary!.kubernetes, ingress: 'no-such-ingress' } },
      },
    };
    const w = await testWorker({ profile });
    const result = await w.run(async () => {
      const handle = await startFailover(w);
      await waitForStatus(handle, (s) => s.openGate?.name === 'failover', 60_000);
      await handle.executeUpdate(approveUpdate, { args: [{ by: 'alice' }] });
      const r = await handle.result();
      const acts = await scheduled(w, handle.workflowId);
      assert.ok(acts.includes('fence'), 'the applications were fenced first');
      assert.ok(!acts.includes('promoteStandby'), 'promotion was never scheduled');
      return r;
    });
    assert.equal(result.outcome, 'fence-failed');
    assert.match(result.error!, /fencing primary failed, so dr was not promoted: .*no-such-ingress/);
    assert.ok(result.journal.some((e) => e.step === 'undo:fence:primary' && e.outcome === 'compensated'));
    assert.equal(await inRecovery('dr'), true, 'the standby was not promoted');
    assert.equal(await replicas('mimir-production', 'mimir-api'), 3, 'the primary serves again at its recorded replicas');
    assert.equal(await replicas('mimir-production', 'mimir-worker'), 2);
    assert.equal(await readyPods('mimir-production', 'app=mimir-api'), 3);
    assert.equal(await edge(), 'mimir-api.mimir-production.svc.cluster.local', 'traffic untouched');
    await siteSql('primary', 'INSERT INTO failover_writes (id) VALUES (-1)'); // the primary takes writes
    await siteSql('primary', 'DELETE FROM failover_writes WHERE id = -1');
  });

  it('fails over with one approval while an application writes: every acknowledged write is on the promoted standby; RTO and RPO reported', async () => {
    await ensureDrPair();
    const writer = startWriter('primary', 'failover_writes');
    while (writer.acknowledged.length < 200) await new Promise((r) => setTimeout(r, 20));
    const w = await testWorker();
    const result = await w.run(() => failover(w));
    await writer.stop();

    assert.equal(result.outcome, 'completed', result.error);
    assert.deepEqual(
      result.approvals.map((a) => [a.gate, a.by]),
      [['failover', 'alice']],
      'exactly one human action',
    );
    // Fencing stopped the writer: its writes were refused, none acknowledged after.
    assert.ok(
      writer.errors.some((e) => /read-only transaction|terminat/.test(e)),
      `writes refused after fencing: ${writer.errors.slice(0, 3).join(' | ')}`,
    );
    const onDr = new Set((await siteSql<{ id: string }>('dr', 'SELECT id FROM failover_writes')).map((r) => Number(r.id)));
    const lost = writer.acknowledged.filter((id) => !onDr.has(id));
    assert.deepEqual(lost, [], `all ${writer.acknowledged.length} acknowledged writes are on the promoted standby`);
    // RTO and RPO.
    assert.ok(typeof result.rtoSeconds === 'number' && result.rtoSeconds > 0, `RTO reported: ${result.rtoSeconds}`);
    assert.equal(result.rpo!.basis, 'primary-flush');
    assert.equal(result.rpo!.bytes, 0, 'the fenced primary was reachable: nothing left unreplayed');
    assert.equal(result.rpo!.seconds, 0);
    assert.ok(result.phases!['promote']! >= 0 && result.phases!['catch-up']! >= 0);
    assert.deepEqual(
      ['fence-applications', 'fence-ingress', 'fence-database', 'catch-up', 'promote', 'scale-up', 'switch-traffic', 'verify'].map((s) =>
        result.timeline.findIndex((e) => e.step === s && e.outcome === 'succeeded') >= 0 ? s : `missing ${s}`,
      ),
      ['fence-applications', 'fence-ingress', 'fence-database', 'catch-up', 'promote', 'scale-up', 'switch-traffic', 'verify'],
    );
    // The world after: DR serves, production is fenced, traffic at DR.
    assert.equal(await inRecovery('dr'), false);
    await siteSql('dr', 'INSERT INTO failover_writes (id) VALUES (-1)');
    assert.equal(await replicas('mimir-dr', 'mimir-api'), 3, "the DR site runs the primary's recorded replicas");
    assert.equal(await replicas('mimir-dr', 'mimir-worker'), 2);
    assert.equal(await readyPods('mimir-dr', 'app=mimir-api'), 3);
    assert.equal(await replicas('mimir-production', 'mimir-api'), 0);
    assert.equal(await edge(), 'mimir-api.mimir-dr.svc.cluster.local');
    const health = await fetch(process.env.MIMIR_DR_HEALTH_URL!);
    assert.equal(health.status, 200);
    const old = await fetch(process.env.MIMIR_PRIMARY_HEALTH_URL!);
    assert.equal(old.status, 503, 'the fenced old primary reports itself not writable');
    assert.equal(((await old.json()) as { status: string }).status, 'read-only');
  });

  it('fails back: the original primary is rebuilt, serves writes again, and nothing written on the DR site is lost', async () => {
    const w = await testWorker();
    await w.run(async () => {
      if (await inRecovery('dr')) assert.equal((await failover(w)).outcome, 'completed'); // when run alone
      const writer = startWriter('dr', 'failover_writes', 1_000_000);
      while (writer.acknowledged.length < 100) await new Promise((r) => setTimeout(r, 20));
      const handle = await w.client.workflow.start<typeof drFailbackWorkflow>('drFailbackWorkflow', {
        taskQueue: w.taskQueue,
        workflowId: uniqueId('dr-failback-primary'),
        args: [{ site: 'primary', drSite: 'dr', requestedBy: 'ic-dave', incidentId: 'INC-7' }],
      });
      await waitForStatus(handle, (s) => s.openGate?.name === 'failback', 60_000);
      await handle.executeUpdate(approveUpdate, { args: [{ by: 'bob' }] });
      const result = await handle.result();
      await writer.stop();
      assert.equal(result.outcome, 'completed', result.error);
      assert.deepEqual(result.rpo!.bytes, 0, 'zero data loss');
      const rebuilt = result.journal.find((e) => e.step === 'rebuild-home')!;
      assert.match(String(rebuilt.details!['method']), /^pg_rewind$|^pg_basebackup$/);
      const onPrimary = new Set(
        (await siteSql<{ id: string }>('primary', 'SELECT id FROM failover_writes WHERE id > 0')).map((r) => Number(r.id)),
      );
      assert.deepEqual(
        writer.acknowledged.filter((id) => !onPrimary.has(id)),
        [],
        'every write acknowledged by the DR site is on the original primary',
      );
    });
    assert.equal(await inRecovery('primary'), false);
    await siteSql('primary', 'INSERT INTO failover_writes (id) VALUES (-2)'); // the original primary serves writes
    assert.equal(await inRecovery('dr'), true, 'the DR site is a standby again');
    const streaming = await siteSql<{ status: string }>('dr', 'SELECT status FROM pg_stat_wal_receiver');
    assert.equal(streaming[0]?.status, 'streaming');
    assert.equal(await edge(), 'mimir-api.mimir-production.svc.cluster.local', 'traffic is back at production');
    assert.equal(await replicas('mimir-production', 'mimir-api'), 3);
    assert.equal(await replicas('mimir-dr', 'mimir-api'), 0);
  });

  it('a step failing after promotion waits at on-failure: retry runs it again; rejected, it stops for a person with the DR site promoted', async () => {
    // A traffic webhook that refuses every call: switch-traffic fails after the promotion.
    let calls = 0;
    const refusing = createServer((req, res) => {
      calls++;
      req.resume();
      req.on('end', () => res.writeHead(503).end());
    });
    await new Promise<void>((r) => refusing.listen(0, '127.0.0.1', r));
    const base = sandboxProfile();
    try {
      await ensureDrPair();
      const w = await testWorker({
        profile: {
          ...base,
          sites: { ...base.sites, dr: { ...base.sites.dr!, traffic: { provider: 'webhook', url: { env: 'MIMIR_TEST_TRAFFIC_WEBHOOK' } } } },
        },
        env: { MIMIR_TEST_TRAFFIC_WEBHOOK: `http://127.0.0.1:${(refusing.address() as AddressInfo).port}/switch` },
      });
      const result = await w.run(async () => {
        const handle = await startFailover(w);
        await waitForStatus(handle, (s) => s.openGate?.name === 'failover', 60_000);
        await handle.executeUpdate(approveUpdate, { args: [{ by: 'alice' }] });
        const first = await waitForStatus(handle, (s) => s.openGate?.name === 'on-failure', 120_000);
        assert.equal(first.openGate!.details.failedStep, 'switch-traffic');
        const callsBefore = calls;
        await handle.executeUpdate(retryUpdate, { args: [{ by: 'bob', comment: 'try the DNS provider again' }] });
        await waitForStatus(handle, (s) => s.openGate?.name === 'on-failure' && calls > callsBefore, 120_000);
        await handle.executeUpdate(rejectUpdate, { args: [{ by: 'bob', comment: 'switching DNS by hand' }] });
        return handle.result();
      });
      assert.equal(result.outcome, 'failed');
      assert.match(result.error ?? '', /^switch-traffic: .*HTTP 503/);
      assert.equal(await inRecovery('dr'), false, 'nothing is undone after promotion: the DR site stays promoted');
      assert.ok(
        result.journal.some((e) => e.step === 'stopped' && e.outcome === 'failed'),
        'the stop is journaled',
      );
      assert.deepEqual(
        result.journal.filter((e) => e.step === 'gate:on-failure').map((e) => [e.outcome, e.actor]),
        [
          ['retry', 'bob'],
          ['rejected', 'bob'],
        ],
      );
    } finally {
      await new Promise((r) => refusing.close(r));
    }
  });

  it('traffic providers: `webhook` calls the URL, `manual` waits at gate `traffic` for the person who changed DNS', async () => {
    const base = sandboxProfile();
    const withTraffic = (traffic: NonNullable<Profile['sites'][string]['traffic']>): Profile => ({
      ...base,
      sites: { ...base.sites, dr: { ...base.sites.dr!, traffic } },
    });
    const receiver = await startReceiver();
    try {
      await ensureDrPair();
      const w = await testWorker({
        profile: withTraffic({ provider: 'webhook', url: { env: 'MIMIR_TEST_TRAFFIC_WEBHOOK' } }),
        env: { MIMIR_TEST_TRAFFIC_WEBHOOK: receiver.url },
      });
      const result = await w.run(() => failover(w));
      assert.equal(result.outcome, 'completed', result.error);
      assert.equal(receiver.received.length, 1);
      assert.deepEqual({ ...receiver.received[0], workflowId: undefined }, { action: 'switch-traffic', site: 'dr', workflowId: undefined });
      assert.equal(await edge(), 'mimir-api.mimir-production.svc.cluster.local', 'the webhook, not the cluster, moved the traffic');
    } finally {
      await receiver.close();
    }

    await ensureDrPair();
    const w = await testWorker({ profile: withTraffic({ provider: 'manual', instructions: 'point mimir.example.com at dr' }) });
    const result = await w.run(async () => {
      const handle = await startFailover(w);
      await waitForStatus(handle, (s) => s.openGate?.name === 'failover', 60_000);
      await handle.executeUpdate(approveUpdate, { args: [{ by: 'alice' }] });
      const s = await waitForStatus(handle, (x) => x.openGate?.name === 'traffic', 120_000);
      assert.match(s.openGate!.title, /Point DNS at dr, then approve: point mimir\.example\.com at dr/);
      await handle.executeUpdate(approveUpdate, { args: [{ by: 'bob', comment: 'DNS changed, TTL 60s' }] });
      return handle.result();
    });
    assert.equal(result.outcome, 'completed', result.error);
    assert.deepEqual(
      result.approvals.map((a) => [a.gate, a.by]),
      [
        ['failover', 'alice'],
        ['traffic', 'bob'],
      ],
    );
    assert.equal(result.traffic!.provider, 'manual');
  });
});
