/** What the browser tests share: the sidebar, a fabric's row in it, and notebooks they make. */
import { expect, IJupyterLabPageFixture } from '@jupyterlab/galata';
import type { Locator, Page } from '@playwright/test';
import * as path from 'path';

/** Open the Prophecy sidebar. */
export async function openSidebar(page: Page): Promise<Locator> {
  await page.click('[title="Prophecy"]');
  const sidebar = page.locator('#prophecy-sidebar');
  await expect(sidebar).toBeVisible();
  return sidebar;
}

/** The sidebar's row of the fabric named exactly `name` (other names may contain it). */
export function fabricRow(sidebar: Locator, name: string): Locator {
  return sidebar.locator('.jp-ProphecySidebar-fabric').filter({
    has: sidebar.page().getByRole('button', { name, exact: true })
  });
}

/**
 * Make an empty notebook for `kernel` at `notebookPath` and open it, under its own name from the
 * start. galata's `createNew(name)` renames a new Untitled notebook instead, and that rename can
 * race JupyterLab's first save of the notebook: the save writes Untitled.ipynb again, and the
 * kernel's Jupyter session keeps the old name while the sidebar attaches the new one.
 */
export async function openNewNotebook(
  page: IJupyterLabPageFixture,
  notebookPath: string,
  kernel = 'python3'
): Promise<void> {
  // The kernelspec as JupyterLab records it once the kernel starts: a late change would mark the
  // notebook changed after a test has seen it saved.
  const { spec } = (await (await page.request.get('/api/kernelspecs')).json()).kernelspecs[kernel];
  const notebook = {
    cells: [{ cell_type: 'code', id: 'first', metadata: {}, source: '', outputs: [], execution_count: null }],
    metadata: { kernelspec: { name: kernel, display_name: spec.display_name, language: spec.language } },
    nbformat: 4,
    nbformat_minor: 5
  };
  expect(await page.contents.uploadContent(JSON.stringify(notebook), 'text', notebookPath)).toBe(true);
  // Opened by command, not through the file browser, which may be hidden behind another sidebar.
  await page.evaluate(
    async notebook => {
      await (window as any).jupyterapp.commands.execute('docmanager:open', { path: notebook, factory: 'Notebook' });
    },
    notebookPath
  );
  const name = path.basename(notebookPath);
  await expect(page.activity.getTabLocator(name)).toBeVisible();
  await page.notebook.activate(name);
}
