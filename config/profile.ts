// Site profiles: the runbook's nouns (namespaces, deployments, databases, health URLs) as validated
// data. Database connections are given by reference (an environment variable name), never inline.
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { z } from 'zod';
import { sourceRange } from '../workflows/lib/validate.js';

const dnsName = z.string().regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, 'must be a Kubernetes name (lowercase letters, digits, dashes)');
const durationText = z.string().regex(/^\d+(ms|s|m|h|d)$/, "must be a duration such as '15m' or '1h'");
const envRef = z
  .object({ env: z.string().regex(/^[A-Z_][A-Z0-9_]*$/, 'must be an environment variable name such as MIMIR_PRIMARY_DATABASE_URL') })
  .strict();

/** A path on the worker host: absolute, or read from an environment variable. */
const pathRef = z.union([z.string().regex(/^\//, 'must be an absolute path'), envRef]);

/** How user traffic is switched to a site: a person confirms DNS, a Kubernetes Service is repointed, or a webhook is called. */
export const trafficSchema = z.discriminatedUnion('provider', [
  z.object({ provider: z.literal('manual'), instructions: z.string().min(1).optional() }).strict(),
  z
    .object({
      provider: z.literal('kubernetes'),
      context: z.string().min(1, 'must name a context in the kubeconfig'),
      namespace: dnsName,
      service: dnsName.describe('an ExternalName Service: the entry point users resolve'),
      externalName: z
        .string()
        .regex(/^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/, 'must be a DNS name such as mimir-api.mimir-dr.svc.cluster.local'),
    })
    .strict(),
  z.object({ provider: z.literal('webhook'), url: envRef.describe('where the webhook URL (it may hold a token) is read from') }).strict(),
]);

export const siteSchema = z
  .object({
    kubernetes: z
      .object({
        context: z.string().min(1, 'must name a context in the kubeconfig'),
        namespace: dnsName,
        deployments: z.array(dnsName).min(1, 'must list the deployments to fence'),
        ingress: dnsName.optional(),
      })
      .strict(),
    database: z
      .object({
        name: z.string().regex(/^[a-z_][a-z0-9_]*$/, 'must be a database name such as mimir_news'),
        pod: dnsName.optional(),
        url: envRef.describe('where the connection URL (with its password) is read from'),
        backups: z
          .object({ dir: pathRef })
          .strict()
          .optional()
          .describe('where dumps (and safety backups) of this database are kept, on the worker host'),
        server: z
          .object({
            dataDir: pathRef,
            walArchive: pathRef,
            replicationUrl: envRef.describe('a connection URL of a role with REPLICATION, for pg_basebackup'),
          })
          .strict()
          .optional()
          .describe('the server as the worker host sees it: for base backups and point-in-time recovery'),
      })
      .strict(),
    healthUrl: z.union([z.url(), envRef]).optional().describe('the site health endpoint, or where its URL is read from'),
    traffic: trafficSchema.optional().describe('how traffic is sent to this site in a failover (a DR site must have it)'),
    drill: z
      .object({
        namespace: dnsName.describe('a pre-created scratch namespace the worker may create and delete deployments in (deploy/rbac.yaml)'),
        replicas: z.record(dnsName, z.number().int().min(1).max(20)).optional().describe('replicas of each copy; default 1'),
      })
      .strict()
      .optional()
      .describe("where a DR drill brings up copies of the site's deployments, pointed at its scratch database"),
  })
  .strict()
  .superRefine((s, ctx) => {
    if (s.drill?.namespace === s.kubernetes.namespace)
      ctx.addIssue({
        code: 'custom',
        path: ['drill', 'namespace'],
        message: `must not be the site's own namespace ${s.kubernetes.namespace}`,
      });
    for (const name of Object.keys(s.drill?.replicas ?? {}))
      if (!s.kubernetes.deployments.includes(name))
        ctx.addIssue({ code: 'custom', path: ['drill', 'replicas', name], message: 'is not one of kubernetes.deployments' });
  });

/** Breach containment and credential rotation (the runbook's "Security Incidents"). */
export const securitySchema = z
  .object({
    internalRange: sourceRange.default('10.0.0.0/8').describe('the allow-list an isolated ingress is restricted to'),
    contact: z
      .object({ webhookUrl: envRef.describe('where the security contact is notified (a webhook URL, read from this variable)') })
      .strict()
      .optional(),
    evidence: z.object({ root: pathRef.describe('the evidence store: one directory per incident, on the worker host') }).strict(),
    approvers: z.array(z.string().min(1)).min(2, 'must list at least two security approvers (release needs two)').optional(),
    credentials: z
      .object({
        secret: dnsName.default('api-keys'),
        key: z
          .string()
          .regex(/^[-._a-zA-Z0-9]+$/, 'must be a secret key such as master-key')
          .default('master-key'),
        consumers: z.array(dnsName).min(1, 'must list the deployments that read the secret (restarted after a rotation)'),
      })
      .strict(),
  })
  .strict();

export const profileSchema = z
  .object({
    name: z.string().min(1),
    sites: z.record(dnsName, siteSchema).refine((s) => Object.keys(s).length > 0, 'must define at least one site'),
    approvals: z
      .object({
        approvers: z.array(z.string().min(1)).default([]),
        escalateAfter: durationText.default('15m'),
        deadline: durationText.default('1h'),
      })
      .strict()
      .default({ approvers: [], escalateAfter: '15m', deadline: '1h' }),
    notify: z.object({ webhookUrl: envRef.optional() }).strict().default({}),
    security: securitySchema.optional(),
    /** Recovery objectives a DR drill is measured against: RTO (drill start to verified serving), RPO (data not in the restore). */
    objectives: z.object({ rto: durationText, rpo: durationText }).strict().default({ rto: '1h', rpo: '15m' }),
  })
  .strict()
  .superRefine((p, ctx) => {
    // A drill's scratch namespace is torn down by label: it must never be named like one where a site runs (in any context).
    const running = new Set(Object.values(p.sites).map((s) => s.kubernetes.namespace));
    for (const [name, s] of Object.entries(p.sites))
      if (s.drill && running.has(s.drill.namespace))
        ctx.addIssue({ code: 'custom', path: ['sites', name, 'drill', 'namespace'], message: `must not be a namespace a site runs in` });
  });

export type Profile = z.infer<typeof profileSchema>;
export type Site = z.infer<typeof siteSchema>;
export type Traffic = z.infer<typeof trafficSchema>;

export class ProfileError extends Error {
  override name = 'ProfileError';
}

/** Parses and validates a profile; the error names the file, each bad field and what it must be. */
export function parseProfile(text: string, source = 'profile'): Profile {
  let raw: unknown;
  try {
    raw = parse(text);
  } catch (e) {
    throw new ProfileError(`${source}: not valid YAML: ${(e as Error).message}`);
  }
  const parsed = profileSchema.safeParse(raw);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.') || '(top level)'}: ${i.message}`);
    throw new ProfileError(`${source} is not a valid site profile:\n${lines.join('\n')}`);
  }
  return parsed.data;
}

export function loadProfile(path: string): Profile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ProfileError(`MIMIR_PROFILE: cannot read ${path}: ${(e as Error).message}`);
  }
  return parseProfile(text, path);
}

/** Every environment variable a profile refers to must be set; returns the problems, empty when none. */
export function missingReferences(profile: Profile, env: NodeJS.ProcessEnv): string[] {
  const refs: [string, string][] = Object.entries(profile.sites).flatMap(([name, s]) => [
    [`sites.${name}.database.url.env`, s.database.url.env] as [string, string],
    ...(s.database.backups && typeof s.database.backups.dir === 'object'
      ? [[`sites.${name}.database.backups.dir.env`, s.database.backups.dir.env] as [string, string]]
      : []),
    ...Object.entries(s.database.server ?? {}).flatMap(([k, v]) =>
      typeof v === 'object' ? [[`sites.${name}.database.server.${k}.env`, v.env] as [string, string]] : [],
    ),
  ]);
  for (const [name, s] of Object.entries(profile.sites)) {
    if (s.healthUrl && typeof s.healthUrl === 'object') refs.push([`sites.${name}.healthUrl.env`, s.healthUrl.env]);
    if (s.traffic?.provider === 'webhook') refs.push([`sites.${name}.traffic.url.env`, s.traffic.url.env]);
  }
  if (profile.notify.webhookUrl) refs.push(['notify.webhookUrl.env', profile.notify.webhookUrl.env]);
  if (profile.security?.contact) refs.push(['security.contact.webhookUrl.env', profile.security.contact.webhookUrl.env]);
  if (typeof profile.security?.evidence.root === 'object') refs.push(['security.evidence.root.env', profile.security.evidence.root.env]);
  return refs.filter(([, v]) => !env[v]).map(([field, v]) => `${field}: environment variable ${v} is not set`);
}
