// The Mimir Recovery worker: validated configuration, one Runtime logger (JSON lines, redacted),
// the pre-built workflow bundle, every activity, clean shutdown on SIGTERM/SIGINT.
import { DefaultLogger, NativeConnection, Runtime, Worker, makeTelemetryFilterString, type LogEntry } from '@temporalio/worker';
import { existsSync } from 'node:fs';
import { createActivities } from '../activities/index.js';
import { redact } from '../activities/errors.js';
import { WORKFLOWS_PATH } from './bundle.js';
import { loadWorkerConfig, WorkerConfigError, type WorkerConfig } from './config.js';

function jsonLine(entry: LogEntry): void {
  const line = JSON.stringify({
    ts: new Date(Number(entry.timestampNanos / 1_000_000n)).toISOString(),
    level: entry.level,
    msg: entry.message,
    ...entry.meta,
  });
  process.stdout.write(`${redact(line)}\n`);
}

export async function runWorker(config: WorkerConfig): Promise<void> {
  Runtime.install({
    logger: new DefaultLogger(config.logLevel, jsonLine),
    telemetryOptions: {
      logging: { forward: {}, filter: makeTelemetryFilterString({ core: 'WARN' }) },
      ...(config.metricsPort ? { metrics: { prometheus: { bindAddress: `127.0.0.1:${config.metricsPort}` } } } : {}),
    },
  });
  const log = Runtime.instance().logger;
  const connection = await NativeConnection.connect(config.temporal.connectionOptions);
  const bundle = config.workflowBundle;
  if (bundle && !existsSync(bundle))
    throw new WorkerConfigError(`MIMIR_WORKFLOW_BUNDLE: ${bundle} does not exist; build it with npm run build:bundle`);
  const worker = await Worker.create({
    connection,
    namespace: config.temporal.namespace ?? 'default',
    taskQueue: config.taskQueue,
    ...(bundle ? { workflowBundle: { codePath: bundle } } : { workflowsPath: WORKFLOWS_PATH }),
    activities: createActivities({ profile: config.profile, env: process.env }),
    shutdownGraceTime: config.shutdownGrace as `${number}s`,
  });
  const running = worker.run();
  log.info('worker running', {
    taskQueue: config.taskQueue,
    namespace: config.temporal.namespace ?? 'default',
    address: config.temporal.connectionOptions.address,
    profile: config.profilePath,
    bundle: bundle ?? '(bundled at start from workflows/)',
  });
  try {
    await running; // resolves after SIGTERM/SIGINT: in-flight activities get shutdownGraceTime
  } finally {
    log.info('worker stopped');
    await connection.close();
  }
}

let config: WorkerConfig;
try {
  config = loadWorkerConfig();
} catch (err) {
  console.error(`mimir-recovery worker: ${(err as Error).message}`);
  process.exit(2);
}
await runWorker(config).catch((err: Error) => {
  console.error(`mimir-recovery worker failed: ${redact(err.stack ?? err.message)}`);
  process.exit(1);
});
