// PostgreSQL activities: short queries over the `pg` driver. Each opens its own connection,
// named `mimir-recovery` so that no procedure ever counts or terminates its own sessions.
import { isAbsolute } from 'node:path';
import pg from 'pg';
import type { ConnectionCounts, DatabaseCheck, IdleSession, TerminationResult } from '../workflows/types.js';
import { ConfigError, DatabaseUnavailableError, InvalidInputError, redact } from './errors.js';
import { writeOnce } from './files.js';
import { databaseUrlOf, siteOf, type SiteDeps } from './sites.js';

export const APPLICATION_NAME = 'mimir-recovery';

/** SQLSTATEs that no retry fixes: wrong password, no such role, no such database. */
const CONFIG_CODES = new Set(['28P01', '28000', '3D000']);

/**
 * Runs `fn` with a connected client to the site's database, closing it afterwards. With `port`, the
 * same database and credentials on another local server (a DR drill's scratch copy of it).
 */
export async function withDatabase<T>(deps: SiteDeps, site: string, fn: (client: pg.Client) => Promise<T>, port?: number): Promise<T> {
  const url = new URL(databaseUrlOf(deps, site));
  if (port !== undefined) Object.assign(url, { hostname: '127.0.0.1', port: String(port) });
  const client = new pg.Client({
    connectionString: url.toString(),
    application_name: APPLICATION_NAME,
    connectionTimeoutMillis: 10_000,
    statement_timeout: 20_000,
  });
  client.on('error', () => undefined); // a terminated connection must not crash the worker
  try {
    await client.connect();
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const message = `site ${site}: database ${siteOf(deps, site).database.name} is unreachable: ${redact(err.message)}`;
    throw err.code && CONFIG_CODES.has(err.code) ? new ConfigError(message) : new DatabaseUnavailableError(message);
  }
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

export function createPostgresActivities(deps: SiteDeps) {
  return {
    /** The runbook's `pg_isready`, plus what a responder asks next: version, role, latency. */
    async checkDatabase({ site }: { site: string }): Promise<DatabaseCheck> {
      const started = Date.now();
      return withDatabase(deps, site, async (c) => {
        const { rows } = await c.query<{ version: string; in_recovery: boolean }>(
          `SELECT current_setting('server_version') AS version, pg_is_in_recovery() AS in_recovery`,
        );
        return { reachable: true, serverVersion: rows[0]!.version, inRecovery: rows[0]!.in_recovery, latencyMs: Date.now() - started };
      });
    },

    /** The runbook's `SELECT count(*), state FROM pg_stat_activity GROUP BY state`, client sessions only. */
    async connectionCounts({ site }: { site: string }): Promise<ConnectionCounts> {
      return withDatabase(deps, site, async (c) => {
        const { rows } = await c.query<{ state: string; n: string }>(
          `SELECT coalesce(state, 'unknown') AS state, count(*) AS n
             FROM pg_stat_activity
            WHERE backend_type = 'client backend' AND application_name <> $1
            GROUP BY 1 ORDER BY 1`,
          [APPLICATION_NAME],
        );
        const max = await c.query<{ max: string }>(`SELECT current_setting('max_connections') AS max`);
        const byState = Object.fromEntries(rows.map((r) => [r.state, Number(r.n)]));
        return { byState, total: rows.reduce((t, r) => t + Number(r.n), 0), maxConnections: Number(max.rows[0]!.max) };
      });
    },

    /**
     * Client sessions of the site's database idle for longer than `idleForMs`. The runbook filters on
     * `query_start`; `state_change` is when the session became idle, which is what "idle for" means
     * (a session that ran a long query an hour ago and went idle a second ago is not idle for an hour).
     */
    async findIdleSessions({ site, idleForMs, limit }: { site: string; idleForMs: number; limit: number }): Promise<IdleSession[]> {
      if (!(idleForMs >= 1000)) throw new InvalidInputError(`idleForMs must be at least 1000 (got ${idleForMs})`);
      const database = siteOf(deps, site).database.name;
      return withDatabase(deps, site, async (c) => {
        const { rows } = await c.query<{
          pid: number;
          usename: string;
          application_name: string;
          client_addr: string | null;
          backend_start: string;
          state_change: string;
          idle_seconds: number;
        }>(
          `SELECT pid, usename, application_name, client_addr::text AS client_addr,
                  to_char(backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS backend_start,
                  to_char(state_change AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS state_change,
                  extract(epoch FROM now() - state_change)::float8 AS idle_seconds
             FROM pg_stat_activity
            WHERE backend_type = 'client backend' AND datname = $1 AND state = 'idle'
              AND state_change < now() - make_interval(secs => $2::float8 / 1000)
              AND pid <> pg_backend_pid() AND application_name <> $3
            ORDER BY state_change LIMIT $4`,
          [database, idleForMs, APPLICATION_NAME, limit],
        );
        return rows.map((r) => ({
          pid: r.pid,
          user: r.usename,
          application: r.application_name,
          clientAddr: r.client_addr,
          backendStart: r.backend_start, // microseconds kept: it is the session's identity in terminateSessions
          idleSince: r.state_change,
          idleSeconds: Math.round(r.idle_seconds),
        }));
      });
    },

    /**
     * Terminates exactly the planned sessions. A pid is only terminated if it is still the same
     * session (same backend start) and still idle past the threshold, so a retry, a reused pid or a
     * session that woke up since the plan is never hit. Waits for each backend to exit.
     */
    async terminateSessions({
      site,
      idleForMs,
      sessions,
    }: {
      site: string;
      idleForMs: number;
      sessions: { pid: number; backendStart: string }[];
    }): Promise<TerminationResult> {
      return withDatabase(deps, site, async (c) => {
        const result: TerminationResult = { terminated: [], skipped: [] };
        for (const s of sessions) {
          const { rows } = await c.query<{ idle: boolean }>(
            `SELECT state = 'idle' AND state_change < now() - make_interval(secs => $3::float8 / 1000) AS idle
               FROM pg_stat_activity WHERE pid = $1 AND backend_start = $2::timestamptz`,
            [s.pid, s.backendStart, idleForMs],
          );
          if (rows.length === 0) result.skipped.push({ pid: s.pid, reason: 'already gone' });
          else if (!rows[0]!.idle) result.skipped.push({ pid: s.pid, reason: 'no longer idle' });
          else {
            const t = await c.query<{ ok: boolean }>(`SELECT pg_terminate_backend($1, 5000) AS ok`, [s.pid]);
            if (t.rows[0]!.ok) result.terminated.push(s.pid);
            else result.skipped.push({ pid: s.pid, reason: 'did not exit within 5s' });
          }
        }
        return result;
      });
    },

    /** Ends every client session of the site's database but our own (writers are fenced first). */
    async terminateClientSessions({ site }: { site: string }): Promise<{ terminated: number }> {
      const database = siteOf(deps, site).database.name;
      return withDatabase(deps, site, async (c) => {
        const { rows } = await c.query<{ ok: boolean }>(
          `SELECT pg_terminate_backend(pid, 5000) AS ok FROM pg_stat_activity
            WHERE backend_type = 'client backend' AND datname = $1 AND pid <> pg_backend_pid() AND application_name <> $2`,
          [database, APPLICATION_NAME],
        );
        return { terminated: rows.filter((r) => r.ok).length };
      });
    },

    /**
     * The runbook's authentication-failure query (`activity_log` failed logins) for the window
     * [since, until], written once to `file` as evidence. The window comes from the workflow, so a
     * retry captures the same rows.
     */
    async captureAuthFailures({ site, file, since, until }: { site: string; file: string; since: string; until: string }) {
      if (typeof file !== 'string' || !isAbsolute(file))
        throw new InvalidInputError(`file: must be an absolute path (got ${String(file)})`);
      for (const [field, v] of [
        ['since', since],
        ['until', until],
      ] as const)
        if (Number.isNaN(Date.parse(v))) throw new InvalidInputError(`${field}: must be an ISO timestamp (got ${String(v)})`);
      const query = `SELECT * FROM activity_log WHERE action = 'login' AND status = 'failed' AND created_at > $1 AND created_at <= $2 ORDER BY created_at DESC`;
      const rows = await withDatabase(deps, site, async (c) => (await c.query(query, [since, until])).rows);
      const written = await writeOnce(file, `${JSON.stringify({ site, query, since, until, count: rows.length, rows }, null, 2)}\n`);
      return { ...written, count: rows.length };
    },

    /**
     * The runbook's forced password reset: every user who logged in after `since` must reset their
     * password. `since` comes from the workflow, so a retry touches the same users. Counts the rows
     * touched and, of those, the ones newly flagged.
     */
    async forcePasswordReset({ site, since }: { site: string; since: string }) {
      if (Number.isNaN(Date.parse(since))) throw new InvalidInputError(`since: must be an ISO timestamp (got ${String(since)})`);
      return withDatabase(deps, site, async (c) => {
        const { rows } = await c.query<{ touched: string; newly: string }>(
          `WITH touched AS (
             UPDATE users u SET password_reset_required = true
               FROM users old WHERE old.id = u.id AND u.last_login_at > $1
             RETURNING old.password_reset_required AS was)
           SELECT count(*) AS touched, count(*) FILTER (WHERE NOT was) AS newly FROM touched`,
          [since],
        );
        return { touched: Number(rows[0]!.touched), newlyFlagged: Number(rows[0]!.newly), since };
      });
    },

    /** Which of these pids still have a session. */
    async sessionsPresent({ site, pids }: { site: string; pids: number[] }): Promise<number[]> {
      if (pids.length === 0) return [];
      return withDatabase(deps, site, async (c) => {
        const { rows } = await c.query<{ pid: number }>(`SELECT pid FROM pg_stat_activity WHERE pid = ANY($1::int[])`, [pids]);
        return rows.map((r) => r.pid);
      });
    },
  };
}
