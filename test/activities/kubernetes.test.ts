// The Kubernetes activities against the sandbox's real API server (kwok-managed nodes make pods
// Running/Ready, deletions complete and logs readable). Every test owns a scratch namespace.
import * as k8s from '@kubernetes/client-node';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ANNOTATIONS, createKubernetesActivities, type KubeTarget } from '../../activities/kubernetes.js';
import { admin, readyPods, scratchNamespace } from '../helpers/kubernetes.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('kubernetes activities', () => {
  const k = createKubernetesActivities({ kubeconfig: process.env.KUBECONFIG });
  const mock = new MockActivityEnvironment({}, { logger: new DefaultLogger('ERROR') });
  const run = <A extends unknown[], R>(fn: (...a: A) => Promise<R>, ...args: A) => mock.run(fn, ...args) as Promise<R>;
  let target: KubeTarget;
  let cleanup: () => Promise<void>;

  beforeEach(async () => {
    ({ target, cleanup } = await scratchNamespace());
    await run(k.scaleDeployment, { target, name: 'api', replicas: 3 }); // wait until the seeded pods are Ready
  });
  afterEach(async () => cleanup());

  it('reads replicas and HPA bounds, scales to N and waits until ready, and to 0 until no pod is left', async () => {
    const [api] = await run(k.readReplicas, { target, deployments: ['api'] });
    assert.deepEqual(api, {
      name: 'api',
      replicas: 3,
      readyReplicas: 3,
      availableReplicas: 3,
      hpa: { name: 'api', minReplicas: 3, maxReplicas: 10 },
    });
    await run(k.scaleDeployment, { target, name: 'api', replicas: 5 });
    assert.equal(await readyPods(target.namespace, 'app=api'), 5);
    await run(k.scaleDeployment, { target, name: 'api', replicas: 0 });
    assert.equal((await admin().core.listNamespacedPod({ namespace: target.namespace, labelSelector: 'app=api' })).items.length, 0);
  });

  it('fence records the original replicas before scaling to 0; a retry after a crash never records 0; unfence restores them', async () => {
    const first = await run(k.fence, { target, deployments: ['api'], by: 'test' });
    assert.deepEqual(first, [{ name: 'api', originalReplicas: 3, hpa: { name: 'api', minReplicas: 3, maxReplicas: 10 } }]);
    // The worker "crashed" after scaling down and the activity is retried: the record is still 3.
    const retry = await run(k.fence, { target, deployments: ['api'], by: 'test' });
    assert.equal(retry[0]!.originalReplicas, 3);
    const d = await admin().apps.readNamespacedDeployment({ name: 'api', namespace: target.namespace });
    assert.equal(d.spec!.replicas, 0);
    assert.equal(d.metadata!.annotations![ANNOTATIONS.fencedReplicas], '3');
    await sleep(2000);
    assert.equal(
      (await admin().apps.readNamespacedDeployment({ name: 'api', namespace: target.namespace })).spec!.replicas,
      0,
      'the HPA does not fight the fence',
    );

    // A new worker that lost the workflow's record still finds it on the Deployment.
    const back = await run(k.unfence, { target, deployments: [{ name: 'api' }] });
    assert.deepEqual(back, [{ name: 'api', replicas: 3 }]);
    assert.equal(await readyPods(target.namespace, 'app=api'), 3);
    const after = await admin().apps.readNamespacedDeployment({ name: 'api', namespace: target.namespace });
    assert.equal(after.metadata!.annotations?.[ANNOTATIONS.fencedReplicas], undefined, 'the record is cleared once restored');
    assert.deepEqual(
      await run(k.unfence, { target, deployments: [{ name: 'api', replicas: 3 }] }),
      [{ name: 'api', replicas: 3 }],
      'unfence is idempotent',
    );
  });

  it('rollout restart stamps restartedAt once and waits; rollout undo goes back to the previous template like kubectl', async () => {
    const a = admin();
    const restartedAt = new Date().toISOString();
    const r1 = await run(k.rolloutRestart, { target, name: 'api', restartedAt });
    const r2 = await run(k.rolloutRestart, { target, name: 'api', restartedAt });
    assert.equal(r1.revision, 2);
    assert.equal(r2.revision, 2, 'a retry with the same restartedAt does not restart again');
    const d = await a.apps.readNamespacedDeployment({ name: 'api', namespace: target.namespace });
    assert.equal(d.spec!.template.metadata!.annotations![ANNOTATIONS.restartedAt], restartedAt);

    await a.apps.patchNamespacedDeployment(
      {
        name: 'api',
        namespace: target.namespace,
        body: { spec: { template: { spec: { containers: [{ name: 'api', image: 'mimir/api:2.0-broken' }] } } } },
      },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.StrategicMergePatch),
    );
    await run(k.scaleDeployment, { target, name: 'api', replicas: 3 });
    const undo = await run(k.rolloutUndo, { target, name: 'api', fromRevision: 3 });
    assert.equal(undo.changed, true);
    assert.equal(undo.toRevision, 2);
    const rolled = await a.apps.readNamespacedDeployment({ name: 'api', namespace: target.namespace });
    assert.equal(rolled.spec!.template.spec!.containers[0]!.image, 'mimir/api:1.0');
    assert.equal(rolled.spec!.template.metadata!.annotations![ANNOTATIONS.restartedAt], restartedAt, 'the template comes back whole');
    assert.equal(rolled.spec!.template.metadata!.labels!['pod-template-hash'], undefined);
    const again = await run(k.rolloutUndo, { target, name: 'api', fromRevision: 3 });
    assert.equal(again.changed, false, 'a retried undo does not flip back');
    assert.equal(await readyPods(target.namespace, 'app=api'), 3);
  });

  it('restricts an ingress and restores exactly the previous allow-list', async () => {
    const a = admin();
    const r = await run(k.restrictIngress, { target, name: 'ingress', sourceRange: '10.0.0.0/8' });
    assert.deepEqual(r, { name: 'ingress', previous: null, current: '10.0.0.0/8' });
    await run(k.restrictIngress, { target, name: 'ingress', sourceRange: '10.1.0.0/16' }); // tighter, again: the original is kept
    const back = await run(k.restoreIngress, { target, name: 'ingress' });
    assert.deepEqual(back, { name: 'ingress', restored: true, current: null });
    const ing = await a.networking.readNamespacedIngress({ name: 'ingress', namespace: target.namespace });
    assert.equal(ing.metadata!.annotations?.[ANNOTATIONS.sourceRange], undefined);

    await a.networking.patchNamespacedIngress(
      {
        name: 'ingress',
        namespace: target.namespace,
        body: { metadata: { annotations: { [ANNOTATIONS.sourceRange]: '192.168.0.0/16' } } },
      },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    await run(k.restrictIngress, { target, name: 'ingress', sourceRange: '10.0.0.0/8' });
    assert.deepEqual(await run(k.restoreIngress, { target, name: 'ingress' }), {
      name: 'ingress',
      restored: true,
      current: '192.168.0.0/16',
    });
    assert.deepEqual(await run(k.restoreIngress, { target, name: 'ingress' }), {
      name: 'ingress',
      restored: false,
      current: '192.168.0.0/16',
    });
    await assert.rejects(run(k.restrictIngress, { target, name: 'ingress', sourceRange: '10.0.0.0/33' }), {
      name: 'InvalidInputError',
      message: /sourceRange: '10\.0\.0\.0\/33'/,
    });
  });

  it('captures every pod log to a file (hash verified), the events and the namespace state without secret values', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mimir-logs-'));
    const logs = await run(k.captureLogs, { target, selector: 'app=api', dir: join(dir, 'logs'), concurrency: 2 });
    assert.equal(logs.pods, 3);
    assert.equal(logs.files.length, 3);
    for (const f of logs.files) {
      const content = readFileSync(f.file);
      assert.ok(content.length > 0, `${f.file} has the pod's log`);
      assert.equal(createHash('sha256').update(content).digest('hex'), f.sha256);
    }
    const retry = await run(k.captureLogs, { target, selector: 'app=api', dir: join(dir, 'logs') });
    assert.deepEqual(
      retry.files.map((f) => f.sha256),
      logs.files.map((f) => f.sha256),
      'a retry keeps what was captured',
    );
    assert.deepEqual(
      readdirSync(join(dir, 'logs')).filter((f) => f.includes('.partial')),
      [],
    );

    const events = await run(k.captureEvents, { target, file: join(dir, 'events.yaml') });
    assert.ok(events.count > 0);
    const state = await run(k.captureState, { target, file: join(dir, 'state.yaml') });
    assert.equal(state.counts.deployments, 1);
    assert.equal(state.counts.pods, 3);
    const text = readFileSync(state.file, 'utf8');
    assert.match(text, /master-key/);
    assert.ok(!text.includes(Buffer.from('old-master-key').toString('base64')), 'secret values are not captured');
  });

  it('rotates a secret key with a random value, keeps the previous data for rollback, and restores it', async () => {
    const a = admin();
    const read = async (name: string) => (await a.core.readNamespacedSecret({ name, namespace: target.namespace })).data!;
    const r = await run(k.rotateSecretKey, { target, name: 'api-keys', key: 'master-key', rotationId: 'inc-1' });
    assert.equal(r.backup, 'api-keys-rollback-inc-1');
    assert.notEqual(r.fingerprint, r.previousFingerprint);
    const rotated = await read('api-keys');
    assert.notEqual(Buffer.from(rotated['master-key']!, 'base64').toString(), 'old-master-key');
    assert.ok(Buffer.from(rotated['master-key']!, 'base64').length >= 40, '32 random bytes, base64');
    assert.equal(Buffer.from(rotated.other!, 'base64').toString(), 'keep-me');
    assert.equal(Buffer.from((await read('api-keys-rollback-inc-1'))['master-key']!, 'base64').toString(), 'old-master-key');
    const again = await run(k.rotateSecretKey, { target, name: 'api-keys', key: 'master-key', rotationId: 'inc-1' });
    assert.equal(again.fingerprint, r.fingerprint, 'a retry does not rotate twice');
    assert.ok(!JSON.stringify(r).includes(rotated['master-key']!), 'no secret value leaves the activity');

    await run(k.restoreSecret, { target, name: 'api-keys', rotationId: 'inc-1' });
    assert.equal(Buffer.from((await read('api-keys'))['master-key']!, 'base64').toString(), 'old-master-key');
    await run(k.deleteSecretBackup, { target, name: 'api-keys', rotationId: 'inc-1' });
    await run(k.deleteSecretBackup, { target, name: 'api-keys', rotationId: 'inc-1' });
    await assert.rejects(read('api-keys-rollback-inc-1'));
  });

  it('patches a configmap and container memory, and expands a PVC only upwards', async () => {
    const a = admin();
    await run(k.patchConfigMap, { target, name: 'config', data: { CACHE_ENABLED: 'true', CACHE_TTL: '300' } });
    assert.deepEqual((await a.core.readNamespacedConfigMap({ name: 'config', namespace: target.namespace })).data, {
      CACHE_ENABLED: 'true',
      CACHE_TTL: '300',
    });
    await run(k.patchContainerMemory, { target, name: 'api', container: 'api', request: '1Gi', limit: '2Gi' });
    const c = (await a.apps.readNamespacedDeployment({ name: 'api', namespace: target.namespace })).spec!.template.spec!.containers[0]!;
    assert.deepEqual(JSON.parse(JSON.stringify(c.resources)), { requests: { memory: '1Gi' }, limits: { memory: '2Gi' } });
    assert.equal(await readyPods(target.namespace, 'app=api'), 3);
    await assert.rejects(run(k.patchContainerMemory, { target, name: 'api', container: 'sidecar', limit: '1Gi' }), {
      name: 'NotFoundError',
      message: /container: 'sidecar'/,
    });
    await assert.rejects(run(k.patchContainerMemory, { target, name: 'api', container: 'api', request: '4Gi', limit: '2Gi' }), {
      name: 'InvalidInputError',
    });

    const sc = `expandable-${target.namespace}`;
    await a.storage.createStorageClass({
      body: { metadata: { name: sc }, provisioner: 'kubernetes.io/no-provisioner', allowVolumeExpansion: true },
    });
    try {
      await a.core.createPersistentVolume({
        body: {
          metadata: { name: sc },
          spec: {
            capacity: { storage: '100Gi' },
            accessModes: ['ReadWriteOnce'],
            storageClassName: sc,
            hostPath: { path: '/tmp/mimir-pv' },
            claimRef: { namespace: target.namespace, name: 'data' },
          },
        },
      });
      await a.core.createNamespacedPersistentVolumeClaim({
        namespace: target.namespace,
        body: {
          metadata: { name: 'data' },
          spec: { accessModes: ['ReadWriteOnce'], storageClassName: sc, resources: { requests: { storage: '100Gi' } } },
        },
      });
      for (let i = 0; i < 60; i++) {
        if ((await a.core.readNamespacedPersistentVolumeClaim({ name: 'data', namespace: target.namespace })).status?.phase === 'Bound')
          break;
        await sleep(500);
      }
      assert.deepEqual(await run(k.expandPvc, { target, name: 'data', size: '50Gi' }), { name: 'data', size: '100Gi', changed: false });
      assert.deepEqual(await run(k.expandPvc, { target, name: 'data', size: '200Gi' }), {
        name: 'data',
        size: '200Gi',
        changed: true,
        previous: '100Gi',
      });
      const pvc = await a.core.readNamespacedPersistentVolumeClaim({ name: 'data', namespace: target.namespace });
      assert.equal(pvc.spec!.resources!.requests!.storage, '200Gi');
    } finally {
      await a.core.deletePersistentVolume({ name: sc }).catch(() => undefined);
      await a.storage.deleteStorageClass({ name: sc }).catch(() => undefined);
    }
  });

  it('copies deployments into another namespace with a label, without secret references, and deletes them by that label', async () => {
    const other = await scratchNamespace();
    try {
      const a = admin();
      await a.apps.patchNamespacedDeployment(
        {
          name: 'api',
          namespace: target.namespace,
          body: {
            spec: {
              template: {
                spec: {
                  containers: [
                    {
                      name: 'api',
                      env: [
                        { name: 'KEY', valueFrom: { secretKeyRef: { name: 'keys', key: 'k' } } },
                        { name: 'MODE', value: 'x' },
                      ],
                    },
                  ],
                },
              },
            },
          },
        },
        k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.StrategicMergePatch),
      );
      const spec = {
        source: target,
        target: other.target,
        suffix: 'd1',
        labels: { 'mimir-recovery.io/drill': 'd1' },
        env: { DATABASE_PORT: '5999' },
      };
      const [copy] = await run(k.deployCopies, { ...spec, deployments: [{ name: 'api', replicas: 2 }] });
      assert.deepEqual(copy, { name: 'api-d1', copyOf: 'api', replicas: 2, omittedRefs: ['api: env KEY'] });
      assert.equal(await readyPods(other.target.namespace, 'mimir-recovery.io/drill=d1'), 2);
      const made = await a.apps.readNamespacedDeployment({ name: 'api-d1', namespace: other.target.namespace });
      assert.deepEqual(
        made.spec!.template.spec!.containers[0]!.env?.map((e) => ({ ...e })),
        [
          { name: 'MODE', value: 'x' },
          { name: 'DATABASE_PORT', value: '5999' },
        ],
      );
      assert.equal(made.spec!.selector.matchLabels!['mimir-recovery.io/drill'], 'd1');
      // A retry finds the copy and scales it to what it asks.
      await run(k.deployCopies, { ...spec, deployments: [{ name: 'api', replicas: 1 }] });
      const scaled = await a.apps.readNamespacedDeployment({ name: 'api-d1', namespace: other.target.namespace });
      assert.deepEqual([scaled.spec!.replicas, scaled.status!.readyReplicas], [1, 1]);

      const selector = 'mimir-recovery.io/drill=d1';
      assert.deepEqual(await run(k.deleteLabelled, { target: other.target, selector }), {
        namespace: other.target.namespace,
        selector,
        deleted: ['api-d1'],
      });
      assert.deepEqual((await run(k.deleteLabelled, { target: other.target, selector })).deleted, [], 'idempotent');
      assert.equal((await a.core.listNamespacedPod({ namespace: other.target.namespace, labelSelector: selector })).items.length, 0);
      assert.equal(await readyPods(other.target.namespace, 'app=api'), 3, "the namespace's own deployment is untouched");

      await assert.rejects(run(k.deployCopies, { ...spec, target, deployments: [{ name: 'api', replicas: 1 }] }), {
        name: 'InvalidInputError',
        message: /target: copies must go to another namespace/,
      });
      await assert.rejects(run(k.deployCopies, { ...spec, labels: {}, deployments: [{ name: 'api', replicas: 1 }] }), {
        name: 'InvalidInputError',
        message: /labels: /,
      });
      await assert.rejects(run(k.deleteLabelled, { target: other.target, selector: 'app' }), {
        name: 'InvalidInputError',
        message: /selector: 'app' must be one label/,
      });
      assert.equal(await readyPods(other.target.namespace, 'app=api'), 3);
    } finally {
      await other.cleanup();
    }
  });

  it('bad input gets a non-retryable error that names it, and nothing changes', async () => {
    await assert.rejects(run(k.scaleDeployment, { target, name: 'api', replicas: -1 }), {
      name: 'InvalidInputError',
      message: /replicas: must be an integer from 0 to 1000 \(got -1\)/,
    });
    await assert.rejects(run(k.scaleDeployment, { target, name: 'nope', replicas: 1 }), {
      name: 'NotFoundError',
      message: `deployment: 'nope' does not exist in namespace ${target.namespace}`,
    });
    await assert.rejects(run(k.fence, { target: { ...target, namespace: 'no-such-ns' }, deployments: ['api'], by: 't' }), {
      name: 'NotFoundError',
      message: /namespace: 'no-such-ns' does not exist/,
    });
    await assert.rejects(run(k.readReplicas, { target: { ...target, context: 'prod-eu' }, deployments: ['api'] }), {
      name: 'InvalidInputError',
      message: /context: 'prod-eu' is not in the kubeconfig .* \(contexts: mimir-sandbox\)/,
    });
    await assert.rejects(run(k.fence, { target, deployments: ['api', 'Bad_Name'], by: 't' }), {
      name: 'InvalidInputError',
      message: /deployments\[1\]: 'Bad_Name'/,
    });
    const d = await admin().apps.readNamespacedDeployment({ name: 'api', namespace: target.namespace });
    assert.equal(d.spec!.replicas, 3);
    assert.equal(d.metadata!.annotations?.[ANNOTATIONS.fencedReplicas], undefined, 'a refused fence changed nothing');
  });
});
