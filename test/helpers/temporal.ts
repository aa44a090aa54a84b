// Temporal helpers: a client of the test sandbox's dev server, and in-process workers on fresh task
// queues running the real activities against the test sandbox's services.
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { bundleWorkflowCode, NativeConnection, Worker, type WorkflowBundle } from '@temporalio/worker';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { createActivities } from '../../activities/index.js';
import { loadProfile, type Profile } from '../../config/profile.js';
import { SANDBOX_PROFILE } from '../../sandbox/index.js';
import { statusQuery } from '../../workflows/messages.js';
import type { ProcedureStatus } from '../../workflows/types.js';

const FIXTURES = fileURLToPath(new URL('../workflows/fixtures/index.ts', import.meta.url));

let bundle: Promise<WorkflowBundle> | undefined;
/** The workflows and the test fixtures, bundled once per run. */
export function testBundle(): Promise<WorkflowBundle> {
  bundle ??= bundleWorkflowCode({
    workflowsPath: FIXTURES,
    logger: { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error: console.error },
  });
  return bundle;
}

let client: Promise<Client> | undefined;
export function testClient(): Promise<Client> {
  client ??= Connection.connect({ address: process.env.TEMPORAL_ADDRESS }).then((connection) => new Client({ connection }));
  return client;
}

export function sandboxProfile(overrides: Partial<Profile> = {}): Profile {
  return { ...loadProfile(SANDBOX_PROFILE), ...overrides };
}

export interface TestWorker {
  taskQueue: string;
  client: Client;
  /** Runs `fn` while the worker polls, then shuts the worker down. */
  run<T>(fn: () => Promise<T>): Promise<T>;
}

export async function testWorker(opts: { profile?: Profile; env?: NodeJS.ProcessEnv } = {}): Promise<TestWorker> {
  const taskQueue = `test-${randomUUID()}`;
  const connection = await NativeConnection.connect({ address: process.env.TEMPORAL_ADDRESS });
  const worker = await Worker.create({
    connection,
    taskQueue,
    workflowBundle: await testBundle(),
    activities: createActivities({ profile: opts.profile ?? sandboxProfile(), env: { ...process.env, ...opts.env } }),
  });
  return {
    taskQueue,
    client: await testClient(),
    run: async (fn) => {
      try {
        return await worker.runUntil(fn);
      } finally {
        await connection.close();
      }
    },
  };
}

/** Polls the status query until `pred` holds. */
export async function waitForStatus(
  handle: WorkflowHandle,
  pred: (s: ProcedureStatus) => boolean,
  timeoutMs = 30_000,
): Promise<ProcedureStatus> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const s = await handle.query(statusQuery).catch(() => undefined);
    if (s && pred(s)) return s;
    if (Date.now() > until) throw new Error(`status did not reach the expected state in ${timeoutMs}ms: ${JSON.stringify(s)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

export const uniqueId = (prefix: string) => `${prefix}-${randomUUID().slice(0, 8)}`;

/** Asserts that an Update was refused by its validator with a message matching `pattern`. */
export async function assertRefused(p: Promise<unknown>, pattern: RegExp): Promise<void> {
  const err = await p.then(
    () => {
      throw new Error(`expected the update to be refused with ${pattern}`);
    },
    (e: unknown) => e,
  );
  let message = '';
  for (let e: unknown = err; e instanceof Error; e = e.cause) message += ` | ${e.message}`;
  if (!pattern.test(message)) throw new Error(`update refused, but not with ${pattern}:${message}`);
}
