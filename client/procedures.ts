// The procedures a person can start, with their workflow type, business ID and input schema.
import type { z } from 'zod';
import {
  breachContainmentInput,
  connectionCleanupInput,
  credentialRotationInput,
  databaseRecoveryInput,
  drDrillInput,
  drFailbackInput,
  drFailoverInput,
} from '../workflows/inputs.js';

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
  'breach-containment': {
    workflowType: 'breachContainmentWorkflow',
    summary: 'Suspected Data Breach: capture evidence, isolate, preserve, seal, notify security; release after two security approvals',
    schema: breachContainmentInput,
    workflowId: (i) => `breach-${i.site}-${i.incidentId ?? stamp()}`,
  },
  'credential-rotation': {
    workflowType: 'credentialRotationWorkflow',
    summary: 'Unauthorized Access: rotate api-keys, force password resets, restart consumers; roll back the key if the rollout fails',
    schema: credentialRotationInput,
    workflowId: (i) => `credential-rotation-${i.site}-${i.incidentId ?? stamp()}`,
  },
  'dr-drill': {
    workflowType: 'drDrillWorkflow',
    summary: 'DR drill: restore the latest base backup into a scratch cluster, verify, measure RTO/RPO, tear down',
    schema: drDrillInput,
    workflowId: (i) => `dr-drill-${i.site}-${i.incidentId ?? stamp()}`,
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
