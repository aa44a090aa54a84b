// Named activity option presets. Every preset sets its timeouts, attempts and non-retryable error
// types explicitly, so a reader of a workflow knows how each call behaves under failure.
import type { ActivityOptions } from '@temporalio/workflow';

/** Error class names (activities/errors.ts) that no retry can fix: bad input, unknown names, refused permissions. */
export const NON_RETRYABLE_ERRORS = [
  'InvalidInputError',
  'UnknownSiteError',
  'ConfigError',
  'NotFoundError',
  'PermissionDeniedError',
  'SafetyCheckError',
  'RestoreFailedError',
];

/** A short call to the Kubernetes API server. */
export const k8sCall: ActivityOptions = {
  startToCloseTimeout: '30s',
  retry: {
    initialInterval: '1s',
    backoffCoefficient: 2,
    maximumInterval: '15s',
    maximumAttempts: 8,
    nonRetryableErrorTypes: NON_RETRYABLE_ERRORS,
  },
};

/** A short query or command against a database. */
export const dbQuery: ActivityOptions = {
  startToCloseTimeout: '30s',
  retry: {
    initialInterval: '1s',
    backoffCoefficient: 2,
    maximumInterval: '10s',
    maximumAttempts: 6,
    nonRetryableErrorTypes: NON_RETRYABLE_ERRORS,
  },
};

/** A long database operation (dump, restore, base backup): heartbeats every 5 s, so a dead worker is noticed in 20 s. */
export const longDbOp: ActivityOptions = {
  startToCloseTimeout: '12h',
  heartbeatTimeout: '20s',
  retry: {
    initialInterval: '5s',
    backoffCoefficient: 2,
    maximumInterval: '2m',
    maximumAttempts: 5,
    nonRetryableErrorTypes: NON_RETRYABLE_ERRORS,
  },
};

/** A notification to people (webhook): retried for a while, never blocks a procedure for long. */
export const notifyCall: ActivityOptions = {
  startToCloseTimeout: '15s',
  retry: {
    initialInterval: '1s',
    backoffCoefficient: 2,
    maximumInterval: '30s',
    maximumAttempts: 10,
    nonRetryableErrorTypes: NON_RETRYABLE_ERRORS,
  },
};

/** A Kubernetes change that waits for the cluster to converge (scale, fence, rollout): heartbeats while waiting. */
export const k8sWait: ActivityOptions = {
  startToCloseTimeout: '15m',
  heartbeatTimeout: '60s',
  retry: {
    initialInterval: '2s',
    backoffCoefficient: 2,
    maximumInterval: '30s',
    maximumAttempts: 5,
    nonRetryableErrorTypes: NON_RETRYABLE_ERRORS,
  },
};

/** Evidence capture (pod logs, a dump into the evidence store, sealing): heartbeats per artefact, so a dead worker is noticed in 20 s. */
export const evidenceCapture: ActivityOptions = {
  startToCloseTimeout: '2h',
  heartbeatTimeout: '20s',
  retry: {
    initialInterval: '2s',
    backoffCoefficient: 2,
    maximumInterval: '1m',
    maximumAttempts: 5,
    nonRetryableErrorTypes: NON_RETRYABLE_ERRORS,
  },
};

/** A DR step that waits on the database or the cluster (catch-up, promotion, scale-up, rebuild): heartbeats, so a dead worker is noticed in 10 s, which counts against the RTO. */
export const drWait: ActivityOptions = {
  startToCloseTimeout: '30m',
  heartbeatTimeout: '10s',
  retry: {
    initialInterval: '1s',
    backoffCoefficient: 2,
    maximumInterval: '10s',
    maximumAttempts: 5,
    nonRetryableErrorTypes: NON_RETRYABLE_ERRORS,
  },
};

/** A rollout whose failure is an answer (a rotation rolls back): waited for once more, then reported. */
export const k8sRollout: ActivityOptions = {
  startToCloseTimeout: '15m',
  heartbeatTimeout: '60s',
  retry: {
    initialInterval: '2s',
    backoffCoefficient: 2,
    maximumInterval: '30s',
    maximumAttempts: 2,
    nonRetryableErrorTypes: NON_RETRYABLE_ERRORS,
  },
};

/**
 * A DR drill's restore into a scratch cluster: it heartbeats every 2 s or faster, and the SDK sends
 * heartbeats (and so learns of a cancellation) at most every 0.8 x heartbeatTimeout: 4 s here.
 */
export const drillRestore: ActivityOptions = {
  startToCloseTimeout: '6h',
  heartbeatTimeout: '5s',
  retry: {
    initialInterval: '5s',
    backoffCoefficient: 2,
    maximumInterval: '1m',
    maximumAttempts: 3,
    nonRetryableErrorTypes: NON_RETRYABLE_ERRORS,
  },
};

/** Tearing down a scratch copy (stop a server, delete a directory): retried long, since leaving it behind costs disk. */
export const scratchTeardown: ActivityOptions = {
  startToCloseTimeout: '5m',
  retry: {
    initialInterval: '2s',
    backoffCoefficient: 2,
    maximumInterval: '30s',
    maximumAttempts: 20,
    nonRetryableErrorTypes: NON_RETRYABLE_ERRORS,
  },
};
