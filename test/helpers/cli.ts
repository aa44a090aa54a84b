// Runs the real CLI and the real worker as separate processes, as a person would.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildWorkflowBundle } from '../../worker/bundle.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** `mimir-recovery <args>` through the package's bin shim. */
export function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [`${ROOT}client/bin.js`, ...args], { env: { ...process.env, ...env }, cwd: ROOT });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

export interface WorkerProcess {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
  /** SIGKILL to the worker and every process it started, as when its container or VM dies. */
  killHard: () => Promise<void>;
}

/** Starts worker/main.ts as its own process and waits until it polls. */
export async function startWorkerProcess(env: NodeJS.ProcessEnv): Promise<WorkerProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', `${ROOT}worker/main.ts`], {
    env: { ...process.env, ...env },
    cwd: ROOT,
    detached: true, // its own process group, so killHard takes its children (pg_restore) with it
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  const until = Date.now() + 60_000;
  while (!out.includes('"worker running"')) {
    if (child.exitCode !== null) throw new Error(`worker exited with ${child.exitCode}:\n${out}`);
    if (Date.now() > until) throw new Error(`worker did not start:\n${out}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const killHard = async () => {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      /* already gone */
    }
    await exited;
  };
  return { child, output: () => out, exited, killHard };
}

/** The production workflow bundle (what `npm start` gives the worker), built into a temp directory. */
export function buildTestBundle(): Promise<string> {
  return buildWorkflowBundle({ out: join(mkdtempSync(join(tmpdir(), 'mimir-bundle-')), 'workflow-bundle.js') });
}

/** The worker processes of a crash test: each `start` replaces one that was killed; `killAll` in after(). */
export function workerFleet(env: () => NodeJS.ProcessEnv) {
  const workers: WorkerProcess[] = [];
  return {
    workers,
    start: async () => {
      const w = await startWorkerProcess(env());
      workers.push(w);
      return w;
    },
    killAll: async () => {
      for (const w of workers) await w.killHard();
    },
  };
}
