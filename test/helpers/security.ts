// Breach and rotation tests: the sandbox profile with a security contact (a real local receiver),
// scratch sites pointing at throwaway namespaces, and what a test reads back from the world.
import type { Profile } from '../../config/profile.js';
import { admin } from './kubernetes.js';
import { sandboxProfile } from './temporal.js';

export const SECURITY_WEBHOOK_ENV = 'MIMIR_SECURITY_WEBHOOK_URL';

/** The sandbox profile, with a security contact webhook and, optionally, a site on a scratch namespace. */
export function securityProfile(
  opts: { contact?: boolean; scratch?: { namespace: string; deployments: string[]; consumers?: string[] } } = {},
): Profile {
  const base = sandboxProfile();
  const security = { ...base.security!, ...(opts.contact !== false ? { contact: { webhookUrl: { env: SECURITY_WEBHOOK_ENV } } } : {}) };
  const sites = { ...base.sites };
  if (opts.scratch) {
    const { drill: _drill, ...primary } = base.sites.primary!; // a DR drill's app tier is the primary's, not this site's
    sites.scratch = {
      ...primary,
      kubernetes: {
        context: primary.kubernetes.context,
        namespace: opts.scratch.namespace,
        deployments: opts.scratch.deployments,
        ingress: 'ingress',
      },
    };
    if (opts.scratch.consumers) security.credentials = { ...security.credentials, consumers: opts.scratch.consumers };
  }
  return { ...base, sites, security };
}

export async function secretData(namespace: string, name: string): Promise<Record<string, string> | undefined> {
  return admin()
    .core.readNamespacedSecret({ name, namespace })
    .then((s) => s.data ?? {})
    .catch(() => undefined);
}

export async function podNames(namespace: string, selector: string): Promise<string[]> {
  const pods = await admin().core.listNamespacedPod({ namespace, labelSelector: selector });
  return pods.items.map((p) => p.metadata!.name!).sort();
}
