import { MattermostError } from '../core/errors';
import type { MattermostPort } from '../core/ports';
import type { MattermostTarget } from '../core/config';

const API = '/plugins/com.mattermost.apps/api/v1';

/**
 * The apps plugin's REST calls (appsctl.md §2 steps 10–11). `Authorization: BEARER <token>` as model.HeaderBearer
 * writes it. Errors carry the server's own message and status, never the token.
 */
export class HttpMattermostPort implements MattermostPort {
  constructor(
    private readonly target: MattermostTarget,
    private readonly timeoutMs = 30_000,
  ) {}

  async updateAppListing(manifest: Record<string, unknown>, opts: { replace: boolean; addDeploys: string[] }): Promise<unknown> {
    // Go marshals the embedded Manifest's fields first, then Replace (no json tag), then add_deploys.
    const body = { ...manifest, Replace: opts.replace, ...(opts.addDeploys.length > 0 ? { add_deploys: opts.addDeploys } : {}) };
    return this.post('update-app-listing', body, 'failed to add local manifest to Mattermost');
  }

  async installApp(appId: string, deployType: string): Promise<unknown> {
    return this.post('install-app', { app_id: appId, deploy_type: deployType, remote_oauth2: {} }, 'failed to install the app to Mattermost');
  }

  private async post(path: string, body: unknown, failure: string): Promise<unknown> {
    const url = `${this.target.siteUrl}${API}/${path}`;
    let res: Response;
    try {
      res = await fetch(url, {
        method: 'POST',
        headers: { Authorization: `BEARER ${this.target.token}`, 'Content-Type': 'application/json', Accept: 'application/json' },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      throw new MattermostError(`${failure}: cannot reach ${this.target.siteUrl}: ${(err as Error).message}`, { cause: err });
    }
    const text = await res.text();
    if (!res.ok) {
      let message = text.slice(0, 500);
      try {
        const parsed = JSON.parse(text) as { message?: string; detailed_error?: string };
        message = [parsed.message, parsed.detailed_error].filter(Boolean).join(': ') || message;
      } catch {
        // not JSON: keep the text
      }
      throw new MattermostError(`${failure}: ${res.status} ${message}`.trim());
    }
    try {
      return text ? JSON.parse(text) : undefined;
    } catch {
      return text;
    }
  }
}
