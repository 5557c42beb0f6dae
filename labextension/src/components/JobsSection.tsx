import * as React from 'react';

import { ApiError } from '../handler';
import {
  browserTimeZone,
  ENDED_RUN_STATES,
  formatDuration,
  formatInstant,
  JobsModel,
  messageOf,
  parseInstant
} from '../model';
import { IJob, IJobRun, IJobSpec } from '../tokens';
import { ErrorNote } from './ErrorNote';

/** How long the cron and time zone rest before their next fire times are asked for. */
export const PREVIEW_DELAY_MS = 400;

/** The form's field for an API error's field (`schedule.cron` → `cron`); null when the form has none. */
function formFieldOf(field: string | null): string | null {
  switch (field) {
    case 'name':
    case 'pipelines':
    case 'fabric':
    case 'retries':
      return field;
    case 'schedule':
    case 'schedule.cron':
      return 'cron';
    case 'schedule.timezone':
      return 'timezone';
    default:
      return null;
  }
}

/** A failure as a message and the form field it names. */
interface IFieldError {
  field: string | null;
  message: string;
}

function fieldErrorOf(failure: unknown): IFieldError {
  return {
    field: formFieldOf(failure instanceof ApiError ? failure.field : null),
    message: messageOf(failure)
  };
}

/** Instants in the browser's time zone, as a list. */
function Instants(props: { times: string[]; label: string; id?: string }): JSX.Element {
  return (
    <ol className="jp-ProphecySidebar-times" aria-label={props.label} id={props.id}>
      {props.times.map(time => (
        <li key={time}>
          <time dateTime={time}>{formatInstant(time)}</time>
        </li>
      ))}
    </ol>
  );
}

/** The IANA zones the browser knows, to suggest while typing (empty where it cannot say). */
function knownZones(): string[] {
  const intl = Intl as unknown as { supportedValuesOf?: (key: string) => string[] };
  try {
    return intl.supportedValuesOf ? intl.supportedValuesOf('timeZone') : [];
  } catch {
    return [];
  }
}

/** Create a job from the current notebook's pipeline: name, schedule with its next fire times, retries. */
export function JobForm(props: { model: JobsModel; onDone: (message: string | null) => void }): JSX.Element {
  const { model, onDone } = props;
  const [name, setName] = React.useState('');
  const [pipelines, setPipelines] = React.useState(model.pipeline ?? '');
  const [fabric, setFabric] = React.useState(model.fabric ?? '');
  const [cron, setCron] = React.useState('');
  const [timezone, setTimezone] = React.useState(browserTimeZone());
  const [retries, setRetries] = React.useState('');
  const [preview, setPreview] = React.useState<string[] | IFieldError | null>(null);
  const [error, setError] = React.useState<IFieldError | null>(null);
  const [saving, setSaving] = React.useState(false);
  const zones = React.useMemo(knownZones, []);
  const prefix = 'new-job';

  // The next fire times as the cron is typed: asked once typing rests, the answer to older text dropped.
  React.useEffect(() => {
    if (!cron.trim()) {
      setPreview(null);
      return;
    }
    let stale = false;
    const timer = setTimeout(async () => {
      try {
        const times = await model.preview(cron.trim(), timezone.trim());
        if (!stale) {
          setPreview(times);
        }
      } catch (failure) {
        if (!stale) {
          setPreview(fieldErrorOf(failure));
        }
      }
    }, PREVIEW_DELAY_MS);
    return () => {
      stale = true;
      clearTimeout(timer);
    };
  }, [cron, timezone]);

  const previewError = preview && !Array.isArray(preview) ? preview : null;
  const fabrics = model.fabrics.fabrics.map(option => option.ref);
  if (fabric && !fabrics.includes(fabric)) {
    fabrics.unshift(fabric);
  }

  const submit = async (event: React.FormEvent) => {
    event.preventDefault();
    const spec: IJobSpec = {
      name: name.trim(),
      pipelines: pipelines
        .split(',')
        .map(pipeline => pipeline.trim())
        .filter(pipeline => pipeline),
      fabric
    };
    if (cron.trim()) {
      spec.schedule = { cron: cron.trim(), timezone: timezone.trim() };
    }
    if (retries.trim()) {
      const count = Number(retries);
      if (!Number.isInteger(count)) {
        setError({ field: 'retries', message: 'Retries: a whole number (0 to 10).' });
        return;
      }
      spec.retries = count;
    }
    setSaving(true);
    try {
      const answer = await model.create(spec);
      setError(null);
      const files = answer.changed.length ? answer.changed.join(', ') : 'nothing changed';
      const where = model.project ? ` to ${model.project.ref}` : '';
      onDone(`Job ${answer.job.name} written${where} (${files}): commit it in the Git section to share it.`);
    } catch (failure) {
      setError(fieldErrorOf(failure));
    } finally {
      setSaving(false);
    }
  };

  /** The error of a field: the create's, else the preview's. */
  const errorFor = (field: string) => {
    const shown = error?.field === field ? error : previewError?.field === field ? previewError : null;
    return <ErrorNote message={shown?.message} id={`${prefix}-${field}-error`} />;
  };
  const described = (field: string, more: string[] = []) => {
    const ids = [...more];
    if (error?.field === field || previewError?.field === field) {
      ids.push(`${prefix}-${field}-error`);
    }
    return ids.length ? ids.join(' ') : undefined;
  };
  const invalid = (field: string) => error?.field === field || previewError?.field === field;
  const input = (field: string, label: string, control: JSX.Element, after?: JSX.Element) => (
    <div className="jp-ProphecySidebar-field" key={field}>
      <label htmlFor={`${prefix}-${field}`}>{label}</label>
      {control}
      {after}
      {errorFor(field)}
    </div>
  );

  return (
    <form className="jp-ProphecySidebar-form" onSubmit={submit} aria-label="New job">
      {input(
        'name',
        'Name',
        <input
          id={`${prefix}-name`}
          value={name}
          required
          placeholder={model.pipeline ? `${model.pipeline}-nightly` : 'nightly'}
          aria-invalid={invalid('name')}
          aria-describedby={described('name')}
          onChange={event => setName(event.target.value)}
        />
      )}
      {input(
        'pipelines',
        'Pipelines (in order, comma-separated)',
        <input
          id={`${prefix}-pipelines`}
          value={pipelines}
          required
          aria-invalid={invalid('pipelines')}
          aria-describedby={described('pipelines')}
          onChange={event => setPipelines(event.target.value)}
        />
      )}
      {input(
        'fabric',
        'Fabric',
        <select
          id={`${prefix}-fabric`}
          value={fabric}
          required
          aria-invalid={invalid('fabric')}
          aria-describedby={described('fabric')}
          onChange={event => setFabric(event.target.value)}
        >
          {!fabric && <option value="">Choose a fabric</option>}
          {fabrics.map(option => (
            <option key={option} value={option}>
              {option}
            </option>
          ))}
        </select>
      )}
      {input(
        'cron',
        'Schedule (cron: minute hour day month weekday)',
        <input
          id={`${prefix}-cron`}
          value={cron}
          placeholder="0 2 * * *"
          spellCheck={false}
          autoComplete="off"
          aria-invalid={invalid('cron')}
          aria-describedby={described('cron', [`${prefix}-cron-preview`])}
          onChange={event => setCron(event.target.value)}
        />,
        <div id={`${prefix}-cron-preview`} className="jp-ProphecySidebar-meta" role="status" aria-label="Next fire times">
          {!cron.trim() ? (
            'On demand: it runs when started.'
          ) : Array.isArray(preview) ? (
            <>
              Next runs (your time):
              <Instants times={preview} label="Next fire times of the schedule" />
            </>
          ) : previewError && !previewError.field ? (
            `No preview: ${previewError.message}`
          ) : null}
        </div>
      )}
      {input(
        'timezone',
        'Time zone (IANA)',
        <>
          <input
            id={`${prefix}-timezone`}
            value={timezone}
            list={zones.length ? `${prefix}-zones` : undefined}
            spellCheck={false}
            autoComplete="off"
            aria-invalid={invalid('timezone')}
            aria-describedby={described('timezone')}
            onChange={event => setTimezone(event.target.value)}
          />
          {zones.length > 0 && (
            <datalist id={`${prefix}-zones`}>
              {zones.map(zone => (
                <option key={zone} value={zone} />
              ))}
            </datalist>
          )}
        </>
      )}
      {input(
        'retries',
        'Retries of a failed run (optional)',
        <input
          id={`${prefix}-retries`}
          type="number"
          min={0}
          max={10}
          value={retries}
          aria-invalid={invalid('retries')}
          aria-describedby={described('retries')}
          onChange={event => setRetries(event.target.value)}
        />
      )}
      <ErrorNote message={error && !error.field ? error.message : null} />
      <div className="jp-ProphecySidebar-actions">
        <button className="jp-Button jp-mod-accept" type="submit" disabled={saving || !fabric}>
          Create job
        </button>
        <button className="jp-Button" type="button" onClick={() => onDone(null)}>
          Cancel
        </button>
      </div>
    </form>
  );
}

/** One run of a job: state, start, duration, the scheduler's error, its link; an active one can be cancelled. */
function JobRunRow(props: {
  run: IJobRun;
  busy: boolean;
  onCancel: (run: IJobRun) => void;
}): JSX.Element {
  const { run, busy, onCancel } = props;
  const active = !ENDED_RUN_STATES.has(run.state);
  const duration =
    run.duration_seconds !== null
      ? formatDuration(run.duration_seconds)
      : active && run.started
        ? `${formatDuration((Date.now() - parseInstant(run.started).getTime()) / 1000)} so far`
        : null;
  return (
    <li className="jp-ProphecySidebar-jobRun" aria-label={`Run ${run.run_id}`}>
      <div className="jp-ProphecySidebar-row">
        <span className="jp-ProphecySidebar-runState" data-state={run.state}>
          {run.state}
        </span>
        <span className="jp-ProphecySidebar-meta">
          {run.started ? (
            <time dateTime={run.started}>{formatInstant(run.started)}</time>
          ) : (
            'not started'
          )}
          {duration ? ` · ${duration}` : ''}
        </span>
      </div>
      {run.error && <div className="jp-ProphecySidebar-runError">{run.error}</div>}
      {run.result && !run.error && <div className="jp-ProphecySidebar-meta">{run.result}</div>}
      <div className="jp-ProphecySidebar-row">
        {run.link && (
          <a href={run.link} target="_blank" rel="noopener noreferrer">
            Open run {run.run_id} (new tab)
          </a>
        )}
        {active && (
          <button
            className="jp-Button jp-mod-warn"
            disabled={busy}
            aria-label={`Cancel run ${run.run_id}`}
            onClick={() => onCancel(run)}
          >
            Cancel
          </button>
        )}
      </div>
    </li>
  );
}

/** The last run's state by the job's name (nothing when the runs could not be read). */
function LastRun(props: { model: JobsModel; job: IJob }): JSX.Element | null {
  const state = props.model.runsOf(props.job.name);
  if (!state || state.kind === 'error') {
    return null;
  }
  if (state.kind === 'not-deployed') {
    return <span className="jp-ProphecySidebar-meta">not deployed</span>;
  }
  const last = state.runs[0];
  if (!last) {
    return <span className="jp-ProphecySidebar-meta">no runs yet</span>;
  }
  return (
    <span className="jp-ProphecySidebar-runState" data-state={last.state} title="The last run's state">
      last run: {last.state}
    </span>
  );
}

/** A job: what it runs where and when, its next runs in the user's time zone, its actions and runs. */
function JobRow(props: { model: JobsModel; job: IJob }): JSX.Element {
  const { model, job } = props;
  const [busy, setBusy] = React.useState<string | null>(null);
  const [said, setSaid] = React.useState<string | null>(null);
  const [error, setError] = React.useState<string | null>(null);
  const [showRuns, setShowRuns] = React.useState(false);
  const runs = model.runsOf(job.name);
  const id = `prophecy-job-${job.name}`;

  const act = async (doing: string, action: () => Promise<string | null>) => {
    setBusy(doing);
    try {
      setSaid(await action());
      setError(null);
    } catch (failure) {
      setSaid(null);
      setError(messageOf(failure));
    } finally {
      setBusy(null);
    }
  };
  const button = (label: string, doing: string, action: () => Promise<string>, title: string) => (
    <button className="jp-Button" disabled={busy !== null} title={title} onClick={() => void act(doing, action)}>
      {busy === doing ? `${label}…` : label}
    </button>
  );

  return (
    <li className="jp-ProphecySidebar-job" aria-labelledby={`${id}-name`} aria-busy={busy !== null}>
      <div className="jp-ProphecySidebar-row">
        <strong id={`${id}-name`} className="jp-ProphecySidebar-jobName">
          {job.name}
        </strong>
        <LastRun model={model} job={job} />
      </div>
      <div className="jp-ProphecySidebar-meta">
        {job.pipelines.join(' → ')} on {job.fabric}
        {job.retries ? ` · ${job.retries} retr${job.retries === 1 ? 'y' : 'ies'}` : ''}
      </div>
      <div className="jp-ProphecySidebar-meta">
        {job.schedule ? (
          <>
            Schedule: <code>{job.schedule.cron}</code> ({job.schedule.timezone})
          </>
        ) : (
          'On demand'
        )}
      </div>
      {job.next_runs.length > 0 && (
        <div className="jp-ProphecySidebar-meta">
          Next runs (your time):
          <Instants times={job.next_runs} label={`Next runs of ${job.name}`} />
        </div>
      )}
      <div className="jp-ProphecySidebar-actions" role="group" aria-label={`Actions of job ${job.name}`}>
        {button('Deploy', 'deploy', () => model.deploy(job.name), `Create or replace ${job.name} on ${job.fabric}`)}
        {button('Run now', 'run', () => model.runNow(job.name), `Start a run of ${job.name} now`)}
        {button('Pause', 'pause', () => model.pause(job.name), 'No scheduled run starts until it is resumed')}
        {button('Resume', 'resume', () => model.resume(job.name), 'Scheduled runs start again')}
        <button
          className="jp-Button"
          aria-expanded={showRuns}
          aria-controls={`${id}-runs`}
          onClick={() => {
            setShowRuns(!showRuns);
            if (!showRuns) {
              void model.loadRuns(job.name);
            }
          }}
        >
          Runs
        </button>
      </div>
      {said && (
        <div className="jp-ProphecySidebar-ok" role="status">
          {said}
        </div>
      )}
      <ErrorNote message={error} />
      {showRuns && (
        <div id={`${id}-runs`} className="jp-ProphecySidebar-details">
          {runs === undefined && <span className="jp-ProphecySidebar-meta">Loading runs…</span>}
          {runs?.kind === 'not-deployed' && (
            <span className="jp-ProphecySidebar-meta">Not deployed: Deploy puts it on its fabric’s scheduler.</span>
          )}
          {runs?.kind === 'error' && <span className="jp-ProphecySidebar-runError">{runs.message}</span>}
          {runs?.kind === 'runs' && runs.runs.length === 0 && (
            <span className="jp-ProphecySidebar-meta">No runs yet.</span>
          )}
          {runs?.kind === 'runs' && runs.runs.length > 0 && (
            <ul aria-label={`Runs of ${job.name}`}>
              {runs.runs.map(run => (
                <JobRunRow
                  key={run.run_id}
                  run={run}
                  busy={busy !== null}
                  onCancel={run => void act('cancel', () => model.cancel(job.name, run.run_id))}
                />
              ))}
            </ul>
          )}
        </div>
      )}
    </li>
  );
}

/** The jobs of the current notebook's project, and a form to make its pipeline a job. */
export function JobsSection(props: { model: JobsModel }): JSX.Element {
  const { model } = props;
  const [adding, setAdding] = React.useState(false);
  const [said, setSaid] = React.useState<string | null>(null);
  const project = model.project;

  if (!project) {
    return (
      <p className="jp-ProphecySidebar-empty">
        {model.projectProblem ??
          'No project: a notebook’s jobs live in its team’s Git project (see the Git section).'}
      </p>
    );
  }
  if (!project.token_set) {
    return (
      <p className="jp-ProphecySidebar-empty">
        Set your Git token for {project.ref} in the Git section to see its jobs.
      </p>
    );
  }
  const notebook = model.notebook;
  return (
    <div className="jp-ProphecySidebar-jobs">
      <div className="jp-ProphecySidebar-meta">
        Project {project.ref}
        {notebook && (
          <>
            {' '}
            · this notebook’s pipeline {model.pipeline} · fabric {model.fabric ?? 'none'}
          </>
        )}
      </div>
      {model.loading && <div className="jp-ProphecySidebar-meta">Loading jobs…</div>}
      {!model.loading && !model.error && model.jobs.length === 0 && (
        <p className="jp-ProphecySidebar-empty">No jobs in {project.ref} yet.</p>
      )}
      {model.jobs.length > 0 && (
        <ul aria-label={`Jobs of ${project.ref}`}>
          {model.jobs.map(job => (
            <JobRow key={job.name} model={model} job={job} />
          ))}
        </ul>
      )}
      <ErrorNote message={model.error} />
      <div className="jp-ProphecySidebar-actions">
        <button
          className="jp-Button"
          aria-expanded={adding}
          disabled={!notebook}
          title={notebook ? `A job of ${model.pipeline}` : 'Open a notebook first'}
          onClick={() => setAdding(!adding)}
        >
          New job
        </button>
      </div>
      {adding && (
        <JobForm
          model={model}
          onDone={message => {
            setAdding(false);
            setSaid(message);
          }}
        />
      )}
      {said && (
        <div className="jp-ProphecySidebar-ok" role="status">
          {said}
        </div>
      )}
    </div>
  );
}
