import * as React from 'react';

import { INotebookFabric, messageOf, notebookFabrics, SessionsModel } from '../model';
import { IRun, ISession } from '../tokens';
import { ErrorNote } from './ErrorNote';

/** A run's progress: a bar when the fabric reports one, else an indeterminate bar; then what it
 * waits on when the fabric says (a query queued or running on a warehouse). */
export function RunProgress(props: { run: IRun }): JSX.Element {
  const { run } = props;
  const percent = run.progress === null ? null : Math.round(run.progress * 100);
  return (
    <span className="jp-ProphecySidebar-progress">
      {percent === null ? (
        <progress aria-label={`Statement ${run.state}`} />
      ) : (
        <progress aria-label={`Statement ${run.state}`} value={run.progress ?? 0} max={1} />
      )}
      <span>
        {percent === null ? '' : `${percent}% · `}
        {run.elapsed.toFixed(1)} s · {run.state}
        {run.detail ? ` · ${run.detail}` : ''}
      </span>
    </span>
  );
}

function RunRow(props: { model: SessionsModel; run: IRun }): JSX.Element {
  const { model, run } = props;
  const [error, setError] = React.useState<string | null>(null);
  const cancel = async () => {
    try {
      await model.cancel(run);
      setError(null);
    } catch (failure) {
      setError(messageOf(failure));
    }
  };
  const firstLine = run.summary || run.kind;
  return (
    <li className="jp-ProphecySidebar-run">
      <code className="jp-ProphecySidebar-statement">
        {firstLine}
      </code>
      <div className="jp-ProphecySidebar-row">
        <RunProgress run={run} />
        <button
          className="jp-Button jp-mod-warn"
          onClick={cancel}
          disabled={run.state === 'cancelling'}
          aria-label={`Cancel ${firstLine}`}
        >
          Cancel
        </button>
      </div>
      <ErrorNote message={error} />
    </li>
  );
}

/** A notebook's session on one fabric: its state, running statements and actions. */
function SessionRow(props: { model: SessionsModel; session: ISession; isDefault: boolean }): JSX.Element {
  const { model, session, isDefault } = props;
  const [logs, setLogs] = React.useState<string[] | null>(null);
  const [message, setMessage] = React.useState<string | null>(null);
  const [error, setError] = React.useState<string | null>(null);
  const act = async (action: () => Promise<string | null>) => {
    try {
      setMessage(await action());
      setError(null);
    } catch (failure) {
      setError(messageOf(failure));
    }
  };
  const toggleLogs = () =>
    act(async () => {
      setLogs(logs === null ? await model.logs(session) : null);
      return null;
    });
  const ended = session.state === 'ended';
  const named = `${session.notebook} on ${session.fabric}`;
  return (
    <li className="jp-ProphecySidebar-session" aria-label={`Session of ${named}`}>
      <div className="jp-ProphecySidebar-row">
        <span className="jp-ProphecySidebar-name" title={session.fabric}>
          {session.fabric}
        </span>
        {isDefault && (
          <span className="jp-ProphecySidebar-default" title="The notebook's default fabric: cells without -f run here">
            default
          </span>
        )}
        <span className={`jp-ProphecySidebar-state jp-mod-${session.state.replace(/\s/g, '-')}`}>
          {session.state}
        </span>
      </div>
      {(session.remote_id || session.app_id || (ended && session.ended_reason)) && (
        <div className="jp-ProphecySidebar-meta">
          {[
            session.remote_id && `session ${session.remote_id}`,
            session.app_id,
            ended && session.ended_reason
          ]
            .filter(Boolean)
            .join(' · ')}
        </div>
      )}
      {session.runs.length > 0 && (
        <ul aria-label="Running statements">
          {session.runs.map(run => (
            <RunRow key={run.id} model={model} run={run} />
          ))}
        </ul>
      )}
      {!ended && (
        <div className="jp-ProphecySidebar-actions">
          <button className="jp-Button" onClick={() => act(async () => (await model.restart(session)).join(' ') || null)}>
            Restart
          </button>
          <button className="jp-Button" onClick={() => act(async () => (await model.stop(session), null))}>
            Stop
          </button>
          <button className="jp-Button" onClick={toggleLogs} aria-expanded={logs !== null}>
            {logs === null ? 'Logs' : 'Hide logs'}
          </button>
        </div>
      )}
      {message && <div role="status">{message}</div>}
      <ErrorNote message={error} />
      {logs !== null && (
        <pre className="jp-ProphecySidebar-logs" tabIndex={0} aria-label={`Log of ${named}`}>
          {logs.length ? logs.join('\n') : 'The session has no log yet.'}
        </pre>
      )}
    </li>
  );
}

/** What the session list needs besides the model. */
export interface ISessionListProps {
  model: SessionsModel;
  /** The current notebook's path (its sessions are listed first), null when none is open. */
  notebook: string | null;
  /** A notebook's default fabric, where known (its session is marked and listed first). */
  defaultFabricOf: (notebook: string) => string | null;
}

/** A notebook's sessions, one per fabric, its default fabric's first. */
function NotebookSessions(props: ISessionListProps & { path: string }): JSX.Element {
  const { model, notebook, defaultFabricOf, path } = props;
  const entries = notebookFabrics(model.sessions, path, defaultFabricOf(path)).filter(
    (entry): entry is INotebookFabric & { session: ISession } => entry.session !== null
  );
  return (
    <section aria-label={`Sessions of ${path}`}>
      <h3 className={`jp-ProphecySidebar-notebook${path === notebook ? ' jp-mod-current' : ''}`} title={path}>
        {path}
      </h3>
      <ul>
        {entries.map(entry => (
          <SessionRow key={entry.session.id} model={model} session={entry.session} isDefault={entry.isDefault} />
        ))}
      </ul>
    </section>
  );
}

/**
 * The user's sessions by notebook (the current notebook's first), one per fabric, with their
 * running statements: progress, cancel, restart, stop, logs.
 */
export function SessionList(props: ISessionListProps): JSX.Element {
  const { model, notebook } = props;
  const notebooks = [...new Set(model.sessions.map(session => session.notebook))].sort((a, b) =>
    a === notebook ? -1 : b === notebook ? 1 : 0
  );
  return (
    <div className="jp-ProphecySidebar-sessions">
      <ErrorNote message={model.error} />
      {!model.error && model.sessions.length === 0 && (
        <p className="jp-ProphecySidebar-empty">
          No sessions yet. Attach a notebook and run a cell: its session starts on the fabric and shows here.
        </p>
      )}
      {notebooks.map(path => (
        <NotebookSessions key={path} {...props} path={path} />
      ))}
    </div>
  );
}
