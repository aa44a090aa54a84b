// Signals, queries and updates of every procedure; shared with the client and the CLI.
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { DecisionRequest, DecisionResult, ProcedureStatus } from './types.js';

/** The journal, the phase and the open gate. */
export const statusQuery = defineQuery<ProcedureStatus>('status');

/** Approve the open gate (validated: allowed approver, not the requester, gate open). */
export const approveUpdate = defineUpdate<DecisionResult, [DecisionRequest]>('approve');

/** Reject the open gate (an approver or the requester may reject). */
export const rejectUpdate = defineUpdate<DecisionResult, [DecisionRequest]>('reject');

/** At a failure gate that offers it: run the failed step again. */
export const retryUpdate = defineUpdate<DecisionResult, [DecisionRequest]>('retry');

/**
 * Approve the open gate, fire-and-forget (for senders that cannot send Updates). Checked by the same
 * rules as `approve`; a refused signal changes nothing and is journaled as refused, since a signal
 * cannot answer its sender: check the status (or the UI's current details) after sending one.
 */
export const approveSignal = defineSignal<[DecisionRequest]>('approveSignal');

/** Reject the open gate, fire-and-forget; checked and journaled as `approveSignal` is. */
export const rejectSignal = defineSignal<[DecisionRequest]>('rejectSignal');
