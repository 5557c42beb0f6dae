import { ReactWidget, UseSignal } from '@jupyterlab/apputils';
import * as React from 'react';

import { FabricList } from '../components/FabricList';
import { GitSection } from '../components/GitSection';
import { SessionList } from '../components/SessionList';
import { FabricsModel, GitModel, SessionsModel } from '../model';

/** The prophecy-sidebar panel: fabrics by team, the user's sessions, the team's Git project. */
export class ProphecySidebar extends ReactWidget {
  constructor(
    readonly fabrics: FabricsModel,
    readonly sessions: SessionsModel,
    readonly git: GitModel,
    private readonly onAttach: (ref: string | null) => Promise<unknown>
  ) {
    super();
    this.id = 'prophecy-sidebar';
    this.addClass('jp-ProphecySidebar');
  }

  render(): JSX.Element {
    return (
      <>
        <UseSignal signal={this.fabrics.changed}>
          {() => (
            <section aria-labelledby="prophecy-fabrics-heading">
              <header className="jp-ProphecySidebar-header">
                <h2 id="prophecy-fabrics-heading">Fabrics</h2>
                <button className="jp-Button" onClick={() => void this.fabrics.refresh()} aria-label="Refresh fabrics">
                  Refresh
                </button>
              </header>
              {this.fabrics.mismatch && (
                <div className="jp-ProphecySidebar-error" role="alert">
                  {this.fabrics.mismatch}
                </div>
              )}
              <UseSignal signal={this.sessions.changed}>
                {() => (
                  <FabricList
                    model={this.fabrics}
                    onAttach={this.onAttach}
                    session={this.fabrics.notebook ? this.sessions.sessionOf(this.fabrics.notebook) : null}
                  />
                )}
              </UseSignal>
            </section>
          )}
        </UseSignal>
        <UseSignal signal={this.sessions.changed}>
          {() => (
            <section aria-labelledby="prophecy-sessions-heading">
              <header className="jp-ProphecySidebar-header">
                <h2 id="prophecy-sessions-heading">Sessions</h2>
              </header>
              <SessionList model={this.sessions} />
            </section>
          )}
        </UseSignal>
        <UseSignal signal={this.git.changed}>
          {() => (
            <section aria-labelledby="prophecy-git-heading">
              <header className="jp-ProphecySidebar-header">
                <h2 id="prophecy-git-heading">Git</h2>
                <button className="jp-Button" onClick={() => void this.git.refresh()} aria-label="Refresh Git projects">
                  Refresh
                </button>
              </header>
              <UseSignal signal={this.fabrics.changed}>
                {() => <GitSection model={this.git} notebook={this.fabrics.notebook} />}
              </UseSignal>
            </section>
          )}
        </UseSignal>
      </>
    );
  }
}
