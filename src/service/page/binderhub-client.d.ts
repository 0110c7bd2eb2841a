// Types for the parts of @jupyterhub/binderhub-client 0.5 (plain JavaScript) the page uses.
declare module "@jupyterhub/binderhub-client/client.js" {
  export interface BinderEvent {
    phase?: string;
    message?: string;
    imageName?: string;
    [key: string]: unknown;
  }
  export class BinderRepository {
    constructor(providerSpec: string, buildEndpointUrl: URL, options?: { apiToken?: string; buildToken?: string; buildOnly?: boolean });
    fetch(): AsyncIterable<BinderEvent>;
    close(): void;
  }
}
