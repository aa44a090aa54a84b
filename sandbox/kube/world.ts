// The sandbox cluster's seeded world: the runbook's Mimir objects in `mimir-production` (hot) and
// `mimir-dr` (a cold DR site: the same objects, deployments at 0 replicas, no HPA), on three kwok
// nodes. Created once, with the admin credentials; an object that exists already is left alone.
import { randomBytes } from 'node:crypto';
import type {
  KubernetesObject,
  V1ConfigMap,
  V1Deployment,
  V1Ingress,
  V1IngressClass,
  V1Namespace,
  V1Node,
  V1PersistentVolume,
  V1PersistentVolumeClaim,
  V1Secret,
  V1Service,
  V1StorageClass,
  V2HorizontalPodAutoscaler,
} from '@kubernetes/client-node';

export const PRODUCTION = 'mimir-production';
export const DR = 'mimir-dr';
/** The DR drills' scratch namespace: empty, pre-created, so the worker never needs to create or delete namespaces. */
export const DRILL = 'mimir-drill';
/** The entry point users resolve (the sandbox's stand-in for DNS): failover repoints it at the DR site. */
export const EDGE = 'mimir-edge';
export const PUBLIC_SERVICE = 'mimir-public';
export const apiHost = (namespace: string) => `mimir-api.${namespace}.svc.cluster.local`;
export const NODES = ['kwok-node-1', 'kwok-node-2', 'kwok-node-3'];
const PART_OF = { 'app.kubernetes.io/part-of': 'mimir' };

function node(name: string, zone: string): V1Node {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name,
      labels: {
        type: 'kwok',
        'kubernetes.io/hostname': name,
        'kubernetes.io/os': 'linux',
        'kubernetes.io/arch': 'amd64',
        'node-role.kubernetes.io/worker': '',
        'topology.kubernetes.io/zone': zone,
      },
      // kwok manages the nodes carrying this annotation (kwok --manage-nodes-with-annotation-selector).
      annotations: { 'kwok.x-k8s.io/node': 'fake', 'node.alpha.kubernetes.io/ttl': '0' },
    },
    status: { allocatable: { cpu: '8', memory: '32Gi', pods: '110' }, capacity: { cpu: '8', memory: '32Gi', pods: '110' } },
  };
}

function deployment(namespace: string, name: string, replicas: number, memory: { request: string; limit: string }): V1Deployment {
  const labels = { app: name, ...PART_OF };
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace, labels },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels },
        spec: {
          containers: [
            {
              name,
              image: `ghcr.io/mimir-news/${name}:2.4.1`,
              ports: name === 'mimir-api' ? [{ name: 'http', containerPort: 8000 }] : [],
              envFrom: [{ configMapRef: { name: 'mimir-config' } }],
              env: [{ name: 'MASTER_KEY', valueFrom: { secretKeyRef: { name: 'api-keys', key: 'master-key' } } }],
              resources: { requests: { cpu: '250m', memory: memory.request }, limits: { memory: memory.limit } },
            },
          ],
        },
      },
    },
  };
}

function site(namespace: string, host: string, hot: boolean): KubernetesObject[] {
  const ns: V1Namespace = { apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace, labels: { ...PART_OF } } };
  const config: V1ConfigMap = {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'mimir-config', namespace, labels: PART_OF },
    data: { LOG_LEVEL: 'info', DATABASE_NAME: 'mimir_news', CACHE_ENABLED: 'false', CACHE_TTL: '60' },
  };
  const keys: V1Secret = {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'api-keys', namespace, labels: PART_OF },
    type: 'Opaque',
    stringData: { 'master-key': randomBytes(32).toString('base64') },
  };
  const service: V1Service = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'mimir-api', namespace, labels: { app: 'mimir-api', ...PART_OF } },
    spec: { selector: { app: 'mimir-api' }, ports: [{ name: 'http', port: 80, targetPort: 'http' }] },
  };
  const ingress: V1Ingress = {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'Ingress',
    metadata: { name: 'mimir-ingress', namespace, labels: PART_OF },
    spec: {
      ingressClassName: 'nginx',
      rules: [
        {
          host,
          http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'mimir-api', port: { number: 80 } } } }] },
        },
      ],
    },
  };
  const replicas = (n: number) => (hot ? n : 0);
  return [
    ns,
    config,
    keys,
    deployment(namespace, 'mimir-api', replicas(SEEDED_REPLICAS['mimir-api']!), { request: '512Mi', limit: '1Gi' }),
    deployment(namespace, 'mimir-worker', replicas(SEEDED_REPLICAS['mimir-worker']!), { request: '256Mi', limit: '512Mi' }),
    service,
    ingress,
  ];
}

/** The edge namespace and its ExternalName Service, pointing at production. */
export function edgeObjects(): KubernetesObject[] {
  const ns: V1Namespace = { apiVersion: 'v1', kind: 'Namespace', metadata: { name: EDGE, labels: { ...PART_OF } } };
  const svc: V1Service = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: PUBLIC_SERVICE, namespace: EDGE, labels: PART_OF },
    spec: { type: 'ExternalName', externalName: apiHost(PRODUCTION) },
  };
  return [ns, svc];
}

/** Seeded replicas of each production deployment (the DR site's are 0). */
export const SEEDED_REPLICAS: Record<string, number> = { 'mimir-api': 3, 'mimir-worker': 2 };

export function worldObjects(): KubernetesObject[] {
  const ingressClass: V1IngressClass = {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'IngressClass',
    metadata: { name: 'nginx', annotations: { 'ingressclass.kubernetes.io/is-default-class': 'true' } },
    spec: { controller: 'k8s.io/ingress-nginx' },
  };
  // Volumes expand only when bound and their class allows it, so the claim is bound to a static volume.
  const storageClass: V1StorageClass = {
    apiVersion: 'storage.k8s.io/v1',
    kind: 'StorageClass',
    metadata: { name: 'standard', annotations: { 'storageclass.kubernetes.io/is-default-class': 'true' } },
    provisioner: 'kubernetes.io/no-provisioner',
    allowVolumeExpansion: true,
    volumeBindingMode: 'Immediate',
    reclaimPolicy: 'Retain',
  };
  const claim = 'postgres-data-postgres-primary-0';
  const volume: V1PersistentVolume = {
    apiVersion: 'v1',
    kind: 'PersistentVolume',
    metadata: { name: 'postgres-data-primary', labels: PART_OF },
    spec: {
      capacity: { storage: '100Gi' },
      accessModes: ['ReadWriteOnce'],
      storageClassName: 'standard',
      persistentVolumeReclaimPolicy: 'Retain',
      hostPath: { path: '/var/lib/mimir/postgres' },
      claimRef: { namespace: PRODUCTION, name: claim },
    },
  };
  const pvc: V1PersistentVolumeClaim = {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: { name: claim, namespace: PRODUCTION, labels: { app: 'postgres', ...PART_OF } },
    spec: { accessModes: ['ReadWriteOnce'], storageClassName: 'standard', resources: { requests: { storage: '100Gi' } } },
  };
  const hpa: V2HorizontalPodAutoscaler = {
    apiVersion: 'autoscaling/v2',
    kind: 'HorizontalPodAutoscaler',
    metadata: { name: 'mimir-api', namespace: PRODUCTION, labels: PART_OF },
    spec: {
      scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'mimir-api' },
      minReplicas: 3,
      maxReplicas: 10,
      metrics: [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 70 } } }],
    },
  };
  return [
    ...edgeObjects(),
    ...NODES.map((n, i) => node(n, `sandbox-${'abc'[i]}`)),
    ingressClass,
    storageClass,
    ...site(PRODUCTION, 'mimir.example.com', true),
    ...site(DR, 'dr.mimir.example.com', false),
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: DRILL, labels: { ...PART_OF, 'mimir-recovery.io/scratch': 'true' } } },
    hpa,
    volume,
    pvc,
  ];
}

/** Creates every world object that does not exist yet (409 Conflict counts as done). */
export async function seedWorld(kubeconfigFile: string): Promise<number> {
  const k8s = await import('@kubernetes/client-node');
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(kubeconfigFile);
  const api = k8s.KubernetesObjectApi.makeApiClient(kc);
  let created = 0;
  for (const obj of worldObjects()) {
    try {
      await api.create(obj);
      created++;
    } catch (e) {
      if (!(e instanceof k8s.ApiException && e.code === 409)) throw e;
    }
  }
  return created;
}

/** A few minutes of plausible container output in CRI log format, which kwok serves as pod logs. */
export function podLog(container: 'mimir-api' | 'default', now = Date.now()): string {
  const lines =
    container === 'mimir-api'
      ? [
          'INFO  starting mimir-api 2.4.1 on :8000',
          'INFO  connected to postgres mimir_news (pool 20)',
          'INFO  GET /api/health 200 2ms',
          'INFO  GET /api/articles 200 14ms',
          'INFO  GET /api/articles?page=2 200 18ms',
          'WARN  POST /api/login 401 invalid credentials user=guest',
          'INFO  GET /api/articles/48213 200 9ms',
          'ERROR GET /api/articles 503 database connection timeout after 5000ms',
          'WARN  GET /api/admin/users 403 forbidden',
          'INFO  PUT /api/articles/48213 200 31ms',
          'ERROR POST /api/scrape 500 upstream feed returned malformed XML',
          'INFO  DELETE /api/sessions/9f1c 204 4ms',
          'ERROR GET /api/search 504 gateway timeout',
          'INFO  GET /api/health 200 1ms',
        ]
      : ['INFO  worker started, queue=scrape concurrency=4', 'INFO  scraped 120 articles from 8 feeds', 'INFO  idle'];
  return lines.map((l, i) => `${new Date(now - (lines.length - i) * 20_000).toISOString()} stdout F ${l}\n`).join('');
}
