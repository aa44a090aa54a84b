// The sandbox's real Kubernetes API server, as an administrator: throwaway namespaces with a
// deployment like the runbook's, so each test owns what it changes.
import * as k8s from '@kubernetes/client-node';
import type { KubeTarget } from '../../activities/kubernetes.js';
import { uniqueId } from './temporal.js';

export const CONTEXT = 'mimir-sandbox';

export function admin() {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(process.env.KUBECONFIG!);
  kc.setCurrentContext(CONTEXT);
  return {
    kc,
    core: kc.makeApiClient(k8s.CoreV1Api),
    apps: kc.makeApiClient(k8s.AppsV1Api),
    autoscaling: kc.makeApiClient(k8s.AutoscalingV2Api),
    networking: kc.makeApiClient(k8s.NetworkingV1Api),
    storage: kc.makeApiClient(k8s.StorageV1Api),
  };
}

export function deploymentBody(name: string, replicas: number, image = 'mimir/api:1.0'): k8s.V1Deployment {
  return {
    metadata: { name, labels: { app: name } },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: { containers: [{ name, image, resources: { requests: { memory: '256Mi' }, limits: { memory: '512Mi' } } }] },
      },
    },
  };
}

/** A fresh namespace with deployment `api` (3 replicas, with an HPA), an ingress, a configmap and a secret. */
export async function scratchNamespace(): Promise<{ target: KubeTarget; cleanup: () => Promise<void> }> {
  const a = admin();
  const namespace = uniqueId('t').toLowerCase();
  await a.core.createNamespace({ body: { metadata: { name: namespace } } });
  await a.apps.createNamespacedDeployment({ namespace, body: deploymentBody('api', 3) });
  await a.autoscaling.createNamespacedHorizontalPodAutoscaler({
    namespace,
    body: {
      metadata: { name: 'api' },
      spec: { scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'api' }, minReplicas: 3, maxReplicas: 10 },
    },
  });
  await a.networking.createNamespacedIngress({
    namespace,
    body: {
      metadata: { name: 'ingress' },
      spec: {
        rules: [{ http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'api', port: { number: 80 } } } }] } }],
      },
    },
  });
  await a.core.createNamespacedConfigMap({ namespace, body: { metadata: { name: 'config' }, data: { CACHE_ENABLED: 'false' } } });
  await a.core.createNamespacedSecret({
    namespace,
    body: {
      metadata: { name: 'api-keys' },
      data: { 'master-key': Buffer.from('old-master-key').toString('base64'), other: Buffer.from('keep-me').toString('base64') },
    },
  });
  return {
    target: { context: CONTEXT, namespace },
    cleanup: async () => {
      await a.core.deleteNamespace({ name: namespace }).catch(() => undefined);
    },
  };
}

export async function readyPods(namespace: string, selector: string): Promise<number> {
  const pods = await admin().core.listNamespacedPod({ namespace, labelSelector: selector });
  return pods.items.filter((p) => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')).length;
}
