// PostgreSQL's own tools (pg_dump, pg_restore) as long, heartbeating, cancellable activities.
// Backups are directory-format dumps (so both dump and restore run in parallel with -j), written
// under a temporary name and renamed when complete, with a manifest that records per-table row
// counts and checksums taken in the dump's own snapshot, and the SHA-256 of every file.
import { execa, ExecaError } from 'execa';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import type pg from 'pg';
import { activityContext } from './context.js';
import { ConfigError, InvalidInputError, NotFoundError, redact } from './errors.js';
import { sha256File } from './files.js';
import { withDatabase } from './postgres.js';
import { databaseUrlOf, siteOf, type SiteDeps } from './sites.js';

/** A command that failed: exit code, stderr tail and duration kept (as zx's ProcessOutput does). */
export class CommandFailedError extends Error {
  override name = 'CommandFailedError';
  constructor(
    readonly command: string,
    readonly exitCode: number | undefined,
    readonly stderrTail: string,
    readonly durationMs: number,
  ) {
    super(`${command} failed (exit ${exitCode ?? 'signal'}, after ${(durationMs / 1000).toFixed(1)}s): ${redact(stderrTail)}`);
  }
}

export interface TableStats {
  rows: number;
  /** Order-independent checksum of the rows' text (sum of hashtextextended). */
  checksum: string;
}

export interface BackupManifest {
  name: string;
  site: string;
  database: string;
  format: 'directory';
  createdAt: string;
  /** Last commit visible in the dump's snapshot: the recovery point of a restore from it. */
  lastCommitAt: string | null;
  bytes: number;
  durationMs: number;
  tables: Record<string, TableStats>;
  files: { file: string; bytes: number; sha256: string }[];
}

/** pg_restore's sessions carry this name, so a later attempt can end those of a dead one. */
const RESTORE_APPLICATION = 'mimir-recovery-restore';

const BACKUP_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/;

/** libpq environment for a connection URL: the password never appears in a command line. */
export function pgEnv(url: string): Record<string, string> {
  const u = new URL(url);
  return {
    PGHOST: u.hostname,
    PGPORT: u.port || '5432',
    PGUSER: decodeURIComponent(u.username),
    PGPASSWORD: decodeURIComponent(u.password),
    PGDATABASE: decodeURIComponent(u.pathname.slice(1)),
    PGAPPNAME: 'mimir-recovery',
    PGCONNECT_TIMEOUT: '10',
  };
}

let binDir: string | undefined;
/** The path of a PostgreSQL tool (`pg_config --bindir` asked once: on Debian it is a wrapper script that forks several processes). */
export async function tool(name: string): Promise<string> {
  binDir ??= (await execa('pg_config', ['--bindir'])).stdout.trim();
  return join(binDir, name);
}

/** Runs a PostgreSQL tool; each stderr line goes to `onLine`; cancelled with the activity. */
export async function runTool(name: string, args: string[], env: Record<string, string>, onLine?: (line: string) => void): Promise<string> {
  const started = Date.now();
  const child = execa(await tool(name), args, {
    env,
    extendEnv: true,
    cancelSignal: activityContext()?.cancellationSignal,
    stdin: 'ignore',
    maxBuffer: 64 * 1024 * 1024,
  });
  // A heartbeat every few seconds while the tool runs, whatever it prints: a dead worker is noticed
  // within the heartbeat timeout, a live one never is mistaken for dead during a long index build.
  const ctx = activityContext();
  let lastLine = '';
  const ticker = ctx ? setInterval(() => ctx.heartbeat({ tool: name, running: true, lastLine }), 5000) : undefined;
  if (onLine) {
    let pending = '';
    child.stderr?.on('data', (d: Buffer) => {
      const lines = (pending + d.toString()).split('\n');
      pending = lines.pop() ?? '';
      lines.forEach(onLine);
      lastLine = lines.at(-1) ?? lastLine;
    });
  }
  try {
    return (await child).stdout;
  } catch (e) {
    if (e instanceof ExecaError && e.isCanceled) throw ctx?.cancellationSignal.reason ?? e;
    const err = e as ExecaError;
    throw new CommandFailedError(name, err.exitCode, String(err.stderr ?? '').slice(-2000), Date.now() - started);
  } finally {
    clearInterval(ticker);
  }
}

export function backupDirOf(deps: SiteDeps, site: string): string {
  const ref = siteOf(deps, site).database.backups?.dir;
  if (ref === undefined) throw new ConfigError(`sites.${site}.database.backups: no backup directory is configured for this site`);
  const dir = typeof ref === 'string' ? ref : deps.env[ref.env];
  if (!dir)
    throw new ConfigError(
      `sites.${site}.database.backups.dir: environment variable ${typeof ref === 'string' ? '' : ref.env} is not set on the worker`,
    );
  return dir;
}

function checkBackupName(field: string, name: unknown): string {
  if (typeof name !== 'string' || !BACKUP_NAME.test(name) || name.includes('..')) {
    throw new InvalidInputError(`${field}: '${String(name)}' is not a backup name (letters, digits, '.', '_', '-')`);
  }
  return name;
}

/** The tables of the public schema, each with its quoted identifier. */
export async function publicTables(client: pg.Client): Promise<{ name: string; ident: string }[]> {
  const { rows } = await client.query<{ name: string }>(
    `SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') ORDER BY 1`,
  );
  return rows.map(({ name }) => ({ name, ident: `"${name.replaceAll('"', '""')}"` }));
}

/** The time of the newest commit the server knows of (needs track_commit_timestamp), or null. */
export async function newestCommitAt(client: pg.Client): Promise<string | null> {
  const { rows } = await client.query<{ t: Date | null }>('SELECT (pg_last_committed_xact()).timestamp AS t');
  return rows[0]!.t?.toISOString() ?? null;
}

/** Row counts and checksums of every table of the public schema, in the client's current snapshot. */
export async function tableStats(client: pg.Client): Promise<Record<string, TableStats>> {
  const out: Record<string, TableStats> = {};
  for (const { name, ident } of await publicTables(client)) {
    const { rows } = await client.query<{ rows: string; checksum: string }>(
      `SELECT count(*) AS rows, coalesce(sum(hashtextextended(t::text, 0)), 0)::text AS checksum FROM public.${ident} t`,
    );
    out[name] = { rows: Number(rows[0]!.rows), checksum: rows[0]!.checksum };
  }
  return out;
}

function readManifest(file: string): BackupManifest {
  return JSON.parse(readFileSync(file, 'utf8')) as BackupManifest;
}

export function createPgToolsActivities(deps: SiteDeps) {
  const manifestPath = (site: string, name: string) => join(backupDirOf(deps, site), `${name}.json`);

  return {
    /**
     * Dumps the site's database (`pg_dump -Fd -j`) as backup `name` (into `dir` if given). Written once: if the backup
     * exists it is returned as it is, never overwritten (a retried safety backup reuses it).
     */
    async dumpDatabase({
      site,
      name,
      jobs = 4,
      dir: into,
    }: {
      site: string;
      name: string;
      jobs?: number;
      dir?: string;
    }): Promise<BackupManifest> {
      checkBackupName('name', name);
      if (!Number.isInteger(jobs) || jobs < 1 || jobs > 32) throw new InvalidInputError('jobs: must be an integer from 1 to 32');
      if (into !== undefined && (typeof into !== 'string' || !isAbsolute(into)))
        throw new InvalidInputError(`dir: must be an absolute path (got ${String(into)})`);
      // `dir`: elsewhere than the site's backups (an incident's evidence directory).
      const dir = into ?? backupDirOf(deps, site);
      const manifestFile = join(dir, `${name}.json`);
      if (existsSync(manifestFile)) return readManifest(manifestFile);
      mkdirSync(dir, { recursive: true });
      const database = siteOf(deps, site).database.name;
      const target = join(dir, name);
      const tmp = `${target}.partial-${process.pid}`;
      rmSync(tmp, { recursive: true, force: true });
      const started = Date.now();
      // Stats and dump share one exported snapshot, so the manifest describes exactly what was dumped.
      const { tables, lastCommitAt } = await withDatabase(deps, site, async (c) => {
        await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
        const snapshot = (await c.query<{ s: string }>('SELECT pg_export_snapshot() AS s')).rows[0]!.s;
        const tables = await tableStats(c);
        const last = await newestCommitAt(c);
        let dumped = 0;
        await runTool(
          'pg_dump',
          ['-Fd', '-j', String(jobs), '--snapshot', snapshot, '-f', tmp],
          pgEnv(databaseUrlOf(deps, site)),
          (line) => {
            if (line.includes('dumping contents of table')) activityContext()?.heartbeat({ dumpedTables: ++dumped });
          },
        );
        await c.query('COMMIT');
        return { tables, lastCommitAt: last };
      });
      renameSync(tmp, target);
      const files = await Promise.all(
        readdirSync(target)
          .sort()
          .map(async (f) => {
            const h = await sha256File(join(target, f));
            return { file: f, bytes: h.bytes, sha256: h.sha256 };
          }),
      );
      const manifest: BackupManifest = {
        name,
        site,
        database,
        format: 'directory',
        createdAt: new Date(started).toISOString(),
        lastCommitAt,
        bytes: files.reduce((t, f) => t + f.bytes, 0),
        durationMs: Date.now() - started,
        tables,
        files,
      };
      writeFileSync(`${manifestFile}.partial`, JSON.stringify(manifest, null, 2));
      renameSync(`${manifestFile}.partial`, manifestFile);
      return manifest;
    },

    /** The backup's manifest, after checking every file is there with its recorded SHA-256 and `pg_restore --list` reads it. */
    async inspectBackup({ site, name }: { site: string; name: string }): Promise<BackupManifest & { items: number }> {
      checkBackupName('source.backup', name);
      const manifestFile = manifestPath(site, name);
      if (!existsSync(manifestFile)) {
        const known = existsSync(backupDirOf(deps, site))
          ? readdirSync(backupDirOf(deps, site))
              .filter((f) => f.endsWith('.json'))
              .map((f) => f.slice(0, -5))
          : [];
        throw new NotFoundError(`source.backup: '${name}' does not exist for site ${site} (backups: ${known.join(', ') || 'none'})`);
      }
      const manifest = readManifest(manifestFile);
      const dir = join(backupDirOf(deps, site), name);
      for (const f of manifest.files) {
        const h = existsSync(join(dir, f.file)) ? await sha256File(join(dir, f.file)) : undefined;
        if (!h || h.sha256 !== f.sha256)
          throw new NotFoundError(`source.backup: '${name}' is damaged: ${f.file} ${h ? 'changed' : 'is missing'}`);
      }
      const list = await runTool('pg_restore', ['--list', dir], {});
      return { ...manifest, items: list.split('\n').filter((l) => /^\d+;/.test(l)).length };
    },

    /**
     * Restores backup `name` into the site's database with `pg_restore -j --clean --if-exists`.
     * Re-running it after a crash restarts the restore from the same backup, which is the way to
     * resume a half-done restore. Heartbeats carry the progress (items restored of total).
     */
    async restoreDump({ site, name, jobs = 4 }: { site: string; name: string; jobs?: number }) {
      checkBackupName('name', name);
      if (!Number.isInteger(jobs) || jobs < 1 || jobs > 32) throw new InvalidInputError('jobs: must be an integer from 1 to 32');
      const dir = join(backupDirOf(deps, site), name);
      if (!existsSync(manifestPath(site, name)) || !existsSync(dir))
        throw new NotFoundError(`backup '${name}' does not exist for site ${site}`);
      const total = (await runTool('pg_restore', ['--list', dir], {})).split('\n').filter((l) => /^\d+;/.test(l)).length;
      // A restore left running by a worker that died (its pg_restore orphaned) must not race this one.
      await withDatabase(deps, site, (c) =>
        c.query(`SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()`, [
          RESTORE_APPLICATION,
        ]),
      );
      const started = Date.now();
      let done = 0;
      const attempt = activityContext()?.info.attempt ?? 1;
      await runTool(
        'pg_restore',
        [
          '-Fd',
          '-j',
          String(jobs),
          '--clean',
          '--if-exists',
          '--no-owner',
          '--exit-on-error',
          '--verbose',
          '-d',
          siteOf(deps, site).database.name,
          dir,
        ],
        { ...pgEnv(databaseUrlOf(deps, site)), PGAPPNAME: RESTORE_APPLICATION },
        (line) => {
          if (/processing item|finished item/.test(line)) done++;
          activityContext()?.heartbeat({ step: 'restore', itemsDone: Math.min(done, total), itemsTotal: total, attempt });
        },
      );
      const bytes = readdirSync(dir).reduce((t, f) => t + statSync(join(dir, f)).size, 0);
      const durationMs = Date.now() - started;
      return { name, items: total, bytes, durationMs, mbPerSecond: bytes / 1e6 / Math.max(durationMs / 1000, 0.001), attempt };
    },

    /** Per-table row counts and checksums now, compared with `expected` (the backup's manifest). */
    async verifyTables({ site, expected }: { site: string; expected: Record<string, TableStats> }) {
      return withDatabase(deps, site, async (c) => {
        const actual = await tableStats(c);
        const mismatches: { table: string; expected?: TableStats; actual?: TableStats }[] = [];
        for (const [table, want] of Object.entries(expected)) {
          const got = actual[table];
          if (!got || got.rows !== want.rows || got.checksum !== want.checksum) mismatches.push({ table, expected: want, actual: got });
        }
        const extra = Object.keys(actual).filter((t) => !(t in expected));
        const articles = await c.query<{ n: string }>('SELECT count(*) AS n FROM articles').catch(() => undefined);
        return {
          ok: mismatches.length === 0,
          tables: Object.keys(expected).length,
          mismatches,
          extraTables: extra,
          articles: articles ? Number(articles.rows[0]!.n) : null,
          digest: createHash('sha256').update(JSON.stringify(actual)).digest('hex').slice(0, 16),
        };
      });
    },
  };
}
