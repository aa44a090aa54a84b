// Breach containment end to end on the sandbox's real mimir-production: logs of every mimir-api pod
// captured before any pod is gone, isolation, preservation, a sealed evidence store, the security
// contact notified (a real local receiver), release after two security approvals; then the
// evidence verifies, and one changed byte makes `evidence verify` fail and name the file.
import { WorkflowFailedError } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FilesystemEvidenceStore, MANIFEST, type EvidenceManifest } from '../../activities/evidence.js';
import { ANNOTATIONS } from '../../activities/kubernetes.js';
import { renderReport } from '../../client/render.js';
import type { breachContainmentWorkflow } from '../../workflows/breach-containment.js';
import { rootMessage } from '../../workflows/lib/journal.js';
import { approveUpdate, statusQuery } from '../../workflows/messages.js';
import type { BreachContainmentInput } from '../../workflows/types.js';
import { cli } from '../helpers/cli.js';
import { admin, readyPods } from '../helpers/kubernetes.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { podNames, SECURITY_WEBHOOK_ENV, securityProfile } from '../helpers/security.js';
import { assertRefused, testWorker, uniqueId, waitForStatus, type TestWorker } from '../helpers/temporal.js';

const NS = 'mimir-production';
const replicas = async (name: string) => (await admin().apps.readNamespacedDeployment({ name, namespace: NS })).spec!.replicas;
const allowList = async () =>
  (await admin().networking.readNamespacedIngress({ name: 'mimir-ingress', namespace: NS })).metadata!.annotations?.[
    ANNOTATIONS.sourceRange
  ];

function start(w: TestWorker, input: Partial<BreachContainmentInput>) {
  return w.client.workflow.start<typeof breachContainmentWorkflow>('breachContainmentWorkflow', {
    taskQueue: w.taskQueue,
    workflowId: uniqueId('breach-primary'),
    args: [{ site: 'primary', requestedBy: 'alice', incidentId: uniqueId('INC'), ...input }],
  });
}

describe('breach containment', () => {
  let receiver: Receiver;
  before(async () => {
    receiver = await startReceiver();
  });
  after(async () => receiver.close());

  it('captures every mimir-api pod log before any pod is gone, isolates, preserves, notifies, releases after two approvals', async () => {
    const pods = await podNames(NS, 'app=mimir-api');
    const before = { api: await replicas('mimir-api'), worker: await replicas('mimir-worker') };
    assert.equal(pods.length, before.api);
    const incident = uniqueId('INC');
    const w = await testWorker({ profile: securityProfile(), env: { [SECURITY_WEBHOOK_ENV]: receiver.url } });
    let report = '';
    const result = await w.run(async () => {
      const handle = await start(w, { incidentId: incident, deployments: ['mimir-api'], dumpJobs: 2 });
      const waiting = await waitForStatus(handle, (s) => s.openGate?.name === 'release', 120_000);
      assert.equal(await replicas('mimir-api'), 0, 'isolated: scaled to 0');
      assert.equal(await replicas('mimir-worker'), before.worker, 'a deployment not named is left alone');
      assert.equal(await allowList(), '10.0.0.0/8', "ingress restricted to the profile's internal range");
      const steps = waiting.journal.map((e) => e.step);
      const captureEntry = waiting.journal.find((e) => e.step === 'capture')!;
      const isolateEntry = waiting.journal.find((e) => e.step === 'isolate')!;
      assert.equal(captureEntry.outcome, 'succeeded');
      assert.ok(captureEntry.endedAt! <= isolateEntry.startedAt, 'every log was captured before the first pod was scaled away');
      assert.deepEqual(steps.slice(0, steps.indexOf('gate:release')), [
        'resolve-site',
        'preflight',
        'capture',
        'isolate',
        'restrict-ingress',
        'dump',
        'auth-failures',
        'seal-evidence',
        'notify-security',
      ]);
      assert.equal(waiting.openGate!.required, 2);
      await assertRefused(handle.executeUpdate(approveUpdate, { args: [{ by: 'alice' }] }), /requested this procedure and may not approve/);
      const first = await handle.executeUpdate(approveUpdate, { args: [{ gate: 'release', by: 'bob', comment: 'forensics done' }] });
      assert.equal(first.remaining, 1, 'one approval is not enough');
      await assertRefused(handle.executeUpdate(approveUpdate, { args: [{ by: 'bob' }] }), /has already approved/);
      assert.equal(await replicas('mimir-api'), 0, 'still isolated after one approval');
      await handle.executeUpdate(approveUpdate, { args: [{ gate: 'release', by: 'carol', comment: 'signed off' }] });
      const r = await handle.result();
      report = renderReport({ status: await handle.query(statusQuery), execution: 'COMPLETED', result: r });
      // Refresh the committed replay history with: MIMIR_RECORD_HISTORY=1 npm test
      if (process.env.MIMIR_RECORD_HISTORY)
        writeFileSync('test/replay/histories/breach-containment.json', historyToJSON(await handle.fetchHistory()));
      return r;
    });

    // Released exactly as it was.
    assert.equal(result.outcome, 'released');
    assert.deepEqual(result.errors, []);
    assert.equal(await replicas('mimir-api'), before.api);
    assert.equal(await readyPods(NS, 'app=mimir-api'), before.api);
    assert.equal(await allowList(), undefined, 'the previous (open) allow-list is back');
    assert.deepEqual(
      result.approvals.map((a) => a.by),
      ['bob', 'carol'],
    );

    // The evidence: a log per pod that ran at the start, the rest, all in the manifest, read-only.
    const dir = result.evidence!.location;
    assert.equal(dir, join(process.env.MIMIR_EVIDENCE_DIR!, incident));
    assert.deepEqual(
      readdirSync(join(dir, 'logs', 'mimir-api')).sort(),
      pods.map((p) => `${p}_mimir-api.log`),
    );
    const manifestText = readFileSync(join(dir, MANIFEST));
    const manifest = JSON.parse(manifestText.toString()) as EvidenceManifest;
    assert.equal(createHash('sha256').update(manifestText).digest('hex'), result.evidence!.manifestSha256);
    const paths = manifest.artefacts.map((a) => a.path);
    for (const p of ['events.yaml', 'state.yaml', 'auth-failures.json', 'database/dump.json', 'database/dump/toc.dat'])
      assert.ok(paths.includes(p), `${p} is in the manifest`);
    for (const p of pods) assert.ok(paths.includes(`logs/mimir-api/${p}_mimir-api.log`));
    assert.ok(manifest.artefacts.every((a) => /^[0-9a-f]{64}$/.test(a.sha256)));
    assert.equal(manifest.custody.requestedBy, 'alice');
    assert.equal(manifest.custody.incidentId, incident);
    assert.match(manifest.custody.sealedBy, /^mimir-recovery worker \d+@/);
    const log = readFileSync(join(dir, 'logs', 'mimir-api', `${pods[0]}_mimir-api.log`), 'utf8');
    assert.match(log, /POST \/api\/login 401/, "the pod's own log");
    const auth = JSON.parse(readFileSync(join(dir, 'auth-failures.json'), 'utf8')) as { count: number; rows: { action: string }[] };
    assert.ok(auth.count > 0 && auth.rows.every((r) => r.action === 'login'));
    assert.equal(result.capture!.pods, pods.length);

    // The security contact got the timeline, the affected systems and the manifest's hash.
    const sent = receiver.received.find((m) => m.workflowId && String(m.subject).includes(incident))!;
    assert.ok(sent, 'the security contact was notified');
    const details = sent.details as { evidence: { manifestSha256: string }; affected: { deployments: unknown[] }; timeline: unknown[] };
    assert.equal(details.evidence.manifestSha256, result.evidence!.manifestSha256);
    assert.deepEqual(details.affected.deployments, [{ name: 'mimir-api', originalReplicas: before.api }]);
    assert.ok(details.timeline.length >= 8);
    assert.match(report, /## Containment/);
    assert.match(report, /manifest SHA-256 `[0-9a-f]{64}`/);

    // `evidence verify`: OK as sealed; one changed byte fails it, naming the file.
    const ok = await cli(['evidence', 'verify', incident]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, new RegExp(`evidence ${incident} .*: OK; ${manifest.artefacts.length} artefact`));
    const victim = join(dir, 'logs', 'mimir-api', `${pods[1]}_mimir-api.log`);
    assert.equal(statSync(victim).mode & 0o777, 0o444, 'artefacts are read-only');
    chmodSync(victim, 0o644);
    const bytes = readFileSync(victim);
    bytes[10] = bytes[10]! ^ 1;
    writeFileSync(victim, bytes);
    const bad = await cli(['evidence', 'verify', incident]);
    assert.equal(bad.code, 1);
    assert.match(bad.stdout, new RegExp(`changed: +logs/mimir-api/${pods[1]}_mimir-api.log`));
    assert.match(bad.stderr, new RegExp(`does not verify: logs/mimir-api/${pods[1]}_mimir-api.log`));
  });

  it('refuses an unknown deployment, an invalid CIDR and an evidence path outside the store before any change', async () => {
    const w = await testWorker({ profile: securityProfile(), env: { [SECURITY_WEBHOOK_ENV]: receiver.url } });
    const apiBefore = await replicas('mimir-api');
    await w.run(async () => {
      const cases: [Partial<BreachContainmentInput>, RegExp][] = [
        [{ deployments: ['mimir-nope'] }, /deployment: 'mimir-nope' does not exist in namespace mimir-production/],
        [{ allowedSourceRange: '10.0.0.0/33' }, /allowedSourceRange: must be a comma-separated list of CIDRs/],
        [{ evidencePath: '../../etc' }, /evidencePath: must be a relative path inside the evidence store/],
        [{ evidencePath: '/etc/mimir' }, /evidencePath: must be a relative path inside the evidence store/],
      ];
      for (const [input, pattern] of cases) {
        const handle = await start(w, input);
        const err = await handle.result().catch((e: unknown) => e);
        assert.ok(err instanceof WorkflowFailedError, `${JSON.stringify(input)} is refused`);
        assert.match(rootMessage(err), pattern);
        const history = await handle.fetchHistory();
        const activities = history.events!.flatMap((e) => e.activityTaskScheduledEventAttributes?.activityType?.name ?? []);
        const changing = activities.filter((a) => !['resolveSite', 'resolveSecurity', 'readReplicas'].includes(a));
        assert.deepEqual(changing, [], `nothing is done for ${JSON.stringify(input)}`);
      }
    });
    // The CLI refuses the same input with the same schema, before it starts anything.
    const viaCli = await cli([
      'start',
      'breach-containment',
      '--site',
      'primary',
      '--incident',
      'INC-1',
      '--input',
      '{"allowedSourceRange":"10.0.0.0/33"}',
    ]);
    assert.equal(viaCli.code, 2);
    assert.match(viaCli.stderr, /invalid input for breach-containment: allowedSourceRange: must be a comma-separated list of CIDRs/);
    assert.equal(await replicas('mimir-api'), apiBefore);
    assert.equal(await allowList(), undefined);
  });

  it('the evidence store refuses paths that leave it, also through a symbolic link, and a second seal of an incident', async () => {
    const root = join(tmpdir(), uniqueId('evidence'));
    mkdirSync(root);
    const store = new FilesystemEvidenceStore(root);
    assert.throws(() => store.stage('../outside'), {
      name: 'InvalidInputError',
      message: /incident: '\.\.\/outside' is not a path inside/,
    });
    symlinkSync(tmpdir(), join(root, 'escape'));
    assert.throws(() => store.stage('escape/INC-1'), { name: 'InvalidInputError', message: /resolves outside the evidence store/ });
    const dir = store.stage('INC-1');
    writeFileSync(join(dir, 'a.txt'), 'evidence');
    writeFileSync(join(dir, 'a.txt.partial-99999'), 'half');
    const custody = { incidentId: 'INC-1', procedure: 'test', workflowId: 'w', runId: 'r', site: 's', requestedBy: 'alice', methods: {} };
    const sealed = await store.seal('INC-1', custody);
    assert.deepEqual(sealed.removedPartials, ['a.txt.partial-99999']);
    assert.equal(sealed.artefacts, 1);
    assert.equal((await store.seal('INC-1', custody)).manifestSha256, sealed.manifestSha256, 'sealing again changes nothing');
    assert.throws(() => store.stage('INC-1'), /is sealed already/);
    assert.ok(existsSync(join(dir, 'manifest.sha256')));
    assert.deepEqual((await store.verify('INC-1')).ok, true);
  });
});
