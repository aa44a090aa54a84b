// deploy/rbac.yaml is exactly enough: every Kubernetes activity works as the worker's
// ServiceAccount (authenticated with a real token from the TokenRequest API), and what it does not
// need is refused, including anything beyond deployments in the DR drills' scratch namespace.
import * as k8s from '@kubernetes/client-node';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadAllYaml } from '@kubernetes/client-node';
import { createKubernetesActivities, type KubeTarget } from '../../activities/kubernetes.js';
import { admin, CONTEXT } from '../helpers/kubernetes.js';

async function applyManifests(file: string) {
  const api = k8s.KubernetesObjectApi.makeApiClient(admin().kc);
  for (const obj of loadAllYaml(readFileSync(file, 'utf8')) as k8s.KubernetesObject[]) {
    try {
      await api.create(obj);
    } catch (e) {
      if (!(e instanceof k8s.ApiException && e.code === 409)) throw e;
      await api.replace(obj);
    }
  }
}

/** A kubeconfig for the worker's ServiceAccount: same cluster, a bearer token from TokenRequest. */
async function serviceAccountKubeconfig(): Promise<string> {
  const a = admin();
  const token = await a.core.createNamespacedServiceAccountToken({
    name: 'mimir-recovery-worker',
    namespace: 'mimir-recovery',
    body: { spec: { expirationSeconds: 600, audiences: [] } },
  });
  const cluster = a.kc.getCurrentCluster()!;
  const kc = new k8s.KubeConfig();
  kc.loadFromOptions({
    clusters: [cluster],
    users: [{ name: 'mimir-recovery-worker', token: token.status!.token }],
    contexts: [{ name: CONTEXT, cluster: cluster.name, user: 'mimir-recovery-worker' }],
    currentContext: CONTEXT,
  });
  const file = join(mkdtempSync(join(tmpdir(), 'mimir-sa-')), 'kubeconfig');
  writeFileSync(file, kc.exportConfig(), { mode: 0o600 });
  return file;
}

describe('worker RBAC (deploy/rbac.yaml)', () => {
  const mock = new MockActivityEnvironment({}, { logger: new DefaultLogger('ERROR') });
  const run = <A extends unknown[], R>(fn: (...a: A) => Promise<R>, ...args: A) => mock.run(fn, ...args) as Promise<R>;
  const target: KubeTarget = { context: CONTEXT, namespace: 'mimir-production' };
  let k: ReturnType<typeof createKubernetesActivities>;
  let kubeconfig: string;

  before(async () => {
    await applyManifests('deploy/rbac.yaml');
    kubeconfig = await serviceAccountKubeconfig();
    k = createKubernetesActivities({ kubeconfig });
  });

  it('every activity works as the ServiceAccount in the runbook namespace', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mimir-rbac-'));
    const [worker] = await run(k.readReplicas, { target, deployments: ['mimir-worker'] });
    const replicas = worker!.replicas;
    await run(k.fence, { target, deployments: ['mimir-worker'], by: 'rbac-test' });
    await run(k.unfence, { target, deployments: [{ name: 'mimir-worker' }] });
    await run(k.scaleDeployment, { target, name: 'mimir-worker', replicas });
    const restarted = await run(k.rolloutRestart, { target, name: 'mimir-worker', restartedAt: new Date().toISOString() });
    await run(k.rolloutUndo, { target, name: 'mimir-worker', fromRevision: restarted.revision });
    await run(k.restrictIngress, { target, name: 'mimir-ingress', sourceRange: '10.0.0.0/8' });
    await run(k.restoreIngress, { target, name: 'mimir-ingress' });
    const logs = await run(k.captureLogs, { target, selector: 'app=mimir-api', dir: join(dir, 'logs') });
    assert.ok(logs.files.length > 0);
    await run(k.captureEvents, { target, file: join(dir, 'events.yaml') });
    await run(k.captureState, { target, file: join(dir, 'state.yaml') });
    const rotation = `rbac-${Date.now()}`;
    await run(k.rotateSecretKey, { target, name: 'api-keys', key: 'master-key', rotationId: rotation });
    await run(k.restoreSecret, { target, name: 'api-keys', rotationId: rotation });
    await run(k.deleteSecretBackup, { target, name: 'api-keys', rotationId: rotation });
    await run(k.patchConfigMap, { target, name: 'mimir-config', data: { RBAC_CHECKED_AT: new Date().toISOString() } });
    const edge: KubeTarget = { context: CONTEXT, namespace: 'mimir-edge' }; // DR failover's traffic provider
    await run(k.repointService, { target: edge, name: 'mimir-public', externalName: 'mimir-api.mimir-dr.svc.cluster.local' });
    await run(k.repointService, { target: edge, name: 'mimir-public', externalName: 'mimir-api.mimir-production.svc.cluster.local' });
    const d = await admin().apps.readNamespacedDeployment({ name: 'mimir-worker', namespace: 'mimir-production' });
    const mem = d.spec!.template.spec!.containers[0]!.resources!;
    await run(k.patchContainerMemory, {
      target,
      name: 'mimir-worker',
      container: d.spec!.template.spec!.containers[0]!.name,
      request: String(mem.requests!.memory),
      limit: String(mem.limits!.memory),
    });
    const pvcs = await admin().core.listNamespacedPersistentVolumeClaim({ namespace: 'mimir-production' });
    for (const pvc of pvcs.items) {
      await run(k.expandPvc, { target, name: pvc.metadata!.name!, size: String(pvc.spec!.resources!.requests!.storage) });
    }
    const [after] = await run(k.readReplicas, { target, deployments: ['mimir-worker'] });
    assert.equal(after!.replicas, replicas);
  });

  it('refuses what the worker does not need: deleting a namespace, touching another namespace', async () => {
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(kubeconfig);
    const err = await kc
      .makeApiClient(k8s.CoreV1Api)
      .deleteNamespace({ name: 'mimir-production' })
      .catch((e: unknown) => e);
    assert.ok(err instanceof k8s.ApiException);
    assert.equal(err.code, 403);
    await assert.rejects(run(k.captureState, { target: { context: CONTEXT, namespace: 'kube-system' }, file: '/tmp/never.yaml' }), {
      name: 'PermissionDeniedError',
    });
    await assert.rejects(run(k.scaleDeployment, { target: { context: CONTEXT, namespace: 'default' }, name: 'x', replicas: 1 }), {
      name: 'PermissionDeniedError',
    });
    assert.ok((await admin().core.readNamespace({ name: 'mimir-production' })).metadata?.name, 'the namespace is still there');
  });

  it('creates and deletes deployments in the drill namespace (mimir-drill) only, never in production', async () => {
    const scratch: KubeTarget = { context: CONTEXT, namespace: 'mimir-drill' };
    const id = `rbac${Date.now()}`;
    const selector = `mimir-recovery.io/drill=${id}`;
    const before = await admin().apps.readNamespacedDeployment({ name: 'mimir-worker', namespace: 'mimir-production' });
    const copies = await run(k.deployCopies, {
      source: target,
      target: scratch,
      deployments: [{ name: 'mimir-worker', replicas: 1 }],
      suffix: id,
      labels: { 'mimir-recovery.io/drill': id },
    });
    assert.deepEqual(
      copies.map((c) => c.name),
      [`mimir-worker-${id}`],
    );
    const up = await admin().apps.listNamespacedDeployment({ namespace: 'mimir-drill', labelSelector: selector });
    assert.equal(up.items[0]?.status?.readyReplicas, 1, 'the copy runs in the drill namespace');
    assert.deepEqual((await run(k.deleteLabelled, { target: scratch, selector })).deleted, [`mimir-worker-${id}`]);
    assert.equal((await admin().apps.listNamespacedDeployment({ namespace: 'mimir-drill', labelSelector: selector })).items.length, 0);

    // The drill grant does not reach production: no deployment created or deleted there.
    await assert.rejects(
      run(k.deployCopies, {
        source: { context: CONTEXT, namespace: 'mimir-dr' },
        target,
        deployments: [{ name: 'mimir-worker', replicas: 1 }],
        suffix: id,
        labels: { 'mimir-recovery.io/drill': id },
      }),
      { name: 'PermissionDeniedError' },
    );
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(kubeconfig);
    const refused = await kc
      .makeApiClient(k8s.AppsV1Api)
      .deleteNamespacedDeployment({ name: 'mimir-worker', namespace: 'mimir-production' })
      .catch((e: unknown) => e);
    assert.ok(refused instanceof k8s.ApiException);
    assert.equal(refused.code, 403);
    const after = await admin().apps.readNamespacedDeployment({ name: 'mimir-worker', namespace: 'mimir-production' });
    assert.deepEqual([after.spec?.replicas, after.metadata?.generation], [before.spec?.replicas, before.metadata?.generation]);
  });
});
