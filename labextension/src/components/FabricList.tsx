import * as React from 'react';

import { IFabric } from '../tokens';

/** Fabrics grouped by team, with kind and environment label. */
export function FabricList(props: { fabrics: IFabric[]; error: string | null }): JSX.Element {
  if (props.error) {
    return (
      <div className="jp-ProphecySidebar-error" role="alert">
        {props.error}
      </div>
    );
  }
  if (props.fabrics.length === 0) {
    return <div className="jp-ProphecySidebar-empty">No fabrics yet.</div>;
  }
  const teams = new Map<string, IFabric[]>();
  for (const fabric of props.fabrics) {
    const team = fabric.team ?? 'built in';
    teams.set(team, [...(teams.get(team) ?? []), fabric]);
  }
  return (
    <div className="jp-ProphecySidebar-fabrics">
      {[...teams.entries()].map(([team, fabrics]) => (
        <section key={team} aria-label={`Team ${team}`}>
          <h3>{team}</h3>
          <ul>
            {fabrics.map(fabric => (
              <li key={fabric.id} className="jp-ProphecySidebar-fabric" title={fabric.endpoint}>
                <span className="jp-ProphecySidebar-name">{fabric.name}</span>
                <span className="jp-ProphecySidebar-kind">{fabric.kind}</span>
                <span className={`jp-ProphecySidebar-env jp-mod-${fabric.environment}`}>
                  {fabric.environment}
                </span>
              </li>
            ))}
          </ul>
        </section>
      ))}
    </div>
  );
}
