// Text rendering of a procedure's status: the journal as a timeline, the open gate, the outcome.
import type { JournalEntry } from '../workflows/types.js';
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
