// Benchmark `restore`: the database-recovery workflow's restore against a raw `pg_restore -j` of the
// same dump, measured in the same run on a database of at least 1 GiB in the `bench` sandbox, and
// against the runbook's plain-SQL path (`pg_dump > file.sql`, then `psql -f file.sql` into an
// emptied database). Also dump and restore throughput. No assertions on timings: it is a benchmark.
//
//   npm run bench -- restore        (node --import tsx bench/restore.ts)
//
// Figures: `ratio` = the workflow's restore step (journal start to end: activity scheduling,
// `pg_restore --list`, `pg_restore -j --verbose` with heartbeats) / raw `pg_restore -j` (mean of one
// run before and one after the workflow). `ratio_end_to_end` = (start to result minus the time the
// gates waited) / raw: it includes the safety backup (a full dump) and the verification (a checksum
// scan of every table), which the procedure does on purpose. The last line printed is one JSON
// object with the figures. The bench sandbox is left running.
import { Client, Connection } from '@temporalio/client';
import { MockActivityEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, DefaultLogger, makeTelemetryFilterString, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { execa } from 'execa';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { createActivities } from '../activities/index.js';
import { pgEnv } from '../activities/pg-tools.js';
import { loadProfile } from '../config/profile.js';
import { REPO_ROOT, SANDBOX_PROFILE, sandboxEnv, sandboxInstance, sandboxUp } from '../sandbox/index.js';
import { asPostgres, pgBin, pgPaths, psqlSuper } from '../sandbox/postgres.js';
import type { databaseRecoveryWorkflow } from '../workflows/database-recovery.js';
import { approveUpdate, statusQuery } from '../workflows/messages.js';
import type { DatabaseRecoveryInput, DatabaseRecoveryReport, JournalEntry, ProcedureStatus } from '../workflows/types.js';

const JOBS = 4;
/** "At least 1 GB": 1 GiB, as pg_database_size reports it. */
const TARGET_BYTES = 1024 ** 3;
const MB = 1e6;
/** Prefixes of everything this benchmark writes into the bench site's backup directory. */
const DUMP_PREFIX = 'bench-restore-';
const WORKFLOW_PREFIX = 'db-recovery-primary-mimir_news-bench-';
/** How long the workflow may take to reach each gate (a benchmark must not hang). */
const WORKFLOW_TIMEOUT_MS = 30 * 60_000;

const log = (line: string) => console.log(line);
const secondsSince = (t0: number) => (performance.now() - t0) / 1000;
const round = (n: number, digits = 2) => Math.round(n * 10 ** digits) / 10 ** digits;
const ms = (e: JournalEntry) => (e.endedAt ? Date.parse(e.endedAt) - Date.parse(e.startedAt) : NaN);

async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; s: number }> {
  const t0 = performance.now();
  const value = await fn();
  return { value, s: secondsSince(t0) };
}

async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url, application_name: 'mimir-bench' });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

const databaseSize = (c: pg.Client) =>
  c.query<{ n: string }>('SELECT pg_database_size(current_database()) AS n').then((r) => Number(r.rows[0]!.n));

function diskBytes(path: string): number {
  if (!existsSync(path)) return 0;
  const s = statSync(path);
  return s.isDirectory() ? readdirSync(path).reduce((t, f) => t + diskBytes(join(path, f)), 0) : s.size;
}

/**
 * Grows `mimir_news` to TARGET_BYTES once (a later run finds it large enough and skips): batches of
 * generated articles (~0.5 kB each with indexes) and activity_log rows, then VACUUM ANALYZE so the
 * first dump does not pay for hint bits.
 */
async function growDatabase(url: string): Promise<{ bytes: number; grewS: number }> {
  return withClient(url, async (c) => {
    const t0 = performance.now();
    let bytes = await databaseSize(c);
    if (bytes >= TARGET_BYTES) return { bytes, grewS: 0 };
    log(`growing mimir_news from ${(bytes / MB).toFixed(0)} MB to >= ${(TARGET_BYTES / MB).toFixed(0)} MB ...`);
    const ARTICLES = 500_000;
    const ACTIVITY = 1_000_000;
    while (bytes < TARGET_BYTES) {
      // URLs continue from the id sequence under their own prefix, so they stay unique run after run.
      const from = Number((await c.query<{ v: string }>('SELECT last_value AS v FROM articles_id_seq')).rows[0]!.v) + 1;
      await c.query(
        `INSERT INTO articles (title, url, source, content, published_at)
         SELECT 'Article ' || i || ': ' || md5(i::text),
                'https://news.example.com/archive/' || i,
                (ARRAY['reuters', 'ap', 'bbc', 'guardian', 'nyt'])[1 + i % 5],
                repeat(md5(i::text) || ' ', 8),
                now() - (i % 525600) * interval '1 minute'
           FROM generate_series($1::bigint, $1::bigint + $2 - 1) AS i`,
        [from, ARTICLES],
      );
      await c.query(
        `WITH u AS (SELECT array_agg(id ORDER BY id) AS ids FROM users)
         INSERT INTO activity_log (user_id, action, status, ip_address, created_at)
         SELECT u.ids[1 + i % array_length(u.ids, 1)],
                (ARRAY['login', 'login', 'view', 'search', 'logout'])[1 + i % 5],
                CASE WHEN i % 7 = 0 THEN 'failed' ELSE 'ok' END,
                ('10.' || (i % 200) || '.' || (i % 250) || '.' || (1 + i % 253))::inet,
                now() - (i % 43200) * interval '1 minute'
           FROM u, generate_series(1, $1::bigint) AS i`,
        [ACTIVITY],
      );
      bytes = await databaseSize(c);
      log(`  ... ${(bytes / MB).toFixed(0)} MB after ${secondsSince(t0).toFixed(0)} s`);
    }
    await c.query('VACUUM (ANALYZE) articles, activity_log');
    return { bytes: await databaseSize(c), grewS: secondsSince(t0) };
  });
}

/** Removes what this benchmark (or a killed run of it) left in the backup directory. */
function removeBenchBackups(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const ours = readdirSync(dir).filter((f) => f.startsWith(DUMP_PREFIX) || f.startsWith(`safety-${WORKFLOW_PREFIX}`));
  for (const f of ours) rmSync(join(dir, f), { recursive: true, force: true });
  return ours;
}

type GateTimes = Record<string, { seenOpenMs: number; approvedMs: number }>;

/**
 * Runs `databaseRecoveryWorkflow` on an in-process worker with the real activities, approving the
 * `restore` and `resume-traffic` gates as soon as each opens (when, into `gateSeen`).
 */
async function runRecoveryWorkflow(
  bundle: Awaited<ReturnType<typeof bundleWorkflowCode>>,
  input: DatabaseRecoveryInput,
  workflowId: string,
  gateSeen: GateTimes,
  beforeStart: () => Promise<unknown>,
): Promise<{ result: DatabaseRecoveryReport; s: number; workflowId: string }> {
  const taskQueue = `bench-restore-${randomUUID()}`;
  const workerConnection = await NativeConnection.connect({ address: process.env.TEMPORAL_ADDRESS });
  const clientConnection = await Connection.connect({ address: process.env.TEMPORAL_ADDRESS });
  const client = new Client({ connection: clientConnection });
  let wf: { result: DatabaseRecoveryReport; s: number; workflowId: string };
  try {
    const worker = await Worker.create({
      connection: workerConnection,
      taskQueue,
      workflowBundle: bundle,
      activities: createActivities({ profile: loadProfile(SANDBOX_PROFILE), env: process.env }),
    });
    await beforeStart();
    wf = await worker.runUntil(async () => {
      const t0 = performance.now();
      const handle = await client.workflow.start<typeof databaseRecoveryWorkflow>('databaseRecoveryWorkflow', {
        taskQueue,
        workflowId,
        args: [input],
      });
      const deadline = Date.now() + WORKFLOW_TIMEOUT_MS;
      const approveWhenOpen = async (gate: string, by: string) => {
        for (;;) {
          const s: ProcedureStatus | undefined = await handle.query(statusQuery).catch(() => undefined);
          if (s?.openGate?.name === gate) break;
          if (s?.openGate) throw new Error(`gate '${s.openGate.name}' opened instead of '${gate}': ${s.openGate.title}`);
          if (s && (s.phase === 'failed' || s.phase === 'rejected' || s.phase === 'completed'))
            throw new Error(`the workflow ended in phase ${s.phase} before gate '${gate}' opened`);
          if (Date.now() > deadline) throw new Error(`gate '${gate}' did not open within ${WORKFLOW_TIMEOUT_MS / 60_000} minutes`);
          await new Promise((r) => setTimeout(r, 100));
        }
        const seenOpenMs = performance.now();
        await handle.executeUpdate(approveUpdate, { args: [{ gate, by, comment: 'bench: approved as soon as open' }] });
        gateSeen[gate] = { seenOpenMs: seenOpenMs - t0, approvedMs: performance.now() - t0 };
      };
      let result: DatabaseRecoveryReport;
      try {
        await approveWhenOpen('restore', 'bob');
        await approveWhenOpen('resume-traffic', 'carol');
        result = await handle.result();
      } catch (err) {
        // The in-process worker is about to stop: leave no procedure waiting forever in the bench server.
        await handle.terminate('bench/restore failed').catch(() => undefined);
        console.error(`workflow ${workflowId} terminated after a failure; the bench primary may be half restored or fenced`);
        throw err;
      }
      return { result, s: secondsSince(t0), workflowId };
    });
  } finally {
    await workerConnection.close();
    await clientConnection.close();
  }
  if (wf.result.outcome !== 'completed') throw new Error(`the workflow ended '${wf.result.outcome}': ${wf.result.error ?? ''}`);
  return wf;
}

function table(header: string[], rows: (string | number)[][]): string {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(cells[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line)].join('\n');
}

async function main() {
  Runtime.install({
    logger: new DefaultLogger('ERROR'),
    telemetryOptions: { logging: { forward: {}, filter: makeTelemetryFilterString({ core: 'ERROR' }) } },
  });
  const inst = sandboxInstance(process.env.MIMIR_BENCH_SANDBOX ?? 'bench');
  const runStarted = performance.now();
  const load0 = loadavg();
  await sandboxUp(inst, { log: (l) => log(`sandbox: ${l}`) });
  Object.assign(process.env, sandboxEnv(inst));
  const url = process.env.MIMIR_PRIMARY_DATABASE_URL!;
  const backupDir = process.env.MIMIR_PRIMARY_BACKUP_DIR!;
  const database = new URL(url).pathname.slice(1);
  mkdirSync(backupDir, { recursive: true });
  const archive = pgPaths(inst).archive;
  const walAtStart = diskBytes(archive);
  const leftovers = removeBenchBackups(backupDir);
  if (leftovers.length > 0) log(`removed ${leftovers.length} leftover bench backup entries from ${backupDir}`);

  // 1. A database of at least 1 GiB.
  const grown = await growDatabase(url);
  const dbBytes = grown.bytes;
  log(
    `mimir_news: ${(dbBytes / MB).toFixed(0)} MB (${(dbBytes / 1024 ** 3).toFixed(2)} GiB)${grown.grewS ? `, grown in ${grown.grewS.toFixed(0)} s` : ', already large enough'}`,
  );
  const counts = await withClient(url, async (c) => {
    const r = await c.query<{ t: string; n: string }>(
      `SELECT 'articles' AS t, count(*) AS n FROM articles UNION ALL SELECT 'activity_log', count(*) FROM activity_log`,
    );
    return Object.fromEntries(r.rows.map((x) => [x.t, Number(x.n)]));
  });
  const checkpoint = () => psqlSuper(inst, 'primary', 'CHECKPOINT');
  const env = { ...process.env, ...pgEnv(url), PGAPPNAME: 'mimir-bench' };

  // 2. The dump, with the project's own activity (stats + pg_dump -Fd -j in one snapshot, SHA-256 of every file).
  const stamp = new Date()
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  const dumpName = `${DUMP_PREFIX}${stamp}`;
  const acts = createActivities({ profile: loadProfile(SANDBOX_PROFILE), env: process.env });
  const mock = new MockActivityEnvironment({}, { logger: new DefaultLogger('ERROR') });
  await checkpoint();
  const dump = await timed(
    async () =>
      (await mock.run(acts.dumpDatabase, { site: 'primary', name: dumpName, jobs: JOBS })) as Awaited<ReturnType<typeof acts.dumpDatabase>>,
  );
  const dumpBytes = dump.value.bytes;
  const dumpDir = join(backupDir, dumpName);
  log(`dump '${dumpName}': ${(dumpBytes / MB).toFixed(0)} MB in ${dump.s.toFixed(1)} s (dumpDatabase activity)`);

  // The same pg_dump alone (no stats, no checksums), to show what the activity adds.
  const rawDumpDir = join(backupDir, `${dumpName}-raw-pg_dump`);
  const rawDump = await timed(() => execa(pgBinPath.pg_dump, ['-Fd', '-j', String(JOBS), '-f', rawDumpDir], { env, stdin: 'ignore' }));
  rmSync(rawDumpDir, { recursive: true, force: true });
  log(`raw pg_dump -Fd -j ${JOBS}: ${rawDump.s.toFixed(1)} s`);

  // 3. Baseline: raw pg_restore of the same dump, measured before and after the workflow (their mean is the baseline).
  const rawRestore = async () => {
    await checkpoint();
    const r = await timed(() =>
      execa(pgBinPath.pg_restore, ['-Fd', '-j', String(JOBS), '--clean', '--if-exists', '--no-owner', '-d', database, dumpDir], {
        env,
        stdin: 'ignore',
      }),
    );
    log(`raw pg_restore -Fd -j ${JOBS}: ${r.s.toFixed(1)} s`);
    return r.s;
  };
  const raw1 = await rawRestore();

  // 4. The workflow, on an in-process worker with the real activities, both gates approved at once.
  const bundle = await bundleWorkflowCode({
    workflowsPath: join(REPO_ROOT, 'workflows', 'index.ts'),
    logger: { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error: console.error },
  });
  const gateSeen: GateTimes = {};
  const wf = await runRecoveryWorkflow(
    bundle,
    { site: 'primary', requestedBy: 'bench', source: { backup: dumpName }, jobs: JOBS },
    `${WORKFLOW_PREFIX}${stamp}`,
    gateSeen,
    checkpoint,
  );
  const journal = wf.result.journal;
  const entry = (step: string) => {
    const e = journal.find((x) => x.step === step);
    if (!e) throw new Error(`no journal entry '${step}' in ${journal.map((x) => x.step).join(', ')}`);
    return e;
  };
  const gateWaitS = journal.filter((e) => e.step.startsWith('gate:')).reduce((t, e) => t + ms(e) / 1000, 0);
  const restoreStepS = ms(entry('restore')) / 1000;
  const activityRestoreS = wf.result.restored!.durationMs / 1000;
  const safetyStepS = ms(entry('safety-backup')) / 1000;
  const endToEndS = wf.s - gateWaitS;
  log(`workflow ${wf.workflowId}: ${wf.s.toFixed(1)} s start to result, ${gateWaitS.toFixed(1)} s of it at gates`);

  const raw2 = await rawRestore();
  const rawS = (raw1 + raw2) / 2;

  // 5. The runbook's plain-SQL path: pg_dump > file.sql, empty the database, psql -f file.sql.
  const sqlFile = join(backupDir, `${dumpName}.sql`);
  const plainDump = await timed(() => execa(pgBinPath.pg_dump, ['-f', sqlFile], { env, stdin: 'ignore' }));
  const sqlBytes = statSync(sqlFile).size;
  log(`plain pg_dump: ${(sqlBytes / MB).toFixed(0)} MB in ${plainDump.s.toFixed(1)} s`);
  await checkpoint();
  const plainRestore = await timed(async () => {
    // As the app user, who owns the database and so (PG 15: pg_database_owner) schema public; recreated as initdb makes it.
    await withClient(url, (c) =>
      c.query(`DROP SCHEMA public CASCADE;
               CREATE SCHEMA public AUTHORIZATION pg_database_owner;
               GRANT USAGE ON SCHEMA public TO PUBLIC;
               COMMENT ON SCHEMA public IS 'standard public schema';`),
    );
    await execa(pgBinPath.psql, ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-f', sqlFile], { env, stdin: 'ignore' });
  });
  log(`plain psql -f (after emptying schema public): ${plainRestore.s.toFixed(1)} s`);
  const dbBytesAfter = await withClient(url, databaseSize);

  // 6. Point-in-time recovery: a base backup, WAL generated by writes, a target after them, more
  // writes after the target, then the workflow replays the base backup and the WAL to the target.
  // (The bench primary's DR standby loses its replication slot with it: expected, not repaired here.)
  const baseName = `${DUMP_PREFIX}base-${stamp}`;
  const baseDir = join(backupDir, 'base');
  let pitr: {
    base: { bytes: number; s: number };
    wf: { result: DatabaseRecoveryReport; s: number; workflowId: string };
    writesS: number;
    targetTime: string;
    activityMaxAtTarget: number;
    activityMaxAfter: number;
    activityMaxRestored: number;
    redoS: number | undefined;
    asideMb: number;
  };
  try {
    await checkpoint();
    const base = await timed(
      async () => (await mock.run(acts.baseBackup, { site: 'primary', name: baseName })) as Awaited<ReturnType<typeof acts.baseBackup>>,
    );
    log(`base backup '${baseName}': ${(base.value.bytes / MB).toFixed(0)} MB in ${base.s.toFixed(1)} s (baseBackup activity)`);
    const writes = await timed(() =>
      withClient(url, async (c) => {
        await c.query(`UPDATE articles SET content = content || ' ' WHERE id % 10 = 0`);
        await c.query(`UPDATE articles SET content = content || ' ' WHERE id % 10 = 5`);
        await c.query(`INSERT INTO activity_log (action, status) SELECT 'bench-pitr', 'ok' FROM generate_series(1, 200000)`);
        return Number((await c.query<{ m: string }>('SELECT max(id) AS m FROM activity_log')).rows[0]!.m);
      }),
    );
    await new Promise((r) => setTimeout(r, 1000));
    const targetTime = new Date().toISOString();
    await new Promise((r) => setTimeout(r, 1000));
    const activityMaxAfter = await withClient(url, async (c) => {
      await c.query(`UPDATE articles SET content = content || ' ' WHERE id % 100 = 1`);
      await c.query(`INSERT INTO activity_log (action, status) SELECT 'bench-pitr-after', 'ok' FROM generate_series(1, 10000)`);
      return Number((await c.query<{ m: string }>('SELECT max(id) AS m FROM activity_log')).rows[0]!.m);
    });
    log(
      `writes before the target ${targetTime}: ${writes.s.toFixed(1)} s; activity_log max id ${writes.value} at the target, ${activityMaxAfter} after`,
    );
    const serverLog = pgPaths(inst).primary.log;
    const logFrom = existsSync(serverLog) ? statSync(serverLog).size : 0;
    const wfPitr = await runRecoveryWorkflow(
      bundle,
      { site: 'primary', requestedBy: 'bench', source: { targetTime } },
      `${WORKFLOW_PREFIX}pitr-${stamp}`,
      {},
      async () => undefined,
    );
    // The replay alone, from the server's own "redo done at ... elapsed: N s" (PostgreSQL 15).
    const logText = existsSync(serverLog) ? readFileSync(serverLog).subarray(logFrom).toString('utf8') : '';
    const redo = [...logText.matchAll(/redo done at .*elapsed: ([\d.]+) s/g)].at(-1);
    const activityMaxRestored = await withClient(url, async (c) =>
      Number((await c.query<{ m: string }>('SELECT max(id) AS m FROM activity_log')).rows[0]!.m),
    );
    // The data directory the recovery replaced, moved aside by the activity (kept by design); a bench copy, removed.
    const aside = `${pgPaths(inst).primary.data}.pre-pitr-${wfPitr.workflowId}`;
    const asideMb = diskBytes(aside) / MB;
    rmSync(aside, { recursive: true, force: true });
    pitr = {
      base: { bytes: base.value.bytes, s: base.s },
      wf: wfPitr,
      writesS: writes.s,
      targetTime,
      activityMaxAtTarget: writes.value,
      activityMaxAfter,
      activityMaxRestored,
      redoS: redo ? Number(redo[1]) : undefined,
      asideMb,
    };
  } finally {
    rmSync(join(baseDir, baseName), { recursive: true, force: true });
    rmSync(join(baseDir, `${baseName}.json`), { force: true });
  }

  // 7. Clean up this run's backups (dumps, safety backup, plain SQL file). The WAL archive the
  // restores filled (several GB a run) is kept unless MIMIR_BENCH_PRUNE_WAL is set: pruning it breaks
  // point-in-time recovery to earlier times in the bench instance. The sandbox stays up.
  removeBenchBackups(backupDir);
  const walAtEnd = diskBytes(archive);
  let walPruned: number | undefined;
  if (process.env.MIMIR_BENCH_PRUNE_WAL) {
    const redo = await psqlSuper(inst, 'primary', 'CHECKPOINT; SELECT pg_walfile_name(redo_lsn) FROM pg_control_checkpoint();');
    await asPostgres('pg_archivecleanup', [archive, redo]);
    walPruned = diskBytes(archive);
  }

  // 8. Report.
  const dbMb = dbBytes / MB;
  const ratio = restoreStepS / rawS;
  const ratioEndToEnd = endToEndS / rawS;
  const overheadS = endToEndS - rawS;
  const verifyS = ms(entry('verify')) / 1000;
  /** What the procedure adds besides the two full passes over the data it makes on purpose (safety dump, verify). */
  const fixedOverheadS = endToEndS - safetyStepS - verifyS - rawS;
  const pj = pitr.wf.result;
  const pitrPlan = pj.plan.pointInTime!;
  const pitrRestoreE = pj.journal.find((x) => x.step === 'restore');
  if (!pitrRestoreE) throw new Error(`no journal entry 'restore' in the point-in-time run`);
  const pitrRestoreS = ms(pitrRestoreE) / 1000;
  const pitrGateWaitS = pj.journal.filter((e) => e.step.startsWith('gate:')).reduce((t, e) => t + ms(e) / 1000, 0);
  const pitrEndToEndS = pitr.wf.s - pitrGateWaitS;
  const pitrWalMb = pitrPlan.walBytes / MB;
  const pitrBaseMb = pitr.base.bytes / MB;
  /** Copy of the base backup, server start, and promotion: the restore step minus the server-reported replay. */
  const pitrCopyS = pitr.redoS === undefined ? undefined : pitrRestoreS - pitr.redoS;
  const step = (name: string) => {
    const e = journal.find((x) => x.step === name);
    return e ? (ms(e) / 1000).toFixed(1) : '-';
  };
  console.log('');
  console.log(
    `restore benchmark: mimir_news ${dbMb.toFixed(0)} MB (articles ${counts.articles}, activity_log ${counts.activity_log}), ` +
      `dump ${(dumpBytes / MB).toFixed(0)} MB (-Fd, gzip), -j ${JOBS}, ${cpus().length} CPUs, ` +
      `load average ${load0.map((l) => l.toFixed(1)).join('/')} at start, ${loadavg()
        .map((l) => l.toFixed(1))
        .join('/')} at end`,
  );
  console.log('');
  console.log(
    table(
      ['measurement', 'seconds', 'DB MB/s', 'dump MB/s', 'vs raw pg_restore'],
      [
        [
          'dump: dumpDatabase activity (stats, pg_dump -Fd -j, sha256)',
          dump.s.toFixed(1),
          (dbMb / dump.s).toFixed(1),
          (dumpBytes / MB / dump.s).toFixed(1),
          '',
        ],
        ['dump: raw pg_dump -Fd -j', rawDump.s.toFixed(1), (dbMb / rawDump.s).toFixed(1), '', ''],
        [
          'restore: raw pg_restore -Fd -j (before workflow)',
          raw1.toFixed(1),
          (dbMb / raw1).toFixed(1),
          (dumpBytes / MB / raw1).toFixed(1),
          '',
        ],
        [
          'restore: raw pg_restore -Fd -j (after workflow)',
          raw2.toFixed(1),
          (dbMb / raw2).toFixed(1),
          (dumpBytes / MB / raw2).toFixed(1),
          '',
        ],
        [
          'restore: raw pg_restore baseline (mean of the two)',
          rawS.toFixed(1),
          (dbMb / rawS).toFixed(1),
          (dumpBytes / MB / rawS).toFixed(1),
          '1.00',
        ],
        [
          'workflow: restore step (journal, incl. pg_restore --list)',
          restoreStepS.toFixed(1),
          (dbMb / restoreStepS).toFixed(1),
          (dumpBytes / MB / restoreStepS).toFixed(1),
          ratio.toFixed(2),
        ],
        [
          'workflow: pg_restore inside restoreDump (result.restored)',
          activityRestoreS.toFixed(1),
          '',
          '',
          (activityRestoreS / rawS).toFixed(2),
        ],
        ['workflow: end to end minus gate waits', endToEndS.toFixed(1), '', '', ratioEndToEnd.toFixed(2)],
        [
          'plain SQL: psql -f file.sql into emptied schema',
          plainRestore.s.toFixed(1),
          (dbMb / plainRestore.s).toFixed(1),
          '',
          (plainRestore.s / rawS).toFixed(2),
        ],
        [
          'plain SQL: pg_dump > file.sql (' + (sqlBytes / MB).toFixed(0) + ' MB)',
          plainDump.s.toFixed(1),
          (dbMb / plainDump.s).toFixed(1),
          '',
          '',
        ],
        [
          'PITR: baseBackup activity (pg_basebackup, ' + pitrBaseMb.toFixed(0) + ' MB)',
          pitr.base.s.toFixed(1),
          (pitrBaseMb / pitr.base.s).toFixed(1),
          '',
          '',
        ],
        [
          'PITR: restore step (base copy + WAL replay ' + pitrWalMb.toFixed(0) + ' MB)',
          pitrRestoreS.toFixed(1),
          '',
          '',
          (pitrRestoreS / rawS).toFixed(2),
        ],
        ...(pitr.redoS === undefined || pitrCopyS === undefined
          ? []
          : [
              ['PITR:   of which WAL replay (server log, redo elapsed)', pitr.redoS.toFixed(1), '', '', ''],
              ['PITR:   of which base copy, start, promote (rest)', pitrCopyS.toFixed(1), '', '', ''],
            ]),
        ['PITR: workflow end to end minus gate waits', pitrEndToEndS.toFixed(1), '', '', (pitrEndToEndS / rawS).toFixed(2)],
      ],
    ),
  );
  console.log('');
  console.log('where the workflow time goes (journal, seconds):');
  console.log(
    table(
      ['step', 'seconds'],
      journal.map((e) => [e.step, step(e.step)]),
    ),
  );
  const gates = Object.entries(gateSeen)
    .map(([g, t]) => `${g}: seen open at +${(t.seenOpenMs / 1000).toFixed(1)} s, approved at +${(t.approvedMs / 1000).toFixed(1)} s`)
    .join('; ');
  console.log(`gates (client clock from start): ${gates}; journal gate waits total ${gateWaitS.toFixed(1)} s`);
  console.log(
    `end to end minus gate waits = preflight (manifest sha256 + pg_restore --list) + fence + end-sessions + safety backup ` +
      `(${safetyStepS.toFixed(1)} s, a full dumpDatabase) + restore + verify (row counts and checksums of every table) + unfence + health + scheduling`,
  );
  console.log(
    `overhead of end to end over raw: ${overheadS.toFixed(1)} s = safety backup ${safetyStepS.toFixed(1)} s + verify ${verifyS.toFixed(1)} s ` +
      `+ ${fixedOverheadS.toFixed(1)} s for everything else (preflight, fence, unfence, scheduling, restore step vs raw)`,
  );
  console.log(
    `database after the plain-SQL restore: ${(dbBytesAfter / MB).toFixed(0)} MB; WAL archive of the bench primary: ` +
      `${(walAtStart / MB).toFixed(0)} MB before this run, ${(walAtEnd / MB).toFixed(0)} MB after it` +
      (walPruned === undefined
        ? ` (kept; MIMIR_BENCH_PRUNE_WAL=1 prunes it to the last checkpoint, losing PITR to earlier times)`
        : `, pruned to ${(walPruned / MB).toFixed(0)} MB (MIMIR_BENCH_PRUNE_WAL)`),
  );
  console.log(
    `point-in-time recovery to ${pitrPlan.targetTime}: base backup ${pitrBaseMb.toFixed(0)} MB in ${pitr.base.s.toFixed(1)} s ` +
      `(${(pitrBaseMb / pitr.base.s).toFixed(1)} MB/s); writes before the target ${pitr.writesS.toFixed(1)} s; WAL replayed ` +
      `${pitrWalMb.toFixed(0)} MB in ${pitrPlan.walFiles} segments (${pitrPlan.walFrom}..${pitrPlan.walTo}, the plan's span from the base ` +
      `backup's start to the newest archived segment, so it includes WAL after the target); restore step ${pitrRestoreS.toFixed(1)} s = ` +
      `${(pitrWalMb / pitrRestoreS).toFixed(1)} MB/s of WAL including the base copy` +
      (pitr.redoS === undefined || pitrCopyS === undefined
        ? ` (no 'redo done' line in the server log to separate them)`
        : `; replay alone ${pitr.redoS.toFixed(1)} s = ${(pitrWalMb / pitr.redoS).toFixed(1)} MB/s, base copy + start + promote ${pitrCopyS.toFixed(1)} s`) +
      `; last recovered commit ${pj.restored?.lastCommitAt ?? '?'}, RPO ${pj.rpoSeconds ?? '?'} s (1 s idle before the target on purpose); ` +
      `activity_log max id ${pitr.activityMaxRestored} after the recovery (${pitr.activityMaxAtTarget} at the target, ${pitr.activityMaxAfter} after it: ` +
      `${pitr.activityMaxRestored === pitr.activityMaxAtTarget ? 'as expected' : 'UNEXPECTED'}); the replaced data directory (${pitr.asideMb.toFixed(0)} MB) and the base backup were deleted`,
  );
  console.log(`whole run: ${secondsSince(runStarted).toFixed(0)} s. Figures are noisy on a shared 2-core machine.`);
  console.log(`the bench sandbox is left running; stop it with: MIMIR_SANDBOX=bench npx mimir-recovery sandbox down`);
  console.log(
    JSON.stringify({
      bench: 'restore',
      ratio: round(ratio, 3),
      ratio_end_to_end: round(ratioEndToEnd, 3),
      overhead_s: round(overheadS, 1),
      raw_restore_s: round(rawS, 1),
      raw_restore_runs_s: [round(raw1, 1), round(raw2, 1)],
      workflow_restore_s: round(restoreStepS, 1),
      workflow_pg_restore_s: round(activityRestoreS, 1),
      workflow_end_to_end_s: round(endToEndS, 1),
      gate_wait_s: round(gateWaitS, 1),
      safety_backup_s: round(safetyStepS, 1),
      verify_s: round(verifyS, 1),
      overhead_excl_safety_verify_s: round(fixedOverheadS, 1),
      plain_sql_restore_s: round(plainRestore.s, 1),
      plain_sql_ratio: round(plainRestore.s / rawS, 3),
      plain_sql_dump_s: round(plainDump.s, 1),
      db_mb: round(dbMb, 0),
      dump_mb: round(dumpBytes / MB, 0),
      dump_s: round(dump.s, 1),
      raw_dump_s: round(rawDump.s, 1),
      dump_mb_per_s: round(dbMb / dump.s, 1),
      restore_mb_per_s: round(dbMb / rawS, 1),
      workflow_restore_mb_per_s: round(dbMb / restoreStepS, 1),
      wal_archived_mb: round((walAtEnd - walAtStart) / MB, 0),
      pitr_base_backup_s: round(pitr.base.s, 1),
      pitr_base_mb: round(pitrBaseMb, 0),
      pitr_base_mb_per_s: round(pitrBaseMb / pitr.base.s, 1),
      pitr_wal_mb: round(pitrWalMb, 0),
      pitr_wal_files: pitrPlan.walFiles,
      pitr_restore_s: round(pitrRestoreS, 1),
      pitr_replay_mb_per_s: round(pitrWalMb / pitrRestoreS, 1),
      pitr_redo_s: pitr.redoS === undefined ? null : round(pitr.redoS, 1),
      pitr_redo_mb_per_s: pitr.redoS === undefined ? null : round(pitrWalMb / pitr.redoS, 1),
      pitr_copy_start_promote_s: pitrCopyS === undefined ? null : round(pitrCopyS, 1),
      pitr_end_to_end_s: round(pitrEndToEndS, 1),
      pitr_rpo_s: pj.rpoSeconds ?? null,
      jobs: JOBS,
      cpus: cpus().length,
    }),
  );
}

const pgBinPath = {
  pg_dump: await pgBin('pg_dump'),
  pg_restore: await pgBin('pg_restore'),
  psql: await pgBin('psql'),
};

try {
  await main();
} catch (err) {
  console.error(err);
  process.exitCode = 1;
}
// A lingering handle must not keep a finished benchmark alive.
setTimeout(() => {
  console.error('bench/restore: something kept the process alive after the benchmark; exiting');
  process.exit(process.exitCode ?? 0);
}, 10_000).unref();
