// DR failover and failback activities: replication state and lag, fencing a database against writes,
// promotion, health, traffic, and rebuilding an old primary as a standby (pg_rewind, else
// pg_basebackup). Every one is idempotent: each reads the state first and does only what is missing.
import { execa } from 'execa';
import { existsSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import pg from 'pg';
import type { CatchUp, HealthCheck, ReplicationState } from '../workflows/types.js';
import { activityContext, progress } from './context.js';
import { ConfigError, InvalidInputError, NotifyError, NotReadyError, redact } from './errors.js';
import { createKubernetesActivities, type KubeDeps } from './kubernetes.js';
import { pgEnv } from './pg-tools.js';
import { asServerOwner, serverOf, serverRunning } from './pitr.js';
import { withDatabase } from './postgres.js';
import { healthUrlOf, siteOf, type SiteDeps } from './sites.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A session that may write even while the database is fenced read-only (only this procedure's own statements). */
async function readWrite(c: pg.Client): Promise<void> {
  await c.query('SET default_transaction_read_only = off');
}

const ident = (name: string) => `"${name.replaceAll('"', '""')}"`;
const slotOf = (site: string) => `mimir_${site.replaceAll('-', '_')}`;

export function createDrActivities(deps: SiteDeps & KubeDeps) {
  const k8s = createKubernetesActivities({ kubeconfig: deps.kubeconfig });

  async function replicationState(primary: string, standby: string): Promise<ReplicationState> {
    const checkedAt = new Date().toISOString();
    const p = await withDatabase(deps, primary, async (c) => {
      const { rows } = await c.query<{ flush: string | null; commit: Date | null; recovery: boolean }>(
        `SELECT CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_flush_lsn()::text END AS flush,
                (pg_last_committed_xact()).timestamp AS commit, pg_is_in_recovery() AS recovery`,
      );
      return rows[0]!;
    }).catch(() => undefined);
    return withDatabase(deps, standby, async (c) => {
      const { rows } = await c.query<{
        recovery: boolean;
        status: string | null;
        receive: string | null;
        replay: string | null;
        replayed_at: Date | null;
        lag: string | null;
        received_lag: string | null;
      }>(
        `SELECT pg_is_in_recovery() AS recovery, (SELECT status FROM pg_stat_wal_receiver) AS status,
                pg_last_wal_receive_lsn()::text AS receive, pg_last_wal_replay_lsn()::text AS replay,
                pg_last_xact_replay_timestamp() AS replayed_at,
                pg_wal_lsn_diff($1::pg_lsn, pg_last_wal_replay_lsn())::text AS lag,
                pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())::text AS received_lag`,
        [p?.flush ?? null],
      );
      const s = rows[0]!;
      const reachable = p !== undefined && p.flush !== null;
      const lagBytes = reachable
        ? s.lag === null
          ? null
          : Math.max(Number(s.lag), 0)
        : s.received_lag === null
          ? null
          : Math.max(Number(s.received_lag), 0);
      const lagSeconds =
        lagBytes === 0
          ? 0
          : reachable && p.commit && s.replayed_at
            ? Math.max(Math.round((p.commit.getTime() - s.replayed_at.getTime()) / 100) / 10, 0)
            : null;
      return {
        primary,
        standby,
        primaryReachable: reachable,
        primaryFlushLsn: p?.flush ?? null,
        primaryLastCommitAt: p?.commit?.toISOString() ?? null,
        standbyInRecovery: s.recovery,
        receiverStatus: s.status,
        receiveLsn: s.receive,
        replayLsn: s.replay,
        lastReplayAt: s.replayed_at?.toISOString() ?? null,
        lagBytes,
        lagSeconds,
        checkedAt,
      };
    });
  }

  return {
    /** Where the standby stands against its primary: streaming, received and replayed positions, lag in bytes and seconds. */
    async replicationStatus({ primary, standby }: { primary: string; standby: string }): Promise<ReplicationState> {
      siteOf(deps, primary);
      siteOf(deps, standby);
      // A streaming standby that has replayed no commit since it started (just rebuilt) has no replay
      // time to measure seconds against while a record is in flight: give replay up to 2 s to settle
      // rather than report the lag in seconds as unknown for one sampled instant.
      const until = Date.now() + 2000;
      for (;;) {
        const s = await replicationState(primary, standby);
        const settling = s.lagSeconds === null && s.lagBytes !== null && s.standbyInRecovery && s.receiverStatus === 'streaming';
        if (!settling || Date.now() > until) return s;
        await sleep(100);
      }
    },

    /**
     * Waits, bounded, until the standby has replayed everything the primary flushed (the primary is
     * fenced, so that position no longer moves). With the primary unreachable, waits for the standby to
     * replay what it received and records that position as the estimate. Returns, caught up or not.
     */
    async waitForCatchUp({ primary, standby, timeoutMs }: { primary: string; standby: string; timeoutMs: number }): Promise<CatchUp> {
      if (!(timeoutMs >= 1000)) throw new InvalidInputError(`timeoutMs: must be at least 1000 (got ${timeoutMs})`);
      const started = Date.now();
      for (;;) {
        const s = await replicationState(primary, standby);
        const caughtUp = s.lagBytes === 0;
        if (caughtUp || Date.now() - started > timeoutMs) {
          return { ...s, caughtUp, basis: s.primaryReachable ? 'primary-flush' : 'last-received', waitedMs: Date.now() - started };
        }
        progress({ waitingFor: 'standby replay', replayLsn: s.replayLsn, primaryFlushLsn: s.primaryFlushLsn, lagBytes: s.lagBytes });
        await sleep(200);
      }
    },

    /**
     * Fences a database against writes: new transactions are read-only by default (set on the
     * database, so every new session gets it); the caller then ends the open sessions. Returns the
     * primary's flushed position after the fence.
     */
    async fenceDatabase({ site }: { site: string }): Promise<{ flushLsn: string }> {
      const database = siteOf(deps, site).database.name;
      return withDatabase(deps, site, async (c) => {
        await readWrite(c);
        await c.query(`ALTER DATABASE ${ident(database)} SET default_transaction_read_only = on`);
        const { rows } = await c.query<{ lsn: string }>('SELECT pg_current_wal_flush_lsn()::text AS lsn');
        return { flushLsn: rows[0]!.lsn };
      });
    },

    /** Undoes fenceDatabase (a no-op on a standby: the setting arrives from its primary). */
    async unfenceDatabase({ site }: { site: string }): Promise<{ unfenced: boolean }> {
      const database = siteOf(deps, site).database.name;
      return withDatabase(deps, site, async (c) => {
        const { rows } = await c.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r');
        if (rows[0]!.r) return { unfenced: false };
        await readWrite(c);
        await c.query(`ALTER DATABASE ${ident(database)} RESET default_transaction_read_only`);
        return { unfenced: true };
      });
    },

    /** pg_promote() unless already promoted, waits until the server accepts writes, and lifts a fence replicated from the old primary. */
    async promoteStandby({ site }: { site: string }): Promise<{ promoted: boolean; promotedAt: string }> {
      const database = siteOf(deps, site).database.name;
      return withDatabase(deps, site, async (c) => {
        const inRecovery = async () => (await c.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r')).rows[0]!.r;
        const promoted = await inRecovery();
        if (promoted) {
          const { rows } = await c.query<{ ok: boolean }>('SELECT pg_promote(true, 60) AS ok');
          if (!rows[0]!.ok) throw new NotReadyError(`site ${site}: pg_promote did not complete within 60s`);
        }
        while (await inRecovery()) {
          progress({ waitingFor: 'promotion', site });
          await sleep(100);
        }
        await readWrite(c);
        await c.query(`ALTER DATABASE ${ident(database)} RESET default_transaction_read_only`);
        return { promoted, promotedAt: new Date().toISOString() };
      });
    },

    /** Whether the site's database takes writes now, as an application's transaction sees it (not a standby, not read-only). */
    async checkWritable({ site }: { site: string }): Promise<{ writable: boolean; inRecovery: boolean; error?: string }> {
      return withDatabase(deps, site, async (c) => {
        const { rows } = await c.query<{ r: boolean; ro: string }>(
          `SELECT pg_is_in_recovery() AS r, current_setting('transaction_read_only') AS ro`,
        );
        const { r: inRecovery, ro } = rows[0]!;
        if (inRecovery) return { writable: false, inRecovery, error: 'the database is a standby (in recovery)' };
        if (ro === 'on')
          return { writable: false, inRecovery, error: 'transactions are read-only (default_transaction_read_only: fenced)' };
        return { writable: true, inRecovery };
      });
    },

    /** Asks the site's health endpoint; `answered` is any HTTP answer, `healthy` a 200. */
    async checkHealth({ site }: { site: string }): Promise<HealthCheck> {
      const url = healthUrlOf(deps, site);
      try {
        const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
        const text = await res.text();
        let body: unknown = text.slice(0, 2000);
        try {
          body = JSON.parse(text);
        } catch {
          /* not JSON: keep the text */
        }
        return { site, url, answered: true, healthy: res.status === 200, httpStatus: res.status, body };
      } catch (e) {
        return { site, url, answered: false, healthy: false, error: (e as Error).message };
      }
    },

    /** Sends users to `site` through its traffic provider (kubernetes: repoint the entry Service; webhook: POST). */
    async switchTraffic({ site, workflowId }: { site: string; workflowId: string }) {
      const traffic = siteOf(deps, site).traffic;
      if (!traffic) throw new ConfigError(`sites.${site}.traffic: not configured; add a provider (manual, kubernetes or webhook)`);
      if (traffic.provider === 'kubernetes') {
        const r = await k8s.repointService({
          target: { context: traffic.context, namespace: traffic.namespace },
          name: traffic.service,
          externalName: traffic.externalName,
        });
        return {
          provider: 'kubernetes',
          entry: `${traffic.namespace}/${traffic.service}`,
          previous: r.previous,
          now: r.externalName,
          changed: r.changed,
        };
      }
      if (traffic.provider === 'webhook') {
        const url = deps.env[traffic.url.env];
        if (!url) throw new ConfigError(`sites.${site}.traffic.url: environment variable ${traffic.url.env} is not set on the worker`);
        const res = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'idempotency-key': `${workflowId}:switch-traffic:${site}` },
          body: JSON.stringify({ action: 'switch-traffic', site, workflowId }),
          signal: AbortSignal.timeout(10_000),
        }).catch((e: Error) => {
          throw new NotifyError(`traffic webhook of site ${site}: ${redact(e.message)}`);
        });
        if (!res.ok) throw new NotifyError(`traffic webhook of site ${site}: HTTP ${res.status}`);
        return { provider: 'webhook', now: site, changed: true };
      }
      throw new InvalidInputError(`sites.${site}.traffic: the manual provider is a gate a person confirms, not an activity`);
    },

    /**
     * Rebuilds `site`'s server as a streaming standby of `from` (failback): stops it, rewinds it with
     * pg_rewind (else copies it afresh with pg_basebackup, the old directory moved aside, never deleted),
     * keeps the site's own configuration files, points it at `from` through slot `mimir_<site>`, starts
     * it and waits until it streams. A server that streams from `from` already is left alone.
     */
    async rebuildAsStandby({ site, from, runId }: { site: string; from: string; runId: string }) {
      if (!/^[A-Za-z0-9._-]{1,120}$/.test(runId)) throw new InvalidInputError(`runId: '${runId}' is not usable in a path`);
      const { dataDir } = serverOf(deps, site);
      const source = serverOf(deps, from).replicationUrl;
      const sourcePort = new URL(source).port;
      const slot = slotOf(site);
      const streamingFrom = () =>
        withDatabase(deps, site, async (c) => {
          const { rows } = await c.query<{ status: string | null; port: number | null }>(
            'SELECT status, sender_port AS port FROM pg_stat_wal_receiver',
          );
          return rows[0]?.status === 'streaming' && String(rows[0].port) === sourcePort;
        }).catch(() => false);
      if ((await serverRunning(dataDir)) && (await streamingFrom())) return { method: 'none', slot };
      const started = Date.now();
      const env = pgEnv(source);
      // The slot on the new primary keeps the WAL this standby needs from the moment it is rebuilt.
      const admin = new pg.Client({ connectionString: source, application_name: 'mimir-recovery', connectionTimeoutMillis: 10_000 });
      admin.on('error', () => undefined);
      try {
        await admin.connect();
        // A just-promoted server records its new timeline in pg_control at its next checkpoint; until then
        // pg_rewind would see one timeline and wrongly find nothing to rewind.
        await admin.query('CHECKPOINT');
        await admin.query(
          `SELECT pg_create_physical_replication_slot($1, true) WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1)`,
          [slot],
        );
      } finally {
        await admin.end().catch(() => undefined);
      }
      progress({ step: 'stop', site });
      if (await serverRunning(dataDir)) await asServerOwner('pg_ctl', ['stop', '-D', dataDir, '-m', 'fast', '-w', '-t', '120']);
      // The site's own configuration (port, includes, access rules) survives the copy from the source.
      const confs = existsSync(dataDir)
        ? Object.fromEntries(
            readdirSync(dataDir)
              .filter((f) => f.endsWith('.conf'))
              .map((f) => [f, readFileSync(join(dataDir, f), 'utf8')]),
          )
        : {};
      let method: 'pg_rewind' | 'pg_basebackup' = 'pg_rewind';
      let rewindError: string | undefined;
      const ticker = setInterval(() => activityContext()?.heartbeat({ step: method, site }), 5000);
      const copyAfresh = async () => {
        method = 'pg_basebackup';
        const aside = `${dataDir}.pre-rebuild-${runId}`;
        if (existsSync(dataDir) && !existsSync(aside)) renameSync(dataDir, aside);
        else rmSync(dataDir, { recursive: true, force: true });
        await asServerOwner('pg_basebackup', ['-D', dataDir, '-X', 'stream', '-c', 'fast', '--no-password'], env);
      };
      const configureAndStart = async (timeoutMs: number): Promise<boolean> => {
        for (const [file, text] of Object.entries(confs)) {
          const kept =
            file === 'postgresql.auto.conf'
              ? text
                  .split('\n')
                  .filter((l) => !/^\s*(primary_conninfo|primary_slot_name|restore_command|recovery_target\w*)\s*=/.test(l))
                  .join('\n')
              : text;
          writeFileSync(join(dataDir, file), kept);
        }
        const u = new URL(source);
        const conninfo = `host=${u.hostname} port=${u.port || 5432} user=${decodeURIComponent(u.username)} password=${decodeURIComponent(u.password)} application_name=${slot}`;
        writeFileSync(
          join(dataDir, 'postgresql.auto.conf'),
          `${readFileSync(join(dataDir, 'postgresql.auto.conf'), 'utf8').trimEnd()}\n# standby of site ${from} (${runId})\nprimary_conninfo = '${conninfo.replaceAll("'", "''")}'\nprimary_slot_name = '${slot}'\n`,
          { mode: 0o600 },
        );
        // WAL a standby holds was archived by the server that wrote it: marked done, so this server, once
        // promoted, does not archive it again (a rewind copies segments and their `.ready` marks).
        const status = join(dataDir, 'pg_wal', 'archive_status');
        if (existsSync(status)) {
          for (const f of readdirSync(status).filter((x) => x.endsWith('.ready')))
            renameSync(join(status, f), join(status, f.replace(/\.ready$/, '.done')));
        }
        rmSync(join(dataDir, 'recovery.signal'), { force: true });
        rmSync(join(dataDir, 'postmaster.pid'), { force: true });
        writeFileSync(join(dataDir, 'standby.signal'), '');
        if (process.getuid?.() === 0) await execa('chown', ['-R', 'postgres:postgres', dataDir]);
        await execa('chmod', ['700', dataDir]);
        const log = join(dirname(dataDir), 'server.log');
        const up = await asServerOwner('pg_ctl', ['start', '-D', dataDir, '-l', log, '-w', '-t', '300']).then(
          () => true,
          () => false,
        );
        const until = Date.now() + timeoutMs;
        while (up && !(await streamingFrom())) {
          if (Date.now() > until) break;
          progress({ waitingFor: 'streaming', site, from, method });
          await sleep(250);
        }
        if (up && (await streamingFrom())) return true;
        if (await serverRunning(dataDir)) await asServerOwner('pg_ctl', ['stop', '-D', dataDir, '-m', 'fast', '-w', '-t', '120']);
        return false;
      };
      try {
        try {
          if (!existsSync(join(dataDir, 'PG_VERSION'))) throw new Error(`${dataDir} holds no server`);
          await asServerOwner('pg_rewind', ['--target-pgdata', dataDir, '--source-server', `application_name=${slot}`], env);
        } catch (e) {
          rewindError = redact((e as { stderr?: string }).stderr?.slice(-500) || (e as Error).message);
          await copyAfresh();
        }
        // A rewound server that cannot follow the new timeline is copied afresh (the rewound directory is kept aside).
        if (!(await configureAndStart(method === 'pg_rewind' ? 30_000 : 120_000))) {
          if ((method as string) === 'pg_basebackup')
            throw new NotReadyError(`site ${site}: copied with pg_basebackup, but it does not stream from ${from}`);
          rewindError = `rewound, but it did not stream from ${from}; see ${join(dirname(dataDir), 'server.log')}`;
          await copyAfresh();
          if (!(await configureAndStart(120_000)))
            throw new NotReadyError(`site ${site}: copied with pg_basebackup, but it does not stream from ${from}`);
        }
      } finally {
        clearInterval(ticker);
      }
      return { method, slot, durationMs: Date.now() - started, ...(rewindError ? { rewindError } : {}) };
    },
  };
}
