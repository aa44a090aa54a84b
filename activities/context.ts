// The activity's Context when code runs inside an activity, and nothing when the same code runs
// outside one (sandbox seeding, benchmarks, scripts): heartbeats and cancellation become no-ops there.
import { Context } from '@temporalio/activity';

export function activityContext(): Context | undefined {
  try {
    return Context.current();
  } catch {
    return undefined;
  }
}

/** In an activity: heartbeat with progress, and stop if the activity was cancelled (a no-op outside one). */
export function progress(details: Record<string, unknown>): void {
  const ctx = activityContext();
  if (!ctx) return;
  ctx.heartbeat(details);
  if (ctx.cancellationSignal.aborted) throw ctx.cancellationSignal.reason;
}
