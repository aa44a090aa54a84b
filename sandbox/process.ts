// Process plumbing for the sandbox: pid files that survive a killed run, detached daemons, ports.
import { spawn, execFile } from 'node:child_process';
import { openSync, readFileSync, writeFileSync, rmSync, existsSync, closeSync } from 'node:fs';
import { connect } from 'node:net';
import { promisify } from 'node:util';

export const execFileP = promisify(execFile);

/** Runs a command, returning stdout; on failure the error names the command, exit code and stderr tail. */
export async function run(
  cmd: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string; input?: string; timeoutMs?: number } = {},
): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      env: opts.env ?? process.env,
      cwd: opts.cwd,
      stdio: ['pipe', 'pipe', 'pipe'],
      timeout: opts.timeoutMs ?? 300_000,
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.stdin.on('error', () => undefined); // EPIPE when the child exits before reading its input; its exit code tells
    child.on('close', (code, signal) => {
      if (code === 0) resolve(out);
      else reject(new Error(`${cmd} ${args.join(' ')} failed (${signal ?? `exit ${code}`}): ${(err || out).trim().slice(-2000)}`));
    });
    child.stdin.end(opts.input ?? '');
  });
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The command line of a live process, or undefined. Used so a recycled pid is never mistaken for ours. */
export function cmdline(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  } catch {
    return undefined;
  }
}

/** The pid recorded in `pidFile` if that process is alive and its command line contains `marker`. */
export function livePid(pidFile: string, marker: string): number | undefined {
  if (!existsSync(pidFile)) return undefined;
  const pid = Number.parseInt(readFileSync(pidFile, 'utf8').split('\n')[0] ?? '', 10);
  if (Number.isInteger(pid) && pid > 0 && isAlive(pid) && (cmdline(pid) ?? '').includes(marker)) return pid;
  rmSync(pidFile, { force: true }); // stale: left behind by a killed run
  return undefined;
}

/** Starts a daemon in its own process group, output appended to `logFile`, pid written to `pidFile`. */
export function spawnDaemon(
  cmd: string,
  args: string[],
  opts: { logFile: string; pidFile: string; env?: NodeJS.ProcessEnv; cwd?: string },
): number {
  const fd = openSync(opts.logFile, 'a');
  const child = spawn(cmd, args, {
    detached: true,
    stdio: ['ignore', fd, fd],
    env: opts.env ?? process.env,
    cwd: opts.cwd,
  });
  closeSync(fd);
  if (child.pid === undefined) throw new Error(`could not start ${cmd}`);
  child.unref();
  writeFileSync(opts.pidFile, `${child.pid}\n`);
  return child.pid;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Sends SIGTERM to the process group, then SIGKILL after `graceMs`. */
export async function stopPid(pid: number, graceMs = 10_000): Promise<void> {
  const signal = (sig: NodeJS.Signals) => {
    try {
      process.kill(-pid, sig);
    } catch {
      try {
        process.kill(pid, sig);
      } catch {
        /* already gone */
      }
    }
  };
  signal('SIGTERM');
  const until = Date.now() + graceMs;
  while (isAlive(pid) && Date.now() < until) await sleep(100);
  if (isAlive(pid)) signal('SIGKILL');
  while (isAlive(pid)) await sleep(50);
}

export function portOpen(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host });
    socket.setTimeout(1000);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

export async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number, logFile?: string) {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (await check()) return;
    await sleep(200);
  }
  const tail = logFile && existsSync(logFile) ? `\n--- ${logFile} (tail) ---\n${readFileSync(logFile, 'utf8').slice(-3000)}` : '';
  throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${what}${tail}`);
}
