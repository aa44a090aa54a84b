// DR drills on a Temporal Schedule: one schedule per site (`dr-drill-<site>`) that starts
// drDrillWorkflow on a cron, with an overlap policy; pause, unpause, trigger, delete, and a list of
// the schedules with their recent runs and each run's result (RTO, RPO, outcome or failure).
import { ScheduleAlreadyRunning, ScheduleNotFoundError, ScheduleOverlapPolicy } from '@temporalio/client';
import { drDrillInput } from '../workflows/inputs.js';
import { rootMessage } from '../workflows/lib/journal.js';
import type { DrDrillResult } from '../workflows/types.js';
import { taskQueue, UsageError, type MimirClient } from './client.js';

/** The CLI's names for Temporal's overlap policies. */
export const OVERLAP_POLICIES = {
  skip: ScheduleOverlapPolicy.SKIP,
  'buffer-one': ScheduleOverlapPolicy.BUFFER_ONE,
  'buffer-all': ScheduleOverlapPolicy.BUFFER_ALL,
  'cancel-other': ScheduleOverlapPolicy.CANCEL_OTHER,
  'terminate-other': ScheduleOverlapPolicy.TERMINATE_OTHER,
  'allow-all': ScheduleOverlapPolicy.ALLOW_ALL,
} as const;
export type OverlapName = keyof typeof OVERLAP_POLICIES;

const PREFIX = 'dr-drill-';
export const drillScheduleId = (site: string) => `${PREFIX}${site}`;

function overlapOf(name: string): ScheduleOverlapPolicy {
  const policy = OVERLAP_POLICIES[name as OverlapName];
  if (!policy) throw new UsageError(`--overlap must be one of ${Object.keys(OVERLAP_POLICIES).join(', ')} (got '${name}')`);
  return policy;
}

/** Creates the site's drill schedule, or updates it if it exists (so `schedule` is idempotent). */
export async function scheduleDrill(
  c: MimirClient,
  opts: { site: string; requestedBy: string; cron: string; overlap?: string; timezone?: string },
): Promise<{ scheduleId: string; created: boolean; nextRuns: string[] }> {
  const input = { site: opts.site, requestedBy: opts.requestedBy };
  const parsed = drDrillInput.safeParse(input);
  if (!parsed.success)
    throw new UsageError(
      `invalid drill input: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'input'}: ${i.message}`).join('; ')}`,
    );
  if (opts.cron.trim().split(/\s+/).length < 5 && !opts.cron.trim().startsWith('@'))
    throw new UsageError(`--cron must be a cron expression such as '0 3 * * *' (got '${opts.cron}')`);
  const overlap = overlapOf(opts.overlap ?? 'skip');
  const scheduleId = drillScheduleId(opts.site);
  const spec = { cronExpressions: [opts.cron], ...(opts.timezone ? { timezone: opts.timezone } : {}) };
  const action = {
    type: 'startWorkflow' as const,
    workflowType: 'drDrillWorkflow',
    workflowId: scheduleId, // Temporal appends the scheduled time: one business ID per run
    taskQueue: taskQueue(),
    args: [input],
    staticSummary: `DR drill on ${opts.site} (schedule ${scheduleId})`,
    staticDetails: 'Restore the latest base backup into a scratch cluster, verify, measure RTO/RPO against the objectives, tear down',
    // Each run carries the cron it was started by; `drill list` reads it back (the server keeps only the compiled calendar).
    memo: { cron: opts.cron, scheduledBy: opts.requestedBy },
  };
  const policies = { overlap, catchupWindow: '1h' as const };
  try {
    const handle = await c.client.schedule.create({ scheduleId, spec, action, policies });
    return { scheduleId, created: true, nextRuns: (await handle.describe()).info.nextActionTimes.map((d) => d.toISOString()) };
  } catch (e) {
    if (e instanceof ScheduleAlreadyRunning) {
      const handle = c.client.schedule.getHandle(scheduleId);
      await handle.update((prev) => ({ ...prev, spec, action, policies }));
      return { scheduleId, created: false, nextRuns: (await handle.describe()).info.nextActionTimes.map((d) => d.toISOString()) };
    }
    if (e instanceof Error && /invalid|cron/i.test(e.message)) throw new UsageError(`schedule refused: ${e.message}`);
    throw e;
  }
}

async function withSchedule<T>(
  c: MimirClient,
  site: string,
  fn: (h: ReturnType<MimirClient['client']['schedule']['getHandle']>) => Promise<T>,
) {
  try {
    return await fn(c.client.schedule.getHandle(drillScheduleId(site)));
  } catch (e) {
    if (e instanceof ScheduleNotFoundError)
      throw new UsageError(`no drill schedule for site ${site}; create one with: mimir-recovery drill schedule --site ${site} --cron ...`);
    throw e;
  }
}

export const pauseDrills = (c: MimirClient, site: string, note: string) => withSchedule(c, site, (h) => h.pause(note));
export const unpauseDrills = (c: MimirClient, site: string, note: string) => withSchedule(c, site, (h) => h.unpause(note));
export const deleteDrills = (c: MimirClient, site: string) => withSchedule(c, site, (h) => h.delete());
/**
 * Starts a drill now. The schedule's own overlap policy applies unless `overlap` overrides it (the
 * SDK's default for a trigger would be allow-all: a second drill beside a running one).
 */
export const triggerDrill = (c: MimirClient, site: string, overlap?: string) =>
  withSchedule(c, site, async (h) => h.trigger(overlap ? overlapOf(overlap) : (await h.describe()).policies.overlap));

export interface DrillRun {
  workflowId: string;
  runId: string;
  scheduledAt: string;
  status: string;
  outcome?: DrDrillResult['outcome'];
  rtoSeconds?: number;
  rpoSeconds?: number;
  missed?: string[];
  failure?: string;
}

export interface DrillSchedule {
  scheduleId: string;
  site: string;
  cron: string;
  overlap: string;
  paused: boolean;
  note: string;
  nextRuns: string[];
  recentRuns: DrillRun[];
}

/** The drill schedules (one site's, or all), each with its recent runs and their results. */
export async function listDrills(c: MimirClient, opts: { site?: string } = {}): Promise<DrillSchedule[]> {
  const ids: string[] = [];
  if (opts.site) ids.push(drillScheduleId(opts.site));
  else for await (const s of c.client.schedule.list()) if (s.scheduleId.startsWith(PREFIX)) ids.push(s.scheduleId);
  const out: DrillSchedule[] = [];
  for (const scheduleId of ids.sort()) {
    const site = scheduleId.slice(PREFIX.length);
    const d = await withSchedule(c, site, (h) => h.describe());
    const recentRuns = await Promise.all(
      d.info.recentActions.map(async (a): Promise<DrillRun> => {
        const { workflowId, firstExecutionRunId: runId } = a.action.workflow;
        const handle = c.client.workflow.getHandle(workflowId, runId);
        const status = (await handle.describe()).status.name;
        const run: DrillRun = { workflowId, runId, scheduledAt: a.scheduledAt.toISOString(), status };
        if (status === 'COMPLETED') {
          const r = (await handle.result()) as DrDrillResult;
          Object.assign(run, { outcome: r.outcome, rtoSeconds: r.rtoSeconds, rpoSeconds: r.rpoSeconds, missed: r.missed });
        } else if (status === 'FAILED') {
          run.failure = await handle.result().then(
            () => undefined,
            (e: unknown) => rootMessage(e),
          );
        }
        return run;
      }),
    );
    const overlapName = Object.entries(OVERLAP_POLICIES).find(([, v]) => v === d.policies.overlap)?.[0] ?? String(d.policies.overlap);
    out.push({
      scheduleId,
      site,
      cron: typeof d.action.memo?.cron === 'string' ? d.action.memo.cron : '(set outside mimir-recovery)',
      overlap: overlapName,
      paused: d.state.paused,
      note: d.state.note ?? '',
      nextRuns: d.info.nextActionTimes.map((t) => t.toISOString()),
      recentRuns,
    });
  }
  return out;
}
