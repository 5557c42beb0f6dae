/** The sidebar's state, loaded through handler.ts and announced with signals. */
import { ISignal, Signal } from '@lumino/signaling';

import { ApiError, requestAPI } from './handler';
import { FRONTEND_VERSION, IAttachment, IConnectionReport, IFabric, IFabricList, IMe } from './tokens';

/** The message to show for a failed call, next to what failed. */
export function messageOf(error: unknown): string {
  if (error instanceof ApiError) {
    return error.message;
  }
  return 'The prophecy-jupyter server extension did not answer; is it installed and enabled?';
}

export class FabricsModel {
  private _fabrics: IFabric[] = [];
  private _error: string | null = null;
  private _mismatch: string | null = null;
  private _notebook: string | null = null;
  private _attached: string | null = null;
  private _reports = new Map<string, IConnectionReport | string>();
  private _changed = new Signal<this, void>(this);

  get fabrics(): IFabric[] {
    return this._fabrics;
  }

  /** Why the fabrics could not be loaded, if they could not. */
  get error(): string | null {
    return this._error;
  }

  /** Set when the server extension's version differs from this frontend's. */
  get mismatch(): string | null {
    return this._mismatch;
  }

  get notebook(): string | null {
    return this._notebook;
  }

  /** The current notebook's fabric. */
  get attached(): string | null {
    return this._attached;
  }

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /** The last connection test of a fabric: a report, or the error that stopped it. */
  report(ref: string): IConnectionReport | string | undefined {
    return this._reports.get(ref);
  }

  /** Check the server extension's version, then load the fabrics of the user's teams. */
  async refresh(): Promise<void> {
    try {
      const me = await requestAPI<IMe>('me');
      this._mismatch =
        me.version === FRONTEND_VERSION
          ? null
          : `The server extension is version ${me.version}; this sidebar is ${FRONTEND_VERSION}. ` +
            'Reinstall prophecy-jupyter and restart JupyterLab.';
      const answer = await requestAPI<IFabricList>('fabrics');
      this._fabrics = answer.fabrics;
      this._error = null;
    } catch (error) {
      this._error = messageOf(error);
    }
    this._changed.emit();
  }

  /** Follow the current notebook (null when none is open). */
  async setNotebook(path: string | null): Promise<void> {
    this._notebook = path;
    this._attached = null;
    if (path) {
      try {
        const answer = await requestAPI<IAttachment>(`attachments?notebook=${encodeURIComponent(path)}`);
        this._attached = answer.fabric;
      } catch (error) {
        this._error = messageOf(error);
      }
    }
    this._changed.emit();
  }

  /** Attach the current notebook to a fabric (or detach it with null). */
  async attach(ref: string | null): Promise<void> {
    if (!this._notebook) {
      return;
    }
    if (ref === null) {
      await requestAPI(`attachments?notebook=${encodeURIComponent(this._notebook)}`, { method: 'DELETE' });
      this._attached = null;
    } else {
      const answer = await requestAPI<IAttachment>('attachments', {
        method: 'PUT',
        body: JSON.stringify({ notebook: this._notebook, fabric: ref })
      });
      this._attached = answer.fabric;
    }
    this._changed.emit();
  }

  /** Store the user's own secret for a fabric (write-only: it is never read back). */
  async setCredential(fabric: IFabric, secret: string): Promise<void> {
    await requestAPI(`fabrics/${encodeURIComponent(fabric.id)}/credential`, {
      method: 'PUT',
      body: JSON.stringify({ secret })
    });
    await this.refresh();
  }

  /** Test a fabric's connection with the user's credential; the report is kept for the row. */
  async test(fabric: IFabric): Promise<void> {
    try {
      const report = await requestAPI<IConnectionReport>(`fabrics/${encodeURIComponent(fabric.id)}/test`, {
        method: 'POST'
      });
      this._reports.set(fabric.ref, report);
    } catch (error) {
      this._reports.set(fabric.ref, messageOf(error));
    }
    this._changed.emit();
  }
}
