// The evidence store of the runbook's "Preserve evidence": one directory per incident, every artefact
// written once (temp file renamed into place) and then sealed: a manifest records each artefact's
// SHA-256 and the chain of custody (who, when, how), the manifest's own SHA-256 is written beside it
// (`sha256sum -c manifest.sha256` checks it), and everything is made read-only. `verify` re-hashes
// and names what changed. The store is an interface, so an object store with a retention lock can
// follow the filesystem one without changing the procedures.
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, rmSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import type { Profile } from '../config/profile.js';
import { activityContext } from './context.js';
import { ConfigError, InvalidInputError, NotFoundError } from './errors.js';
import { sha256File, writeOnce } from './files.js';
import { EVIDENCE_PATH } from '../workflows/lib/validate.js';

export const MANIFEST = 'manifest.json';
export const MANIFEST_HASH = 'manifest.sha256';
/** Where an interrupted writer's temp file or directory is left (files.ts, kubernetes.ts, pg-tools.ts). */
const PARTIAL = /\.partial(-\d+)?$/;

export interface Custody {
  incidentId: string;
  procedure: string;
  workflowId: string;
  runId: string;
  site: string;
  requestedBy: string;
  /** How the artefacts were captured (one line per artefact kind). */
  methods: Record<string, string>;
}

export interface ArtefactRecord {
  path: string;
  bytes: number;
  sha256: string;
}

export interface EvidenceManifest {
  version: 1;
  incident: string;
  custody: Custody & { sealedAt: string; sealedBy: string };
  artefacts: ArtefactRecord[];
}

export interface SealedEvidence {
  incident: string;
  location: string;
  manifestSha256: string;
  artefacts: number;
  bytes: number;
  sealedAt: string;
  /** Temp files of interrupted writers found and removed before sealing (never artefacts). */
  removedPartials: string[];
}

export interface EvidenceVerification {
  incident: string;
  location: string;
  ok: boolean;
  manifestSha256: string | null;
  manifestIntact: boolean;
  checked: number;
  changed: string[];
  missing: string[];
  unexpected: string[];
}

export interface EvidenceStore {
  /** The local directory where the incident's artefacts are captured before sealing (created if needed). */
  stage(incident: string): string;
  /** Hashes every artefact, writes the manifest once, makes everything read-only. Idempotent. */
  seal(incident: string, custody: Custody): Promise<SealedEvidence>;
  /** Re-hashes every artefact and the manifest; names anything changed, missing or added. */
  verify(incident: string): Promise<EvidenceVerification>;
}

export function checkIncidentPath(field: string, incident: unknown): string {
  if (typeof incident !== 'string' || !EVIDENCE_PATH.test(incident)) {
    throw new InvalidInputError(
      `${field}: '${String(incident)}' is not a path inside the evidence store (relative, such as INC-1234 or 2026/INC-1234; no '..')`,
    );
  }
  return incident;
}

/** Every file under `dir`, as paths relative to it, sorted. */
function walk(dir: string, base = dir): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...walk(p, base));
    else out.push(relative(base, p).split(sep).join('/'));
  }
  return out.sort();
}

function setMode(dir: string, file: number, directory: number) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) setMode(p, file, directory);
    else chmodSync(p, file);
  }
  chmodSync(dir, directory);
}

const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');

export class FilesystemEvidenceStore implements EvidenceStore {
  constructor(readonly root: string) {
    if (!isAbsolute(root)) throw new ConfigError(`security.evidence.root: must be an absolute path (got ${root})`);
  }

  /** The incident's directory, refused unless it resolves inside the store (symbolic links included). */
  private dirOf(incident: string): string {
    const dir = resolve(this.root, checkIncidentPath('incident', incident));
    const rootReal = existsSync(this.root) ? realpathSync(this.root) : this.root;
    // The deepest part that exists, with its links resolved, then the rest: a link cannot lead out.
    let existing = dir;
    while (!existsSync(existing) && existing !== this.root) existing = dirname(existing);
    const real = existsSync(existing) ? join(realpathSync(existing), relative(existing, dir)) : dir;
    if (!(real === rootReal || real.startsWith(rootReal + sep)) || !(dir + sep).startsWith(this.root + sep)) {
      throw new InvalidInputError(`incident: '${incident}' resolves outside the evidence store ${this.root}`);
    }
    return dir;
  }

  stage(incident: string): string {
    const dir = this.dirOf(incident);
    if (existsSync(join(dir, MANIFEST))) {
      throw new InvalidInputError(`incident: evidence of '${incident}' is sealed already (${dir}); choose another evidence path`);
    }
    mkdirSync(dir, { recursive: true });
    return dir;
  }

  async seal(incident: string, custody: Custody): Promise<SealedEvidence> {
    const dir = this.dirOf(incident);
    if (!existsSync(dir)) throw new NotFoundError(`incident: no evidence was captured for '${incident}' in ${this.root}`);
    const manifestFile = join(dir, MANIFEST);
    const removedPartials: string[] = [];
    if (!existsSync(manifestFile)) {
      // Temp files of a writer that died mid-capture: its retry wrote the complete artefact beside them.
      for (const name of readdirSync(dir, { recursive: true, encoding: 'utf8' })) {
        if (PARTIAL.test(name) && existsSync(join(dir, name))) {
          rmSync(join(dir, name), { recursive: true, force: true });
          removedPartials.push(name);
        }
      }
      const artefacts: ArtefactRecord[] = [];
      for (const path of walk(dir)) {
        if (path === MANIFEST_HASH) continue;
        const h = await sha256File(join(dir, path));
        artefacts.push({ path, bytes: h.bytes, sha256: h.sha256 });
        activityContext()?.heartbeat({ hashed: artefacts.length });
      }
      const manifest: EvidenceManifest = {
        version: 1,
        incident,
        custody: { ...custody, sealedAt: new Date().toISOString(), sealedBy: `mimir-recovery worker ${process.pid}@${hostname()}` },
        artefacts,
      };
      await writeOnce(manifestFile, `${JSON.stringify(manifest, null, 2)}\n`);
    }
    const manifestText = readFileSync(manifestFile);
    const manifestSha256 = sha256(manifestText);
    await writeOnce(join(dir, MANIFEST_HASH), `${manifestSha256}  ${MANIFEST}\n`);
    setMode(dir, 0o444, 0o555);
    const manifest = JSON.parse(manifestText.toString('utf8')) as EvidenceManifest;
    return {
      incident,
      location: dir,
      manifestSha256,
      artefacts: manifest.artefacts.length,
      bytes: manifest.artefacts.reduce((t, a) => t + a.bytes, 0),
      sealedAt: manifest.custody.sealedAt,
      removedPartials,
    };
  }

  async verify(incident: string): Promise<EvidenceVerification> {
    const dir = this.dirOf(incident);
    const manifestFile = join(dir, MANIFEST);
    if (!existsSync(manifestFile)) throw new NotFoundError(`incident: no sealed evidence for '${incident}' in ${this.root}`);
    const text = readFileSync(manifestFile);
    const hashFile = join(dir, MANIFEST_HASH);
    const recorded = existsSync(hashFile) ? readFileSync(hashFile, 'utf8').split(/\s+/)[0]! : null;
    const manifestIntact = recorded === sha256(text);
    const manifest = JSON.parse(text.toString('utf8')) as EvidenceManifest;
    const changed: string[] = [];
    const missing: string[] = [];
    for (const a of manifest.artefacts) {
      const file = join(dir, a.path);
      if (!existsSync(file) || !statSync(file).isFile()) missing.push(a.path);
      else if ((await sha256File(file)).sha256 !== a.sha256) changed.push(a.path);
    }
    const known = new Set([MANIFEST, MANIFEST_HASH, ...manifest.artefacts.map((a) => a.path)]);
    const unexpected = walk(dir).filter((p) => !known.has(p));
    if (!manifestIntact) changed.unshift(MANIFEST);
    return {
      incident,
      location: dir,
      ok: manifestIntact && changed.length === 0 && missing.length === 0 && unexpected.length === 0,
      manifestSha256: recorded,
      manifestIntact,
      checked: manifest.artefacts.length,
      changed,
      missing,
      unexpected,
    };
  }
}

export interface EvidenceDeps {
  profile: Profile;
  env: NodeJS.ProcessEnv;
}

/** The profile's security block, or a ConfigError naming what to add. */
export function securityOf(deps: EvidenceDeps) {
  const security = deps.profile.security;
  if (!security) throw new ConfigError(`security: profile '${deps.profile.name}' has no security block (see config/mimir.example.yaml)`);
  return security;
}

/** The evidence store the profile names (resolved from its reference on this worker). */
export function evidenceStoreOf(deps: EvidenceDeps): EvidenceStore {
  const ref = securityOf(deps).evidence.root;
  const root = typeof ref === 'string' ? ref : deps.env[ref.env];
  if (!root) throw new ConfigError(`security.evidence.root: environment variable ${typeof ref === 'string' ? '' : ref.env} is not set`);
  return new FilesystemEvidenceStore(resolve(root));
}

export function createEvidenceActivities(deps: EvidenceDeps) {
  return {
    /** The profile's security settings, checked: evidence store reachable, security contact resolvable. No secret is returned. */
    async resolveSecurity() {
      const s = securityOf(deps);
      const store = evidenceStoreOf(deps);
      if (s.contact && !deps.env[s.contact.webhookUrl.env]) {
        throw new ConfigError(`security.contact.webhookUrl: environment variable ${s.contact.webhookUrl.env} is not set on the worker`);
      }
      return {
        internalRange: s.internalRange,
        approvers: s.approvers ?? deps.profile.approvals.approvers,
        credentials: s.credentials,
        contact: s.contact ? 'security webhook' : deps.profile.notify.webhookUrl ? 'notify webhook' : 'worker log',
        evidenceRoot: store instanceof FilesystemEvidenceStore ? store.root : 'evidence store',
      };
    },

    /** Opens (creates) the incident's evidence directory; refuses a path outside the store or already sealed. */
    async openEvidence({ incident }: { incident: string }) {
      return { incident, dir: evidenceStoreOf(deps).stage(incident) };
    },

    async sealEvidence({ incident, custody }: { incident: string; custody: Custody }): Promise<SealedEvidence> {
      return evidenceStoreOf(deps).seal(incident, custody);
    },

    async verifyEvidence({ incident }: { incident: string }): Promise<EvidenceVerification> {
      return evidenceStoreOf(deps).verify(incident);
    },
  };
}
