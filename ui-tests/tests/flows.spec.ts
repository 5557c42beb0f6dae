/**
 * What a new user does in the browser, without typing a magic: pick the local fabric, run the
 * quickstart notebook and watch its progress and typed results, cancel a long cell, add a fabric
 * and see a bad credential refused.
 */
import { expect, test } from '@jupyterlab/galata';
import * as path from 'path';
import { fabricRow, openNewNotebook, openSidebar } from './helpers';

const QUICKSTART = path.resolve(__dirname, '../../notebooks/quickstart.ipynb');
const API = '/prophecy-jupyter/api/v1';
/** The Livy gateway of these tests (see playwright.config.js); they never have its token. */
const GATEWAY_URL = 'http://127.0.0.1:8997';
/** The Git server of these tests and the token it takes (set in playwright.config.js too). */
const GIT_URL = 'http://127.0.0.1:8996';
const GIT_TOKEN = 'ui-git-token-5b8e';

test.use({ autoGoto: true });

test('a new user runs the quickstart on the local fabric, with progress and typed results', async ({
  page,
  tmpPath
}, testInfo) => {
  test.setTimeout(300000);
  // A retry opens the notebook under another name: the first attempt's session keeps its path.
  const notebook = testInfo.retry ? `quickstart-retry${testInfo.retry}.ipynb` : 'quickstart.ipynb';
  await page.contents.uploadFile(QUICKSTART, `${tmpPath}/${notebook}`);
  await page.notebook.openByPath(`${tmpPath}/${notebook}`);
  await page.notebook.activate(notebook);
  const sidebar = await openSidebar(page);
  const local = fabricRow(sidebar, 'local');
  await local.getByRole('button', { name: 'Attach' }).click();
  await expect(local.getByRole('button', { name: 'Detach' })).toBeVisible();
  const toolbarItem = page.locator('.jp-NotebookPanel-toolbar .jp-ProphecyToolbarItem-button');
  await expect(toolbarItem).toContainText('local');

  const ran = page.notebook.run();
  // The first Spark cell starts the session and runs a job: its progress shows in the cell
  // and in the sidebar's session while it runs. (A retry finds the JVM warm from the first
  // attempt, and its cells may end before a bar is due.)
  if (!testInfo.retry) {
    await expect(page.locator('.jp-OutputArea-output progress').first()).toBeVisible({ timeout: 120000 });
    await expect(sidebar.locator('.jp-ProphecySidebar-run progress').first()).toBeVisible({ timeout: 60000 });
  }
  await ran;

  const outputs = page.locator('.jp-OutputArea-output');
  await expect(outputs.filter({ hasText: '20,000 orders' })).toHaveCount(1);
  const table = page.locator('.jp-OutputArea-output table').first();
  await expect(table).toContainText('north');
  await expect(table.locator('tbody tr')).toHaveCount(4);
  await expect(outputs.filter({ hasText: 'decimal128(20, 2)[pyarrow]' })).toHaveCount(1);
  await expect(outputs.filter({ hasText: 'Best region: north with revenue 299830.00' })).toHaveCount(1);
  await expect(page.locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')).toHaveCount(0);
  await expect(toolbarItem).toContainText('local · idle', { timeout: 30000 });
  await expect(sidebar.locator(`.jp-ProphecySidebar-session[aria-label$="/${notebook} on local"]`)).toContainText('idle');
});

test('a long cell on the fabric is cancelled from the sidebar', async ({ page, tmpPath }) => {
  test.setTimeout(300000);
  await openNewNotebook(page, `${tmpPath}/long.ipynb`, 'prophecy');
  const sidebar = await openSidebar(page);
  await fabricRow(sidebar, 'local').getByRole('button', { name: 'Attach' }).click();
  await expect(fabricRow(sidebar, 'local').getByRole('button', { name: 'Detach' })).toBeVisible();
  await page.notebook.setCell(0, 'code', 'import time\nfor tick in range(600):\n    time.sleep(0.5)');
  await page.notebook.selectCells(0);
  await page.keyboard.press('Control+Enter');

  const run = sidebar.locator('.jp-ProphecySidebar-run', { hasText: 'import time' });
  await expect(run).toContainText('running', { timeout: 120000 });
  await expect(run).toHaveScreenshot('running-statement.png', {
    mask: [run.locator('.jp-ProphecySidebar-progress')]
  });
  await run.getByRole('button', { name: 'Cancel import time' }).click();
  const output = page.locator('.jp-Cell').first().locator('.jp-OutputArea-output');
  await expect(output.filter({ hasText: /cancelled/i })).not.toHaveCount(0, { timeout: 60000 });
  await expect(run).toHaveCount(0, { timeout: 30000 });
  // The session is still there for the next cell.
  await page.notebook.setCell(0, 'code', 'spark.range(7).count()');
  await page.notebook.runCell(0);
  await expect(page.locator('.jp-Cell').first().locator('.jp-OutputArea')).toContainText('7');
  // Detaching closes the notebook's session, as %fabric detach does.
  await fabricRow(sidebar, 'local').getByRole('button', { name: 'Detach' }).click();
  await expect(page.locator('.jp-NotebookPanel-toolbar .jp-ProphecyToolbarItem-button')).toHaveText('No fabric');
  const session = sidebar.locator('.jp-ProphecySidebar-session[aria-label$="long.ipynb on local"]');
  await expect(session).toContainText('ended');
});

test('an admin adds a fabric in the sidebar and a bad credential is refused clearly', async ({ page, tmpPath }, testInfo) => {
  test.setTimeout(180000);
  // A retry runs against the same server, which has the fabric its first attempt created.
  const fabric = testInfo.retry ? `gateway-retry${testInfo.retry}` : 'gateway';
  const sidebar = await openSidebar(page);
  await sidebar.getByRole('button', { name: 'New fabric in team default' }).click();
  const form = sidebar.getByRole('form', { name: 'New fabric in team default' });
  await form.getByLabel('Name', { exact: true }).fill('bad name!');
  await form.getByLabel('Livy URL').fill(GATEWAY_URL);
  await form.getByLabel('Authentication').selectOption('bearer');
  await form.getByRole('button', { name: 'Create fabric' }).click();
  await expect(form.locator('#new-fabric-default-name-error')).toBeVisible();
  await form.getByLabel('Name', { exact: true }).fill(fabric);
  await form.getByLabel('Job sizes (JSON)').fill('{"S": {"driverMemory": "1g"}}');
  await form.getByRole('button', { name: 'Create fabric' }).click();
  await expect(form).toHaveCount(0);

  const row = fabricRow(sidebar, fabric);
  await expect(row).toContainText('livy');
  await row.getByRole('button', { name: fabric, exact: true }).click();
  await row.getByLabel(`Your token for default/${fabric}`).fill('not-the-token');
  await row.getByRole('button', { name: 'Save' }).click();
  await expect(row.getByText('Your token (set)')).toBeVisible();
  await row.getByRole('button', { name: 'Test connection' }).click();
  await expect(row.getByRole('status')).toContainText('refused the request (HTTP 401');

  await openNewNotebook(page, `${tmpPath}/refused.ipynb`, 'prophecy');
  await row.getByRole('button', { name: 'Attach' }).click();
  await expect(row.getByRole('button', { name: 'Detach' })).toBeVisible();
  await page.notebook.setCell(0, 'code', 'spark.range(3).count()');
  await page.notebook.runCell(0);
  const output = page.locator('.jp-Cell').first().locator('.jp-OutputArea');
  await expect(output).toContainText(`Fabric 'default/${fabric}' refused the request (HTTP 401`);
  await expect(output).toContainText('Check your credential');
  await expect(output).not.toContainText('not-the-token');
});

test('the sidebar works from the keyboard', async ({ page }) => {
  const sidebar = await openSidebar(page);
  const name = fabricRow(sidebar, 'local').getByRole('button', { name: 'local', exact: true });
  await name.focus();
  await page.keyboard.press('Enter');
  await expect(name).toHaveAttribute('aria-expanded', 'true');
  await page.keyboard.press('Tab');
  await expect(fabricRow(sidebar, 'local').getByRole('button', { name: 'Test connection' })).toBeFocused();
  await page.keyboard.press('Enter');
  await expect(fabricRow(sidebar, 'local').getByRole('status')).toContainText('Connected');
});

test("a notebook's pipeline is generated, committed and pushed from the sidebar", async ({ page, tmpPath }, testInfo) => {
  test.setTimeout(180000);
  // Each attempt has a project and repository of its own (playwright.config.js seeds both), so a
  // retry does not meet what the failed attempt created or pushed.
  const project = testInfo.retry ? `analytics-retry${testInfo.retry}` : 'analytics';
  const created = await page.request.post(`${API}/teams/default/projects`, {
    data: { name: project, url: `${GIT_URL}/${project}.git`, provider: 'generic' }
  });
  expect(created.status()).toBe(201);
  await page.contents.uploadFile(QUICKSTART, `${tmpPath}/orders.ipynb`);
  await page.notebook.openByPath(`${tmpPath}/orders.ipynb`);
  const sidebar = await openSidebar(page);
  await sidebar.getByRole('button', { name: 'Refresh git' }).click();
  const git = sidebar.locator('.jp-ProphecySidebar-git');
  await git.getByRole('combobox', { name: 'Project' }).selectOption({ label: `default/${project}` });
  await git.getByLabel(`Your Git token for default/${project}`).fill(GIT_TOKEN);
  await git.getByLabel(`Your account name for default/${project}`).fill('ana');
  await git.getByRole('button', { name: 'Save' }).click();
  // Reading the status never clones: the working copy comes with the first generate (or pull).
  await expect(git.getByRole('status', { name: 'Working copy' })).toContainText('No working copy yet', {
    timeout: 60000
  });
  // Each step below runs Git on the server (clone, diff, commit, push): a loaded machine gets time.
  const gitStep = { timeout: 30000 };
  await git.getByRole('button', { name: 'Generate pipeline' }).click();
  await expect(git).toContainText("Pipeline 'orders' (2 step(s)): changed.", { timeout: 60000 });
  await expect(git.getByRole('status', { name: 'Working copy' })).toContainText('pipelines/orders/pipeline.py', gitStep);
  await git.getByRole('button', { name: 'Diff' }).click();
  await expect(git.locator('.jp-mod-added', { hasText: '+def step_2():' })).toHaveCount(1, gitStep);
  await git.getByLabel('Commit message').fill('Orders by region');
  await git.getByRole('button', { name: 'Commit' }).click();
  await expect(git).toContainText(/Committed [0-9a-f]{8}\./, gitStep);
  await git.getByRole('button', { name: 'Push' }).click();
  await expect(git).toContainText('Pushed main.', gitStep);
  // The team's repository has the commit, asked as the same user as the sidebar.
  const projects = await page.evaluate(async url => (await fetch(url)).json(), `${API}/projects`);
  const id = projects.projects.find((p: { name: string }) => p.name === project).id;
  const history = await page.evaluate(async url => (await fetch(url)).json(), `${API}/projects/${id}/history`);
  expect(history.commits[0].message).toBe('Orders by region');
  await expect(sidebar).not.toContainText(GIT_TOKEN);
});
