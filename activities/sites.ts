// Site resolution: the profile's sites as the workflows see them (no secrets), and the secrets
// (connection URLs) resolved here, in the activity, from the references the profile holds.
import type { Profile, Site, Traffic } from '../config/profile.js';
import type { SiteView, TrafficView } from '../workflows/types.js';
import { ConfigError, UnknownSiteError } from './errors.js';

export interface SiteDeps {
  profile: Profile;
  env: NodeJS.ProcessEnv;
}

export function siteOf(deps: SiteDeps, name: string): Site {
  const site = deps.profile.sites[name];
  if (!site) {
    const known = Object.keys(deps.profile.sites).join(', ');
    throw new UnknownSiteError(`site: '${name}' is not defined in profile '${deps.profile.name}' (known sites: ${known})`);
  }
  return site;
}

export function databaseUrlOf(deps: SiteDeps, name: string): string {
  const ref = siteOf(deps, name).database.url.env;
  const url = deps.env[ref];
  if (!url) throw new ConfigError(`sites.${name}.database.url: environment variable ${ref} is not set on the worker`);
  return url;
}

/** The site's health endpoint, resolved from the profile (a URL, or the variable holding it). */
export function healthUrlOf(deps: SiteDeps, name: string): string {
  const ref = siteOf(deps, name).healthUrl;
  if (ref === undefined) throw new ConfigError(`sites.${name}.healthUrl: not configured; a DR procedure checks the site's health there`);
  const url = typeof ref === 'string' ? ref : deps.env[ref.env];
  if (!url)
    throw new ConfigError(
      `sites.${name}.healthUrl: environment variable ${typeof ref === 'object' ? ref.env : ''} is not set on the worker`,
    );
  return url;
}

export function createSiteActivities(deps: SiteDeps) {
  return {
    /** Validates a site name and returns its non-secret view, with the profile's approval rules. */
    async resolveSite({ site }: { site: string }): Promise<SiteView> {
      const s = siteOf(deps, site);
      databaseUrlOf(deps, site); // the reference must resolve before anything acts on this site
      return {
        name: site,
        kubernetes: { ...s.kubernetes },
        database: { name: s.database.name, ...(s.database.pod ? { pod: s.database.pod } : {}) },
        ...(s.healthUrl && (typeof s.healthUrl === 'string' || deps.env[s.healthUrl.env]) ? { healthUrl: healthUrlOf(deps, site) } : {}),
        ...(s.traffic ? { traffic: trafficView(s.traffic) } : {}),
        hasServer: s.database.server !== undefined,
        approvals: { ...deps.profile.approvals },
      };
    },
  };
}

/** What the workflow may see of a traffic provider (never a webhook's URL: it may hold a token). */
function trafficView(t: Traffic): TrafficView {
  if (t.provider === 'kubernetes') return { provider: 'kubernetes', entry: `${t.namespace}/${t.service}`, target: t.externalName };
  if (t.provider === 'manual') return { provider: 'manual', ...(t.instructions ? { instructions: t.instructions } : {}) };
  return { provider: 'webhook' };
}
