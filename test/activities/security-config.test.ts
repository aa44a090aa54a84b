// The profile's `security` block: breach containment and rotation settings, refused field by field.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parseProfile, ProfileError } from '../../config/profile.js';

const example = readFileSync(new URL('../../config/mimir.example.yaml', import.meta.url), 'utf8');

describe('site profiles: the security block', () => {
  it('the example carries the runbook values: 10.0.0.0/8, api-keys/master-key, its consumers', () => {
    const s = parseProfile(example).security!;
    assert.equal(s.internalRange, '10.0.0.0/8');
    assert.deepEqual(s.credentials, { secret: 'api-keys', key: 'master-key', consumers: ['mimir-api', 'mimir-worker'] });
    assert.deepEqual(s.contact, { webhookUrl: { env: 'MIMIR_SECURITY_WEBHOOK_URL' } });
    assert.equal(s.evidence.root, '/var/lib/mimir/evidence');
  });

  it('names every bad field: a CIDR, a relative evidence root, one approver, no consumers, an inline webhook URL', () => {
    const bad = example
      .replace('internalRange: 10.0.0.0/8', 'internalRange: 10.0.0.0/33')
      .replace('evidence: { root: /var/lib/mimir/evidence }', 'evidence: { root: evidence }')
      .replace('approvers: [security-lead, platform-lead, oncall-engineer]', 'approvers: [security-lead]')
      .replace('consumers: [mimir-api, mimir-worker]', 'consumers: []')
      .replace('webhookUrl: { env: MIMIR_SECURITY_WEBHOOK_URL }', 'webhookUrl: https://hooks.example.com/T0/secret-token');
    assert.throws(
      () => parseProfile(bad, 'bad.yaml'),
      (e: Error) => {
        assert.ok(e instanceof ProfileError);
        assert.match(e.message, /security\.internalRange: must be a comma-separated list of CIDRs/);
        assert.match(e.message, /security\.evidence\.root: /);
        assert.match(e.message, /security\.approvers: must list at least two security approvers/);
        assert.match(e.message, /security\.credentials\.consumers: must list the deployments that read the secret/);
        assert.match(e.message, /security\.contact\.webhookUrl: /);
        assert.ok(!e.message.includes('secret-token'), 'a pasted webhook URL is not echoed');
        return true;
      },
    );
  });
});
