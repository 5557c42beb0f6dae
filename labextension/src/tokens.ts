/** What the plugins share: the API's shapes. */

export interface IFabric {
  id: string;
  ref: string;
  name: string;
  team: string | null;
  kind: string;
  environment: string;
  endpoint: string;
  credential: { needed: string | null; set: boolean | null } | null;
}

export interface IFabricList {
  fabrics: IFabric[];
}
