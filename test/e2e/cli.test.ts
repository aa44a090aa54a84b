// The CLI and the worker as a person runs them: separate processes, the production workflow
// bundle, the real dev server and database. Start, refuse a wrong approver, approve, read status.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildWorkflowBundle } from '../../worker/bundle.js';
import { cli, startWorkerProcess, type WorkerProcess } from '../helpers/cli.js';
import { backendPid, closeAll, openSessions, present } from '../helpers/postgres.js';
import { testInstance } from '../helpers/global.js';
import { uniqueId } from '../helpers/temporal.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('CLI and worker processes', () => {
  const taskQueue = uniqueId('cli');
  const env = { MIMIR_TASK_QUEUE: taskQueue };
  let worker: WorkerProcess;

  before(async () => {
    const bundle = await buildWorkflowBundle({ out: join(mkdtempSync(join(tmpdir(), 'mimir-bundle-')), 'workflow-bundle.js') });
    worker = await startWorkerProcess({ ...env, MIMIR_WORKFLOW_BUNDLE: bundle, MIMIR_LOG_LEVEL: 'INFO' });
  });

  after(async () => {
    if (worker.child.exitCode === null) worker.child.kill('SIGKILL');
  });

  it('every command has --help', async () => {
    for (const cmd of [[], ['start'], ['approve'], ['reject'], ['status'], ['list'], ['sandbox'], ['sandbox', 'env']]) {
      const r = await cli([...cmd, '--help']);
      assert.equal(r.code, 0, `${cmd.join(' ')} --help: ${r.stderr}`);
      assert.match(r.stdout, /^Usage: mimir-recovery/);
    }
  });

  it('bad input gets a clear error and a non-zero exit, and starts nothing', async () => {
    const unknown = await cli(['start', 'make-coffee', '--site', 'primary'], env);
    assert.equal(unknown.code, 2);
    assert.match(
      unknown.stderr,
      /unknown procedure 'make-coffee' \(known: connection-cleanup, database-recovery, [^)]*breach-containment, [^)]*dr-drill, dr-failover, dr-failback\)/,
    );
    const badDuration = await cli(['start', 'connection-cleanup', '--site', 'primary', '--idle-for', 'soon'], env);
    assert.equal(badDuration.code, 2);
    assert.match(badDuration.stderr, /idleFor: must be a positive duration such as '90s', '15m' or '1h'/);
    const noSite = await cli(['start', 'connection-cleanup'], env);
    assert.equal(noSite.code, 2);
    assert.match(noSite.stderr, /required option '--site <site>' not specified/);
    const badNumber = await cli(['start', 'connection-cleanup', '--site', 'primary', '--max-sessions', '-3'], env);
    assert.equal(badNumber.code, 2);
    assert.match(badNumber.stderr, /--max-sessions must be a positive integer/);
    const listed = await cli(['list', '--all', '--json'], env);
    assert.equal(listed.code, 0, listed.stderr);
    assert.ok(!(JSON.parse(listed.stdout) as { workflowId: string }[]).some((w) => w.workflowId.includes('make-coffee')));
  });

  it('start, refuse a wrong approver, approve as a second person, and read the journal', async () => {
    const sessions = await openSessions(2, uniqueId('cli-leak'));
    const pids = await Promise.all(sessions.map(backendPid));
    try {
      await sleep(2500);
      const incident = uniqueId('INC');
      const started = await cli(
        ['start', 'connection-cleanup', '--site', 'primary', '--as', 'alice', '--idle-for', '2s', '--incident', incident, '--json'],
        env,
      );
      assert.equal(started.code, 0, started.stderr);
      const { workflowId } = JSON.parse(started.stdout) as { workflowId: string };
      assert.equal(workflowId, `connection-cleanup-primary-${incident}`);

      let text = '';
      for (let i = 0; i < 100 && !text.includes("Waiting for approval at gate 'terminate'"); i++) {
        await sleep(300);
        text = (await cli(['status', workflowId], env)).stdout;
      }
      assert.match(text, /Waiting for approval at gate 'terminate'/);
      assert.match(text, /approvers: alice, bob, carol/);

      const wrong = await cli(['approve', workflowId, '--as', 'mallory'], env);
      assert.equal(wrong.code, 2);
      assert.match(wrong.stderr, /refused: approve: 'mallory' is not an approver of gate 'terminate'/);
      const self = await cli(['approve', workflowId, '--as', 'alice'], env);
      assert.equal(self.code, 2);
      assert.match(self.stderr, /'alice' requested this procedure and may not approve it/);
      assert.equal((await present(pids)).length, 2, 'refused approvals change nothing');

      const ok = await cli(['approve', workflowId, '--gate', 'terminate', '--as', 'bob', '--comment', 'pool leak'], env);
      assert.equal(ok.code, 0, ok.stderr);
      assert.match(ok.stdout, /approved gate 'terminate' of .* as bob/);

      let json:
        | { execution: string; result?: { outcome: string; terminated: number[] }; status: { journal: { step: string; actor: string }[] } }
        | undefined;
      for (let i = 0; i < 100 && json?.execution !== 'COMPLETED'; i++) {
        await sleep(300);
        json = JSON.parse((await cli(['status', workflowId, '--json'], env)).stdout);
      }
      assert.equal(json!.execution, 'COMPLETED');
      assert.equal(json!.result!.outcome, 'completed');
      assert.deepEqual([...json!.result!.terminated].sort(), [...pids].sort());
      assert.deepEqual(await present(pids), []);
      assert.deepEqual(
        json!.status.journal.map((e) => e.step),
        ['resolve-site', 'check-database', 'count-connections', 'find-idle-sessions', 'gate:terminate', 'terminate-sessions', 'verify'],
      );
      const rendered = (await cli(['status', workflowId], env)).stdout;
      assert.match(rendered, /approved\s+Approve terminating 2 idle session\(s\) on mimir_news.*\[bob\]/);
      assert.match(rendered, /succeeded\s+Verify the terminated sessions are gone/);

      const listed = await cli(['list', '--all', '--incident', incident], env);
      assert.match(listed.stdout, new RegExp(`${workflowId}\\s+connection-cleanup\\s+primary\\s+COMPLETED\\s+completed`));
    } finally {
      await closeAll(sessions);
    }
  });

  it('the worker shuts down cleanly on SIGTERM', async () => {
    worker.child.kill('SIGTERM');
    assert.equal(await worker.exited, 0);
    assert.match(worker.output(), /"worker stopped"/);
  });

  it('a worker with a malformed profile refuses to start and names the field', async () => {
    const r = await startWorkerProcess({ MIMIR_PROFILE: 'config/profile.ts' }).then(
      () => assert.fail('the worker started'),
      (e: Error) => e.message,
    );
    assert.match(r, /worker exited with 2/);
    assert.match(r, /config\/profile\.ts is not a valid site profile|not valid YAML/);
  });

  it('sandbox env prints the export lines a user needs', async () => {
    const r = await cli(['sandbox', 'env'], { MIMIR_SANDBOX: testInstance.name });
    assert.equal(r.code, 0, r.stderr);
    for (const name of ['TEMPORAL_ADDRESS', 'TEMPORAL_UI_URL', 'KUBECONFIG', 'MIMIR_PRIMARY_DATABASE_URL', 'MIMIR_DR_DATABASE_URL']) {
      assert.match(r.stdout, new RegExp(`^export ${name}='[^']+'$`, 'm'));
    }
    assert.match(r.stdout, new RegExp(`^export TEMPORAL_ADDRESS='127\\.0\\.0\\.1:${testInstance.ports.temporal}'$`, 'm'));
  });
});
