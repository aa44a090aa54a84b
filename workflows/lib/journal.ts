// The step journal: each step's name, start, end, outcome, actor and details. It powers the status
// query, the UI's current details and the post-incident report.
import { setCurrentDetails } from '@temporalio/workflow';
import type { JournalEntry, StepOutcome } from '../types.js';

export const SYSTEM_ACTOR = 'mimir-recovery';

/** The deepest message of a failure chain (an ActivityFailure's own message is only "Activity task failed"). */
export function rootMessage(err: unknown): string {
  let e: unknown = err;
  while (e instanceof Error && e.cause instanceof Error) e = e.cause;
  return e instanceof Error ? e.message : String(e);
}

export class Journal {
  readonly entries: JournalEntry[] = [];

  constructor(private readonly headline: () => string) {}

  /** Runs `fn` as one journaled step: running, then succeeded (or `outcome`) or failed with the root cause. */
  async step<T>(
    step: string,
    title: string,
    fn: () => Promise<T>,
    opts: { details?: (result: T) => Record<string, unknown>; outcome?: StepOutcome; actor?: string } = {},
  ): Promise<T> {
    const entry = this.open(step, title, opts.actor);
    try {
      const result = await fn();
      this.close(entry, opts.outcome ?? 'succeeded', opts.details?.(result));
      return result;
    } catch (err) {
      entry.error = rootMessage(err);
      this.close(entry, 'failed');
      throw err;
    }
  }

  /** Opens an entry that the caller closes (gates, waits). */
  open(step: string, title: string, actor = SYSTEM_ACTOR, outcome: StepOutcome = 'running'): JournalEntry {
    const entry: JournalEntry = { step, title, startedAt: new Date().toISOString(), outcome, actor };
    this.entries.push(entry);
    this.publish();
    return entry;
  }

  close(entry: JournalEntry, outcome: StepOutcome, details?: Record<string, unknown>, actor?: string): void {
    entry.endedAt = new Date().toISOString();
    entry.outcome = outcome;
    if (details) entry.details = { ...entry.details, ...details };
    if (actor) entry.actor = actor;
    this.publish();
  }

  /** Records an instantaneous event (a skipped step, an escalation). */
  note(step: string, title: string, outcome: StepOutcome, details?: Record<string, unknown>, actor?: string): void {
    const entry = this.open(step, title, actor);
    this.close(entry, outcome, details);
  }

  /** Mirrors the journal into the workflow's current details, which the Temporal UI shows. */
  private publish(): void {
    const lines = this.entries.map((e) => `- ${e.outcome.padEnd(11)} ${e.title}${e.actor !== SYSTEM_ACTOR ? ` (${e.actor})` : ''}`);
    setCurrentDetails(`**${this.headline()}**\n\n${lines.join('\n')}`);
  }
}
