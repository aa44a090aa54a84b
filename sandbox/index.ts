// The sandbox: real local services for running and testing Mimir Recovery, brought up idempotently.
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { SandboxInstance } from './instance.js';
import { apiserverUrl, KUBE_CONTEXT, kubeBinDir, kubeconfigPath, kubernetesDown, kubernetesStatus, kubernetesUp } from './kubernetes.js';
import {
  databaseUrl,
  DEFAULT_SCALE,
  pgPaths,
  postgresDown,
  postgresStatus,
  postgresUp,
  replicationUrl,
  type SeedScale,
} from './postgres.js';
import { healthDown, healthStatus, healthUp, healthUrl } from './health.js';
import { livePid, spawnDaemon, stopPid, waitFor } from './process.js';
import { temporalAddress, temporalCli, temporalDown, temporalStatus, temporalUiUrl, temporalUp } from './temporal.js';

export { sandboxInstance } from './instance.js';
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const SANDBOX_PROFILE = join(REPO_ROOT, 'config', 'sandbox.yaml');

/** What a user needs to reach the sandbox's services with their own tools. */
export function sandboxEnv(inst: SandboxInstance): Record<string, string> {
  return {
    TEMPORAL_ADDRESS: temporalAddress(inst),
    TEMPORAL_NAMESPACE: 'default',
    TEMPORAL_UI_URL: temporalUiUrl(inst),
    KUBECONFIG: kubeconfigPath(inst),
    MIMIR_PRIMARY_DATABASE_URL: databaseUrl(inst, 'primary'),
    MIMIR_DR_DATABASE_URL: databaseUrl(inst, 'dr'),
    MIMIR_PRIMARY_BACKUP_DIR: join(inst.stateDir, 'backups', 'primary'),
    MIMIR_DR_BACKUP_DIR: join(inst.stateDir, 'backups', 'dr'),
    MIMIR_PRIMARY_DATA_DIR: pgPaths(inst).primary.data,
    MIMIR_WAL_ARCHIVE_DIR: pgPaths(inst).archive,
    MIMIR_PRIMARY_REPLICATION_URL: replicationUrl(inst),
    MIMIR_DR_DATA_DIR: pgPaths(inst).dr.data,
    MIMIR_DR_REPLICATION_URL: replicationUrl(inst, undefined, 'dr'),
    MIMIR_PRIMARY_HEALTH_URL: healthUrl(inst, 'primary'),
    MIMIR_DR_HEALTH_URL: healthUrl(inst, 'dr'),
    MIMIR_PROFILE: SANDBOX_PROFILE,
    MIMIR_EVIDENCE_DIR: join(inst.stateDir, 'evidence'),
    MIMIR_SANDBOX: inst.name,
    PATH: `${dirname(temporalCli(inst))}:${kubeBinDir(inst)}:${process.env.PATH ?? ''}`,
  };
}

/** The directories the sandbox puts before the caller's PATH. */
const ownPath = (path: string) =>
  path
    .slice(0, path.length - (process.env.PATH ?? '').length)
    .split(':')
    .filter(Boolean);

export function exportLines(env: Record<string, string>): string {
  const quote = (v: string) => `'${v.replaceAll("'", `'\\''`)}'`;
  return Object.entries(env)
    .map(([k, v]) => `export ${k}=${k === 'PATH' ? `${ownPath(v).map(quote).join(':')}:"$PATH"` : quote(v)}`)
    .join('\n');
}

function workerPaths(inst: SandboxInstance) {
  const dir = join(inst.stateDir, 'worker');
  return { dir, log: join(dir, 'worker.log'), pid: join(dir, 'worker.pid') };
}

async function workerUp(inst: SandboxInstance): Promise<string> {
  const p = workerPaths(inst);
  mkdirSync(p.dir, { recursive: true });
  const pid = livePid(p.pid, 'worker/main.ts');
  if (pid !== undefined) return `running (pid ${pid})`;
  const { buildWorkflowBundle } = await import('../worker/bundle.js');
  const bundle = await buildWorkflowBundle({ ifStale: true });
  const env = { ...process.env, ...sandboxEnv(inst), MIMIR_WORKFLOW_BUNDLE: bundle, MIMIR_METRICS_PORT: String(inst.ports.workerMetrics) };
  const started = spawnDaemon(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'worker', 'main.ts')], {
    logFile: p.log,
    pidFile: p.pid,
    env,
    cwd: REPO_ROOT,
  });
  await waitFor(
    'the worker to start polling',
    async () => {
      if (livePid(p.pid, 'worker/main.ts') === undefined) throw new Error(`the worker exited at start; see ${p.log}`);
      return readFileSync(p.log, 'utf8').includes('"worker running"');
    },
    60_000,
    p.log,
  );
  return `started (pid ${started}, log ${p.log})`;
}

async function workerDown(inst: SandboxInstance): Promise<boolean> {
  const pid = livePid(workerPaths(inst).pid, 'worker/main.ts');
  if (pid === undefined) return false;
  await stopPid(pid, 30_000);
  return true;
}

export interface UpOptions {
  worker?: boolean;
  scale?: SeedScale;
  log?: (line: string) => void;
}

export async function sandboxUp(inst: SandboxInstance, opts: UpOptions = {}) {
  const log = opts.log ?? (() => undefined);
  mkdirSync(inst.stateDir, { recursive: true });
  const temporal = await temporalUp(inst);
  log(`temporal    ${temporal}: ${temporalAddress(inst)}, Web UI ${temporalUiUrl(inst)}`);
  const pg = await postgresUp(inst, opts.scale ?? DEFAULT_SCALE);
  log(`postgres    primary ${pg.primary} on 127.0.0.1:${inst.ports.pgPrimary}, dr standby ${pg.dr} on 127.0.0.1:${inst.ports.pgDr}`);
  const health = await healthUp(inst);
  log(`health      ${health}: ${healthUrl(inst, 'primary')}, ${healthUrl(inst, 'dr')}`);
  const k8s = await kubernetesUp(inst);
  log(`kubernetes  ${k8s}: ${apiserverUrl(inst)}, context ${KUBE_CONTEXT} in ${kubeconfigPath(inst)}`);
  const worker = opts.worker ? await workerUp(inst) : undefined;
  if (worker) log(`worker      ${worker}`);
  const changed =
    [temporal, pg.primary, pg.dr, k8s].some((s) => s !== 'running') ||
    health.includes('started') ||
    (worker !== undefined && !worker.startsWith('running'));
  return { changed };
}

export async function sandboxDown(inst: SandboxInstance, opts: { purge?: boolean } = {}) {
  const stopped: string[] = [];
  if (await workerDown(inst)) stopped.push('worker');
  if (await kubernetesDown(inst)) stopped.push('kubernetes');
  if (await healthDown(inst)) stopped.push('health');
  stopped.push(...(await postgresDown(inst)).map((r) => `postgres ${r}`));
  if (await temporalDown(inst)) stopped.push('temporal');
  if (opts.purge && existsSync(inst.stateDir)) rmSync(inst.stateDir, { recursive: true, force: true });
  return stopped;
}

export async function sandboxStatus(inst: SandboxInstance) {
  const pg = await postgresStatus(inst);
  const worker = livePid(workerPaths(inst).pid, 'worker/main.ts');
  return {
    stateDir: inst.stateDir,
    temporal: await temporalStatus(inst),
    postgresPrimary: pg.primary,
    postgresDr: pg.dr,
    kubernetes: await kubernetesStatus(inst),
    health: healthStatus(inst),
    worker: worker === undefined ? 'stopped' : `running (pid ${worker})`,
  };
}
