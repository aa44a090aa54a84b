// mimir-recovery: start procedures, approve or reject their gates, read their status, run the sandbox.
import { Command, CommanderError, Option } from 'commander';
import { userInfo } from 'node:os';
import { pathToFileURL } from 'node:url';
import { connect, decide, list, startProcedure, status, UsageError, type MimirClient } from './client.js';
import {
  deleteDrills,
  drillScheduleId,
  listDrills,
  OVERLAP_POLICIES,
  pauseDrills,
  scheduleDrill,
  triggerDrill,
  unpauseDrills,
} from './drills.js';
import { PROCEDURES } from './procedures.js';
import { renderReport, renderStatus } from './render.js';

const defaultActor = () => process.env.MIMIR_ACTOR ?? userInfo().username;

async function withClient<T>(actor: string, fn: (c: MimirClient) => Promise<T>): Promise<T> {
  const c = await connect(actor);
  try {
    return await fn(c);
  } finally {
    await c.close();
  }
}

function parseJson(text: string): Record<string, unknown> {
  try {
    const v: unknown = JSON.parse(text);
    if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    /* reported below */
  }
  throw new UsageError(`--input must be a JSON object, such as '{"site":"primary"}'`);
}

function positiveInt(name: string) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new UsageError(`${name} must be a positive integer (got '${v}')`);
    return n;
  };
}

export function buildCli(): Command {
  const program = new Command('mimir-recovery')
    .description(
      'Durable, human-gated automation of the Mimir incident runbook on Temporal.\nConnection: TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_PROFILE (Temporal environment configuration).',
    )
    .showHelpAfterError()
    .exitOverride();

  program
    .command('start')
    .description(`start a procedure (${Object.keys(PROCEDURES).join(', ')}); prints its workflow ID`)
    .argument('<procedure>', 'procedure name')
    .requiredOption('--site <site>', 'site from the profile, such as primary or dr')
    .option('--as <person>', 'who is starting it (may not approve it)', defaultActor())
    .option('--incident <id>', 'incident ID, such as INC-1234 (part of the workflow ID)')
    .addOption(new Option('--severity <sev>', 'incident severity').choices(['SEV-1', 'SEV-2', 'SEV-3', 'SEV-4']))
    .option('--idle-for <duration>', 'connection-cleanup: terminate sessions idle longer than this (default 1h)')
    .option('--max-sessions <n>', 'connection-cleanup: refuse to terminate more than n sessions', positiveInt('--max-sessions'))
    .option('--backup <name>', 'database-recovery: the backup to restore')
    .option('--jobs <n>', 'database-recovery: parallel pg_restore jobs', positiveInt('--jobs'))
    .option('--dry-run', 'return the plan and change nothing')
    .option('--deployments <names>', 'breach-containment, credential-rotation: affected deployments, comma-separated')
    .option('--rotate-credentials', 'breach-containment: also rotate credentials (a child credential-rotation)')
    .option('--input <json>', 'further input fields as a JSON object')
    .option('--json', 'print the result as JSON')
    .action(async (procedure: string, o: Record<string, string | number | boolean | undefined>) => {
      const input: Record<string, unknown> = {
        ...(o.input ? parseJson(String(o.input)) : {}),
        site: o.site,
        requestedBy: o.as,
        ...(o.incident ? { incidentId: o.incident } : {}),
        ...(o.severity ? { severity: o.severity } : {}),
        ...(o.idleFor ? { idleFor: o.idleFor } : {}),
        ...(o.maxSessions ? { maxSessions: o.maxSessions } : {}),
        ...(o.backup ? { source: { backup: o.backup } } : {}),
        ...(o.jobs ? { jobs: o.jobs } : {}),
        ...(o.dryRun ? { dryRun: true } : {}),
        ...(o.deployments
          ? {
              deployments: String(o.deployments)
                .split(',')
                .map((d) => d.trim()),
            }
          : {}),
        ...(o.rotateCredentials ? { rotateCredentials: true } : {}),
      };
      const started = await withClient(String(o.as), (c) => startProcedure(c, procedure, input));
      if (o.json) console.log(JSON.stringify(started));
      else console.log(`started ${started.workflowId}\n  status:  mimir-recovery status ${started.workflowId}`);
    });

  const what = { approve: 'approve the open gate', reject: 'reject the open gate', retry: 'at a failure gate: run the failed step again' };
  for (const decision of ['approve', 'reject', 'retry'] as const) {
    program
      .command(decision)
      .description(`${what[decision]} of a procedure`)
      .argument('<workflow-id>', 'the procedure, as printed by start or list')
      .option('--gate <name>', 'the gate (default: the one that is open)')
      .option('--as <person>', `who ${decision}s`, defaultActor())
      .option('--comment <text>', 'why; recorded in the journal')
      .action(async (workflowId: string, o: { gate?: string; as: string; comment?: string }) => {
        const r = await withClient(o.as, (c) => decide(c, workflowId, decision, { gate: o.gate, by: o.as, comment: o.comment }));
        const more = r.remaining > 0 ? `; ${r.remaining} more approval(s) needed` : '';
        const done = { approve: 'approved', reject: 'rejected', retry: 'asked to retry at' }[decision];
        console.log(`${done} gate '${r.gate}' of ${workflowId} as ${r.by}${more}`);
      });
  }

  program
    .command('status')
    .description('show the journal, the open gate and the outcome of a procedure')
    .argument('<workflow-id>')
    .option('--json', 'print as JSON')
    .action(async (workflowId: string, o: { json?: boolean }) => {
      const v = await withClient(defaultActor(), (c) => status(c, workflowId));
      console.log(o.json ? JSON.stringify(v, null, 2) : renderStatus(v));
    });

  program
    .command('report')
    .description("render a procedure's incident report (the runbook's template: timeline, approvals, RTO/RPO, action items)")
    .argument('<workflow-id>')
    .action(async (workflowId: string) => {
      const v = await withClient(defaultActor(), (c) => status(c, workflowId));
      console.log(renderReport(v));
    });

  program
    .command('list')
    .description('list procedures (running ones unless --all)')
    .option('--all', 'include finished procedures')
    .option('--procedure <name>', 'only this procedure')
    .option('--incident <id>', 'only this incident')
    .option('--json', 'print as JSON')
    .action(async (o: { all?: boolean; procedure?: string; incident?: string; json?: boolean }) => {
      const rows = await withClient(defaultActor(), (c) => list(c, o));
      if (o.json) return console.log(JSON.stringify(rows, null, 2));
      if (rows.length === 0) return console.log(o.all ? 'no procedures' : 'no running procedures (--all shows finished ones)');
      for (const r of rows) console.log(`${r.workflowId}  ${r.procedure}  ${r.site}  ${r.status}  ${r.phase}  ${r.incident}  ${r.started}`);
    });

  program
    .command('evidence')
    .description("an incident's evidence store")
    .command('verify')
    .description('re-hash every artefact and the manifest of an incident; exit 1 and name the file if anything changed')
    .argument('<incident>', 'the incident (its evidence path, such as INC-1234)')
    .option('--root <dir>', "the evidence store's root (default: the profile's security.evidence.root)")
    .option('--json', 'print as JSON')
    .action(async (incident: string, o: { root?: string; json?: boolean }) => {
      const { verifyEvidence, renderVerification } = await import('./evidence.js');
      const v = await verifyEvidence(incident, o);
      console.log(o.json ? JSON.stringify(v, null, 2) : renderVerification(v));
      if (!v.ok) throw new Error(`evidence of ${incident} does not verify: ${[...v.changed, ...v.missing, ...v.unexpected].join(', ')}`);
    });

  const sandbox = program
    .command('sandbox')
    .description('the local sandbox: Temporal dev server, PostgreSQL primary and DR standby, worker');
  sandbox
    .command('up')
    .description('bring the sandbox up (idempotent)')
    .option('--worker', 'also start the worker in the background')
    .action(async (o: { worker?: boolean }) => {
      const { sandboxInstance, sandboxUp, sandboxEnv } = await import('../sandbox/index.js');
      const inst = sandboxInstance();
      const started = Date.now();
      const { changed } = await sandboxUp(inst, { worker: o.worker, log: (l) => console.log(l) });
      const env = sandboxEnv(inst);
      console.log(
        [
          '',
          changed ? `Sandbox up in ${((Date.now() - started) / 1000).toFixed(1)}s.` : 'All is up already; nothing to do.',
          `Temporal Web UI: ${env.TEMPORAL_UI_URL}`,
          `Your shell:      eval "$(npx mimir-recovery sandbox env)"`,
          `Try:             npx mimir-recovery start connection-cleanup --site primary --as alice --idle-for 10m`,
          `                 npx mimir-recovery approve <workflow-id> --as bob`,
          `Stop:            npm stop`,
        ].join('\n'),
      );
    });
  sandbox
    .command('down')
    .description('stop the sandbox (state is kept unless --purge)')
    .option('--purge', 'also delete its state directory')
    .action(async (o: { purge?: boolean }) => {
      const { sandboxInstance, sandboxDown } = await import('../sandbox/index.js');
      const stopped = await sandboxDown(sandboxInstance(), o);
      console.log(stopped.length ? `stopped: ${stopped.join(', ')}` : 'nothing was running');
    });
  sandbox
    .command('env')
    .description('print shell export lines for the sandbox (eval "$(mimir-recovery sandbox env)")')
    .action(async () => {
      const { sandboxInstance, sandboxEnv, exportLines } = await import('../sandbox/index.js');
      console.log(exportLines(sandboxEnv(sandboxInstance())));
    });
  sandbox
    .command('status')
    .description('show what is running')
    .action(async () => {
      const { sandboxInstance, sandboxStatus } = await import('../sandbox/index.js');
      for (const [k, v] of Object.entries(await sandboxStatus(sandboxInstance()))) console.log(`${k.padEnd(16)} ${v}`);
    });
  addDrillCommands(program);
  return program;
}

/** `mimir-recovery drill ...`: DR drills on a Temporal Schedule (client/drills.ts). */
function addDrillCommands(program: Command) {
  const drill = program.command('drill').description('DR drills on a Temporal Schedule (one per site: dr-drill-<site>)');
  const site = () => new Option('--site <site>', 'the site whose backups are drilled').default('primary');
  drill
    .command('schedule')
    .description("create or update the site's drill schedule")
    .requiredOption('--cron <expr>', "cron expression, such as '0 3 * * *'")
    .addOption(
      new Option('--overlap <policy>', 'when a drill is still running at the next time')
        .choices(Object.keys(OVERLAP_POLICIES))
        .default('skip'),
    )
    .option('--timezone <tz>', 'time zone of the cron expression (default UTC)')
    .addOption(site())
    .option('--as <person>', "who schedules it (recorded as the drills' requester)", defaultActor())
    .action(async (o: { cron: string; overlap: string; timezone?: string; site: string; as: string }) => {
      const r = await withClient(o.as, (c) => scheduleDrill(c, { ...o, requestedBy: o.as }));
      console.log(
        `${r.created ? 'created' : 'updated'} schedule ${r.scheduleId}; next runs: ${r.nextRuns.slice(0, 3).join(', ') || 'none'}`,
      );
    });
  for (const [name, text] of [
    ['pause', "pause the site's drill schedule"],
    ['unpause', "unpause the site's drill schedule"],
  ] as const) {
    drill
      .command(name)
      .description(text)
      .addOption(site())
      .option('--note <text>', 'why (shown in the schedule)')
      .option('--as <person>', 'who', defaultActor())
      .action(async (o: { site: string; note?: string; as: string }) => {
        const note = o.note ?? `${name}d by ${o.as}`;
        await withClient(o.as, (c) => (name === 'pause' ? pauseDrills(c, o.site, note) : unpauseDrills(c, o.site, note)));
        console.log(`${name}d schedule ${drillScheduleId(o.site)}`);
      });
  }
  drill
    .command('trigger')
    .description("run a drill now from the site's schedule")
    .addOption(site())
    .addOption(new Option('--overlap <policy>', 'override the overlap policy for this run').choices(Object.keys(OVERLAP_POLICIES)))
    .action(async (o: { site: string; overlap?: string }) => {
      await withClient(defaultActor(), (c) => triggerDrill(c, o.site, o.overlap));
      console.log(`triggered schedule ${drillScheduleId(o.site)}; see: mimir-recovery drill list`);
    });
  drill
    .command('list')
    .description('the drill schedules with their recent runs and results')
    .option('--site <site>', 'only this site')
    .option('--json', 'print as JSON')
    .action(async (o: { site?: string; json?: boolean }) => {
      const rows = await withClient(defaultActor(), (c) => listDrills(c, o));
      if (o.json) return console.log(JSON.stringify(rows, null, 2));
      if (rows.length === 0) return console.log('no drill schedules (mimir-recovery drill schedule --cron ... creates one)');
      for (const s of rows) {
        console.log(
          `${s.scheduleId}  cron '${s.cron}'  overlap ${s.overlap}  ${s.paused ? `PAUSED (${s.note})` : 'active'}  next ${s.nextRuns[0] ?? '-'}`,
        );
        for (const r of s.recentRuns) {
          const result = r.outcome
            ? `${r.outcome}  RTO ${r.rtoSeconds}s  RPO ${r.rpoSeconds}s${r.missed?.length ? `  (${r.missed.join('; ')})` : ''}`
            : (r.failure ?? '');
          console.log(`  ${r.scheduledAt}  ${r.workflowId}  ${r.status}  ${result}`);
        }
      }
    });
  drill
    .command('delete')
    .description("delete the site's drill schedule (runs already started go on)")
    .addOption(site())
    .action(async (o: { site: string }) => {
      await withClient(defaultActor(), (c) => deleteDrills(c, o.site));
      console.log(`deleted schedule ${drillScheduleId(o.site)}`);
    });
}

export async function main(argv: string[]): Promise<number> {
  try {
    await buildCli().parseAsync(argv, { from: 'user' });
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
    if (e instanceof UsageError) {
      console.error(`mimir-recovery: ${e.message}`);
      return 2;
    }
    console.error(`mimir-recovery: ${(e as Error).message}`);
    return 1;
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  process.exitCode = await main(process.argv.slice(2));
}
