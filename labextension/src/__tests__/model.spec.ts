/** The sidebar's model with the one server-calling module, handler.ts, mocked. */
import { ApiError, requestAPI } from '../handler';
import { FabricsModel } from '../model';
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
    await model.attach('local');
    expect(model.attached).toBe('local');
    expect(JSON.parse(request.mock.calls[1][1]!.body as string)).toEqual({ notebook: 'a.ipynb', fabric: 'local' });
  });

  it('keeps a connection test report per fabric', async () => {
    request.mockResolvedValue({ ok: false, stage: 'tcp', message: 'Nothing answers', steps: [] });
    const model = new FabricsModel();
    await model.test(local);
    expect(model.report('local')).toEqual({ ok: false, stage: 'tcp', message: 'Nothing answers', steps: [] });
  });
});
