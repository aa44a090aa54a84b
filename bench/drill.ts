// Benchmark `drill`: a DR drill (drDrillWorkflow: plan, restore the latest base backup and replay the
// WAL archive into a scratch cluster, verify, tear down) against the same restore done by hand in
// the same run: `cp -a` of the base backup and `pg_ctl start -w` with the recovery settings on the
// command line (the server promotes at the end of the archive, then accepts connections). WAL to
// replay is generated first (a table written and dropped, then a WAL switch). No assertions.
//
//   npm run bench -- drill           (node --import tsx bench/drill.ts; MIMIR_BENCH_SANDBOX picks the instance)
//
// Figures: `ratio` = the workflow's `restore` step / the raw restore; `ratio_end_to_end` = start to
// result of the workflow / (raw restore + raw teardown); `rto_s` / `rpo_s` as the drill reports them.
// The last line printed is one JSON object. The base backup it takes is deleted at the end.
import { Client, Connection } from '@temporalio/client';
import { MockActivityEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, DefaultLogger, makeTelemetryFilterString, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { execa } from 'execa';
import { randomUUID } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { createActivities } from '../activities/index.js';
import { loadProfile } from '../config/profile.js';
import { REPO_ROOT, SANDBOX_PROFILE, sandboxEnv, sandboxInstance, sandboxUp } from '../sandbox/index.js';
import { asPostgres } from '../sandbox/postgres.js';
import type { drDrillWorkflow } from '../workflows/dr-drill.js';
import type { DrDrillResult, JournalEntry } from '../workflows/types.js';

const round = (n: number, digits = 2) => Math.round(n * 10 ** digits) / 10 ** digits;
const stepS = (r: DrDrillResult, step: string) => {
  const e = r.journal.find((x: JournalEntry) => x.step === step)!;
  return (Date.parse(e.endedAt!) - Date.parse(e.startedAt)) / 1000;
};

async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; s: number }> {
  const t0 = performance.now();
  const value = await fn();
  return { value, s: (performance.now() - t0) / 1000 };
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

async function main() {
  Runtime.install({
    logger: new DefaultLogger('ERROR'),
    telemetryOptions: { logging: { forward: {}, filter: makeTelemetryFilterString({ core: 'ERROR' }) } },
  });
  const inst = sandboxInstance(process.env.MIMIR_BENCH_SANDBOX ?? 'bench');
  const load0 = loadavg();
  await sandboxUp(inst, { log: (l) => console.log(`sandbox: ${l}`) });
  Object.assign(process.env, sandboxEnv(inst));
  const profile = loadProfile(SANDBOX_PROFILE);
  const acts = createActivities({ profile, env: process.env });
  const mock = new MockActivityEnvironment({}, { logger: new DefaultLogger('ERROR') });

  // 1. A base backup, then WAL after it (about 130 MB written and dropped), archived.
  const baseName = `bench-drill-${randomUUID().slice(0, 8)}`;
  const base = await timed(() => mock.run(acts.baseBackup, { site: 'primary', name: baseName }) as ReturnType<typeof acts.baseBackup>);
  const primary = new pg.Client({ connectionString: process.env.MIMIR_PRIMARY_DATABASE_URL, application_name: 'mimir-bench' });
  await primary.connect();
  const wal = await timed(async () => {
    const lsn0 = (await primary.query<{ l: string }>('SELECT pg_current_wal_lsn()::text AS l')).rows[0]!.l;
    await primary.query(`CREATE TABLE bench_drill_ballast AS SELECT g, repeat('x', 300) AS pad FROM generate_series(1, 400000) g`);
    await primary.query('DROP TABLE bench_drill_ballast');
    const { rows } = await primary.query<{ b: string; t: Date }>(
      `SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1::pg_lsn)::text AS b, (pg_last_committed_xact()).timestamp AS t`,
      [lsn0],
    );
    await primary.query('SELECT pg_switch_wal()');
    return { bytes: Number(rows[0]!.b), lastCommit: rows[0]!.t };
  });
  await primary.end();
  await new Promise((r) => setTimeout(r, 3000)); // let the archiver copy the last segment

  // 2. The raw restore: copy the base backup, start it with the recovery settings on the command line.
  const baseDir = join(process.env.MIMIR_PRIMARY_BACKUP_DIR!, 'base', baseName);
  const rawDir = `${process.env.MIMIR_PRIMARY_DATA_DIR!}.bench-raw-${randomUUID().slice(0, 8)}`;
  const port = await freePort();
  const raw = await timed(async () => {
    await execa('cp', ['-a', baseDir, rawDir]);
    if (process.getuid?.() === 0) await execa('chown', ['-R', 'postgres:postgres', rawDir]);
    writeFileSync(join(rawDir, 'recovery.signal'), '');
    const opts = [
      `-c port=${port}`,
      `-c listen_addresses=127.0.0.1`,
      `-c unix_socket_directories=${rawDir}`,
      `-c archive_mode=off`,
      `-c hot_standby=off`,
      `-c restore_command='cp ${process.env.MIMIR_WAL_ARCHIVE_DIR}/%f %p'`,
      `-c recovery_target_time=''`, // the end of the archive, whatever target an earlier recovery left in auto.conf
    ].join(' ');
    await asPostgres('pg_ctl', ['start', '-w', '-t', '3600', '-D', rawDir, '-l', `${rawDir}.log`, '-o', opts]);
  });
  // The raw restore must have replayed the WAL written above (its newest commit, the DROP), or its time means nothing.
  const rawReplayedAll = await (async () => {
    const c = new pg.Client({ connectionString: process.env.MIMIR_PRIMARY_DATABASE_URL, port, host: '127.0.0.1' });
    await c.connect();
    const { rows } = await c.query<{ ok: boolean }>('SELECT (pg_last_committed_xact()).timestamp >= $1 AS ok', [wal.value.lastCommit]);
    await c.end();
    return rows[0]!.ok;
  })();
  const rawTeardown = await timed(async () => {
    await asPostgres('pg_ctl', ['stop', '-D', rawDir, '-m', 'immediate', '-w']);
    rmSync(rawDir, { recursive: true, force: true });
    rmSync(`${rawDir}.log`, { force: true });
  });

  // 3. The drill workflow on an in-process worker, with the same base backup (the latest).
  const bundle = await bundleWorkflowCode({ workflowsPath: join(REPO_ROOT, 'workflows', 'index.ts'), logger: new DefaultLogger('ERROR') });
  const taskQueue = `bench-drill-${randomUUID()}`;
  const workerConnection = await NativeConnection.connect({ address: process.env.TEMPORAL_ADDRESS });
  const connection = await Connection.connect({ address: process.env.TEMPORAL_ADDRESS });
  const client = new Client({ connection });
  const worker = await Worker.create({ connection: workerConnection, taskQueue, workflowBundle: bundle, activities: acts });
  const drill = await worker.runUntil(() =>
    timed(async () => {
      const handle = await client.workflow.start<typeof drDrillWorkflow>('drDrillWorkflow', {
        taskQueue,
        workflowId: `dr-drill-primary-bench-${randomUUID().slice(0, 8)}`,
        args: [{ site: 'primary', requestedBy: 'bench' }],
      });
      return handle.result();
    }),
  );
  await workerConnection.close();
  await connection.close();
  rmSync(join(process.env.MIMIR_PRIMARY_BACKUP_DIR!, 'base', baseName), { recursive: true, force: true });
  rmSync(join(process.env.MIMIR_PRIMARY_BACKUP_DIR!, 'base', `${baseName}.json`), { force: true });

  const r = drill.value;
  const figures = {
    bench: 'drill',
    sandbox: inst.name,
    base_backup_s: round(base.s),
    base_mb: round(base.value.bytes / 1e6, 1),
    wal_replayed_mb: round(wal.value.bytes / 1e6, 1),
    raw_replayed_all: rawReplayedAll,
    raw_restore_s: round(raw.s),
    raw_teardown_s: round(rawTeardown.s),
    drill_restore_s: round(stepS(r, 'restore')),
    drill_verify_s: round(stepS(r, 'verify')),
    drill_teardown_s: round(stepS(r, 'teardown')),
    drill_end_to_end_s: round(drill.s),
    rto_s: r.rtoSeconds,
    rpo_s: r.rpoSeconds,
    outcome: r.outcome,
    ratio: round(stepS(r, 'restore') / raw.s),
    ratio_end_to_end: round(drill.s / (raw.s + rawTeardown.s)),
    cpus: cpus().length,
    load_before: round(load0[0]!),
    load_after: round(loadavg()[0]!),
  };
  console.log('');
  console.log('step                         raw (s)   drill workflow (s)');
  console.log(`restore (copy + replay)      ${String(figures.raw_restore_s).padEnd(9)} ${figures.drill_restore_s}`);
  console.log(`teardown                     ${String(figures.raw_teardown_s).padEnd(9)} ${figures.drill_teardown_s}`);
  console.log(`verify                       -         ${figures.drill_verify_s}`);
  console.log(`end to end                   ${String(round(raw.s + rawTeardown.s)).padEnd(9)} ${figures.drill_end_to_end_s}`);
  console.log(`base backup ${figures.base_mb} MB in ${figures.base_backup_s} s; WAL replayed ~${figures.wal_replayed_mb} MB`);
  console.log(`drill: ${r.outcome}, RTO ${r.rtoSeconds} s, RPO ${r.rpoSeconds} s. Figures are noisy on a shared 2-core machine.`);
  console.log(JSON.stringify(figures));
}

await main();
