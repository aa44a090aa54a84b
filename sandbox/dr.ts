// Back to the seeded DR shape, whatever a failover, a failback or a point-in-time recovery left:
// the original primary is primary and writable, the DR standby streams from it via slot `mimir_dr`,
// production deployments run their seeded replicas with the ingress open, DR deployments are at 0,
// and the edge Service points at production. Idempotent, and fast when nothing is to do.
import * as k8s from '@kubernetes/client-node';
import { existsSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ANNOTATIONS } from '../activities/kubernetes.js';
import type { SandboxInstance } from './instance.js';
import { apiHost, DR, EDGE, edgeObjects, PRODUCTION, PUBLIC_SERVICE, SEEDED_REPLICAS } from './kube/world.js';
import { kubeconfigPath, KUBE_CONTEXT } from './kubernetes.js';
import { asPostgres, DATABASE, pgPaths, postgresUp, psqlSuper } from './postgres.js';
import { waitFor } from './process.js';

const SLOT = 'mimir_dr';

/** The primary writable and the DR node streaming from it; returns what was repaired. */
export async function ensureStreamingPair(inst: SandboxInstance): Promise<string[]> {
  const repaired: string[] = [];
  const p = pgPaths(inst);
  try {
    await postgresUp(inst); // both nodes running (created if missing)
  } catch {
    // A node that cannot start (a rebuild killed half way): the sandbox's pair is recreated and reseeded.
    for (const node of [p.dr, p.primary]) {
      await asPostgres('pg_ctl', ['stop', '-D', node.data, '-m', 'immediate']).catch(() => undefined);
      rmSync(dirname(node.data), { recursive: true, force: true });
    }
    await postgresUp(inst);
    repaired.push('recreated the database pair (reseeded)');
  }
  if ((await psqlSuper(inst, 'primary', 'SELECT pg_is_in_recovery()')) === 't') {
    await psqlSuper(inst, 'primary', 'SELECT pg_promote(true, 60)');
    repaired.push('promoted the primary node');
  }
  const readOnly = await psqlSuper(
    inst,
    'primary',
    `SELECT count(*) FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase
     WHERE d.datname = '${DATABASE}' AND array_to_string(s.setconfig, ',') LIKE '%default_transaction_read_only%'`,
  );
  if (readOnly !== '0') {
    await psqlSuper(inst, 'primary', `ALTER DATABASE ${DATABASE} RESET default_transaction_read_only`);
    repaired.push('unfenced the primary database');
  }
  // Slots other than the DR's (a failback's `mimir_primary`) would hold WAL forever.
  await psqlSuper(
    inst,
    'primary',
    `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name <> '${SLOT}' AND NOT active`,
  );
  const streaming = async () =>
    (await psqlSuper(
      inst,
      'primary',
      `SELECT count(*) FROM pg_stat_replication r JOIN pg_replication_slots s ON s.active_pid = r.pid
        WHERE s.slot_name = '${SLOT}' AND r.state = 'streaming'`,
    )) !== '0' && (await psqlSuper(inst, 'dr', 'SELECT pg_is_in_recovery()').catch(() => 'f')) === 't';
  if (await unblockArchiver(inst)) repaired.push('moved aside archived WAL files of an abandoned timeline');
  if (await streaming()) return repaired;
  // A standby that just (re)started may need a moment before it streams.
  if (
    await waitFor('the DR standby to stream', streaming, 5000).then(
      () => true,
      () => false,
    )
  )
    return repaired;
  await asPostgres('pg_ctl', ['stop', '-D', p.dr.data, '-m', 'immediate']).catch(() => undefined);
  rmSync(p.dr.ready, { force: true });
  await postgresUp(inst); // drUp: drop the slot, pg_basebackup from the primary, stream
  repaired.push('rebuilt the DR standby from the primary');
  return repaired;
}

/**
 * Both nodes archive into one directory, and a standby rebuilt from the primary may later be promoted
 * onto a timeline ID an earlier failover used: its history file or segments then differ from the
 * archived ones and the primary's archiver retries forever. The primary's own files win: archived
 * files that differ from ones the primary still has to archive are moved aside (kept, renamed).
 */
async function unblockArchiver(inst: SandboxInstance): Promise<boolean> {
  const p = pgPaths(inst);
  const status = join(p.primary.data, 'pg_wal', 'archive_status');
  if (!existsSync(status)) return false;
  let moved = false;
  for (const f of readdirSync(status).filter((x) => x.endsWith('.ready'))) {
    const wal = f.replace(/\.ready$/, '');
    const archived = join(p.archive, wal);
    if (!existsSync(archived) || !existsSync(join(p.primary.data, 'pg_wal', wal))) continue;
    if (readFileSync(archived).equals(readFileSync(join(p.primary.data, 'pg_wal', wal)))) continue;
    renameSync(archived, `${archived}.abandoned-${Date.now()}`);
    moved = true;
  }
  if (moved) {
    await psqlSuper(inst, 'primary', 'SELECT pg_switch_wal()'); // wakes the archiver
    await waitFor('the primary to archive its WAL', async () => readdirSync(status).every((x) => !x.endsWith('.ready')), 90_000).catch(
      () => undefined,
    );
  }
  return moved;
}

/** Production at its seeded replicas with the ingress open, DR at 0, the edge Service at production. */
export async function ensureDrKubernetes(inst: SandboxInstance): Promise<string[]> {
  const repaired: string[] = [];
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(kubeconfigPath(inst));
  kc.setCurrentContext(KUBE_CONTEXT);
  const apps = kc.makeApiClient(k8s.AppsV1Api);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const net = kc.makeApiClient(k8s.NetworkingV1Api);
  const objects = k8s.KubernetesObjectApi.makeApiClient(kc);
  const merge = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);
  for (const obj of edgeObjects()) {
    await objects.create(obj).catch((e: unknown) => {
      if (!(e instanceof k8s.ApiException && e.code === 409)) throw e;
    });
  }
  const svc = await core.readNamespacedService({ name: PUBLIC_SERVICE, namespace: EDGE });
  if (svc.spec?.externalName !== apiHost(PRODUCTION)) {
    await core.patchNamespacedService(
      { name: PUBLIC_SERVICE, namespace: EDGE, body: { spec: { externalName: apiHost(PRODUCTION) } } },
      merge,
    );
    repaired.push('edge Service back to production');
  }
  for (const [namespace, hot] of [
    [PRODUCTION, true],
    [DR, false],
  ] as const) {
    for (const [name, seeded] of Object.entries(SEEDED_REPLICAS)) {
      const want = hot ? seeded : 0;
      const d = await apps.readNamespacedDeployment({ name, namespace });
      const ann = d.metadata?.annotations ?? {};
      if (d.spec?.replicas !== want || ann[ANNOTATIONS.fencedReplicas] !== undefined) {
        await apps.patchNamespacedDeployment(
          {
            name,
            namespace,
            body: {
              metadata: { annotations: { [ANNOTATIONS.fencedReplicas]: null, [ANNOTATIONS.fencedBy]: null } },
              spec: { replicas: want },
            },
          },
          merge,
        );
        repaired.push(`${namespace}/${name} at ${want}`);
      }
    }
    const ing = await net.readNamespacedIngress({ name: 'mimir-ingress', namespace });
    const ann = ing.metadata?.annotations ?? {};
    if (ann[ANNOTATIONS.sourceRange] !== undefined || ann[ANNOTATIONS.previousSourceRange] !== undefined) {
      await net.patchNamespacedIngress(
        {
          name: 'mimir-ingress',
          namespace,
          body: { metadata: { annotations: { [ANNOTATIONS.sourceRange]: null, [ANNOTATIONS.previousSourceRange]: null } } },
        },
        merge,
      );
      repaired.push(`${namespace} ingress open`);
    }
  }
  await waitFor(
    'the production deployments to be ready at their seeded replicas',
    async () => {
      for (const [name, seeded] of Object.entries(SEEDED_REPLICAS)) {
        const d = await apps.readNamespacedDeployment({ name, namespace: PRODUCTION });
        if ((d.status?.readyReplicas ?? 0) !== seeded || (d.status?.replicas ?? 0) !== seeded) return false;
      }
      return true;
    },
    120_000,
  );
  return repaired;
}

/** The seeded DR shape: database pair and cluster. Returns what was repaired (empty when nothing was to do). */
export async function ensureDrPair(inst: SandboxInstance): Promise<string[]> {
  return [...(await ensureStreamingPair(inst)), ...(await ensureDrKubernetes(inst))];
}
