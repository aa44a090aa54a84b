// Headless Chromium (Debian's, installed on demand by sandbox/chromium.ts) driven by playwright-core,
// for tests that use the real Temporal Web UI as a person would.
import { chromium, type Browser } from 'playwright-core';
import { CHROMIUM_ARGS, ensureChromium } from '../../sandbox/chromium.js';

export async function launchBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: await ensureChromium((l) => console.log(`  ${l}`)), args: CHROMIUM_ARGS, headless: true });
}
