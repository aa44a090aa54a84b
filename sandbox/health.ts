// Each site's health endpoint: a small real HTTP service per site that checks its own site's database
// (reachable, writable), so "the DR site is healthy" means something. Run as a daemon by the sandbox
// (`node --import tsx sandbox/health.ts <site>`), with its database URL in its environment.
// GET /health answers 200 {status: 'healthy'} when the database takes writes, else 503 with the reason.
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import type { SandboxInstance } from './instance.js';
import { databaseUrl, type PgRole } from './postgres.js';
import { livePid, portOpen, spawnDaemon, stopPid, waitFor } from './process.js';

const SCRIPT = fileURLToPath(import.meta.url);
const MARKER = 'sandbox/health.ts';
const ROLES: PgRole[] = ['primary', 'dr'];

export interface SiteHealth {
  site: string;
  status: 'healthy' | 'read-only' | 'unreachable';
  reachable: boolean;
  writable: boolean;
  inRecovery: boolean | null;
  checkedAt: string;
  error?: string;
}

/** Connects, asks whether the server is in recovery, and proves writability by assigning a transaction id. */
export async function checkSiteHealth(site: string, url: string): Promise<SiteHealth> {
  const checkedAt = new Date().toISOString();
  const client = new pg.Client({
    connectionString: url,
    application_name: 'mimir-health',
    connectionTimeoutMillis: 3000,
    statement_timeout: 3000,
  });
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (e) {
    return { site, status: 'unreachable', reachable: false, writable: false, inRecovery: null, checkedAt, error: (e as Error).message };
  }
  try {
    const { rows } = await client.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r');
    const inRecovery = rows[0]!.r;
    // What an application's transaction gets: read-only on a standby and on a fenced primary.
    const ro = await client.query<{ transaction_read_only: string }>('SHOW transaction_read_only');
    if (inRecovery || ro.rows[0]!.transaction_read_only === 'on') {
      const error = inRecovery ? 'the database is a standby (in recovery)' : 'transactions are read-only (fenced)';
      return { site, status: 'read-only', reachable: true, writable: false, inRecovery, checkedAt, error };
    }
    return { site, status: 'healthy', reachable: true, writable: true, inRecovery, checkedAt };
  } finally {
    await client.end().catch(() => undefined);
  }
}

function paths(inst: SandboxInstance, role: PgRole) {
  const dir = join(inst.stateDir, 'health');
  return { dir, log: join(dir, `${role}.log`), pid: join(dir, `${role}.pid`) };
}

const port = (inst: SandboxInstance, role: PgRole) => (role === 'primary' ? inst.ports.healthPrimary : inst.ports.healthDr);

export function healthUrl(inst: SandboxInstance, role: PgRole): string {
  return `http://127.0.0.1:${port(inst, role)}/health`;
}

/** Starts each site's health service unless it runs already. */
export async function healthUp(inst: SandboxInstance): Promise<string> {
  const out: string[] = [];
  for (const role of ROLES) {
    const p = paths(inst, role);
    mkdirSync(p.dir, { recursive: true });
    if (livePid(p.pid, MARKER) !== undefined) {
      out.push(`${role} running`);
      continue;
    }
    if (await portOpen(port(inst, role))) {
      throw new Error(`port ${port(inst, role)} is taken by a process that is not this sandbox's ${role} health service`);
    }
    const env = { ...process.env, MIMIR_HEALTH_PORT: String(port(inst, role)), MIMIR_HEALTH_DATABASE_URL: databaseUrl(inst, role) };
    spawnDaemon(process.execPath, ['--import', 'tsx', SCRIPT, role], { logFile: p.log, pidFile: p.pid, env });
    await waitFor(`the ${role} health service to listen`, () => portOpen(port(inst, role)), 30_000, p.log);
    out.push(`${role} started`);
  }
  return out.join(', ');
}

export async function healthDown(inst: SandboxInstance): Promise<boolean> {
  let stopped = false;
  for (const role of ROLES) {
    const pid = livePid(paths(inst, role).pid, MARKER);
    if (pid === undefined) continue;
    await stopPid(pid, 5000);
    stopped = true;
  }
  return stopped;
}

export function healthStatus(inst: SandboxInstance): string {
  return ROLES.map(
    (role) => `${role} ${livePid(paths(inst, role).pid, MARKER) !== undefined ? `running on ${healthUrl(inst, role)}` : 'stopped'}`,
  ).join(', ');
}

if (process.argv[1] === SCRIPT) {
  const site = process.argv[2] ?? 'site';
  const url = process.env.MIMIR_HEALTH_DATABASE_URL;
  if (!url) throw new Error('MIMIR_HEALTH_DATABASE_URL is not set');
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || !(req.url ?? '').startsWith('/health')) {
      res.writeHead(404).end();
      return;
    }
    void checkSiteHealth(site, url).then((h) => {
      res.writeHead(h.status === 'healthy' ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify(h));
    });
  });
  server.listen(Number(process.env.MIMIR_HEALTH_PORT), '127.0.0.1', () =>
    console.log(`health of ${site} on ${process.env.MIMIR_HEALTH_PORT}`),
  );
  process.on('SIGTERM', () => server.close(() => process.exit(0)));
}
