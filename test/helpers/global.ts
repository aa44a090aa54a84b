// Mocha global fixtures: one isolated `test` sandbox per run (`MIMIR_TEST_SANDBOX=test-N` picks another) (own ports, own state directory, so a
// running `npm start` sandbox is untouched), started fresh, with its variables in process.env.
import { DefaultLogger, makeTelemetryFilterString, Runtime } from '@temporalio/worker';
import { sandboxDown, sandboxEnv, sandboxInstance, sandboxUp } from '../../sandbox/index.js';

export const testInstance = sandboxInstance(process.env.MIMIR_TEST_SANDBOX ?? 'test');

export async function mochaGlobalSetup() {
  Runtime.install({
    logger: new DefaultLogger('ERROR'),
    telemetryOptions: { logging: { forward: {}, filter: makeTelemetryFilterString({ core: 'ERROR' }) } },
  });
  if (!process.env.MIMIR_TEST_REUSE_SANDBOX) await sandboxDown(testInstance, { purge: true });
  const started = Date.now();
  await sandboxUp(testInstance, { log: (l) => console.log(`  sandbox: ${l}`) });
  console.log(`  sandbox: ready in ${((Date.now() - started) / 1000).toFixed(1)}s (${testInstance.stateDir})`);
  Object.assign(process.env, sandboxEnv(testInstance));
}

export async function mochaGlobalTeardown() {
  if (!process.env.MIMIR_TEST_KEEP_SANDBOX) await sandboxDown(testInstance);
}
