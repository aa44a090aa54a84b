// Where a sandbox instance keeps its state and which ports it uses. Three instances exist: `dev`
// (what `npm start` runs), `test` (what `npm test` runs) and `bench` (what `npm run bench` runs), so
// neither a test run nor a benchmark ever touches a user's sandbox. `test-1` .. `test-5` are more test
// instances (ports shifted by 100 each) for running several test suites side by side
// (`MIMIR_TEST_SANDBOX=test-2 npx mocha ...`).
import { homedir } from 'node:os';
import { join } from 'node:path';

export interface SandboxPorts {
  temporal: number;
  temporalUi: number;
  temporalHttp: number;
  temporalMetrics: number;
  pgPrimary: number;
  pgDr: number;
  workerMetrics: number;
  kubeApiserver: number;
  etcdClient: number;
  etcdPeer: number;
  kwokServer: number;
  /** Each site's health endpoint (sandbox/health.ts): a small HTTP service that checks its own database. */
  healthPrimary: number;
  healthDr: number;
}

export interface SandboxInstance {
  name: string;
  /** All state of this instance: databases, WAL archive, Temporal's SQLite file, logs, pid files. */
  stateDir: string;
  /** Installed tools shared by all instances (Node 24, the Temporal CLI). */
  cacheDir: string;
  ports: SandboxPorts;
}

const PORTS: Record<'dev' | 'test' | 'bench', SandboxPorts> = {
  dev: {
    temporal: 7233,
    temporalUi: 8233,
    temporalHttp: 7243,
    temporalMetrics: 7244,
    pgPrimary: 55432,
    pgDr: 55433,
    workerMetrics: 9464,
    kubeApiserver: 6443,
    etcdClient: 2379,
    etcdPeer: 2380,
    kwokServer: 10247,
    healthPrimary: 8480,
    healthDr: 8481,
  },
  test: {
    temporal: 17233,
    temporalUi: 18233,
    temporalHttp: 17243,
    temporalMetrics: 17244,
    pgPrimary: 56432,
    pgDr: 56433,
    workerMetrics: 19464,
    kubeApiserver: 16443,
    etcdClient: 12379,
    etcdPeer: 12380,
    kwokServer: 20247,
    healthPrimary: 18480,
    healthDr: 18481,
  },
  bench: {
    temporal: 27233,
    temporalUi: 28233,
    temporalHttp: 27243,
    temporalMetrics: 27244,
    pgPrimary: 57432,
    pgDr: 57433,
    workerMetrics: 29464,
    kubeApiserver: 26443,
    etcdClient: 22379,
    etcdPeer: 22380,
    kwokServer: 30247,
    healthPrimary: 28480,
    healthDr: 28481,
  },
};

export function cacheDir(): string {
  return process.env.MIMIR_CACHE_DIR ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'mimir-recovery');
}

/** Root of all instances' state. As root it lives where the `postgres` user can reach it (not under /root). */
export function stateRoot(): string {
  if (process.env.MIMIR_STATE_DIR) return process.env.MIMIR_STATE_DIR;
  if (process.getuid?.() === 0) return '/var/lib/mimir-recovery';
  return join(process.env.XDG_STATE_HOME ?? join(homedir(), '.local', 'state'), 'mimir-recovery');
}

export function sandboxInstance(name: string = process.env.MIMIR_SANDBOX ?? 'dev'): SandboxInstance {
  const m = /^(dev|test|bench)$|^test-([1-5])$/.exec(name);
  if (!m) throw new Error(`MIMIR_SANDBOX: unknown sandbox instance '${name}' (use 'dev', 'test', 'bench' or 'test-1' .. 'test-5')`);
  const base = PORTS[(m[1] as 'dev' | 'test' | 'bench' | undefined) ?? 'test'];
  const shift = 100 * Number(m[2] ?? 0);
  const ports = Object.fromEntries(Object.entries(base).map(([k, v]) => [k, v + shift])) as unknown as SandboxPorts;
  return { name, stateDir: join(stateRoot(), name), cacheDir: cacheDir(), ports };
}
