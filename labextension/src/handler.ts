/**
 * The one place that calls the server: the prophecy-jupyter REST API under
 * /prophecy-jupyter/api/v1, with Jupyter's own settings (token, XSRF, base URL).
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

export const API_PATH = 'prophecy-jupyter/api/v1';

/** An error answered by the API: its message says what failed and, often, what to do. */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly field: string | null = null
  ) {
    super(message);
  }
}

/** Call the API; a non-2xx answer becomes an ApiError carrying the server's message. */
export async function requestAPI<T>(
  endPoint = '',
  init: RequestInit = {},
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<T> {
  const url = URLExt.join(settings.baseUrl, API_PATH, endPoint);
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    throw new ServerConnection.NetworkError(error as TypeError);
  }
  const text = await response.text();
  let body: any = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null; // not our API's answer (a proxy's or Jupyter's own page)
  }
  if (!response.ok) {
    if (!body?.message) {
      throw new ApiError(
        `The prophecy-jupyter server extension did not answer (HTTP ${response.status}); is it installed and enabled?`,
        response.status
      );
    }
    throw new ApiError(body.message, response.status, body.field ?? null);
  }
  return body as T;
}
