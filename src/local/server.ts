import { randomUUID } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { APIGatewayProxyEventV2, APIGatewayProxyResultV2, Context } from 'aws-lambda';
import { handler as appStatus } from '../handlers/app-status';
import { handler as appsList } from '../handlers/apps-list';
import { handler as appRollback } from '../handlers/app-rollback';
import { handler as appUndeploy } from '../handlers/app-undeploy';
import { handler as bundles } from '../handlers/bundles';
import { handler as deploy } from '../handlers/deploy';
import { handler as deploymentStatus } from '../handlers/deployment-status';
import { handler as init } from '../handlers/init';
import { handler as provisionData } from '../handlers/provision-data';

/**
 * The local stack's stand-in for API Gateway (design.md §3): the same six routes, served by the same Lambda handlers,
 * each request turned into an HTTP API v2 event. Everything the API does lives in the handlers; this file only
 * translates, so what works here works behind API Gateway.
 */
type HttpLambda = (event: APIGatewayProxyEventV2, context: Context) => Promise<APIGatewayProxyResultV2>;

interface Route {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** As API Gateway writes it: `/deployments/{id}`. */
  path: string;
  handler: HttpLambda;
  /** The Lambda function the route maps to in serverless.yml; shows up in the context only. */
  functionName: string;
}

export const ROUTES: readonly Route[] = [
  { method: 'POST', path: '/init', handler: init as HttpLambda, functionName: 'init' },
  { method: 'POST', path: '/bundles', handler: bundles as HttpLambda, functionName: 'bundles' },
  { method: 'POST', path: '/deploy', handler: deploy as HttpLambda, functionName: 'deploy' },
  { method: 'GET', path: '/deployments/{id}', handler: deploymentStatus as HttpLambda, functionName: 'deployment-status' },
  { method: 'POST', path: '/provision-data', handler: provisionData as HttpLambda, functionName: 'provision-data' },
  { method: 'GET', path: '/apps/{appId}', handler: appStatus as HttpLambda, functionName: 'app-status' },
  { method: 'GET', path: '/apps', handler: appsList as HttpLambda, functionName: 'apps-list' },
  { method: 'POST', path: '/apps/{appId}/rollback', handler: appRollback as HttpLambda, functionName: 'app-rollback' },
  { method: 'DELETE', path: '/apps/{appId}/versions/{version}', handler: appUndeploy as HttpLambda, functionName: 'app-undeploy' },
];

/** The API takes small JSON bodies only (bundles go to S3 directly); API Gateway's own cap is 10 MB. */
export const MAX_REQUEST_BODY_BYTES = 1024 * 1024;

/** API Gateway gives up on an integration after 29 s; handlers that look at the clock see the same budget. */
const INTEGRATION_TIMEOUT_MS = 29_000;

export interface ApiServer {
  /** `http://127.0.0.1:PORT`, no trailing slash. */
  url: string;
  port: number;
  server: Server;
  close(): Promise<void>;
}

export interface ApiServerOptions {
  /** 0 picks a free port. */
  port: number;
  host?: string;
}

interface Match {
  route: Route;
  pathParameters: Record<string, string>;
}

type Resolution = { kind: 'match'; match: Match } | { kind: 'method'; allowed: string[] } | { kind: 'none' };

/** Exact segment match; a `{name}` segment takes one non-empty segment, as an HTTP API route without `+` does. */
export function resolveRoute(method: string, path: string): Resolution {
  const segments = path.split('/');
  const allowed: string[] = [];
  for (const route of ROUTES) {
    const pattern = route.path.split('/');
    if (pattern.length !== segments.length) continue;
    const params: Record<string, string> = {};
    let ok = true;
    for (let i = 0; i < pattern.length && ok; i++) {
      const p = pattern[i]!;
      const s = segments[i]!;
      const param = /^\{(\w+)\}$/.exec(p);
      if (param) {
        if (s === '') ok = false;
        else {
          try {
            params[param[1]!] = decodeURIComponent(s);
          } catch {
            ok = false;
          }
        }
      } else if (p !== s) ok = false;
    }
    if (!ok) continue;
    if (route.method === method) return { kind: 'match', match: { route, pathParameters: params } };
    allowed.push(route.method);
  }
  return allowed.length > 0 ? { kind: 'method', allowed } : { kind: 'none' };
}

function errorJson(code: string, message: string): string {
  return JSON.stringify({ error: { code, message, details: [] } });
}

function send(res: ServerResponse, status: number, headers: Record<string, string>, body: string | Buffer): void {
  res.writeHead(status, { ...headers, 'content-length': String(Buffer.byteLength(body)) });
  res.end(body);
}

class BodyTooLarge extends Error {}

/** How much of a refused body is read and thrown away before the connection is simply cut. */
const DISCARD_LIMIT_BYTES = 16 * MAX_REQUEST_BODY_BYTES;

/**
 * Reads the rest of a body that will not be used, so that the answer can be read: closing a socket with unread input
 * makes TCP reset the connection, and the client then sees an error instead of the 4xx. A body past DISCARD_LIMIT_BYTES
 * is not worth it: the socket is closed after the answer.
 */
async function discardBody(req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (req.complete) return;
  let size = 0;
  await new Promise<void>((resolve) => {
    const stop = () => {
      req.off('data', onData);
      res.shouldKeepAlive = false;
      resolve();
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > DISCARD_LIMIT_BYTES) stop();
    };
    req.on('data', onData);
    req.once('end', resolve);
    req.once('error', stop);
    req.resume();
    req.once('close', resolve);
  });
}

/**
 * The body, or BodyTooLarge. Read with listeners rather than `for await`: leaving that loop early destroys the request,
 * and with it the socket the 413 has to go out on.
 */
async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) throw new BodyTooLarge();
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      chunks.push(chunk);
      // A chunked body has no Content-Length to refuse up front: refuse it as soon as it is over.
      if (size > limit) {
        req.off('data', onData);
        req.off('end', onEnd);
        req.pause();
        reject(new BodyTooLarge());
      }
    };
    const onEnd = () => resolve(Buffer.concat(chunks));
    req.on('data', onData);
    req.once('end', onEnd);
    req.once('error', reject);
  });
}

/** API Gateway v2 lower-cases header names and joins repeated headers with commas; cookies travel apart. */
function eventHeaders(headers: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || name === 'cookie') continue;
    out[name.toLowerCase()] = Array.isArray(value) ? value.join(',') : value;
  }
  return out;
}

function queryParameters(search: URLSearchParams): Record<string, string> | undefined {
  const out: Record<string, string> = {};
  for (const key of new Set(search.keys())) out[key] = search.getAll(key).join(',');
  return Object.keys(out).length > 0 ? out : undefined;
}

export function toEvent(req: IncomingMessage, url: URL, match: Match, body: Buffer): APIGatewayProxyEventV2 {
  const now = new Date();
  const headers = eventHeaders(req.headers);
  const routeKey = `${match.route.method} ${match.route.path}`;
  const rawQueryString = url.search.startsWith('?') ? url.search.slice(1) : url.search;
  const cookies = req.headers.cookie?.split(';').map((c) => c.trim()).filter(Boolean);
  const query = queryParameters(url.searchParams);
  const host = headers.host ?? '127.0.0.1';
  return {
    version: '2.0',
    routeKey,
    rawPath: url.pathname,
    rawQueryString,
    ...(cookies && cookies.length > 0 ? { cookies } : {}),
    headers,
    ...(query ? { queryStringParameters: query } : {}),
    ...(Object.keys(match.pathParameters).length > 0 ? { pathParameters: match.pathParameters } : {}),
    requestContext: {
      accountId: 'local',
      apiId: 'local',
      domainName: host,
      domainPrefix: host.split('.')[0] ?? host,
      http: {
        method: match.route.method,
        path: url.pathname,
        protocol: `HTTP/${req.httpVersion}`,
        sourceIp: req.socket.remoteAddress ?? '127.0.0.1',
        userAgent: headers['user-agent'] ?? '',
      },
      requestId: randomUUID(),
      routeKey,
      stage: '$default',
      time: now.toISOString(),
      timeEpoch: now.getTime(),
    },
    ...(body.length > 0 ? { body: body.toString('utf8') } : {}),
    isBase64Encoded: false,
  };
}

export function lambdaContext(functionName: string): Context {
  const deadline = Date.now() + INTEGRATION_TIMEOUT_MS;
  const name = `apps-deployer-local-${functionName}`;
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName: name,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:local:000000000000:function:${name}`,
    memoryLimitInMB: '1024',
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/${name}`,
    logStreamName: 'local',
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

/** API Gateway's rules for a v2 result: a bare string or object is a 200 JSON body, a structured one is taken as is. */
function writeResult(res: ServerResponse, result: APIGatewayProxyResultV2): void {
  if (typeof result === 'string') return send(res, 200, { 'content-type': 'application/json' }, result);
  if (result === null || typeof result !== 'object' || !('statusCode' in result || 'body' in result)) {
    return send(res, 200, { 'content-type': 'application/json' }, JSON.stringify(result));
  }
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(result.headers ?? {})) headers[k.toLowerCase()] = String(v);
  if (result.cookies?.length) res.setHeader('set-cookie', result.cookies);
  const body = result.body === undefined ? '' : result.isBase64Encoded ? Buffer.from(result.body, 'base64') : result.body;
  send(res, result.statusCode ?? 200, headers, body);
}

export async function handleRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
  // Appended, not resolved against a base: `//host/init` must stay a path (a 404), not become a URL of another host.
  const url = new URL(`http://127.0.0.1${req.url ?? '/'}`);
  const resolved = resolveRoute(req.method ?? 'GET', url.pathname);
  if (resolved.kind === 'none') {
    await discardBody(req, res);
    return send(res, 404, { 'content-type': 'application/json' }, errorJson('NOT_FOUND', `no route for ${req.method} ${url.pathname}`));
  }
  if (resolved.kind === 'method') {
    await discardBody(req, res);
    return send(
      res,
      405,
      { 'content-type': 'application/json', allow: resolved.allowed.join(', ') },
      errorJson('METHOD_NOT_ALLOWED', `${req.method} is not allowed on ${url.pathname} (allowed: ${resolved.allowed.join(', ')})`),
    );
  }
  let body: Buffer;
  try {
    body = await readBody(req, MAX_REQUEST_BODY_BYTES);
  } catch (err) {
    if (!(err instanceof BodyTooLarge)) throw err;
    await discardBody(req, res);
    return send(res, 413, { 'content-type': 'application/json' }, errorJson('PAYLOAD_TOO_LARGE', `request body is over ${MAX_REQUEST_BODY_BYTES} bytes`));
  }
  const { route } = resolved.match;
  const result = await route.handler(toEvent(req, url, resolved.match, body), lambdaContext(route.functionName));
  writeResult(res, result);
}

export async function startApiServer(options: ApiServerOptions): Promise<ApiServer> {
  const host = options.host ?? '127.0.0.1';
  const server = createServer((req, res) => {
    handleRequest(req, res).catch((err: unknown) => {
      // The handlers map their own errors; reaching here means the translation itself broke.
      console.error('local API server: unhandled error', err);
      if (!res.headersSent) send(res, 500, { 'content-type': 'application/json' }, errorJson('INTERNAL', 'internal error'));
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host}:${port}`,
    port,
    server,
    close: () =>
      new Promise<void>((resolve, reject) => {
        // Keep-alive sockets of clients (fetch keeps a pool) would hold close() open.
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
}
