import { ReactWidget, UseSignal } from '@jupyterlab/apputils';
import { DocumentRegistry } from '@jupyterlab/docregistry';
import { INotebookModel, NotebookPanel } from '@jupyterlab/notebook';
import { IDisposable } from '@lumino/disposable';
import * as React from 'react';

import { FabricsModel, SessionsModel } from '../model';

/** The notebook toolbar's fabric item: the attached fabric and its session's state; a click opens the sidebar. */
export class FabricStatusItem extends ReactWidget {
  constructor(
    private readonly context: DocumentRegistry.Context,
    private readonly fabrics: FabricsModel,
    private readonly sessions: SessionsModel,
    private readonly openSidebar: () => void
  ) {
    super();
    this.addClass('jp-ProphecyToolbarItem');
    void fabrics.loadAttachment(context.path);
    context.pathChanged.connect((_, path) => void fabrics.loadAttachment(path));
  }

  render(): JSX.Element {
    return (
      <UseSignal signal={this.fabrics.changed}>
        {() => (
          <UseSignal signal={this.sessions.changed}>
            {() => {
              const path = this.context.path;
              const live = this.sessions.sessionOf(path);
              const fabric = this.fabrics.attachmentOf(path) ?? live?.fabric ?? null;
              const session = live?.fabric === fabric ? live : null;
              const running = session?.runs.filter(run => !['finished', 'failed', 'cancelled'].includes(run.state));
              const state = session ? (running?.length ? `${session.state}, ${running.length} running` : session.state) : 'no session';
              const label = fabric ? `${fabric} · ${state}` : 'No fabric';
              return (
                <button
                  className={`jp-ToolbarButtonComponent jp-ProphecyToolbarItem-button${fabric ? '' : ' jp-mod-unattached'}`}
                  onClick={this.openSidebar}
                  title={fabric ? `Fabric ${fabric}, session ${state}: open the Prophecy sidebar` : 'Attach this notebook to a fabric in the Prophecy sidebar'}
                  aria-label={`Fabric: ${label}`}
                >
                  <span className="jp-ProphecyToolbarItem-dot" data-state={session?.state ?? 'none'} />
                  <span className="jp-ToolbarButtonComponent-label">{label}</span>
                </button>
              );
            }}
          </UseSignal>
        )}
      </UseSignal>
    );
  }
}

/**
 * Keeps the notebook's Jupyter session at the notebook's path. The kernel finds its notebook (and
 * so its fabric) through that session, whose path misses a rename made while the kernel starts.
 */
function keepSessionPathInStep(panel: NotebookPanel, context: DocumentRegistry.IContext<INotebookModel>): void {
  const align = () => {
    const session = panel.sessionContext.session;
    if (session && session.path !== context.localPath) {
      void session.setPath(context.localPath);
    }
  };
  panel.sessionContext.sessionChanged.connect(align);
  context.pathChanged.connect(align);
}

/** Puts a FabricStatusItem in every notebook's toolbar, and keeps its session's path in step. */
export class FabricToolbarExtension implements DocumentRegistry.IWidgetExtension<NotebookPanel, INotebookModel> {
  constructor(
    private readonly fabrics: FabricsModel,
    private readonly sessions: SessionsModel,
    private readonly openSidebar: () => void
  ) {}

  createNew(panel: NotebookPanel, context: DocumentRegistry.IContext<INotebookModel>): IDisposable {
    const item = new FabricStatusItem(context, this.fabrics, this.sessions, this.openSidebar);
    panel.toolbar.insertItem(10, 'prophecyFabric', item);
    keepSessionPathInStep(panel, context);
    return item;
  }
}
