/** Wires the plugins: the Prophecy sidebar, the notebook toolbar item and the prophecy:* commands. */
import { ILabShell, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { Dialog, ICommandPalette, InputDialog, showDialog } from '@jupyterlab/apputils';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { LabIcon } from '@jupyterlab/ui-components';

import { FabricsModel, GitModel, JobsModel, linksOf, SessionsModel } from './model';
import { ProphecySidebar } from './widgets/sidebar';
import { FabricToolbarExtension } from './widgets/toolbar';

const PLUGIN_ID = 'prophecy-jupyter:sidebar';

/** The commands, also in the palette under "Prophecy". */
export namespace CommandIDs {
  export const openSidebar = 'prophecy:open-sidebar';
  export const refresh = 'prophecy:refresh';
  export const attach = 'prophecy:attach';
  export const detach = 'prophecy:detach';
  export const cancelRuns = 'prophecy:cancel-runs';
  export const restartSession = 'prophecy:restart-session';
}

const prophecyIcon = new LabIcon({
  name: 'prophecy-jupyter:icon',
  svgstr:
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24"><path class="jp-icon3" fill="#616161" d="M12 2 3 7v10l9 5 9-5V7zm0 2.3L18.8 8 12 11.7 5.2 8zM5 9.7l6 3.3v6.6l-6-3.3zm8 9.9V13l6-3.3v6.6z"/></svg>'
});

/** Record the fabric in the notebook itself too, so it travels with the file and its pipeline. */
async function recordInNotebook(panel: NotebookPanel, ref: string | null): Promise<void> {
  const model = panel.context.model;
  const prophecy = { ...((model.getMetadata('prophecy') as Record<string, unknown> | undefined) ?? {}) };
  if (ref) {
    prophecy.fabric = ref;
  } else {
    delete prophecy.fabric;
  }
  model.setMetadata('prophecy', prophecy);
  await panel.context.save();
}

/** Tell the user, once, when the server half is missing or another version. */
async function checkServer(fabrics: FabricsModel): Promise<void> {
  await fabrics.refresh();
  const problem = fabrics.mismatch ?? (fabrics.me === null ? fabrics.error : null);
  if (problem) {
    await showDialog({
      title: 'Prophecy server extension',
      body: problem,
      buttons: [Dialog.okButton({ label: 'OK' })]
    });
  }
}

const sidebar: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'Fabrics, sessions and pipelines in the left sidebar, a fabric item in the notebook toolbar.',
  autoStart: true,
  requires: [ILabShell, INotebookTracker],
  optional: [ICommandPalette, ISettingRegistry],
  activate: (
    app: JupyterFrontEnd,
    shell: ILabShell,
    notebooks: INotebookTracker,
    palette: ICommandPalette | null,
    settings: ISettingRegistry | null
  ) => {
    const fabrics = new FabricsModel();
    const sessions = new SessionsModel();
    const git = new GitModel();
    const jobs = new JobsModel(git, fabrics);
    const { commands } = app;
    const current = (): NotebookPanel => {
      const panel = notebooks.currentWidget;
      if (!panel) {
        throw new Error('Open a notebook first.');
      }
      return panel;
    };
    /** A notebook's default fabric: its attachment, else its metadata's. */
    const defaultFabricOf = (panel: NotebookPanel): string | null => {
      const { path, model } = panel.context;
      return fabrics.defaultFabricOf(path, linksOf(path, model.getMetadata('prophecy')).fabric);
    };
    /**
     * Attach the current notebook (or detach it, with null); its session on the default fabric it
     * leaves is closed, as `%fabric` does (its sessions on other fabrics are kept).
     */
    const attachCurrent = async (ref: string | null) => {
      const panel = current();
      const path = panel.context.path;
      await fabrics.loadAttachment(path); // the kernel's %fabric attach may have changed it
      const left = defaultFabricOf(panel);
      const live = left && left !== ref ? sessions.sessionOn(path, left) : null;
      if (live) {
        await sessions.stop(live);
      }
      await fabrics.attach(path, ref);
      await recordInNotebook(panel, ref);
    };
    /** The current notebook's live session on its default fabric, if it has one. */
    const defaultSession = () => {
      const panel = notebooks.currentWidget;
      const fabric = panel && defaultFabricOf(panel);
      return panel && fabric ? sessions.sessionOn(panel.context.path, fabric) : null;
    };
    /** The current notebook's running statements, on every fabric. */
    const runningStatements = () => {
      const panel = notebooks.currentWidget;
      return panel ? sessions.liveSessionsOf(panel.context.path).flatMap(session => session.runs) : [];
    };

    const panel = new ProphecySidebar(fabrics, sessions, git, jobs, ref =>
      commands.execute(ref ? CommandIDs.attach : CommandIDs.detach, ref ? { fabric: ref } : {})
    );
    panel.title.icon = prophecyIcon;
    panel.title.caption = 'Prophecy';
    shell.add(panel, 'left', { rank: 400 });

    commands.addCommand(CommandIDs.openSidebar, {
      label: 'Open the Prophecy Sidebar',
      execute: () => shell.activateById(panel.id)
    });
    commands.addCommand(CommandIDs.refresh, {
      label: 'Refresh Fabrics and Sessions',
      execute: async () => {
        await fabrics.refresh();
        await Promise.all([sessions.tick(), git.refresh()]);
        await jobs.refresh();
      }
    });
    commands.addCommand(CommandIDs.attach, {
      label: args => (args.fabric ? `Attach Notebook to ${args.fabric}` : 'Attach Notebook to a Fabric…'),
      isEnabled: () => notebooks.currentWidget !== null,
      execute: async args => {
        let ref = args.fabric as string | undefined;
        if (!ref) {
          const choice = await InputDialog.getItem({
            title: 'Attach the notebook to a fabric',
            items: fabrics.fabrics.map(fabric => fabric.ref),
            current: fabrics.attached ?? undefined
          });
          if (!choice.button.accept || !choice.value) {
            return;
          }
          ref = choice.value;
        }
        await attachCurrent(ref);
      }
    });
    commands.addCommand(CommandIDs.detach, {
      label: 'Detach Notebook from its Fabric',
      isEnabled: () => fabrics.attached !== null,
      execute: () => attachCurrent(null)
    });
    commands.addCommand(CommandIDs.cancelRuns, {
      label: "Cancel the Notebook's Running Statements",
      caption: 'On every fabric the notebook has a session on',
      isEnabled: () => runningStatements().length > 0,
      execute: async () => {
        await Promise.all(runningStatements().map(run => sessions.cancel(run)));
      }
    });
    commands.addCommand(CommandIDs.restartSession, {
      label: "Restart the Notebook's Session",
      caption: "The session on the notebook's default fabric (restart the others in the sidebar)",
      isEnabled: () => defaultSession() !== null,
      execute: async () => {
        const session = defaultSession();
        if (session) {
          await sessions.restart(session);
        }
      }
    });
    for (const command of Object.values(CommandIDs)) {
      palette?.addItem({ command, category: 'Prophecy' });
    }

    app.docRegistry.addWidgetExtension(
      'Notebook',
      new FabricToolbarExtension(fabrics, sessions, () => void commands.execute(CommandIDs.openSidebar))
    );

    // Follow the current notebook, its renames (a new notebook is renamed after it opens) and its
    // metadata (the project and fabric it names, for the jobs).
    const linkJobs = (notebook: NotebookPanel | null) => {
      const model = notebook?.context.model;
      void jobs.setNotebook(notebook && model ? linksOf(notebook.context.path, model.getMetadata('prophecy')) : null);
    };
    const follow = (_: unknown, path: string) => {
      void fabrics.setNotebook(path);
      linkJobs(followed);
    };
    const metadataChanged = () => linkJobs(followed);
    let followed: NotebookPanel | null = null;
    notebooks.currentChanged.connect((_, notebook) => {
      followed?.context.pathChanged.disconnect(follow);
      followed?.context.model?.metadataChanged.disconnect(metadataChanged);
      followed = notebook;
      notebook?.context.pathChanged.connect(follow);
      void fabrics.setNotebook(notebook ? notebook.context.path : null);
      linkJobs(notebook);
      void notebook?.context.ready.then(() => {
        if (followed === notebook) {
          notebook.context.model.metadataChanged.connect(metadataChanged);
          linkJobs(notebook);
        }
      });
    });

    if (settings) {
      void settings.load(PLUGIN_ID).then(loaded => {
        const apply = () => {
          sessions.interval = loaded.get('refreshInterval').composite as number;
        };
        apply();
        loaded.changed.connect(apply);
      });
    }
    void app.restored.then(() => checkServer(fabrics));
  }
};

export default [sidebar];
