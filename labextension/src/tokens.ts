/** What the plugins share: the API's shapes. */

export interface ICredentialState {
  needed: string | null;
  set: boolean | null;
  updated_at?: string | null;
  /** The secret was given for another address than the fabric's current one: it is not sent. */
  endpoint_changed?: boolean;
  given_for?: string | null;
}

/** What an admin sends to create or change a fabric (never a secret). */
export interface IFabricSpec {
  name: string;
  kind: string;
  settings: Record<string, unknown>;
  conf: Record<string, string>;
  job_sizes: Record<string, Record<string, unknown>>;
  environment: string;
}

export interface IFabric extends IFabricSpec {
  id: string;
  ref: string;
  team: string | null;
  endpoint: string;
  /** Reached as the server's own identity (Livy kerberos, a Databricks profile), not the member's credential. */
  shared_identity?: boolean;
  credential: ICredentialState;
}

export interface IFabricList {
  fabrics: IFabric[];
}

export interface IConnectionReport {
  ok: boolean;
  stage: string | null;
  message: string;
  steps: string[];
}

export interface IMe {
  user: string;
  version: string;
  teams: { name: string; role: string }[];
}

export type RunState = 'queued' | 'running' | 'cancelling' | 'finished' | 'failed' | 'cancelled';

/** A statement (or table fetch) sent to a session. */
export interface IRun {
  id: string;
  kind: 'statement' | 'table' | 'send';
  session: string;
  state: RunState;
  progress: number | null;
  /** What the fabric says the run waits on (a Snowflake query's id and state), if anything. */
  detail?: string | null;
  elapsed: number;
  notes: string[];
  /** The first line of the run's code or query. */
  summary: string;
  statement?: string | null;
  language?: string;
}

/** A notebook's session on a fabric; `runs` are those not over yet. */
export interface ISession {
  id: string;
  notebook: string;
  fabric: string;
  state: string;
  remote_id: string | null;
  app_id: string | null;
  ended_reason: string | null;
  runs: IRun[];
}

export interface ISessionList {
  sessions: ISession[];
}

export interface ILogs {
  lines: string[];
}

export interface IAttachment {
  notebook: string;
  fabric: string | null;
}

/** A team's Git repository, with whether the user has set their token for it. */
export interface IProject {
  id: string;
  ref: string;
  team: string;
  name: string;
  url: string;
  provider: string;
  default_branch: string;
  /** Whether the token goes with the user's own account name (Bitbucket Server, other servers). */
  needs_username: boolean;
  token_set: boolean | null;
}

export interface IProjectStatus {
  project: string;
  /** null until the user's working copy is cloned. */
  branch: string | null;
  /** false: no working copy yet (Pull or Generate pipeline clones it). */
  cloned: boolean;
  changes: { path: string; status: string }[];
  notes: string[];
}

export interface IGenerated {
  pipeline: { name: string; steps: number; parameters: { name: string; type: string; default: unknown }[] };
  changed: boolean;
}

/** When a job runs: a 5-field cron read in an IANA time zone. */
export interface IJobSchedule {
  cron: string;
  timezone: string;
}

/** A job of a project (`jobs/<name>.yaml` in the user's working copy). */
export interface IJob {
  name: string;
  pipelines: string[];
  fabric: string;
  /** null: the job runs on demand only. */
  schedule: IJobSchedule | null;
  parameters: Record<string, unknown>;
  size: string | null;
  retries: number;
  timeout_minutes: number | null;
  max_concurrent_runs: number;
  emails: string[];
  /** The next fire times, ISO 8601 with their offset (none for an on-demand job). */
  next_runs: string[];
}

/** What the sidebar sends to create a job (the server checks every field and names a wrong one). */
export interface IJobSpec {
  name: string;
  pipelines: string[];
  fabric: string;
  schedule?: IJobSchedule;
  retries?: number;
}

export interface IJobCreated {
  job: IJob;
  /** The files written into the working copy (committed with the Git section). */
  changed: string[];
}

export type JobRunState = 'PENDING' | 'RUNNING' | 'SUCCESS' | 'FAILED' | 'CANCELED' | 'TIMEDOUT' | 'SKIPPED';

/** A run of a deployed job on its fabric's scheduler. */
export interface IJobRun {
  run_id: string;
  state: JobRunState;
  started: string | null;
  ended: string | null;
  duration_seconds: number | null;
  /** What the scheduler said of a failed run. */
  error: string | null;
  result: string | null;
  /** The run's page on the scheduler, when it has one. */
  link: string | null;
}

/** The version of the server extension this frontend was built with. */
export const FRONTEND_VERSION = '0.1.0';
