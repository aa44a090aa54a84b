// createActivities(deps): every activity, with its dependencies injected (Temporal samples' pattern).
import type { Profile } from '../config/profile.js';
import { createDrillActivities } from './drill.js';
import { createDrActivities } from './dr.js';
import { createKubernetesActivities } from './kubernetes.js';
import { createNotifyActivities } from './notify.js';
import { createPgToolsActivities } from './pg-tools.js';
import { createPitrActivities } from './pitr.js';
import { createPostgresActivities } from './postgres.js';
import { createSiteActivities } from './sites.js';
import { createEvidenceActivities } from './evidence.js';

export interface ActivityDeps {
  profile: Profile;
  /** Where references (connection URLs, webhook URLs, KUBECONFIG) are resolved. */
  env: NodeJS.ProcessEnv;
}

export function createActivities(deps: ActivityDeps) {
  const webhookRef = deps.profile.notify.webhookUrl?.env;
  return {
    ...createSiteActivities(deps),
    ...createPostgresActivities(deps),
    ...createPgToolsActivities(deps),
    ...createPitrActivities(deps),
    ...createKubernetesActivities({ kubeconfig: deps.env.KUBECONFIG }),
    ...createNotifyActivities({ webhookUrl: webhookRef ? deps.env[webhookRef] : undefined }),
    ...createEvidenceActivities(deps),
    /** The security contact (breach containment): its own webhook if the profile names one, else the general one. */
    notifySecurity: createNotifyActivities({ webhookUrl: deps.env[deps.profile.security?.contact?.webhookUrl.env ?? webhookRef ?? ''] })
      .notify,
    ...createDrillActivities(deps),
    ...createDrActivities({ ...deps, kubeconfig: deps.env.KUBECONFIG }),
  };
}

export type Activities = ReturnType<typeof createActivities>;
