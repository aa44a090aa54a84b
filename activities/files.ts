// Files written by activities (captured logs, state, evidence): written once, atomically (a temp
// file renamed into place, so a crash never leaves a partial artefact under the final name), hashed.
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

export interface WrittenFile {
  file: string;
  bytes: number;
  sha256: string;
}

export function sha256File(file: string): Promise<WrittenFile> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream(file)
      .on('data', (d) => hash.update(d))
      .on('error', reject)
      .on('end', () => resolve({ file, bytes: statSync(file).size, sha256: hash.digest('hex') }));
  });
}

/** Writes `content` to `file` atomically; if `file` already exists (a retry), keeps it and returns its hash. */
export async function writeOnce(file: string, content: string | Buffer): Promise<WrittenFile> {
  if (existsSync(file)) return sha256File(file);
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.partial-${process.pid}`;
  writeFileSync(tmp, content);
  renameSync(tmp, file);
  return { file, bytes: Buffer.byteLength(content), sha256: createHash('sha256').update(content).digest('hex') };
}
