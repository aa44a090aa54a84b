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
