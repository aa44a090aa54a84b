// Notifications to people: a JSON webhook (chat bridge, paging service). Without a configured
// webhook the message goes to the worker log, so nothing is silently dropped.
import { log } from '@temporalio/activity';
import { NotifyError } from './errors.js';

export interface Notification {
  kind: 'escalation' | 'report' | 'alert';
  subject: string;
  text: string;
  workflowId: string;
  details?: Record<string, unknown>;
}

export function createNotifyActivities(deps: { webhookUrl?: string }) {
  return {
    async notify(n: Notification): Promise<{ delivered: 'webhook' | 'log' }> {
      if (!deps.webhookUrl) {
        log.warn('notification (no webhook configured)', { ...n });
        return { delivered: 'log' };
      }
      const res = await fetch(deps.webhookUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ ...n, sentAt: new Date().toISOString() }),
        signal: AbortSignal.timeout(10_000),
      }).catch((e: Error) => {
        throw new NotifyError(`notify: webhook unreachable: ${e.message}`);
      });
      if (!res.ok) throw new NotifyError(`notify: webhook answered ${res.status} ${res.statusText}`);
      return { delivered: 'webhook' };
    },
  };
}
