// The typed client used by the CLI: connection from Temporal's environment configuration, and the
// operations a person performs on a procedure.
import { Client, Connection, WorkflowUpdateFailedError } from '@temporalio/client';
import { loadClientConnectConfig } from '@temporalio/envconfig';
import { hostname } from 'node:os';
import { approveUpdate, rejectUpdate, retryUpdate, statusQuery } from '../workflows/messages.js';
import type { DecisionRequest, DecisionResult, ProcedureStatus } from '../workflows/types.js';
import { rootMessage } from '../workflows/lib/journal.js';
import { searchAttributes } from '../workflows/lib/search-attributes.js';
import { DEFAULT_TASK_QUEUE } from '../worker/config.js';
import { PROCEDURES } from './procedures.js';

export class UsageError extends Error {
  override name = 'UsageError';
}

export interface MimirClient {
  client: Client;
  close(): Promise<void>;
}

export async function connect(actor: string): Promise<MimirClient> {
  const config = loadClientConnectConfig();
  const connection = await Connection.connect({ ...config.connectionOptions, connectTimeout: '10s' }).catch((e: Error) => {
    const address = config.connectionOptions.address ?? 'localhost:7233';
    throw new Error(`cannot reach Temporal at ${address} (${e.message}); is the sandbox up (npm start) or TEMPORAL_ADDRESS set?`);
  });
  const client = new Client({ connection, namespace: config.namespace ?? 'default', identity: `${actor}@${hostname()}` });
  return { client, close: () => connection.close() };
}

export function taskQueue(): string {
  return process.env.MIMIR_TASK_QUEUE ?? DEFAULT_TASK_QUEUE;
}

/** Validates the input with the procedure's own schema and starts it; returns the workflow ID. */
export async function startProcedure(c: MimirClient, name: string, rawInput: Record<string, unknown>) {
  const def = PROCEDURES[name];
  if (!def) throw new UsageError(`unknown procedure '${name}' (known: ${Object.keys(PROCEDURES).join(', ')})`);
  const parsed = def.schema.safeParse(rawInput);
  if (!parsed.success) {
    throw new UsageError(
      `invalid input for ${name}: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'input'}: ${i.message}`).join('; ')}`,
    );
  }
  const input = rawInput as { site: string; incidentId?: string };
  const workflowId = def.workflowId(input);
  const handle = await c.client.workflow.start(def.workflowType, {
    taskQueue: taskQueue(),
    workflowId,
    args: [rawInput],
    staticSummary: `${name} on ${input.site}${input.incidentId ? ` (${input.incidentId})` : ''}`,
    staticDetails: def.summary,
  });
  return { workflowId: handle.workflowId, runId: handle.firstExecutionRunId };
}

export async function decide(
  c: MimirClient,
  workflowId: string,
  decision: 'approve' | 'reject' | 'retry',
  req: DecisionRequest,
): Promise<DecisionResult> {
  const handle = c.client.workflow.getHandle(workflowId);
  try {
    const update = { approve: approveUpdate, reject: rejectUpdate, retry: retryUpdate }[decision];
    return await handle.executeUpdate(update, { args: [req] });
  } catch (e) {
    if (e instanceof WorkflowUpdateFailedError) throw new UsageError(`refused: ${rootMessage(e)}`);
    throw e;
  }
}

export interface StatusView {
  status: ProcedureStatus;
  execution: string;
  /** Activities running now, with the progress their last heartbeat carried (a restore's items done). */
  running?: { activity: string; attempt: number; progress?: unknown; lastHeartbeat?: string }[];
  result?: unknown;
  failure?: string;
}

export async function status(c: MimirClient, workflowId: string): Promise<StatusView> {
  const handle = c.client.workflow.getHandle(workflowId);
  const description = await handle.describe();
  const status = await handle.query(statusQuery);
  const running = (description.raw.pendingActivities ?? []).map((a) => {
    const payload = a.heartbeatDetails?.payloads?.[0];
    const progress = payload?.data ? (JSON.parse(Buffer.from(payload.data).toString('utf8')) as unknown) : undefined;
    const at = a.lastHeartbeatTime?.seconds;
    return {
      activity: a.activityType?.name ?? '?',
      attempt: a.attempt ?? 1,
      ...(progress !== undefined ? { progress } : {}),
      ...(at ? { lastHeartbeat: new Date(Number(at) * 1000).toISOString() } : {}),
    };
  });
  const view: StatusView = { status, execution: description.status.name, ...(running.length ? { running } : {}) };
  if (description.status.name === 'COMPLETED') view.result = await handle.result();
  if (description.status.name === 'FAILED')
    view.failure = await handle.result().then(
      () => undefined,
      (e: unknown) => rootMessage(e),
    );
  return view;
}

export async function list(c: MimirClient, opts: { all?: boolean; procedure?: string; incident?: string }) {
  const clauses = ['MimirProcedure IS NOT NULL'];
  if (!opts.all) clauses.push(`ExecutionStatus = 'Running'`);
  if (opts.procedure) clauses.push(`MimirProcedure = '${opts.procedure.replaceAll("'", '')}'`);
  if (opts.incident) clauses.push(`MimirIncidentId = '${opts.incident.replaceAll("'", '')}'`);
  const rows: { workflowId: string; procedure: string; site: string; incident: string; phase: string; status: string; started: string }[] =
    [];
  for await (const w of c.client.workflow.list({ query: clauses.join(' AND ') })) {
    const sa = (key: (typeof searchAttributes)[keyof typeof searchAttributes]) => w.typedSearchAttributes.get(key) ?? '';
    rows.push({
      workflowId: w.workflowId,
      procedure: sa(searchAttributes.procedure),
      site: sa(searchAttributes.site),
      incident: sa(searchAttributes.incidentId),
      phase: sa(searchAttributes.phase),
      status: w.status.name,
      started: w.startTime.toISOString(),
    });
    if (rows.length >= 200) break;
  }
  return rows;
}
