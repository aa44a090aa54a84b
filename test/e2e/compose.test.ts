// docker-compose.yml (for users with Docker; no engine runs here): it parses, and every service the
// README names is there with what it needs.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { parse } from 'yaml';

interface Service {
  image?: string;
  build?: string;
  ports?: string[];
  volumes?: string[];
  environment?: Record<string, string>;
}

describe('docker-compose.yml', () => {
  const compose = parse(readFileSync('docker-compose.yml', 'utf8')) as { services: Record<string, Service> };
  const readme = readFileSync('README.md', 'utf8');

  it('names every service the README mentions, each with an image or a build', () => {
    const start = readme.indexOf('## With Docker');
    const section = readme.slice(start, readme.indexOf('\n## ', start + 1));
    const named = [...section.matchAll(/`([a-z-]+)`/g)].map((m) => m[1]!).filter((n) => !n.startsWith('docker'));
    assert.deepEqual(named.sort(), Object.keys(compose.services).sort());
    for (const [name, s] of Object.entries(compose.services)) assert.ok(s.image || s.build, `${name} has an image or a build`);
  });

  it('publishes the addresses the README gives and mounts files that exist', () => {
    assert.ok(compose.services.temporal!.ports!.includes('8233:8233'));
    assert.ok(compose.services.temporal!.ports!.includes('7233:7233'));
    for (const s of Object.values(compose.services)) {
      for (const v of s.volumes ?? []) {
        const src = v.split(':')[0]!;
        if (src.startsWith('./')) assert.ok(existsSync(src), `${src} exists`);
      }
    }
  });

  it('keeps passwords out of the file', () => {
    const text = readFileSync('docker-compose.yml', 'utf8');
    assert.ok(!/^\s*[A-Z_]*PASSWORD:\s*(?!\$\{)\S+/m.test(text), 'passwords come from the environment');
  });
});
