// The pre-built workflow bundle (production mode): built once, loaded by the worker at start, so a
// worker restart takes seconds and runs exactly the code that was bundled.
import { bundleWorkflowCode } from '@temporalio/worker';
import { mkdirSync, readdirSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const WORKFLOWS_PATH = join(ROOT, 'workflows', 'index.ts');
export const DEFAULT_BUNDLE_PATH = join(ROOT, 'dist', 'workflow-bundle.js');

function newestSource(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestSource(p) : statSync(p).mtimeMs);
  }
  return newest;
}

/** Builds the bundle (or keeps it when `ifStale` and no workflow source is newer); returns its path. */
export async function buildWorkflowBundle(opts: { out?: string; ifStale?: boolean } = {}): Promise<string> {
  const out = opts.out ?? DEFAULT_BUNDLE_PATH;
  const inputs = Math.max(newestSource(join(ROOT, 'workflows')), statSync(join(ROOT, 'package-lock.json')).mtimeMs);
  if (opts.ifStale && existsSync(out) && statSync(out).mtimeMs > inputs) return out;
  const { code } = await bundleWorkflowCode({
    workflowsPath: WORKFLOWS_PATH,
    logger: quietLogger,
    webpackConfigHook: (config) => ({ ...config, mode: 'production' }),
  });
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, code);
  return out;
}

const noop = () => undefined;
const quietLogger = { log: noop, trace: noop, debug: noop, info: noop, warn: console.warn, error: console.error };

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  console.log(await buildWorkflowBundle({ out: process.argv[2] }));
}
