// Kubernetes activities, through @kubernetes/client-node. Each is idempotent (safe to retry after a
// crash at any point), takes and returns plain data, and maps API errors by status code to typed
// errors: 400/422 bad input, 401/403 permission, 404 not found (non-retryable); the rest retryable.
import * as k8s from '@kubernetes/client-node';
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, renameSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { Agent, request as httpsRequest, type RequestOptions } from 'node:https';
import { isAbsolute, join } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { stringify } from 'yaml';
import { activityContext, progress } from './context.js';
import { InvalidInputError, KubernetesApiError, NotFoundError, NotReadyError, PermissionDeniedError } from './errors.js';
import { sha256File, writeOnce, type WrittenFile } from './files.js';
import { badCidrs } from '../workflows/lib/validate.js';

export const ANNOTATIONS = {
  /** Replicas a deployment had before it was fenced (written before scaling to 0). */
  fencedReplicas: 'mimir-recovery.io/fenced-replicas',
  fencedBy: 'mimir-recovery.io/fenced-by',
  /** The ingress allow-list before it was restricted (`<unset>` if there was none). */
  previousSourceRange: 'mimir-recovery.io/previous-whitelist-source-range',
  /** The rotation that last changed a secret. */
  rotationId: 'mimir-recovery.io/rotation-id',
  sourceRange: 'nginx.ingress.kubernetes.io/whitelist-source-range',
  restartedAt: 'kubectl.kubernetes.io/restartedAt',
  revision: 'deployment.kubernetes.io/revision',
} as const;
const UNSET = '<unset>';

/** Where an activity acts: a kubeconfig context and a namespace (from the site profile). */
export interface KubeTarget {
  context: string;
  namespace: string;
}

export interface KubeDeps {
  /** Kubeconfig file; default: $KUBECONFIG, then ~/.kube/config. */
  kubeconfig?: string;
}

const NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

function checkName(field: string, value: unknown): string {
  if (typeof value !== 'string' || !NAME.test(value)) {
    throw new InvalidInputError(`${field}: '${String(value)}' is not a valid Kubernetes name (lowercase letters, digits, '-', '.')`);
  }
  return value;
}

function checkReplicas(field: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 1000) {
    throw new InvalidInputError(`${field}: must be an integer from 0 to 1000 (got ${String(value)})`);
  }
  return value;
}

/** Maps a client error to the typed errors the workflows' retry policies know. */
export function mapApiError(what: string, err: unknown): Error {
  if (err instanceof k8s.ApiException) {
    const code = err.code;
    let reason = '';
    try {
      const body: unknown = typeof err.body === 'string' ? JSON.parse(err.body) : err.body;
      reason = (body as { message?: string })?.message ?? '';
    } catch {
      reason = String(err.body ?? '').slice(0, 300);
    }
    const detail = reason ? `: ${reason}` : '';
    if (code === 404) return new NotFoundError(`${what}: not found${detail}`);
    if (code === 401 || code === 403) return new PermissionDeniedError(`${what}: forbidden (HTTP ${code})${detail}`);
    if (code === 400 || code === 422) return new InvalidInputError(`${what}: rejected (HTTP ${code})${detail}`);
    return new KubernetesApiError(`${what}: HTTP ${code}${detail}`);
  }
  if (err instanceof InvalidInputError || err instanceof NotFoundError || err instanceof PermissionDeniedError) return err;
  return new KubernetesApiError(`${what}: ${(err as Error)?.message ?? String(err)}`);
}

async function call<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw mapApiError(what, e);
  }
}

const mergePatch = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);
const strategicPatch = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.StrategicMergePatch);
const jsonPatch = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.JsonPatch);

interface Clients {
  kc: k8s.KubeConfig;
  core: k8s.CoreV1Api;
  apps: k8s.AppsV1Api;
  autoscaling: k8s.AutoscalingV2Api;
  networking: k8s.NetworkingV1Api;
  log: k8s.Log;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitUntil(what: string, timeoutMs: number, check: () => Promise<{ done: boolean; state: Record<string, unknown> }>) {
  const until = Date.now() + timeoutMs;
  let state: Record<string, unknown> = {};
  for (;;) {
    const r = await check();
    state = r.state;
    if (r.done) return state;
    progress({ waitingFor: what, ...state });
    if (Date.now() > until)
      throw new NotReadyError(`${what}: not reached within ${Math.round(timeoutMs / 1000)}s (${JSON.stringify(state)})`);
    await sleep(500);
  }
}

function selectorOf(d: k8s.V1Deployment): string {
  const labels = d.spec?.selector?.matchLabels ?? {};
  return Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}

function isRolledOut(d: k8s.V1Deployment, replicas: number): boolean {
  const s = d.status ?? {};
  return (
    (s.observedGeneration ?? 0) >= (d.metadata?.generation ?? 0) &&
    (s.replicas ?? 0) === replicas &&
    (s.updatedReplicas ?? 0) === replicas &&
    (s.readyReplicas ?? 0) === replicas &&
    (s.availableReplicas ?? 0) === replicas
  );
}

export interface DeploymentReplicas {
  name: string;
  replicas: number;
  readyReplicas: number;
  availableReplicas: number;
  /** Set while the deployment is fenced: the replicas it had before. */
  fencedReplicas?: number;
  hpa?: { name: string; minReplicas: number; maxReplicas: number };
}

export interface FenceRecord {
  name: string;
  originalReplicas: number;
  hpa?: { name: string; minReplicas: number; maxReplicas: number };
}

export function createKubernetesActivities(deps: KubeDeps = {}) {
  const cache = new Map<string, Clients>();

  function clients(target: KubeTarget): Clients {
    if (!target || typeof target.context !== 'string' || target.context === '') {
      throw new InvalidInputError('context: must name a context of the kubeconfig');
    }
    checkName('namespace', target.namespace);
    const cached = cache.get(target.context);
    if (cached) return cached;
    const kc = new k8s.KubeConfig();
    const file = deps.kubeconfig ?? process.env.KUBECONFIG;
    if (file) kc.loadFromFile(file);
    else kc.loadFromDefault();
    if (!kc.getContextObject(target.context)) {
      const known = kc.getContexts().map((c) => c.name);
      throw new InvalidInputError(
        `context: '${target.context}' is not in the kubeconfig ${file ?? '(default)'} (contexts: ${known.join(', ') || 'none'})`,
      );
    }
    kc.setCurrentContext(target.context);
    const c: Clients = {
      kc,
      core: kc.makeApiClient(k8s.CoreV1Api),
      apps: kc.makeApiClient(k8s.AppsV1Api),
      autoscaling: kc.makeApiClient(k8s.AutoscalingV2Api),
      networking: kc.makeApiClient(k8s.NetworkingV1Api),
      log: new k8s.Log(kc),
    };
    cache.set(target.context, c);
    return c;
  }

  /** Reads a deployment; a 404 says whether the namespace or the deployment is missing. */
  async function readDeployment(c: Clients, t: KubeTarget, name: string): Promise<k8s.V1Deployment> {
    try {
      return await c.apps.readNamespacedDeployment({ name, namespace: t.namespace });
    } catch (e) {
      if (e instanceof k8s.ApiException && e.code === 404) {
        const ns = await c.core.readNamespace({ name: t.namespace }).catch(() => undefined);
        if (!ns) throw new NotFoundError(`namespace: '${t.namespace}' does not exist (context ${t.context})`);
        throw new NotFoundError(`deployment: '${name}' does not exist in namespace ${t.namespace}`);
      }
      throw mapApiError(`read deployment ${t.namespace}/${name}`, e);
    }
  }

  async function hpaFor(c: Clients, t: KubeTarget, name: string) {
    const list = await call(`list HPAs in ${t.namespace}`, () =>
      c.autoscaling.listNamespacedHorizontalPodAutoscaler({ namespace: t.namespace }),
    );
    const h = list.items.find((x) => x.spec?.scaleTargetRef.kind === 'Deployment' && x.spec.scaleTargetRef.name === name);
    return h ? { name: h.metadata!.name!, minReplicas: h.spec!.minReplicas ?? 1, maxReplicas: h.spec!.maxReplicas } : undefined;
  }

  async function setReplicas(c: Clients, t: KubeTarget, name: string, replicas: number) {
    const d = await readDeployment(c, t, name);
    if ((d.spec?.replicas ?? 1) === replicas) return;
    await call(`scale ${t.namespace}/${name} to ${replicas}`, () =>
      c.apps.patchNamespacedDeploymentScale({ name, namespace: t.namespace, body: { spec: { replicas } } }, mergePatch),
    );
  }

  /** Waits until a deployment runs `replicas` ready, updated pods, or, for 0, until its pods are gone. */
  async function waitReplicas(c: Clients, t: KubeTarget, name: string, replicas: number, timeoutMs: number) {
    return waitUntil(`${t.namespace}/${name} at ${replicas} replicas`, timeoutMs, async () => {
      const d = await readDeployment(c, t, name);
      if (replicas === 0) {
        const pods = await call(`list pods of ${name}`, () =>
          c.core.listNamespacedPod({ namespace: t.namespace, labelSelector: selectorOf(d) }),
        );
        return { done: (d.spec?.replicas ?? 1) === 0 && pods.items.length === 0, state: { deployment: name, podsLeft: pods.items.length } };
      }
      const s = d.status ?? {};
      return {
        done: (d.spec?.replicas ?? 1) === replicas && isRolledOut(d, replicas),
        state: { deployment: name, ready: s.readyReplicas ?? 0, updated: s.updatedReplicas ?? 0, total: s.replicas ?? 0, want: replicas },
      };
    });
  }

  async function annotateDeployment(c: Clients, t: KubeTarget, d: k8s.V1Deployment, annotations: Record<string, string | null>) {
    const name = d.metadata!.name!;
    await call(`annotate deployment ${t.namespace}/${name}`, () =>
      c.apps.patchNamespacedDeployment(
        { name, namespace: t.namespace, body: { metadata: { resourceVersion: d.metadata!.resourceVersion, annotations } } },
        mergePatch,
      ),
    );
  }

  const defaultTimeout = (ms?: number) => (typeof ms === 'number' && ms > 0 ? ms : 5 * 60_000);

  return {
    /** Replicas (and HPA bounds, and any fence record) of each deployment. */
    async readReplicas({ target, deployments }: { target: KubeTarget; deployments: string[] }): Promise<DeploymentReplicas[]> {
      const c = clients(target);
      const out: DeploymentReplicas[] = [];
      for (const name of deployments) {
        const d = await readDeployment(c, target, checkName('deployments[]', name));
        const fenced = d.metadata?.annotations?.[ANNOTATIONS.fencedReplicas];
        const hpa = await hpaFor(c, target, name);
        out.push({
          name,
          replicas: d.spec?.replicas ?? 1,
          readyReplicas: d.status?.readyReplicas ?? 0,
          availableReplicas: d.status?.availableReplicas ?? 0,
          ...(fenced !== undefined ? { fencedReplicas: Number(fenced) } : {}),
          ...(hpa ? { hpa } : {}),
        });
      }
      return out;
    },

    /** Scales to exactly `replicas` (never by a delta) and waits until ready, or until no pod is left for 0. */
    async scaleDeployment({
      target,
      name,
      replicas,
      timeoutMs,
    }: {
      target: KubeTarget;
      name: string;
      replicas: number;
      timeoutMs?: number;
    }) {
      const c = clients(target);
      checkName('name', name);
      checkReplicas('replicas', replicas);
      await setReplicas(c, target, name, replicas);
      await waitReplicas(c, target, name, replicas, defaultTimeout(timeoutMs));
      return { name, replicas };
    },

    /**
     * Fences writers: records every deployment's replicas as an annotation first (kept if already
     * there, so a retry after the scale-down never records 0), then scales all to 0 and waits until
     * their pods are gone. An HPA does not fight this: it leaves a deployment at 0 replicas alone.
     */
    async fence({ target, deployments, by }: { target: KubeTarget; deployments: string[]; by: string }): Promise<FenceRecord[]> {
      const c = clients(target);
      if (!Array.isArray(deployments) || deployments.length === 0)
        throw new InvalidInputError('deployments: must list at least one deployment');
      deployments.forEach((d, i) => checkName(`deployments[${i}]`, d));
      const records: FenceRecord[] = [];
      for (const name of deployments) {
        const d = await readDeployment(c, target, name);
        const recorded = d.metadata?.annotations?.[ANNOTATIONS.fencedReplicas];
        const original = recorded !== undefined ? Number(recorded) : (d.spec?.replicas ?? 1);
        if (recorded === undefined) {
          await annotateDeployment(c, target, d, { [ANNOTATIONS.fencedReplicas]: String(original), [ANNOTATIONS.fencedBy]: by });
        }
        const hpa = await hpaFor(c, target, name);
        records.push({ name, originalReplicas: original, ...(hpa ? { hpa } : {}) });
      }
      for (const r of records) await setReplicas(c, target, r.name, 0);
      for (const r of records) await waitReplicas(c, target, r.name, 0, defaultTimeout());
      return records;
    },

    /**
     * Unfences: scales each deployment back to exactly its recorded replicas (the workflow's record
     * wins; the annotation serves when the workflow has none), waits until ready, then clears the record.
     */
    async unfence({ target, deployments }: { target: KubeTarget; deployments: { name: string; replicas?: number }[] }) {
      const c = clients(target);
      if (!Array.isArray(deployments) || deployments.length === 0)
        throw new InvalidInputError('deployments: must list at least one deployment');
      const plan: { name: string; replicas: number }[] = [];
      for (const [i, item] of deployments.entries()) {
        const name = checkName(`deployments[${i}].name`, item?.name);
        const d = await readDeployment(c, target, name);
        const recorded = d.metadata?.annotations?.[ANNOTATIONS.fencedReplicas];
        const replicas = item.replicas ?? (recorded !== undefined ? Number(recorded) : undefined);
        if (replicas === undefined) {
          throw new InvalidInputError(`deployments[${i}]: ${name} has no recorded replicas (not fenced) and none were given`);
        }
        plan.push({ name, replicas: checkReplicas(`deployments[${i}].replicas`, replicas) });
      }
      for (const p of plan) await setReplicas(c, target, p.name, p.replicas);
      for (const p of plan) await waitReplicas(c, target, p.name, p.replicas, defaultTimeout());
      for (const p of plan) {
        const d = await readDeployment(c, target, p.name);
        if (d.metadata?.annotations?.[ANNOTATIONS.fencedReplicas] !== undefined) {
          await annotateDeployment(c, target, d, { [ANNOTATIONS.fencedReplicas]: null, [ANNOTATIONS.fencedBy]: null });
        }
      }
      return plan;
    },

    /** `kubectl rollout restart`, idempotent: `restartedAt` comes from the workflow, so a retry does not restart twice. */
    async rolloutRestart({
      target,
      name,
      restartedAt,
      timeoutMs,
    }: {
      target: KubeTarget;
      name: string;
      restartedAt: string;
      timeoutMs?: number;
    }) {
      const c = clients(target);
      checkName('name', name);
      if (typeof restartedAt !== 'string' || Number.isNaN(Date.parse(restartedAt))) {
        throw new InvalidInputError(`restartedAt: must be an ISO timestamp (got ${String(restartedAt)})`);
      }
      const d = await readDeployment(c, target, name);
      if (d.spec?.template.metadata?.annotations?.[ANNOTATIONS.restartedAt] !== restartedAt) {
        await call(`restart ${target.namespace}/${name}`, () =>
          c.apps.patchNamespacedDeployment(
            {
              name,
              namespace: target.namespace,
              body: { spec: { template: { metadata: { annotations: { [ANNOTATIONS.restartedAt]: restartedAt } } } } },
            },
            strategicPatch,
          ),
        );
      }
      await waitReplicas(c, target, name, d.spec?.replicas ?? 1, defaultTimeout(timeoutMs));
      const after = await readDeployment(c, target, name);
      return { name, revision: Number(after.metadata?.annotations?.[ANNOTATIONS.revision] ?? 0) };
    },

    /**
     * `kubectl rollout undo`: the previous ReplicaSet's pod template (without pod-template-hash)
     * becomes the deployment's, and its annotations are copied over except the bookkeeping ones
     * kubectl skips (and our own records). Idempotent: given `fromRevision`, an undo that already
     * happened (the revision moved on) is not done again.
     */
    async rolloutUndo({
      target,
      name,
      fromRevision,
      toRevision,
      ifRestartedAt,
      timeoutMs,
    }: {
      target: KubeTarget;
      name: string;
      fromRevision?: number;
      toRevision?: number;
      /** Undo only the restart stamped with this `restartedAt` (a rotation's rollback): once undone, a retry finds another stamp. */
      ifRestartedAt?: string;
      timeoutMs?: number;
    }) {
      const c = clients(target);
      checkName('name', name);
      const d = await readDeployment(c, target, name);
      const current = Number(d.metadata?.annotations?.[ANNOTATIONS.revision] ?? 0);
      const replicas = d.spec?.replicas ?? 1;
      const stamped = d.spec?.template.metadata?.annotations?.[ANNOTATIONS.restartedAt];
      if ((fromRevision !== undefined && current !== fromRevision) || (ifRestartedAt !== undefined && stamped !== ifRestartedAt)) {
        await waitReplicas(c, target, name, replicas, defaultTimeout(timeoutMs));
        return { name, fromRevision, toRevision: toRevision ?? null, revision: current, changed: false };
      }
      const rsList = await call(`list replicasets of ${name}`, () =>
        c.apps.listNamespacedReplicaSet({ namespace: target.namespace, labelSelector: selectorOf(d) }),
      );
      const owned = rsList.items
        .filter((rs) => rs.metadata?.ownerReferences?.some((o) => o.uid === d.metadata?.uid))
        .map((rs) => ({ rs, revision: Number(rs.metadata?.annotations?.[ANNOTATIONS.revision] ?? 0) }))
        .sort((a, b) => b.revision - a.revision);
      const previous = toRevision !== undefined ? owned.find((x) => x.revision === toRevision) : owned.find((x) => x.revision < current);
      if (!previous) {
        throw new NotFoundError(
          toRevision !== undefined
            ? `toRevision: revision ${toRevision} of ${name} not found`
            : `deployment: ${name} has no previous revision to roll back to`,
        );
      }
      const template = structuredClone(previous.rs.spec!.template!);
      delete template.metadata?.labels?.['pod-template-hash'];
      const skip = new Set([
        'kubectl.kubernetes.io/last-applied-configuration',
        ANNOTATIONS.revision,
        'deployment.kubernetes.io/revision-history',
        'deployment.kubernetes.io/desired-replicas',
        'deployment.kubernetes.io/max-replicas',
        'deprecated.deployment.rollback.to',
      ]);
      const keep = (k: string) => skip.has(k) || k.startsWith('mimir-recovery.io/');
      const annotations: Record<string, string> = {};
      for (const [k, v] of Object.entries(d.metadata?.annotations ?? {})) if (keep(k)) annotations[k] = v;
      for (const [k, v] of Object.entries(previous.rs.metadata?.annotations ?? {})) if (!keep(k)) annotations[k] = v;
      await call(`undo ${target.namespace}/${name}`, () =>
        c.apps.patchNamespacedDeployment(
          {
            name,
            namespace: target.namespace,
            body: [
              { op: 'test', path: '/metadata/resourceVersion', value: d.metadata!.resourceVersion },
              { op: 'replace', path: '/spec/template', value: template },
              { op: 'replace', path: '/metadata/annotations', value: annotations },
            ],
          },
          jsonPatch,
        ),
      );
      await waitReplicas(c, target, name, replicas, defaultTimeout(timeoutMs));
      const after = await readDeployment(c, target, name);
      return {
        name,
        fromRevision: current,
        toRevision: previous.revision,
        revision: Number(after.metadata?.annotations?.[ANNOTATIONS.revision] ?? 0),
        changed: true,
      };
    },

    /** Restricts an ingress to `sourceRange` (the runbook's whitelist-source-range), remembering the previous value once. */
    async restrictIngress({ target, name, sourceRange }: { target: KubeTarget; name: string; sourceRange: string }) {
      const c = clients(target);
      checkName('name', name);
      checkSourceRange(sourceRange);
      const ing = await call(`read ingress ${target.namespace}/${name}`, () =>
        c.networking.readNamespacedIngress({ name, namespace: target.namespace }),
      );
      const ann = ing.metadata?.annotations ?? {};
      const previous = ann[ANNOTATIONS.previousSourceRange] ?? ann[ANNOTATIONS.sourceRange] ?? UNSET;
      const patch: Record<string, string> = { [ANNOTATIONS.sourceRange]: sourceRange };
      if (ann[ANNOTATIONS.previousSourceRange] === undefined) patch[ANNOTATIONS.previousSourceRange] = previous;
      await call(`restrict ingress ${target.namespace}/${name}`, () =>
        c.networking.patchNamespacedIngress(
          { name, namespace: target.namespace, body: { metadata: { resourceVersion: ing.metadata!.resourceVersion, annotations: patch } } },
          mergePatch,
        ),
      );
      return { name, previous: previous === UNSET ? null : previous, current: sourceRange };
    },

    /** Puts back the allow-list recorded by restrictIngress (removing it if there was none). */
    async restoreIngress({ target, name }: { target: KubeTarget; name: string }) {
      const c = clients(target);
      checkName('name', name);
      const ing = await call(`read ingress ${target.namespace}/${name}`, () =>
        c.networking.readNamespacedIngress({ name, namespace: target.namespace }),
      );
      const ann = ing.metadata?.annotations ?? {};
      const recorded = ann[ANNOTATIONS.previousSourceRange];
      if (recorded === undefined) return { name, restored: false, current: ann[ANNOTATIONS.sourceRange] ?? null };
      const value = recorded === UNSET ? null : recorded;
      await call(`restore ingress ${target.namespace}/${name}`, () =>
        c.networking.patchNamespacedIngress(
          {
            name,
            namespace: target.namespace,
            body: {
              metadata: {
                resourceVersion: ing.metadata!.resourceVersion,
                annotations: { [ANNOTATIONS.sourceRange]: value, [ANNOTATIONS.previousSourceRange]: null },
              },
            },
          },
          mergePatch,
        ),
      );
      return { name, restored: true, current: value };
    },

    /**
     * Streams the logs of every container of every pod matching `selector` into `dir`, at most
     * `concurrency` at a time; each file appears under its final name only when complete, and a
     * retry keeps files already captured.
     */
    async captureLogs({
      target,
      selector: givenSelector,
      deployment,
      dir,
      concurrency = 8,
      tailLines,
    }: {
      target: KubeTarget;
      /** The pods: a label selector, or the pods of `deployment` (its own selector). */
      selector?: string;
      deployment?: string;
      dir: string;
      concurrency?: number;
      tailLines?: number;
    }): Promise<{
      pods: number;
      files: (WrittenFile & { pod: string; container: string })[];
      missing: { pod: string; container: string; reason: string }[];
    }> {
      const c = clients(target);
      if (typeof dir !== 'string' || !isAbsolute(dir)) throw new InvalidInputError(`dir: must be an absolute path (got ${String(dir)})`);
      if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64)
        throw new InvalidInputError('concurrency: must be an integer from 1 to 64');
      const selector =
        deployment !== undefined ? selectorOf(await readDeployment(c, target, checkName('deployment', deployment))) : givenSelector;
      if (!selector) throw new InvalidInputError('selector: give a label selector or a deployment');
      const pods = await call(`list pods ${selector} in ${target.namespace}`, () =>
        c.core.listNamespacedPod({ namespace: target.namespace, labelSelector: selector }),
      );
      const jobs = pods.items.flatMap((p) => (p.spec?.containers ?? []).map((ct) => ({ pod: p.metadata!.name!, container: ct.name })));
      mkdirSync(dir, { recursive: true });
      const files: (WrittenFile & { pod: string; container: string })[] = [];
      const missing: { pod: string; container: string; reason: string }[] = [];
      let next = 0;
      const worker = async () => {
        while (next < jobs.length) {
          const job = jobs[next++]!;
          const file = join(dir, `${job.pod}_${job.container}.log`);
          try {
            const written = existsSync(file)
              ? await sha256File(file)
              : await streamLog(c, transport, target.namespace, job.pod, job.container, file, tailLines);
            files.push({ ...written, ...job });
          } catch (e) {
            if (!(e instanceof NotFoundError)) throw e;
            missing.push({ ...job, reason: e.message }); // the pod went away between listing and reading
          }
          progress({ captured: files.length, missing: missing.length, of: jobs.length });
        }
      };
      const transport = await logTransport(c, concurrency);
      try {
        await Promise.all(Array.from({ length: Math.min(concurrency, jobs.length) }, worker));
      } finally {
        transport?.agent.destroy();
      }
      files.sort((a, b) => a.file.localeCompare(b.file));
      return { pods: pods.items.length, files, missing };
    },

    /** The namespace's recent events, oldest first, as YAML. */
    async captureEvents({ target, file }: { target: KubeTarget; file: string }): Promise<WrittenFile & { count: number }> {
      const c = clients(target);
      if (!isAbsolute(file)) throw new InvalidInputError(`file: must be an absolute path (got ${file})`);
      const events = await call(`list events in ${target.namespace}`, () => c.core.listNamespacedEvent({ namespace: target.namespace }));
      const when = (e: k8s.CoreV1Event) => String(e.lastTimestamp ?? e.eventTime ?? e.metadata?.creationTimestamp ?? '');
      const items = [...events.items].sort((a, b) => when(a).localeCompare(when(b)));
      return { ...(await writeOnce(file, stringify({ namespace: target.namespace, items }))), count: items.length };
    },

    /** The namespace's state (`kubectl get all` and more) as YAML; secrets by name and keys only, never their values. */
    async captureState({ target, file }: { target: KubeTarget; file: string }): Promise<WrittenFile & { counts: Record<string, number> }> {
      const c = clients(target);
      if (!isAbsolute(file)) throw new InvalidInputError(`file: must be an absolute path (got ${file})`);
      const namespace = target.namespace;
      const [deployments, replicaSets, pods, services, ingresses, configMaps, hpas, pvcs, secrets] = await Promise.all([
        call('list deployments', () => c.apps.listNamespacedDeployment({ namespace })),
        call('list replicasets', () => c.apps.listNamespacedReplicaSet({ namespace })),
        call('list pods', () => c.core.listNamespacedPod({ namespace })),
        call('list services', () => c.core.listNamespacedService({ namespace })),
        call('list ingresses', () => c.networking.listNamespacedIngress({ namespace })),
        call('list configmaps', () => c.core.listNamespacedConfigMap({ namespace })),
        call('list hpas', () => c.autoscaling.listNamespacedHorizontalPodAutoscaler({ namespace })),
        call('list pvcs', () => c.core.listNamespacedPersistentVolumeClaim({ namespace })),
        call('list secrets', () => c.core.listNamespacedSecret({ namespace })),
      ]);
      const state = {
        namespace,
        deployments: deployments.items,
        replicaSets: replicaSets.items,
        pods: pods.items,
        services: services.items,
        ingresses: ingresses.items,
        configMaps: configMaps.items,
        horizontalPodAutoscalers: hpas.items,
        persistentVolumeClaims: pvcs.items,
        secrets: secrets.items.map((s) => ({ name: s.metadata?.name, type: s.type, keys: Object.keys(s.data ?? {}).sort() })),
      };
      const counts = Object.fromEntries(Object.entries(state).flatMap(([k, v]) => (Array.isArray(v) ? [[k, v.length]] : [])));
      return { ...(await writeOnce(file, stringify(state))), counts };
    },

    /**
     * Rotates one key of a secret to a cryptographically random value. The previous data is kept in
     * `<name>-rollback-<rotationId>` (created once, never overwritten) until the caller deletes it;
     * the secret is annotated with the rotation, so a retry does not rotate twice. Returns
     * fingerprints only: no secret value leaves this activity.
     */
    async rotateSecretKey({
      target,
      name,
      key,
      rotationId,
      bytes = 32,
    }: {
      target: KubeTarget;
      name: string;
      key: string;
      rotationId: string;
      bytes?: number;
    }) {
      const c = clients(target);
      checkName('name', name);
      checkName('rotationId', rotationId);
      if (typeof key !== 'string' || !/^[-._a-zA-Z0-9]+$/.test(key))
        throw new InvalidInputError(`key: '${String(key)}' is not a valid secret key`);
      if (!Number.isInteger(bytes) || bytes < 16 || bytes > 256) throw new InvalidInputError('bytes: must be an integer from 16 to 256');
      const backup = rollbackName(name, rotationId);
      const secret = await call(`read secret ${target.namespace}/${name}`, () =>
        c.core.readNamespacedSecret({ name, namespace: target.namespace }),
      );
      if (secret.metadata?.annotations?.[ANNOTATIONS.rotationId] !== rotationId) {
        try {
          await c.core.createNamespacedSecret({
            namespace: target.namespace,
            body: {
              metadata: {
                name: backup,
                labels: { 'mimir-recovery.io/rollback-of': name },
                annotations: { [ANNOTATIONS.rotationId]: rotationId },
              },
              type: secret.type,
              data: secret.data ?? {},
            },
          });
        } catch (e) {
          if (!(e instanceof k8s.ApiException && e.code === 409)) throw mapApiError(`create secret ${target.namespace}/${backup}`, e);
        }
        const value = randomBytes(bytes).toString('base64');
        await call(`rotate secret ${target.namespace}/${name}`, () =>
          c.core.patchNamespacedSecret(
            {
              name,
              namespace: target.namespace,
              body: {
                metadata: { resourceVersion: secret.metadata!.resourceVersion, annotations: { [ANNOTATIONS.rotationId]: rotationId } },
                data: { [key]: Buffer.from(value).toString('base64') },
              },
            },
            mergePatch,
          ),
        );
      }
      const now = await call(`read secret ${target.namespace}/${name}`, () =>
        c.core.readNamespacedSecret({ name, namespace: target.namespace }),
      );
      const old = await call(`read secret ${target.namespace}/${backup}`, () =>
        c.core.readNamespacedSecret({ name: backup, namespace: target.namespace }),
      );
      return {
        name,
        key,
        rotationId,
        backup,
        fingerprint: fingerprint(now.data?.[key]),
        previousFingerprint: fingerprint(old.data?.[key]),
      };
    },

    /** Puts back the data kept by rotateSecretKey (rollback). Idempotent. */
    async restoreSecret({ target, name, rotationId }: { target: KubeTarget; name: string; rotationId: string }) {
      const c = clients(target);
      checkName('name', name);
      const backup = rollbackName(name, checkName('rotationId', rotationId));
      const old = await call(`read secret ${target.namespace}/${backup}`, () =>
        c.core.readNamespacedSecret({ name: backup, namespace: target.namespace }),
      );
      const cur = await call(`read secret ${target.namespace}/${name}`, () =>
        c.core.readNamespacedSecret({ name, namespace: target.namespace }),
      );
      const data: Record<string, string | null> = { ...(old.data ?? {}) };
      for (const k of Object.keys(cur.data ?? {})) if (!(k in data)) data[k] = null;
      await call(`restore secret ${target.namespace}/${name}`, () =>
        c.core.patchNamespacedSecret(
          { name, namespace: target.namespace, body: { metadata: { annotations: { [ANNOTATIONS.rotationId]: null } }, data } },
          mergePatch,
        ),
      );
      return { name, rotationId, restoredFrom: backup };
    },

    /** Deletes the rollback copy once the new secret is verified. A missing copy is already deleted. */
    async deleteSecretBackup({ target, name, rotationId }: { target: KubeTarget; name: string; rotationId: string }) {
      const c = clients(target);
      const backup = rollbackName(checkName('name', name), checkName('rotationId', rotationId));
      try {
        await c.core.deleteNamespacedSecret({ name: backup, namespace: target.namespace });
      } catch (e) {
        if (!(e instanceof k8s.ApiException && e.code === 404)) throw mapApiError(`delete secret ${target.namespace}/${backup}`, e);
      }
      return { deleted: backup };
    },

    /** Merges `data` into a configmap (the runbook's CACHE_ENABLED patch). */
    async patchConfigMap({ target, name, data }: { target: KubeTarget; name: string; data: Record<string, string> }) {
      const c = clients(target);
      checkName('name', name);
      if (!data || typeof data !== 'object' || Object.values(data).some((v) => typeof v !== 'string')) {
        throw new InvalidInputError('data: must map keys to string values');
      }
      const cm = await call(`patch configmap ${target.namespace}/${name}`, () =>
        c.core.patchNamespacedConfigMap({ name, namespace: target.namespace, body: { data } }, mergePatch),
      );
      return { name, keys: Object.keys(data).sort(), resourceVersion: cm.metadata?.resourceVersion };
    },

    /** Sets a container's memory request/limit (the runbook's High Memory Usage patch); the rollout that follows is awaited. */
    async patchContainerMemory({
      target,
      name,
      container,
      request,
      limit,
      timeoutMs,
    }: {
      target: KubeTarget;
      name: string;
      container: string;
      request?: string;
      limit?: string;
      timeoutMs?: number;
    }) {
      const c = clients(target);
      checkName('name', name);
      if (request === undefined && limit === undefined) throw new InvalidInputError('request/limit: give at least one memory quantity');
      for (const [f, q] of [
        ['request', request],
        ['limit', limit],
      ] as const)
        if (q !== undefined) parseQuantity(f, q);
      if (request && limit && parseQuantity('request', request) > parseQuantity('limit', limit)) {
        throw new InvalidInputError(`request: ${request} is larger than limit ${limit}`);
      }
      const d = await readDeployment(c, target, name);
      if (!d.spec?.template.spec?.containers.some((ct) => ct.name === container)) {
        throw new NotFoundError(`container: '${container}' is not a container of deployment ${target.namespace}/${name}`);
      }
      const resources = { ...(request ? { requests: { memory: request } } : {}), ...(limit ? { limits: { memory: limit } } : {}) };
      await call(`patch resources of ${target.namespace}/${name}`, () =>
        c.apps.patchNamespacedDeployment(
          { name, namespace: target.namespace, body: { spec: { template: { spec: { containers: [{ name: container, resources }] } } } } },
          strategicPatch,
        ),
      );
      await waitReplicas(c, target, name, d.spec.replicas ?? 1, defaultTimeout(timeoutMs));
      return { name, container, ...resources };
    },

    /** Grows a PVC's storage request (never shrinks; the storage class must allow expansion). */
    async expandPvc({ target, name, size }: { target: KubeTarget; name: string; size: string }) {
      const c = clients(target);
      checkName('name', name);
      const want = parseQuantity('size', size);
      const pvc = await call(`read pvc ${target.namespace}/${name}`, () =>
        c.core.readNamespacedPersistentVolumeClaim({ name, namespace: target.namespace }),
      );
      const current = pvc.spec?.resources?.requests?.storage;
      if (current && parseQuantity('current size', current) >= want) return { name, size: current, changed: false };
      await call(`expand pvc ${target.namespace}/${name}`, () =>
        c.core.patchNamespacedPersistentVolumeClaim(
          { name, namespace: target.namespace, body: { spec: { resources: { requests: { storage: size } } } } },
          mergePatch,
        ),
      );
      return { name, size, changed: true, previous: current ?? null };
    },

    // DR drills: labelled copies of deployments in a scratch namespace, and their removal by that label.
    /**
     * Creates in `target` a copy of each `source` deployment, named `<name>-<suffix>`, carrying `labels` (on
     * itself, its selector and its pods) and `annotations`, at `replicas`, and waits until every copy is
     * ready. The copies get `env` instead of the source's references to config maps and secrets (no
     * production secret reaches them; the references left out are returned). Idempotent: a copy that
     * exists already is scaled to `replicas`.
     */
    async deployCopies({
      source,
      target,
      deployments,
      suffix,
      labels,
      annotations = {},
      env = {},
      timeoutMs,
    }: {
      source: KubeTarget;
      target: KubeTarget;
      deployments: { name: string; replicas: number }[];
      suffix: string;
      labels: Record<string, string>;
      annotations?: Record<string, string>;
      env?: Record<string, string>;
      timeoutMs?: number;
    }) {
      const [from, c] = [clients(source), clients(target)];
      if (source.context === target.context && source.namespace === target.namespace)
        throw new InvalidInputError(`target: copies must go to another namespace than ${source.namespace}`);
      if (!Array.isArray(deployments) || deployments.length === 0)
        throw new InvalidInputError('deployments: must list at least one deployment');
      if (Object.keys(labels ?? {}).length === 0) throw new InvalidInputError('labels: copies must carry a label to delete them by');
      const copies = deployments.map(({ name, replicas }, i) => ({
        name: checkName(`deployments[${i}]`, `${checkName(`deployments[${i}].name`, name)}-${checkName('suffix', suffix)}`),
        copyOf: name,
        replicas: checkReplicas(`deployments[${i}].replicas`, replicas),
        omittedRefs: [] as string[],
      }));
      for (const copy of copies) {
        const d = await readDeployment(from, source, copy.copyOf);
        const { metadata: podMeta, spec: podSpec } = d.spec!.template;
        const containers = podSpec!.containers.map((ct) => {
          for (const e of ct.envFrom ?? []) copy.omittedRefs.push(`${ct.name}: envFrom ${e.configMapRef?.name ?? e.secretRef?.name}`);
          for (const e of ct.env ?? []) if (e.valueFrom) copy.omittedRefs.push(`${ct.name}: env ${e.name}`);
          const plain = (ct.env ?? []).filter((e) => !e.valueFrom && !(e.name in env));
          return { ...ct, envFrom: undefined, env: [...plain, ...Object.entries(env).map(([name, value]) => ({ name, value }))] };
        });
        const body: k8s.V1Deployment = {
          metadata: {
            name: copy.name,
            labels: { ...d.metadata?.labels, ...labels },
            annotations: { ...annotations, 'mimir-recovery.io/copy-of': `${source.namespace}/${copy.copyOf}` },
          },
          spec: {
            replicas: copy.replicas,
            selector: { matchLabels: { ...d.spec!.selector.matchLabels, ...labels } },
            template: { metadata: { labels: { ...podMeta?.labels, ...labels }, annotations }, spec: { ...podSpec!, containers } },
          },
        };
        try {
          await c.apps.createNamespacedDeployment({ namespace: target.namespace, body });
        } catch (e) {
          if (!(e instanceof k8s.ApiException && e.code === 409))
            throw mapApiError(`create deployment ${target.namespace}/${copy.name}`, e);
          await setReplicas(c, target, copy.name, copy.replicas);
        }
        progress({ step: 'created', deployment: copy.name });
      }
      for (const copy of copies) await waitReplicas(c, target, copy.name, copy.replicas, defaultTimeout(timeoutMs));
      return copies;
    },

    /** Deletes every deployment matching `selector` (`key=value`) in `target` and waits until their pods are gone. Idempotent. */
    async deleteLabelled({ target, selector, timeoutMs }: { target: KubeTarget; selector: string; timeoutMs?: number }) {
      const c = clients(target);
      if (typeof selector !== 'string' || !/^[a-z0-9.-]+(\/[a-z0-9.-]+)?=[a-z0-9]([a-z0-9._-]*[a-z0-9])?$/i.test(selector))
        throw new InvalidInputError(`selector: '${String(selector)}' must be one label such as mimir-recovery.io/drill=abc`);
      const { namespace } = target;
      const found = await call(`list deployments ${selector}`, () =>
        c.apps.listNamespacedDeployment({ namespace, labelSelector: selector }),
      );
      const deleted: string[] = [];
      for (const d of found.items) {
        const name = d.metadata!.name!;
        try {
          await c.apps.deleteNamespacedDeployment({ name, namespace, propagationPolicy: 'Background' });
          deleted.push(name);
        } catch (e) {
          if (!(e instanceof k8s.ApiException && e.code === 404)) throw mapApiError(`delete deployment ${namespace}/${name}`, e);
        }
      }
      await waitUntil(`nothing labelled ${selector} in ${namespace}`, defaultTimeout(timeoutMs), async () => {
        const [ds, pods] = await Promise.all([
          call(`list deployments ${selector}`, () => c.apps.listNamespacedDeployment({ namespace, labelSelector: selector })),
          call(`list pods ${selector}`, () => c.core.listNamespacedPod({ namespace, labelSelector: selector })),
        ]);
        return { done: ds.items.length + pods.items.length === 0, state: { deployments: ds.items.length, pods: pods.items.length } };
      });
      return { namespace, selector, deleted };
    },

    /** Repoints an ExternalName Service (the entry point users resolve) at `externalName`; a no-op when it points there already. */
    async repointService({ target, name, externalName }: { target: KubeTarget; name: string; externalName: string }) {
      const c = clients(target);
      checkName('name', name);
      checkName('externalName', externalName);
      const svc = await call(`read service ${target.namespace}/${name}`, () =>
        c.core.readNamespacedService({ name, namespace: target.namespace }),
      );
      if (svc.spec?.type !== 'ExternalName') {
        throw new InvalidInputError(`service: ${target.namespace}/${name} is of type ${svc.spec?.type ?? 'ClusterIP'}, not ExternalName`);
      }
      const previous = svc.spec.externalName ?? null;
      if (previous === externalName) return { name, externalName, previous, changed: false };
      await call(`repoint service ${target.namespace}/${name}`, () =>
        c.core.patchNamespacedService(
          {
            name,
            namespace: target.namespace,
            body: { metadata: { resourceVersion: svc.metadata!.resourceVersion }, spec: { externalName } },
          },
          mergePatch,
        ),
      );
      return { name, externalName, previous, changed: true };
    },
  };
}

export type KubernetesActivities = ReturnType<typeof createKubernetesActivities>;

function rollbackName(name: string, rotationId: string): string {
  return `${name}-rollback-${rotationId}`.slice(0, 253).replace(/[-.]+$/, '');
}

/** A secret value's fingerprint (SHA-256 prefix), which is all a rotation reports of it. */
export function fingerprint(b64: string | undefined): string | null {
  return b64 ? createHash('sha256').update(Buffer.from(b64, 'base64')).digest('hex').slice(0, 16) : null;
}

/** A comma-separated list of CIDRs, as the nginx ingress annotation takes it. */
export function checkSourceRange(value: unknown): string {
  const parts = typeof value === 'string' ? value.split(',').map((p) => p.trim()) : [];
  const bad = typeof value === 'string' ? badCidrs(value) : [];
  if (parts.length === 0 || parts.some((p) => p === '') || bad.length > 0) {
    throw new InvalidInputError(
      `sourceRange: '${String(value)}' must be a comma-separated list of CIDRs such as 10.0.0.0/8${bad.length ? ` (bad: ${bad.join(', ')})` : ''}`,
    );
  }
  return parts.join(',');
}

const UNITS: Record<string, number> = { '': 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, Ti: 1024 ** 4 };

/** A Kubernetes memory/storage quantity in bytes (`512Mi`, `2Gi`, `1G`). */
export function parseQuantity(field: string, q: string): number {
  const m = /^(\d+(?:\.\d+)?)(k|M|G|T|Ki|Mi|Gi|Ti)?$/.exec(String(q));
  if (!m) throw new InvalidInputError(`${field}: '${q}' is not a quantity such as 512Mi or 2Gi`);
  return Number(m[1]) * UNITS[m[2] ?? '']!;
}

/**
 * A keep-alive TLS transport for a batch of log reads. The client library's `Log` opens a new
 * connection (and TLS handshake) for every read, which dominates when capturing hundreds of pods;
 * this one reuses up to `maxSockets` connections. Credentials come from the kubeconfig as the
 * library applies them; with a proxy or plain HTTP the library's own path is used instead.
 */
interface LogTransport {
  server: string;
  agent: Agent;
  headers: Record<string, string>;
}

async function logTransport(c: Clients, maxSockets: number): Promise<LogTransport | undefined> {
  const cluster = c.kc.getCurrentCluster();
  if (!cluster || cluster.proxyUrl || !cluster.server.startsWith('https:')) return undefined;
  const opts: RequestOptions & { headers?: Record<string, string> } = {};
  await c.kc.applyToHTTPSOptions(opts);
  const headers: Record<string, string> = { ...(opts.headers ?? {}) };
  if (opts.auth) headers.Authorization = `Basic ${Buffer.from(opts.auth).toString('base64')}`;
  const agent = new Agent({
    keepAlive: true,
    maxSockets,
    ca: opts.ca,
    cert: opts.cert,
    key: opts.key,
    pfx: opts.pfx,
    passphrase: opts.passphrase,
    servername: opts.servername,
    ...(opts.rejectUnauthorized !== undefined ? { rejectUnauthorized: opts.rejectUnauthorized } : {}),
  });
  return { server: cluster.server, agent, headers };
}

/** GET a pod's log over the transport: the response stream, or an ApiException with the server's status. */
function openLog(t: LogTransport, namespace: string, pod: string, container: string, tailLines?: number): Promise<IncomingMessage> {
  const url = new URL(`${t.server.replace(/\/$/, '')}/api/v1/namespaces/${namespace}/pods/${pod}/log`);
  url.searchParams.set('container', container);
  url.searchParams.set('timestamps', 'true');
  if (tailLines) url.searchParams.set('tailLines', String(tailLines));
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { agent: t.agent, headers: t.headers, signal: activityContext()?.cancellationSignal }, (res) => {
      if (res.statusCode === 200) return resolve(res);
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => reject(new k8s.ApiException(res.statusCode ?? 500, 'log request failed', body, {})));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** Streams one container's log to `file` (temp file renamed when complete), hashing as it goes. */
async function streamLog(
  c: Clients,
  transport: LogTransport | undefined,
  namespace: string,
  pod: string,
  container: string,
  file: string,
  tailLines?: number,
): Promise<WrittenFile> {
  const tmp = `${file}.partial-${process.pid}`;
  const out = createWriteStream(tmp);
  const hash = createHash('sha256');
  let bytes = 0;
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      bytes += chunk.length;
      out.write(chunk, cb);
    },
    final(cb) {
      out.end(cb);
    },
  });
  const what = `logs of ${namespace}/${pod}/${container}`;
  if (transport) {
    // Backpressure end to end: the response is read only as fast as the file is written.
    const res = await call(what, () => openLog(transport, namespace, pod, container, tailLines));
    await call(what, () => pipeline(res, sink));
  } else {
    const done = new Promise<void>((resolve, reject) => {
      sink.on('finish', resolve);
      sink.on('error', reject);
      out.on('error', reject);
    });
    await call(what, () =>
      c.log.log(namespace, pod, container, sink, { follow: false, timestamps: true, ...(tailLines ? { tailLines } : {}) }),
    );
    await done;
  }
  renameSync(tmp, file);
  return { file, bytes, sha256: hash.digest('hex') };
}
