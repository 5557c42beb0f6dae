/** Wires the plugins: the Prophecy sidebar. */
import { ILabShell, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { LabIcon } from '@jupyterlab/ui-components';

import { FabricsModel } from './model';
import { ProphecySidebar } from './widgets/sidebar';

const prophecyIcon = new LabIcon({
  name: 'prophecy-jupyter:icon',
  svgstr:
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24"><path class="jp-icon3" fill="#616161" d="M12 2 3 7v10l9 5 9-5V7zm0 2.3L18.8 8 12 11.7 5.2 8zM5 9.7l6 3.3v6.6l-6-3.3zm8 9.9V13l6-3.3v6.6z"/></svg>'
});

const sidebar: JupyterFrontEndPlugin<void> = {
  id: 'prophecy-jupyter:sidebar',
  description: 'Fabrics, sessions and pipelines in the left sidebar.',
  autoStart: true,
  requires: [ILabShell, INotebookTracker],
  activate: (app: JupyterFrontEnd, shell: ILabShell, notebooks: INotebookTracker) => {
    const model = new FabricsModel();
    const panel = new ProphecySidebar(model);
    panel.title.icon = prophecyIcon;
    panel.title.caption = 'Prophecy';
    shell.add(panel, 'left', { rank: 400 });
    void model.refresh();
    // Follow the current notebook, and its renames (a new notebook is renamed after it opens).
    const follow = (_: unknown, path: string) => void model.setNotebook(path);
    let followed: NotebookPanel | null = null;
    notebooks.currentChanged.connect((_, current) => {
      followed?.context.pathChanged.disconnect(follow);
      followed = current;
      current?.context.pathChanged.connect(follow);
      void model.setNotebook(current ? current.context.path : null);
    });
  }
};

export default [sidebar];
