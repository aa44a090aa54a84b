// The worker's configuration, validated once at start: a bad value stops the worker with a message
// that names the variable and the fix, before it polls any task.
import { loadClientConnectConfig, type ClientConnectConfig } from '@temporalio/envconfig';
import { resolve } from 'node:path';
import { z } from 'zod';
import { loadProfile, missingReferences, type Profile } from '../config/profile.js';

export const DEFAULT_TASK_QUEUE = 'mimir-recovery';

const envSchema = z.object({
  MIMIR_PROFILE: z.string().min(1, 'must be the path of a site profile, such as config/mimir.example.yaml'),
  MIMIR_TASK_QUEUE: z.string().min(1).default(DEFAULT_TASK_QUEUE),
  MIMIR_WORKFLOW_BUNDLE: z.string().optional(),
  MIMIR_METRICS_PORT: z.coerce.number().int().min(1).max(65535).optional(),
  MIMIR_LOG_LEVEL: z.enum(['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR']).default('INFO'),
  MIMIR_SHUTDOWN_GRACE: z
    .string()
    .regex(/^\d+(ms|s|m)$/, "must be a duration such as '30s'")
    .default('30s'),
});

export interface WorkerConfig {
  profilePath: string;
  profile: Profile;
  taskQueue: string;
  workflowBundle?: string;
  metricsPort?: number;
  logLevel: z.infer<typeof envSchema>['MIMIR_LOG_LEVEL'];
  shutdownGrace: string;
  temporal: ClientConnectConfig;
}

export class WorkerConfigError extends Error {
  override name = 'WorkerConfigError';
}

/** Reads and validates everything the worker needs; throws WorkerConfigError listing every problem. */
export function loadWorkerConfig(env: NodeJS.ProcessEnv = process.env): WorkerConfig {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    throw new WorkerConfigError(
      `invalid worker configuration:\n${parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`).join('\n')}`,
    );
  }
  const e = parsed.data;
  const profilePath = resolve(e.MIMIR_PROFILE);
  const profile = loadProfile(profilePath);
  const missing = missingReferences(profile, env);
  if (missing.length > 0) throw new WorkerConfigError(`${profilePath} refers to variables that are not set:\n  ${missing.join('\n  ')}`);
  // Temporal's own environment configuration: TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_PROFILE,
  // TEMPORAL_CONFIG_FILE, TLS and API key, so one worker serves a dev server, a cluster or Temporal Cloud.
  let temporal: ClientConnectConfig;
  try {
    temporal = loadClientConnectConfig({ overrideEnvVars: env as Record<string, string> });
  } catch (err) {
    throw new WorkerConfigError(`Temporal connection configuration (TEMPORAL_* / config file): ${(err as Error).message}`);
  }
  return {
    profilePath,
    profile,
    taskQueue: e.MIMIR_TASK_QUEUE,
    workflowBundle: e.MIMIR_WORKFLOW_BUNDLE,
    metricsPort: e.MIMIR_METRICS_PORT,
    logLevel: e.MIMIR_LOG_LEVEL,
    shutdownGrace: e.MIMIR_SHUTDOWN_GRACE,
    temporal,
  };
}
