// Site profiles and worker configuration: bad input is refused with the field and the fix named.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { loadProfile, missingReferences, parseProfile, ProfileError } from '../../config/profile.js';
import { loadWorkerConfig, WorkerConfigError } from '../../worker/config.js';

const example = readFileSync(new URL('../../config/mimir.example.yaml', import.meta.url), 'utf8');

describe('site profiles and worker configuration', () => {
  it('the example profile carries the seed runbook values', () => {
    const p = parseProfile(example);
    assert.equal(p.sites.primary!.kubernetes.namespace, 'mimir-production');
    assert.deepEqual(p.sites.primary!.kubernetes.deployments, ['mimir-api', 'mimir-worker']);
    assert.equal(p.sites.primary!.database.pod, 'postgres-primary-0');
    assert.equal(p.sites.primary!.database.name, 'mimir_news');
    assert.equal(p.sites.dr!.kubernetes.namespace, 'mimir-dr');
    assert.equal(p.approvals.escalateAfter, '15m');
  });

  it('names every bad field of a malformed profile', () => {
    const bad = example
      .replace('namespace: mimir-production', 'namespace: Mimir_Production')
      .replace(
        'deployments: [mimir-api, mimir-worker]\n      ingress: mimir-ingress\n    database:\n      name: mimir_news\n      pod',
        'deployments: []\n      ingress: mimir-ingress\n    database:\n      name: mimir_news\n      pod',
      )
      .replace('url: { env: MIMIR_DR_DATABASE_URL }', 'url: postgresql://mimir_user:hunter2@db/mimir_news');
    assert.throws(
      () => parseProfile(bad, 'bad.yaml'),
      (e: Error) => {
        assert.ok(e instanceof ProfileError);
        assert.match(e.message, /^bad\.yaml is not a valid site profile/);
        assert.match(e.message, /sites\.primary\.kubernetes\.namespace: must be a Kubernetes name/);
        assert.match(e.message, /sites\.primary\.kubernetes\.deployments: must list the deployments to fence/);
        assert.match(e.message, /sites\.dr\.database\.url: /);
        assert.ok(!e.message.includes('hunter2'), 'a pasted password is not echoed');
        return true;
      },
    );
  });

  it('refuses unknown keys, broken YAML and a missing file', () => {
    assert.throws(() => parseProfile(`${example}\nextra: 1\n`), /\(top level\): Unrecognized key: "extra"/);
    assert.throws(() => parseProfile('sites: [unclosed'), /not valid YAML/);
    assert.throws(() => loadProfile('/nonexistent/profile.yaml'), /MIMIR_PROFILE: cannot read \/nonexistent\/profile\.yaml/);
  });

  it("a drill namespace is a scratch namespace: not where a site runs, replicas only for the site's deployments", () => {
    assert.equal(parseProfile(example).sites.primary!.drill!.namespace, 'mimir-drill');
    const drill = (d: string) =>
      parseProfile(example.replace('drill: { namespace: mimir-drill, replicas: { mimir-api: 2 } }', d), 'p.yaml');
    assert.throws(
      () => drill('drill: { namespace: mimir-production }'),
      /sites\.primary\.drill\.namespace: must not be the site's own namespace/,
    );
    assert.throws(
      () => drill('drill: { namespace: mimir-dr }'),
      /sites\.primary\.drill\.namespace: must not be a namespace a site runs in/,
    );
    assert.throws(
      () => drill('drill: { namespace: mimir-drill, replicas: { mimir-web: 1 } }'),
      /drill\.replicas\.mimir-web: is not one of/,
    );
    assert.throws(() => drill('drill: { namespace: mimir-drill, replicas: { mimir-api: 0 } }'), /drill\.replicas\.mimir-api: /);
    assert.equal(drill('drill: { namespace: mimir-drill }').sites.primary!.drill!.replicas, undefined);
  });

  it('a DR traffic provider is one of manual, kubernetes, webhook, with its own fields', () => {
    const withTraffic = (t: string) => example.replace(/traffic: \{ provider: manual[^\n]*/, `traffic: ${t}`);
    assert.equal(parseProfile(example).sites.dr!.traffic!.provider, 'manual');
    assert.throws(() => parseProfile(withTraffic('{ provider: dns }')), /sites\.dr\.traffic\.provider: /);
    assert.throws(
      () => parseProfile(withTraffic('{ provider: kubernetes, context: c, namespace: edge, service: Public, externalName: x }')),
      /sites\.dr\.traffic\.service: must be a Kubernetes name/,
    );
    const hook = parseProfile(withTraffic('{ provider: webhook, url: { env: MIMIR_DR_TRAFFIC_WEBHOOK } }'));
    assert.ok(missingReferences(hook, {}).includes('sites.dr.traffic.url.env: environment variable MIMIR_DR_TRAFFIC_WEBHOOK is not set'));
  });

  it('lists references to unset variables', () => {
    assert.deepEqual(missingReferences(parseProfile(example), { MIMIR_PRIMARY_DATABASE_URL: 'x' }), [
      'sites.primary.database.server.replicationUrl.env: environment variable MIMIR_PRIMARY_REPLICATION_URL is not set',
      'sites.dr.database.url.env: environment variable MIMIR_DR_DATABASE_URL is not set',
      'notify.webhookUrl.env: environment variable MIMIR_NOTIFY_WEBHOOK_URL is not set',
      'security.contact.webhookUrl.env: environment variable MIMIR_SECURITY_WEBHOOK_URL is not set',
    ]);
  });

  it('the worker configuration is validated once, naming the variable', () => {
    assert.throws(
      () => loadWorkerConfig({}),
      (e: Error) => e instanceof WorkerConfigError && /MIMIR_PROFILE: /.test(e.message),
    );
    assert.throws(
      () =>
        loadWorkerConfig({
          MIMIR_PROFILE: 'config/sandbox.yaml',
          MIMIR_METRICS_PORT: 'lots',
          MIMIR_PRIMARY_DATABASE_URL: 'x',
          MIMIR_DR_DATABASE_URL: 'x',
        }),
      /MIMIR_METRICS_PORT: /,
    );
    assert.throws(() => loadWorkerConfig({ MIMIR_PROFILE: 'config/sandbox.yaml' }), /MIMIR_PRIMARY_DATABASE_URL is not set/);
    const ok = loadWorkerConfig({
      MIMIR_PROFILE: 'config/sandbox.yaml',
      MIMIR_PRIMARY_DATABASE_URL: 'x',
      MIMIR_DR_DATABASE_URL: 'x',
      MIMIR_PRIMARY_BACKUP_DIR: '/tmp/b1',
      MIMIR_DR_BACKUP_DIR: '/tmp/b2',
      MIMIR_PRIMARY_DATA_DIR: '/tmp/d',
      MIMIR_WAL_ARCHIVE_DIR: '/tmp/w',
      MIMIR_EVIDENCE_DIR: '/tmp/e',
      MIMIR_PRIMARY_REPLICATION_URL: 'x',
      MIMIR_DR_DATA_DIR: '/tmp/d2',
      MIMIR_DR_REPLICATION_URL: 'x',
      MIMIR_PRIMARY_HEALTH_URL: 'http://127.0.0.1:1/health',
      MIMIR_DR_HEALTH_URL: 'http://127.0.0.1:2/health',
      TEMPORAL_ADDRESS: '127.0.0.1:7999',
      TEMPORAL_NAMESPACE: 'ops',
    });
    assert.equal(ok.temporal.connectionOptions.address, '127.0.0.1:7999');
    assert.equal(ok.temporal.namespace, 'ops');
    assert.equal(ok.taskQueue, 'mimir-recovery');
  });
});
