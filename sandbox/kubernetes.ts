// The sandbox's Kubernetes control plane: etcd, kube-apiserver, kube-controller-manager and
// kube-scheduler of Kubernetes v1.36.3 (etcd at the version Kubernetes pins, 3.6.8), built from Go
// modules by the recipe in sandbox/kube/go.mod, and kwok (sandbox/kube/kwok/go.mod) playing the
// kubelets of three nodes. TLS and RBAC are on, as in kwokctl's binary runtime: a private CA signs
// every component's certificate. Binaries are cached per version; all state is <stateDir>/kubernetes.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import type { SandboxInstance } from './instance.js';
import { execFileP, livePid, portOpen, run, sleep, spawnDaemon, stopPid, waitFor } from './process.js';
import { DR, NODES, podLog, PRODUCTION, seedWorld } from './kube/world.js';

export const KUBERNETES_VERSION = 'v1.36.3';
export const KUBE_CONTEXT = 'mimir-sandbox';
const RECIPE = join(dirname(fileURLToPath(import.meta.url)), 'kube');

/** Each binary: the Go module (directory) whose go.mod pins it, and its main package. */
const SOURCES = {
  etcd: { module: RECIPE, pkg: 'go.etcd.io/etcd/server/v3' },
  'kube-apiserver': { module: RECIPE, pkg: 'k8s.io/kubernetes/cmd/kube-apiserver' },
  'kube-controller-manager': { module: RECIPE, pkg: 'k8s.io/kubernetes/cmd/kube-controller-manager' },
  'kube-scheduler': { module: RECIPE, pkg: 'k8s.io/kubernetes/cmd/kube-scheduler' },
  kubectl: { module: RECIPE, pkg: 'k8s.io/kubernetes/cmd/kubectl' },
  kwok: { module: join(RECIPE, 'kwok'), pkg: 'sigs.k8s.io/kwok/cmd/kwok' },
} as const;
type Tool = keyof typeof SOURCES;

export function kubeBinDir(inst: SandboxInstance): string {
  return join(inst.cacheDir, `kube-${KUBERNETES_VERSION}`, 'bin');
}

const bin = (inst: SandboxInstance, tool: Tool) => join(kubeBinDir(inst), tool);

export function kubeconfigPath(inst: SandboxInstance): string {
  return join(inst.stateDir, 'kubernetes', 'kubeconfig');
}

function kubePaths(inst: SandboxInstance) {
  const dir = join(inst.stateDir, 'kubernetes');
  const pki = join(dir, 'pki');
  return {
    dir,
    pki,
    pkiDone: join(pki, 'complete'),
    etcdData: join(dir, 'etcd'),
    seeded: join(dir, 'seeded'),
    kwokLogs: join(dir, 'kwok-logs.yaml'),
    podLogs: join(dir, 'pod-logs'),
    kubeconfig: kubeconfigPath(inst),
    componentKubeconfig: (user: string) => join(dir, `${user}.kubeconfig`),
  };
}

// --- build -----------------------------------------------------------------------------------

/** `-X` flags that make the binaries report the release, as Kubernetes' own build (hack/lib/version.sh) does. */
function versionLdflags(): string {
  const [major, minor] = KUBERNETES_VERSION.slice(1).split('.');
  const vars = { gitVersion: KUBERNETES_VERSION, gitMajor: major, gitMinor: minor, gitTreeState: 'clean' };
  const pkgs = ['k8s.io/component-base/version', 'k8s.io/client-go/pkg/version'];
  return pkgs.flatMap((p) => Object.entries(vars).map(([k, v]) => `-X ${p}.${k}=${v}`)).join(' ');
}

/** Holds an exclusive lock file while `fn` runs; a lock whose holder died is taken over. */
async function withLock<T>(file: string, fn: () => Promise<T>): Promise<T> {
  for (let told = false; ;) {
    try {
      writeFileSync(file, `${process.pid}\n`, { flag: 'wx' });
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const holder = livePid(file, ''); // removes the file when its holder is gone
    if (holder !== undefined && !told) {
      console.error(`mimir: waiting for process ${holder}, which is building the Kubernetes binaries`);
      told = true;
    }
    await sleep(holder === undefined ? 0 : 2000);
  }
  try {
    return await fn();
  } finally {
    rmSync(file, { force: true });
  }
}

/**
 * Builds the binaries missing from the cache with the Go toolchain (once: minutes on a cold module
 * cache), each into a private directory and then renamed into place, so a binary present in the
 * cache is always complete. The lock only saves a second build; correctness does not depend on it.
 */
export async function ensureKubeBinaries(inst: SandboxInstance): Promise<string> {
  const dir = kubeBinDir(inst);
  const missing = () => (Object.keys(SOURCES) as Tool[]).filter((t) => !existsSync(bin(inst, t)));
  if (missing().length === 0) return dir;
  mkdirSync(dir, { recursive: true });
  await withLock(join(dirname(dir), 'build.lock'), async () => {
    const todo = missing();
    if (todo.length === 0) return;
    const tmp = join(dirname(dir), `build.tmp.${process.pid}`);
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp);
    const env = { ...process.env, CGO_ENABLED: '0', GOFLAGS: '-buildvcs=false -mod=readonly' };
    for (const tool of todo) {
      const started = Date.now();
      console.error(`mimir: building ${tool} (Kubernetes ${KUBERNETES_VERSION} recipe in sandbox/kube) into ${dir}`);
      const ldflags = `-s -w${tool === 'etcd' || tool === 'kwok' ? '' : ` ${versionLdflags()}`}`;
      const { module, pkg } = SOURCES[tool];
      await run('go', ['build', '-trimpath', '-ldflags', ldflags, '-o', join(tmp, tool), pkg], {
        cwd: module,
        env,
        timeoutMs: 3_600_000,
      }).catch((e: NodeJS.ErrnoException) => {
        throw e.code === 'ENOENT' ? new Error('the Kubernetes sandbox is built from source: install Go 1.26 or newer (`go` on PATH)') : e;
      });
      renameSync(join(tmp, tool), bin(inst, tool));
      console.error(`mimir: built ${tool} in ${((Date.now() - started) / 1000).toFixed(0)}s`);
    }
    rmSync(tmp, { recursive: true, force: true });
  });
  return dir;
}

// --- certificates and kubeconfigs ----------------------------------------------------------------

interface CertSpec {
  name: string;
  subject: string;
  usage: 'serverAuth' | 'clientAuth' | 'serverAuth,clientAuth';
  sans?: string;
}

function certSpecs(): CertSpec[] {
  const dns = ['localhost', 'kubernetes', 'kubernetes.default', 'kubernetes.default.svc', 'kubernetes.default.svc.cluster.local'];
  return [
    {
      name: 'apiserver',
      subject: '/CN=kube-apiserver',
      usage: 'serverAuth',
      sans: [...dns.map((d) => `DNS:${d}`), 'IP:127.0.0.1', 'IP:10.96.0.1'].join(','),
    },
    { name: 'admin', subject: '/O=system:masters/CN=mimir-admin', usage: 'clientAuth' },
    // The controller manager is privileged, as in kwokctl: per-controller service-account credentials
    // (kubeadm's --use-service-account-credentials) cost 4 s of every cold start, minting ~40 tokens.
    { name: 'kube-controller-manager', subject: '/O=system:masters/CN=system:kube-controller-manager', usage: 'clientAuth' },
    { name: 'kube-scheduler', subject: '/CN=system:kube-scheduler', usage: 'clientAuth' },
    // kwok serves the kubelet API of every node on 127.0.0.1 and talks to the apiserver as an admin.
    { name: 'kwok', subject: '/O=system:masters/CN=kwok', usage: 'serverAuth,clientAuth', sans: 'IP:127.0.0.1,DNS:localhost' },
  ];
}

// execFile, not run(): openssl exits fast enough to race run()'s write to its stdin (EPIPE).
const openssl = (args: string[]) => execFileP('openssl', args);
const ecKey = (file: string) => openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', file]);

/** Makes the CA, the service-account key pair and every certificate, unless a complete set exists. */
async function ensurePki(inst: SandboxInstance): Promise<boolean> {
  const p = kubePaths(inst);
  const f = (name: string) => join(p.pki, name);
  const files = ['ca.crt', 'ca.key', 'sa.key', 'sa.pub', ...certSpecs().flatMap((c) => [`${c.name}.crt`, `${c.name}.key`])];
  if (existsSync(p.pkiDone) && files.every((file) => existsSync(f(file)))) return false;
  rmSync(p.pki, { recursive: true, force: true }); // half-written by a killed run, or damaged: nothing in it is trusted
  mkdirSync(p.pki, { recursive: true, mode: 0o700 });
  await ecKey(f('ca.key'));
  await openssl([
    'req',
    '-x509',
    '-new',
    '-key',
    f('ca.key'),
    '-subj',
    `/CN=mimir-sandbox-ca-${inst.name}`,
    '-days',
    '3650',
    '-out',
    f('ca.crt'),
  ]);
  await ecKey(f('sa.key'));
  await openssl(['pkey', '-in', f('sa.key'), '-pubout', '-out', f('sa.pub')]);
  for (const c of certSpecs()) {
    await ecKey(f(`${c.name}.key`));
    await openssl(['req', '-new', '-key', f(`${c.name}.key`), '-subj', c.subject, '-out', f(`${c.name}.csr`)]);
    const ext = [
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature',
      `extendedKeyUsage=${c.usage}`,
      ...(c.sans ? [`subjectAltName=${c.sans}`] : []),
    ];
    writeFileSync(f(`${c.name}.ext`), ext.join('\n') + '\n');
    const serial = `0x1${randomBytes(15).toString('hex')}`;
    const ca = ['-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-set_serial', serial, '-days', '3650'];
    await openssl(['x509', '-req', '-in', f(`${c.name}.csr`), ...ca, '-extfile', f(`${c.name}.ext`), '-out', f(`${c.name}.crt`)]);
    for (const tmp of ['csr', 'ext']) rmSync(f(`${c.name}.${tmp}`));
  }
  writeFileSync(p.pkiDone, new Date().toISOString());
  return true;
}

function writeAtomic(file: string, content: string) {
  const tmp = `${file}.tmp.${process.pid}`;
  writeFileSync(tmp, content, { mode: 0o600 });
  renameSync(tmp, file);
}

function kubeconfig(inst: SandboxInstance, cert: string, user: string): string {
  const pem = (name: string) => readFileSync(join(kubePaths(inst).pki, name)).toString('base64');
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: KUBE_CONTEXT, cluster: { server: apiserverUrl(inst), 'certificate-authority-data': pem('ca.crt') } }],
    users: [{ name: user, user: { 'client-certificate-data': pem(`${cert}.crt`), 'client-key-data': pem(`${cert}.key`) } }],
    contexts: [{ name: KUBE_CONTEXT, context: { cluster: KUBE_CONTEXT, user } }],
    'current-context': KUBE_CONTEXT,
  });
}

/** The user's kubeconfig and one per component, (re)written when missing or when the PKI is new. */
function ensureKubeconfigs(inst: SandboxInstance, pkiIsNew: boolean) {
  const p = kubePaths(inst);
  const files: [string, string, string][] = [
    [p.kubeconfig, 'admin', 'mimir-admin'],
    ...(['kube-controller-manager', 'kube-scheduler', 'kwok'] as const).map((c): [string, string, string] => [
      p.componentKubeconfig(c),
      c,
      c,
    ]),
  ];
  for (const [file, cert, user] of files) if (pkiIsNew || !existsSync(file)) writeAtomic(file, kubeconfig(inst, cert, user));
}

// --- daemons ---------------------------------------------------------------------------------------

export function apiserverUrl(inst: SandboxInstance): string {
  return `https://127.0.0.1:${inst.ports.kubeApiserver}`;
}

interface Daemon {
  name: Tool;
  args: string[];
  /** An argument unique to this daemon of this instance: how a live pid is recognised as ours. */
  marker: string;
  ports: number[];
}

function daemons(inst: SandboxInstance): Daemon[] {
  const p = kubePaths(inst);
  const pki = (f: string) => join(p.pki, f);
  const { etcdClient, etcdPeer, kubeApiserver, kwokServer } = inst.ports;
  const etcd = `--data-dir=${p.etcdData}`;
  const apiserver = `--tls-cert-file=${pki('apiserver.crt')}`;
  const kubeconfigArg = (c: string) => `--kubeconfig=${p.componentKubeconfig(c)}`;
  return [
    {
      name: 'etcd',
      marker: etcd,
      ports: [etcdClient, etcdPeer],
      args: [
        etcd,
        '--name=mimir-sandbox',
        `--listen-client-urls=http://127.0.0.1:${etcdClient}`,
        `--advertise-client-urls=http://127.0.0.1:${etcdClient}`,
        `--listen-peer-urls=http://127.0.0.1:${etcdPeer}`,
        `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeer}`,
        `--initial-cluster=mimir-sandbox=http://127.0.0.1:${etcdPeer}`,
        '--auto-compaction-retention=1',
        '--unsafe-no-fsync=true', // a sandbox: speed over durability; a lost write is recovered by reseeding
        '--log-level=warn',
      ],
    },
    {
      name: 'kube-apiserver',
      marker: apiserver,
      ports: [kubeApiserver],
      args: [
        apiserver,
        `--tls-private-key-file=${pki('apiserver.key')}`,
        `--etcd-servers=http://127.0.0.1:${etcdClient}`,
        '--bind-address=127.0.0.1',
        '--advertise-address=127.0.0.1',
        '--endpoint-reconciler-type=none', // the `kubernetes` Service's endpoint would be 127.0.0.1, which Endpoints refuse
        `--secure-port=${kubeApiserver}`,
        `--client-ca-file=${pki('ca.crt')}`,
        `--service-account-key-file=${pki('sa.pub')}`,
        `--service-account-signing-key-file=${pki('sa.key')}`,
        '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
        '--service-cluster-ip-range=10.96.0.0/16',
        '--authorization-mode=Node,RBAC',
        '--enable-admission-plugins=NodeRestriction',
        '--allow-privileged=true',
        // Pod logs: the apiserver calls the node's kubelet port, which is kwok's server on 127.0.0.1.
        '--kubelet-preferred-address-types=InternalIP',
        `--kubelet-certificate-authority=${pki('ca.crt')}`,
        `--kubelet-client-certificate=${pki('admin.crt')}`,
        `--kubelet-client-key=${pki('admin.key')}`,
        '--profiling=false',
      ],
    },
    {
      name: 'kwok',
      marker: kubeconfigArg('kwok'),
      ports: [kwokServer],
      args: [
        kubeconfigArg('kwok'),
        `--config=${join(RECIPE, 'kwok-stages.yaml')}`,
        `--config=${p.kwokLogs}`,
        '--manage-all-nodes=false',
        '--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake',
        '--node-ip=127.0.0.1',
        `--node-port=${kwokServer}`,
        `--server-address=127.0.0.1:${kwokServer}`,
        `--tls-cert-file=${pki('kwok.crt')}`,
        `--tls-private-key-file=${pki('kwok.key')}`,
        '--node-lease-duration-seconds=40',
        '--cidr=10.244.0.1/16',
      ],
    },
    {
      name: 'kube-scheduler',
      marker: kubeconfigArg('kube-scheduler'),
      ports: [],
      args: [kubeconfigArg('kube-scheduler'), '--leader-elect=false', '--secure-port=0'],
    },
    {
      name: 'kube-controller-manager',
      marker: kubeconfigArg('kube-controller-manager'),
      ports: [],
      args: [
        kubeconfigArg('kube-controller-manager'),
        '--leader-elect=false',
        '--secure-port=0',
        `--service-account-private-key-file=${pki('sa.key')}`,
        `--root-ca-file=${pki('ca.crt')}`,
        `--cluster-signing-cert-file=${pki('ca.crt')}`,
        `--cluster-signing-key-file=${pki('ca.key')}`,
        '--cluster-name=mimir-sandbox',
      ],
    },
  ];
}

const pidFile = (inst: SandboxInstance, d: Daemon) => join(kubePaths(inst).dir, `${d.name}.pid`);
const logFile = (inst: SandboxInstance, d: Daemon) => join(kubePaths(inst).dir, `${d.name}.log`);
const livePidOf = (inst: SandboxInstance, d: Daemon) => livePid(pidFile(inst, d), d.marker);

async function startDaemon(inst: SandboxInstance, d: Daemon): Promise<boolean> {
  if (livePidOf(inst, d) !== undefined) return false;
  for (const port of d.ports) {
    if (await portOpen(port)) {
      throw new Error(
        `port ${port} is taken by a process that is not this sandbox's ${d.name}; stop it (see: ss -ltnp 'sport = :${port}')`,
      );
    }
  }
  spawnDaemon(bin(inst, d.name), d.args, { logFile: logFile(inst, d), pidFile: pidFile(inst, d) });
  return true;
}

/** Waits for `check`, failing at once (with its log's tail) if one of the daemons exits meanwhile. */
function waitDaemons(inst: SandboxInstance, ds: Daemon[], what: string, check: () => Promise<boolean>, timeoutMs: number) {
  return waitFor(
    what,
    async () => {
      for (const d of ds) {
        if (livePidOf(inst, d) !== undefined) continue;
        const log = logFile(inst, d);
        const tail = existsSync(log) ? readFileSync(log, 'utf8').slice(-3000) : '';
        throw new Error(`${d.name} exited at start; see ${log}\n--- ${log} (tail) ---\n${tail}`);
      }
      return check();
    },
    timeoutMs,
    logFile(inst, ds[0]!),
  );
}

async function etcdHealthy(inst: SandboxInstance): Promise<boolean> {
  try {
    const res = await fetch(`http://127.0.0.1:${inst.ports.etcdClient}/health`, { signal: AbortSignal.timeout(2000) });
    return res.ok && ((await res.json()) as { health?: string }).health === 'true';
  } catch {
    return false;
  }
}

/** GET on the apiserver with the admin certificate; status 0 when it cannot be reached. */
function apiGet(inst: SandboxInstance, path: string): Promise<{ status: number; body: string }> {
  const pki = (f: string) => readFileSync(join(kubePaths(inst).pki, f));
  return new Promise((resolve) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: inst.ports.kubeApiserver,
        path,
        ca: pki('ca.crt'),
        cert: pki('admin.crt'),
        key: pki('admin.key'),
        timeout: 5000,
      },
      (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        res.on('error', () => resolve({ status: 0, body: '' }));
      },
    );
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve({ status: 0, body: '' }));
    req.end();
  });
}

const apiReady = async (inst: SandboxInstance) => (await apiGet(inst, '/readyz')).status === 200;

async function apiList<T>(inst: SandboxInstance, path: string): Promise<T[]> {
  const r = await apiGet(inst, path);
  return r.status === 200 ? (JSON.parse(r.body) as { items: T[] }).items : [];
}

interface NodeView {
  status?: { conditions?: { type: string; status: string }[] };
}
interface DeploymentView {
  spec?: { replicas?: number };
  status?: { replicas?: number; readyReplicas?: number };
}

/** Every kwok node Ready, and every deployment of the seeded namespaces at its replica count, all ready. */
async function settled(inst: SandboxInstance): Promise<boolean> {
  const nodes = await apiList<NodeView>(inst, '/api/v1/nodes?labelSelector=type%3Dkwok');
  const ready = nodes.filter((n) => n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
  if (ready.length < NODES.length) return false;
  const deployments = (
    await Promise.all([PRODUCTION, DR].map((ns) => apiList<DeploymentView>(inst, `/apis/apps/v1/namespaces/${ns}/deployments`)))
  ).flat();
  return deployments.every(
    (d) => (d.status?.replicas ?? 0) === (d.spec?.replicas ?? 1) && (d.status?.readyReplicas ?? 0) === (d.spec?.replicas ?? 1),
  );
}

/** Starts etcd; data etcd cannot start on (a killed first start, a torn write) is wiped and reseeded. */
async function etcdUp(inst: SandboxInstance, d: Daemon): Promise<'created' | 'started' | 'running'> {
  const p = kubePaths(inst);
  const fresh = !existsSync(join(p.etcdData, 'member'));
  if (fresh) rmSync(p.seeded, { force: true });
  if (!(await startDaemon(inst, d))) {
    await waitDaemons(inst, [d], `etcd on 127.0.0.1:${inst.ports.etcdClient}`, () => etcdHealthy(inst), 30_000);
    return 'running';
  }
  try {
    await waitDaemons(inst, [d], `etcd on 127.0.0.1:${inst.ports.etcdClient}`, () => etcdHealthy(inst), 30_000);
    return fresh ? 'created' : 'started';
  } catch (e) {
    if (fresh || livePidOf(inst, d) !== undefined) throw e; // slow, not broken: leave the data alone
    console.error(`mimir: etcd exits on its data in ${p.etcdData}; wiping it and reseeding the cluster`);
    rmSync(p.etcdData, { recursive: true, force: true });
    return etcdUp(inst, d);
  }
}

/** kwok's log sources: the files kwok serves for `kubectl logs` (all pods share them). */
function writeKwokLogs(inst: SandboxInstance) {
  const p = kubePaths(inst);
  mkdirSync(p.podLogs, { recursive: true });
  const file = (c: 'mimir-api' | 'default') => join(p.podLogs, `${c}.log`);
  for (const c of ['mimir-api', 'default'] as const) if (!existsSync(file(c))) writeAtomic(file(c), podLog(c));
  const clusterLogs = {
    apiVersion: 'kwok.x-k8s.io/v1alpha1',
    kind: 'ClusterLogs',
    metadata: { name: 'mimir-sandbox' },
    spec: {
      logs: [
        { containers: ['mimir-api'], logsFile: file('mimir-api'), follow: true },
        { logsFile: file('default'), follow: true },
      ],
    },
  };
  writeAtomic(p.kwokLogs, stringify(clusterLogs));
}

/** Stops the daemons in two waves (everything on top of etcd at once, then etcd), as each exit can take seconds. */
async function stopAll(inst: SandboxInstance): Promise<boolean> {
  const [etcd, ...rest] = daemons(inst) as [Daemon, ...Daemon[]];
  let stopped = false;
  for (const wave of [rest, [etcd]]) {
    await Promise.all(
      wave.map(async (d) => {
        const pid = livePidOf(inst, d);
        if (pid === undefined) return;
        await stopPid(pid, 15_000);
        rmSync(pidFile(inst, d), { force: true });
        stopped = true;
      }),
    );
  }
  return stopped;
}

export async function kubernetesUp(inst: SandboxInstance): Promise<'created' | 'started' | 'running'> {
  await ensureKubeBinaries(inst);
  const p = kubePaths(inst);
  mkdirSync(p.dir, { recursive: true });
  const pkiIsNew = await ensurePki(inst);
  if (pkiIsNew) await stopAll(inst); // daemons of a previous PKI must not outlive it
  ensureKubeconfigs(inst, pkiIsNew);
  const all = daemons(inst);
  const allLive = all.every((d) => livePidOf(inst, d) !== undefined);
  // Daemons outlive a killed run, so a run killed while seeding leaves them up without the seeded marker.
  if (allLive && existsSync(p.seeded) && (await apiReady(inst))) return 'running';

  const [etcd, apiserver, ...rest] = all as [Daemon, Daemon, ...Daemon[]];
  const etcdState = await etcdUp(inst, etcd);
  await startDaemon(inst, apiserver);
  await waitDaemons(inst, [apiserver], `the Kubernetes API server on ${apiserverUrl(inst)}`, () => apiReady(inst), 90_000);
  writeKwokLogs(inst);
  for (const d of rest) await startDaemon(inst, d);
  let state: 'created' | 'started' = etcdState === 'created' ? 'created' : 'started';
  if (!existsSync(p.seeded)) {
    await seedWorld(p.kubeconfig);
    writeFileSync(p.seeded, new Date().toISOString());
    state = 'created';
  }
  await waitDaemons(inst, rest, `${NODES.length} Ready nodes and every deployment ready`, () => settled(inst), 90_000);
  return state;
}

export async function kubernetesDown(inst: SandboxInstance): Promise<boolean> {
  return stopAll(inst);
}

export async function kubernetesStatus(inst: SandboxInstance): Promise<string> {
  const all = daemons(inst);
  const down = all.filter((d) => livePidOf(inst, d) === undefined).map((d) => d.name);
  if (down.length === all.length) return existsSync(kubePaths(inst).seeded) ? 'stopped' : 'not created';
  if (down.length > 0) return `degraded: ${down.join(', ')} not running (see ${kubePaths(inst).dir})`;
  return (await apiReady(inst)) ? `running on ${apiserverUrl(inst)}, context ${KUBE_CONTEXT}` : `unhealthy (see ${kubePaths(inst).dir})`;
}
