import { ReactWidget, UseSignal } from '@jupyterlab/apputils';
import { Message } from '@lumino/messaging';
import * as React from 'react';

import { FabricList } from '../components/FabricList';
import { GitSection } from '../components/GitSection';
import { JobsSection } from '../components/JobsSection';
import { SessionList } from '../components/SessionList';
import { FabricsModel, GitModel, JobsModel, SessionsModel } from '../model';
import { ErrorNote } from '../components/ErrorNote';

/** A titled section of the sidebar, with a refresh button when it can be refreshed. */
function Section(props: { title: string; onRefresh?: () => void; children: React.ReactNode }): JSX.Element {
  const heading = `prophecy-${props.title.toLowerCase()}-heading`;
  return (
    <section aria-labelledby={heading}>
      <header className="jp-ProphecySidebar-header">
        <h2 id={heading}>{props.title}</h2>
        {props.onRefresh && (
          <button className="jp-Button" onClick={props.onRefresh} aria-label={`Refresh ${props.title.toLowerCase()}`}>
            Refresh
          </button>
        )}
      </header>
      {props.children}
    </section>
  );
}

/** The prophecy-sidebar panel: fabrics by team, the user's sessions, the team's Git project, its jobs. */
export class ProphecySidebar extends ReactWidget {
  constructor(
    readonly fabrics: FabricsModel,
    readonly sessions: SessionsModel,
    readonly git: GitModel,
    readonly jobs: JobsModel,
    private readonly onAttach: (ref: string | null) => Promise<unknown>
  ) {
    super();
    this.id = 'prophecy-sidebar';
    this.addClass('jp-ProphecySidebar');
  }

  /** A notebook's default fabric: its attachment, else (for the current notebook) its metadata's. */
  private defaultFabricOf(path: string): string | null {
    const links = this.jobs.notebook;
    return this.fabrics.defaultFabricOf(path, links?.path === path ? links.fabric : null);
  }

  /** The Git section is loaded when the sidebar is shown: its status may clone the project. */
  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    void this.git.refresh();
  }

  render(): JSX.Element {
    return (
      <>
        <UseSignal signal={this.fabrics.changed}>
          {() => (
            <Section title="Fabrics" onRefresh={() => void this.fabrics.refresh()}>
              <ErrorNote message={this.fabrics.mismatch} />
              <UseSignal signal={this.sessions.changed}>
                {() => (
                  <FabricList
                    model={this.fabrics}
                    onAttach={this.onAttach}
                    sessions={this.fabrics.notebook ? this.sessions.liveSessionsOf(this.fabrics.notebook) : []}
                  />
                )}
              </UseSignal>
            </Section>
          )}
        </UseSignal>
        <UseSignal signal={this.sessions.changed}>
          {() => (
            <Section title="Sessions">
              <UseSignal signal={this.fabrics.changed}>
                {() => (
                  <UseSignal signal={this.jobs.changed}>
                    {() => (
                      <SessionList
                        model={this.sessions}
                        notebook={this.fabrics.notebook}
                        defaultFabricOf={path => this.defaultFabricOf(path)}
                      />
                    )}
                  </UseSignal>
                )}
              </UseSignal>
            </Section>
          )}
        </UseSignal>
        <UseSignal signal={this.git.changed}>
          {() => (
            <Section title="Git" onRefresh={() => void this.git.refresh()}>
              <UseSignal signal={this.fabrics.changed}>
                {() => <GitSection model={this.git} notebook={this.fabrics.notebook} />}
              </UseSignal>
            </Section>
          )}
        </UseSignal>
        <UseSignal signal={this.jobs.changed}>
          {() => (
            <Section title="Jobs" onRefresh={() => void this.jobs.refresh()}>
              <UseSignal signal={this.fabrics.changed}>{() => <JobsSection model={this.jobs} />}</UseSignal>
            </Section>
          )}
        </UseSignal>
      </>
    );
  }
}
