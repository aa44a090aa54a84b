// PostgreSQL primary and its streaming-replication standby (the DR site), from the machine's
// PostgreSQL 15 binaries, run as the `postgres` user. The primary archives WAL to a local directory.
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { SandboxInstance } from './instance.js';
import { cmdline, run, waitFor } from './process.js';

export const DATABASE = 'mimir_news';
export const APP_USER = 'mimir_user';
const REPLICATION_USER = 'replicator';
const SLOT = 'mimir_dr';
const SEED_SQL = join(dirname(fileURLToPath(import.meta.url)), 'seed.sql');

export type PgRole = 'primary' | 'dr';

export interface PgSecrets {
  appPassword: string;
  replicationPassword: string;
}

export function pgPaths(inst: SandboxInstance) {
  const root = join(inst.stateDir, 'pg');
  const node = (role: PgRole) => ({
    data: join(root, role, 'data'),
    log: join(root, role, 'server.log'),
    ready: join(root, role, 'ready'),
    port: role === 'primary' ? inst.ports.pgPrimary : inst.ports.pgDr,
  });
  return {
    root,
    run: join(root, 'run'),
    archive: join(root, 'wal-archive'),
    secrets: join(inst.stateDir, 'secrets.json'),
    primary: node('primary'),
    dr: node('dr'),
  };
}

let binDirCache: string | undefined;
export async function pgBin(tool: string): Promise<string> {
  binDirCache ??= (await run('pg_config', ['--bindir'])).trim();
  return join(binDirCache, tool);
}

const isRoot = () => process.getuid?.() === 0;

/** Runs a PostgreSQL tool as the `postgres` user (initdb refuses root). */
export async function asPostgres(tool: string, args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string } = {}) {
  const bin = await pgBin(tool);
  const env = { ...process.env, ...opts.env };
  return isRoot()
    ? run('runuser', ['-u', 'postgres', '--', bin, ...args], { env, input: opts.input })
    : run(bin, args, { env, input: opts.input });
}

function pgUid(): { uid: number; gid: number } | undefined {
  if (!isRoot()) return undefined;
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('postgres:'));
  if (!line) throw new Error("the 'postgres' system user is missing: install Debian's postgresql-15 package");
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

/** Creates a directory owned by the postgres user. */
function pgDir(path: string, mode = 0o700) {
  mkdirSync(path, { recursive: true });
  const owner = pgUid();
  if (owner) chownSync(path, owner.uid, owner.gid);
  chmodSync(path, mode);
}

export function loadSecrets(inst: SandboxInstance): PgSecrets | undefined {
  const file = pgPaths(inst).secrets;
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as PgSecrets) : undefined;
}

function ensureSecrets(inst: SandboxInstance): PgSecrets {
  const existing = loadSecrets(inst);
  if (existing) return existing;
  const secrets = {
    appPassword: randomBytes(18).toString('base64url'),
    replicationPassword: randomBytes(18).toString('base64url'),
  };
  writeFileSync(pgPaths(inst).secrets, JSON.stringify(secrets), { mode: 0o600 });
  return secrets;
}

export function databaseUrl(inst: SandboxInstance, role: PgRole, secrets = loadSecrets(inst)): string {
  const port = pgPaths(inst)[role].port;
  const pw = secrets ? `:${encodeURIComponent(secrets.appPassword)}` : '';
  return `postgresql://${APP_USER}${pw}@127.0.0.1:${port}/${DATABASE}`;
}

/** A URL of the replication role (pg_basebackup, pg_rewind), for point-in-time recovery and rebuilding a standby. */
export function replicationUrl(inst: SandboxInstance, secrets = loadSecrets(inst), role: PgRole = 'primary'): string {
  const pw = secrets ? `:${encodeURIComponent(secrets.replicationPassword)}` : '';
  return `postgresql://${REPLICATION_USER}${pw}@127.0.0.1:${pgPaths(inst)[role].port}/postgres`;
}

async function running(data: string): Promise<boolean> {
  if (!existsSync(join(data, 'PG_VERSION'))) return false;
  try {
    await asPostgres('pg_ctl', ['status', '-D', data]);
    return true;
  } catch {
    return false;
  }
}

/** A postmaster.pid whose pid is not a live postgres (killed run, recycled pid) is removed before start. */
function clearStalePidFile(data: string) {
  const file = join(data, 'postmaster.pid');
  if (!existsSync(file)) return;
  const pid = Number.parseInt(readFileSync(file, 'utf8').split('\n')[0] ?? '', 10);
  if (!(cmdline(pid) ?? '').includes('postgres')) rmSync(file, { force: true });
}

async function start(node: { data: string; log: string; port: number }) {
  if (await running(node.data)) return false;
  clearStalePidFile(node.data);
  await asPostgres('pg_ctl', ['start', '-D', node.data, '-l', node.log, '-w', '-t', '120']);
  return true;
}

export async function psqlSuper(
  inst: SandboxInstance,
  role: PgRole,
  sql: string,
  vars: Record<string, string> = {},
  database = 'postgres',
) {
  const p = pgPaths(inst);
  const args = ['-X', '-q', '-A', '-t', '-h', p.run, '-p', String(p[role].port), '-U', 'postgres', '-d', database, '-v', 'ON_ERROR_STOP=1'];
  for (const [k, v] of Object.entries(vars)) args.push('-v', `${k}=${v}`);
  return (await asPostgres('psql', [...args, '-f', '-'], { input: sql })).trim();
}

function serverConf(inst: SandboxInstance, port: number): string {
  const p = pgPaths(inst);
  return [
    `# written by mimir-recovery's sandbox`,
    `listen_addresses = '127.0.0.1'`,
    `port = ${port}`,
    `unix_socket_directories = '${p.run}'`,
    `max_connections = 200`,
    `shared_buffers = 128MB`,
    `wal_level = replica`,
    `max_wal_senders = 10`,
    `max_replication_slots = 10`,
    `wal_keep_size = 256MB`,
    `hot_standby = on`,
    `hot_standby_feedback = on`,
    `archive_mode = on`,
    // Never overwrites; a file archived already with the same content (a timeline history file both nodes
    // hold after a failover and a failback) counts as archived, so the archiver never gets stuck on it.
    `archive_command = 'test ! -f ${p.archive}/%f && cp %p ${p.archive}/%f.tmp && mv ${p.archive}/%f.tmp ${p.archive}/%f || cmp -s %p ${p.archive}/%f'`,
    `archive_timeout = 60`,
    `track_commit_timestamp = on`,
    `wal_log_hints = on`, // pg_rewind can turn an old primary into a standby of the new one (failback)
    `log_line_prefix = '%m [%p] %q%u@%d '`,
    '',
  ].join('\n');
}

export interface SeedScale {
  articles: number;
  users: number;
  activity: number;
}
export const DEFAULT_SCALE: SeedScale = { articles: 20_000, users: 2_000, activity: 50_000 };

/**
 * Starts a node that was fully created before; wipes one a killed run left half-initialised (no
 * ready marker: nothing in it is trusted). Returns undefined when the node must be created.
 */
async function reuse(node: { data: string; log: string; ready: string; port: number }): Promise<string | undefined> {
  if (existsSync(node.ready)) return (await start(node)) ? 'started' : 'running';
  if (existsSync(node.data)) {
    await asPostgres('pg_ctl', ['stop', '-D', node.data, '-m', 'immediate']).catch(() => undefined);
    rmSync(node.data, { recursive: true, force: true });
  }
  pgDir(dirname(node.data));
  return undefined;
}

/** Point-in-time recovery switches WAL segments so a recent target is archived (a per-database grant; idempotent). */
async function grantWalSwitch(inst: SandboxInstance) {
  await psqlSuper(inst, 'primary', `GRANT EXECUTE ON FUNCTION pg_switch_wal() TO ${APP_USER};`, {}, DATABASE);
  // Failover promotes a standby (pg_promote); failback rewinds the old primary from the new one (pg_rewind's functions).
  await psqlSuper(inst, 'primary', `GRANT EXECUTE ON FUNCTION pg_promote(boolean, integer) TO ${APP_USER};`, {}, DATABASE);
  await psqlSuper(
    inst,
    'primary',
    `GRANT EXECUTE ON FUNCTION pg_ls_dir(text, boolean, boolean) TO ${REPLICATION_USER};
     GRANT EXECUTE ON FUNCTION pg_stat_file(text, boolean) TO ${REPLICATION_USER};
     GRANT EXECUTE ON FUNCTION pg_read_binary_file(text) TO ${REPLICATION_USER};
     GRANT EXECUTE ON FUNCTION pg_read_binary_file(text, bigint, bigint, boolean) TO ${REPLICATION_USER};
     GRANT pg_checkpoint TO ${REPLICATION_USER};`,
  );
}

async function primaryUp(inst: SandboxInstance, secrets: PgSecrets, scale: SeedScale): Promise<string> {
  const p = pgPaths(inst);
  const node = p.primary;
  const existing = await reuse(node);
  if (existing) {
    await grantWalSwitch(inst).catch(() => undefined); // sandboxes created before this grant existed get it too (not while in recovery)
    return existing;
  }
  await asPostgres('initdb', [
    '-D',
    node.data,
    '-U',
    'postgres',
    '--auth-local=trust',
    '--auth-host=scram-sha-256',
    '--encoding=UTF8',
    '--locale=C.UTF-8',
  ]);
  writeFileSync(join(node.data, 'mimir.conf'), serverConf(inst, node.port));
  appendFileSync(join(node.data, 'postgresql.conf'), `\ninclude 'mimir.conf'\n`);
  writeFileSync(
    join(node.data, 'pg_hba.conf'),
    [
      'local all postgres trust',
      'local all all scram-sha-256',
      'host all all 127.0.0.1/32 scram-sha-256',
      `host replication ${REPLICATION_USER} 127.0.0.1/32 scram-sha-256`,
      '',
    ].join('\n'),
  );
  const owner = pgUid();
  if (owner) for (const f of ['mimir.conf', 'pg_hba.conf']) chownSync(join(node.data, f), owner.uid, owner.gid);
  await start(node);
  await psqlSuper(
    inst,
    'primary',
    `CREATE ROLE ${APP_USER} LOGIN PASSWORD :'app_pw';
     CREATE ROLE ${REPLICATION_USER} LOGIN REPLICATION PASSWORD :'repl_pw';
     GRANT pg_signal_backend, pg_monitor TO ${APP_USER};
     CREATE DATABASE ${DATABASE} OWNER ${APP_USER};`,
    { app_pw: secrets.appPassword, repl_pw: secrets.replicationPassword },
  );
  const seedArgs = ['-X', '-q', '-h', p.run, '-p', String(node.port), '-U', 'postgres', '-d', DATABASE];
  for (const [k, v] of Object.entries(scale)) seedArgs.push('-v', `${k}=${v}`);
  await asPostgres('psql', [...seedArgs, '-c', `SET ROLE ${APP_USER}`, '-f', '-'], { input: readFileSync(SEED_SQL, 'utf8') });
  await grantWalSwitch(inst);
  await psqlSuper(inst, 'primary', 'CHECKPOINT; SELECT pg_switch_wal();');
  writeFileSync(node.ready, new Date().toISOString());
  return 'created';
}

async function drUp(inst: SandboxInstance, secrets: PgSecrets): Promise<string> {
  const p = pgPaths(inst);
  const node = p.dr;
  const existing = await reuse(node);
  if (existing) return existing;
  await psqlSuper(inst, 'primary', `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '${SLOT}';`);
  await asPostgres(
    'pg_basebackup',
    [
      '-d',
      `host=127.0.0.1 port=${p.primary.port} user=${REPLICATION_USER} application_name=${SLOT}`,
      '-D',
      node.data,
      '-X',
      'stream',
      '-R',
      '-C',
      '-S',
      SLOT,
      '-c',
      'fast',
    ],
    { env: { PGPASSWORD: secrets.replicationPassword } },
  );
  writeFileSync(join(node.data, 'mimir.conf'), serverConf(inst, node.port));
  const owner = pgUid();
  if (owner) chownSync(join(node.data, 'mimir.conf'), owner.uid, owner.gid);
  await start(node);
  await waitFor(
    'the DR standby to stream from the primary',
    async () => (await psqlSuper(inst, 'primary', `SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'`)) !== '0',
    60_000,
    node.log,
  );
  writeFileSync(node.ready, new Date().toISOString());
  return 'created';
}

export async function postgresUp(inst: SandboxInstance, scale: SeedScale = DEFAULT_SCALE) {
  const p = pgPaths(inst);
  mkdirSync(inst.stateDir, { recursive: true });
  chmodSync(inst.stateDir, 0o755);
  pgDir(p.root, 0o755);
  pgDir(p.run);
  pgDir(p.archive);
  const secrets = ensureSecrets(inst);
  const primary = await primaryUp(inst, secrets, scale);
  const dr = await drUp(inst, secrets);
  return { primary, dr };
}

export async function postgresDown(inst: SandboxInstance): Promise<string[]> {
  const p = pgPaths(inst);
  const stopped: string[] = [];
  for (const role of ['dr', 'primary'] as const) {
    if (await running(p[role].data)) {
      await asPostgres('pg_ctl', ['stop', '-D', p[role].data, '-m', 'fast', '-w', '-t', '60']);
      stopped.push(role);
    }
  }
  return stopped;
}

export async function postgresStatus(inst: SandboxInstance): Promise<Record<PgRole, string>> {
  const p = pgPaths(inst);
  const one = async (role: PgRole) =>
    !existsSync(p[role].ready) ? 'not created' : (await running(p[role].data)) ? `running on 127.0.0.1:${p[role].port}` : 'stopped';
  return { primary: await one('primary'), dr: await one('dr') };
}
