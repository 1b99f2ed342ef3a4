// The REST API (design.md §3) over real HTTP, as the local stack serves it: src/local/server.ts in front of the real
// handlers, moto behind them, the Mattermost fake to call back, and S3 events pumped from SQS to the auto-deployer.
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { GetBucketNotificationConfigurationCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { ListFunctionsCommand } from '@aws-sdk/client-lambda';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { BundleEventOutcome } from '../../src/core/control-plane';
import { getRuntime, resetRuntime } from '../../src/handlers/http/runtime';
import { errorResponse } from '../../src/handlers/http/responses';
import { startS3EventPump, type S3EventPump } from '../../src/local/s3-events';
import { MAX_REQUEST_BODY_BYTES, startApiServer, type ApiServer } from '../../src/local/server';
import { lambdaClient, s3Client } from '../support/aws';
import { buildBundle } from '../support/bundle-builder';
import { PEER_BUNDLE, PEER_PROVISION_JSON } from '../support/fixtures';
import { startMattermostFake, UPDATE_APP_LISTING_PATH, type MattermostFake } from '../support/mattermost-fake';
import { motoRecorder } from '../support/moto';
import { describeRequests, isWrite } from '../support/writes';

const endpoint = inject('motoEndpoint');

const ADMIN_TOKEN = 'api-test-admin-token-0123456789abcdef';
const STATUS_TOKEN = 'api-test-status-token-0123456789abcdef';
const MM_TOKEN = 'api-test-mattermost-token';
const BUCKET = 'apps-api-test-bucket';
const APP_ID = 'hello-serverless';
const WRONG_TOKEN = 'not-a-token-this-api-knows-at-all';

const s3 = s3Client();
const lambda = lambdaClient();

let server: ApiServer;
let mm: MattermostFake;
let dir: string;
let exampleBundle: string;
let exampleVersion: string;

const savedEnv = { ...process.env };
const ENV_KEYS = ['APPS_DEPLOYER_ADMIN_TOKEN', 'APPS_DEPLOYER_STATUS_TOKEN', 'MM_APPS_S3_BUCKET', 'MM_SERVICESETTINGS_SITEURL', 'MM_ADMIN_TOKEN'];

interface Answer<T = any> {
  status: number;
  headers: Headers;
  text: string;
  body: T;
}

async function call<T = any>(method: string, path: string, opts: { body?: unknown; raw?: string; token?: string | null } = {}): Promise<Answer<T>> {
  const token = opts.token === undefined ? ADMIN_TOKEN : opts.token;
  const body = opts.raw ?? (opts.body === undefined ? undefined : JSON.stringify(opts.body));
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers: { ...(token === null ? {} : { authorization: `Bearer ${token}` }), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body } : {}),
  });
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  return { status: res.status, headers: res.headers, text, body: parsed as T };
}

/** What a browser or CI job does with a presigned POST: every field, then the file, last. */
async function uploadThroughPresignedPost(post: { url: string; fields: Record<string, string> }, path: string): Promise<Response> {
  const form = new FormData();
  for (const [k, v] of Object.entries(post.fields)) form.append(k, v);
  form.append('file', new Blob([await readFile(path)], { type: 'application/zip' }), 'bundle.zip');
  return fetch(post.url, { method: 'POST', body: form });
}

async function until<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function finishedDeployment(id: string): Promise<any> {
  return until(`deployment ${id} to end`, async () => {
    const res = await call('GET', `/deployments/${id}`, { token: STATUS_TOKEN });
    return res.status === 200 && (res.body.state === 'succeeded' || res.body.state === 'failed') ? res.body : undefined;
  });
}

async function keys(prefix: string): Promise<string[]> {
  const res = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix }));
  return (res.Contents ?? []).map((o) => o.Key!);
}

function expectErrorShape(res: Answer): void {
  expect(res.headers.get('content-type')).toContain('application/json');
  expect(errorResponse.safeParse(res.body).success, res.text).toBe(true);
  expect(res.text).not.toContain(ADMIN_TOKEN);
  expect(res.text).not.toContain(STATUS_TOKEN);
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'api-test-'));
  mm = await startMattermostFake({ token: MM_TOKEN });
  Object.assign(process.env, {
    APPS_DEPLOYER_ADMIN_TOKEN: ADMIN_TOKEN,
    APPS_DEPLOYER_STATUS_TOKEN: STATUS_TOKEN,
    MM_APPS_S3_BUCKET: BUCKET,
    MM_SERVICESETTINGS_SITEURL: mm.url,
    MM_ADMIN_TOKEN: MM_TOKEN,
  });
  resetRuntime();
  server = await startApiServer({ port: 0, host: '127.0.0.1' });

  // The example app, built by its own script (examples/hello/build-bundle.mjs), into this test's directory.
  const script = fileURLToPath(new URL('../../examples/hello/build-bundle.mjs', import.meta.url));
  const { buildBundle: buildExample } = (await import(pathToFileURL(script).href)) as { buildBundle: (outDir: string) => Promise<{ path: string }> };
  exampleBundle = (await buildExample(dir)).path;
  exampleVersion = (JSON.parse(await readFile(fileURLToPath(new URL('../../examples/hello/manifest.json', import.meta.url)), 'utf8')) as { version: string }).version;

  // The account, through the API itself.
  const init = await call('POST', '/init', { body: { create: true } });
  expect(init.status, init.text).toBe(200);
});

afterAll(async () => {
  // Deploys started by POST /deploy run in this process: let them end before moto is reset by the next file.
  const worker = (await getRuntime()).controlPlane.worker as { idle?: () => Promise<void> } | undefined;
  await worker?.idle?.();
  await server?.close();
  await mm?.close();
  for (const k of ENV_KEYS) {
    if (savedEnv[k] === undefined) delete process.env[k];
    else process.env[k] = savedEnv[k];
  }
  resetRuntime();
  s3.destroy();
  lambda.destroy();
  await rm(dir, { recursive: true, force: true });
});

const ROUTES = [
  { method: 'POST', path: '/init', body: { create: true } },
  { method: 'POST', path: '/bundles', body: {} },
  { method: 'POST', path: '/deploy', body: { bundleKey: 'bundles/x.zip' } },
  { method: 'GET', path: `/deployments/${randomUUID()}` },
  { method: 'POST', path: '/provision-data', body: { bundleKey: 'bundles/x.zip' } },
  { method: 'GET', path: `/apps/${APP_ID}` },
  { method: 'GET', path: '/apps' },
  { method: 'POST', path: `/apps/${APP_ID}/rollback`, body: { version: 'v1.0.0' } },
  { method: 'DELETE', path: `/apps/${APP_ID}/versions/v1.0.0` },
] as const;

describe('authentication, on every route', () => {
  it.each(ROUTES)('$method $path without Authorization → 401', async (route) => {
    // Act
    const res = await call(route.method, route.path, { body: 'body' in route ? route.body : undefined, token: null });

    // Assess
    expect(res.status).toBe(401);
    expect(res.body.error.code).toBe('UNAUTHORIZED');
    expectErrorShape(res);
  });

  it.each(ROUTES)('$method $path with a wrong token → 403', async (route) => {
    // Act
    const res = await call(route.method, route.path, { body: 'body' in route ? route.body : undefined, token: WRONG_TOKEN });

    // Assess
    expect(res.status).toBe(403);
    expect(res.body.error.code).toBe('FORBIDDEN');
    expectErrorShape(res);
  });

  it.each(ROUTES.filter((r) => r.method !== 'GET'))('$method $path with the status token → 403 (admin only)', async (route) => {
    // Act
    const res = await call(route.method, route.path, { body: 'body' in route ? route.body : undefined, token: STATUS_TOKEN });

    // Assess
    expect(res.status).toBe(403);
    expectErrorShape(res);
  });

  it.each(ROUTES.filter((r) => r.method === 'GET'))('$method $path with the status token is let through', async (route) => {
    // Act
    const res = await call(route.method, route.path, { token: STATUS_TOKEN });

    // Assess: the route's own answer (404 here: nothing deployed yet), not an auth error.
    expect([401, 403]).not.toContain(res.status);
    expect(res.text).not.toContain(ADMIN_TOKEN);
    expect(res.text).not.toContain(STATUS_TOKEN);
  });
});

describe('routing, as API Gateway would', () => {
  it.each([
    { method: 'GET', path: '/' },
    { method: 'POST', path: '/nope' },
    { method: 'GET', path: '/deployments/' },
    { method: 'GET', path: '/apps/a/b' },
    { method: 'POST', path: '/init/' },
    { method: 'POST', path: '//example.com/init' },
  ])('$method $path → 404 in the error shape', async ({ method, path }) => {
    // Act
    const res = await call(method, path);

    // Assess
    expect(res.status).toBe(404);
    expect(res.body).toEqual({ error: { code: 'NOT_FOUND', message: expect.any(String), details: [] } });
  });

  it.each([
    { method: 'GET', path: '/init', allow: 'POST' },
    { method: 'PUT', path: '/deploy', allow: 'POST' },
    { method: 'POST', path: `/apps/${APP_ID}`, allow: 'GET' },
    { method: 'DELETE', path: `/deployments/${randomUUID()}`, allow: 'GET' },
  ])('$method $path → 405, allowing $allow', async ({ method, path, allow }) => {
    // Act
    const res = await call(method, path);

    // Assess
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe(allow);
    expectErrorShape(res);
  });

  it.each([
    { case: 'with a Content-Length', chunked: false },
    { case: 'sent chunked', chunked: true },
  ])('refuses a body over the cap, $case, with 413', async ({ chunked }) => {
    // Prepare
    const big = new TextEncoder().encode(JSON.stringify({ name: 'x'.repeat(MAX_REQUEST_BODY_BYTES) }));
    const body = chunked
      ? new ReadableStream({
          start(c) {
            for (let i = 0; i < big.length; i += 64 * 1024) c.enqueue(big.subarray(i, i + 64 * 1024));
            c.close();
          },
        })
      : big;

    // Act
    const res = await fetch(`${server.url}/bundles`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}` }, body, ...(chunked ? { duplex: 'half' } : {}) } as RequestInit);
    const text = await res.text();

    // Assess
    expect(res.status).toBe(413);
    expect(JSON.parse(text)).toEqual({ error: { code: 'PAYLOAD_TOO_LARGE', message: expect.any(String), details: [] } });
  });
});

describe('request validation', () => {
  it.each([
    { path: '/init', raw: '{"create": tru' },
    { path: '/bundles', raw: '{name: "a.zip"}' },
    { path: '/deploy', raw: '{"bundleKey": "bundles/a.zip",}' },
    { path: '/provision-data', raw: 'bundleKey=bundles/a.zip' },
  ])('POST $path with a body that is not JSON → 400', async ({ path, raw }) => {
    // Act
    const res = await call('POST', path, { raw });

    // Assess
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('BAD_REQUEST');
    expectErrorShape(res);
  });

  it.each([
    { path: '/init', body: { create: 'yes' }, field: 'create' },
    { path: '/init', body: { create: true, bukket: 'b' }, field: 'bukket' },
    { path: '/bundles', body: { name: 5 }, field: 'name' },
    { path: '/bundles', body: { name: '../evil.zip' }, field: 'name' },
    { path: '/bundles', body: { nmae: 'a.zip' }, field: 'nmae' },
    { path: '/deploy', body: {}, field: 'bundleKey' },
    { path: '/deploy', body: { bundleKey: 5 }, field: 'bundleKey' },
    { path: '/deploy', body: { bundleKey: 'bundles/a.zip', dryRun: 'true' }, field: 'dryRun' },
    { path: '/deploy', body: { bundleKey: 'bundles/a.zip', dryrun: true }, field: 'dryrun' },
    { path: '/deploy', body: { bundleKey: 'bundles/a.zip', env: { '1BAD': 'x' } }, field: 'env' },
    { path: '/provision-data', body: { bundleKey: ['bundles/a.zip'] }, field: 'bundleKey' },
    { path: '/provision-data', body: { bundleKey: 'other/a.zip' }, field: 'bundleKey' },
    { path: '/provision-data', body: { bundleKey: 'bundles/a.zip', extra: 1 }, field: 'extra' },
  ])('POST $path $body → 400 naming $field', async ({ path, body, field }) => {
    // Act
    const res = await call('POST', path, { body });

    // Assess
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('BAD_REQUEST');
    expectErrorShape(res);
    // A wrong value is reported at its path; an unknown field has no path of its own, so its name is in the message.
    const details = res.body.error.details as Array<{ path?: string; message: string }>;
    expect(details.some((d) => d.path?.split('.')[0] === field || d.message.includes(field)), JSON.stringify(details)).toBe(true);
  });

  it.each([
    { path: '/deployments/not-a-uuid', status: 404 },
    { path: `/deployments/${randomUUID()}`, status: 404 },
    { path: '/apps/x', status: 400 },
    { path: '/apps/unknown-app', status: 404 },
  ])('GET $path → $status', async ({ path, status }) => {
    // Act
    const res = await call('GET', path, { token: STATUS_TOKEN });

    // Assess
    expect(res.status).toBe(status);
    expectErrorShape(res);
  });
});

describe('uploading and provisioning', () => {
  it('POST /bundles answers a presigned POST that uploads the bundle under the returned key', async () => {
    // Act
    const res = await call('POST', '/bundles', { body: { name: 'hello.zip' } });
    const upload = await uploadThroughPresignedPost(res.body, exampleBundle);

    // Assess
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ url: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+\//), fields: expect.objectContaining({ key: res.body.key }), key: expect.stringMatching(/^bundles\/[0-9a-f-]{36}\/hello\.zip$/) });
    expect(Date.parse(res.body.expiresAt)).toBeGreaterThan(Date.now());
    expect(upload.status, await upload.text()).toBeLessThan(300);
    const head = await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: res.body.key }));
    expect(head.ContentLength).toBe((await readFile(exampleBundle)).length);
  });

  it('POST /provision-data answers the peer fixture\'s DeployData byte for byte', async () => {
    // Prepare
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'bundles/peer.zip', Body: await readFile(PEER_BUNDLE) }));

    // Act
    const res = await call('POST', '/provision-data', { body: { bundleKey: 'bundles/peer.zip' } });

    // Assess
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('application/json');
    expect(res.text).toBe(await readFile(PEER_PROVISION_JSON, 'utf8'));
  });

  it('POST /provision-data for a bundle that is not there → 404', async () => {
    // Act
    const res = await call('POST', '/provision-data', { body: { bundleKey: 'bundles/missing.zip' } });

    // Assess
    expect(res.status).toBe(404);
    expectErrorShape(res);
  });
});

describe('deploying through the API', () => {
  const key = 'bundles/api/hello-serverless.zip';

  beforeAll(async () => {
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: await readFile(exampleBundle) }));
  });

  it('a dry run answers the plan at once and writes nothing', async () => {
    // Prepare
    await motoRecorder.clear(endpoint);
    await motoRecorder.start(endpoint);

    // Act
    let res: Answer;
    try {
      res = await call('POST', '/deploy', { body: { bundleKey: key, dryRun: true } });
    } finally {
      await motoRecorder.stop(endpoint);
    }

    // Assess
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({ dryRun: true, plan: expect.any(Object) });
    expect(describeRequests((await motoRecorder.download(endpoint)).filter(isWrite))).toEqual([]);
    expect((await lambda.send(new ListFunctionsCommand({}))).Functions).toEqual([]);
    expect(await keys('manifests/')).toEqual([]);
  });

  it('POST /deploy answers 202 at once; the deployment then succeeds, lists the app, and GET /apps shows it', async () => {
    // Prepare
    mm.requests.length = 0;
    mm.listed.clear();

    // Act
    const res = await call('POST', '/deploy', { body: { bundleKey: key } });
    const record = await finishedDeployment(res.body.deploymentId);
    const app = await call('GET', `/apps/${APP_ID}`, { token: STATUS_TOKEN });

    // Assess
    expect(res.status, res.text).toBe(202);
    expect(res.body).toEqual({ deploymentId: expect.stringMatching(/^[0-9a-f-]{36}$/), status: 'pending' });
    expect(record).toMatchObject({ id: res.body.deploymentId, state: 'succeeded', source: 'api', bundle: { key }, app: { appId: APP_ID, version: exampleVersion } });
    expect(record.steps.length).toBeGreaterThan(0);
    expect(record.result).toMatchObject({ appId: APP_ID, version: exampleVersion, listed: true });
    expect(mm.requests.map((r) => `${r.method} ${r.path} ${r.status}`)).toEqual([`POST ${UPDATE_APP_LISTING_PATH} 200`]);
    expect(mm.listed.get(APP_ID)).toMatchObject({ app_id: APP_ID, version: exampleVersion, aws_lambda: expect.any(Object) });
    expect(app.status).toBe(200);
    expect(app.body).toMatchObject({
      appId: APP_ID,
      listedVersion: exampleVersion,
      installed: false,
      lastDeployment: { id: res.body.deploymentId, state: 'succeeded', version: exampleVersion },
      versions: [{ version: exampleVersion, complete: true, functions: [expect.objectContaining({ exists: true, state: 'Active' })] }],
    });
  });

  it('a bundle that does not validate ends `failed` with every problem in the record', async () => {
    // Prepare: a manifest naming a function the bundle does not hold, and one with a runtime Lambda does not have.
    const bad = await buildBundle(dir, {
      fileName: 'bad.zip',
      manifest: {
        app_id: 'bad-app',
        version: 'v0.0.1',
        display_name: 'Bad',
        homepage_url: 'https://example.com',
        aws_lambda: {
          functions: [
            { path: '/', name: 'missing', handler: 'index.handler', runtime: 'nodejs22.x' },
            { path: '/x', name: 'odd', handler: 'index.handler', runtime: 'cobol85' },
          ],
        },
      },
      functions: { 'odd.zip': { 'index.js': 'exports.handler = async () => ({})\n' } },
    });
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'bundles/bad.zip', Body: await readFile(bad) }));

    // Act
    const res = await call('POST', '/deploy', { body: { bundleKey: 'bundles/bad.zip' } });
    const record = await finishedDeployment(res.body.deploymentId);

    // Assess
    expect(res.status).toBe(202);
    expect(record.state).toBe('failed');
    expect(record.error.code).toBe('BUNDLE_VALIDATION_FAILED');
    const problems = JSON.stringify(record.error.details);
    expect(record.error.details.length).toBeGreaterThanOrEqual(2);
    expect(problems).toContain('missing');
    expect(problems).toContain('cobol85');
    expect((await lambda.send(new ListFunctionsCommand({}))).Functions!.map((f) => f.FunctionName)).not.toContainEqual(expect.stringContaining('bad-app'));
  });

  it('POST /deploy for a bundle that is not there → 404', async () => {
    // Act
    const res = await call('POST', '/deploy', { body: { bundleKey: 'bundles/not-uploaded.zip' } });

    // Assess
    expect(res.status).toBe(404);
    expectErrorShape(res);
    expect(res.body.error.message).toContain('bundles/not-uploaded.zip');
  });
});

describe('S3 events: an upload deploys itself (S3 → SQS → auto-deploy handler)', () => {
  let pump: S3EventPump;
  const outcomes = new Map<string, BundleEventOutcome>();
  const errors: unknown[] = [];

  beforeAll(async () => {
    pump = await startS3EventPump({
      bucket: BUCKET,
      region: 'us-east-1',
      queueName: 'api-test-s3-events',
      onOutcome: (ks, out) => ks.forEach((k, i) => out[i] && outcomes.set(k, out[i]!)),
      onError: (err) => errors.push(err),
    });
  });

  afterAll(async () => {
    await pump?.stop();
  });

  it('an upload through the presigned POST is deployed and listed in Mattermost', async () => {
    // Prepare
    mm.requests.length = 0;
    mm.listed.clear();
    const post = await call('POST', '/bundles', { body: { name: 'auto.zip' } });

    // Act
    const upload = await uploadThroughPresignedPost(post.body, exampleBundle);
    const outcome = await until('the auto-deploy of the upload', () => outcomes.get(post.body.key));
    const record = 'deploymentId' in outcome ? await finishedDeployment(outcome.deploymentId) : undefined;

    // Assess
    expect(upload.status).toBeLessThan(300);
    expect(outcome.status, JSON.stringify(outcome)).toBe('deployed');
    expect(record).toMatchObject({ state: 'succeeded', source: 's3-event', bundle: { key: post.body.key }, app: { appId: APP_ID } });
    expect(mm.requests.map((r) => `${r.method} ${r.path} ${r.status}`)).toEqual([`POST ${UPDATE_APP_LISTING_PATH} 200`]);
    expect(mm.listed.get(APP_ID)).toMatchObject({ app_id: APP_ID, version: exampleVersion });
    expect(errors).toEqual([]);
  });

  it('a key with a space and a plus reaches the handler as it was uploaded', async () => {
    // Prepare: a name POST /bundles would refuse, so put directly, as any S3 client may.
    const key = 'bundles/with space+plus (1).zip';

    // Act
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: await readFile(exampleBundle) }));
    const outcome = await until('the auto-deploy of the odd key', () => outcomes.get(key));

    // Assess: a key decoded wrongly would not be found in S3, and the deployment would fail.
    expect(outcome.status, JSON.stringify(outcome)).toBe('deployed');
    const record = await finishedDeployment((outcome as { deploymentId: string }).deploymentId);
    expect(record.bundle.key).toBe(key);
    expect(errors).toEqual([]);
  });

  it('the same bytes uploaded again to the same key deploy again, as on AWS', async () => {
    // Prepare
    const key = 'bundles/again.zip';
    const deployments: BundleEventOutcome[] = [];
    const seen = (k: string) => (outcomes.get(k) && deployments.at(-1) !== outcomes.get(k) ? outcomes.get(k) : undefined);

    // Act
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: await readFile(exampleBundle) }));
    deployments.push(await until('the first auto-deploy', () => seen(key)));
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: await readFile(exampleBundle) }));
    deployments.push(await until('the second auto-deploy', () => seen(key)));

    // Assess
    expect(deployments.map((o) => o.status)).toEqual(['deployed', 'deployed']);
    expect((deployments[0] as { deploymentId: string }).deploymentId).not.toBe((deployments[1] as { deploymentId: string }).deploymentId);
  });

  it('objects outside bundles/*.zip do not reach the handler', async () => {
    // Act
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'bundles/readme.txt', Body: 'not a bundle' }));
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'other/app.zip', Body: 'not a bundle either' }));
    await new Promise((r) => setTimeout(r, 1500));
    await pump.idle();

    // Assess
    expect([...outcomes.keys()]).not.toContain('bundles/readme.txt');
    expect([...outcomes.keys()]).not.toContain('other/app.zip');
  });

  it('stopping the pump detaches it from the bucket', async () => {
    // Act
    await pump.stop();

    // Assess
    const config = await s3.send(new GetBucketNotificationConfigurationCommand({ Bucket: BUCKET }));
    expect(config.QueueConfigurations ?? []).toEqual([]);
  });
});
