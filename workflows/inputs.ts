// Input schemas of every procedure: the workflow validates with them before its first side effect,
// and the CLI validates with the same schemas before it starts anything.
import { z } from 'zod';
import { duration, EVIDENCE_PATH, procedureInputBase, sourceRange } from './lib/validate.js';

export const connectionCleanupInput = procedureInputBase
  .extend({
    idleFor: duration.default('1h'),
    maxSessions: z.number().int().min(1).max(10_000).default(500),
    dryRun: z.boolean().default(false),
  })
  .strict();

export const databaseRecoveryInput = procedureInputBase
  .extend({
    source: z.union([
      z
        .object({ backup: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/, 'must name a backup (letters, digits, ".", "_", "-")') })
        .strict(),
      z
        .object({
          targetTime: z
            .string()
            .regex(
              /^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:?\d\d)$/,
              'must be an ISO 8601 timestamp with a time zone, such as 2026-12-03T17:05:00Z',
            )
            .refine((v) => !Number.isNaN(Date.parse(v)), 'is not a real date'),
        })
        .strict(),
    ]),
    jobs: z.number().int().min(1).max(32).default(4),
    dryRun: z.boolean().default(false),
    onFailureDeadline: duration.default('30m'),
  })
  .strict();

// Breach containment and credential rotation (the runbook's "Security Incidents").
const k8sName = z.string().regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, 'must be a Kubernetes name such as mimir-api');
const incidentId = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'must be an incident id such as INC-1234');

export const credentialRotationInput = procedureInputBase
  .extend({
    incidentId,
    /** Default: the profile's security.credentials. */
    secret: k8sName.optional(),
    key: z
      .string()
      .regex(/^[-._a-zA-Z0-9]+$/, 'must be a secret key such as master-key')
      .optional(),
    deployments: z.array(k8sName).min(1, 'must list at least one deployment').optional(),
    resetUsersActiveWithin: duration.default('24h'),
    rolloutTimeout: duration.default('5m'),
  })
  .strict();

export const breachContainmentInput = procedureInputBase
  .extend({
    incidentId,
    /** The affected deployments (default: the site's). */
    deployments: z.array(k8sName).min(1, 'must list at least one deployment').optional(),
    /** The ingress allow-list while isolated (default: the profile's security.internalRange). */
    allowedSourceRange: sourceRange.optional(),
    /** Where in the evidence store (default: the incident id). */
    evidencePath: z
      .string()
      .regex(EVIDENCE_PATH, "must be a relative path inside the evidence store, such as INC-1234 or 2026/INC-1234 (no '..', not absolute)")
      .optional(),
    logConcurrency: z.number().int().min(1).max(64).default(8),
    dumpJobs: z.number().int().min(1).max(32).default(4),
    authFailuresWithin: duration.default('1h'),
    rotateCredentials: z.boolean().default(false),
    releaseDeadline: duration.default('7d'),
  })
  .strict();
/** A DR drill restores into scratch places only; it takes the common fields and nothing else. */
export const drDrillInput = procedureInputBase.strict();
const siteName = procedureInputBase.shape.site;
const notSameSite = (i: { site: string; drSite: string }) => i.site !== i.drSite;
const sameSiteIssue = { message: 'must name another site than `site` (the DR site cannot be the primary)', path: ['drSite'] };

export const drFailoverInput = procedureInputBase
  .extend({
    drSite: siteName,
    replicas: z
      .record(z.string().regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, 'must be a deployment name'), z.number().int().min(0).max(1000))
      .optional(),
    catchUpTimeout: duration.default('60s'),
    maxLagSeconds: z.number().min(0).max(86_400).default(30),
    dryRun: z.boolean().default(false),
  })
  .strict()
  .refine(notSameSite, sameSiteIssue);

export const drFailbackInput = procedureInputBase
  .extend({
    drSite: siteName,
    catchUpTimeout: duration.default('5m'),
    dryRun: z.boolean().default(false),
  })
  .strict()
  .refine(notSameSite, sameSiteIssue);
