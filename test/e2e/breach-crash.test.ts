// Breach containment survives its worker: the worker process SIGKILLed while it captures the logs of
// 120 pods; a new worker finishes. The sealed evidence is complete, with no duplicate and no partial
// artefact. And no key, password or connection string appears in the workflow histories (the
// containment and its credential-rotation child) or in the workers' logs.
import { Client, Connection } from '@temporalio/client';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { FilesystemEvidenceStore } from '../../activities/evidence.js';
import { buildWorkflowBundle } from '../../worker/bundle.js';
import type { breachContainmentWorkflow } from '../../workflows/breach-containment.js';
import { approveUpdate } from '../../workflows/messages.js';
import { workerFleet } from '../helpers/cli.js';
import { admin, deploymentBody, readyPods, scratchNamespace } from '../helpers/kubernetes.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { secretData, SECURITY_WEBHOOK_ENV, securityProfile } from '../helpers/security.js';
import { uniqueId, waitForStatus } from '../helpers/temporal.js';

const PODS = 120;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('breach containment under failure (worker killed during evidence capture)', () => {
  const taskQueue = uniqueId('breach-crash');
  const fleet = workerFleet(() => env);
  let scratch: Awaited<ReturnType<typeof scratchNamespace>>;
  let receiver: Receiver;
  let client: Client;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    scratch = await scratchNamespace();
    const namespace = scratch.target.namespace;
    await admin().apps.createNamespacedDeployment({ namespace, body: deploymentBody('bulk', PODS) });
    for (let i = 0; i < 600 && (await readyPods(namespace, 'app=bulk')) < PODS; i++) await sleep(250);
    assert.equal(await readyPods(namespace, 'app=bulk'), PODS);
    receiver = await startReceiver();
    const dir = mkdtempSync(join(tmpdir(), 'mimir-breach-crash-'));
    const profile = join(dir, 'profile.yaml');
    writeFileSync(profile, stringify(securityProfile({ scratch: { namespace, deployments: ['bulk', 'api'], consumers: ['api'] } })));
    env = {
      MIMIR_PROFILE: profile,
      MIMIR_TASK_QUEUE: taskQueue,
      MIMIR_WORKFLOW_BUNDLE: await buildWorkflowBundle({ out: join(dir, 'workflow-bundle.js') }),
      MIMIR_LOG_LEVEL: 'DEBUG',
      [SECURITY_WEBHOOK_ENV]: receiver.url,
    };
    client = new Client({ connection: await Connection.connect({ address: process.env.TEMPORAL_ADDRESS }) });
  });

  after(async () => {
    await fleet.killAll();
    await receiver?.close();
    await scratch?.cleanup();
  });

  const worker = fleet.start;

  it('a worker killed mid-capture is replaced: the evidence is complete, without duplicates or partial files; no secret leaks', async () => {
    const namespace = scratch.target.namespace;
    const oldKey = (await secretData(namespace, 'api-keys'))!['master-key']!;
    const pods = (await admin().core.listNamespacedPod({ namespace, labelSelector: 'app=bulk' })).items
      .map((p) => p.metadata!.name!)
      .sort();
    const incident = uniqueId('INC');
    const first = await worker();
    const handle = await client.workflow.start<typeof breachContainmentWorkflow>('breachContainmentWorkflow', {
      taskQueue,
      workflowId: `breach-scratch-${incident}`,
      args: [{ site: 'scratch', requestedBy: 'alice', incidentId: incident, logConcurrency: 1, dumpJobs: 2, rotateCredentials: true }],
    });
    // Kill the worker once the capture is under way: a few pod logs are in the evidence directory.
    const logs = join(process.env.MIMIR_EVIDENCE_DIR!, incident, 'logs', 'bulk');
    const done = () => (existsSync(logs) ? readdirSync(logs).filter((f) => f.endsWith('.log')).length : 0);
    for (let i = 0; i < 3000 && done() < 5; i++) await sleep(20);
    assert.ok(done() >= 5, 'the capture started');
    await first.killHard();
    assert.ok(done() < PODS, `killed mid-capture (${done()} of ${PODS} logs captured)`);
    assert.equal(await readyPods(namespace, 'app=bulk'), PODS, 'nothing is isolated before the capture is done');

    await worker();
    await waitForStatus(handle, (s) => s.openGate?.name === 'release', 240_000);
    await handle.executeUpdate(approveUpdate, { args: [{ by: 'bob' }] });
    await handle.executeUpdate(approveUpdate, { args: [{ by: 'carol' }] });
    const result = await handle.result();

    assert.equal(result.outcome, 'released');
    assert.deepEqual(result.errors, []);
    assert.equal(result.capture!.pods, PODS + 3);
    assert.equal(result.capture!.missing, 0);
    assert.equal(result.rotation?.outcome, 'rotated');
    const dir = result.evidence!.location;
    assert.deepEqual(
      readdirSync(join(dir, 'logs', 'bulk')).sort(),
      pods.map((p) => `${p}_bulk.log`),
      'one complete log per pod, nothing else',
    );
    const all = readdirSync(dir, { recursive: true, encoding: 'utf8' });
    assert.deepEqual(
      all.filter((f) => /partial/.test(f)),
      [],
      'no partial artefact',
    );
    const verified = await new FilesystemEvidenceStore(process.env.MIMIR_EVIDENCE_DIR!).verify(incident);
    assert.equal(verified.ok, true, JSON.stringify(verified));
    assert.equal(verified.checked, result.evidence!.artefacts);

    const history = await handle.fetchHistory();
    const scheduled = (type: string) =>
      history.events!.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === type).length;
    assert.equal(scheduled('captureLogs'), 2, 'one capture per deployment, resumed by its retry');
    assert.equal(scheduled('fence'), 1, 'isolated once');
    const attempts = history.events!.flatMap((e) => e.activityTaskStartedEventAttributes?.attempt ?? []);
    assert.ok(
      attempts.some((a) => a >= 2),
      'the interrupted capture was retried',
    );
    assert.equal(await readyPods(namespace, 'app=bulk'), PODS, 'released to the recorded replicas');

    // Secrets: neither key, nor the database password, nor a connection string, anywhere in the histories or the logs.
    const newKey = (await secretData(namespace, 'api-keys'))!['master-key']!;
    assert.notEqual(newKey, oldKey);
    const url = new URL(process.env.MIMIR_PRIMARY_DATABASE_URL!);
    const child = await client.workflow.getHandle(`credential-rotation-scratch-${incident}`).fetchHistory();
    const texts = {
      'containment history': JSON.stringify(history),
      'rotation history': JSON.stringify(child),
      'worker logs': fleet.workers.map((w) => w.output()).join('\n'),
    };
    assert.ok(texts['worker logs'].includes(taskQueue) || texts['worker logs'].includes('worker running'), 'the logs were read');
    const secrets = {
      'old key': Buffer.from(oldKey, 'base64').toString(),
      'old key (base64)': oldKey,
      'new key': Buffer.from(newKey, 'base64').toString(),
      'new key (base64)': newKey,
      'database password': decodeURIComponent(url.password),
      'connection string': process.env.MIMIR_PRIMARY_DATABASE_URL!,
      'connection string scheme': 'postgresql://',
      'webhook URL': receiver.url,
    };
    for (const [where, text] of Object.entries(texts)) {
      for (const [what, value] of Object.entries(secrets)) assert.ok(!text.includes(value), `the ${what} appears in the ${where}`);
    }
  });
});
