/** The sidebar's model with the one server-calling module, handler.ts, mocked. */
import { ApiError, requestAPI } from '../handler';
import { FabricsModel, SessionsModel } from '../model';
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

  it("finds a notebook's live session, not one that ended", async () => {
    request.mockResolvedValue({ sessions: [session('a.ipynb', 'ended'), session('a.ipynb', 'busy')] });
    const model = new SessionsModel(60000);
    await model.refresh();
    expect(model.sessionOf('a.ipynb')?.state).toBe('busy');
    expect(model.sessionOf('b.ipynb')).toBeNull();
    expect(model.live).toHaveLength(1);
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
