// Site resolution: the profile's sites as the workflows see them (no secrets), and the secrets
// (connection URLs) resolved here, in the activity, from the references the profile holds.
import type { Profile, Site } from '../config/profile.js';
import type { SiteView } from '../workflows/types.js';
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
        ...(s.healthUrl ? { healthUrl: s.healthUrl } : {}),
        approvals: { ...deps.profile.approvals },
      };
    },
  };
}
