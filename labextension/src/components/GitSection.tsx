import * as React from 'react';

import { GitModel, messageOf } from '../model';
import { ErrorNote } from './ErrorNote';

/** A unified diff with added and removed lines marked, readable in both themes. */
export function DiffView(props: { diff: string }): JSX.Element {
  if (!props.diff.trim()) {
    return <p className="jp-ProphecySidebar-empty">No changes since the last commit.</p>;
  }
  return (
    <pre className="jp-ProphecySidebar-diff" tabIndex={0} aria-label="Changes since the last commit">
      {props.diff.split('\n').map((line, index) => {
        const kind = line.startsWith('+++') || line.startsWith('---') ? 'file' : line[0];
        const mod = kind === '+' ? ' jp-mod-added' : kind === '-' ? ' jp-mod-removed' : kind === 'file' ? ' jp-mod-file' : '';
        return (
          <div key={index} className={`jp-ProphecySidebar-diffLine${mod}`}>
            {line || ' '}
          </div>
        );
      })}
    </pre>
  );
}

/** The team's Git project: token, branch and changes, generate the notebook's pipeline, diff, commit, push. */
export function GitSection(props: { model: GitModel; notebook: string | null }): JSX.Element {
  const { model, notebook } = props;
  const [token, setToken] = React.useState('');
  const [username, setUsername] = React.useState('');
  const [message, setMessage] = React.useState('');
  const [diff, setDiff] = React.useState<string | null>(null);
  const [said, setSaid] = React.useState<string | null>(null);
  const [error, setError] = React.useState<string | null>(null);
  const [busy, setBusy] = React.useState(false);
  const project = model.project;
  const status = model.status;

  const act = async (action: () => Promise<string | null>) => {
    setBusy(true);
    try {
      setSaid(await action());
      setError(null);
    } catch (failure) {
      setError(messageOf(failure));
    } finally {
      setBusy(false);
    }
  };

  if (!project) {
    return (
      <p className="jp-ProphecySidebar-empty">
        {model.error ??
          'No projects yet. A team admin adds the team’s Git repository with `jupyter prophecy project add`; your notebooks’ pipelines are then committed there.'}
      </p>
    );
  }
  return (
    <div className="jp-ProphecySidebar-git">
      <div className="jp-ProphecySidebar-field">
        <label htmlFor="prophecy-git-project">Project</label>
        <select id="prophecy-git-project" value={project.id} onChange={event => void model.choose(event.target.value)}>
          {model.projects.map(option => (
            <option key={option.id} value={option.id}>
              {option.ref}
            </option>
          ))}
        </select>
      </div>
      {!project.token_set && (
        <form
          className="jp-ProphecySidebar-credential"
          onSubmit={event => {
            event.preventDefault();
            void act(async () => {
              await model.setToken(token, project.needs_username ? username : null);
              setToken('');
              return 'Token saved.';
            });
          }}
        >
          <label>
            Your Git token for {project.ref} (not set)
            <input
              type="password"
              autoComplete="off"
              value={token}
              aria-label={`Your Git token for ${project.ref}`}
              onChange={event => setToken(event.target.value)}
            />
          </label>
          {project.needs_username && (
            <label>
              Your account name on the Git server
              <input
                value={username}
                autoComplete="username"
                aria-label={`Your account name for ${project.ref}`}
                onChange={event => setUsername(event.target.value)}
              />
            </label>
          )}
          <button className="jp-Button" type="submit" disabled={!token || (project.needs_username && !username) || busy}>
            Save
          </button>
        </form>
      )}
      {status && !status.cloned && (
        <div className="jp-ProphecySidebar-meta" role="status" aria-label="Working copy">
          No working copy yet: Pull or Generate pipeline clones it.
        </div>
      )}
      {status?.cloned && (
        <div className="jp-ProphecySidebar-meta" role="status" aria-label="Working copy">
          On {status.branch}: {status.changes.length} change(s)
          <ul>
            {status.changes.map(change => (
              <li key={change.path}>
                {change.status} {change.path}
              </li>
            ))}
          </ul>
        </div>
      )}
      {project.token_set && (
        <>
          <div className="jp-ProphecySidebar-actions">
            <button
              className="jp-Button"
              disabled={!notebook || busy}
              title={notebook ? `Generate the pipeline of ${notebook}` : 'Open a notebook first'}
              onClick={() =>
                act(async () => {
                  const answer = await model.generate(notebook!);
                  return `Pipeline '${answer.pipeline.name}' (${answer.pipeline.steps} step(s)): ${answer.changed ? 'changed' : 'unchanged'}.`;
                })
              }
            >
              Generate pipeline
            </button>
            <button
              className="jp-Button"
              aria-expanded={diff !== null}
              disabled={busy}
              onClick={() =>
                act(async () => {
                  setDiff(diff === null ? await model.diff() : null);
                  return null;
                })
              }
            >
              {diff === null ? 'Diff' : 'Hide diff'}
            </button>
            <button className="jp-Button" disabled={busy} onClick={() => act(async () => `Pulled ${await model.pull()}.`)}>
              Pull
            </button>
          </div>
          {diff !== null && <DiffView diff={diff} />}
          <form
            className="jp-ProphecySidebar-commit"
            onSubmit={event => {
              event.preventDefault();
              void act(async () => {
                const commit = await model.commit(message);
                setMessage('');
                setDiff(null);
                return commit ? `Committed ${commit.slice(0, 8)}.` : 'Nothing to commit.';
              });
            }}
          >
            <input
              value={message}
              placeholder="Commit message"
              aria-label="Commit message"
              onChange={event => setMessage(event.target.value)}
            />
            <button className="jp-Button" type="submit" disabled={!message.trim() || busy}>
              Commit
            </button>
            <button
              className="jp-Button"
              type="button"
              disabled={busy}
              onClick={() => act(async () => `Pushed ${await model.push()}.`)}
            >
              Push
            </button>
          </form>
        </>
      )}
      {said && <div className="jp-ProphecySidebar-ok">{said}</div>}
      <ErrorNote message={error ?? model.error} />
    </div>
  );
}
