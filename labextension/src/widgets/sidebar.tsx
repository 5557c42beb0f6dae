import { ReactWidget, UseSignal } from '@jupyterlab/apputils';
import * as React from 'react';

import { FabricList } from '../components/FabricList';
import { FabricsModel } from '../model';

/** The prophecy-sidebar panel: fabrics by team (more sections follow). */
export class ProphecySidebar extends ReactWidget {
  constructor(readonly model: FabricsModel) {
    super();
    this.id = 'prophecy-sidebar';
    this.addClass('jp-ProphecySidebar');
  }

  render(): JSX.Element {
    return (
      <UseSignal signal={this.model.changed}>
        {() => (
          <div>
            <header className="jp-ProphecySidebar-header">
              <h2>Fabrics</h2>
              <button className="jp-Button" onClick={() => void this.model.refresh()} aria-label="Refresh fabrics">
                Refresh
              </button>
            </header>
            {this.model.mismatch && (
              <div className="jp-ProphecySidebar-error" role="alert">
                {this.model.mismatch}
              </div>
            )}
            <FabricList model={this.model} />
          </div>
        )}
      </UseSignal>
    );
  }
}
