// What every procedure shares: search attributes, the status query, the journal, the approval
// gates and the saga. A procedure file creates one `Procedure` and reads like the runbook.
import { proxyActivities, setHandler, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../../activities/index.js';
import { statusQuery } from '../messages.js';
import type { ProcedureInputBase, ProcedurePhase, ProcedureStatus, SiteView } from '../types.js';
import { ApprovalGates, type GateOutcome, type GateSpec } from './gate.js';
import { Journal } from './journal.js';
import { dbQuery, notifyCall } from './presets.js';
import { Saga } from './saga.js';
import { searchAttributes } from './search-attributes.js';

const { resolveSite } = proxyActivities<Activities>({ ...dbQuery, summary: 'Resolve the site in the worker profile' });
const { notify } = proxyActivities<Activities>({ ...notifyCall, summary: 'Notify people' });

export class Procedure {
  readonly journal: Journal;
  readonly saga: Saga;
  readonly gates: ApprovalGates;
  private phaseValue: ProcedurePhase = 'preflight';

  constructor(
    readonly name: string,
    readonly input: ProcedureInputBase,
  ) {
    const wf = workflowInfo();
    this.journal = new Journal(() => `${name} on ${input.site}: ${this.phaseValue}`);
    this.saga = new Saga(this.journal);
    this.gates = new ApprovalGates(this.journal, input.requestedBy, async (gate) => {
      await notify({
        kind: 'escalation',
        subject: `${wf.workflowId}: gate '${gate.name}' awaits a decision`,
        text: `"${gate.title}" has waited since ${gate.openedAt}. Approvers: ${gate.approvers.join(', ') || 'anyone but the requester'}. It is rejected at ${gate.deadlineAt} unless approved.`,
        workflowId: wf.workflowId,
        details: { gate: gate.name, requestedBy: gate.requestedBy, deadlineAt: gate.deadlineAt },
      });
    });
    setHandler(statusQuery, () => this.status());
    upsertSearchAttributes([
      { key: searchAttributes.procedure, value: name },
      { key: searchAttributes.site, value: input.site },
      ...(input.incidentId ? [{ key: searchAttributes.incidentId, value: input.incidentId }] : []),
      ...(input.severity ? [{ key: searchAttributes.severity, value: input.severity }] : []),
      { key: searchAttributes.phase, value: this.phaseValue },
    ]);
  }

  get phase(): ProcedurePhase {
    return this.phaseValue;
  }

  set phase(phase: ProcedurePhase) {
    if (phase === this.phaseValue) return;
    this.phaseValue = phase;
    upsertSearchAttributes([{ key: searchAttributes.phase, value: phase }]);
  }

  status(): ProcedureStatus {
    const open = this.gates.open;
    return {
      procedure: this.name,
      workflowId: workflowInfo().workflowId,
      site: this.input.site,
      incidentId: this.input.incidentId,
      requestedBy: this.input.requestedBy,
      phase: open ? 'awaiting-approval' : this.phaseValue,
      ...(open ? { openGate: open } : {}),
      journal: this.journal.entries,
    };
  }

  /** Preflight's first step: the site exists in the worker's profile and its references resolve. */
  async resolveSite(): Promise<SiteView> {
    return this.journal.step(
      'resolve-site',
      `Resolve site '${this.input.site}' in the profile`,
      () => resolveSite({ site: this.input.site }),
      {
        details: (s) => ({ namespace: s.kubernetes.namespace, database: s.database.name, approvers: s.approvals.approvers }),
      },
    );
  }

  /** Waits at an approval gate with the site's approvers and timings (the input may shorten them). */
  async approval(
    site: SiteView,
    spec: Omit<GateSpec, 'approvers' | 'escalateAfter' | 'deadline'> & Partial<GateSpec>,
  ): Promise<GateOutcome> {
    const previous = this.phaseValue;
    this.phase = 'awaiting-approval';
    const outcome = await this.gates.wait({
      approvers: site.approvals.approvers,
      escalateAfter: this.input.approval?.escalateAfter ?? site.approvals.escalateAfter,
      deadline: this.input.approval?.deadline ?? site.approvals.deadline,
      ...spec,
    });
    this.phase = outcome.approved ? previous : 'rejected';
    return outcome;
  }
}
