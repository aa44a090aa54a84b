// The procedures a person can start, with their workflow type, business ID and input schema.
import type { z } from 'zod';
import { connectionCleanupInput, databaseRecoveryInput, drFailbackInput, drFailoverInput } from '../workflows/inputs.js';

export interface ProcedureDef {
  workflowType: string;
  summary: string;
  schema: z.ZodType;
  /** Business ID: a second start of the same procedure for the same incident is refused, not doubled. */
  workflowId: (input: { site: string; incidentId?: string }) => string;
}

const stamp = () => new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, 'Z');

export const PROCEDURES: Record<string, ProcedureDef> = {
  'connection-cleanup': {
    workflowType: 'connectionCleanupWorkflow',
    summary: 'Database Connection Issues: count connections, terminate idle sessions after approval',
    schema: connectionCleanupInput,
    workflowId: (i) => `connection-cleanup-${i.site}-${i.incidentId ?? stamp()}`,
  },
  'database-recovery': {
    workflowType: 'databaseRecoveryWorkflow',
    summary: 'Point-in-Time Recovery: fence writers, safety backup, restore, verify, unfence exactly as before',
    schema: databaseRecoveryInput,
    workflowId: (i) => `db-recovery-${i.site}-${i.incidentId ?? stamp()}`,
  },
  'dr-failover': {
    workflowType: 'drFailoverWorkflow',
    summary: 'Failover to DR Site: readiness, approval, fence the primary, catch up, promote the standby, scale up, switch traffic, verify',
    schema: drFailoverInput,
    workflowId: (i) => `dr-failover-${i.site}-${i.incidentId ?? stamp()}`,
  },
  'dr-failback': {
    workflowType: 'drFailbackWorkflow',
    summary: 'Failback from the DR site: rebuild the old primary as a standby, switch over back with zero data loss',
    schema: drFailbackInput,
    workflowId: (i) => `dr-failback-${i.site}-${i.incidentId ?? stamp()}`,
  },
};
