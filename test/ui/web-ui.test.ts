/**
 * Temporal Web UI tells the deploy story: headless Chromium (Debian's, driven by playwright-core) opens the UI of a
 * real dev server, filters workflows by the FluiApp search attribute, opens a finished deploy and finds the activity
 * summaries. Saves a screenshot (test-results/web-ui.png).
 */
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { chromium } from 'playwright-core';
import { startDeploy } from '../../src/client/index.ts';
import { lookupTool } from '../../dev/tools.ts';
import { pushImage } from '@flui/github-emulator/registry-push';
import { catalogApp, createApplication, useStack } from '../helpers/stack.ts';

describe('Temporal Web UI', () => {
  const stack = useStack({ ports: { ui: undefined } });

  it('finds deploys by app and shows what each activity did', async () => {
    const s = stack();
    const app = await createApplication(s, { name: 'webui-hello' });
    const { workflowId } = await startDeploy(s.client, app, { taskQueue: s.config.temporal.taskQueue });
    await s.client.workflow.getHandle(workflowId).result();
    // Another app, so the filter has something to filter out.
    const image = `${s.registryHost}/library/other:1`;
    await pushImage(image, {
      files: { a: 'b' },
      credentials: { username: s.env.REGISTRY_USERNAME!, password: s.env.REGISTRY_PASSWORD! },
    });
    const other = await startDeploy(s.client, catalogApp(image, 'webui-other'), {
      taskQueue: s.config.temporal.taskQueue,
    });
    await s.client.workflow.getHandle(other.workflowId).result();

    const browser = await chromium.launch({
      executablePath: lookupTool('chromium', 'FLUI_CHROMIUM') ?? '/usr/bin/chromium',
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--no-first-run',
      ],
    });
    try {
      const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
      const query = encodeURIComponent('FluiApp="default/webui-hello"');
      await page.goto(`${s.temporal!.uiUrl}/namespaces/default/workflows?query=${query}`);
      const row = page.getByRole('link', { name: workflowId });
      await row.first().waitFor({ timeout: 30_000 });
      assert.equal(await page.getByRole('link', { name: other.workflowId }).count(), 0, 'the filter hides other apps');
      await row.first().click();
      for (const summary of [
        'ensureWorkflowFile • Write the build pipeline to acme/webui-hello@main if it changed',
        'ensureRegistryCredential • Store the registry push credential as a CI secret of acme/webui-hello',
        'triggerRun • Start the CI run',
        'resolveImage • Resolve',
        'rolloutImage • Roll out',
      ]) {
        await page.getByText(summary).first().waitFor({ timeout: 30_000 });
      }
      await mkdir('test-results', { recursive: true });
      await page.screenshot({ path: 'test-results/web-ui.png' });
    } finally {
      await browser.close();
    }
  });
});
