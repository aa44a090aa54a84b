// Replays every committed workflow history against today's workflow code: any non-determinism
// (a reordered step, a changed activity call without patched()) fails CI here.
import { historyFromJSON } from '@temporalio/common/lib/proto-utils.js';
import { Worker } from '@temporalio/worker';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { testBundle } from '../helpers/temporal.js';

const dir = fileURLToPath(new URL('./histories/', import.meta.url));
const files = readdirSync(dir).filter((f) => f.endsWith('.json'));

describe('replay of committed histories', () => {
  it('has histories to replay', () => {
    assert.ok(files.length > 0, `no histories in ${dir}`);
  });
  for (const file of files) {
    it(`replays ${file} deterministically`, async () => {
      const history = historyFromJSON(JSON.parse(readFileSync(dir + file, 'utf8')));
      await Worker.runReplayHistory({ workflowBundle: await testBundle() }, history, file);
    });
  }
});
