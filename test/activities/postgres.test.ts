// The PostgreSQL activities against the real primary: exact, idempotent termination and redaction.
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import assert from 'node:assert/strict';
import { createActivities } from '../../activities/index.js';
import { closeAll, openSessions, present } from '../helpers/postgres.js';
import { sandboxProfile, uniqueId } from '../helpers/temporal.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('postgres activities', () => {
  const acts = createActivities({ profile: sandboxProfile(), env: process.env });
  const mock = new MockActivityEnvironment({}, { logger: new DefaultLogger('ERROR') }); // gives the activity a Context; the database is real
  const env = { run: <A extends unknown[], R>(fn: (...a: A) => Promise<R>, ...args: A) => mock.run(fn, ...args) as Promise<R> };

  it('terminates a planned session only while it is the same session, and a retry is a no-op', async () => {
    const app = uniqueId('act');
    const sessions = await openSessions(2, app);
    try {
      await sleep(1500);
      const found = (await env.run(acts.findIdleSessions, { site: 'primary', idleForMs: 1000, limit: 50 })).filter(
        (s) => s.application === app,
      );
      assert.equal(found.length, 2);
      const [a, b] = found as [(typeof found)[0], (typeof found)[0]];
      const forged = { pid: b.pid, backendStart: '2001-01-01T00:00:00.000000Z' }; // same pid, another session (pid reuse)
      const first = await env.run(acts.terminateSessions, { site: 'primary', idleForMs: 1000, sessions: [a, forged] });
      assert.deepEqual(first, { terminated: [a.pid], skipped: [{ pid: b.pid, reason: 'already gone' }] });
      assert.deepEqual(await present([a.pid, b.pid]), [b.pid]);
      const retry = await env.run(acts.terminateSessions, { site: 'primary', idleForMs: 1000, sessions: [a] });
      assert.deepEqual(retry, { terminated: [], skipped: [{ pid: a.pid, reason: 'already gone' }] });
    } finally {
      await closeAll(sessions);
    }
  });

  it('a wrong password is a non-retryable ConfigError that does not show the password', async () => {
    const url = new URL(process.env.MIMIR_PRIMARY_DATABASE_URL!);
    url.password = 'not-the-Secret-123';
    const bad = createActivities({ profile: sandboxProfile(), env: { ...process.env, MIMIR_PRIMARY_DATABASE_URL: url.toString() } });
    const err = await env.run(bad.checkDatabase, { site: 'primary' }).catch((e: Error) => e);
    assert.ok(err instanceof Error);
    assert.equal(err.name, 'ConfigError');
    assert.match(err.message, /site primary: database mimir_news is unreachable: password authentication failed/);
    assert.ok(!err.message.includes('not-the-Secret-123'));
  });

  it('resolveSite names the unknown site, or the unset variable a site refers to', async () => {
    await assert.rejects(env.run(acts.resolveSite, { site: 'staging' }), {
      name: 'UnknownSiteError',
      message: /site: 'staging' is not defined/,
    });
    const noEnv = createActivities({ profile: sandboxProfile(), env: {} });
    await assert.rejects(env.run(noEnv.resolveSite, { site: 'dr' }), {
      name: 'ConfigError',
      message: 'sites.dr.database.url: environment variable MIMIR_DR_DATABASE_URL is not set on the worker',
    });
    const view = await env.run(acts.resolveSite, { site: 'dr' });
    assert.equal(view.kubernetes.namespace, 'mimir-dr');
    assert.ok(!JSON.stringify(view).includes('postgresql://'), 'the view carries no connection string');
  });
});
