// The Temporal Web UI as an operator uses it, in headless Chromium: open the Start Workflow form,
// type the workflow type, the task queue and the procedure's single JSON input, start it, approve
// its gate from the workflow's page (Send an Update, or Send a Signal), and see it complete. Each
// procedure is one row of CASES; the worker is an in-process test worker polling the queue typed in.
import assert from 'node:assert/strict';
import type { Browser, Locator, Page } from 'playwright-core';
import type pg from 'pg';
import type { ConnectionCleanupResult, DrReport } from '../../workflows/types.js';
import { launchBrowser } from '../helpers/browser.js';
import { ensureDrPair, siteSql } from '../helpers/dr.js';
import { alive, closeAll, openSessions } from '../helpers/postgres.js';
import { testWorker, uniqueId, waitForStatus } from '../helpers/temporal.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface UiCase {
  title: string;
  workflowType: string;
  /** The single JSON input, exactly as typed into the form. */
  input: Record<string, unknown>;
  gate: string;
  /** How the UI sends the decision: the `approve` Update, or the `approveSignal` signal. */
  via: 'update' | 'signal';
  approval: { by: string; comment?: string };
  /** Prepares what the procedure needs; returns the cleanup and a check of the result. */
  prepare?: () => Promise<{ check: (result: unknown) => Promise<void>; cleanup: () => Promise<void> }>;
}

/** Idle sessions for connection cleanup to find (2 s idle), and a check that exactly they were ended. */
async function idleSessions() {
  let sessions: pg.Client[] = await openSessions(2, uniqueId('ui-leak'));
  await sleep(2500);
  return {
    check: async (result: unknown) => {
      const r = result as ConnectionCleanupResult;
      assert.equal(r.outcome, 'completed');
      assert.ok(r.terminated.length >= 2);
      for (const s of sessions) assert.equal(await alive(s), false, 'the idle sessions were terminated after the UI approval');
    },
    cleanup: async () => {
      await closeAll(sessions);
      sessions = [];
    },
  };
}

/** The seeded DR pair before a failover from the UI, a check that it ended with the DR site serving, and the pair back afterwards. */
async function failoverPair() {
  await ensureDrPair();
  return {
    check: async (result: unknown) => {
      const r = result as DrReport;
      assert.equal(r.outcome, 'completed');
      assert.equal(typeof r.rtoSeconds, 'number');
      const [row] = await siteSql<{ recovering: boolean }>('dr', 'SELECT pg_is_in_recovery() AS recovering');
      assert.equal(row?.recovering, false, 'the DR database was promoted');
    },
    cleanup: () => ensureDrPair(),
  };
}

const CASES: UiCase[] = [
  {
    title: 'connection cleanup, approved by Update',
    workflowType: 'connectionCleanupWorkflow',
    input: { site: 'primary', requestedBy: 'alice', incidentId: uniqueId('INC-UI'), idleFor: '2s' },
    gate: 'terminate',
    via: 'update',
    approval: { by: 'bob', comment: 'approved in the Temporal UI' },
    prepare: idleSessions,
  },
  {
    title: 'connection cleanup, approved by Signal',
    workflowType: 'connectionCleanupWorkflow',
    input: { site: 'primary', requestedBy: 'alice', idleFor: '2s' },
    gate: 'terminate',
    via: 'signal',
    approval: { by: 'carol' },
    prepare: idleSessions,
  },
  {
    title: 'DR failover, approved by Update',
    workflowType: 'drFailoverWorkflow',
    input: { site: 'primary', drSite: 'dr', requestedBy: 'ic-dave', incidentId: uniqueId('INC-UI'), severity: 'SEV-1' },
    gate: 'failover',
    via: 'update',
    approval: { by: 'alice' },
    prepare: failoverPair,
  },
];

/**
 * Types into a CodeMirror editor (the UI's JSON fields), replacing what it holds, then leaves it: the
 * UI takes the value when the editor loses focus (a click on the button while it has focus is lost).
 */
async function typeJson(page: Page, editor: Locator, value: unknown, blurOn: Locator) {
  await editor.click();
  await page.keyboard.press('Control+A');
  await page.keyboard.press('Delete');
  await page.keyboard.insertText(JSON.stringify(value));
  await blurOn.click();
}

describe('Temporal Web UI (headless Chromium)', function () {
  let browser: Browser;

  before(async function () {
    this.timeout(1_200_000); // the first run on a machine may install Chromium
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
  });

  for (const c of CASES) {
    it(`${c.title}: started from the Start Workflow form with its JSON input, approved from the workflow page, completes`, async () => {
      const prepared = await c.prepare?.();
      const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
      try {
        const w = await testWorker();
        const workflowId = uniqueId(`ui-${c.workflowType}`);
        const result = await w.run(async () => {
          await page.goto(`${process.env.TEMPORAL_UI_URL}/namespaces/default/workflows/start-workflow`);
          await page.locator('#workflowId').fill(workflowId);
          await page.locator('#taskQueue').fill(w.taskQueue);
          await page.locator('#workflowType').fill(c.workflowType);
          const heading = page.getByRole('heading', { name: 'Start Workflow' });
          await typeJson(page, page.locator('[aria-label="Data"][contenteditable="true"]').first(), c.input, heading);
          await page.getByRole('button', { name: 'Start Workflow', exact: true }).click();

          const handle = w.client.workflow.getHandle(workflowId);
          const waiting = await waitForStatus(handle, (s) => s.openGate?.name === c.gate, 60_000);
          assert.equal(waiting.requestedBy, c.input.requestedBy, 'the workflow runs with the JSON input typed into the form');
          // The workflow's page, loaded once the gate is open, lists its handlers (from its metadata query).
          await page.goto(`${process.env.TEMPORAL_UI_URL}/namespaces/default/workflows/${workflowId}`);
          await page.getByRole('button', { name: 'More Actions' }).click();
          const kind = c.via === 'update' ? 'Update' : 'Signal';
          await page.getByRole('menuitem', { name: new RegExp(`^Send an? ${kind}$`) }).click();
          const dialog = page.locator('dialog[open]');
          await dialog.getByTestId(`${c.via}-select-button`).click();
          await page.getByRole('option', { name: c.via === 'update' ? 'approve' : 'approveSignal', exact: true }).click();
          await typeJson(
            page,
            dialog.locator('[aria-label="Data"][contenteditable="true"]'),
            { gate: c.gate, ...c.approval },
            dialog.getByText('Single JSON payload supported.'),
          );
          await dialog.getByRole('button', { name: 'Submit' }).click();

          const r = await handle.result();
          await page.reload();
          await page
            .getByText(/^completed$/i)
            .first()
            .waitFor({ timeout: 30_000 });
          return r;
        });
        await prepared?.check(result);
        const journal = (result as { journal: { step: string; outcome: string; actor: string }[] }).journal;
        const gate = journal.find((e) => e.step === `gate:${c.gate}`)!;
        assert.deepEqual([gate.outcome, gate.actor], ['approved', c.approval.by], 'the approval from the UI is journaled with its sender');
      } finally {
        await page.close();
        await prepared?.cleanup();
      }
    });
  }
});
