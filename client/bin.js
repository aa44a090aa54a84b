#!/usr/bin/env node
// `mimir-recovery`: runs the TypeScript CLI on Node 24 (re-executing with the project's cached
// Node 24 when the machine's node is older) through tsx.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const cli = join(dirname(fileURLToPath(import.meta.url)), 'cli.ts');
const major = Number(process.versions.node.split('.')[0]);
let node = process.execPath;
if (major < 24) {
  const cache = process.env.MIMIR_CACHE_DIR ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'mimir-recovery');
  node = join(cache, 'node24', 'node_modules', 'node', 'bin', 'node');
  if (!existsSync(node)) {
    console.error(`mimir-recovery needs Node 24 (this is ${process.version}); run npm start once to install it`);
    process.exit(2);
  }
}
const r = spawnSync(node, ['--import', import.meta.resolve('tsx'), cli, ...process.argv.slice(2)], { stdio: 'inherit' });
process.exit(r.status ?? 1);
