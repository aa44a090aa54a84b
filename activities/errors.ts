// Errors are data: the class name becomes the failure type the workflow sees, and the presets in
// workflows/lib/presets.ts list which of them no retry can fix.

/** Bad input that reached an activity (a workflow validates first; this is the last line). */
export class InvalidInputError extends Error {
  override name = 'InvalidInputError';
}

/** A site name that the worker's profile does not define. */
export class UnknownSiteError extends Error {
  override name = 'UnknownSiteError';
}

/** The worker's configuration cannot serve the request (a referenced variable is unset). */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** A database that does not answer (retryable: it may come back). */
export class DatabaseUnavailableError extends Error {
  override name = 'DatabaseUnavailableError';
}

/** A notification receiver that refused or failed (retryable). */
export class NotifyError extends Error {
  override name = 'NotifyError';
}

/** Removes credentials from anything that may reach a log or a failure message. */
export function redact(text: string): string {
  return text.replace(/(postgres(?:ql)?:\/\/[^:/@\s]+):[^@\s]*@/g, '$1:***@').replace(/(password=)\S+/gi, '$1***');
}

/** A Kubernetes object or namespace that does not exist (non-retryable: the name is wrong). */
export class NotFoundError extends Error {
  override name = 'NotFoundError';
}

/** The worker's identity may not do this (non-retryable: RBAC must change first). */
export class PermissionDeniedError extends Error {
  override name = 'PermissionDeniedError';
}

/** A transient API failure (conflict, throttling, server error, network): retried. */
export class KubernetesApiError extends Error {
  override name = 'KubernetesApiError';
}

/** A wait that did not converge in time (retryable: the activity's retry waits again). */
export class NotReadyError extends Error {
  override name = 'NotReadyError';
}

/** A restore whose server would not come up from the backup (WAL missing, backup damaged): no retry fixes it. */
export class RestoreFailedError extends Error {
  override name = 'RestoreFailedError';
}
