import * as React from 'react';

import { messageOf, SessionsModel } from '../model';
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

function SessionRow(props: { model: SessionsModel; session: ISession }): JSX.Element {
  const { model, session } = props;
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
  return (
    <li className="jp-ProphecySidebar-session" aria-label={`Session of ${session.notebook}`}>
      <div className="jp-ProphecySidebar-row">
        <span className="jp-ProphecySidebar-name" title={session.notebook}>
          {session.notebook}
        </span>
        <span className={`jp-ProphecySidebar-state jp-mod-${session.state.replace(/\s/g, '-')}`}>
          {session.state}
        </span>
      </div>
      <div className="jp-ProphecySidebar-meta">
        on {session.fabric}
        {session.remote_id && ` · session ${session.remote_id}`}
        {session.app_id && ` · ${session.app_id}`}
        {ended && session.ended_reason && ` · ${session.ended_reason}`}
      </div>
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
        <pre className="jp-ProphecySidebar-logs" tabIndex={0} aria-label={`Log of ${session.notebook}`}>
          {logs.length ? logs.join('\n') : 'The session has no log yet.'}
        </pre>
      )}
    </li>
  );
}

/** The user's sessions with their running statements: progress, cancel, restart, stop, logs. */
export function SessionList(props: { model: SessionsModel }): JSX.Element {
  const { model } = props;
  return (
    <div className="jp-ProphecySidebar-sessions">
      <ErrorNote message={model.error} />
      {!model.error && model.sessions.length === 0 && (
        <p className="jp-ProphecySidebar-empty">
          No sessions yet. Attach a notebook and run a cell: its session starts on the fabric and shows here.
        </p>
      )}
      <ul>
        {model.sessions.map(session => (
          <SessionRow key={session.id} model={model} session={session} />
        ))}
      </ul>
    </div>
  );
}
