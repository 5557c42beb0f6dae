/** What the plugins share: the API's shapes. */

export interface ICredentialState {
  needed: string | null;
  set: boolean | null;
  updated_at?: string | null;
}

export interface IFabric {
  id: string;
  ref: string;
  name: string;
  team: string | null;
  kind: string;
  environment: string;
  endpoint: string;
  credential: ICredentialState;
}

export interface IFabricList {
  fabrics: IFabric[];
}

export interface IConnectionReport {
  ok: boolean;
  stage: string | null;
  message: string;
  steps: string[];
}

export interface IMe {
  user: string;
  version: string;
  teams: { name: string; role: string }[];
}

export interface IAttachment {
  notebook: string;
  fabric: string | null;
}

/** The version of the server extension this frontend was built with. */
export const FRONTEND_VERSION = '0.1.0';
