// The saga: every destructive step registers how to undo it before it runs; on failure the
// compensations run newest first, each journaled, none skipped because an earlier one failed.
import { CancellationScope } from '@temporalio/workflow';
import type { Journal } from './journal.js';

interface Compensation {
  step: string;
  title: string;
  undo: () => Promise<unknown>;
}

export class Saga {
  private readonly compensations: Compensation[] = [];

  constructor(private readonly journal: Journal) {}

  /** Registers an undo action; call it before the action it undoes. */
  add(step: string, title: string, undo: () => Promise<unknown>): void {
    this.compensations.push({ step, title, undo });
  }

  /** Registers an undo action unless one is registered for `step` already (a retried step). */
  addOnce(step: string, title: string, undo: () => Promise<unknown>): void {
    if (!this.compensations.some((c) => c.step === step)) this.add(step, title, undo);
  }

  /** Forgets compensations once their effect is permanent (for example after a verified unfence). */
  clear(): void {
    this.compensations.length = 0;
  }

  get pending(): string[] {
    return this.compensations.map((c) => c.step);
  }

  /** Runs all compensations, newest first, even if the workflow is being cancelled. Returns the failed ones. */
  async compensate(): Promise<string[]> {
    const failed: string[] = [];
    await CancellationScope.nonCancellable(async () => {
      while (this.compensations.length > 0) {
        const c = this.compensations.pop()!;
        try {
          await this.journal.step(`undo:${c.step}`, c.title, c.undo, { outcome: 'compensated' });
        } catch {
          failed.push(c.step);
        }
      }
    });
    return failed;
  }
}
