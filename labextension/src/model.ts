/** The sidebar's state, loaded through handler.ts and announced with signals. */
import { Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

import { ApiError, requestAPI } from './handler';
import {
  FRONTEND_VERSION,
  IAttachment,
  IConnectionReport,
  IFabric,
  IFabricList,
  IFabricSpec,
  IGenerated,
  ILogs,
  IMe,
  IProject,
  IProjectStatus,
  IRun,
  ISession,
  ISessionList
} from './tokens';

/** The message to show for a failed call, next to what failed. */
export function messageOf(error: unknown): string {
  if (error instanceof ApiError) {
    return error.message;
  }
  return 'The prophecy-jupyter server extension did not answer; is it installed and enabled?';
}

const quoted = encodeURIComponent;

export class FabricsModel {
  private _fabrics: IFabric[] = [];
  private _me: IMe | null = null;
  private _error: string | null = null;
  private _mismatch: string | null = null;
  private _notebook: string | null = null;
  private _attachments = new Map<string, string | null>();
  private _reports = new Map<string, IConnectionReport | string>();
  private _changed = new Signal<this, void>(this);

  get fabrics(): IFabric[] {
    return this._fabrics;
  }

  /** Who the server says the user is (null until the first refresh answers). */
  get me(): IMe | null {
    return this._me;
  }

  /** Why the fabrics could not be loaded, if they could not. */
  get error(): string | null {
    return this._error;
  }

  /** Set when the server extension's version differs from this frontend's. */
  get mismatch(): string | null {
    return this._mismatch;
  }

  get notebook(): string | null {
    return this._notebook;
  }

  /** The current notebook's fabric. */
  get attached(): string | null {
    return this._notebook ? this.attachmentOf(this._notebook) : null;
  }

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /** A notebook's fabric as last loaded (null when unknown or detached). */
  attachmentOf(path: string): string | null {
    return this._attachments.get(path) ?? null;
  }

  /** Teams in which the user may create and change fabrics. */
  get adminTeams(): string[] {
    return (this._me?.teams ?? []).filter(team => team.role === 'admin').map(team => team.name);
  }

  /** The last connection test of a fabric: a report, or the error that stopped it. */
  report(ref: string): IConnectionReport | string | undefined {
    return this._reports.get(ref);
  }

  /** Check the server extension's version, then load the fabrics of the user's teams. */
  async refresh(): Promise<void> {
    try {
      this._me = await requestAPI<IMe>('me');
      this._mismatch =
        this._me.version === FRONTEND_VERSION
          ? null
          : `The server extension is version ${this._me.version}; this sidebar is ${FRONTEND_VERSION}. ` +
            'Reinstall prophecy-jupyter and restart JupyterLab.';
      const answer = await requestAPI<IFabricList>('fabrics');
      this._fabrics = answer.fabrics;
      this._error = null;
    } catch (error) {
      this._error = messageOf(error);
    }
    this._changed.emit();
  }

  /** Follow the current notebook (null when none is open). */
  async setNotebook(path: string | null): Promise<void> {
    this._notebook = path;
    this._changed.emit();
    if (path) {
      await this.loadAttachment(path);
    }
  }

  /** Ask the server which fabric a notebook is attached to. */
  async loadAttachment(path: string): Promise<void> {
    try {
      const answer = await requestAPI<IAttachment>(`attachments?notebook=${quoted(path)}`);
      this._attachments.set(path, answer.fabric);
    } catch (error) {
      this._error = messageOf(error);
    }
    this._changed.emit();
  }

  /** Attach a notebook to a fabric (or detach it with null); failures are thrown to the caller. */
  async attach(path: string, ref: string | null): Promise<void> {
    if (ref === null) {
      await requestAPI(`attachments?notebook=${quoted(path)}`, { method: 'DELETE' });
      this._attachments.set(path, null);
    } else {
      const answer = await requestAPI<IAttachment>('attachments', {
        method: 'PUT',
        body: JSON.stringify({ notebook: path, fabric: ref })
      });
      this._attachments.set(path, answer.fabric);
    }
    this._changed.emit();
  }

  /** Store the user's own secret for a fabric (write-only: it is never read back). */
  async setCredential(fabric: IFabric, secret: string): Promise<void> {
    await requestAPI(`fabrics/${quoted(fabric.id)}/credential`, {
      method: 'PUT',
      body: JSON.stringify({ secret })
    });
    await this.refresh();
  }

  /** Let the user's secret go to the fabric's new address (after an admin changed it). */
  async confirmCredential(fabric: IFabric): Promise<void> {
    await requestAPI(`fabrics/${quoted(fabric.id)}/credential/confirm`, { method: 'POST' });
    await this.refresh();
  }

  /** Create a fabric in a team (admins), or change one; the server checks every field. */
  async saveFabric(spec: IFabricSpec, where: { team: string } | { fabric: IFabric }): Promise<void> {
    if ('team' in where) {
      await requestAPI(`teams/${quoted(where.team)}/fabrics`, { method: 'POST', body: JSON.stringify(spec) });
    } else {
      const change: Partial<IFabricSpec> = { ...spec };
      delete change.kind; // a fabric's kind cannot change
      await requestAPI(`fabrics/${quoted(where.fabric.id)}`, { method: 'PATCH', body: JSON.stringify(change) });
    }
    await this.refresh();
  }

  /** Test a fabric's connection with the user's credential; the report is kept for the row. */
  async test(fabric: IFabric): Promise<void> {
    try {
      const report = await requestAPI<IConnectionReport>(`fabrics/${quoted(fabric.id)}/test`, {
        method: 'POST'
      });
      this._reports.set(fabric.ref, report);
    } catch (error) {
      this._reports.set(fabric.ref, messageOf(error));
    }
    this._changed.emit();
  }
}

/** The user's sessions and their running statements, polled while the page is visible. */
export class SessionsModel {
  private _sessions: ISession[] = [];
  private _error: string | null = null;
  private _changed = new Signal<this, void>(this);
  private _poll: Poll;

  constructor(interval = 1000) {
    this._poll = new Poll({
      factory: () => this.refresh(),
      frequency: { interval, backoff: true, max: 30 * 1000 },
      standby: 'when-hidden',
      name: 'prophecy-jupyter:sessions'
    });
  }

  get sessions(): ISession[] {
    return this._sessions;
  }

  /** Live sessions first, then those that ended lately. */
  get live(): ISession[] {
    return this._sessions.filter(session => session.state !== 'ended');
  }

  get error(): string | null {
    return this._error;
  }

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /** The notebook's live session, if it has one. */
  sessionOf(notebook: string): ISession | null {
    return this.live.find(session => session.notebook === notebook) ?? null;
  }

  /** Poll at a new interval (milliseconds). */
  set interval(interval: number) {
    this._poll.frequency = { ...this._poll.frequency, interval };
  }

  async refresh(): Promise<void> {
    try {
      this._sessions = (await requestAPI<ISessionList>('sessions')).sessions;
      this._error = null;
    } catch (error) {
      this._error = messageOf(error);
      this._changed.emit();
      throw error; // the poll backs off
    }
    this._changed.emit();
  }

  /** Refresh now rather than at the next tick (after an action, say). */
  async tick(): Promise<void> {
    await this._poll.refresh();
    await this._poll.tick;
  }

  /** Cancel a run on its fabric; a queued one never runs. */
  async cancel(run: IRun): Promise<void> {
    await requestAPI(`runs/${quoted(run.id)}/cancel`, { method: 'POST' });
    await this.tick();
  }

  /** Close the remote session and open a new one: its state is lost. */
  async restart(session: ISession): Promise<string[]> {
    const answer = await requestAPI<{ messages: string[] }>(`sessions/${quoted(session.id)}/restart`, {
      method: 'POST'
    });
    await this.tick();
    return answer.messages;
  }

  /** Stop a session (the remote session is closed). */
  async stop(session: ISession): Promise<void> {
    await requestAPI(`sessions/${quoted(session.id)}`, { method: 'DELETE' });
    await this.tick();
  }

  /** The last lines of a session's log. */
  async logs(session: ISession, size = 200): Promise<string[]> {
    return (await requestAPI<ILogs>(`sessions/${quoted(session.id)}/logs?size=${size}`)).lines;
  }

  dispose(): void {
    this._poll.dispose();
  }
}

/** The team's Git projects: the user's working copy, its pipeline, diff, commit and push. */
export class GitModel {
  private _projects: IProject[] = [];
  private _project: string | null = null;
  private _status: IProjectStatus | null = null;
  private _error: string | null = null;
  private _changed = new Signal<this, void>(this);

  get projects(): IProject[] {
    return this._projects;
  }

  /** The chosen project's id. */
  get project(): IProject | null {
    return this._projects.find(project => project.id === this._project) ?? null;
  }

  /** The working copy's branch and changes (null until loaded, or when the token is missing). */
  get status(): IProjectStatus | null {
    return this._status;
  }

  get error(): string | null {
    return this._error;
  }

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /** Load the projects of the user's teams, keeping the chosen one when it is still there. */
  async refresh(): Promise<void> {
    try {
      this._projects = (await requestAPI<{ projects: IProject[] }>('projects')).projects;
      this._error = null;
    } catch (error) {
      this._error = messageOf(error);
    }
    if (!this.project) {
      this._project = this._projects[0]?.id ?? null;
    }
    await this.loadStatus();
  }

  /** Choose the project to work on. */
  async choose(id: string): Promise<void> {
    this._project = id;
    this._status = null;
    await this.loadStatus();
  }

  private async loadStatus(): Promise<void> {
    const project = this.project;
    if (project?.token_set) {
      try {
        this._status = await requestAPI<IProjectStatus>(`projects/${quoted(project.id)}/status`);
        this._error = null;
      } catch (error) {
        this._status = null;
        this._error = messageOf(error);
      }
    }
    this._changed.emit();
  }

  private path(action: string): string {
    if (!this.project) {
      throw new ApiError('Choose a project first.', 400);
    }
    return `projects/${quoted(this.project.id)}/${action}`;
  }

  /** Store the user's own token for the project's Git server (write-only), with their account name when it needs one. */
  async setToken(token: string, username: string | null = null): Promise<void> {
    await requestAPI(this.path('token'), { method: 'PUT', body: JSON.stringify({ token, username }) });
    await this.refresh();
  }

  /** Generate a notebook's pipeline into the working copy; says whether it changed. */
  async generate(notebook: string): Promise<IGenerated> {
    const answer = await requestAPI<IGenerated>(this.path('pipelines'), {
      method: 'POST',
      body: JSON.stringify({ notebook })
    });
    await this.loadStatus();
    return answer;
  }

  /** The working copy against its last commit. */
  async diff(): Promise<string> {
    return (await requestAPI<{ diff: string }>(this.path('diff'))).diff;
  }

  /** Commit every change as the user; null when there was nothing to commit. */
  async commit(message: string): Promise<string | null> {
    const answer = await requestAPI<{ commit: string | null }>(this.path('commit'), {
      method: 'POST',
      body: JSON.stringify({ message })
    });
    await this.loadStatus();
    return answer.commit;
  }

  /** Push the branch to the team's repository with the user's token. */
  async push(): Promise<string> {
    return (await requestAPI<{ branch: string }>(this.path('push'), { method: 'POST' })).branch;
  }

  /** Bring the team's changes into the working copy. */
  async pull(): Promise<string> {
    const branch = (await requestAPI<{ branch: string }>(this.path('pull'), { method: 'POST' })).branch;
    await this.loadStatus();
    return branch;
  }
}
