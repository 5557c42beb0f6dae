/** The Jobs section: its model and components in jsdom, with handler.ts (the one server-calling module) mocked. */
import * as React from 'react';
import { act } from 'react';
import { createRoot, Root } from 'react-dom/client';

import { JobForm, JobsSection, PREVIEW_DELAY_MS } from '../components/JobsSection';
import { ApiError, requestAPI } from '../handler';
import {
  browserTimeZone,
  FabricsModel,
  formatDuration,
  formatInstant,
  GitModel,
  JobsModel,
  linksOf,
  pipelineNameFor
} from '../model';
import { IJob, IJobRun, IProject } from '../tokens';

jest.mock('../handler', () => {
  const actual = jest.requireActual('../handler');
  return { ...actual, requestAPI: jest.fn() };
});

const request = requestAPI as jest.MockedFunction<typeof requestAPI>;
(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;

/** The user's browser is in Tokyo; the jobs' schedules are read in Paris. */
const USER_ZONE = 'Asia/Tokyo';
const resolvedOptions = Intl.DateTimeFormat.prototype.resolvedOptions;
jest
  .spyOn(Intl.DateTimeFormat.prototype, 'resolvedOptions')
  .mockImplementation(function (this: Intl.DateTimeFormat) {
    return { ...resolvedOptions.call(this), timeZone: USER_ZONE };
  });

const project = (id: string, name: string, tokenSet = true): IProject => ({
  id,
  ref: `data/${name}`,
  team: 'data',
  name,
  url: `https://git.example.com/data/${name}.git`,
  provider: 'github',
  default_branch: 'main',
  needs_username: false,
  token_set: tokenSet
});

const nightly: IJob = {
  name: 'nightly',
  pipelines: ['orders'],
  fabric: 'data/sf',
  schedule: { cron: '0 2 * * *', timezone: 'Europe/Paris' },
  parameters: {},
  size: null,
  retries: 1,
  timeout_minutes: null,
  max_concurrent_runs: 1,
  emails: [],
  // 02:00 in Paris (winter) is 10:00 in Tokyo.
  next_runs: ['2025-01-02T02:00:00+01:00', '2025-01-03T02:00:00+01:00', '2025-01-04T02:00:00+01:00']
};
const adhoc: IJob = { ...nightly, name: 'adhoc', schedule: null, retries: 0, next_runs: [] };

const run = (id: string, state: IJobRun['state'], more: Partial<IJobRun> = {}): IJobRun => ({
  run_id: id,
  state,
  started: '2025-01-01T01:00:00+00:00',
  ended: state === 'RUNNING' ? null : '2025-01-01T01:02:05+00:00',
  duration_seconds: state === 'RUNNING' ? null : 125,
  error: null,
  result: null,
  link: null,
  ...more
});

type Answer = unknown | ((init?: RequestInit) => unknown);

/** A fake server: answers by path (a function gets the request), else fails as the server would. */
function serve(routes: Record<string, Answer>): void {
  request.mockImplementation(async (path?: string, init?: RequestInit) => {
    const key = `${init?.method ?? 'GET'} ${path}`;
    if (!(key in routes)) {
      throw new ApiError(`unexpected ${key}`, 500);
    }
    const answer = routes[key];
    const value = typeof answer === 'function' ? await (answer as (init?: RequestInit) => unknown)(init) : answer;
    if (value instanceof Error) {
      throw value;
    }
    return value;
  });
}

const calls = (key: string) =>
  request.mock.calls.filter(([path, init]) => `${init?.method ?? 'GET'} ${path}` === key);

/** The Git model with the user's projects (the first one chosen, as the Git section does). */
async function gitWith(projects: IProject[]): Promise<GitModel> {
  const git = new GitModel();
  request.mockImplementation(async (path?: string) =>
    path === 'projects' ? { projects } : { project: projects[0].ref, branch: 'main', cloned: true, changes: [], notes: [] }
  );
  await git.refresh();
  request.mockReset();
  return git;
}

const models: JobsModel[] = [];
async function jobsModel(projects: IProject[], interval = 60000): Promise<JobsModel> {
  const model = new JobsModel(await gitWith(projects), new FabricsModel(), interval);
  models.push(model);
  return model;
}

let host: HTMLDivElement;
let root: Root;

async function render(element: JSX.Element): Promise<void> {
  await act(async () => root.render(element));
}

async function click(element: Element | null | undefined): Promise<void> {
  expect(element).toBeTruthy();
  await act(async () => {
    (element as HTMLElement).click();
    await new Promise(resolve => setTimeout(resolve, 0));
  });
}

async function typeInto(element: Element | null, value: string): Promise<void> {
  const field = element as HTMLInputElement;
  await act(async () => {
    Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value')!.set!.call(field, value);
    field.dispatchEvent(new Event('input', { bubbles: true }));
  });
}

async function submit(form: HTMLFormElement | null): Promise<void> {
  await act(async () => {
    form!.dispatchEvent(new Event('submit', { bubbles: true, cancelable: true }));
    await new Promise(resolve => setTimeout(resolve, 0));
  });
}

/** Let the debounced preview fire and its answer arrive. */
async function rest(ms = PREVIEW_DELAY_MS + 50): Promise<void> {
  await act(async () => new Promise(resolve => setTimeout(resolve, ms)));
}

/** Wait (up to 5 s) for a condition the model's poll brings about. */
async function waitFor(condition: () => boolean): Promise<void> {
  for (let waited = 0; !condition(); waited += 20) {
    if (waited > 5000) {
      throw new Error('waited 5 s in vain');
    }
    await new Promise(resolve => setTimeout(resolve, 20));
  }
}

const buttonIn = (scope: Element, label: string) =>
  Array.from(scope.querySelectorAll('button')).find(button => button.textContent === label);
const jobItem = (name: string) =>
  Array.from(host.querySelectorAll('li.jp-ProphecySidebar-job')).find(
    item => item.querySelector('.jp-ProphecySidebar-jobName')?.textContent === name
  )!;

beforeEach(() => {
  request.mockReset();
  host = document.createElement('div');
  document.body.appendChild(host);
  root = createRoot(host);
});

afterEach(() => {
  act(() => root.unmount());
  host.remove();
  models.splice(0).forEach(model => model.dispose());
});

describe('helpers', () => {
  it('names a notebook’s pipeline as the server does and reads its links', () => {
    expect(pipelineNameFor('work/Orders by Region.ipynb')).toBe('orders_by_region');
    expect(pipelineNameFor('2024.ipynb')).toBe('p_2024');
    expect(pipelineNameFor('__.ipynb')).toBe('pipeline');
    expect(linksOf('a.ipynb', { project: 'data/warehouse', fabric: 'data/sf' })).toEqual({
      path: 'a.ipynb',
      project: 'data/warehouse',
      fabric: 'data/sf'
    });
    expect(linksOf('a.ipynb', { project: 3, fabric: '' })).toEqual({ path: 'a.ipynb', project: null, fabric: null });
    expect(linksOf('a.ipynb', undefined)).toEqual({ path: 'a.ipynb', project: null, fabric: null });
  });

  it('shows instants in the browser’s time zone, and durations', () => {
    expect(browserTimeZone()).toBe(USER_ZONE);
    expect(formatInstant('2025-01-02T02:00:00+01:00')).toMatch(/10:00/);
    expect(formatInstant('2025-01-02T02:00:00+01:00', 'Europe/Paris')).toMatch(/02:00/);
    // A time without an offset is UTC.
    expect(formatInstant('2025-01-01T01:00:00')).toMatch(/10:00/);
    expect(formatInstant('not a time')).toBe('not a time');
    expect([formatDuration(42), formatDuration(125), formatDuration(3600 + 600)]).toEqual(['42 s', '2 min 5 s', '1 h 10 min']);
  });
});

describe('JobsModel', () => {
  it("loads the jobs of the notebook's project (its metadata), not the Git section's, with their runs", async () => {
    const model = await jobsModel([project('p1', 'analytics'), project('p2', 'warehouse')]);
    serve({
      'GET projects/p2/jobs': { jobs: [nightly, adhoc] },
      'GET projects/p2/jobs/nightly/runs?limit=10': { runs: [run('2', 'SUCCESS'), run('1', 'FAILED')] },
      'GET projects/p2/jobs/adhoc/runs?limit=10': new ApiError('Job adhoc is not deployed.', 404)
    });
    await model.setNotebook(linksOf('work/orders.ipynb', { project: 'data/warehouse', fabric: 'data/sf' }));
    expect(model.project?.id).toBe('p2');
    expect(model.pipeline).toBe('orders');
    expect(model.fabric).toBe('data/sf');
    expect(model.jobs.map(job => job.name)).toEqual(['nightly', 'adhoc']);
    expect(model.runsOf('nightly')).toEqual({ kind: 'runs', runs: [run('2', 'SUCCESS'), run('1', 'FAILED')] });
    expect(model.runsOf('adhoc')).toEqual({ kind: 'not-deployed' });
    expect(model.error).toBeNull();
    // The same project again: nothing is loaded again.
    request.mockClear();
    await model.setNotebook(linksOf('work/other.ipynb', { project: 'warehouse' }));
    expect(request).not.toHaveBeenCalled();
    expect(model.pipeline).toBe('other');
  });

  it("uses the Git section's project without metadata, and says when the metadata's is not the user's", async () => {
    const model = await jobsModel([project('p1', 'analytics')]);
    serve({ 'GET projects/p1/jobs': { jobs: [] } });
    await model.setNotebook(linksOf('a.ipynb', {}));
    expect(model.project?.id).toBe('p1');
    expect(calls('GET projects/p1/jobs')).toHaveLength(1);
    await model.setNotebook(linksOf('a.ipynb', { project: 'data/elsewhere' }));
    expect(model.project).toBeNull();
    expect(model.projectProblem).toBe("This notebook's project data/elsewhere is not one of your teams' projects.");
    expect(model.jobs).toEqual([]);
  });

  it('keeps a failure to read runs that is not a 4xx, and the jobs’ own failure', async () => {
    const model = await jobsModel([project('p1', 'analytics')]);
    serve({
      'GET projects/p1/jobs': { jobs: [nightly] },
      'GET projects/p1/jobs/nightly/runs?limit=10': new ApiError('Fabric data/sf did not answer.', 502)
    });
    await model.refresh();
    expect(model.runsOf('nightly')).toEqual({ kind: 'error', message: 'Fabric data/sf did not answer.' });
    serve({ 'GET projects/p1/jobs': new ApiError('jobs/x.yaml is not a job this version reads', 400) });
    await model.refresh();
    expect(model.error).toBe('jobs/x.yaml is not a job this version reads');
    expect(model.jobs).toEqual([]);
  });

  it('asks nothing of a project whose token is not set', async () => {
    const model = await jobsModel([project('p1', 'analytics', false)]);
    await model.setNotebook(linksOf('a.ipynb', {}));
    expect(request).not.toHaveBeenCalled();
    expect(model.jobs).toEqual([]);
  });

  it('runs a job now and polls its runs until the new run ended', async () => {
    const model = await jobsModel([project('p1', 'analytics')], 20);
    let history = [run('1', 'SUCCESS')];
    serve({
      'GET projects/p1/jobs': { jobs: [nightly] },
      'GET projects/p1/jobs/nightly/runs?limit=10': () => ({ runs: history }),
      'POST projects/p1/jobs/nightly/run': (init?: RequestInit) => {
        expect(JSON.parse(String(init?.body))).toEqual({});
        return { run_id: '2', message: 'Started a run of job nightly on data/sf.' };
      }
    });
    await model.refresh();
    expect(model.isWatched('nightly')).toBe(false);
    // The scheduler lists the run a moment after it started.
    expect(await model.runNow('nightly')).toBe('Started a run of job nightly on data/sf.');
    expect(model.isWatched('nightly')).toBe(true);
    await new Promise(resolve => setTimeout(resolve, 100));
    expect(model.isWatched('nightly')).toBe(true);
    history = [run('2', 'RUNNING'), ...history];
    await new Promise(resolve => setTimeout(resolve, 100));
    expect(model.isWatched('nightly')).toBe(true);
    history = [run('2', 'SUCCESS'), ...history.slice(1)];
    const polled = calls('GET projects/p1/jobs/nightly/runs?limit=10').length;
    await waitFor(() => !model.isWatched('nightly'));
    expect(model.runsOf('nightly')).toEqual({ kind: 'runs', runs: history });
    // Once the run ended its runs are no longer asked for.
    const settled = calls('GET projects/p1/jobs/nightly/runs?limit=10').length;
    expect(settled).toBeGreaterThan(polled);
    await new Promise(resolve => setTimeout(resolve, 100));
    expect(calls('GET projects/p1/jobs/nightly/runs?limit=10')).toHaveLength(settled);
  });

  it('deploys, pauses, resumes and cancels through the project’s job paths, and previews a schedule', async () => {
    const model = await jobsModel([project('p/1', 'analytics')]);
    serve({
      'GET projects/p%2F1/jobs': { jobs: [nightly] },
      'GET projects/p%2F1/jobs/nightly/runs?limit=10': { runs: [] },
      'POST projects/p%2F1/jobs/nightly/deploy': { message: 'Deployed job nightly to data/sf: 3 statement(s).' },
      'POST projects/p%2F1/jobs/nightly/pause': { message: 'Paused job nightly.' },
      'POST projects/p%2F1/jobs/nightly/resume': { message: 'Resumed job nightly.' },
      'POST projects/p%2F1/jobs/nightly/cancel': (init?: RequestInit) => {
        expect(JSON.parse(String(init?.body))).toEqual({ run_id: '7' });
        return { cancelled: ['7'], message: 'Cancelled run 7.' };
      },
      'POST schedules/preview': (init?: RequestInit) => {
        expect(JSON.parse(String(init?.body))).toEqual({ cron: '0 2 * * *', timezone: 'Europe/Paris', count: 3 });
        return { next_runs: nightly.next_runs };
      }
    });
    await model.refresh();
    expect(await model.deploy('nightly')).toBe('Deployed job nightly to data/sf: 3 statement(s).');
    expect(await model.pause('nightly')).toBe('Paused job nightly.');
    expect(await model.resume('nightly')).toBe('Resumed job nightly.');
    expect(await model.cancel('nightly', '7')).toBe('Cancelled run 7.');
    expect(await model.preview('0 2 * * *', 'Europe/Paris')).toEqual(nightly.next_runs);
    expect(calls('POST projects/p%2F1/jobs/nightly/pause')[0][1]).toEqual({ method: 'POST' });
  });
});

describe('JobsSection', () => {
  async function shown(routes: Record<string, Answer>): Promise<JobsModel> {
    const model = await jobsModel([project('p1', 'warehouse')]);
    serve(routes);
    await model.setNotebook(linksOf('orders.ipynb', { fabric: 'data/sf' }));
    await render(<JobsSection model={model} />);
    return model;
  }

  it('shows each job: pipelines, fabric, schedule, next runs in the user’s zone and its last run', async () => {
    await shown({
      'GET projects/p1/jobs': { jobs: [nightly, adhoc] },
      'GET projects/p1/jobs/nightly/runs?limit=10': { runs: [run('2', 'FAILED'), run('1', 'SUCCESS')] },
      'GET projects/p1/jobs/adhoc/runs?limit=10': new ApiError('Job adhoc is not deployed.', 404)
    });
    expect(host.textContent).toContain("Project data/warehouse · this notebook’s pipeline orders · fabric data/sf");
    const row = jobItem('nightly');
    expect(row.getAttribute('aria-labelledby')).toBe('prophecy-job-nightly-name');
    expect(row.textContent).toContain('orders on data/sf · 1 retry');
    expect(row.textContent).toContain('Schedule: 0 2 * * * (Europe/Paris)');
    const next = row.querySelector('[aria-label="Next runs of nightly"]')!;
    expect(Array.from(next.querySelectorAll('li')).map(li => li.textContent)).toEqual(
      nightly.next_runs.map(time => formatInstant(time, USER_ZONE))
    );
    expect(next.textContent).toMatch(/10:00/);
    expect(next.querySelector('time')!.getAttribute('dateTime')).toBe(nightly.next_runs[0]);
    expect(row.querySelector('.jp-ProphecySidebar-runState')!.textContent).toBe('last run: FAILED');
    const other = jobItem('adhoc');
    expect(other.textContent).toContain('On demand');
    expect(other.textContent).toContain('not deployed');
    expect(host.querySelector('[role="alert"]')).toBeNull(); // not deployed is no error
  });

  it('shows the runs: state, start, duration, the scheduler’s error and a link opening in a new tab', async () => {
    const failed = run('2', 'FAILED', { error: '001003 (42000): SQL compilation error', link: 'https://sf.example.com/runs/2' });
    await shown({
      'GET projects/p1/jobs': { jobs: [nightly] },
      'GET projects/p1/jobs/nightly/runs?limit=10': { runs: [failed, run('1', 'SUCCESS', { result: 'Pipeline orders ran 1 step(s).' })] }
    });
    const row = jobItem('nightly');
    const disclosure = buttonIn(row, 'Runs')!;
    expect(disclosure.getAttribute('aria-expanded')).toBe('false');
    await click(disclosure);
    expect(disclosure.getAttribute('aria-expanded')).toBe('true');
    const list = row.querySelector('[aria-label="Runs of nightly"]')!;
    expect(list.closest('#prophecy-job-nightly-runs')).not.toBeNull();
    const [first, second] = Array.from(list.querySelectorAll('li'));
    expect(first.getAttribute('aria-label')).toBe('Run 2');
    expect(first.textContent).toContain('FAILED');
    expect(first.textContent).toContain(`${formatInstant(failed.started!, USER_ZONE)} · 2 min 5 s`);
    expect(first.querySelector('.jp-ProphecySidebar-runError')!.textContent).toBe('001003 (42000): SQL compilation error');
    const link = first.querySelector('a')!;
    expect([link.href, link.target, link.rel]).toEqual(['https://sf.example.com/runs/2', '_blank', 'noopener noreferrer']);
    expect(second.textContent).toContain('Pipeline orders ran 1 step(s).');
    expect(second.querySelector('a')).toBeNull();
  });

  it('shows what deploy says, disables the buttons while it waits, and shows a failure', async () => {
    let answer: (value: unknown) => void = () => undefined;
    await shown({
      'GET projects/p1/jobs': { jobs: [nightly] },
      'GET projects/p1/jobs/nightly/runs?limit=10': { runs: [] },
      'POST projects/p1/jobs/nightly/deploy': () => new Promise(resolve => (answer = resolve)),
      'POST projects/p1/jobs/nightly/pause': new ApiError('Deploy job nightly first.', 409)
    });
    const row = jobItem('nightly');
    await click(buttonIn(row, 'Deploy'));
    expect(row.getAttribute('aria-busy')).toBe('true');
    const actions = Array.from(row.querySelectorAll('[role="group"] button')) as HTMLButtonElement[];
    expect(actions.map(button => button.textContent)).toEqual(['Deploy…', 'Run now', 'Pause', 'Resume', 'Runs']);
    expect(actions.slice(0, 4).every(button => button.disabled)).toBe(true);
    await act(async () => {
      answer({ message: 'Deployed job nightly to data/sf: 3 statement(s).' });
      await new Promise(resolve => setTimeout(resolve, 0));
    });
    expect(row.querySelector('[role="status"]')!.textContent).toBe('Deployed job nightly to data/sf: 3 statement(s).');
    expect(buttonIn(row, 'Pause')!.disabled).toBe(false);
    await click(buttonIn(row, 'Pause'));
    expect(row.querySelector('[role="alert"]')!.textContent).toBe('Deploy job nightly first.');
    expect(row.querySelector('[role="status"]')).toBeNull();
  });

  it('runs a job now and shows its run under way, which can be cancelled', async () => {
    let history: IJobRun[] = [];
    await shown({
      'GET projects/p1/jobs': { jobs: [nightly] },
      'GET projects/p1/jobs/nightly/runs?limit=10': () => ({ runs: history }),
      'POST projects/p1/jobs/nightly/run': () => {
        history = [run('5', 'RUNNING')];
        return { run_id: '5', message: 'Started a run of job nightly on data/sf.' };
      },
      'POST projects/p1/jobs/nightly/cancel': () => {
        history = [run('5', 'CANCELED')];
        return { cancelled: ['5'], message: 'Cancelled 1 run of job nightly.' };
      }
    });
    const row = jobItem('nightly');
    await click(buttonIn(row, 'Runs'));
    expect(row.textContent).toContain('No runs yet.');
    await click(buttonIn(row, 'Run now'));
    await render(<JobsSection model={models[0]} />);
    expect(row.querySelector('[role="status"]')!.textContent).toBe('Started a run of job nightly on data/sf.');
    expect(row.querySelector('[aria-label="Run 5"]')!.textContent).toContain('RUNNING');
    await click(row.querySelector('[aria-label="Cancel run 5"]'));
    await render(<JobsSection model={models[0]} />);
    expect(row.querySelector('[role="status"]')!.textContent).toBe('Cancelled 1 run of job nightly.');
    expect(row.querySelector('[aria-label="Run 5"]')!.textContent).toContain('CANCELED');
    expect(row.querySelector('[aria-label="Cancel run 5"]')).toBeNull();
  });

  it('says where jobs come from without a project, and asks for the Git token first', async () => {
    const none = await jobsModel([project('p1', 'analytics', false)]);
    await render(<JobsSection model={none} />);
    expect(host.textContent).toContain('Set your Git token for data/analytics in the Git section to see its jobs.');
    const empty = new JobsModel(new GitModel(), new FabricsModel(), 60000);
    models.push(empty);
    await render(<JobsSection model={empty} />);
    expect(host.textContent).toContain('a notebook’s jobs live in its team’s Git project');
  });
});

describe('JobForm', () => {
  async function opened(routes: Record<string, Answer>): Promise<{ model: JobsModel; form: HTMLFormElement }> {
    const model = await jobsModel([project('p1', 'warehouse')]);
    serve({ 'GET projects/p1/jobs': { jobs: [] }, ...routes });
    await model.setNotebook(linksOf('work/orders.ipynb', { fabric: 'data/sf' }));
    await render(<JobsSection model={model} />);
    const toggle = buttonIn(host, 'New job')!;
    expect(toggle.getAttribute('aria-expanded')).toBe('false');
    await click(toggle);
    expect(toggle.getAttribute('aria-expanded')).toBe('true');
    return { model, form: host.querySelector('form[aria-label="New job"]')! };
  }
  const field = (form: Element, name: string) => form.querySelector(`#new-job-${name}`) as HTMLInputElement;
  const labelOf = (form: Element, name: string) => form.querySelector(`label[for="new-job-${name}"]`)!.textContent;

  it('is prefilled with the notebook’s pipeline and fabric and the browser’s zone, every field labelled', async () => {
    const { form } = await opened({});
    expect(field(form, 'pipelines').value).toBe('orders');
    expect((form.querySelector('#new-job-fabric') as HTMLSelectElement).value).toBe('data/sf');
    expect(field(form, 'timezone').value).toBe(USER_ZONE);
    expect(field(form, 'cron').value).toBe('');
    for (const name of ['name', 'pipelines', 'fabric', 'cron', 'timezone', 'retries']) {
      expect(labelOf(form, name)).toBeTruthy();
    }
    expect(form.querySelector('[aria-label="Next fire times"]')!.textContent).toBe('On demand: it runs when started.');
  });

  it('shows the next three fire times as the cron is typed, asked once typing rests', async () => {
    const { form } = await opened({
      'POST schedules/preview': (init?: RequestInit) => {
        const { cron, timezone, count } = JSON.parse(String(init?.body));
        expect([cron, timezone, count]).toEqual(['0 2 * * *', USER_ZONE, 3]);
        return { next_runs: ['2025-01-02T02:00:00+09:00', '2025-01-03T02:00:00+09:00', '2025-01-04T02:00:00+09:00'] };
      }
    });
    for (const typed of ['0', '0 2', '0 2 * *', '0 2 * * *']) {
      await typeInto(field(form, 'cron'), typed);
    }
    expect(calls('POST schedules/preview')).toHaveLength(0);
    await rest();
    expect(calls('POST schedules/preview')).toHaveLength(1);
    const times = form.querySelector('[aria-label="Next fire times of the schedule"]')!;
    expect(Array.from(times.querySelectorAll('li')).map(li => li.textContent)).toEqual(
      ['2025-01-02T02:00:00+09:00', '2025-01-03T02:00:00+09:00', '2025-01-04T02:00:00+09:00'].map(time =>
        formatInstant(time, USER_ZONE)
      )
    );
    expect(field(form, 'cron').getAttribute('aria-describedby')).toBe('new-job-cron-preview');
  });

  it('shows a bad cron or zone under its field, named by the server', async () => {
    const { form } = await opened({
      'POST schedules/preview': (init?: RequestInit) => {
        const { cron, timezone } = JSON.parse(String(init?.body));
        if (timezone === 'Mars/Olympus') {
          return new ApiError("Job field schedule.timezone: 'Mars/Olympus' is not an IANA time zone", 400, 'schedule.timezone');
        }
        if (cron.split(' ').length !== 5) {
          return new ApiError('Job field schedule.cron: must be 5 fields', 400, 'schedule.cron');
        }
        return { next_runs: nightly.next_runs };
      }
    });
    await typeInto(field(form, 'cron'), '0 2 * *');
    await rest();
    expect(form.querySelector('#new-job-cron-error')!.textContent).toBe('Job field schedule.cron: must be 5 fields');
    expect(field(form, 'cron').getAttribute('aria-invalid')).toBe('true');
    expect(field(form, 'cron').getAttribute('aria-describedby')).toBe('new-job-cron-preview new-job-cron-error');
    await typeInto(field(form, 'cron'), '0 2 * * *');
    await rest();
    expect(form.querySelector('#new-job-cron-error')).toBeNull();
    await typeInto(field(form, 'timezone'), 'Mars/Olympus');
    await rest();
    expect(form.querySelector('#new-job-timezone-error')!.textContent).toContain("'Mars/Olympus' is not an IANA time zone");
    expect(form.querySelector('[aria-label="Next fire times of the schedule"]')).toBeNull();
  });

  it('creates the job, shows a refused field next to it, and says what was written', async () => {
    const bodies: unknown[] = [];
    let refused = true;
    const { model, form } = await opened({
      'POST schedules/preview': { next_runs: nightly.next_runs },
      'POST projects/p1/jobs': (init?: RequestInit) => {
        bodies.push(JSON.parse(String(init?.body)));
        if (refused) {
          refused = false;
          return new ApiError('Project data/warehouse has a job nightly already: replace it, or choose another name.', 400, 'name');
        }
        return { job: nightly, changed: ['jobs/nightly.yaml'] };
      },
    });
    await typeInto(field(form, 'name'), 'nightly');
    await typeInto(field(form, 'cron'), '0 2 * * *');
    await typeInto(field(form, 'timezone'), 'Europe/Paris');
    await typeInto(field(form, 'retries'), '2');
    await submit(form);
    expect(bodies[0]).toEqual({
      name: 'nightly',
      pipelines: ['orders'],
      fabric: 'data/sf',
      schedule: { cron: '0 2 * * *', timezone: 'Europe/Paris' },
      retries: 2
    });
    expect(form.querySelector('#new-job-name-error')!.textContent).toContain('has a job nightly already');
    expect(field(form, 'name').getAttribute('aria-invalid')).toBe('true');
    serve({
      'POST projects/p1/jobs': (init?: RequestInit) => {
        bodies.push(JSON.parse(String(init?.body)));
        return { job: nightly, changed: ['jobs/nightly.yaml'] };
      },
      'GET projects/p1/jobs': { jobs: [nightly] },
      'GET projects/p1/jobs/nightly/runs?limit=10': new ApiError('not deployed', 404),
      'GET projects': { projects: [project('p1', 'warehouse')] },
      'GET projects/p1/status': { project: 'data/warehouse', branch: 'main', cloned: true, changes: [], notes: [] }
    });
    await submit(form);
    await render(<JobsSection model={model} />);
    expect(host.querySelector('form[aria-label="New job"]')).toBeNull();
    expect(host.querySelector('[role="status"]')!.textContent).toBe(
      'Job nightly written to data/warehouse (jobs/nightly.yaml): commit it in the Git section to share it.'
    );
    expect(jobItem('nightly')).toBeTruthy();
    expect(calls('GET projects/p1/status').length).toBeGreaterThan(0); // the Git section shows the new file
  });

  it('sends an on-demand job without a schedule and refuses retries that are not a number', async () => {
    const sent: unknown[] = [];
    const model = await jobsModel([project('p1', 'warehouse')]);
    serve({
      'POST projects/p1/jobs': (init?: RequestInit) => {
        sent.push(JSON.parse(String(init?.body)));
        return new ApiError("Job field fabric: no fabric 'data/sf'", 400, 'fabric');
      }
    });
    await act(async () => {
      await model.setNotebook(linksOf('orders.ipynb', { fabric: 'data/sf' }));
    });
    const done = jest.fn();
    await render(<JobForm model={model} onDone={done} />);
    const form = host.querySelector('form')!;
    await typeInto(field(form, 'name'), 'adhoc');
    await typeInto(field(form, 'retries'), '1.5');
    await submit(form);
    expect(form.querySelector('#new-job-retries-error')!.textContent).toContain('a whole number');
    expect(sent).toHaveLength(0);
    await typeInto(field(form, 'retries'), '');
    await submit(form);
    expect(sent).toEqual([{ name: 'adhoc', pipelines: ['orders'], fabric: 'data/sf' }]);
    expect(form.querySelector('#new-job-fabric-error')!.textContent).toBe("Job field fabric: no fabric 'data/sf'");
    expect(done).not.toHaveBeenCalled();
  });
});
