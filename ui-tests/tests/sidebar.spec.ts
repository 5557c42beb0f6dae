import { expect, test } from '@jupyterlab/galata';

test('the Prophecy sidebar lists the built-in local fabric', async ({ page }) => {
  await page.click('[title="Prophecy"]');
  const sidebar = page.locator('#prophecy-sidebar');
  await expect(sidebar).toBeVisible();
  await expect(sidebar.locator('.jp-ProphecySidebar-fabric', { hasText: 'local' })).toBeVisible();
});
