// Every workflow of Mimir Recovery: the worker's single workflows entry.
export { connectionCleanupWorkflow } from './remediation.js';
export { databaseRecoveryWorkflow } from './database-recovery.js';
export { breachContainmentWorkflow } from './breach-containment.js';
export { credentialRotationWorkflow } from './credential-rotation.js';
export { drDrillWorkflow } from './dr-drill.js';
export { drFailbackWorkflow, drFailoverWorkflow } from './dr-failover.js';
