// Signals, queries and updates of every procedure; shared with the client and the CLI.
import { defineQuery, defineUpdate } from '@temporalio/workflow';
import type { DecisionRequest, DecisionResult, ProcedureStatus } from './types.js';

/** The journal, the phase and the open gate. */
export const statusQuery = defineQuery<ProcedureStatus>('status');

/** Approve the open gate (validated: allowed approver, not the requester, gate open). */
export const approveUpdate = defineUpdate<DecisionResult, [DecisionRequest]>('approve');

/** Reject the open gate (an approver or the requester may reject). */
export const rejectUpdate = defineUpdate<DecisionResult, [DecisionRequest]>('reject');

/** At a failure gate that offers it: run the failed step again. */
export const retryUpdate = defineUpdate<DecisionResult, [DecisionRequest]>('retry');
