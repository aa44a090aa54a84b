// A headless Chromium for the Temporal-UI browser test: the machine's Debian `chromium`, installed
// with apt when no Chromium binary is present (once; later calls find it). playwright-core drives it
// through `executablePath`, so no browser is downloaded by npm.
import { existsSync } from 'node:fs';
import { run } from './process.js';

const CANDIDATES = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome', '/usr/bin/google-chrome-stable'];

/** The flags every run uses: headless, no sandbox (root in CI), and nothing that phones home. */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

const found = () => [process.env.MIMIR_CHROMIUM, ...CANDIDATES].find((p): p is string => !!p && existsSync(p));

/** Returns a Chromium binary, installing Debian's `chromium` package if there is none (needs root). */
export async function ensureChromium(log: (line: string) => void = console.error): Promise<string> {
  const existing = found();
  if (existing) return existing;
  if (process.getuid?.() !== 0)
    throw new Error('no Chromium found: install the Debian package `chromium` (sudo apt-get install chromium), or set MIMIR_CHROMIUM');
  log('mimir: installing Chromium (Debian package chromium) for the browser test');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = () => run('apt-get', ['install', '-y', '--no-install-recommends', 'chromium'], { env, timeoutMs: 900_000 });
  await install().catch(async () => {
    await run('apt-get', ['update'], { env, timeoutMs: 300_000 });
    await install();
  });
  const installed = found();
  if (!installed) throw new Error('apt-get installed chromium, but no Chromium binary was found in /usr/bin');
  return installed;
}
