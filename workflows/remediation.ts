// Remediation procedures from the runbook's "Common Incident Scenarios".
import { ApplicationFailure, proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import { Procedure } from './lib/procedure.js';
import { dbQuery } from './lib/presets.js';
import { connectionCleanupInput } from './inputs.js';
import { durationMs, parseInput } from './lib/validate.js';
import type { ConnectionCleanupInput, ConnectionCleanupResult } from './types.js';

const db = proxyActivities<Activities>({ ...dbQuery, summary: 'Database check' });

/**
 * The runbook's "Database Connection Issues": check the database answers, count connections by
 * state, show which idle sessions would be terminated, and after approval terminate exactly those
 * (a session that became active or was replaced since the plan is left alone), then verify.
 */
export async function connectionCleanupWorkflow(rawInput: ConnectionCleanupInput): Promise<ConnectionCleanupResult> {
  const input = parseInput(connectionCleanupInput, rawInput);
  const proc = new Procedure('connection-cleanup', input);
  const { journal } = proc;
  const idleForMs = durationMs(input.idleFor)!;

  const site = await proc.resolveSite();
  await journal.step(
    'check-database',
    `Check ${site.database.name} accepts connections (pg_isready)`,
    () => db.checkDatabase({ site: site.name }),
    {
      details: (c) => ({ ...c }),
    },
  );
  const before = await journal.step(
    'count-connections',
    'Count connections by state (pg_stat_activity)',
    () => db.connectionCounts({ site: site.name }),
    {
      details: (c) => ({ ...c }),
    },
  );
  const candidates = await journal.step(
    'find-idle-sessions',
    `Find sessions idle longer than ${input.idleFor}`,
    () => db.findIdleSessions({ site: site.name, idleForMs, limit: input.maxSessions + 1 }),
    { details: (s) => ({ count: s.length, pids: s.map((x) => x.pid) }) },
  );
  const base = { site: site.name, database: site.database.name, before, candidates, terminated: [], skipped: [], journal: journal.entries };
  if (candidates.length > input.maxSessions) {
    throw ApplicationFailure.create({
      type: 'SafetyCheckError',
      nonRetryable: true,
      message: `more than maxSessions (${input.maxSessions}) sessions are idle longer than ${input.idleFor}; raise maxSessions or lengthen idleFor`,
    });
  }
  proc.phase = 'running';
  if (input.dryRun) {
    journal.note('dry-run', 'Dry run: nothing terminated', 'skipped');
    proc.phase = 'completed';
    return { ...base, outcome: 'dry-run' };
  }
  if (candidates.length === 0) {
    journal.note('terminate-sessions', 'No idle session to terminate', 'skipped');
    proc.phase = 'completed';
    return { ...base, outcome: 'nothing-to-do' };
  }

  const decision = await proc.approval(site, {
    name: 'terminate',
    title: `Approve terminating ${candidates.length} idle session(s) on ${site.database.name}`,
    details: { idleFor: input.idleFor, sessions: candidates, connectionsBefore: before },
  });
  if (!decision.approved) return { ...base, outcome: 'rejected' };

  const result = await journal.step(
    'terminate-sessions',
    `Terminate ${candidates.length} idle session(s)`,
    () =>
      db.terminateSessions({ site: site.name, idleForMs, sessions: candidates.map((c) => ({ pid: c.pid, backendStart: c.backendStart })) }),
    { details: (r) => ({ ...r }) },
  );
  const after = await journal.step(
    'verify',
    'Verify the terminated sessions are gone',
    async () => {
      const remaining = await db.sessionsPresent({ site: site.name, pids: result.terminated });
      if (remaining.length > 0) {
        throw ApplicationFailure.create({
          type: 'VerificationError',
          nonRetryable: true,
          message: `sessions still present after termination: ${remaining.join(', ')}`,
        });
      }
      return db.connectionCounts({ site: site.name });
    },
    { details: (c) => ({ ...c }) },
  );
  proc.phase = 'completed';
  return { ...base, outcome: 'completed', after, terminated: result.terminated, skipped: result.skipped };
}
