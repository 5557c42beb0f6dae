/** The sidebar's state, loaded through handler.ts and announced with signals. */
import { ISignal, Signal } from '@lumino/signaling';

import { ApiError, requestAPI } from './handler';
import { IFabric, IFabricList } from './tokens';

export class FabricsModel {
  private _fabrics: IFabric[] = [];
  private _error: string | null = null;
  private _changed = new Signal<this, void>(this);

  get fabrics(): IFabric[] {
    return this._fabrics;
  }

  get error(): string | null {
    return this._error;
  }

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /** Load the fabrics of the user's teams; a failure is kept as the error to show. */
  async refresh(): Promise<void> {
    try {
      const answer = await requestAPI<IFabricList>('fabrics');
      this._fabrics = answer.fabrics;
      this._error = null;
    } catch (error) {
      this._error =
        error instanceof ApiError
          ? error.message
          : 'The prophecy-jupyter server extension did not answer; is it installed and enabled?';
    }
    this._changed.emit();
  }
}
