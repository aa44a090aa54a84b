// DR drills: prove that the site's database can be brought back, without touching production.
//
// Why a scratch cluster from the latest base backup plus the WAL archive (and not a logical dump
// restored into a scratch database): the disaster a drill rehearses is losing the server, and what
// brings it back is exactly that pair (activities/pitr.ts). Replaying them into a throwaway
// PostgreSQL cluster proves the whole path end to end (the backup is complete, the archive is
// contiguous, a server starts from them and serves the data) and measures the real RPO: commits not
// yet archived are what a disaster would lose. A dump restored into a scratch database on the
// production server would prove only the dump, and would write to the production server. The scratch
// cluster runs as the server's owner next to its data directory (`<dataDir>.drill-<id>`, same disk,
// same permissions), on a free local port with its own socket directory and with archiving off, so it
// can never write into the production archive; it only reads the archive through `restore_command`.
//
// The app tier comes up too, with least privilege: copies of the site's deployments (named
// `<name>-<drillId>`, labelled `mimir-recovery.io/drill=<drillId>`) in a scratch namespace the profile
// names (`sites.<site>.drill.namespace`), pre-created by the cluster admin, where deploy/rbac.yaml lets
// the worker create and delete deployments and nowhere else. A namespace per drill would need
// cluster-wide `create`/`delete` on namespaces (RBAC cannot limit either to a name prefix), which would
// let the worker delete `mimir-production`. The copies point at the scratch cluster (its port and
// database name as env and annotation; never a password, and none of the site's secret or config map
// references, which are left out and reported), and the teardown deletes everything with the label.
import { execa } from 'execa';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import type { BaseBackupInfo } from '../workflows/types.js';
import { activityContext } from './context.js';
import { InvalidInputError, NotFoundError, RestoreFailedError } from './errors.js';
import { newestCommitAt, publicTables, tableStats, type TableStats } from './pg-tools.js';
import { createKubernetesActivities, type KubeTarget } from './kubernetes.js';
import { asServerOwner, baseBackupDir, listBaseBackups, serverOf, serverRunning } from './pitr.js';
import { withDatabase } from './postgres.js';
import { siteOf, type SiteDeps } from './sites.js';
import type { Profile } from '../config/profile.js';

const DRILL_ID = /^[a-z0-9][a-z0-9-]{0,62}$/;
/** The label every Kubernetes object of a drill carries; the teardown deletes by it. */
export const DRILL_LABEL = 'mimir-recovery.io/drill';

export interface DrillPlan {
  drillId: string;
  scratchDir: string;
  baseBackup: BaseBackupInfo;
  objectives: NonNullable<Profile['objectives']>;
  /** Where the app tier comes up, when the site has `drill.namespace`. */
  app?: { namespace: string; deployments: { name: string; replicas: number }[] };
}

export interface ScratchCluster {
  port: number;
  baseBackup: string;
  durationMs: number;
  /** The newest commit the restore holds (from the base backup and the archived WAL). */
  lastCommitAt: string | null;
}

export interface DrillVerification {
  ok: boolean;
  tables: number;
  missingTables: string[];
  /** Tables with rows on the primary that came back empty. */
  emptyTables: string[];
  rows: Record<string, { restored: number; primaryNow: number }>;
  restoredLastCommitAt: string | null;
  primaryLastCommitAt: string | null;
  /** The primary's newest commit minus the restore's newest commit: what a disaster now would lose. */
  rpoSeconds: number;
}

function checkDrillId(drillId: unknown): string {
  if (typeof drillId !== 'string' || !DRILL_ID.test(drillId)) {
    throw new InvalidInputError(`drillId: '${String(drillId)}' must be lowercase letters, digits and '-' (at most 63)`);
  }
  return drillId;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function createDrillActivities(deps: SiteDeps) {
  const kube = createKubernetesActivities({ kubeconfig: deps.env.KUBECONFIG });
  const appOf = (site: string, drillId: string) => {
    const { kubernetes, drill } = siteOf(deps, site);
    if (!drill) throw new InvalidInputError(`sites.${site}.drill.namespace: not configured; the drill has no app tier to bring up`);
    const scratch: KubeTarget = { context: kubernetes.context, namespace: drill.namespace };
    const deployments = kubernetes.deployments.map((name) => ({ name, replicas: drill.replicas?.[name] ?? 1 }));
    return { kubernetes, scratch, deployments, selector: `${DRILL_LABEL}=${checkDrillId(drillId)}` };
  };
  const scratchOf = (site: string, drillId: string) => {
    const dir = `${serverOf(deps, site).dataDir}.drill-${checkDrillId(drillId)}`;
    return { dir, data: join(dir, 'data'), sock: join(dir, 'sock'), log: join(dir, 'server.log'), state: join(dir, 'drill.json') };
  };

  return {
    /** What the drill restores and where, and the objectives it is measured against; changes nothing. */
    async planDrill({ site, drillId }: { site: string; drillId: string }): Promise<DrillPlan> {
      siteOf(deps, site);
      const { walArchive } = serverOf(deps, site);
      const scratch = scratchOf(site, drillId);
      const base = listBaseBackups(deps, site).at(-1);
      if (!base) throw new NotFoundError(`site ${site} has no base backup to drill on (in ${baseBackupDir(deps, site)}); take one first`);
      if (!existsSync(join(baseBackupDir(deps, site), base.name, 'backup_label')))
        throw new NotFoundError(`base backup '${base.name}' of site ${site} has an info file but no data (backup_label missing)`);
      if (!existsSync(join(walArchive, base.startWalFile)))
        throw new NotFoundError(`the WAL archive ${walArchive} lacks ${base.startWalFile}, where base backup '${base.name}' starts`);
      const app = siteOf(deps, site).drill && appOf(site, drillId);
      return {
        drillId,
        scratchDir: scratch.dir,
        baseBackup: base,
        objectives: deps.profile.objectives,
        ...(app ? { app: { namespace: app.scratch.namespace, deployments: app.deployments } } : {}),
      };
    },

    /**
     * Copies the base backup into the scratch directory, replays the whole WAL archive into it and
     * waits until it is promoted and answers. Resumable: a running scratch server from an earlier
     * attempt is waited on, a half-made one is redone. Heartbeats carry the step; a cancellation
     * stops the copy or the wait at once (the teardown activity then removes what is left).
     */
    async startScratchCluster({
      site,
      drillId,
      baseBackup,
    }: {
      site: string;
      drillId: string;
      baseBackup: string;
    }): Promise<ScratchCluster> {
      const { walArchive } = serverOf(deps, site);
      const s = scratchOf(site, drillId);
      const source = join(baseBackupDir(deps, site), baseBackup);
      if (!existsSync(join(source, 'backup_label'))) throw new NotFoundError(`baseBackup: '${baseBackup}' does not exist for site ${site}`);
      const ctx = activityContext();
      const cancelled = () => ctx?.cancellationSignal.aborted === true;
      const started = Date.now();
      let port: number;
      if (existsSync(s.state) && (await serverRunning(s.data))) {
        port = (JSON.parse(readFileSync(s.state, 'utf8')) as { port: number }).port;
      } else {
        if (await serverRunning(s.data)) await asServerOwner('pg_ctl', ['stop', '-D', s.data, '-m', 'immediate', '-w', '-t', '60']);
        rmSync(s.dir, { recursive: true, force: true });
        mkdirSync(s.sock, { recursive: true });
        const ticker = ctx ? setInterval(() => ctx.heartbeat({ step: 'copy base backup', baseBackup }), 2000) : undefined;
        try {
          await execa('cp', ['-a', source, s.data], { cancelSignal: ctx?.cancellationSignal });
        } finally {
          clearInterval(ticker);
        }
        if (cancelled()) throw ctx!.cancellationSignal.reason;
        rmSync(join(s.data, 'postmaster.pid'), { force: true });
        rmSync(join(s.data, 'standby.signal'), { force: true });
        writeFileSync(join(s.data, 'recovery.signal'), '');
        port = await freePort();
        // postgresql.auto.conf is read last, so these override everything the copied configuration says.
        const conf = readFileSync(join(s.data, 'postgresql.auto.conf'), 'utf8');
        writeFileSync(
          join(s.data, 'postgresql.auto.conf'),
          [
            conf,
            `# DR drill ${drillId}: a scratch copy; never archives, never streams, own port and socket`,
            `port = ${port}`,
            `listen_addresses = '127.0.0.1'`,
            `unix_socket_directories = '${s.sock}'`,
            `archive_mode = off`,
            `primary_conninfo = ''`,
            `primary_slot_name = ''`,
            `hot_standby = off`,
            `shared_buffers = '32MB'`,
            `restore_command = 'cp "${walArchive}/%f" "%p"'`,
            // The base backup's own timeline, as point-in-time recovery does (activities/pitr.ts): the
            // shared archive also holds the history of timelines other servers forked off (a DR
            // promotion), and 'latest' would follow one this backup is not an ancestor of.
            `recovery_target_timeline = 'current'`,
            // Replay to the end of the archive: a target an earlier point-in-time recovery left in the
            // server's own postgresql.auto.conf (copied with the base backup) must not apply here.
            ...['recovery_target', 'recovery_target_time', 'recovery_target_xid', 'recovery_target_lsn', 'recovery_target_name'].map(
              (k) => `${k} = ''`,
            ),
            `recovery_target_action = 'promote'`,
            '',
          ].join('\n'),
        );
        writeFileSync(s.state, JSON.stringify({ port, baseBackup, startedAt: new Date(started).toISOString() }));
        if (process.getuid?.() === 0) await execa('chown', ['-R', 'postgres:postgres', s.dir]);
        await execa('chmod', ['700', s.dir, s.data]);
        // -W: do not wait here; the loop below waits, heartbeating and honouring cancellation.
        await asServerOwner('pg_ctl', ['start', '-W', '-D', s.data, '-l', s.log]);
      }
      // Replay the archive to its end; the server then promotes and accepts connections.
      for (;;) {
        if (cancelled()) throw ctx!.cancellationSignal.reason;
        const state = await withDatabase(
          deps,
          site,
          async (c) => (await c.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r')).rows[0]!,
          port,
        ).catch(() => undefined);
        ctx?.heartbeat({ step: 'replay', accepting: state !== undefined });
        if (state && !state.r) break;
        if (!(await serverRunning(s.data))) {
          // A cancellation also aborts the status check (asServerOwner honours it): not a stopped server.
          if (cancelled()) throw ctx!.cancellationSignal.reason;
          const tail = existsSync(s.log) ? readFileSync(s.log, 'utf8').split('\n').slice(-15).join('\n') : '(no server log)';
          throw new RestoreFailedError(`the scratch server stopped while restoring base backup '${baseBackup}':\n${tail}`);
        }
        await sleep(100);
      }
      return { port, baseBackup, durationMs: Date.now() - started, lastCommitAt: await withDatabase(deps, site, newestCommitAt, port) };
    },

    /**
     * Verifies the scratch copy serves the data: every table of the primary is there, none that has
     * rows on the primary came back empty (row counts of both reported), and measures the RPO against
     * the primary's newest commit now. Reads the primary's catalog and counts only; writes nothing.
     */
    async verifyScratch({ site, port }: { site: string; port: number }): Promise<DrillVerification> {
      const restored: Record<string, TableStats> = await withDatabase(deps, site, (c) => tableStats(c), port);
      const restoredLastCommitAt = await withDatabase(deps, site, newestCommitAt, port);
      const { primary, primaryLastCommitAt } = await withDatabase(deps, site, async (c) => {
        const counts: Record<string, number> = {};
        for (const { name, ident } of await publicTables(c)) {
          counts[name] = Number((await c.query<{ n: string }>(`SELECT count(*) AS n FROM public.${ident}`)).rows[0]!.n);
        }
        return { primary: counts, primaryLastCommitAt: await newestCommitAt(c) };
      });
      const missingTables = Object.keys(primary).filter((t) => !(t in restored));
      const emptyTables = Object.keys(primary).filter((t) => primary[t]! > 0 && restored[t]?.rows === 0);
      const rows = Object.fromEntries(Object.keys(primary).map((t) => [t, { restored: restored[t]?.rows ?? 0, primaryNow: primary[t]! }]));
      const gapMs = primaryLastCommitAt && restoredLastCommitAt ? Date.parse(primaryLastCommitAt) - Date.parse(restoredLastCommitAt) : 0;
      return {
        ok: missingTables.length === 0 && emptyTables.length === 0 && Object.keys(primary).length > 0,
        tables: Object.keys(restored).length,
        missingTables,
        emptyTables,
        rows,
        restoredLastCommitAt,
        primaryLastCommitAt,
        rpoSeconds: Math.max(Math.round(gapMs / 100) / 10, 0),
      };
    },

    /**
     * Brings up the site's app tier in its drill namespace: a copy of each deployment at the profile's
     * replicas (default 1), pointed at the scratch cluster on `port`, and waits until all are ready.
     */
    async startScratchApp({ site, drillId, port }: { site: string; drillId: string; port: number }) {
      const { kubernetes, scratch, deployments } = appOf(site, drillId);
      const started = Date.now();
      const database = `127.0.0.1:${port}/${siteOf(deps, site).database.name}`;
      const copies = await kube.deployCopies({
        source: { context: kubernetes.context, namespace: kubernetes.namespace },
        target: scratch,
        deployments,
        suffix: drillId,
        labels: { [DRILL_LABEL]: drillId },
        annotations: { 'mimir-recovery.io/scratch-database': database },
        env: { DATABASE_HOST: '127.0.0.1', DATABASE_PORT: String(port), DATABASE_NAME: siteOf(deps, site).database.name },
      });
      return { namespace: scratch.namespace, database, deployments: copies, durationMs: Date.now() - started };
    },

    /** Deletes everything labelled with the drill in the site's drill namespace and waits until its pods are gone. Idempotent. */
    async teardownScratchApp({ site, drillId }: { site: string; drillId: string }) {
      const { scratch, selector } = appOf(site, drillId);
      return kube.deleteLabelled({ target: scratch, selector, timeoutMs: 4 * 60_000 });
    },

    /** Stops the scratch server (immediate: it is a throwaway) and deletes its directory. Idempotent. */
    async teardownScratchCluster({ site, drillId }: { site: string; drillId: string }) {
      const s = scratchOf(site, drillId);
      let stopped = false;
      if (await serverRunning(s.data)) {
        await asServerOwner('pg_ctl', ['stop', '-D', s.data, '-m', 'immediate', '-w', '-t', '60']);
        stopped = true;
      }
      const existed = existsSync(s.dir);
      rmSync(s.dir, { recursive: true, force: true });
      return { scratchDir: s.dir, stopped, removed: existed };
    },
  };
}
