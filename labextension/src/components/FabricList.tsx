import * as React from 'react';

import { FabricsModel, messageOf } from '../model';
import { IFabric, ISession } from '../tokens';
import { FabricForm } from './FabricForm';
import { ErrorNote } from './ErrorNote';

/** What the fabric list needs besides the model: attaching goes through the app's command. */
export interface IFabricListProps {
  model: FabricsModel;
  /** Attach the current notebook to a fabric, or detach it (null). */
  onAttach: (ref: string | null) => Promise<unknown>;
  /** The current notebook's live sessions (one per fabric), to show each one's state by its fabric. */
  sessions: ISession[];
}

/** A write-only secret form: it says whether one is set, never what it is. */
function CredentialForm(props: { model: FabricsModel; fabric: IFabric }): JSX.Element | null {
  const { model, fabric } = props;
  const [secret, setSecret] = React.useState('');
  const [error, setError] = React.useState<string | null>(null);
  if (!fabric.credential.needed) {
    return null;
  }
  const save = async (event: React.FormEvent) => {
    event.preventDefault();
    try {
      await model.setCredential(fabric, secret);
      setSecret('');
      setError(null);
    } catch (failure) {
      setError(messageOf(failure));
    }
  };
  const confirm = async () => {
    try {
      await model.confirmCredential(fabric);
      setError(null);
    } catch (failure) {
      setError(messageOf(failure));
    }
  };
  return (
    <form className="jp-ProphecySidebar-credential" onSubmit={save}>
      {fabric.credential.endpoint_changed && (
        <div className="jp-ProphecySidebar-warning" role="alert">
          This fabric now points to {fabric.endpoint}; you gave your {fabric.credential.needed} for{' '}
          {fabric.credential.given_for}. It is not sent until you confirm it or set a new one.{' '}
          <button className="jp-Button" type="button" onClick={() => void confirm()}>
            Confirm for {fabric.endpoint}
          </button>
        </div>
      )}
      <label>
        Your {fabric.credential.needed} ({fabric.credential.set ? 'set' : 'not set'})
        <input
          type="password"
          autoComplete="off"
          value={secret}
          aria-label={`Your ${fabric.credential.needed} for ${fabric.ref}`}
          onChange={event => setSecret(event.target.value)}
        />
      </label>
      <button className="jp-Button" type="submit" disabled={!secret}>
        Save
      </button>
      <ErrorNote message={error} />
    </form>
  );
}

function FabricRow(props: IFabricListProps & { fabric: IFabric }): JSX.Element {
  const { model, fabric, onAttach, sessions } = props;
  const [open, setOpen] = React.useState(false);
  const [editing, setEditing] = React.useState(false);
  const [error, setError] = React.useState<string | null>(null);
  const attached = model.attached === fabric.ref;
  const session = sessions.find(candidate => candidate.fabric === fabric.ref);
  const report = model.report(fabric.ref);
  const admin = fabric.team !== null && model.adminTeams.includes(fabric.team);
  const attach = async () => {
    try {
      await onAttach(attached ? null : fabric.ref);
      setError(null);
    } catch (failure) {
      setError(messageOf(failure));
    }
  };
  return (
    <li className={`jp-ProphecySidebar-fabric${attached ? ' jp-mod-attached' : ''}`} title={fabric.endpoint}>
      <div className="jp-ProphecySidebar-row">
        <button className="jp-ProphecySidebar-name" onClick={() => setOpen(!open)} aria-expanded={open}>
          {fabric.name}
        </button>
        <span className="jp-ProphecySidebar-kind">{fabric.kind}</span>
        <span className={`jp-ProphecySidebar-env jp-mod-${fabric.environment}`}>{fabric.environment}</span>
        {fabric.shared_identity && (
          <span className="jp-ProphecySidebar-kind" title="Reached as the server's own identity, not your credential">
            shared identity
          </span>
        )}
        {fabric.credential.endpoint_changed && (
          <span className="jp-ProphecySidebar-warning" title="Your credential waits for your confirmation">
            new address
          </span>
        )}
        {session && (
          <span className="jp-ProphecySidebar-state" title="This notebook's session on the fabric">
            {session.state}
          </span>
        )}
        {model.notebook && (
          <button className="jp-Button jp-ProphecySidebar-attach" onClick={attach}>
            {attached ? 'Detach' : 'Attach'}
          </button>
        )}
      </div>
      <ErrorNote message={error} />
      {open && (
        <div className="jp-ProphecySidebar-details">
          <div className="jp-ProphecySidebar-endpoint">{fabric.endpoint}</div>
          <CredentialForm model={model} fabric={fabric} />
          <div className="jp-ProphecySidebar-actions">
            <button className="jp-Button" onClick={() => void model.test(fabric)}>
              Test connection
            </button>
            {admin && (
              <button className="jp-Button" onClick={() => setEditing(!editing)} aria-expanded={editing}>
                Edit
              </button>
            )}
          </div>
          {editing && fabric.team && (
            <FabricForm model={model} team={fabric.team} fabric={fabric} onDone={() => setEditing(false)} />
          )}
          <ErrorNote message={typeof report === 'string' ? report : null} />
          {report && typeof report !== 'string' && (
            <div className={report.ok ? 'jp-ProphecySidebar-ok' : 'jp-ProphecySidebar-error'} role="status">
              {report.ok ? 'Connected: ' : `Failed at ${report.stage}: `}
              {report.message}
            </div>
          )}
        </div>
      )}
    </li>
  );
}

/** A team's fabrics; its admins can add one. */
function TeamSection(props: IFabricListProps & { team: string; fabrics: IFabric[] }): JSX.Element {
  const { model, team, fabrics } = props;
  const [adding, setAdding] = React.useState(false);
  const admin = model.adminTeams.includes(team);
  return (
    <section aria-label={`Team ${team}`}>
      <div className="jp-ProphecySidebar-row">
        <h3>{team}</h3>
        {admin && (
          <button
            className="jp-Button jp-ProphecySidebar-add"
            onClick={() => setAdding(!adding)}
            aria-expanded={adding}
            aria-label={`New fabric in team ${team}`}
          >
            New fabric
          </button>
        )}
      </div>
      {adding && <FabricForm model={model} team={team} onDone={() => setAdding(false)} />}
      {fabrics.length === 0 && !adding && (
        <p className="jp-ProphecySidebar-empty">
          {admin
            ? 'No fabrics yet: add the team’s Spark cluster, Databricks workspace or Snowflake account with New fabric.'
            : 'No fabrics yet: ask an admin of this team to add one.'}
        </p>
      )}
      <ul>
        {fabrics.map(fabric => (
          <FabricRow key={fabric.id} {...props} fabric={fabric} />
        ))}
      </ul>
    </section>
  );
}

/** Fabrics grouped by team, with kind, environment label, session state, attach and credentials. */
export function FabricList(props: IFabricListProps): JSX.Element {
  const { model } = props;
  if (model.error) {
    return <ErrorNote message={model.error} />;
  }
  const teams = new Map<string, IFabric[]>();
  for (const team of model.me?.teams ?? []) {
    teams.set(team.name, []);
  }
  for (const fabric of model.fabrics) {
    const team = fabric.team ?? 'built in';
    teams.set(team, [...(teams.get(team) ?? []), fabric]);
  }
  return (
    <div className="jp-ProphecySidebar-fabrics">
      {!model.notebook && (
        <p className="jp-ProphecySidebar-empty">Open a notebook to attach it to a fabric; its cells then run there.</p>
      )}
      {[...teams.entries()]
        .sort(([a], [b]) => (a === 'built in' ? -1 : b === 'built in' ? 1 : a.localeCompare(b)))
        .map(([team, fabrics]) => (
          <TeamSection key={team} {...props} team={team} fabrics={fabrics} />
        ))}
    </div>
  );
}
