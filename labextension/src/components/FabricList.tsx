import * as React from 'react';

import { FabricsModel, messageOf } from '../model';
import { IFabric } from '../tokens';

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
  return (
    <form className="jp-ProphecySidebar-credential" onSubmit={save}>
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
      {error && (
        <div className="jp-ProphecySidebar-error" role="alert">
          {error}
        </div>
      )}
    </form>
  );
}

function FabricRow(props: { model: FabricsModel; fabric: IFabric }): JSX.Element {
  const { model, fabric } = props;
  const [open, setOpen] = React.useState(false);
  const [error, setError] = React.useState<string | null>(null);
  const attached = model.attached === fabric.ref;
  const report = model.report(fabric.ref);
  const attach = async () => {
    try {
      await model.attach(attached ? null : fabric.ref);
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
        {model.notebook && (
          <button className="jp-Button jp-ProphecySidebar-attach" onClick={attach}>
            {attached ? 'Detach' : 'Attach'}
          </button>
        )}
      </div>
      {error && (
        <div className="jp-ProphecySidebar-error" role="alert">
          {error}
        </div>
      )}
      {open && (
        <div className="jp-ProphecySidebar-details">
          <div className="jp-ProphecySidebar-endpoint">{fabric.endpoint}</div>
          <CredentialForm model={model} fabric={fabric} />
          <button className="jp-Button" onClick={() => void model.test(fabric)}>
            Test connection
          </button>
          {typeof report === 'string' && (
            <div className="jp-ProphecySidebar-error" role="alert">
              {report}
            </div>
          )}
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

/** Fabrics grouped by team, with kind, environment label, attach and credentials. */
export function FabricList(props: { model: FabricsModel }): JSX.Element {
  const { model } = props;
  if (model.error) {
    return (
      <div className="jp-ProphecySidebar-error" role="alert">
        {model.error}
      </div>
    );
  }
  const teams = new Map<string, IFabric[]>();
  for (const fabric of model.fabrics) {
    const team = fabric.team ?? 'built in';
    teams.set(team, [...(teams.get(team) ?? []), fabric]);
  }
  return (
    <div className="jp-ProphecySidebar-fabrics">
      {!model.notebook && (
        <p className="jp-ProphecySidebar-empty">Open a notebook to attach it to a fabric; its cells then run there.</p>
      )}
      {[...teams.entries()].map(([team, fabrics]) => (
        <section key={team} aria-label={`Team ${team}`}>
          <h3>{team}</h3>
          <ul>
            {fabrics.map(fabric => (
              <FabricRow key={fabric.id} model={model} fabric={fabric} />
            ))}
          </ul>
        </section>
      ))}
    </div>
  );
}
