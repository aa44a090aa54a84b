// Inputs, outputs, plans and journal entries of every procedure: plain data, shared with the client.

export type Severity = 'SEV-1' | 'SEV-2' | 'SEV-3' | 'SEV-4';

/** Fields every procedure input carries. */
export interface ProcedureInputBase {
  /** Site name from the worker's site profile (for example `primary` or `dr`). */
  site: string;
  /** Who asked for this run; may not approve its own gates. */
  requestedBy: string;
  incidentId?: string;
  severity?: Severity;
  /** Override the profile's approval timings (durations such as `15m`), for drills and tests. */
  approval?: { escalateAfter?: string; deadline?: string };
}

export type StepOutcome =
  'running' | 'succeeded' | 'failed' | 'skipped' | 'waiting' | 'approved' | 'rejected' | 'timed-out' | 'retry' | 'compensated';

export interface JournalEntry {
  /** Machine name of the step, for example `terminate-sessions` or `gate:terminate`. */
  step: string;
  title: string;
  startedAt: string;
  endedAt?: string;
  outcome: StepOutcome;
  /** `mimir-recovery` for automated steps, a person for decisions. */
  actor: string;
  details?: Record<string, unknown>;
  error?: string;
}

export interface GateView {
  name: string;
  title: string;
  /** What the approver is asked to approve (the plan). */
  details: Record<string, unknown>;
  approvers: string[];
  required: number;
  approvals: { by: string; comment?: string; at: string }[];
  requestedBy: string;
  openedAt: string;
  escalateAt: string;
  deadlineAt: string;
  escalated: boolean;
  /** A failure gate: `retry` runs the failed step again. */
  allowRetry?: boolean;
}

export type ProcedurePhase = 'preflight' | 'running' | 'awaiting-approval' | 'compensating' | 'completed' | 'failed' | 'rejected';

export interface ProcedureStatus {
  procedure: string;
  workflowId: string;
  site: string;
  incidentId?: string;
  requestedBy: string;
  phase: ProcedurePhase;
  openGate?: GateView;
  journal: JournalEntry[];
}

/** A non-secret view of a site from the worker's profile, returned by preflight. */
export interface SiteView {
  name: string;
  kubernetes: { context: string; namespace: string; deployments: string[]; ingress?: string };
  database: { name: string; pod?: string };
  healthUrl?: string;
  /** How traffic is sent to this site in a failover (non-secret view). */
  traffic?: TrafficView;
  /** Whether the worker host manages this site's server (data directory): needed to rebuild it as a standby. */
  hasServer?: boolean;
  approvals: { approvers: string[]; escalateAfter: string; deadline: string };
}

export interface DecisionRequest {
  /** The gate decided on; defaults to the gate that is open. */
  gate?: string;
  /** Identity of the person deciding. */
  by: string;
  comment?: string;
}

export interface DecisionResult {
  gate: string;
  decision: 'approve' | 'reject' | 'retry';
  by: string;
  /** Approvals still needed before the gate opens (0 once decided). */
  remaining: number;
}

// --- Connection cleanup (the runbook's "Database Connection Issues") ---------------------------

export interface ConnectionCleanupInput extends ProcedureInputBase {
  /** Sessions idle longer than this are terminated (the runbook's `1 hour`). Default `1h`. */
  idleFor?: string;
  /** Refuse to terminate more sessions than this in one run. Default 500. */
  maxSessions?: number;
  /** Return the plan and change nothing. */
  dryRun?: boolean;
}

export interface DatabaseCheck {
  reachable: boolean;
  serverVersion: string;
  inRecovery: boolean;
  latencyMs: number;
}

export interface ConnectionCounts {
  byState: Record<string, number>;
  total: number;
  maxConnections: number;
}

export interface IdleSession {
  pid: number;
  user: string;
  application: string;
  clientAddr: string | null;
  backendStart: string;
  idleSince: string;
  idleSeconds: number;
}

export interface TerminationResult {
  terminated: number[];
  skipped: { pid: number; reason: string }[];
}

export interface ConnectionCleanupResult {
  outcome: 'completed' | 'nothing-to-do' | 'dry-run' | 'rejected';
  site: string;
  database: string;
  before: ConnectionCounts;
  after?: ConnectionCounts;
  candidates: IdleSession[];
  terminated: number[];
  skipped: { pid: number; reason: string }[];
  journal: JournalEntry[];
}

// --- Database recovery (the runbook's "Point-in-Time Recovery") ----------------------------------

export interface BaseBackupInfo {
  name: string;
  startedAt: string;
  finishedAt: string;
  /** First WAL segment the backup needs from the archive. */
  startWalFile: string;
  bytes: number;
}

export interface PointInTimePlan {
  /** The target, normalised to UTC. */
  targetTime: string;
  givenAs: string;
  baseBackup: BaseBackupInfo;
  walFrom: string;
  walTo: string;
  walFiles: number;
  walBytes: number;
}

export interface DatabaseRecoveryInput extends ProcedureInputBase {
  /** What to restore: a backup (a dump taken earlier, by name), or the database as it was at a time (base backup + WAL). */
  source: { backup: string } | { targetTime: string };
  /** Parallel jobs for pg_dump / pg_restore. Default 4. */
  jobs?: number;
  /** Return the plan and change nothing. */
  dryRun?: boolean;
  /** How long the `on-failure` gate waits before it rolls back. Default 30m. */
  onFailureDeadline?: string;
}

export interface DatabaseRecoveryPlan {
  site: string;
  database: string;
  backup?: {
    name: string;
    createdAt: string;
    lastCommitAt: string | null;
    bytes: number;
    items: number;
    tables: Record<string, { rows: number }>;
  };
  pointInTime?: PointInTimePlan;
  databaseCheck: DatabaseCheck;
  deployments: { name: string; replicas: number; hpa?: { minReplicas: number; maxReplicas: number } }[];
  safetyBackup: string;
}

export interface DatabaseRecoveryReport {
  outcome: 'completed' | 'dry-run' | 'rejected' | 'kept-fenced' | 'rolled-back';
  plan: DatabaseRecoveryPlan;
  restored?: {
    durationMs: number;
    bytes?: number;
    mbPerSecond?: number;
    attempt?: number;
    lastCommitAt?: string | null;
    walBytes?: number;
  };
  verification?: { ok: boolean; tables: number; articles: number | null; mismatches: unknown[] };
  /** Fence to healthy, in seconds. */
  rtoSeconds?: number;
  /** Data not in the restored database: from a backup, fence time minus its snapshot; to a point in time, target minus the last recovered commit. */
  rpoSeconds?: number;
  approvals: { gate: string; by: string; comment?: string; at: string }[];
  error?: string;
  journal: JournalEntry[];
}

// --- Breach containment and credential rotation (the runbook's "Security Incidents") -------------

export interface CredentialRotationInput extends ProcedureInputBase {
  incidentId: string;
  /** The secret and key to rotate; default: the profile's security.credentials. */
  secret?: string;
  key?: string;
  /** Deployments that read the secret, restarted after the rotation; default: the profile's consumers. */
  deployments?: string[];
  /** Users who logged in within this window must reset their password. Default `24h`. */
  resetUsersActiveWithin?: string;
  /** How long each rollout may take before the rotation is rolled back. Default `5m`. */
  rolloutTimeout?: string;
}

export interface CredentialRotationResult {
  outcome: 'rotated' | 'rolled-back';
  site: string;
  secret: string;
  key: string;
  rotationId: string;
  /** SHA-256 prefixes of the values, never the values. */
  fingerprint?: string | null;
  previousFingerprint?: string | null;
  /** The rollback copy: kept until the new key is verified (deleted then), kept after a rollback. */
  backup: string;
  backupDeleted: boolean;
  passwordReset: { touched: number; newlyFlagged: number; since: string };
  restarted: { name: string; revision: number }[];
  error?: string;
  journal: JournalEntry[];
}

export interface BreachContainmentInput extends ProcedureInputBase {
  incidentId: string;
  /** The affected deployments; default: the site's. */
  deployments?: string[];
  /** The ingress allow-list while isolated; default: the profile's security.internalRange (`10.0.0.0/8`). */
  allowedSourceRange?: string;
  /** Where in the evidence store (relative); default: the incident id. */
  evidencePath?: string;
  /** Pod logs captured at once (default 8). */
  logConcurrency?: number;
  /** pg_dump jobs (default 4). */
  dumpJobs?: number;
  /** Window of the authentication-failure query (default `1h`). */
  authFailuresWithin?: string;
  /** Also rotate the credentials (a child credential-rotation). */
  rotateCredentials?: boolean;
  /** How long the `release` gate waits for the security sign-off before it stays isolated. Default `7d`. */
  releaseDeadline?: string;
}

export interface BreachContainmentReport {
  outcome: 'released' | 'kept-isolated';
  site: string;
  incidentId: string;
  namespace: string;
  isolated: {
    deployments: { name: string; originalReplicas: number }[];
    ingress?: { name: string; previous: string | null; current: string };
  };
  evidence?: { incident: string; location: string; manifestSha256: string; artefacts: number; bytes: number };
  capture?: { pods: number; logFiles: number; missing: number; events: number; authFailures: number };
  notified?: string;
  rotation?: CredentialRotationResult;
  approvals: { gate: string; by: string; comment?: string; at: string }[];
  errors: string[];
  journal: JournalEntry[];
}

// --- DR drill (prove recoverability without touching production) -----------------------------------

export type DrDrillInput = ProcedureInputBase;

export interface DrDrillResult {
  /** `passed`: restored, verified, within both objectives. `missed-objectives`: restored and verified, too slow or too stale. */
  outcome: 'passed' | 'missed-objectives';
  site: string;
  drillId: string;
  baseBackup: { name: string; finishedAt: string };
  /** Drill start to the restore verified serving (and the app tier ready, when the site has one), in seconds. */
  rtoSeconds: number;
  /** The primary's newest commit minus the restore's newest commit, in seconds. */
  rpoSeconds: number;
  objectives: { rto: string; rpo: string };
  /** The objectives missed, in words; empty when passed. */
  missed: string[];
  verification: { tables: number; rows: Record<string, { restored: number; primaryNow: number }>; restoredLastCommitAt: string | null };
  teardown: {
    scratchDir: string;
    stopped: boolean;
    removed: boolean;
    /** The drill's Kubernetes objects deleted from the scratch namespace (by label), when the site has `drill.namespace`. */
    app?: { namespace: string; selector: string; deleted: string[] };
  };
  /** The app tier brought up in the scratch namespace, pointed at the scratch cluster; counted in the RTO. */
  app?: {
    namespace: string;
    database: string;
    deployments: { name: string; copyOf: string; replicas: number; omittedRefs: string[] }[];
    durationMs: number;
  };
  journal: JournalEntry[];
}
// --- DR failover and failback (the runbook's "Failover to DR Site") -----------------------------

export interface TrafficView {
  provider: 'manual' | 'kubernetes' | 'webhook';
  /** kubernetes: the entry point (`namespace/service`) and where it is pointed for this site. */
  entry?: string;
  target?: string;
  instructions?: string;
}

export interface DrFailoverInput extends ProcedureInputBase {
  /** The DR site to fail over to (a site of the profile with `traffic` configured). */
  drSite: string;
  /** Replicas per DR deployment; default: the primary's recorded replicas. */
  replicas?: Record<string, number>;
  /** How long to wait for the standby to replay everything the primary flushed. Default 60s. */
  catchUpTimeout?: string;
  /** Readiness: the most replay lag (seconds) accepted without the `force` gate. Default 30s. */
  maxLagSeconds?: number;
  /** Check readiness, report, and change nothing. */
  dryRun?: boolean;
}

export interface DrFailbackInput extends ProcedureInputBase {
  /** The site now serving (the DR site after a failover); `site` is the original primary to return to. */
  drSite: string;
  /** How long to wait for the rebuilt primary to catch up. Default 5m. */
  catchUpTimeout?: string;
  dryRun?: boolean;
}

export interface ReplicationState {
  primary: string;
  standby: string;
  primaryReachable: boolean;
  /** pg_current_wal_flush_lsn() of the primary. */
  primaryFlushLsn: string | null;
  /** The primary's last committed transaction (track_commit_timestamp). */
  primaryLastCommitAt: string | null;
  standbyInRecovery: boolean;
  /** pg_stat_wal_receiver.status: `streaming` when healthy. */
  receiverStatus: string | null;
  receiveLsn: string | null;
  replayLsn: string | null;
  /** pg_last_xact_replay_timestamp(). */
  lastReplayAt: string | null;
  /** WAL the standby has not replayed: primary flush minus replay (received minus replay when the primary is unreachable). */
  lagBytes: number | null;
  /** Commit time of the primary's last transaction minus that of the last one replayed; 0 when nothing is missing. */
  lagSeconds: number | null;
  checkedAt: string;
}

export interface CatchUp extends ReplicationState {
  caughtUp: boolean;
  /** `primary-flush` when compared with the primary; `last-received` when the primary was unreachable (an estimate). */
  basis: 'primary-flush' | 'last-received';
  waitedMs: number;
}

export interface HealthCheck {
  site: string;
  url: string;
  answered: boolean;
  healthy: boolean;
  httpStatus?: number;
  body?: unknown;
  error?: string;
}

export interface DrReadiness {
  ready: boolean;
  reasons: string[];
  replication: ReplicationState;
  drDeployments: { name: string; replicas: number }[];
  primaryDeployments: { name: string; replicas: number }[];
  drHealth: HealthCheck;
  traffic: TrafficView;
}

export interface DrReport {
  outcome: 'completed' | 'dry-run' | 'rejected' | 'not-ready' | 'fence-failed' | 'rolled-back' | 'kept-fenced' | 'failed';
  site: string;
  drSite: string;
  readiness?: DrReadiness;
  /** Approval to healthy, in seconds. */
  rtoSeconds?: number;
  /** WAL not replayed when the standby was promoted. */
  rpo?: { bytes: number | null; seconds: number | null; basis: CatchUp['basis']; replayLsn: string | null; primaryFlushLsn: string | null };
  /** Seconds per phase (orchestration vs database and Kubernetes waits), from the journal. */
  phases?: Record<string, number>;
  traffic?: { provider: string; previous?: string | null; now?: string };
  approvals: { gate: string; by: string; comment?: string; at: string }[];
  timeline: { at: string; step: string; outcome: string; title: string }[];
  error?: string;
  journal: JournalEntry[];
}
