// `mimir-recovery evidence verify <incident>`: the evidence store's own verification (the same code
// the worker seals with), run where the store is: re-hashes every artefact and the manifest.
import { evidenceStoreOf, FilesystemEvidenceStore, type EvidenceVerification } from '../activities/evidence.js';
import { loadProfile } from '../config/profile.js';
import { UsageError } from './client.js';

export async function verifyEvidence(incident: string, opts: { root?: string } = {}): Promise<EvidenceVerification> {
  if (opts.root) return new FilesystemEvidenceStore(opts.root).verify(incident);
  const profilePath = process.env.MIMIR_PROFILE;
  if (!profilePath) throw new UsageError('set MIMIR_PROFILE (the site profile naming the evidence store) or give --root <dir>');
  return evidenceStoreOf({ profile: loadProfile(profilePath), env: process.env }).verify(incident);
}

export function renderVerification(v: EvidenceVerification): string {
  const head = `evidence ${v.incident} (${v.location}): ${v.ok ? 'OK' : 'FAILED'}; ${v.checked} artefact(s), manifest sha256 ${v.manifestSha256 ?? 'missing'}${v.manifestIntact ? '' : ' (DOES NOT MATCH the manifest)'}`;
  return [
    head,
    ...v.changed.map((p) => `  changed:    ${p}`),
    ...v.missing.map((p) => `  missing:    ${p}`),
    ...v.unexpected.map((p) => `  unexpected: ${p}`),
  ].join('\n');
}
