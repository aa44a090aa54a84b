// The approval gate: the workflow waits for people to decide. Decisions arrive as Updates whose
// validator refuses at once (wrong person, requester approving own request, gate not open). An
// unanswered gate escalates (a notification) and, at its hard deadline, is rejected by default.
import { condition, setHandler } from '@temporalio/workflow';
import { approveSignal, approveUpdate, rejectSignal, rejectUpdate, retryUpdate } from '../messages.js';
import type { DecisionRequest, DecisionResult, GateView } from '../types.js';
import type { Journal } from './journal.js';
import { durationMs } from './validate.js';

export interface GateSpec {
  name: string;
  title: string;
  /** What the approvers are shown: the plan, the verification, the expected data loss. */
  details: Record<string, unknown>;
  /** Who may approve; empty means anyone but the requester. */
  approvers: string[];
  /** Distinct approvals needed (two for a security sign-off). Default 1. */
  required?: number;
  escalateAfter: string;
  deadline: string;
  /** What an unanswered gate decides at its deadline: reject (the default), or approve (a rollback gate). */
  onDeadline?: 'approve' | 'reject';
  /** Whether the `retry` decision is offered (a failure gate: run the failed step again). */
  allowRetry?: boolean;
}

export interface GateOutcome {
  approved: boolean;
  outcome: 'approved' | 'rejected' | 'timed-out' | 'retry';
  approvals: { by: string; comment?: string; at: string }[];
  rejectedBy?: string;
  comment?: string;
}

type Decision = 'approve' | 'reject' | 'retry';

interface OpenGate {
  view: GateView;
  rejected?: { by: string; comment?: string };
  retry?: { by: string; comment?: string };
}

export class ApprovalGates {
  private current?: OpenGate;

  constructor(
    private readonly journal: Journal,
    private readonly requestedBy: string,
    private readonly escalate: (gate: GateView) => Promise<void>,
  ) {
    setHandler(approveUpdate, (req) => this.decide('approve', req), { validator: (req) => this.validate('approve', req) });
    setHandler(rejectUpdate, (req) => this.decide('reject', req), { validator: (req) => this.validate('reject', req) });
    setHandler(retryUpdate, (req) => this.decide('retry', req), { validator: (req) => this.validate('retry', req) });
    setHandler(approveSignal, (req) => this.signalled('approve', req));
    setHandler(rejectSignal, (req) => this.signalled('reject', req));
  }

  get open(): GateView | undefined {
    return this.current?.view;
  }

  /** Opens a gate and waits for its decision, escalating on timeout and rejecting at the deadline. */
  async wait(spec: GateSpec): Promise<GateOutcome> {
    const now = Date.now();
    const escalateMs = durationMs(spec.escalateAfter) ?? 15 * 60_000;
    const deadlineMs = Math.max(durationMs(spec.deadline) ?? 60 * 60_000, escalateMs);
    const view: GateView = {
      name: spec.name,
      title: spec.title,
      details: spec.details,
      approvers: spec.approvers,
      required: spec.required ?? 1,
      approvals: [],
      requestedBy: this.requestedBy,
      openedAt: new Date(now).toISOString(),
      escalateAt: new Date(now + escalateMs).toISOString(),
      deadlineAt: new Date(now + deadlineMs).toISOString(),
      escalated: false,
      ...(spec.allowRetry ? { allowRetry: true } : {}),
    };
    const gate: OpenGate = { view };
    this.current = gate;
    const entry = this.journal.open(`gate:${spec.name}`, spec.title, this.requestedBy, 'waiting');
    entry.details = { ...spec.details, approvers: spec.approvers, required: view.required };
    const decided = () => gate.rejected !== undefined || gate.retry !== undefined || view.approvals.length >= view.required;
    try {
      if (!(await condition(decided, escalateMs))) {
        view.escalated = true;
        this.journal.note(`escalate:${spec.name}`, `Escalated: no decision on "${spec.title}" after ${spec.escalateAfter}`, 'succeeded', {
          deadlineAt: view.deadlineAt,
        });
        await this.escalate(view);
        await condition(decided, Math.max(deadlineMs - escalateMs, 1));
      }
    } finally {
      this.current = undefined;
    }
    const approvals = view.approvals;
    if (gate.retry) {
      this.journal.close(entry, 'retry', { decision: 'retry the failed step', comment: gate.retry.comment }, gate.retry.by);
      return { approved: false, outcome: 'retry', approvals, comment: gate.retry.comment };
    }
    if (gate.rejected) {
      this.journal.close(entry, 'rejected', { rejectedBy: gate.rejected.by, comment: gate.rejected.comment }, gate.rejected.by);
      return { approved: false, outcome: 'rejected', approvals, rejectedBy: gate.rejected.by, comment: gate.rejected.comment };
    }
    if (approvals.length >= view.required) {
      const by = approvals.map((a) => a.by).join(', ');
      this.journal.close(entry, 'approved', { approvals }, by);
      return { approved: true, outcome: 'approved', approvals, comment: approvals.at(-1)?.comment };
    }
    const approved = spec.onDeadline === 'approve';
    this.journal.close(entry, 'timed-out', {
      approvals,
      deadlineAt: view.deadlineAt,
      decision: `${approved ? 'approved' : 'rejected'} at deadline`,
    });
    return { approved, outcome: 'timed-out', approvals };
  }

  private validate(decision: Decision, req: DecisionRequest): void {
    const open = this.current?.view;
    if (!req || typeof req.by !== 'string' || req.by.trim() === '') {
      throw new Error(`${decision}: 'by' must name the person deciding`);
    }
    if (!open) throw new Error(`${decision}: no gate is open${req.gate ? ` (asked for '${req.gate}')` : ''}; check the status first`);
    if (req.gate !== undefined && req.gate !== open.name) {
      throw new Error(`${decision}: gate '${req.gate}' is not open; the open gate is '${open.name}'`);
    }
    const by = req.by.trim();
    if (decision === 'retry' && !open.allowRetry)
      throw new Error(`retry: gate '${open.name}' does not offer a retry; approve or reject it`);
    if (decision === 'reject' || decision === 'retry') {
      if (open.approvers.length > 0 && !open.approvers.includes(by) && by !== open.requestedBy) {
        throw new Error(`${decision}: '${by}' is not an approver of gate '${open.name}' (approvers: ${open.approvers.join(', ')})`);
      }
      return;
    }
    if (by === open.requestedBy) {
      throw new Error(`approve: '${by}' requested this procedure and may not approve it; another approver must`);
    }
    if (open.approvers.length > 0 && !open.approvers.includes(by)) {
      throw new Error(`approve: '${by}' is not an approver of gate '${open.name}' (approvers: ${open.approvers.join(', ')})`);
    }
    if (open.approvals.some((a) => a.by === by)) {
      throw new Error(
        `approve: '${by}' has already approved gate '${open.name}'; ${open.required - open.approvals.length} more needed from others`,
      );
    }
  }

  /** A decision sent as a signal: the same rules as the Update; refused, it changes nothing and is journaled as refused. */
  private signalled(decision: 'approve' | 'reject', req: DecisionRequest): void {
    try {
      this.validate(decision, req);
    } catch (err) {
      const by = typeof req?.by === 'string' && req.by.trim() !== '' ? req.by.trim() : 'unknown';
      const message = (err as Error).message;
      const entry = this.journal.open(`refused:${decision}`, `Refused ${decision} signal from ${by}: ${message}`, by);
      entry.error = message;
      this.journal.close(entry, 'skipped', { signal: `${decision}Signal`, gate: req?.gate ?? null });
      return;
    }
    this.decide(decision, req);
  }

  private decide(decision: Decision, req: DecisionRequest): DecisionResult {
    const gate = this.current!;
    const by = req.by.trim();
    const comment = req.comment?.trim() || undefined;
    if (decision === 'reject') gate.rejected = { by, comment };
    else if (decision === 'retry') gate.retry = { by, comment };
    else gate.view.approvals.push({ by, comment, at: new Date().toISOString() });
    const remaining = decision === 'approve' ? Math.max(gate.view.required - gate.view.approvals.length, 0) : 0;
    return { gate: gate.view.name, decision, by, remaining };
  }
}
