/** The sidebar's components rendered in jsdom, with handler.ts mocked. */
import { DocumentRegistry } from '@jupyterlab/docregistry';
import { INotebookModel, NotebookModel } from '@jupyterlab/notebook';
import { Signal } from '@lumino/signaling';
import * as React from 'react';
import { act } from 'react';
import { createRoot, Root } from 'react-dom/client';

import { FabricForm } from '../components/FabricForm';
import { FabricList } from '../components/FabricList';
import { GitSection } from '../components/GitSection';
import { SessionList } from '../components/SessionList';
import { ApiError, requestAPI } from '../handler';
import { FabricsModel, GitModel, SessionsModel } from '../model';
import { FabricStatusItem } from '../widgets/toolbar';

jest.mock('../handler', () => {
  const actual = jest.requireActual('../handler');
  return { ...actual, requestAPI: jest.fn() };
});

const request = requestAPI as jest.MockedFunction<typeof requestAPI>;
// Tell React these tests wait for its updates with act().
(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;
let host: HTMLDivElement;
let root: Root;

async function render(element: JSX.Element): Promise<void> {
  await act(async () => root.render(element));
}

/** Click, and let the handler's calls to the (mocked) server settle. */
async function click(element: Element | null): Promise<void> {
  await act(async () => {
    (element as HTMLElement).click();
    await new Promise(resolve => setTimeout(resolve, 0));
  });
}

/** Type into a controlled input as a user would (React listens for the input event). */
async function typeInto(element: Element | null, value: string): Promise<void> {
  const field = element as HTMLInputElement | HTMLTextAreaElement;
  const prototype = field instanceof HTMLTextAreaElement ? HTMLTextAreaElement.prototype : HTMLInputElement.prototype;
  await act(async () => {
    Object.getOwnPropertyDescriptor(prototype, 'value')!.set!.call(field, value);
    field.dispatchEvent(new Event('input', { bubbles: true }));
  });
}

/** Pick an option of a select. */
async function choose(select: HTMLSelectElement, value: string): Promise<void> {
  await act(async () => {
    select.value = value;
    select.dispatchEvent(new Event('change', { bubbles: true }));
  });
}

/** Submit a form. */
async function submit(form: HTMLFormElement | null): Promise<void> {
  await act(async () => {
    form!.dispatchEvent(new Event('submit', { bubbles: true, cancelable: true }));
  });
}

beforeEach(() => {
  request.mockReset();
  host = document.createElement('div');
  document.body.appendChild(host);
  root = createRoot(host);
});

afterEach(() => {
  act(() => root.unmount());
  host.remove();
});

describe('SessionList', () => {
  const run = {
    id: 'r1',
    kind: 'statement' as const,
    session: 's1',
    state: 'running' as const,
    progress: 0.25,
    elapsed: 3.2,
    notes: [],
    summary: 'spark.range(10**9).count()'
  };
  const live = {
    id: 's1',
    notebook: 'etl.ipynb',
    fabric: 'local',
    state: 'busy',
    remote_id: '3',
    app_id: 'local-17',
    ended_reason: null,
    runs: [run]
  };

  it('shows a running statement with its progress and cancels it', async () => {
    request.mockResolvedValue({ sessions: [live] });
    const model = new SessionsModel(60000);
    await model.refresh();
    await render(<SessionList model={model} notebook={null} defaultFabricOf={() => null} />);
    expect(host.textContent).toContain('spark.range(10**9).count()');
    expect(host.textContent).toContain('25% · 3.2 s · running');
    expect(host.querySelector('progress')!.getAttribute('value')).toBe('0.25');
    await click(host.querySelector('[aria-label="Cancel spark.range(10**9).count()"]'));
    expect(request).toHaveBeenCalledWith('runs/r1/cancel', { method: 'POST' });
    model.dispose();
  });

  it('shows what a running query waits on when the fabric says', async () => {
    const query = { ...run, progress: null, detail: 'query 01b2-c3 queued, 4 s', summary: 'select 1' };
    request.mockResolvedValue({ sessions: [{ ...live, fabric: 'team/sf', runs: [query] }] });
    const model = new SessionsModel(60000);
    await model.refresh();
    await render(<SessionList model={model} notebook={null} defaultFabricOf={() => null} />);
    expect(host.textContent).toContain('3.2 s · running · query 01b2-c3 queued, 4 s');
    model.dispose();
  });

  it('shows a failed action next to its session', async () => {
    request.mockImplementation(async (path?: string) => {
      if (path === 'sessions') {
        return { sessions: [{ ...live, runs: [] }] };
      }
      throw new ApiError('The fabric refused: session 3 is gone.', 502);
    });
    const model = new SessionsModel(60000);
    await model.refresh();
    await render(<SessionList model={model} notebook={null} defaultFabricOf={() => null} />);
    const logs = Array.from(host.querySelectorAll('button')).find(button => button.textContent === 'Logs');
    await click(logs!);
    expect(host.querySelector('[role="alert"]')!.textContent).toBe('The fabric refused: session 3 is gone.');
    model.dispose();
  });

  it("lists the current notebook's sessions first, one per fabric, its default fabric's first and marked", async () => {
    const onSnowflake = { ...live, id: 's2', fabric: 'team/sf', state: 'idle', runs: [] };
    const other = { ...live, id: 's3', notebook: 'other.ipynb', runs: [] };
    request.mockResolvedValue({ sessions: [other, onSnowflake, live] });
    const model = new SessionsModel(60000);
    await model.refresh();
    const defaultFabricOf = (path: string) => (path === 'etl.ipynb' ? 'local' : null);
    await render(<SessionList model={model} notebook="etl.ipynb" defaultFabricOf={defaultFabricOf} />);
    const groups = Array.from(host.querySelectorAll('section')).map(group => group.getAttribute('aria-label'));
    expect(groups).toEqual(['Sessions of etl.ipynb', 'Sessions of other.ipynb']);
    const rows = Array.from(host.querySelectorAll('section')[0].querySelectorAll('.jp-ProphecySidebar-session'));
    expect(rows.map(row => row.getAttribute('aria-label'))).toEqual([
      'Session of etl.ipynb on local',
      'Session of etl.ipynb on team/sf'
    ]);
    expect(rows[0].querySelector('.jp-ProphecySidebar-default')?.textContent).toBe('default');
    expect(rows[0].textContent).toContain('spark.range(10**9).count()');
    expect(rows[1].querySelector('.jp-ProphecySidebar-default')).toBeNull();
    expect(rows[1].textContent).toContain('idle');
    // Each row's actions act on its own session.
    const stop = Array.from(rows[1].querySelectorAll('button')).find(button => button.textContent === 'Stop');
    await click(stop!);
    expect(request).toHaveBeenCalledWith('sessions/s2', { method: 'DELETE' });
    model.dispose();
  });

  it('tells a new user how sessions start', async () => {
    request.mockResolvedValue({ sessions: [] });
    const model = new SessionsModel(60000);
    await model.refresh();
    await render(<SessionList model={model} notebook={null} defaultFabricOf={() => null} />);
    expect(host.textContent).toContain('Attach a notebook and run a cell');
    model.dispose();
  });
});

describe('FabricStatusItem', () => {
  const session = (id: string, fabric: string, state: string) => ({
    id,
    notebook: 'etl.ipynb',
    fabric,
    state,
    remote_id: '1',
    app_id: null,
    ended_reason: null,
    runs: []
  });

  async function renderItem(sessions: object[], attached: string | null, prophecy?: object) {
    request.mockImplementation(async (path?: string) => {
      if (path === 'sessions') {
        return { sessions };
      }
      if (path === 'me') {
        return { user: 'ana', version: '0.1.0', teams: [{ name: 'team', role: 'member' }] };
      }
      if (path === 'fabrics') {
        const snowflake = { id: 'f1', ref: 'team/sf', team: 'team', name: 'sf', kind: 'snowflake', environment: 'dev' };
        return { fabrics: [{ ...snowflake, endpoint: '', settings: {}, conf: {}, job_sizes: {}, credential: {} }] };
      }
      if (path?.startsWith('attachments?')) {
        return { notebook: 'etl.ipynb', fabric: attached };
      }
      throw new ApiError(`unexpected ${path}`, 500);
    });
    const notebook = new NotebookModel();
    if (prophecy) {
      notebook.setMetadata('prophecy', prophecy);
    }
    const context = { path: 'etl.ipynb', model: notebook, pathChanged: new Signal(notebook) };
    const fabrics = new FabricsModel();
    const sessionsModel = new SessionsModel(60000);
    const item = new FabricStatusItem(
      context as unknown as DocumentRegistry.IContext<INotebookModel>,
      fabrics,
      sessionsModel,
      () => undefined
    );
    await fabrics.refresh();
    await fabrics.loadAttachment('etl.ipynb');
    await sessionsModel.refresh();
    await render(item.render());
    return { sessionsModel, notebook };
  }

  it('shows the default fabric and each other fabric with a live session by name, the default marked', async () => {
    const { sessionsModel } = await renderItem(
      [session('s1', 'team/sf', 'busy'), session('s2', 'local', 'idle'), session('s3', 'team/old', 'ended')],
      'local'
    );
    const chips = Array.from(host.querySelectorAll('.jp-ProphecyToolbarItem-chip'));
    expect(chips.map(chip => chip.textContent)).toEqual(['local · idledefault', 'sf · busy']);
    expect(host.querySelector('button')!.getAttribute('aria-label')).toBe(
      'Fabrics: local (default) · idle; team/sf · busy'
    );
    sessionsModel.dispose();
  });

  it("shows the fabric its metadata records when the notebook is not attached", async () => {
    const { sessionsModel } = await renderItem([], null, { fabric: 'team/sf' });
    expect(host.querySelector('button')!.textContent).toBe('sf · no session');
    expect(host.querySelector('.jp-ProphecyToolbarItem-default')).toBeNull();
    sessionsModel.dispose();
  });

  it('says there is no fabric without one or a live session', async () => {
    const { sessionsModel } = await renderItem([session('s1', 'local', 'ended')], null);
    expect(host.querySelector('button')!.textContent).toBe('No fabric');
    sessionsModel.dispose();
  });
});

describe('FabricForm', () => {
  it('shows the fields of the chosen kind and a server error next to its field', async () => {
    request.mockRejectedValue(new ApiError('settings.url: must be an http:// or https:// URL', 400, 'settings.url'));
    const done = jest.fn();
    await render(<FabricForm model={new FabricsModel()} team="data" onDone={done} />);
    expect(host.querySelector('#new-fabric-data-url')).not.toBeNull();
    expect(host.querySelector('#new-fabric-data-cluster_id')).toBeNull();
    const kind = host.querySelector('#new-fabric-data-kind') as HTMLSelectElement;
    await choose(kind, 'databricks');
    expect(host.querySelector('#new-fabric-data-cluster_id')).not.toBeNull();
    await choose(kind, 'livy');
    const form = host.querySelector('form')!;
    await submit(form);
    expect(host.querySelector('#new-fabric-data-url-error')!.textContent).toContain('must be an http://');
    expect(done).not.toHaveBeenCalled();
  });

  it('sends a Snowflake fabric with its private-link host and auth mode, and shows a refused field', async () => {
    request.mockRejectedValue(
      new ApiError('settings.protocol: http sends credentials and data unencrypted', 400, 'settings.protocol')
    );
    await render(<FabricForm model={new FabricsModel()} team="data" onDone={jest.fn()} />);
    await choose(host.querySelector('#new-fabric-data-kind') as HTMLSelectElement, 'snowflake');
    await typeInto(host.querySelector('#new-fabric-data-account') as HTMLInputElement, 'myorg-acct');
    await typeInto(host.querySelector('#new-fabric-data-user') as HTMLInputElement, 'ANA');
    await typeInto(host.querySelector('#new-fabric-data-host') as HTMLInputElement, 'sf.example.com');
    await choose(host.querySelector('#new-fabric-data-auth') as HTMLSelectElement, 'pat');
    await choose(host.querySelector('#new-fabric-data-protocol') as HTMLSelectElement, 'http');
    await submit(host.querySelector('form')!);
    const [path, init] = request.mock.calls[0];
    expect(path).toBe('teams/data/fabrics');
    expect(JSON.parse(String(init?.body)).settings).toEqual({
      account: 'myorg-acct',
      user: 'ANA',
      host: 'sf.example.com',
      auth: 'pat',
      protocol: 'http'
    });
    expect(host.querySelector('#new-fabric-data-protocol-error')!.textContent).toContain('unencrypted');
  });

  it('refuses job sizes that are not JSON before asking the server', async () => {
    await render(<FabricForm model={new FabricsModel()} team="data" onDone={jest.fn()} />);
    const sizes = host.querySelector('#new-fabric-data-job_sizes') as HTMLTextAreaElement;
    await typeInto(sizes, '{S: big}');
    await submit(host.querySelector('form'));
    expect(host.querySelector('#new-fabric-data-job_sizes-error')!.textContent).toContain('Job sizes need JSON');
    expect(request).not.toHaveBeenCalled();
  });
});

describe('FabricList', () => {
  it('tells a member that a fabric moved and sends their credential there only once they confirm', async () => {
    let confirmed = false;
    const fabric = () => ({
      id: 'f1',
      ref: 'etl/livy',
      team: 'etl',
      name: 'livy',
      kind: 'livy',
      environment: 'dev',
      endpoint: 'https://new.example.com',
      settings: {},
      conf: {},
      job_sizes: {},
      credential: confirmed
        ? { needed: 'token', set: true, endpoint_changed: false, given_for: null }
        : { needed: 'token', set: true, endpoint_changed: true, given_for: 'https://old.example.com' }
    });
    request.mockImplementation(async (path?: string, init?: RequestInit) => {
      switch (path) {
        case 'me':
          return { user: 'ana', version: '0.1.0', teams: [{ name: 'etl', role: 'member' }] };
        case 'fabrics':
          return { fabrics: [fabric()] };
        case 'fabrics/f1/credential/confirm':
          expect(init!.method).toBe('POST');
          confirmed = true;
          return fabric().credential;
      }
      throw new ApiError(`unexpected ${path}`, 500);
    });
    const model = new FabricsModel();
    await model.refresh();
    await render(<FabricList model={model} onAttach={async () => null} sessions={[]} />);
    expect(host.textContent).toContain('new address');
    await click(host.querySelector('[aria-expanded="false"]'));
    expect(host.querySelector('[role="alert"]')!.textContent).toContain(
      'now points to https://new.example.com; you gave your token for https://old.example.com'
    );
    const confirm = Array.from(host.querySelectorAll('button')).find(b => b.textContent === 'Confirm for https://new.example.com')!;
    await click(confirm);
    await render(<FabricList model={model} onAttach={async () => null} sessions={[]} />);
    expect(confirmed).toBe(true);
    expect(host.textContent).not.toContain('new address');
    expect(host.querySelector('[role="alert"]')).toBeNull();
  });
});

describe('GitSection', () => {
  const project = {
    id: 'p1',
    ref: 'data/analytics',
    team: 'data',
    name: 'analytics',
    url: 'https://git.example.com/data/analytics.git',
    provider: 'github',
    default_branch: 'main',
    needs_username: false
  };

  it('asks for the token first, then generates, shows the diff and commits', async () => {
    let tokenSet = false;
    let cloned = false;
    request.mockImplementation(async (path?: string, init?: RequestInit) => {
      switch (path) {
        case 'projects':
          return { projects: [{ ...project, token_set: tokenSet }] };
        case 'projects/p1/token':
          tokenSet = true;
          return { needed: 'token', set: true };
        case 'projects/p1/status':
          return cloned
            ? { project: 'data/analytics', branch: 'main', cloned, changes: [{ path: 'pipelines/etl/pipeline.py', status: 'untracked' }], notes: [] }
            : { project: 'data/analytics', branch: null, cloned, changes: [], notes: [] };
        case 'projects/p1/pipelines':
          expect(JSON.parse(init!.body as string)).toEqual({ notebook: 'etl.ipynb' });
          cloned = true;
          return { pipeline: { name: 'etl', steps: 2, parameters: [] }, changed: true };
        case 'projects/p1/diff':
          return { diff: '+++ b/pipelines/etl/pipeline.py\n+def step_1():\n-old = 1' };
        case 'projects/p1/commit':
          return { commit: '0123456789abcdef' };
      }
      throw new ApiError(`unexpected ${path}`, 500);
    });
    const model = new GitModel();
    await model.refresh();
    await render(<GitSection model={model} notebook="etl.ipynb" />);
    expect(host.textContent).toContain('Your Git token for data/analytics (not set)');
    expect(host.textContent).not.toContain('Generate pipeline');
    const token = host.querySelector('[aria-label="Your Git token for data/analytics"]') as HTMLInputElement;
    await typeInto(token, 'ghp_secret');
    await submit(token.form);
    await render(<GitSection model={model} notebook="etl.ipynb" />);
    expect(host.textContent).toContain('No working copy yet: Pull or Generate pipeline clones it.');
    expect(host.textContent).not.toContain('ghp_secret');
    const button = (label: string) => Array.from(host.querySelectorAll('button')).find(b => b.textContent === label)!;
    await click(button('Generate pipeline'));
    expect(host.textContent).toContain("Pipeline 'etl' (2 step(s)): changed.");
    expect(host.textContent).toContain('On main: 1 change(s)');
    await click(button('Diff'));
    expect(host.querySelector('.jp-mod-added')!.textContent).toBe('+def step_1():');
    expect(host.querySelector('.jp-mod-removed')!.textContent).toBe('-old = 1');
    const message = host.querySelector('[aria-label="Commit message"]') as HTMLInputElement;
    await typeInto(message, 'Add the etl pipeline');
    await click(button('Commit'));
    expect(host.textContent).toContain('Committed 01234567.');
  });

  it('tells a new user where projects come from', async () => {
    request.mockResolvedValue({ projects: [] });
    const model = new GitModel();
    await model.refresh();
    await render(<GitSection model={model} notebook={null} />);
    expect(host.textContent).toContain('jupyter prophecy project add');
  });
});
