// The runbook's "Suspected Data Breach" as one durable procedure. Containment has no gate in front of
// it (speed matters) but every action is journaled and reversible. The order fixes the runbook's:
// volatile evidence (pod logs, events, namespace state) is captured BEFORE the pods are scaled away;
// then isolate (deployments to 0, replicas recorded first; ingress to the internal range, previous
// allow-list recorded); preserve (a parallel dump and the failed-login query into the evidence
// store); seal the evidence (manifest of SHA-256s with chain of custody, read-only); notify the
// security contact with the manifest's hash; and only after a two-person security sign-off, release.
// A failure after isolation never unisolates on its own: the site stays contained, the error is
// journaled and sent to the security contact, and the release gate decides.
import { executeChild, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import type { credentialRotationWorkflow } from './credential-rotation.js';
import { breachContainmentInput } from './inputs.js';
import { rootMessage } from './lib/journal.js';
import { Procedure } from './lib/procedure.js';
import { dbQuery, evidenceCapture, k8sCall, k8sWait, notifyCall } from './lib/presets.js';
import { durationMs, parseInput } from './lib/validate.js';
import type { BreachContainmentInput, BreachContainmentReport } from './types.js';

const k8s = proxyActivities<Activities>({ ...k8sCall, summary: 'Kubernetes' });
const k8sLong = proxyActivities<Activities>({ ...k8sWait, summary: 'Kubernetes (waits for the cluster)' });
const capture = proxyActivities<Activities>({ ...evidenceCapture, summary: 'Evidence capture' });
const db = proxyActivities<Activities>({ ...dbQuery, summary: 'Database' });
const contact = proxyActivities<Activities>({ ...notifyCall, summary: 'Notify the security contact' });

export async function breachContainmentWorkflow(rawInput: BreachContainmentInput): Promise<BreachContainmentReport> {
  const input = parseInput(breachContainmentInput, rawInput);
  const proc = new Procedure('breach-containment', input);
  const { journal } = proc;
  const wf = workflowInfo();
  const errors: string[] = [];
  const approvals: BreachContainmentReport['approvals'] = [];
  /** A step whose failure must not stop containment: journaled as failed, kept in `errors`. */
  const tolerate = async <T>(p: Promise<T>): Promise<T | undefined> => {
    try {
      return await p;
    } catch (err) {
      errors.push(rootMessage(err));
      return undefined;
    }
  };

  // Preflight: the whole plan is checked before the first change.
  const site = await proc.resolveSite();
  const target = { context: site.kubernetes.context, namespace: site.kubernetes.namespace };
  const plan = await journal.step(
    'preflight',
    'Preflight: security settings, affected deployments present, evidence path inside the store',
    async () => {
      const security = await k8s.resolveSecurity();
      const deployments = await k8s.readReplicas({ target, deployments: input.deployments ?? site.kubernetes.deployments });
      const evidence = await k8s.openEvidence({ incident: input.evidencePath ?? input.incidentId });
      return {
        security,
        deployments: deployments.map((d) => ({ name: d.name, replicas: d.fencedReplicas ?? d.replicas })),
        evidence,
        sourceRange: input.allowedSourceRange ?? security.internalRange,
      };
    },
    {
      details: (p) => ({
        deployments: p.deployments,
        ingress: site.kubernetes.ingress ?? null,
        sourceRange: p.sourceRange,
        evidence: p.evidence.dir,
        contact: p.security.contact,
      }),
    },
  );
  const names = plan.deployments.map((d) => d.name);
  const dir = plan.evidence.dir;
  proc.phase = 'running';

  // 1. Volatile evidence first, while every pod still runs: logs (bounded concurrency), events and state in parallel.
  const captured = await tolerate(
    journal.step(
      'capture',
      `Capture volatile evidence before isolating: logs of every pod of ${names.join(', ')}, recent events, namespace state`,
      async () => {
        const logs = (async () => {
          const out = [];
          for (const name of names) {
            out.push(
              await capture.captureLogs({ target, deployment: name, dir: `${dir}/logs/${name}`, concurrency: input.logConcurrency }),
            );
          }
          return out;
        })();
        const [l, events, state] = await Promise.all([
          logs,
          k8s.captureEvents({ target, file: `${dir}/events.yaml` }),
          k8s.captureState({ target, file: `${dir}/state.yaml` }),
        ]);
        return {
          pods: l.reduce((t, x) => t + x.pods, 0),
          logFiles: l.reduce((t, x) => t + x.files.length, 0),
          missing: l.flatMap((x) => x.missing),
          events: events.count,
          state: state.counts,
        };
      },
      { details: (c) => ({ ...c }) },
    ),
  );

  // 2. Isolate: no gate, every action recorded so the release can put back exactly what was there.
  const fenced = await journal.step(
    'isolate',
    `Isolate: scale ${names.join(', ')} to 0 (replicas recorded first)`,
    () => k8sLong.fence({ target, deployments: names, by: wf.workflowId }),
    { details: (r) => ({ recorded: r }) },
  );
  const ingressName = site.kubernetes.ingress;
  const ingress = ingressName
    ? await journal.step(
        'restrict-ingress',
        `Restrict ingress ${ingressName} to ${plan.sourceRange} (previous allow-list recorded)`,
        () => k8s.restrictIngress({ target, name: ingressName, sourceRange: plan.sourceRange }),
        { details: (r) => ({ ...r }) },
      )
    : (journal.note('restrict-ingress', 'No ingress for this site in the profile: nothing to restrict', 'skipped'), undefined);

  // 3. Preserve: the database (parallel dump, one snapshot) and the failed logins, into the evidence store.
  const until = new Date();
  const since = new Date(until.getTime() - durationMs(input.authFailuresWithin)!);
  const [, auth] = await Promise.all([
    tolerate(
      journal.step(
        'dump',
        `Dump ${site.database.name} (pg_dump -Fd -j ${input.dumpJobs}) into the evidence store`,
        () => capture.dumpDatabase({ site: site.name, name: 'dump', jobs: input.dumpJobs, dir: `${dir}/database` }),
        { details: (m) => ({ bytes: m.bytes, tables: Object.keys(m.tables).length, lastCommitAt: m.lastCommitAt }) },
      ),
    ),
    tolerate(
      journal.step(
        'auth-failures',
        `Save the failed logins of the last ${input.authFailuresWithin} (activity_log)`,
        () =>
          db.captureAuthFailures({
            site: site.name,
            file: `${dir}/auth-failures.json`,
            since: since.toISOString(),
            until: until.toISOString(),
          }),
        { details: (r) => ({ count: r.count, sha256: r.sha256 }) },
      ),
    ),
  ]);

  // 4. Seal: manifest with every artefact's SHA-256 and the chain of custody, hashed, read-only.
  const sealed = await tolerate(
    journal.step(
      'seal-evidence',
      'Seal the evidence: manifest of SHA-256s with chain of custody, hashed; artefacts read-only',
      () =>
        capture.sealEvidence({
          incident: plan.evidence.incident,
          custody: {
            incidentId: input.incidentId,
            procedure: 'breach-containment',
            workflowId: wf.workflowId,
            runId: wf.runId,
            site: site.name,
            requestedBy: input.requestedBy,
            methods: {
              logs: 'Kubernetes pods/log of every container, streamed to a temp file, SHA-256 while writing, renamed when complete',
              'events.yaml': 'Kubernetes events of the namespace, oldest first',
              'state.yaml': 'Kubernetes objects of the namespace (secrets by name and keys only)',
              database: `pg_dump -Fd -j ${input.dumpJobs} in one exported snapshot, with per-table row counts and checksums`,
              'auth-failures.json': `activity_log failed logins from ${since.toISOString()} to ${until.toISOString()}`,
            },
          },
        }),
      { details: (s) => ({ ...s }) },
    ),
  );

  // Optional: the runbook's Immediate Response, as a child (its own journal and business ID).
  const rotation = input.rotateCredentials
    ? await tolerate(
        journal.step(
          'rotate-credentials',
          'Rotate credentials (child credential-rotation)',
          () =>
            executeChild<typeof credentialRotationWorkflow>('credentialRotationWorkflow', {
              workflowId: `credential-rotation-${site.name}-${input.incidentId}`,
              args: [
                {
                  site: site.name,
                  requestedBy: input.requestedBy,
                  incidentId: input.incidentId,
                  ...(input.severity ? { severity: input.severity } : {}),
                },
              ],
            }),
          { details: (r) => ({ outcome: r.outcome, fingerprint: r.fingerprint, usersTouched: r.passwordReset.touched, error: r.error }) },
        ),
      )
    : undefined;
  if (rotation?.outcome === 'rolled-back') errors.push(`credential rotation rolled back: ${rotation.error}`);

  // 5. Notify the security contact: timeline, affected systems, the manifest's hash.
  const affected = {
    site: site.name,
    namespace: target.namespace,
    deployments: fenced.map((f) => ({ name: f.name, originalReplicas: f.originalReplicas })),
    ...(ingress ? { ingress: { name: ingress.name, previous: ingress.previous, now: ingress.current } } : {}),
    database: site.database.name,
  };
  const notified = await tolerate(
    journal.step(
      'notify-security',
      'Notify the security contact: timeline, affected systems, evidence manifest hash',
      () =>
        contact.notifySecurity({
          kind: 'alert',
          subject: `${input.severity ?? 'SEV-1'}: suspected data breach contained on ${site.name} (${input.incidentId})`,
          text:
            `Isolated ${names.join(', ')} in ${target.namespace}` +
            (ingress ? `, ingress ${ingress.name} restricted to ${ingress.current}` : '') +
            `. Evidence sealed at ${sealed?.location ?? '(not sealed)'}, manifest SHA-256 ${sealed?.manifestSha256 ?? 'n/a'}. ` +
            `Release needs two security approvers: mimir-recovery approve ${wf.workflowId} --gate release.`,
          workflowId: wf.workflowId,
          details: {
            incidentId: input.incidentId,
            requestedBy: input.requestedBy,
            timeline: journal.entries.map((e) => ({ at: e.startedAt, step: e.step, outcome: e.outcome, title: e.title })),
            affected,
            evidence: sealed
              ? { location: sealed.location, manifestSha256: sealed.manifestSha256, artefacts: sealed.artefacts, bytes: sealed.bytes }
              : null,
            errors,
          },
        }),
      { details: (r) => ({ ...r }) },
    ),
  );

  // 6. Release only after the security sign-off: two approvers, never the requester.
  const release = await proc.approval(site, {
    name: 'release',
    title: `Security sign-off: release ${site.name} from isolation (${names.join(', ')} back to their recorded replicas, ingress to its previous allow-list)`,
    details: { affected, evidence: sealed ?? null, errors },
    approvers: plan.security.approvers,
    required: 2,
    deadline: input.releaseDeadline,
    onDeadline: 'reject',
  });
  release.approvals.forEach((a) => approvals.push({ gate: 'release', ...a }));
  const report = (outcome: BreachContainmentReport['outcome']): BreachContainmentReport => ({
    outcome,
    site: site.name,
    incidentId: input.incidentId,
    namespace: target.namespace,
    isolated: { deployments: affected.deployments, ...(ingress ? { ingress } : {}) },
    ...(sealed
      ? {
          evidence: {
            incident: sealed.incident,
            location: sealed.location,
            manifestSha256: sealed.manifestSha256,
            artefacts: sealed.artefacts,
            bytes: sealed.bytes,
          },
        }
      : {}),
    ...(captured
      ? {
          capture: {
            pods: captured.pods,
            logFiles: captured.logFiles,
            missing: captured.missing.length,
            events: captured.events,
            authFailures: auth?.count ?? 0,
          },
        }
      : {}),
    ...(notified ? { notified: notified.delivered } : {}),
    ...(rotation ? { rotation } : {}),
    approvals,
    errors,
    journal: journal.entries,
  });
  if (!release.approved) {
    journal.note('kept-isolated', 'Not released: the site stays isolated for the security team', 'skipped');
    proc.phase = 'rejected';
    return report('kept-isolated');
  }
  await journal.step(
    'unisolate',
    `Unisolate: ${names.join(', ')} back to their recorded replicas, wait until ready`,
    () => k8sLong.unfence({ target, deployments: fenced.map((f) => ({ name: f.name, replicas: f.originalReplicas })) }),
    { details: (r) => ({ restored: r }) },
  );
  if (ingressName) {
    await journal.step(
      'restore-ingress',
      `Restore ingress ${ingressName} to its previous allow-list`,
      () => k8s.restoreIngress({ target, name: ingressName }),
      { details: (r) => ({ ...r }) },
    );
  }
  proc.phase = 'completed';
  return report('released');
}
