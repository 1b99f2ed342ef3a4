// The OpenAPI document of the REST API (design.md §3): committed as openapi.json, generated from the handlers' zod
// schemas, and checked here against the handlers themselves.
//
// After changing a route or a schema, regenerate openapi.json with:
//   UPDATE_OPENAPI=1 npx vitest run test/unit/openapi.test.ts
// and commit it with the change; without UPDATE_OPENAPI the first test fails until the file matches.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { access, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { afterAll, beforeAll, beforeEach, describe, expect, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import type { AppStatus } from '../../src/core/control-plane';
import type { DeployPlan, DeployResult } from '../../src/core/deploy';
import type { DeploymentRecord } from '../../src/core/deployments';
import type { InitResult } from '../../src/core/init';
import type { DeployData } from '../../src/core/provision';
import type { AppListing, RollbackResult, UndeployResult } from '../../src/core/lifecycle';
import { initBody } from '../../src/handlers/init';
import { openApiDocument, openApiJson, ROUTES, type RouteDoc } from '../../src/handlers/http/openapi';
import { resetRuntime } from '../../src/handlers/http/runtime';
import { bundlesBody, deployBody, provisionDataBody, rollbackBody } from '../../src/handlers/http/schemas';
import {
  appListingSchema, appStatusResponse, deploymentRecordSchema, deployPlanSchema, deployResultSchema, errorResponse, initResponse,
  provisionDataResponse, rollbackResponse, undeployResponse,
} from '../../src/handlers/http/responses';

/**
 * A type with every intersection (`ProgressEvent & { at: string }`, `IamEntity & { created: boolean }`) written as the one
 * object type it is: expectTypeOf compares intersections by how they are written, not by their shape.
 */
type Flat<T> = T extends Array<infer U> ? Array<Flat<U>> : T extends object ? { [K in keyof T]: Flat<T[K]> } : T;

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const OPENAPI_PATH = join(ROOT, 'openapi.json');

const ADMIN_TOKEN = 'openapi-test-admin-token-0123456789';
const STATUS_TOKEN = 'openapi-test-status-token-0123456789';

type Json = Record<string, unknown>;
interface JsonSchema {
  type?: string;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean | JsonSchema;
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  maxProperties?: number;
  propertyNames?: JsonSchema;
}

const doc = openApiDocument() as {
  openapi: string;
  paths: Record<string, Record<string, Json & { requestBody?: { content: { 'application/json': { schema: { $ref: string }; example: Json } } }; security: Json[]; responses: Json; 'x-handler': string }>>;
  components: { schemas: Record<string, JsonSchema>; responses: Json; securitySchemes: Json };
};

/** Resolves a local `#/a/b` reference in the document. */
function resolve(ref: string): unknown {
  return ref
    .replace(/^#\//, '')
    .split('/')
    .reduce<unknown>((node, part) => (node as Json | undefined)?.[part.replace(/~1/g, '/').replace(/~0/g, '~')], doc);
}

const operations = Object.entries(doc.paths).flatMap(([path, byMethod]) => Object.entries(byMethod).map(([method, op]) => ({ method, path, op })));
const routeOf = (method: string, path: string): RouteDoc => ROUTES.find((r) => r.method === method && r.path === path)!;
const requestSchemaOf = (op: (typeof operations)[number]['op']): JsonSchema => resolve(op.requestBody!.content['application/json'].schema.$ref) as JsonSchema;
const postOperations = operations.filter((o) => o.method === 'post');

/** The zod schema each POST handler validates with, by route: what the document must have been generated from. */
const HANDLER_BODY_SCHEMAS: Record<string, z.ZodType> = {
  '/init': initBody, '/bundles': bundlesBody, '/deploy': deployBody, '/provision-data': provisionDataBody, '/apps/{appId}/rollback': rollbackBody,
};

/** A body with the documented required fields only, their values taken from the documented example. */
function minimalBody(op: (typeof operations)[number]['op']): Json {
  const example = op.requestBody!.content['application/json'].example;
  return Object.fromEntries((requestSchemaOf(op).required ?? []).map((k) => [k, example[k]]));
}

/** Values the documented property schema rejects, each for a reason the schema states. */
function valuesRejectedBy(schema: JsonSchema): Array<{ why: string; value: unknown }> {
  const out: Array<{ why: string; value: unknown }> = [{ why: `not of type ${schema.type}`, value: schema.type === 'string' ? 42 : `not of type ${schema.type}` }];
  if (schema.type === 'string') {
    const pattern = schema.pattern === undefined ? undefined : new RegExp(schema.pattern, 'u');
    if ((schema.minLength ?? 0) > 0 || (pattern && !pattern.test(''))) out.push({ why: 'empty', value: '' });
    if (schema.maxLength !== undefined) out.push({ why: `over maxLength ${schema.maxLength}`, value: 'a'.repeat(schema.maxLength + 1) });
  }
  if (schema.type === 'object') {
    const namePattern = schema.propertyNames?.pattern === undefined ? undefined : new RegExp(schema.propertyNames.pattern, 'u');
    const badName = ['', '0', '-', ' '].find((n) => namePattern && !namePattern.test(n));
    if (badName !== undefined) out.push({ why: `a property name not matching ${schema.propertyNames!.pattern}`, value: { [badName]: 'x' } });
    if (typeof schema.additionalProperties === 'object' && schema.additionalProperties.type === 'string') out.push({ why: 'a value that is not a string', value: { VALID_NAME: 42 } });
    if (schema.maxProperties !== undefined) {
      out.push({ why: `over maxProperties ${schema.maxProperties}`, value: Object.fromEntries(Array.from({ length: schema.maxProperties + 1 }, (_, i) => [`V${i}`, 'x'])) });
    }
  }
  return out;
}

const rejectedBodies = postOperations.flatMap(({ path, op }) => {
  const schema = requestSchemaOf(op);
  const base = minimalBody(op);
  const cases: Array<{ route: string; why: string; body: unknown; field: string }> = [];
  for (const field of schema.required ?? []) {
    const { [field]: _omitted, ...rest } = base;
    cases.push({ route: path, why: `without the required ${field}`, body: rest, field });
  }
  if (schema.additionalProperties === false) cases.push({ route: path, why: 'with an undocumented field', body: { ...base, notDocumented: true }, field: '(body)' });
  for (const [field, prop] of Object.entries(schema.properties ?? {})) {
    for (const { why, value } of valuesRejectedBy(prop)) cases.push({ route: path, why: `${field}: ${why}`, body: { ...base, [field]: value }, field });
  }
  return cases;
});

// ---------------------------------------------------------------------------------------------------------------------
// Handlers, invoked as API Gateway (HTTP API, payload 2.0) would, with AWS pointed at a local stand-in that answers
// 404 to everything and records what reached it: a rejection must come before any AWS call.

let fakeAws: Server;
const awsRequests: string[] = [];
const savedEnv = { ...process.env };
const ENV_KEYS = [
  'APPS_DEPLOYER_ADMIN_TOKEN', 'APPS_DEPLOYER_STATUS_TOKEN', 'AWS_ENDPOINT_URL', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY',
  'AWS_EC2_METADATA_DISABLED', 'MM_APPS_S3_BUCKET', 'MM_APPS_AWS_REGION', 'MM_SERVICESETTINGS_SITEURL', 'MM_ADMIN_TOKEN',
  'APPS_DEPLOYER_WEBHOOK_URL', 'AWS_PROFILE',
];

function notFoundXml(req: IncomingMessage): string {
  if (req.method === 'HEAD') return '';
  // IAM speaks the query protocol (form bodies); S3 its REST XML.
  return String(req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded')
    ? '<ErrorResponse><Error><Type>Sender</Type><Code>NoSuchEntity</Code><Message>not here</Message></Error><RequestId>1</RequestId></ErrorResponse>'
    : '<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchKey</Code><Message>not here</Message></Error>';
}

beforeAll(async () => {
  fakeAws = createServer((req, res) => {
    awsRequests.push(`${req.method} ${req.url}`);
    req.resume();
    req.on('end', () => {
      const body = notFoundXml(req);
      res.writeHead(404, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
  });
  fakeAws.listen(0, '127.0.0.1');
  await new Promise((r) => fakeAws.once('listening', r));
  for (const k of ENV_KEYS) delete process.env[k];
  Object.assign(process.env, {
    APPS_DEPLOYER_ADMIN_TOKEN: ADMIN_TOKEN,
    APPS_DEPLOYER_STATUS_TOKEN: STATUS_TOKEN,
    AWS_ENDPOINT_URL: `http://127.0.0.1:${(fakeAws.address() as AddressInfo).port}`,
    AWS_ACCESS_KEY_ID: 'testing',
    AWS_SECRET_ACCESS_KEY: 'testing',
    AWS_EC2_METADATA_DISABLED: 'true',
    MM_APPS_S3_BUCKET: 'openapi-test-bucket',
    MM_APPS_AWS_REGION: 'us-east-1',
  });
  resetRuntime();
});

afterAll(async () => {
  for (const k of ENV_KEYS) {
    if (savedEnv[k] === undefined) delete process.env[k];
    else process.env[k] = savedEnv[k];
  }
  resetRuntime();
  fakeAws.closeAllConnections();
  await new Promise((r) => fakeAws.close(r));
});

beforeEach(() => {
  awsRequests.length = 0;
});

const context = { awsRequestId: 'openapi-test', functionName: 'apps-deployer-test', getRemainingTimeInMillis: () => 30_000 } as unknown as Context;

async function invoke(
  route: RouteDoc,
  opts: { body?: unknown; authorization?: string; pathParameters?: Record<string, string> },
): Promise<{ status: number; body: unknown }> {
  const mod = (await import(join(ROOT, `src/handlers/${route.handler}.ts`))) as { handler: (e: APIGatewayProxyEventV2, c: Context) => Promise<APIGatewayProxyStructuredResultV2> };
  const method = route.method.toUpperCase();
  const rawPath = route.path.replace(/\{(\w+)\}/g, (_, name: string) => opts.pathParameters?.[name] ?? '');
  const event = {
    version: '2.0',
    routeKey: `${method} ${route.path}`,
    rawPath,
    rawQueryString: '',
    headers: opts.authorization === undefined ? {} : { authorization: opts.authorization },
    requestContext: { http: { method, path: rawPath } },
    ...(opts.pathParameters ? { pathParameters: opts.pathParameters } : {}),
    body: opts.body === undefined ? undefined : typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body),
    isBase64Encoded: false,
  } as unknown as APIGatewayProxyEventV2;
  const res = await mod.handler(event, context);
  const status = res.statusCode ?? 0;
  // Whatever the handler answers, the document must list that status for the route.
  expect(Object.keys(doc.paths[route.path]![route.method]!.responses), `${method} ${route.path} answered an undocumented ${status}`).toContain(String(status));
  return { status, body: JSON.parse(String(res.body)) };
}

const PATH_PARAMETERS: Record<string, Record<string, string>> = {
  '/deployments/{id}': { id: '0b7c6a52-3f3e-4c1e-9d7e-0a5b1d2c3e4f' },
  '/apps/{appId}': { appId: 'com.example.app' },
  '/apps/{appId}/rollback': { appId: 'com.example.app' },
  '/apps/{appId}/versions/{version}': { appId: 'com.example.app', version: 'v1.0.0' },
};

// ---------------------------------------------------------------------------------------------------------------------

describe('openapi.json', () => {
  it('is the document openApiDocument() generates (regenerate with UPDATE_OPENAPI=1)', async () => {
    // Prepare
    if (process.env.UPDATE_OPENAPI === '1') await writeFile(OPENAPI_PATH, openApiJson());

    // Act
    const onDisk = await readFile(OPENAPI_PATH, 'utf8');

    // Assess: the parsed comparison gives a readable diff, the textual one catches formatting
    expect(JSON.parse(onDisk)).toEqual(openApiDocument());
    expect(onDisk).toBe(openApiJson());
  });

  it('describes the six routes of design.md §3 in OpenAPI 3.1', () => {
    // Assess: these at least; that there is no other route than serverless.yml's is checked below
    expect(doc.openapi).toBe('3.1.0');
    expect(operations.map((o) => `${o.method.toUpperCase()} ${o.path}`)).toEqual(
      expect.arrayContaining(['GET /apps/{appId}', 'GET /deployments/{id}', 'POST /bundles', 'POST /deploy', 'POST /init', 'POST /provision-data']),
    );
  });

  it('resolves every $ref inside the document', () => {
    // Prepare
    const refs: string[] = [];
    const walk = (node: unknown): void => {
      if (Array.isArray(node)) node.forEach(walk);
      else if (node && typeof node === 'object') {
        for (const [k, v] of Object.entries(node)) {
          if (k === '$ref' && typeof v === 'string') refs.push(v);
          else walk(v);
        }
      }
    };

    // Act
    walk(doc);

    // Assess
    expect(refs.length).toBeGreaterThan(20);
    expect(refs.filter((r) => resolve(r) === undefined)).toEqual([]);
  });

  it('documents bearer auth: the admin token everywhere, the status token on GET routes only', () => {
    // Assess
    expect(doc.components.securitySchemes).toMatchObject({ adminToken: { type: 'http', scheme: 'bearer' }, statusToken: { type: 'http', scheme: 'bearer' } });
    for (const { method, op } of operations) {
      // design.md §3: the status token is for the read-only endpoints, the GETs.
      expect(op.security).toEqual(method === 'get' ? [{ adminToken: [] }, { statusToken: [] }] : [{ adminToken: [] }]);
      expect(op.responses).toMatchObject({ 401: { $ref: '#/components/responses/Unauthorized' }, 403: { $ref: '#/components/responses/Forbidden' } });
    }
  });

  it('answers every error with the ErrorResponse schema', () => {
    // Assess
    for (const response of Object.values(doc.components.responses)) {
      expect(response).toMatchObject({ content: { 'application/json': { schema: { $ref: '#/components/schemas/ErrorResponse' } } } });
    }
    expect(Object.keys(doc.components.responses)).toHaveLength(9);
  });

  it('publishes response schemas with exactly the shape of the src/core types the handlers answer', () => {
    // Assess: compile-time (tsc --noEmit checks test/); a field added to a core type without its schema fails here
    expectTypeOf<Flat<z.output<typeof deploymentRecordSchema>>>().toEqualTypeOf<Flat<DeploymentRecord>>();
    expectTypeOf<Flat<z.output<typeof deployPlanSchema>>>().toEqualTypeOf<Flat<DeployPlan>>();
    expectTypeOf<Flat<z.output<typeof deployResultSchema>>>().toEqualTypeOf<Flat<DeployResult>>();
    expectTypeOf<Flat<z.output<typeof appStatusResponse>>>().toEqualTypeOf<Flat<AppStatus>>();
    expectTypeOf<Flat<z.output<typeof provisionDataResponse>>>().toEqualTypeOf<Flat<DeployData>>();
    expectTypeOf<Flat<z.output<typeof initResponse>>>().toEqualTypeOf<Flat<InitResult>>();
    expectTypeOf<Flat<z.output<typeof appListingSchema>>>().toEqualTypeOf<Flat<AppListing>>();
    expectTypeOf<Flat<z.output<typeof rollbackResponse>>>().toEqualTypeOf<Flat<RollbackResult>>();
    expectTypeOf<Flat<z.output<typeof undeployResponse>>>().toEqualTypeOf<Flat<UndeployResult>>();
  });
});

describe('each documented route', () => {
  it.each(operations.map(({ method, path, op }) => ({ route: `${method.toUpperCase()} ${path}`, method, path, handler: op['x-handler'] })))(
    '$route is served by $handler, as serverless.yml routes it',
    async ({ method, path, handler }) => {
      // Prepare
      const serverless = await readFile(join(ROOT, 'serverless.yml'), 'utf8');

      // Act
      await access(join(ROOT, handler));
      const mod = (await import(join(ROOT, handler))) as { handler?: unknown };

      // Assess
      expect(typeof mod.handler).toBe('function');
      expect(handler).toBe(`src/handlers/${routeOf(method, path).handler}.ts`);
      expect(httpRoutesOf(serverless)).toContainEqual({ method: method.toUpperCase(), path, handler: routeOf(method, path).handler });
    },
  );

  it('is all there is in serverless.yml', async () => {
    // Act
    const routes = httpRoutesOf(await readFile(join(ROOT, 'serverless.yml'), 'utf8'));

    // Assess
    expect(routes.map((r) => `${r.method} ${r.path}`).sort()).toEqual(operations.map((o) => `${o.method.toUpperCase()} ${o.path}`).sort());
  });

  it.each(operations.map(({ method, path }) => ({ route: `${method.toUpperCase()} ${path}`, method, path })))(
    '$route answers 401 without a token and 403 to a wrong one, before any AWS call',
    async ({ method, path }) => {
      // Prepare
      const route = routeOf(method, path);
      const pathParameters = PATH_PARAMETERS[path];

      // Act
      const missing = await invoke(route, { body: {}, ...(pathParameters ? { pathParameters } : {}) });
      const wrong = await invoke(route, { body: {}, authorization: 'Bearer not-a-token-this-stack-knows', ...(pathParameters ? { pathParameters } : {}) });

      // Assess
      expect(missing).toMatchObject({ status: 401, body: { error: { code: 'UNAUTHORIZED' } } });
      expect(wrong).toMatchObject({ status: 403, body: { error: { code: 'FORBIDDEN' } } });
      expect(errorResponse.strict().safeParse(wrong.body).success).toBe(true);
      expect(awsRequests).toEqual([]);
    },
  );

  it.each(operations.map(({ method, path }) => ({ route: `${method.toUpperCase()} ${path}`, method, path })))(
    '$route treats the status token as its security says',
    async ({ method, path }) => {
      // Prepare
      const route = routeOf(method, path);
      const pathParameters = PATH_PARAMETERS[path];

      // Act
      const res = await invoke(route, { body: {}, authorization: `Bearer ${STATUS_TOKEN}`, ...(pathParameters ? { pathParameters } : {}) });

      // Assess
      if (routeOf(method, path).access === 'read') expect([401, 403]).not.toContain(res.status);
      else expect(res).toMatchObject({ status: 403, body: { error: { code: 'FORBIDDEN' } } });
    },
  );
});

describe('request bodies as documented, checked against the handlers', () => {
  it.each(postOperations.map(({ path }) => ({ route: path })))('POST $route was generated from the schema its handler validates with', ({ route }) => {
    // Prepare
    const op = postOperations.find((o) => o.path === route)!.op;

    const schema = HANDLER_BODY_SCHEMAS[route]!;

    // Act
    const { $schema: _dialect, ...generated } = z.toJSONSchema(schema, { io: 'input' });
    const example = schema.safeParse(op.requestBody!.content['application/json'].example);
    const minimal = schema.safeParse(minimalBody(op));

    // Assess
    expect(requestSchemaOf(op)).toEqual(generated);
    expect(example.success, JSON.stringify(example.error?.issues)).toBe(true);
    expect(minimal.success, JSON.stringify(minimal.error?.issues)).toBe(true);
  });

  it.each(rejectedBodies)('POST $route answers 400 naming $field to a body $why, before any AWS call', async ({ route, body, field }) => {
    // Act
    const res = await invoke(routeOf('post', route), { body, authorization: `Bearer ${ADMIN_TOKEN}` });

    // Assess
    expect(res.status).toBe(400);
    const parsed = errorResponse.strict().parse(res.body);
    expect(parsed.error.code).toBe('BAD_REQUEST');
    // A problem inside an object field is reported at its own path (`env.NAME`).
    expect(parsed.error.details.some((d) => d.path === field || d.path?.startsWith(`${field}.`)), JSON.stringify(parsed.error.details)).toBe(true);
    expect(awsRequests).toEqual([]);
  });

  it.each(postOperations.map(({ path }) => ({ route: path })))('POST $route answers 400 to a body that is not JSON', async ({ route }) => {
    // Act
    const res = await invoke(routeOf('post', route), { body: '{"bundleKey": ', authorization: `Bearer ${ADMIN_TOKEN}` });

    // Assess
    expect(res).toMatchObject({ status: 400, body: { error: { code: 'BAD_REQUEST' } } });
    expect(awsRequests).toEqual([]);
  });

  it('POST /deploy answers 400 naming bundleKey to an empty body', async () => {
    // Act
    const res = await invoke(routeOf('post', '/deploy'), { authorization: `Bearer ${ADMIN_TOKEN}` });

    // Assess
    expect(res).toMatchObject({ status: 400, body: { error: { code: 'BAD_REQUEST', details: [{ path: 'bundleKey' }] } } });
  });

  it.each(postOperations.map(({ path, op }) => ({ route: path, required: requestSchemaOf(op).required ?? [] })))(
    'POST $route accepts a body with only the documented required fields $required (it goes on to AWS)',
    async ({ route }) => {
      // Prepare
      const op = postOperations.find((o) => o.path === route)!.op;

      // Act
      const pathParameters = PATH_PARAMETERS[route];
      const res = await invoke(routeOf('post', route), { body: minimalBody(op), authorization: `Bearer ${ADMIN_TOKEN}`, ...(pathParameters ? { pathParameters } : {}) });

      // Assess: past validation, the stand-in's 404s decide the answer; POST /bundles only signs, locally
      expect(res.status, JSON.stringify(res.body)).not.toBe(400);
      if (route === '/bundles') expect(res.status).toBe(200);
      else expect(awsRequests.length).toBeGreaterThan(0);
    },
  );

  it('refuses a bundleKey with ".." segments, which the document can only say in words', async () => {
    // Act
    const res = await invoke(routeOf('post', '/deploy'), { body: { bundleKey: 'bundles/../manifests/x.zip' }, authorization: `Bearer ${ADMIN_TOKEN}` });

    // Assess
    expect(res).toMatchObject({ status: 400, body: { error: { details: [{ path: 'bundleKey' }] } } });
    expect(doc.components.schemas.DeployRequest!.properties!.bundleKey).toMatchObject({ description: expect.stringContaining('..') });
  });
});

describe('path parameters as documented, checked against the handlers', () => {
  it.each([
    { case: 'an app id with a character the server refuses', appId: 'bad/app', status: 400 },
    { case: 'an app id under 3 bytes', appId: 'ab', status: 400 },
  ])('GET /apps/{appId} answers $status to $case, before any AWS call', async ({ appId, status }) => {
    // Act
    const res = await invoke(routeOf('get', '/apps/{appId}'), { authorization: `Bearer ${ADMIN_TOKEN}`, pathParameters: { appId } });

    // Assess
    expect(res).toMatchObject({ status, body: { error: { code: 'BAD_REQUEST', details: [{ path: 'appId' }] } } });
    expect(awsRequests).toEqual([]);
  });

  it('GET /deployments/{id} answers 404 to an id that does not match the documented pattern, before any AWS call', async () => {
    // Prepare
    const param = (doc.paths['/deployments/{id}']!.get!.parameters as Array<{ schema: JsonSchema }>)[0]!;
    expect(new RegExp(param.schema.pattern!, 'u').test('not-a-deployment')).toBe(false);

    // Act
    const res = await invoke(routeOf('get', '/deployments/{id}'), { authorization: `Bearer ${ADMIN_TOKEN}`, pathParameters: { id: 'not-a-deployment' } });

    // Assess
    expect(res).toMatchObject({ status: 404, body: { error: { code: 'NOT_FOUND' } } });
    expect(awsRequests).toEqual([]);
  });
});

/** `METHOD path → handler` of every httpApi event in serverless.yml, read line by line (no YAML parser in the tree). */
function httpRoutesOf(yml: string): Array<{ method: string; path: string; handler: string }> {
  const routes: Array<{ method: string; path: string; handler: string }> = [];
  let handler: string | undefined;
  for (const line of yml.split('\n')) {
    const h = /^\s+handler:\s*dist\/handlers\/([\w-]+)\.handler\s*$/.exec(line);
    if (h) handler = h[1];
    const e = /-\s*httpApi:\s*\{\s*method:\s*(\w+),\s*path:\s*(?:'([^']+)'|([^\s,}]+))\s*\}/.exec(line);
    if (e && handler) routes.push({ method: e[1]!.toUpperCase(), path: (e[2] ?? e[3])!, handler });
  }
  return routes;
}
