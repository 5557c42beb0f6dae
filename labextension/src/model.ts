/** The sidebar's state, loaded through handler.ts and announced with signals. */
import type { INotebookModel } from '@jupyterlab/notebook';
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
  IJob,
  IJobCreated,
  IJobRun,
  IJobSpec,
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

  /**
   * The fabric a notebook's cells run on without `-f`, as the kernel decides: the one it is
   * attached to, else the one its metadata records (`metadata.prophecy.fabric`, when known).
   */
  defaultFabricOf(path: string, recorded: string | null): string | null {
    return this.attachmentOf(path) ?? recorded;
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

  /** The notebook's live sessions, one per fabric it runs cells on. */
  liveSessionsOf(notebook: string): ISession[] {
    return this.live.filter(session => session.notebook === notebook);
  }

  /** The notebook's live session on a fabric, if it has one. */
  sessionOn(notebook: string, fabric: string): ISession | null {
    return this.live.find(session => session.notebook === notebook && session.fabric === fabric) ?? null;
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

/** A fabric a notebook runs cells on, with the notebook's session there. */
export interface INotebookFabric {
  /** The fabric's reference (`team/name`). */
  fabric: string;
  /** Whether it is the notebook's default fabric, where cells without `-f` run. */
  isDefault: boolean;
  /** The notebook's session on the fabric (a live one rather than one that ended); null when none. */
  session: ISession | null;
}

/**
 * A notebook's fabrics, one entry per fabric: its default fabric first (with or without a
 * session), then each other fabric it has a session on among `sessions`, in the server's order.
 */
export function notebookFabrics(
  sessions: ISession[],
  notebook: string,
  defaultFabric: string | null
): INotebookFabric[] {
  const sessionByFabric = new Map<string, ISession | null>();
  if (defaultFabric) {
    sessionByFabric.set(defaultFabric, null);
  }
  for (const session of sessions) {
    if (session.notebook !== notebook) {
      continue;
    }
    const kept = sessionByFabric.get(session.fabric);
    if (!kept || (kept.state === 'ended' && session.state !== 'ended')) {
      sessionByFabric.set(session.fabric, session);
    }
  }
  return [...sessionByFabric].map(([fabric, session]) => ({ fabric, isDefault: fabric === defaultFabric, session }));
}

/** `metadata.prophecy` as an object (what is not one counts as empty, as the server reads it). */
function prophecyRecord(prophecy: unknown): Record<string, unknown> {
  const isObject = prophecy !== null && typeof prophecy === 'object' && !Array.isArray(prophecy);
  return isObject ? (prophecy as Record<string, unknown>) : {};
}

/** A metadata value that is text, else null (empty text too, as the server reads it). */
function textOf(value: unknown): string | null {
  return typeof value === 'string' && value ? value : null;
}

/**
 * `metadata.prophecy` with the fabrics in `used` added to its `fabrics` list, or null when that
 * list has them all already. `fabrics` keeps its order (first use): the default `fabric` is added
 * when missing, then the new fabrics in the order given; nothing is listed twice, and `fabric`
 * itself (the default) is left as it is.
 */
export function withFabricsUsed(prophecy: unknown, used: string[]): Record<string, unknown> | null {
  const recorded = prophecyRecord(prophecy);
  const listed = Array.isArray(recorded.fabrics) ? recorded.fabrics.map(textOf).filter(ref => ref !== null) : [];
  const defaultFabric = textOf(recorded.fabric);
  // A notebook that uses only its recorded fabric is left as it is (and not marked changed).
  if (used.every(ref => listed.includes(ref) || (listed.length === 0 && ref === defaultFabric))) {
    return null;
  }
  const fabrics = [...new Set([...listed, ...(defaultFabric ? [defaultFabric] : []), ...used])];
  return { ...recorded, fabrics };
}

/**
 * Record in a notebook model's metadata (`metadata.prophecy.fabrics`, saved with the notebook) the
 * fabrics of the notebook's live sessions it does not list yet; says whether the metadata changed.
 * Live sessions only: an ended one may be of another notebook that had the same path.
 */
export function recordFabricsUsed(
  model: Pick<INotebookModel, 'getMetadata' | 'setMetadata'>,
  notebook: string,
  sessions: ISession[]
): boolean {
  const used = sessions
    .filter(session => session.notebook === notebook && session.state !== 'ended')
    .map(session => session.fabric);
  const prophecy = withFabricsUsed(model.getMetadata('prophecy'), used);
  if (prophecy) {
    model.setMetadata('prophecy', prophecy);
  }
  return prophecy !== null;
}

/** What the sidebar knows of the current notebook: its path and what its metadata links it to. */
export interface INotebookLinks {
  path: string;
  /** `metadata.prophecy.project`: a project's id, `team/name`, or a name only one team uses. */
  project: string | null;
  /** `metadata.prophecy.fabric`. */
  fabric: string | null;
}

/** A notebook's links from its `metadata.prophecy` (what is not text is ignored, as the server does). */
export function linksOf(path: string, prophecy: unknown): INotebookLinks {
  const recorded = prophecyRecord(prophecy);
  return { path, project: textOf(recorded.project), fabric: textOf(recorded.fabric) };
}

/** The name the server gives a notebook's pipeline: its file name made a valid name (as `pipeline_name_for`). */
export function pipelineNameFor(path: string): string {
  const file = path.split('/').pop() ?? path;
  const stem = (file.includes('.') ? file.slice(0, file.lastIndexOf('.')) : file).toLowerCase();
  const name =
    stem
      .replace(/[^a-z0-9_-]+/g, '_')
      .replace(/^[_-]+/, '')
      .replace(/[_-]+$/, '') || 'pipeline';
  return /^[a-z]/.test(name) ? name : `p_${name}`.slice(0, 63);
}

/** The user's (browser's) IANA time zone. */
export function browserTimeZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
}

/** An instant from the API as a Date: ISO 8601, read as UTC when it carries no offset. */
export function parseInstant(iso: string): Date {
  const zoned = /(Z|[+-]\d\d:?\d\d)$/i.test(iso) || !iso.includes('T') ? iso : `${iso}Z`;
  return new Date(zoned);
}

/** An instant in a time zone (by default the browser's), with the zone's short name. */
export function formatInstant(iso: string, timeZone: string = browserTimeZone()): string {
  const date = parseInstant(iso);
  if (isNaN(date.getTime())) {
    return iso;
  }
  return new Intl.DateTimeFormat(undefined, {
    weekday: 'short',
    month: 'short',
    day: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
    timeZone,
    timeZoneName: 'short'
  }).format(date);
}

/** A run's duration: `42 s`, `3 min 5 s`, `2 h 10 min`. */
export function formatDuration(seconds: number): string {
  const whole = Math.max(0, Math.round(seconds));
  if (whole < 60) {
    return `${whole} s`;
  }
  if (whole < 3600) {
    const rest = whole % 60;
    return `${Math.floor(whole / 60)} min${rest ? ` ${rest} s` : ''}`;
  }
  const minutes = Math.floor((whole % 3600) / 60);
  return `${Math.floor(whole / 3600)} h${minutes ? ` ${minutes} min` : ''}`;
}

/** Run states a run does not leave. */
export const ENDED_RUN_STATES = new Set(['SUCCESS', 'FAILED', 'CANCELED', 'TIMEDOUT', 'SKIPPED']);

/** How long a run just started is looked for in its job's runs before the job is no longer watched. */
const WAIT_FOR_NEW_RUN_MS = 2 * 60 * 1000;

/** A job's recent runs as last loaded: the runs, or that it is not deployed, or why they could not be read. */
export type JobRunsState =
  | { kind: 'runs'; runs: IJobRun[] }
  | { kind: 'not-deployed' }
  | { kind: 'error'; message: string };

/**
 * The jobs of the current notebook's project: the project its metadata names (else the Git
 * section's), each job's recent runs, and the actions on its fabric's scheduler. A job with a run
 * under way is watched (its runs polled) until the run ends.
 */
export class JobsModel {
  private _links: INotebookLinks | null = null;
  private _jobs: IJob[] = [];
  private _runs = new Map<string, JobRunsState>();
  /** Per watched job, the run it waits for (null: every active run) and since when. */
  private _watching = new Map<string, { runId: string | null; since: number }>();
  private _error: string | null = null;
  private _loading = false;
  private _loadedFor: string | null = null;
  private _changed = new Signal<this, void>(this);
  private _poll: Poll;

  constructor(
    readonly git: GitModel,
    readonly fabrics: FabricsModel,
    interval = 3000,
    readonly runsLimit = 10
  ) {
    git.changed.connect(this._follow, this);
    this._poll = new Poll({
      factory: () => this._tickWatched(),
      frequency: { interval, backoff: false },
      standby: () => (this._watching.size === 0 ? true : 'when-hidden'),
      name: 'prophecy-jupyter:job-runs'
    });
  }

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /** The current notebook and its links (null when no notebook is open). */
  get notebook(): INotebookLinks | null {
    return this._links;
  }

  /** The project whose jobs are shown: the notebook's (its metadata), else the Git section's. */
  get project(): IProject | null {
    const named = this._links?.project;
    if (!named) {
      return this.git.project;
    }
    const projects = this.git.projects;
    const exact = projects.find(project => project.id === named || project.ref === named);
    const byName = projects.filter(project => project.name === named);
    return exact ?? (byName.length === 1 ? byName[0] : null);
  }

  /** Why the notebook's project is not shown, when its metadata names one the user cannot see. */
  get projectProblem(): string | null {
    const named = this._links?.project;
    if (!named || this.project || this.git.projects.length === 0) {
      return null;
    }
    return `This notebook's project ${named} is not one of your teams' projects.`;
  }

  /** The current notebook's pipeline (its file name, as Generate pipeline names it). */
  get pipeline(): string | null {
    return this._links ? pipelineNameFor(this._links.path) : null;
  }

  /** The current notebook's fabric: its metadata's, else the one it is attached to. */
  get fabric(): string | null {
    if (!this._links) {
      return null;
    }
    return this._links.fabric ?? this.fabrics.attachmentOf(this._links.path);
  }

  get jobs(): IJob[] {
    return this._jobs;
  }

  get error(): string | null {
    return this._error;
  }

  /** Whether the jobs are being loaded. */
  get loading(): boolean {
    return this._loading;
  }

  /** A job's recent runs as last loaded (undefined until loaded). */
  runsOf(job: string): JobRunsState | undefined {
    return this._runs.get(job);
  }

  /** Whether the job's runs are polled (a run of it is under way). */
  isWatched(job: string): boolean {
    return this._watching.has(job);
  }

  /** Follow the current notebook (null when none is open); its project's jobs are loaded if it changed. */
  async setNotebook(links: INotebookLinks | null): Promise<void> {
    this._links = links;
    this._changed.emit();
    await this._follow();
  }

  /** Load the project's jobs, then each job's recent runs. */
  async refresh(): Promise<void> {
    const project = this.project;
    if (this._key() !== this._loadedFor) {
      this._watching.clear();
      this._runs.clear();
      this._loadedFor = this._key();
    }
    if (!project || !project.token_set) {
      this._jobs = [];
      this._runs.clear();
      this._error = null;
      this._changed.emit();
      return;
    }
    this._loading = true;
    this._changed.emit();
    try {
      this._jobs = (await requestAPI<{ jobs: IJob[] }>(`projects/${quoted(project.id)}/jobs`)).jobs;
      this._error = null;
    } catch (error) {
      this._jobs = [];
      this._error = messageOf(error);
    } finally {
      this._loading = false;
    }
    const names = new Set(this._jobs.map(job => job.name));
    for (const name of [...this._runs.keys(), ...this._watching.keys()]) {
      if (!names.has(name)) {
        this._runs.delete(name);
        this._watching.delete(name);
      }
    }
    this._changed.emit();
    await Promise.all(this._jobs.map(job => this.loadRuns(job.name)));
  }

  /** Load a job's recent runs; a 4xx answer means it is not deployed (yet), which is no error. */
  async loadRuns(job: string): Promise<void> {
    let state: JobRunsState;
    try {
      const answer = await requestAPI<{ runs: IJobRun[] }>(this.path(`jobs/${quoted(job)}/runs?limit=${this.runsLimit}`));
      state = { kind: 'runs', runs: answer.runs };
    } catch (error) {
      const quiet = error instanceof ApiError && error.status >= 400 && error.status < 500;
      state = quiet ? { kind: 'not-deployed' } : { kind: 'error', message: messageOf(error) };
    }
    this._runs.set(job, state);
    const active = state.kind === 'runs' && state.runs.some(run => !ENDED_RUN_STATES.has(run.state));
    if (active && !this._watching.has(job)) {
      this._watch(job, null);
    }
    this._changed.emit();
  }

  /** Create a job from the form (written into the working copy; the Git section commits it). */
  async create(spec: IJobSpec): Promise<IJobCreated> {
    const answer = await requestAPI<IJobCreated>(this.path('jobs'), { method: 'POST', body: JSON.stringify(spec) });
    await this.refresh();
    void this.git.refresh(); // the Git section shows the new file
    return answer;
  }

  /** Create or replace the job on its fabric's scheduler; the server's message. */
  async deploy(job: string): Promise<string> {
    const answer = await this.post<{ message: string }>(job, 'deploy');
    await this.loadRuns(job);
    return answer.message;
  }

  /** Start a run now; its runs are then polled until it ends. */
  async runNow(job: string): Promise<string> {
    const answer = await this.post<{ run_id: string; message: string }>(job, 'run', {});
    this._watch(job, answer.run_id ?? null);
    await this.loadRuns(job);
    return answer.message;
  }

  async pause(job: string): Promise<string> {
    return (await this.post<{ message: string }>(job, 'pause')).message;
  }

  async resume(job: string): Promise<string> {
    return (await this.post<{ message: string }>(job, 'resume')).message;
  }

  /** Cancel one run of the job (or all its active runs, without a run id). */
  async cancel(job: string, runId?: string): Promise<string> {
    const body = runId === undefined ? {} : { run_id: runId };
    const answer = await this.post<{ cancelled: string[]; message: string }>(job, 'cancel', body);
    await this.loadRuns(job);
    return answer.message;
  }

  /** The next fire times of a schedule (ISO 8601); a 400 names `schedule.cron` or `schedule.timezone`. */
  async preview(cron: string, timezone: string, count = 3): Promise<string[]> {
    const answer = await requestAPI<{ next_runs: string[] }>('schedules/preview', {
      method: 'POST',
      body: JSON.stringify({ cron, timezone, count })
    });
    return answer.next_runs;
  }

  dispose(): void {
    this.git.changed.disconnect(this._follow, this);
    this._poll.dispose();
  }

  private path(action: string): string {
    const project = this.project;
    if (!project) {
      throw new ApiError('Open a notebook of a project first.', 400);
    }
    return `projects/${quoted(project.id)}/${action}`;
  }

  private post<T>(job: string, action: string, body?: unknown): Promise<T> {
    const init: RequestInit = { method: 'POST' };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
    }
    return requestAPI<T>(this.path(`jobs/${quoted(job)}/${action}`), init);
  }

  /** What the loaded jobs depend on: the project, and whether the user's token for it is set. */
  private _key(): string | null {
    const project = this.project;
    return project ? `${project.id}:${project.token_set}` : null;
  }

  /** Load the jobs again when the project they come from changed (another notebook, a token set). */
  private async _follow(): Promise<void> {
    if (this._key() !== this._loadedFor) {
      await this.refresh();
    } else {
      this._changed.emit();
    }
  }

  private _watch(job: string, runId: string | null): void {
    this._watching.set(job, { runId, since: Date.now() });
  }

  /** Poll the watched jobs' runs; a job is no longer watched once its run (or every run) ended. */
  private async _tickWatched(): Promise<void> {
    await Promise.all(
      [...this._watching.entries()].map(async ([job, { runId, since }]) => {
        await this.loadRuns(job);
        const state = this._runs.get(job);
        if (state?.kind !== 'runs') {
          this._watching.delete(job);
          return;
        }
        // A run just started may take a moment to show in the scheduler's history.
        const seen = runId === null || state.runs.some(run => run.run_id === runId);
        const active = state.runs.some(run => !ENDED_RUN_STATES.has(run.state));
        if (!active && (seen || Date.now() - since > WAIT_FOR_NEW_RUN_MS)) {
          this._watching.delete(job);
        }
      })
    );
    this._changed.emit();
  }
}
