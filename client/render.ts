// Text rendering of a procedure's status: the journal as a timeline, the open gate, the outcome.
import type {
  BreachContainmentReport,
  CredentialRotationResult,
  DatabaseRecoveryReport,
  DrReport,
  JournalEntry,
} from '../workflows/types.js';
import type { StatusView } from './client.js';

const time = (iso?: string) => (iso ? iso.slice(11, 19) : '        ');

function duration(e: JournalEntry): string {
  if (!e.endedAt) return '';
  const s = (Date.parse(e.endedAt) - Date.parse(e.startedAt)) / 1000;
  return s >= 1 ? ` ${s.toFixed(1)}s` : '';
}

export function renderStatus(v: StatusView): string {
  const s = v.status;
  const out = [
    `${s.workflowId}  (${s.procedure} on ${s.site}${s.incidentId ? `, incident ${s.incidentId}` : ''})`,
    `requested by ${s.requestedBy}; phase ${s.phase}; execution ${v.execution}`,
    '',
    'Journal (UTC):',
  ];
  for (const e of s.journal) {
    const actor = e.actor === 'mimir-recovery' ? '' : `  [${e.actor}]`;
    out.push(`  ${time(e.startedAt)}  ${e.outcome.padEnd(11)} ${e.title}${duration(e)}${actor}`);
    if (e.error) out.push(`                       error: ${e.error}`);
  }
  for (const a of v.running ?? []) {
    out.push(`  running: ${a.activity} (attempt ${a.attempt})${a.progress !== undefined ? ` progress ${JSON.stringify(a.progress)}` : ''}`);
  }
  const g = s.openGate;
  if (g) {
    out.push(
      '',
      `Waiting for approval at gate '${g.name}': ${g.title}`,
      `  approvers: ${g.approvers.join(', ') || 'anyone but the requester'}; ${g.approvals.length}/${g.required} approvals`,
      `  escalates at ${g.escalateAt}; rejected at ${g.deadlineAt} if still undecided`,
      `  details: ${JSON.stringify(g.details, null, 2).split('\n').join('\n  ')}`,
      '',
      `  approve: mimir-recovery approve ${s.workflowId} --gate ${g.name} --as <you> --comment "..."`,
      `  reject:  mimir-recovery reject ${s.workflowId} --gate ${g.name} --as <you> --comment "..."`,
    );
  }
  if (v.failure) out.push('', `Failed: ${v.failure}`);
  if (v.result !== undefined) {
    const { journal: _journal, ...rest } = v.result as Record<string, unknown>;
    out.push('', `Result: ${JSON.stringify(rest, null, 2)}`);
  }
  return out.join('\n');
}

/** The runbook's incident report template, filled from a procedure's journal and result. */
export function renderReport(v: StatusView): string {
  const s = v.status;
  const r = (v.result ?? {}) as Partial<DatabaseRecoveryReport> & { outcome?: string };
  const first = s.journal[0]?.startedAt;
  const last = [...s.journal].reverse().find((e) => e.endedAt)?.endedAt ?? first;
  const secs = first && last ? Math.round((Date.parse(last) - Date.parse(first)) / 1000) : 0;
  const approvals = s.journal.filter((e) => e.step.startsWith('gate:') && e.outcome !== 'waiting');
  const failed = s.journal.filter((e) => e.outcome === 'failed');
  const lines = [
    `# Incident Report: ${s.procedure} on ${s.site}${s.incidentId ? ` (${s.incidentId})` : ''}`,
    '',
    '## Summary',
    `- **Date**: ${first?.slice(0, 10) ?? 'unknown'}`,
    `- **Duration**: ${Math.floor(secs / 60)} minutes ${secs % 60} seconds`,
    `- **Outcome**: ${r.outcome ?? v.execution.toLowerCase()}${v.failure ? ` (${v.failure})` : ''}`,
    `- **Requested by**: ${s.requestedBy}; workflow \`${s.workflowId}\``,
    '',
    '## Timeline (UTC)',
    ...s.journal.map(
      (e) =>
        `- **${e.startedAt.slice(11, 19)}** - ${e.title}: ${e.outcome}${e.actor !== 'mimir-recovery' ? ` (${e.actor})` : ''}${e.error ? ` — ${e.error}` : ''}`,
    ),
    '',
    '## Approvals',
    ...(approvals.length
      ? approvals.map((e) => `- ${e.step.slice(5)}: ${e.outcome} by ${e.actor} at ${e.endedAt?.slice(11, 19) ?? '?'}`)
      : ['- none']),
  ];
  if (r.plan) {
    const source = r.plan.pointInTime
      ? `point in time ${r.plan.pointInTime.targetTime} (base backup ${r.plan.pointInTime.baseBackup.name}, ${r.plan.pointInTime.walFiles} WAL segments, ${(r.plan.pointInTime.walBytes / 1e6).toFixed(0)} MB)`
      : `backup ${r.plan.backup?.name} taken ${r.plan.backup?.createdAt}`;
    lines.push(
      '',
      '## Resolution',
      `Database ${r.plan.database} on ${r.plan.site} restored from ${source}; writers fenced (${r.plan.deployments.map((d) => `${d.name}×${d.replicas}`).join(', ')}) and restored to the same replicas; safety backup \`${r.plan.safetyBackup}\` kept.`,
      '',
      '## Recovery objectives',
      `- **RTO** (fence to healthy): ${r.rtoSeconds ?? '—'} s`,
      `- **RPO** (data not recovered): ${r.rpoSeconds ?? '—'} s`,
      ...(r.restored
        ? [
            `- **Restore**: ${(r.restored.durationMs / 1000).toFixed(1)} s${r.restored.bytes ? `, ${(r.restored.bytes / 1e6).toFixed(1)} MB at ${r.restored.mbPerSecond?.toFixed(1)} MB/s` : ''}`,
          ]
        : []),
      ...(r.verification
        ? [
            `- **Verification**: ${r.verification.ok ? 'passed' : 'FAILED'} (${r.verification.tables} tables, ${r.verification.articles} articles)`,
          ]
        : []),
    );
  }
  lines.push(...renderSecurity(v.result));
  const dr = (v.result ?? {}) as Partial<DrReport>;
  if (dr.drSite) {
    lines.push(
      '',
      '## Recovery objectives',
      `- **RTO** (approval to healthy): ${dr.rtoSeconds ?? '—'} s`,
      `- **RPO** (WAL not replayed at promotion): ${dr.rpo ? `${dr.rpo.bytes ?? 'unknown'} bytes, ${dr.rpo.seconds ?? 'unknown'} s (${dr.rpo.basis})` : '—'}`,
      ...(dr.traffic ? [`- **Traffic**: ${dr.traffic.provider}, ${dr.traffic.previous ?? '?'} → ${dr.traffic.now ?? '?'}`] : []),
    );
  }
  lines.push(
    '',
    '## Root Cause',
    '[to be written by the incident lead]',
    '',
    '## Action Items',
    ...(failed.length
      ? failed.map((e, i) => `${i + 1}. [ ] Investigate failed step "${e.title}": ${e.error ?? ''} - [Owner] - [Deadline]`)
      : ['1. [ ] [Action description] - [Owner] - [Deadline]']),
  );
  return lines.join('\n');
}

/** The breach-containment and credential-rotation sections of the report. */
function renderSecurity(result: unknown): string[] {
  const b = (result ?? {}) as Partial<BreachContainmentReport>;
  const c = (b.rotation ?? result ?? {}) as Partial<CredentialRotationResult>;
  const out: string[] = [];
  if (b.isolated) {
    out.push(
      '',
      '## Containment',
      `- **Isolated**: ${b.isolated.deployments.map((d) => `${d.name} (was ×${d.originalReplicas})`).join(', ')} in ${b.namespace}${b.isolated.ingress ? `; ingress ${b.isolated.ingress.name} restricted to ${b.isolated.ingress.current} (was ${b.isolated.ingress.previous ?? 'open'})` : ''}`,
      `- **Evidence**: ${b.evidence ? `${b.evidence.artefacts} artefacts, ${(b.evidence.bytes / 1e6).toFixed(1)} MB at ${b.evidence.location}; manifest SHA-256 \`${b.evidence.manifestSha256}\` (check: mimir-recovery evidence verify ${b.evidence.incident})` : 'NOT SEALED'}`,
      ...(b.capture
        ? [
            `- **Captured before isolation**: logs of ${b.capture.pods} pods (${b.capture.logFiles} files, ${b.capture.missing} missing), ${b.capture.events} events, ${b.capture.authFailures} failed logins`,
          ]
        : []),
      `- **Security contact notified**: ${b.notified ?? 'NO'}`,
      `- **Outcome**: ${b.outcome}${b.errors?.length ? `; errors: ${b.errors.join('; ')}` : ''}`,
    );
  }
  if (c.rotationId) {
    out.push(
      '',
      '## Credential rotation',
      `- **${c.secret}/${c.key}**: ${c.outcome} (fingerprint ${c.previousFingerprint ?? '?'} → ${c.fingerprint ?? '?'}); rollback copy ${c.backup} ${c.backupDeleted ? 'deleted after verification' : 'kept'}`,
      `- **Password reset forced**: ${c.passwordReset?.touched ?? 0} users active since ${c.passwordReset?.since ?? '?'} (${c.passwordReset?.newlyFlagged ?? 0} newly flagged)`,
      `- **Restarted**: ${(c.restarted ?? []).map((r) => `${r.name} (revision ${r.revision})`).join(', ') || 'none'}${c.error ? `; error: ${c.error}` : ''}`,
    );
  }
  return out;
}
