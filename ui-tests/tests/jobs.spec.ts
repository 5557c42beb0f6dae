/**
 * A notebook's pipeline becomes a scheduled job from the sidebar, on a real scheduler: the
 * Snowflake stand-in, which runs a deployed task's procedure as Snowflake would. The test server's
 * config (jobs_setup.py) starts it and a Git server, and makes the fabric `default/snowflake` and
 * the project `default/warehouse` with the committed pipeline `orders` of fixtures/orders.ipynb.
 */
import { expect, test } from '@jupyterlab/galata';
import * as path from 'path';

const NOTEBOOK = path.resolve(__dirname, '../fixtures/orders.ipynb');

// The user is in Tokyo: the schedule's fire times show in their zone, whatever zone a job is read in.
test.use({ autoGoto: true, timezoneId: 'Asia/Tokyo' });

test("a notebook's pipeline becomes a nightly job that is deployed, run, paused and resumed", async ({
  page,
  tmpPath
}, testInfo) => {
  test.setTimeout(300000);
  // A retry runs against the same server, which has the first attempt's job already.
  const name = testInfo.retry ? `nightly_retry${testInfo.retry}` : 'nightly';
  await page.contents.uploadFile(NOTEBOOK, `${tmpPath}/orders.ipynb`);
  await page.notebook.openByPath(`${tmpPath}/orders.ipynb`);
  await page.notebook.activate('orders.ipynb');
  await page.click('[title="Prophecy"]');
  const sidebar = page.locator('#prophecy-sidebar');
  const jobs = sidebar.getByRole('region', { name: 'Jobs' });
  // The notebook's metadata names its project and fabric; its pipeline is named after it.
  await expect(jobs).toContainText(
    'Project default/warehouse · this notebook’s pipeline orders · fabric default/snowflake',
    { timeout: 60000 }
  );
  if (!testInfo.retry) {
    await expect(jobs).toContainText('No jobs in default/warehouse yet.', { timeout: 60000 });
  }

  await jobs.getByRole('button', { name: 'New job' }).click();
  const form = jobs.getByRole('form', { name: 'New job' });
  await expect(form.getByLabel('Pipelines')).toHaveValue('orders');
  await expect(form.getByLabel('Fabric', { exact: true })).toHaveValue('default/snowflake');
  await expect(form.getByLabel('Time zone (IANA)')).toHaveValue('Asia/Tokyo');
  await form.getByLabel('Name', { exact: true }).fill(name);
  const cron = form.getByLabel('Schedule');
  const fireTimes = form.getByRole('list', { name: 'Next fire times of the schedule' }).getByRole('listitem');
  // A cron with a field missing: the server's error names the field, under it.
  await cron.pressSequentially('0 2 * *', { delay: 40 });
  const cronError = form.locator('#new-job-cron-error');
  await expect(cronError).toContainText('schedule.cron');
  await expect(cron).toHaveAttribute('aria-invalid', 'true');
  await expect(fireTimes).toHaveCount(0);
  // Completed, the next three fire times appear (02:00 in Tokyo).
  await cron.press('End');
  await cron.pressSequentially(' *', { delay: 40 });
  await expect(fireTimes).toHaveCount(3);
  await expect(cronError).toHaveCount(0);
  await expect(fireTimes.first()).toContainText('02:00');
  // Read in Paris, the fire times still show in the user's zone: 02:00 in Paris is 09:00 or 10:00 in Tokyo.
  await form.getByLabel('Time zone (IANA)').fill('Europe/Paris');
  await expect(fireTimes.first()).toContainText(/(09|10):00/);
  await expect(fireTimes).toHaveCount(3);
  // A zone that is not one: named too.
  await form.getByLabel('Time zone (IANA)').fill('Europe/Atlantis');
  await expect(form.locator('#new-job-timezone-error')).toContainText('schedule.timezone');
  await form.getByLabel('Time zone (IANA)').fill('Europe/Paris');
  await expect(form.locator('#new-job-timezone-error')).toHaveCount(0);
  await form.getByLabel('Retries').fill('1');
  await form.getByLabel('Retries').press('Enter'); // the keyboard submits the form
  await expect(form).toHaveCount(0, { timeout: 60000 });
  await expect(
    jobs.getByRole('status').filter({ hasText: `Job ${name} written to default/warehouse (jobs/${name}.yaml)` })
  ).toBeVisible();

  const job = jobs.getByRole('listitem', { name, exact: true });
  await expect(job).toContainText('orders on default/snowflake · 1 retry');
  await expect(job).toContainText('Schedule: 0 2 * * * (Europe/Paris)');
  const nextRuns = job.getByRole('list', { name: `Next runs of ${name}`, exact: true }).getByRole('listitem');
  await expect(nextRuns).toHaveCount(3);
  await expect(nextRuns.first()).toContainText(/(09|10):00/);
  // The job's file is in the project's working copy, for the Git section to commit.
  const git = sidebar.locator('.jp-ProphecySidebar-git');
  await git.getByLabel('Project').selectOption({ label: 'default/warehouse' });
  await expect(git.getByRole('status', { name: 'Working copy' })).toContainText(`jobs/${name}.yaml`);

  const status = job.getByRole('status');
  await job.getByRole('button', { name: 'Deploy' }).click();
  await expect(status).toContainText(`Deployed job ${name} to default/snowflake`, { timeout: 120000 });
  await expect(job.getByRole('button', { name: 'Run now' })).toBeEnabled();

  await job.getByRole('button', { name: 'Runs', exact: true }).click();
  await job.getByRole('button', { name: 'Run now' }).click();
  await expect(status).toContainText(new RegExp(`Started run \\S+ of job ${name}\\.`), { timeout: 120000 });
  const runs = job.getByRole('list', { name: `Runs of ${name}`, exact: true }).getByRole('listitem');
  await expect(runs.first()).toContainText('SUCCESS', { timeout: 120000 });
  await expect(runs.first()).toContainText('Pipeline orders ran 1 step(s).');
  await expect(job).toContainText('last run: SUCCESS');

  await job.getByRole('button', { name: 'Pause' }).click();
  await expect(status).toContainText(`Paused job ${name}`, { timeout: 120000 });
  // Resume from the keyboard.
  await job.getByRole('button', { name: 'Resume' }).focus();
  await page.keyboard.press('Enter');
  await expect(status).toContainText(`Resumed job ${name}`, { timeout: 120000 });
  await expect(job.getByRole('alert')).toHaveCount(0);
});
