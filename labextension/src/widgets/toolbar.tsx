import { ReactWidget, UseSignal } from '@jupyterlab/apputils';
import { DocumentRegistry } from '@jupyterlab/docregistry';
import { INotebookModel, NotebookPanel } from '@jupyterlab/notebook';
import { IDisposable } from '@lumino/disposable';
import * as React from 'react';

import { FabricsModel, INotebookFabric, linksOf, notebookFabrics, recordFabricsUsed, SessionsModel } from '../model';
import { ISession } from '../tokens';

/** A session's state with how many of its statements run ('no session' without one). */
function stateOf(session: ISession | null): string {
  if (!session) {
    return 'no session';
  }
  const running = session.runs.filter(run => !['finished', 'failed', 'cancelled'].includes(run.state)).length;
  return running ? `${session.state}, ${running} running` : session.state;
}

/**
 * One fabric of the notebook in the toolbar item, by its name (its team is in the item's title, to
 * keep the toolbar short): its session's state, and whether it is the default.
 */
function FabricChip(props: { entry: INotebookFabric; name: string; markDefault: boolean }): JSX.Element {
  const { entry, name, markDefault } = props;
  return (
    <span className="jp-ProphecyToolbarItem-chip">
      <span className="jp-ProphecyToolbarItem-dot" data-state={entry.session?.state ?? 'none'} />
      <span className="jp-ToolbarButtonComponent-label">{`${name} · ${stateOf(entry.session)}`}</span>
      {markDefault && entry.isDefault && <span className="jp-ProphecyToolbarItem-default">default</span>}
    </span>
  );
}

/**
 * The notebook toolbar's fabric item: the notebook's default fabric and every other fabric it has
 * a live session on (`%%spark -f`), each with its session's state; a click opens the sidebar.
 */
export class FabricStatusItem extends ReactWidget {
  constructor(
    private readonly context: DocumentRegistry.IContext<INotebookModel>,
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
            {() => (
              <UseSignal signal={this.context.model.metadataChanged}>{() => this.renderFabrics()}</UseSignal>
            )}
          </UseSignal>
        )}
      </UseSignal>
    );
  }

  /** A fabric's name as the sidebar lists it (its reference when the fabric is not loaded). */
  private nameOf(ref: string): string {
    return this.fabrics.fabrics.find(fabric => fabric.ref === ref)?.name ?? ref;
  }

  private renderFabrics(): JSX.Element {
    const path = this.context.path;
    const recorded = linksOf(path, this.context.model.getMetadata('prophecy')).fabric;
    const defaultFabric = this.fabrics.defaultFabricOf(path, recorded);
    const entries = notebookFabrics(this.sessions.live, path, defaultFabric);
    const several = entries.length > 1;
    const unattached = defaultFabric ? '' : ' jp-mod-unattached';
    const spoken = entries.map(
      entry => `${entry.fabric}${several && entry.isDefault ? ' (default)' : ''} · ${stateOf(entry.session)}`
    );
    const described = entries.map(
      entry => `${entry.isDefault ? 'Default fabric' : 'Fabric'} ${entry.fabric}, session ${stateOf(entry.session)}`
    );
    return (
      <button
        className={`jp-ToolbarButtonComponent jp-ProphecyToolbarItem-button${unattached}`}
        onClick={this.openSidebar}
        title={
          entries.length
            ? `${described.join('; ')}: open the Prophecy sidebar`
            : 'Attach this notebook to a fabric in the Prophecy sidebar'
        }
        aria-label={entries.length ? `${several ? 'Fabrics' : 'Fabric'}: ${spoken.join('; ')}` : 'Fabric: No fabric'}
      >
        {entries.length ? (
          entries.map(entry => (
            <FabricChip key={entry.fabric} entry={entry} name={this.nameOf(entry.fabric)} markDefault={several} />
          ))
        ) : (
          <>
            <span className="jp-ProphecyToolbarItem-dot" data-state="none" />
            <span className="jp-ToolbarButtonComponent-label">No fabric</span>
          </>
        )}
      </button>
    );
  }
}

/**
 * Keeps `metadata.prophecy.fabrics` listing the fabrics the notebook's sessions use, as they
 * appear, once the notebook's file is loaded (the notebook is saved with it as any change).
 */
function keepFabricsRecorded(context: DocumentRegistry.IContext<INotebookModel>, sessions: SessionsModel): void {
  const record = () => {
    recordFabricsUsed(context.model, context.path, sessions.sessions);
  };
  void context.ready.then(() => {
    if (context.isDisposed) {
      return;
    }
    record();
    sessions.changed.connect(record);
    context.disposed.connect(() => sessions.changed.disconnect(record));
  });
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

/** Puts a FabricStatusItem in every notebook's toolbar, keeps its session's path in step and its fabrics recorded. */
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
    keepFabricsRecorded(context, this.sessions);
    return item;
  }
}
