// A stand-in for a Mattermost server with the Apps plugin, for the two calls appsctl makes
// (appsctl.md §2 steps 10–11). It keeps the plugin's rules that a deployer can trip over: sysadmin
// bearer token, manifest validation, the merge of deploy types on update-app-listing, and install-app
// refusing an app or deploy type that is not listed. It records every request and can be told to fail.
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export const UPDATE_APP_LISTING_PATH = '/plugins/com.mattermost.apps/api/v1/update-app-listing';
export const INSTALL_APP_PATH = '/plugins/com.mattermost.apps/api/v1/install-app';

/** The plugin's KnownDeployTypes that have a JSON section (builtin has none). */
export const KNOWN_DEPLOY_TYPES = ['aws_lambda', 'http', 'open_faas', 'plugin'] as const;

export interface RecordedRequest {
  method: string;
  /** Path without the query string. */
  path: string;
  headers: IncomingHttpHeaders;
  /** The JSON body parsed, the raw text when it is not JSON, or undefined when empty. */
  body: unknown;
  rawBody: string;
  /** The status the fake answered with. */
  status: number;
}

export interface MattermostFake {
  /** The site URL (`MM_SERVICESETTINGS_SITEURL`). */
  url: string;
  requests: RecordedRequest[];
  /** The next request to `path` (e.g. INSTALL_APP_PATH) gets `status` and changes nothing; calls queue up. */
  failNext(path: string, status: number, body?: string): void;
  /** app_id → the listed manifest, as the plugin stored it (after the merge). */
  listed: Map<string, Record<string, unknown>>;
  /** app_id → the installed App. */
  installed: Map<string, Record<string, unknown>>;
  /** Forgets every request, listing, installation and queued failure: a fresh server, at the same URL. */
  reset(): void;
  close(): Promise<void>;
}

type Json = Record<string, unknown>;

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly id: string,
    message: string,
  ) {
    super(message);
  }
}

export async function startMattermostFake(options: { token: string }): Promise<MattermostFake> {
  const requests: RecordedRequest[] = [];
  const listed = new Map<string, Json>();
  const installed = new Map<string, Json>();
  const failures = new Map<string, Array<{ status: number; body: string | undefined }>>();
  let requestCount = 0;

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const rawBody = await readBody(req);
    const path = new URL(req.url ?? '/', 'http://fake').pathname;
    const record: RecordedRequest = {
      method: req.method ?? '',
      path,
      headers: req.headers,
      body: parseLoosely(rawBody),
      rawBody,
      status: 0,
    };
    requests.push(record);
    const requestId = `fake-request-${++requestCount}`;

    const send = (status: number, body: string) => {
      record.status = status;
      res.writeHead(status, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(body),
        'x-request-id': requestId,
      });
      res.end(body);
    };

    const injected = failures.get(path)?.shift();
    if (injected) {
      send(
        injected.status,
        injected.body ?? appError(injected.status, 'fake.injected_failure', 'failure injected by the test', requestId),
      );
      return;
    }

    try {
      const route = routes.get(path);
      if (!route) throw new HttpError(404, 'api.context.404.app_error', 'Sorry, we could not find the page.');
      if (req.method !== 'POST') throw new HttpError(405, 'api.context.405.app_error', `${req.method} is not allowed here`);
      authorize(req.headers.authorization, options.token);
      let body: unknown;
      try {
        body = JSON.parse(rawBody);
      } catch (error) {
        throw new HttpError(400, 'apps.invalid_input', `failed to unmarshal input: ${(error as Error).message}`);
      }
      if (!isObject(body)) throw new HttpError(400, 'apps.invalid_input', 'failed to unmarshal input: not a JSON object');
      send(200, JSON.stringify(route(body)));
    } catch (error) {
      const e =
        error instanceof HttpError ? error : new HttpError(500, 'fake.internal', String((error as Error)?.message ?? error));
      send(e.status, appError(e.status, e.id, e.message, requestId));
    }
  };

  const updateAppListing = (body: Json): Json => {
    const problems = validateManifest(body);
    if (problems.length > 0) {
      throw new HttpError(400, 'apps.invalid_input', `invalid app manifest in the request: ${problems.join('; ')}`);
    }
    const { Replace, add_deploys, remove_deploys, ...manifest } = body;
    const appId = manifest.app_id as string;
    if (Replace !== true) {
      // As the plugin's mergeDeployData: keep every type listed before; take a type from the request
      // only if it was listed before or is named in add_deploys; drop those in remove_deploys.
      const previous = listed.get(appId) ?? {};
      const add = stringArray(add_deploys);
      const remove = stringArray(remove_deploys);
      for (const type of KNOWN_DEPLOY_TYPES) {
        const fromRequest = manifest[type];
        delete manifest[type];
        if (remove.includes(type)) continue;
        if (previous[type] !== undefined) manifest[type] = previous[type];
        if (fromRequest !== undefined && (previous[type] !== undefined || add.includes(type))) {
          manifest[type] = fromRequest;
        }
      }
    }
    listed.set(appId, manifest);
    return manifest;
  };

  const installApp = (body: Json): Json => {
    const appId = body.app_id;
    if (typeof appId !== 'string' || appId === '') throw new HttpError(400, 'apps.invalid_input', 'app_id is empty');
    const manifest = listed.get(appId);
    if (!manifest) {
      throw new HttpError(404, 'apps.not_found', `failed to find manifest to install app: ${appId}: not found`);
    }
    const deployType = body.deploy_type;
    if (typeof deployType !== 'string' || manifest[deployType] === undefined) {
      throw new HttpError(400, 'apps.invalid_input', `app does not support ${String(deployType)} deployment`);
    }
    const app: Json = {
      ...manifest,
      deploy_type: deployType,
      disabled: false,
      granted_permissions: manifest.requested_permissions ?? [],
      granted_locations: manifest.requested_locations ?? [],
      remote_oauth2: body.remote_oauth2 ?? {},
    };
    installed.set(appId, app);
    return app;
  };

  const routes = new Map<string, (body: Json) => Json>([
    [UPDATE_APP_LISTING_PATH, updateAppListing],
    [INSTALL_APP_PATH, installApp],
  ]);

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      res.destroy(error instanceof Error ? error : new Error(String(error)));
    });
  });
  server.listen(0, '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    listed,
    installed,
    reset() {
      requests.length = 0;
      listed.clear();
      installed.clear();
      failures.clear();
    },
    failNext(path, status, body) {
      const queue = failures.get(path) ?? [];
      queue.push({ status, body });
      failures.set(path, queue);
    },
    async close() {
      // Keep-alive sockets from the client's pool would otherwise hold close() open.
      server.closeAllConnections();
      await new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
    },
  };
}

/**
 * Mattermost reads the token as the server does (ParseAuthTokenFromRequest): the scheme is matched
 * case-insensitively, so `BEARER`, `Bearer` and `bearer` all work, as does the OAuth `token` scheme.
 */
function authorize(header: string | undefined, token: string): void {
  let presented: string | undefined;
  if (header !== undefined) {
    if (header.length > 6 && header.slice(0, 6).toUpperCase() === 'BEARER') presented = header.slice(7);
    else if (header.length > 5 && header.slice(0, 5).toLowerCase() === 'token') presented = header.slice(6);
  }
  if (presented === undefined || presented === '') {
    throw new HttpError(401, 'api.context.session_expired.app_error', 'Invalid or expired session, please login again.');
  }
  if (presented !== token) {
    throw new HttpError(403, 'api.context.permissions.app_error', 'You do not have the appropriate permissions.');
  }
}

const ID_CHARS = /^[\p{L}\p{N}._-]*$/u;

/** The manifest rules of appsctl.md §5 a deployer can break; all problems, not the first. */
export function validateManifest(m: Json): string[] {
  const problems: string[] = [];
  const appId = m.app_id;
  if (typeof appId !== 'string' || appId === '') problems.push('app_id is empty');
  else {
    const bytes = Buffer.byteLength(appId);
    if (bytes < 3 || bytes > 32) problems.push(`app_id must be 3-32 bytes long, got ${bytes}`);
    if (!ID_CHARS.test(appId)) problems.push(`app_id ${JSON.stringify(appId)} has invalid characters`);
  }
  const version = m.version;
  if (version !== undefined && (typeof version !== 'string' || version.length > 10 || !ID_CHARS.test(version))) {
    problems.push(`version ${JSON.stringify(version)} is invalid`);
  }
  const homepage = m.homepage_url;
  if (typeof homepage !== 'string' || homepage === '') problems.push('homepage_url is empty');
  else if (!isHttpUrl(homepage)) problems.push(`homepage_url ${JSON.stringify(homepage)} is not an http(s) URL`);
  if (typeof m.display_name !== 'string' || m.display_name === '') problems.push('display_name is empty');
  if (!KNOWN_DEPLOY_TYPES.some((type) => m[type] !== undefined && m[type] !== null)) {
    problems.push('manifest has no deployment information (http, aws_lambda, open_faas, etc.)');
  }
  if (m.aws_lambda !== undefined && m.aws_lambda !== null) {
    const functions = isObject(m.aws_lambda) ? m.aws_lambda.functions : undefined;
    if (!Array.isArray(functions) || functions.length === 0) problems.push('aws_lambda must have at least one function');
    else {
      functions.forEach((f: unknown, i) => {
        for (const field of ['path', 'name', 'handler', 'runtime']) {
          if (!isObject(f) || typeof f[field] !== 'string' || f[field] === '') {
            problems.push(`aws_lambda.functions[${i}].${field} is empty`);
          }
        }
      });
    }
  }
  return problems;
}

function isHttpUrl(text: string): boolean {
  try {
    const url = new URL(text);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.host !== '';
  } catch {
    return false;
  }
}

function appError(status: number, id: string, message: string, requestId: string): string {
  return JSON.stringify({ id, message, detailed_error: '', request_id: requestId, status_code: status });
}

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function stringArray(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

function parseLoosely(text: string): unknown {
  if (text === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
