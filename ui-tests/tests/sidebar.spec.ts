import { expect, test } from '@jupyterlab/galata';
import { fabricRow, openNewNotebook, openSidebar } from './helpers';

const API = '/prophecy-jupyter/api/v1';

test('the Prophecy sidebar lists the built-in local fabric', async ({ page }) => {
  const sidebar = await openSidebar(page);
  await expect(fabricRow(sidebar, 'local')).toBeVisible();
  await expect(sidebar.getByText('Open a notebook to attach it')).toBeVisible();
});

test('a notebook is attached from the sidebar', async ({ page, tmpPath }, testInfo) => {
  // A notebook of its own per attempt: an attempt that failed leaves its notebook attached.
  const name = testInfo.retry ? `attach-me-retry${testInfo.retry}.ipynb` : 'attach-me.ipynb';
  await openNewNotebook(page, `${tmpPath}/${name}`);
  // The notebook records its fabric too, and is saved, so the fabric travels with the file and its
  // pipeline. Its saves are counted in the page: "not changed" is no sign of it, as JupyterLab may
  // still change the notebook after our save (the kernel's language, once the kernel answers).
  await page.evaluate(() => {
    const win = window as any;
    win.prophecySaves = 0;
    win.jupyterapp.shell.currentWidget.context.saveState.connect((_: unknown, state: string) => {
      win.prophecySaves += state === 'completed' ? 1 : 0;
    });
  });
  const saves = () => page.evaluate(() => (window as any).prophecySaves as number);
  // The file is read only once saved: reading it through Jupyter while it is written can make
  // Jupyter's recovery of a half-written notebook lose it.
  const saved = async (savesBefore: number, expected: object) => {
    await expect.poll(saves, { timeout: 30000 }).toBeGreaterThan(savesBefore);
    const file = await (await page.request.get(`/api/contents/${tmpPath}/${name}`)).json();
    expect(file.content.metadata.prophecy).toEqual(expected);
  };
  const row = fabricRow(await openSidebar(page), 'local');
  let savesBefore = await saves();
  await row.getByRole('button', { name: 'Attach' }).click();
  await expect(row.getByRole('button', { name: 'Detach' })).toBeVisible();
  // Asked from the page itself, so as the same Jupyter user as the sidebar.
  const url = `${API}/attachments?notebook=${encodeURIComponent(`${tmpPath}/${name}`)}`;
  const answer = await page.evaluate(async address => (await fetch(address)).json(), url);
  expect(answer).toEqual({ notebook: `${tmpPath}/${name}`, fabric: 'local' });
  await saved(savesBefore, { fabric: 'local' });
  await expect(page.locator('.jp-NotebookPanel-toolbar .jp-ProphecyToolbarItem-button')).toContainText('local · no session');
  savesBefore = await saves();
  await row.getByRole('button', { name: 'Detach' }).click();
  await expect(row.getByRole('button', { name: 'Attach' })).toBeVisible();
  expect((await page.evaluate(async address => (await fetch(address)).json(), url)).fabric).toBeNull();
  await saved(savesBefore, {});
  await expect(page.locator('.jp-NotebookPanel-toolbar .jp-ProphecyToolbarItem-button')).toHaveText('No fabric');
});

test("a notebook's sessions on two fabrics show in the sidebar and the toolbar, and its metadata lists both", async ({
  page,
  tmpPath
}) => {
  test.setTimeout(180000);
  // Two fabrics of Snowpark's local emulator: cheap sessions, no account, no JVM.
  for (const name of ['offline', 'offline-b']) {
    const created = await page.request.post(`${API}/teams/default/fabrics`, {
      data: { name, kind: 'snowpark-local', settings: {} }
    });
    expect([201, 409]).toContain(created.status()); // 409: made by an earlier attempt of this test
  }
  const name = 'two-fabrics.ipynb';
  const notebook = `${tmpPath}/${name}`;
  await openNewNotebook(page, notebook);
  const sidebar = await openSidebar(page);
  await sidebar.getByRole('button', { name: 'Refresh fabrics' }).click();
  const offline = fabricRow(sidebar, 'offline');
  await offline.getByRole('button', { name: 'Attach' }).click();
  await expect(offline.getByRole('button', { name: 'Detach' })).toBeVisible();
  // The default fabric's session, and one on a second fabric as a `%%spark -f` cell would open it.
  for (const fabric of ['default/offline', 'default/offline-b']) {
    const opened = await page.request.post(`${API}/sessions`, { data: { notebook, fabric, wait: true } });
    expect(opened.status()).toBe(200);
  }

  const sessions = sidebar.getByRole('region', { name: `Sessions of ${notebook}` });
  const rows = sessions.locator('.jp-ProphecySidebar-session');
  await expect(rows).toHaveCount(2, { timeout: 30000 });
  await expect(rows.nth(0)).toHaveAttribute('aria-label', `Session of ${notebook} on default/offline`);
  await expect(rows.nth(0).locator('.jp-ProphecySidebar-default')).toHaveText('default');
  await expect(rows.nth(0)).toContainText('idle');
  await expect(rows.nth(1)).toHaveAttribute('aria-label', `Session of ${notebook} on default/offline-b`);
  await expect(rows.nth(1).locator('.jp-ProphecySidebar-default')).toHaveCount(0);
  await expect(rows.nth(1)).toContainText('idle');
  // The toolbar, by the fabrics' names, the default marked. With the sidebar open, this window's
  // notebook toolbar is too narrow for two fabrics: JupyterLab moves the item into its "…" menu.
  await page.click('[title="Prophecy"]');
  const toolbarItem = page.locator('.jp-NotebookPanel-toolbar .jp-ProphecyToolbarItem-button');
  const chips = toolbarItem.locator('.jp-ProphecyToolbarItem-chip');
  await expect(chips).toHaveText(['offline · idledefault', 'offline-b · idle']);
  await expect(toolbarItem).toHaveAttribute(
    'aria-label',
    'Fabrics: default/offline (default) · idle; default/offline-b · idle'
  );

  // The notebook lists the fabrics it uses, the default first, and keeps its default; saved with it.
  const expected = { fabric: 'default/offline', fabrics: ['default/offline', 'default/offline-b'] };
  const inPage = () =>
    page.evaluate(() => (window as any).jupyterapp.shell.currentWidget.context.model.getMetadata('prophecy'));
  await expect.poll(inPage).toEqual(expected);
  await page.notebook.save();
  await expect(page.locator('.jp-mod-dirty')).toHaveCount(0);
  const file = await (await page.request.get(`/api/contents/${notebook}`)).json();
  expect(file.content.metadata.prophecy).toEqual(expected);

  // A row's actions act on its own session: stopping the second fabric's keeps the default's.
  await page.click('[title="Prophecy"]');
  await rows.nth(1).getByRole('button', { name: 'Stop' }).click();
  await expect(rows.nth(1)).toContainText('ended');
  await expect(rows.nth(0)).toContainText('idle');
  await page.click('[title="Prophecy"]');
  await expect(chips).toHaveText(['offline · idle']);
  // Detaching closes the default fabric's session, as %fabric detach does.
  await page.click('[title="Prophecy"]');
  await offline.getByRole('button', { name: 'Detach' }).click();
  await expect(rows.nth(0)).toContainText('ended');
  await expect(toolbarItem).toHaveText('No fabric');
});

test('the prophecy commands are in the palette', async ({ page }) => {
  await page.notebook.createNew('palette.ipynb');
  const palette = page.locator('#modal-command-palette');
  // The modal palette closes when something else takes the focus (the new notebook's kernel
  // starting may): open it again until it stays open to be typed into.
  await expect(async () => {
    await page.menu.clickMenuItem('View>Activate Command Palette');
    await palette.locator('input').fill('Prophecy', { timeout: 3000 });
  }).toPass({ timeout: 60000 });
  const item = (label: string) => palette.locator('.lm-CommandPalette-item', { hasText: label });
  await expect(item('Open the Prophecy Sidebar')).toBeVisible();
  // Nothing to restart before the notebook has a session.
  await expect(item("Restart the Notebook's Session")).toHaveClass(/lm-mod-disabled/);
  await item('Attach Notebook to a Fabric…').click();
  const dialog = page.locator('.jp-Dialog');
  await dialog.locator('select').selectOption('local');
  await dialog.locator('.jp-mod-accept').click();
  await expect(page.locator('.jp-NotebookPanel-toolbar .jp-ProphecyToolbarItem-button')).toContainText('local');
  // The attachment is saved in the notebook (as in the sidebar's attach: a slow machine's save takes seconds).
  await expect(page.locator('.jp-mod-dirty')).toHaveCount(0, { timeout: 30000 });
});

for (const theme of ['light', 'dark']) {
  test(`the sidebar reads well in the ${theme} theme`, async ({ page }) => {
    if (theme === 'dark') {
      await page.theme.setDarkTheme();
    }
    const sidebar = await openSidebar(page);
    const builtIn = sidebar.getByRole('region', { name: 'Team built in' });
    await builtIn.getByRole('button', { name: 'local', exact: true }).click();
    await expect(builtIn).toHaveScreenshot(`built-in-fabric-${theme}.png`);
    await sidebar.getByRole('button', { name: 'New fabric in team default' }).click();
    const form = sidebar.getByRole('form', { name: 'New fabric in team default' });
    await expect(form).toHaveScreenshot(`new-fabric-form-${theme}.png`);
  });
}

test('a credential is set write-only and a failed connection test is shown by its fabric', async ({ page }, testInfo) => {
  // A retry runs against the same server, which has the fabric its first attempt created.
  const fabric = testInfo.retry ? `nowhere-retry${testInfo.retry}` : 'nowhere';
  const created = await page.request.post(`${API}/teams/default/fabrics`, {
    data: { name: fabric, kind: 'livy', settings: { url: 'http://127.0.0.1:9', auth: 'bearer' } }
  });
  expect(created.status()).toBe(201);
  const sidebar = await openSidebar(page);
  await sidebar.getByRole('button', { name: 'Refresh fabrics' }).click();
  const row = fabricRow(sidebar, fabric);
  await row.getByRole('button', { name: fabric }).click();
  await expect(row.getByText('Your token (not set)')).toBeVisible();
  await row.getByLabel(`Your token for default/${fabric}`).fill('s3cret-token');
  await row.getByRole('button', { name: 'Save' }).click();
  await expect(row.getByText('Your token (set)')).toBeVisible();
  await expect(row.getByLabel(`Your token for default/${fabric}`)).toHaveValue('');
  await row.getByRole('button', { name: 'Test connection' }).click();
  await expect(row.getByRole('status')).toContainText('Failed at tcp');
  const fabrics = await (await page.request.get(`${API}/fabrics`)).text();
  expect(fabrics).not.toContain('s3cret-token');
});

test.describe('the server half', () => {
  test.use({ autoGoto: false });

  test('of another version is reported in a dialog', async ({ page }) => {
    await page.route(/\/prophecy-jupyter\/api\/v1\/me(\?|$)/, async route => {
      const response = await route.fetch();
      await route.fulfill({ response, json: { ...(await response.json()), version: '0.0.1' } });
    });
    const loading = page.goto(); // galata waits for the launcher, which the dialog is in front of
    const dialog = page.locator('.jp-Dialog');
    // A fresh server's first page load can take longer than an assertion's default 5 s here.
    await expect(dialog).toContainText('The server extension is version 0.0.1; this sidebar is 0.1.0', {
      timeout: 30000
    });
    await dialog.locator('.jp-mod-accept').click();
    await loading;
    await page.click('[title="Prophecy"]');
    await expect(page.locator('#prophecy-sidebar [role="alert"]').first()).toContainText('Reinstall prophecy-jupyter');
  });

  test('that does not answer is reported in a dialog', async ({ page }) => {
    await page.route('**/prophecy-jupyter/api/v1/**', route => route.fulfill({ status: 404, body: '' }));
    const loading = page.goto();
    const dialog = page.locator('.jp-Dialog');
    await expect(dialog).toContainText('server extension did not answer (HTTP 404); is it installed and enabled?', {
      timeout: 30000
    });
    await dialog.locator('.jp-mod-accept').click();
    await loading;
  });
});
