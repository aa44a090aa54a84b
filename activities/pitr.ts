// True point-in-time recovery with PostgreSQL's own tools: a base backup (pg_basebackup) plus the
// WAL archive replayed to `recovery_target_time`. The server is stopped and restarted on the worker
// host (as the `postgres` user when the worker runs as root). The replaced data directory is moved
// aside, never deleted, so the state before the recovery is never lost.
import { execa } from 'execa';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ConfigError, InvalidInputError, NotFoundError, NotReadyError, PermissionDeniedError } from './errors.js';
import { activityContext } from './context.js';
import { backupDirOf, newestCommitAt, pgEnv, runTool, tool } from './pg-tools.js';
import { withDatabase } from './postgres.js';
import { siteOf, type SiteDeps } from './sites.js';
import type { BaseBackupInfo, PointInTimePlan } from '../workflows/types.js';

const WAL_FILE = /^[0-9A-F]{24}$/;

export function serverOf(deps: SiteDeps, site: string) {
  const server = siteOf(deps, site).database.server;
  if (!server) throw new ConfigError(`sites.${site}.database.server: not configured, so point-in-time recovery cannot run on this site`);
  const path = (field: string, ref: string | { env: string }) => {
    const value = typeof ref === 'string' ? ref : deps.env[ref.env];
    if (!value)
      throw new ConfigError(
        `sites.${site}.database.server.${field}: environment variable ${typeof ref === 'object' ? ref.env : ''} is not set`,
      );
    return value;
  };
  const replicationUrl = deps.env[server.replicationUrl.env];
  if (!replicationUrl)
    throw new ConfigError(`sites.${site}.database.server.replicationUrl: environment variable ${server.replicationUrl.env} is not set`);
  return { dataDir: path('dataDir', server.dataDir), walArchive: path('walArchive', server.walArchive), replicationUrl };
}

/** Runs a server-side tool as the owner of the data directory (`postgres` when the worker is root). */
export async function asServerOwner(toolName: string, args: string[], env?: Record<string, string>) {
  const bin = await tool(toolName);
  const opts = { env, extendEnv: true, cancelSignal: activityContext()?.cancellationSignal };
  return process.getuid?.() === 0 ? execa('runuser', ['-u', 'postgres', '--', bin, ...args], opts) : execa(bin, args, opts);
}

export async function serverRunning(dataDir: string): Promise<boolean> {
  if (!existsSync(join(dataDir, 'PG_VERSION'))) return false;
  return asServerOwner('pg_ctl', ['status', '-D', dataDir]).then(
    () => true,
    () => false,
  );
}

function parseTarget(value: unknown): { ms: number; iso: string } {
  if (
    typeof value !== 'string' ||
    !/^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:?\d\d)$/.test(value) ||
    Number.isNaN(Date.parse(value))
  ) {
    throw new InvalidInputError(
      `source.targetTime: '${String(value)}' is not an ISO 8601 timestamp with a time zone, such as 2026-12-03T17:05:00Z`,
    );
  }
  const ms = Date.parse(value);
  return { ms, iso: new Date(ms).toISOString() };
}

/** Where the site's base backups are kept: the `base/` subdirectory of its backup store. */
export const baseBackupDir = (deps: SiteDeps, site: string) => join(backupDirOf(deps, site), 'base');

/** The site's complete base backups (those with their info file), oldest first. */
export function listBaseBackups(deps: SiteDeps, site: string): BaseBackupInfo[] {
  const dir = baseBackupDir(deps, site);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as BaseBackupInfo)
    .sort((a, b) => a.finishedAt.localeCompare(b.finishedAt));
}

export function createPitrActivities(deps: SiteDeps) {
  const baseDir = (site: string) => baseBackupDir(deps, site);

  return {
    /** pg_basebackup of the site's server into the backup store (written once, under a temporary name until complete). */
    async baseBackup({ site, name }: { site: string; name: string }): Promise<BaseBackupInfo> {
      if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/.test(name)) throw new InvalidInputError(`name: '${name}' is not a backup name`);
      const { replicationUrl } = serverOf(deps, site);
      const dir = baseDir(site);
      const info = join(dir, `${name}.json`);
      if (existsSync(info)) return JSON.parse(readFileSync(info, 'utf8')) as BaseBackupInfo;
      mkdirSync(dir, { recursive: true });
      const tmp = join(dir, `${name}.partial-${process.pid}`);
      rmSync(tmp, { recursive: true, force: true });
      const startedAt = new Date().toISOString();
      await runTool('pg_basebackup', ['-D', tmp, '-Fp', '-X', 'fetch', '-c', 'fast', '--no-password'], pgEnv(replicationUrl));
      const label = readFileSync(join(tmp, 'backup_label'), 'utf8');
      const startWalFile = /START WAL LOCATION: \S+ \(file ([0-9A-F]{24})\)/.exec(label)?.[1];
      if (!startWalFile) throw new Error(`pg_basebackup wrote no start WAL file in ${tmp}/backup_label`);
      renameSync(tmp, join(dir, name));
      const bytes = Number((await execa('du', ['-sb', join(dir, name)])).stdout.split(/\s/)[0]);
      const result: BaseBackupInfo = { name, startedAt, finishedAt: new Date().toISOString(), startWalFile, bytes };
      writeFileSync(info, JSON.stringify(result, null, 2));
      return result;
    },

    /**
     * Checks a point-in-time target before anything changes: a timestamp with a time zone (normalised
     * to UTC), not in the future, not before the oldest base backup, and covered by the WAL archive
     * (the current segment is switched and archived first, so a recent target is covered).
     */
    async planPointInTime({ site, targetTime }: { site: string; targetTime: string }): Promise<PointInTimePlan> {
      const target = parseTarget(targetTime);
      const { walArchive } = serverOf(deps, site);
      if (target.ms > Date.now())
        throw new InvalidInputError(`source.targetTime: ${target.iso} is in the future (now ${new Date().toISOString()})`);
      const bases = listBaseBackups(deps, site);
      if (bases.length === 0) throw new NotFoundError(`source.targetTime: site ${site} has no base backup to replay from; take one first`);
      const base = bases.filter((b) => Date.parse(b.finishedAt) <= target.ms).at(-1);
      if (!base)
        throw new InvalidInputError(`source.targetTime: ${target.iso} is before the oldest base backup (finished ${bases[0]!.finishedAt})`);
      await withDatabase(deps, site, async (c) => {
        const { rows } = await c
          .query<{ f: string }>('SELECT pg_walfile_name(pg_switch_wal()) AS f')
          .catch((e: { code?: string; message: string }) => {
            if (e.code === '42501') {
              throw new PermissionDeniedError(
                `sites.${site}.database: the database user may not switch WAL segments; GRANT EXECUTE ON FUNCTION pg_switch_wal() TO it`,
              );
            }
            throw e;
          });
        const until = Date.now() + 60_000;
        while (!existsSync(join(walArchive, rows[0]!.f))) {
          if (Date.now() > until) throw new NotReadyError(`WAL segment ${rows[0]!.f} was not archived within 60s; check archive_command`);
          await new Promise((r) => setTimeout(r, 200));
        }
      });
      const segments = readdirSync(walArchive)
        .filter((f) => WAL_FILE.test(f) && f >= base.startWalFile && f.slice(0, 8) === base.startWalFile.slice(0, 8))
        .sort();
      for (let i = 1; i < segments.length; i++) {
        const seg = (f: string) => BigInt(`0x${f.slice(8)}`);
        const prev = seg(segments[i - 1]!);
        const cur = seg(segments[i]!);
        // Segment numbers run 00..FF within each 32-bit log id; a gap means missing WAL.
        const next = (prev & 0xffn) === 0xffn ? ((prev >> 32n) + 1n) << 32n : prev + 1n;
        if (cur !== next)
          throw new InvalidInputError(`source.targetTime: the WAL archive has a gap after ${segments[i - 1]} (next is ${segments[i]})`);
      }
      if (segments[0] !== base.startWalFile)
        throw new InvalidInputError(`source.targetTime: the WAL archive lacks ${base.startWalFile}, where base backup ${base.name} starts`);
      const last = segments.at(-1)!;
      if (statSync(join(walArchive, last)).mtimeMs < target.ms) {
        throw new InvalidInputError(
          `source.targetTime: the WAL archive ends at ${new Date(statSync(join(walArchive, last)).mtimeMs).toISOString()}, before ${target.iso}`,
        );
      }
      const walBytes = segments.reduce((t, f) => t + statSync(join(walArchive, f)).size, 0);
      return {
        targetTime: target.iso,
        givenAs: targetTime,
        baseBackup: base,
        walFrom: segments[0]!,
        walTo: last,
        walFiles: segments.length,
        walBytes,
      };
    },

    /**
     * Replaces the server's data directory with the base backup and replays the archive up to the
     * target, then promotes. Resumable: the old directory is moved aside once (kept), a half-copied
     * new one is redone, and a recovery that already finished is recognised by its marker.
     */
    async restorePointInTime({
      site,
      baseBackup,
      targetTime,
      runId,
    }: {
      site: string;
      baseBackup: string;
      targetTime: string;
      runId: string;
    }) {
      const target = parseTarget(targetTime);
      if (!/^[A-Za-z0-9._-]{1,120}$/.test(runId)) throw new InvalidInputError(`runId: '${runId}' is not usable in a path`);
      const { dataDir, walArchive } = serverOf(deps, site);
      const source = join(baseDir(site), baseBackup);
      if (!existsSync(join(source, 'backup_label'))) throw new NotFoundError(`baseBackup: '${baseBackup}' does not exist for site ${site}`);
      const marker = join(dataDir, `mimir-pitr-${runId}`);
      const aside = `${dataDir}.pre-pitr-${runId}`;
      const started = Date.now();
      const ctx = activityContext();
      if (!(existsSync(marker) && (await serverRunning(dataDir)))) {
        if (await serverRunning(dataDir)) await asServerOwner('pg_ctl', ['stop', '-D', dataDir, '-m', 'fast', '-w', '-t', '120']);
        if (!existsSync(aside)) {
          if (!existsSync(dataDir)) throw new NotFoundError(`sites.${site}.database.server.dataDir: ${dataDir} does not exist`);
          renameSync(dataDir, aside);
        } else {
          rmSync(dataDir, { recursive: true, force: true }); // a copy a dead attempt left half done
        }
        const ticker = ctx ? setInterval(() => ctx.heartbeat({ step: 'copy base backup', baseBackup }), 5000) : undefined;
        try {
          await execa('cp', ['-a', source, dataDir]); // async, so heartbeats go on during a large copy
        } finally {
          clearInterval(ticker);
        }
        rmSync(join(dataDir, 'postmaster.pid'), { force: true });
        writeFileSync(join(dataDir, 'recovery.signal'), '');
        const conf = readFileSync(join(dataDir, 'postgresql.auto.conf'), 'utf8');
        writeFileSync(
          join(dataDir, 'postgresql.auto.conf'),
          `${conf}\n# point-in-time recovery ${runId}\nrestore_command = 'cp "${walArchive}/%f" "%p"'\nrecovery_target_time = '${target.iso.replace('T', ' ').replace('Z', '+00')}'\nrecovery_target_action = 'promote'\nrecovery_target_timeline = 'current'\n`,
        );
        // 'current': the base backup's own timeline. The archive may hold later timelines of other servers
        // (a DR site promoted in a failover); 'latest' would follow one of those instead of this history.
        writeFileSync(marker, `${target.iso}\n`);
        if (process.getuid?.() === 0) await execa('chown', ['-R', 'postgres:postgres', dataDir]);
        await execa('chmod', ['700', dataDir]);
        await asServerOwner('pg_ctl', ['start', '-D', dataDir, '-l', join(dirname(dataDir), 'server.log'), '-w', '-t', '3600']);
      }
      // Wait until the replay reached the target and the server was promoted.
      for (;;) {
        const state = await withDatabase(deps, site, async (c) => {
          const { rows } = await c.query<{ recovering: boolean; lsn: string | null }>(
            'SELECT pg_is_in_recovery() AS recovering, pg_last_wal_replay_lsn()::text AS lsn',
          );
          return rows[0]!;
        }).catch(() => ({ recovering: true, lsn: null }));
        ctx?.heartbeat({ step: 'replay', replayedTo: state.lsn });
        if (!state.recovering) break;
        await new Promise((r) => setTimeout(r, 500));
      }
      const lastCommitAt = await withDatabase(deps, site, newestCommitAt);
      return { baseBackup, targetTime: target.iso, lastCommitAt, previousDataDir: aside, durationMs: Date.now() - started };
    },
  };
}
