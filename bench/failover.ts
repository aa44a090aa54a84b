// Benchmark `failover`: the RTO of the DR failover workflow over repeated failovers in a sandbox
// (default instance `bench`, or MIMIR_BENCH_SANDBOX), each followed by a failback, so every run
// starts from the seeded DR pair and the sandbox is left as it was found. The gate is approved as
// soon as it opens; RTO is the workflow's own figure (approval to healthy).
//
//   npm run bench -- failover [runs]        (node --import tsx bench/failover.ts; default 5 runs)
//
// Figures: RTO median, min, max; and where the RTO goes, from the workflow history's activity events
// inside the RTO window: `database` = time activities spent working on PostgreSQL (fence, catch-up,
// promotion, verification), `kubernetes` = working on the API server (fence, scale-up and its wait,
// traffic), `orchestration` = the rest (workflow tasks, activity dispatch, the journal).
// Baseline, measured in the same run and alternating with the workflow: the same failover by hand, a
// script that calls the same activities in the same order with no Temporal in between (fence the
// primary's applications, ingress and database; catch up; promote; scale up the DR site; open its
// ingress; switch traffic; poll health and writability), timed from its first change to healthy.
// `ratio` = workflow RTO median / by-hand median: what durability, gates' bookkeeping and the
// journal cost. The last line printed is one JSON object with the figures.
import { Client, Connection } from '@temporalio/client';
import { bundleWorkflowCode, DefaultLogger, makeTelemetryFilterString, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { createActivities } from '../activities/index.js';
import { loadProfile } from '../config/profile.js';
import { ensureDrPair } from '../sandbox/dr.js';
import { SANDBOX_PROFILE, sandboxEnv, sandboxInstance, sandboxUp } from '../sandbox/index.js';
import type { drFailbackWorkflow, drFailoverWorkflow } from '../workflows/dr-failover.js';
import { FENCED_SOURCE_RANGE, targetOf } from '../workflows/lib/dr.js';
import { approveUpdate, statusQuery } from '../workflows/messages.js';
import type { DrReport } from '../workflows/types.js';

const DATABASE_ACTIVITIES = new Set([
  'fenceDatabase',
  'terminateClientSessions',
  'waitForCatchUp',
  'promoteStandby',
  'checkWritable',
  'checkHealth',
]);
const KUBERNETES_ACTIVITIES = new Set(['fence', 'restrictIngress', 'unfence', 'restoreIngress', 'switchTraffic']);

const log = (line: string) => console.log(line);
const round = (n: number, digits = 2) => Math.round(n * 10 ** digits) / 10 ** digits;
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

type Timestamp = { seconds?: unknown; nanos?: number | null } | null | undefined;
const msOf = (t: Timestamp) => (t ? Number(t.seconds ?? 0) * 1000 + (t.nanos ?? 0) / 1e6 : NaN);

async function approveWhenOpen(handle: { query: (q: typeof statusQuery) => Promise<{ openGate?: { name: string } }> }, gate: string) {
  const until = Date.now() + 120_000;
  for (;;) {
    const s = await handle.query(statusQuery).catch(() => undefined);
    if (s?.openGate?.name === gate) return;
    if (s?.openGate) throw new Error(`gate '${s.openGate.name}' opened instead of '${gate}'`);
    if (Date.now() > until) throw new Error(`gate '${gate}' did not open within 120 s`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

type Activities = ReturnType<typeof createActivities>;

/**
 * The failover by hand: the workflow's steps after its approval, as a plain script of the same
 * activity calls (no workflow, no journal, no durability). Returns seconds from the first change to
 * healthy and writable.
 */
async function failoverByHand(a: Activities, id: string): Promise<number> {
  const primary = await a.resolveSite({ site: 'primary' });
  const dr = await a.resolveSite({ site: 'dr' });
  const t0 = performance.now();
  const recorded = await a.fence({ target: targetOf(primary), deployments: primary.kubernetes.deployments, by: `bench-by-hand-${id}` });
  if (primary.kubernetes.ingress)
    await a.restrictIngress({ target: targetOf(primary), name: primary.kubernetes.ingress, sourceRange: FENCED_SOURCE_RANGE });
  await a.fenceDatabase({ site: 'primary' });
  await a.terminateClientSessions({ site: 'primary' });
  const caught = await a.waitForCatchUp({ primary: 'primary', standby: 'dr', timeoutMs: 60_000 });
  if (!caught.caughtUp) throw new Error(`by hand ${id}: the standby did not catch up`);
  await a.promoteStandby({ site: 'dr' });
  await a.unfence({
    target: targetOf(dr),
    deployments: dr.kubernetes.deployments.map((name) => ({
      name,
      replicas: recorded.find((r) => r.name === name)?.originalReplicas ?? 1,
    })),
  });
  if (dr.kubernetes.ingress) await a.restoreIngress({ target: targetOf(dr), name: dr.kubernetes.ingress });
  await a.switchTraffic({ site: 'dr', workflowId: `bench-by-hand-${id}` });
  for (;;) {
    const [health, w] = await Promise.all([a.checkHealth({ site: 'dr' }), a.checkWritable({ site: 'dr' })]);
    if (health.healthy && w.writable) return (performance.now() - t0) / 1000;
    if (performance.now() - t0 > 120_000) throw new Error(`by hand ${id}: the DR site is not healthy after 120 s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function main() {
  Runtime.install({
    logger: new DefaultLogger('ERROR'),
    telemetryOptions: { logging: { forward: {}, filter: makeTelemetryFilterString({ core: 'ERROR' }) } },
  });
  const runs = Number(process.argv[2] ?? 5);
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`runs: '${process.argv[2]}' must be a positive integer`);
  const inst = sandboxInstance(process.env.MIMIR_BENCH_SANDBOX ?? 'bench');
  await sandboxUp(inst, { log: (l) => log(`sandbox: ${l}`) });
  Object.assign(process.env, sandboxEnv(inst));
  const repaired = await ensureDrPair(inst);
  if (repaired.length) log(`sandbox: brought back to the seeded DR pair: ${repaired.join('; ')}`);

  const bundle = await bundleWorkflowCode({
    workflowsPath: fileURLToPath(new URL('../workflows/index.ts', import.meta.url)),
    logger: { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error: console.error },
  });
  const taskQueue = `bench-failover-${randomUUID()}`;
  const workerConnection = await NativeConnection.connect({ address: process.env.TEMPORAL_ADDRESS });
  const client = new Client({ connection: await Connection.connect({ address: process.env.TEMPORAL_ADDRESS }) });
  const activities = createActivities({ profile: loadProfile(SANDBOX_PROFILE), env: process.env });
  const worker = await Worker.create({ connection: workerConnection, taskQueue, workflowBundle: bundle, activities });

  const rows: { rto: number; database: number; kubernetes: number; orchestration: number; failback: number; method: string }[] = [];
  const byHand: number[] = [];
  /** Back to the seeded pair through the failback workflow (timed apart, not part of any RTO). */
  const failBack = async (id: string) => {
    const t0 = Date.now();
    const back = await client.workflow.start<typeof drFailbackWorkflow>('drFailbackWorkflow', {
      taskQueue,
      workflowId: `dr-failback-primary-bench-${id}`,
      args: [{ site: 'primary', drSite: 'dr', requestedBy: 'ic-bench', incidentId: `BENCH-${id}` }],
    });
    await approveWhenOpen(back, 'failback');
    await back.executeUpdate(approveUpdate, { args: [{ by: 'alice' }] });
    const fb: DrReport = await back.result();
    if (fb.outcome !== 'completed') throw new Error(`failback ${id} ended '${fb.outcome}': ${fb.error ?? ''}`);
    const method = String(fb.journal.find((e) => e.step === 'rebuild-home')?.details?.['method'] ?? '?');
    return { failback: (Date.now() - t0) / 1000, method };
  };
  try {
    await worker.runUntil(async () => {
      for (let i = 1; i <= runs; i++) {
        const id = `${Date.now()}-${i}`;
        const handle = await client.workflow.start<typeof drFailoverWorkflow>('drFailoverWorkflow', {
          taskQueue,
          workflowId: `dr-failover-primary-bench-${id}`,
          args: [{ site: 'primary', drSite: 'dr', requestedBy: 'ic-bench', incidentId: `BENCH-${id}`, severity: 'SEV-1' }],
        });
        await approveWhenOpen(handle, 'failover');
        await handle.executeUpdate(approveUpdate, { args: [{ by: 'alice', comment: 'bench: approved as soon as open' }] });
        const report: DrReport = await handle.result();
        if (report.outcome !== 'completed') throw new Error(`failover ${i} ended '${report.outcome}': ${report.error ?? ''}`);

        // Where the RTO went: activity execution (started to closed) inside the window, by kind.
        const from = Date.parse(report.approvals.find((a) => a.gate === 'failover')!.at);
        const to = from + report.rtoSeconds! * 1000;
        const history = await handle.fetchHistory();
        const typeOf = new Map<string, string>();
        const startedAt = new Map<string, number>();
        const spent = { database: 0, kubernetes: 0 };
        for (const e of history.events ?? []) {
          const id = String(e.eventId);
          const scheduled = e.activityTaskScheduledEventAttributes;
          if (scheduled) typeOf.set(id, scheduled.activityType?.name ?? '');
          if (e.activityTaskStartedEventAttributes)
            startedAt.set(String(e.activityTaskStartedEventAttributes.scheduledEventId), msOf(e.eventTime));
          const closed =
            e.activityTaskCompletedEventAttributes ?? e.activityTaskFailedEventAttributes ?? e.activityTaskTimedOutEventAttributes;
          if (closed) {
            const sid = String(closed.scheduledEventId);
            const start = startedAt.get(sid) ?? NaN;
            const end = msOf(e.eventTime);
            if (!(start >= from && end <= to + 1000)) continue;
            const type = typeOf.get(sid) ?? '';
            if (DATABASE_ACTIVITIES.has(type)) spent.database += (end - start) / 1000;
            else if (KUBERNETES_ACTIVITIES.has(type)) spent.kubernetes += (end - start) / 1000;
          }
        }
        const rto = report.rtoSeconds!;
        const orchestration = Math.max(rto - spent.database - spent.kubernetes, 0);

        const { failback, method } = await failBack(id);
        rows.push({ rto, database: spent.database, kubernetes: spent.kubernetes, orchestration, failback, method });
        log(
          `run ${i}: RTO ${rto.toFixed(1)} s (database ${spent.database.toFixed(2)} s, kubernetes ${spent.kubernetes.toFixed(2)} s, orchestration ${orchestration.toFixed(2)} s); RPO ${report.rpo!.bytes} bytes; failback ${failback.toFixed(1)} s (${method})`,
        );

        // The baseline: the same failover by hand, then back again the same way.
        const hand = await failoverByHand(activities, `${id}-hand`);
        const again = await failBack(`${id}-hand`);
        byHand.push(hand);
        log(`run ${i}: by hand ${hand.toFixed(1)} s; failback ${again.failback.toFixed(1)} s (${again.method})`);
      }
    });
  } finally {
    await workerConnection.close();
    const left = await ensureDrPair(inst); // whatever happened, the sandbox is left as it was found
    if (left.length) log(`sandbox: repaired after the runs: ${left.join('; ')}`);
  }

  const total = rows.reduce((t, r) => t + r.rto, 0);
  const share = (k: 'database' | 'kubernetes' | 'orchestration') => round(rows.reduce((t, r) => t + r[k], 0) / total, 3);
  const figures = {
    bench: 'failover',
    sandbox: inst.name,
    runs: rows.length,
    rto_median_s: round(median(rows.map((r) => r.rto))),
    rto_min_s: round(Math.min(...rows.map((r) => r.rto))),
    rto_max_s: round(Math.max(...rows.map((r) => r.rto))),
    by_hand_median_s: round(median(byHand)),
    ratio: round(median(rows.map((r) => r.rto)) / median(byHand)),
    share_database: share('database'),
    share_kubernetes: share('kubernetes'),
    share_orchestration: share('orchestration'),
    failback_median_s: round(median(rows.map((r) => r.failback))),
    failback_methods: [...new Set(rows.map((r) => r.method))],
    goal_rto_s: 15,
  };
  log(
    `RTO over ${rows.length} failovers: median ${figures.rto_median_s} s, min ${figures.rto_min_s} s, max ${figures.rto_max_s} s (goal < 15 s); ` +
      `spent in the database ${(figures.share_database * 100).toFixed(0)} %, Kubernetes ${(figures.share_kubernetes * 100).toFixed(0)} %, orchestration ${(figures.share_orchestration * 100).toFixed(0)} %`,
  );
  log(`By hand (the same activities, no workflow): median ${figures.by_hand_median_s} s; ratio workflow / by hand ${figures.ratio}`);
  console.log(JSON.stringify(figures));
}

await main();
