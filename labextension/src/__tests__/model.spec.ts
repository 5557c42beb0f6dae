/** The sidebar's model with the one server-calling module, handler.ts, mocked. */
import { NotebookModel } from '@jupyterlab/notebook';

import { ApiError, requestAPI } from '../handler';
import { FabricsModel, notebookFabrics, recordFabricsUsed, SessionsModel, withFabricsUsed } from '../model';
import { FRONTEND_VERSION } from '../tokens';

jest.mock('../handler', () => {
  const actual = jest.requireActual('../handler');
  return { ...actual, requestAPI: jest.fn() };
});

const request = requestAPI as jest.MockedFunction<typeof requestAPI>;
const local = {
  id: 'local',
  ref: 'local',
  name: 'local',
  team: null,
  kind: 'local',
  environment: 'dev',
  endpoint: 'this machine',
  settings: {},
  conf: {},
  job_sizes: {},
  credential: { needed: null, set: null }
};

describe('FabricsModel', () => {
  beforeEach(() => request.mockReset());

  it('loads the fabrics after checking the server version', async () => {
    request.mockImplementation(async (path?: string) =>
      path === 'me' ? { user: 'ana', version: FRONTEND_VERSION, teams: [] } : { fabrics: [local] }
    );
    const model = new FabricsModel();
    let announced = 0;
    model.changed.connect(() => announced++);
    await model.refresh();
    expect(model.fabrics.map(f => f.ref)).toEqual(['local']);
    expect(model.error).toBeNull();
    expect(model.mismatch).toBeNull();
    expect(announced).toBe(1);
  });

  it('says when the server extension is another version', async () => {
    request.mockImplementation(async (path?: string) =>
      path === 'me' ? { user: 'ana', version: '9.9.9', teams: [] } : { fabrics: [] }
    );
    const model = new FabricsModel();
    await model.refresh();
    expect(model.mismatch).toContain('version 9.9.9');
  });

  it('keeps the server message of a failed call to show it', async () => {
    request.mockRejectedValue(new ApiError('Only admins of team default can do this.', 403));
    const model = new FabricsModel();
    await model.refresh();
    expect(model.error).toBe('Only admins of team default can do this.');
  });

  it('attaches the current notebook and forgets nothing on failure', async () => {
    request.mockImplementation(async (path?: string, init?: RequestInit) => {
      if (path?.startsWith('attachments?')) {
        return { notebook: 'a.ipynb', fabric: null };
      }
      if (path === 'attachments' && init?.method === 'PUT') {
        return { notebook: 'a.ipynb', fabric: 'local' };
      }
      throw new ApiError('unexpected', 500);
    });
    const model = new FabricsModel();
    await model.setNotebook('a.ipynb');
    expect(model.attached).toBeNull();
    await model.attach('a.ipynb', 'local');
    expect(model.attached).toBe('local');
    expect(JSON.parse(request.mock.calls[1][1]!.body as string)).toEqual({ notebook: 'a.ipynb', fabric: 'local' });
  });

  it('keeps a connection test report per fabric', async () => {
    request.mockResolvedValue({ ok: false, stage: 'tcp', message: 'Nothing answers', steps: [] });
    const model = new FabricsModel();
    await model.test(local);
    expect(model.report('local')).toEqual({ ok: false, stage: 'tcp', message: 'Nothing answers', steps: [] });
  });

  it('creates a fabric in a team and changes one without its kind', async () => {
    request.mockImplementation(async (path?: string) =>
      path === 'me'
        ? { user: 'ana', version: FRONTEND_VERSION, teams: [{ name: 'data', role: 'admin' }] }
        : path === 'fabrics'
          ? { fabrics: [] }
          : {}
    );
    const model = new FabricsModel();
    const spec = {
      name: 'emr',
      kind: 'livy',
      settings: { url: 'https://livy:8998' },
      conf: {},
      job_sizes: { S: { driverMemory: '1g' } },
      environment: 'prod'
    };
    await model.saveFabric(spec, { team: 'data' });
    expect(request.mock.calls[0][0]).toBe('teams/data/fabrics');
    expect(JSON.parse(request.mock.calls[0][1]!.body as string)).toEqual(spec);
    expect(model.adminTeams).toEqual(['data']);
    request.mockClear();
    await model.saveFabric(spec, { fabric: { ...local, ...spec, id: 'f1', ref: 'data/emr', team: 'data' } });
    expect(request.mock.calls[0][0]).toBe('fabrics/f1');
    expect(request.mock.calls[0][1]!.method).toBe('PATCH');
    expect(JSON.parse(request.mock.calls[0][1]!.body as string)).not.toHaveProperty('kind');
  });
});

const running = {
  id: 'r1',
  kind: 'statement' as const,
  session: 's1',
  state: 'running' as const,
  progress: 0.4,
  elapsed: 2.5,
  notes: [],
  summary: 'spark.range(10**9).count()'
};
const session = (notebook: string, state: string) => ({
  id: `s-${notebook}-${state}`,
  notebook,
  fabric: 'local',
  state,
  remote_id: '0',
  app_id: null,
  ended_reason: state === 'ended' ? 'stopped' : null,
  runs: state === 'ended' ? [] : [running]
});

describe('SessionsModel', () => {
  beforeEach(() => request.mockReset());

  it("finds a notebook's live sessions by fabric, not those that ended", async () => {
    const onSnowflake = { ...session('a.ipynb', 'idle'), id: 's-sf', fabric: 'team/sf' };
    request.mockResolvedValue({ sessions: [session('a.ipynb', 'ended'), session('a.ipynb', 'busy'), onSnowflake] });
    const model = new SessionsModel(60000);
    await model.refresh();
    expect(model.sessionOn('a.ipynb', 'local')?.state).toBe('busy');
    expect(model.sessionOn('a.ipynb', 'team/sf')?.id).toBe('s-sf');
    expect(model.sessionOn('b.ipynb', 'local')).toBeNull();
    expect(model.liveSessionsOf('a.ipynb').map(s => s.fabric)).toEqual(['local', 'team/sf']);
    expect(model.live).toHaveLength(2);
    model.dispose();
  });

  it('keeps the server message when sessions cannot be loaded', async () => {
    request.mockRejectedValue(new ApiError('Session storage is unavailable.', 503));
    const model = new SessionsModel(60000);
    await expect(model.refresh()).rejects.toThrow('Session storage is unavailable.');
    expect(model.error).toBe('Session storage is unavailable.');
    model.dispose();
  });

  it('cancels a run on its fabric', async () => {
    request.mockResolvedValue({ sessions: [] });
    const model = new SessionsModel(60000);
    await model.cancel(running);
    expect(request.mock.calls[0]).toEqual(['runs/r1/cancel', { method: 'POST' }]);
    model.dispose();
  });
});

describe("a notebook's fabrics", () => {
  const onFabric = (notebook: string, fabric: string, state: string) => ({
    ...session(notebook, state),
    id: `s-${notebook}-${fabric}-${state}`,
    fabric
  });

  it('lists each fabric the notebook has a session on once, its default fabric first and marked', () => {
    const sessions = [
      onFabric('a.ipynb', 'team/sf', 'idle'),
      onFabric('a.ipynb', 'local', 'ended'),
      onFabric('a.ipynb', 'local', 'busy'),
      onFabric('b.ipynb', 'team/dbx', 'idle')
    ];
    const entries = notebookFabrics(sessions, 'a.ipynb', 'local');
    expect(entries.map(({ fabric, isDefault, session }) => [fabric, isDefault, session?.state])).toEqual([
      ['local', true, 'busy'],
      ['team/sf', false, 'idle']
    ]);
  });

  it('keeps the default fabric without a session, and the last ended session of a fabric', () => {
    const sessions = [onFabric('a.ipynb', 'team/sf', 'ended')];
    const entries = notebookFabrics(sessions, 'a.ipynb', 'local');
    expect(entries.map(({ fabric, isDefault, session }) => [fabric, isDefault, session?.state ?? null])).toEqual([
      ['local', true, null],
      ['team/sf', false, 'ended']
    ]);
    expect(notebookFabrics([], 'a.ipynb', null)).toEqual([]);
  });

  it('are recorded in the notebook model metadata, in order of first use, once each, with the default', () => {
    const model = new NotebookModel();
    model.setMetadata('prophecy', { fabric: 'local', project: 'default/analytics' });
    const sessions = [onFabric('a.ipynb', 'local', 'idle'), onFabric('a.ipynb', 'team/sf', 'busy')];
    expect(recordFabricsUsed(model, 'a.ipynb', sessions)).toBe(true);
    expect(model.getMetadata('prophecy')).toEqual({
      fabric: 'local',
      project: 'default/analytics',
      fabrics: ['local', 'team/sf']
    });
    // Nothing new: the metadata is left alone (the notebook does not become dirty again).
    let changes = 0;
    model.metadataChanged.connect(() => changes++);
    expect(recordFabricsUsed(model, 'a.ipynb', sessions)).toBe(false);
    expect(changes).toBe(0);
    // A third fabric is added after the others, the default stays.
    expect(recordFabricsUsed(model, 'a.ipynb', [...sessions, onFabric('a.ipynb', 'team/dbx', 'starting')])).toBe(true);
    expect(model.getMetadata('prophecy')).toEqual({
      fabric: 'local',
      project: 'default/analytics',
      fabrics: ['local', 'team/sf', 'team/dbx']
    });
    model.dispose();
  });

  it("records neither ended sessions nor another notebook's", () => {
    const model = new NotebookModel();
    const sessions = [onFabric('a.ipynb', 'team/old', 'ended'), onFabric('b.ipynb', 'team/sf', 'idle')];
    expect(recordFabricsUsed(model, 'a.ipynb', sessions)).toBe(false);
    expect(model.getMetadata('prophecy')).toBeUndefined();
    expect(recordFabricsUsed(model, 'a.ipynb', [onFabric('a.ipynb', 'team/sf', 'idle')])).toBe(true);
    expect(model.getMetadata('prophecy')).toEqual({ fabrics: ['team/sf'] });
    model.dispose();
  });

  it('adds to a list written before, keeping its order, the default added when it lacks it', () => {
    const recorded = { fabric: 'local', fabrics: ['team/sf', 'team/sf', 7, ''] };
    expect(withFabricsUsed(recorded, ['team/sf'])).toBeNull();
    expect(withFabricsUsed(recorded, ['team/dbx', 'team/sf'])).toEqual({
      fabric: 'local',
      fabrics: ['team/sf', 'local', 'team/dbx']
    });
    expect(withFabricsUsed('not an object', ['local'])).toEqual({ fabrics: ['local'] });
    expect(withFabricsUsed({ fabric: 'local' }, ['local'])).toBeNull();
    expect(withFabricsUsed({ fabric: 'local' }, ['local', 'team/sf'])).toEqual({
      fabric: 'local',
      fabrics: ['local', 'team/sf']
    });
  });
});
