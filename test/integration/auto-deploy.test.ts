// The S3 auto-deployer (design.md §4) against moto and the Mattermost fake: the exported handler is given S3 events
// shaped as AWS delivers them (URL-encoded keys, unquoted ETags, sequencers), after real uploads to the apps bucket.
// Duplicates and redeliveries deploy once, a new upload of the same key deploys again, a bundle that is too big or
// invalid is refused and reported, and Mattermost and the incoming webhook hear about each outcome.
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetFunctionConfigurationCommand } from '@aws-sdk/client-lambda';
import { DeleteObjectsCommand, GetObjectTaggingCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context, S3Event, S3EventRecord } from 'aws-lambda';
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { handler } from '../../src/handlers/auto-deploy';
import { handler as appStatusHandler } from '../../src/handlers/app-status';
import { handler as deploymentStatusHandler } from '../../src/handlers/deployment-status';
import { resetRuntime } from '../../src/handlers/http/runtime';
import { appStatusResponse, deploymentRecordSchema } from '../../src/handlers/http/responses';
import type { BundleEventOutcome } from '../../src/core/control-plane';
import type { DeploymentRecord } from '../../src/core/deployments';
import { lambdaName, manifestKey } from '../../src/core/naming';
import { prepareAccount, type PreparedAccount } from '../support/account';
import { lambdaClient, s3Client } from '../support/aws';
import { buildBundle, buildZip } from '../support/bundle-builder';
import { INSTALL_APP_PATH, startMattermostFake, UPDATE_APP_LISTING_PATH, type MattermostFake } from '../support/mattermost-fake';
import { freePort, motoRecorder, type RecordedMotoRequest } from '../support/moto';
import { isWrite } from '../support/writes';

const endpoint = inject('motoEndpoint');
const s3 = s3Client();
const lambda = lambdaClient();

const ADMIN_TOKEN = 'auto-deploy-admin-token-0123456789';
const MM_TOKEN = 'auto-deploy-mattermost-token';
const VERSION = 'v1.0.0';
const RECORD_KEY = /^deployments\/[0-9a-f-]{36}\.json$/;

let dir: string;
let account: PreparedAccount;
let mm: MattermostFake;
let webhook: WebhookRecorder;

// ---------------------------------------------------------------------------------------------------------------------
// Helpers

interface WebhookRecorder {
  url: string;
  messages: string[];
  close(): Promise<void>;
}

/** A Mattermost incoming webhook stand-in: keeps the `text` of every JSON post. */
async function startWebhookRecorder(): Promise<WebhookRecorder> {
  const messages: string[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      messages.push((JSON.parse(Buffer.concat(chunks).toString('utf8')) as { text: string }).text);
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('ok');
    });
  });
  server.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/deploys`,
    messages,
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

const ENV_KEYS = [
  'MM_APPS_S3_BUCKET', 'APPS_DEPLOYER_ADMIN_TOKEN', 'APPS_DEPLOYER_STATUS_TOKEN', 'MM_SERVICESETTINGS_SITEURL', 'MM_ADMIN_TOKEN',
  'APPS_DEPLOYER_WEBHOOK_URL', 'APPS_DEPLOYER_AUTO_INSTALL', 'APPS_DEPLOYER_MAX_BUNDLE_BYTES', 'APPS_DEPLOYER_WORKER_FUNCTION',
];
const savedEnv = Object.fromEntries(ENV_KEYS.map((k) => [k, process.env[k]]));

/** The control plane's environment for the next invocation; undefined unsets. getRuntime reads it once, hence the reset. */
function configure(overrides: Record<string, string | undefined> = {}): void {
  const env: Record<string, string | undefined> = {
    MM_APPS_S3_BUCKET: account.bucket,
    APPS_DEPLOYER_ADMIN_TOKEN: ADMIN_TOKEN,
    MM_SERVICESETTINGS_SITEURL: mm.url,
    MM_ADMIN_TOKEN: MM_TOKEN,
    APPS_DEPLOYER_WEBHOOK_URL: webhook.url,
    APPS_DEPLOYER_AUTO_INSTALL: 'false',
    APPS_DEPLOYER_MAX_BUNDLE_BYTES: undefined,
    ...overrides,
  };
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  resetRuntime();
}

const manifest = (appId: string, extra: Record<string, unknown> = {}) => ({
  app_id: appId,
  version: VERSION,
  display_name: `Auto ${appId}`,
  homepage_url: 'https://example.com/auto',
  requested_permissions: ['act_as_bot'],
  aws_lambda: { functions: [{ path: '/', name: 'main', handler: 'index.handler', runtime: 'nodejs22.x' }] },
  ...extra,
});

const MAIN_CODE = 'exports.handler = async () => ({ statusCode: 200, body: "{}" });\n';

async function bundleFor(appId: string, opts: { code?: string; statics?: Record<string, string | Buffer>; manifest?: object } = {}): Promise<Buffer> {
  const path = await buildBundle(dir, {
    fileName: `${appId}-${randomBytes(4).toString('hex')}.zip`,
    manifest: opts.manifest ?? manifest(appId),
    functions: { 'main.zip': { 'index.js': opts.code ?? MAIN_CODE } },
    statics: opts.statics ?? { 'hello.txt': `hello from ${appId}` },
  });
  return readFile(path);
}

interface Upload {
  key: string;
  size: number;
  /** As S3 events carry it: without the quotes of the HTTP header. */
  etag: string;
  versionId?: string;
}

async function upload(key: string, body: Buffer, tagging?: string): Promise<Upload> {
  const res = await s3.send(new PutObjectCommand({ Bucket: account.bucket, Key: key, Body: body, ContentType: 'application/zip', ...(tagging ? { Tagging: tagging } : {}) }));
  return { key, size: body.length, etag: res.ETag!.replace(/"/g, ''), ...(res.VersionId ? { versionId: res.VersionId } : {}) };
}

/** S3 event keys are URL-encoded form-style: `+` for a space, `/` kept. */
const eventKey = (key: string) => key.split('/').map((s) => encodeURIComponent(s).replace(/%20/g, '+')).join('/');

let sequence = 0x0055aed6dcd90281e5n;
/** S3's sequencer: a hex string that grows with each change of a key. */
const nextSequencer = () => (sequence += 1n).toString(16).toUpperCase().padStart(18, '0');

function s3Record(u: Upload, overrides: { eventName?: string; bucket?: string; sequencer?: string } = {}): S3EventRecord {
  const bucket = overrides.bucket ?? account.bucket;
  return {
    eventVersion: '2.1',
    eventSource: 'aws:s3',
    awsRegion: 'us-east-1',
    eventTime: new Date().toISOString(),
    eventName: (overrides.eventName ?? 'ObjectCreated:Put') as S3EventRecord['eventName'],
    userIdentity: { principalId: 'AWS:AIDAEXAMPLEUPLOADER' },
    requestParameters: { sourceIPAddress: '127.0.0.1' },
    responseElements: { 'x-amz-request-id': randomBytes(8).toString('hex').toUpperCase(), 'x-amz-id-2': randomBytes(32).toString('base64') },
    s3: {
      s3SchemaVersion: '1.0',
      configurationId: 'apps-deployer-auto-deploy',
      bucket: { name: bucket, ownerIdentity: { principalId: 'A3NL1KOZZKEXAMPLE' }, arn: `arn:aws:s3:::${bucket}` },
      object: {
        key: eventKey(u.key),
        size: u.size,
        eTag: u.etag,
        ...(u.versionId ? { versionId: u.versionId } : {}),
        sequencer: overrides.sequencer ?? nextSequencer(),
      },
    },
  };
}

const s3Event = (...records: S3EventRecord[]): S3Event => ({ Records: records });
const context = { awsRequestId: 'auto-deploy-test', functionName: 'apps-deployer-auto-deploy', getRemainingTimeInMillis: () => 900_000 } as unknown as Context;

async function deliver(event: S3Event): Promise<BundleEventOutcome[]> {
  return (await handler(event, context)) as BundleEventOutcome[];
}

async function keys(prefix: string): Promise<string[]> {
  const res = await s3.send(new ListObjectsV2Command({ Bucket: account.bucket, Prefix: prefix }));
  return (res.Contents ?? []).map((o) => o.Key!).sort();
}

/** Deployment records only: not the claims, app summaries or app locks kept beside them. */
async function deploymentRecordKeys(): Promise<string[]> {
  return (await keys('deployments/')).filter((k) => RECORD_KEY.test(k));
}

async function tagsOf(key: string): Promise<Record<string, string>> {
  const res = await s3.send(new GetObjectTaggingCommand({ Bucket: account.bucket, Key: key }));
  return Object.fromEntries((res.TagSet ?? []).map((t) => [t.Key!, t.Value!]));
}

async function exists(key: string): Promise<boolean> {
  try {
    await s3.send(new HeadObjectCommand({ Bucket: account.bucket, Key: key }));
    return true;
  } catch {
    return false;
  }
}

async function functionConfig(appId: string) {
  return lambda.send(new GetFunctionConfigurationCommand({ FunctionName: lambdaName(appId, VERSION, 'main') }));
}

async function getJson(h: (e: APIGatewayProxyEventV2, c: Context) => Promise<unknown>, routeKey: string, rawPath: string, pathParameters: Record<string, string>) {
  const event = {
    version: '2.0',
    routeKey,
    rawPath,
    rawQueryString: '',
    headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    requestContext: { http: { method: 'GET', path: rawPath } },
    pathParameters,
    isBase64Encoded: false,
  } as unknown as APIGatewayProxyEventV2;
  const res = (await h(event, context)) as APIGatewayProxyStructuredResultV2;
  return { status: res.statusCode, body: JSON.parse(String(res.body)) as unknown };
}

/** `GET /deployments/{id}`, checked against the documented response schema (openapi.json): nothing missing, nothing extra. */
async function deploymentRecord(id: string): Promise<DeploymentRecord> {
  const res = await getJson(deploymentStatusHandler, 'GET /deployments/{id}', `/deployments/${id}`, { id });
  expect(res.status).toBe(200);
  // zod drops unknown keys: equality after parsing proves there were none, at any depth.
  expect(deploymentRecordSchema.parse(res.body)).toEqual(res.body);
  return res.body as DeploymentRecord;
}

function recording<T>(fn: () => Promise<T>): Promise<{ value: T; requests: RecordedMotoRequest[] }> {
  return motoRecorder.record(endpoint, fn);
}

/** GetObject of that very object (not its tagging): reading the bundle. */
const readsOf = (requests: RecordedMotoRequest[], key: string) =>
  requests.filter((r) => r.service === 's3' && r.method === 'GET' && !r.query.has('tagging') && decodeURIComponent(r.path) === `/${account.bucket}/${key}`);

const listingCalls = () => mm.requests.filter((r) => r.path === UPDATE_APP_LISTING_PATH);

// ---------------------------------------------------------------------------------------------------------------------

beforeAll(async () => {
  // The file starts on an empty moto (integration-setup.ts) and keeps it: a reset per test would reload ~1,000 managed
  // policies each time. Each test uses its own app and keys instead, and starts from no deployment records.
  account = await prepareAccount();
  dir = await mkdtemp(join(tmpdir(), 'auto-deploy-test-'));
  mm = await startMattermostFake({ token: MM_TOKEN });
  webhook = await startWebhookRecorder();
});

afterAll(async () => {
  for (const [k, v] of Object.entries(savedEnv)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  resetRuntime();
  await mm?.close();
  await webhook?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

beforeEach(async () => {
  const old = await keys('deployments/');
  if (old.length > 0) await s3.send(new DeleteObjectsCommand({ Bucket: account.bucket, Delete: { Objects: old.map((Key) => ({ Key })) } }));
  mm.requests.length = 0;
  webhook.messages.length = 0;
  configure();
});

describe('auto-deploy: a bundle uploaded under bundles/', () => {
  it('is deployed, listed in Mattermost, announced on the webhook and tagged deployed=true', async () => {
    // Prepare
    const appId = 'auto-basic';
    const u = await upload(`bundles/${appId}.zip`, await bundleFor(appId), 'owner=alice&team=apps');

    // Act
    const { value: outcomes, requests } = await recording(() => deliver(s3Event(s3Record(u))));

    // Assess: the outcome and the AWS side
    expect(outcomes).toEqual([{ status: 'deployed', deploymentId: expect.stringMatching(/^[0-9a-f-]{36}$/) }]);
    const id = (outcomes[0] as { deploymentId: string }).deploymentId;
    // The plan's reads, started from the bundle's preview, are made once: one GetFunction before the create, and none
    // after it, since moto answers the create Active (Lambda answers Pending, and is then polled).
    expect(requests.filter((r) => r.service === 'lambda' && r.method === 'GET')).toHaveLength(1);
    expect(await functionConfig(appId)).toMatchObject({ State: 'Active', Handler: 'index.handler', Runtime: 'nodejs22.x', Role: account.roleArn });
    expect(await exists(manifestKey(appId, VERSION))).toBe(true);
    expect(await exists(`static/${appId}_${VERSION}_app/hello.txt`)).toBe(true);
    // Assess: Mattermost and the webhook
    expect(mm.requests.map((r) => r.path)).toEqual([UPDATE_APP_LISTING_PATH]);
    expect(mm.requests[0]!.headers.authorization).toBe(`BEARER ${MM_TOKEN}`);
    expect(mm.requests[0]!.body).toMatchObject({ app_id: appId, version: VERSION, add_deploys: ['aws_lambda'] });
    expect(webhook.messages).toHaveLength(1);
    expect(webhook.messages[0]).toMatch(/^:white_check_mark: /);
    expect(webhook.messages[0]).toContain(`${appId} ${VERSION}`);
    expect(webhook.messages[0]).toContain(`Auto ${appId}`);
    // Assess: the object keeps its tags and gains deployed=true
    expect(await tagsOf(u.key)).toEqual({ owner: 'alice', team: 'apps', deployed: 'true' });
    // Assess: the record and the app, as the GET routes answer them
    expect(await deploymentRecordKeys()).toEqual([`deployments/${id}.json`]);
    const record = await deploymentRecord(id);
    expect(record).toMatchObject({
      state: 'succeeded',
      source: 's3-event',
      bundle: { bucket: account.bucket, key: u.key, etag: u.etag },
      options: { install: false, update: true },
      app: { appId, version: VERSION },
      result: { appId, version: VERSION, listed: true, installed: false },
    });
    const status = await getJson(appStatusHandler, 'GET /apps/{appId}', `/apps/${appId}`, { appId });
    expect(status.status).toBe(200);
    expect(appStatusResponse.parse(status.body)).toEqual(status.body);
    expect(status.body).toMatchObject({ appId, listedVersion: VERSION, installed: false, lastDeployment: { id, state: 'succeeded' }, versions: [{ version: VERSION, complete: true }] });
  });

  it('is also installed when APPS_DEPLOYER_AUTO_INSTALL=true', async () => {
    // Prepare
    configure({ APPS_DEPLOYER_AUTO_INSTALL: 'true' });
    const appId = 'auto-install';
    const u = await upload(`bundles/${appId}.zip`, await bundleFor(appId));

    // Act
    const outcomes = await deliver(s3Event(s3Record(u)));

    // Assess
    expect(outcomes).toMatchObject([{ status: 'deployed' }]);
    expect(mm.requests.map((r) => r.path)).toEqual([UPDATE_APP_LISTING_PATH, INSTALL_APP_PATH]);
    expect(mm.requests[1]!.body).toEqual({ app_id: appId, deploy_type: 'aws_lambda', remote_oauth2: {} });
    expect(mm.installed.has(appId)).toBe(true);
    const record = await deploymentRecord((outcomes[0] as { deploymentId: string }).deploymentId);
    expect(record).toMatchObject({ options: { install: true }, result: { installed: true } });
    expect(webhook.messages[0]).toContain('and installed');
  });

  it('has its URL-encoded key decoded: "bundles/my+app.zip" is the object "bundles/my app.zip"', async () => {
    // Prepare
    const appId = 'auto-spaces';
    const u = await upload('bundles/my app.zip', await bundleFor(appId));
    const record = s3Record(u);

    // Act
    const outcomes = await deliver(s3Event(record));

    // Assess
    expect(record.s3.object.key).toBe('bundles/my+app.zip');
    expect(outcomes).toMatchObject([{ status: 'deployed' }]);
    expect(await functionConfig(appId)).toMatchObject({ State: 'Active' });
    expect((await deploymentRecord((outcomes[0] as { deploymentId: string }).deploymentId)).bundle.key).toBe('bundles/my app.zip');
    expect(await tagsOf('bundles/my app.zip')).toEqual({ deployed: 'true' });
  });

  it('is deployed even when the webhook cannot be reached', async () => {
    // Prepare
    configure({ APPS_DEPLOYER_WEBHOOK_URL: `http://127.0.0.1:${await freePort()}/hooks/nobody-listens` });
    const appId = 'auto-no-webhook';
    const u = await upload(`bundles/${appId}.zip`, await bundleFor(appId));

    // Act
    const outcomes = await deliver(s3Event(s3Record(u)));

    // Assess
    expect(outcomes).toMatchObject([{ status: 'deployed' }]);
    expect((await deploymentRecord((outcomes[0] as { deploymentId: string }).deploymentId)).state).toBe('succeeded');
    expect(await functionConfig(appId)).toMatchObject({ State: 'Active' });
    expect(listingCalls()).toHaveLength(1);
    expect(await tagsOf(u.key)).toEqual({ deployed: 'true' });
  });
});

describe('auto-deploy: at-least-once delivery', () => {
  it.each([
    { delivery: 'ten invocations at once with the same record', appId: 'auto-dupes-parallel', mode: 'parallel' as const },
    { delivery: 'one event carrying ten identical records', appId: 'auto-dupes-batch', mode: 'batch' as const },
  ])('deploys once for $delivery', async ({ appId, mode }) => {
    // Prepare
    const u = await upload(`bundles/${appId}.zip`, await bundleFor(appId));
    const record = s3Record(u);

    // Act
    const outcomes =
      mode === 'parallel'
        ? (await Promise.all(Array.from({ length: 10 }, () => deliver(s3Event(record))))).flat()
        : await deliver(s3Event(...Array.from({ length: 10 }, () => record)));

    // Assess
    expect(outcomes).toHaveLength(10);
    expect(outcomes.filter((o) => o.status === 'deployed')).toHaveLength(1);
    expect(outcomes.filter((o) => o.status === 'duplicate')).toHaveLength(9);
    expect(await deploymentRecordKeys()).toHaveLength(1);
    expect(listingCalls()).toHaveLength(1);
    expect(webhook.messages).toHaveLength(1);
    expect(await keys('deployments/claims/')).toHaveLength(1);
  });

  it('deploys a re-upload of the same key again (new ETag and sequencer), and ignores the first upload\'s late redelivery', async () => {
    // Prepare
    const appId = 'auto-reupload';
    const key = `bundles/${appId}.zip`;
    const first = await upload(key, await bundleFor(appId));
    const firstRecord = s3Record(first);
    const firstOutcome = await deliver(s3Event(firstRecord));
    const newCode = 'exports.handler = async () => ({ statusCode: 200, body: "{\\"v\\":2}" });\n';
    const second = await upload(key, await bundleFor(appId, { code: newCode }));

    // Act
    const secondOutcome = await deliver(s3Event(s3Record(second)));
    const late = await deliver(s3Event(firstRecord));

    // Assess
    expect(second.etag).not.toBe(first.etag);
    expect(firstOutcome).toMatchObject([{ status: 'deployed' }]);
    expect(secondOutcome).toMatchObject([{ status: 'deployed' }]);
    expect(late).toMatchObject([{ status: 'duplicate' }]);
    const ids = [...firstOutcome, ...secondOutcome].map((o) => (o as { deploymentId: string }).deploymentId);
    expect(new Set(ids).size).toBe(2);
    expect((await deploymentRecordKeys()).sort()).toEqual(ids.map((id) => `deployments/${id}.json`).sort());
    const secondRecord = await deploymentRecord(ids[1]!);
    expect(secondRecord).toMatchObject({ state: 'succeeded', bundle: { etag: second.etag } });
    expect(secondRecord.result!.functions).toMatchObject([{ name: 'main', action: 'update', changes: ['code'] }]);
    expect((await functionConfig(appId)).CodeSha256).toBe(createHash('sha256').update(await buildZip({ 'index.js': newCode })).digest('base64'));
    expect(listingCalls()).toHaveLength(2);
  });
});

describe('auto-deploy: bundles that are refused', () => {
  it('refuses an object over APPS_DEPLOYER_MAX_BUNDLE_BYTES by its size, without reading it or touching Lambda', async () => {
    // Prepare
    configure({ APPS_DEPLOYER_MAX_BUNDLE_BYTES: '1000' });
    const appId = 'auto-oversized';
    const body = await bundleFor(appId, { statics: { 'noise.bin': randomBytes(4096) } });
    const u = await upload(`bundles/${appId}.zip`, body);

    // Act
    const { value: outcomes, requests } = await recording(() => deliver(s3Event(s3Record(u))));

    // Assess: refused, recorded and reported
    expect(body.length).toBeGreaterThan(1000);
    expect(outcomes).toEqual([{ status: 'rejected', deploymentId: expect.any(String), reason: expect.stringContaining('over the bundle limit of 1000 bytes') }]);
    const record = await deploymentRecord((outcomes[0] as { deploymentId: string }).deploymentId);
    expect(record).toMatchObject({ state: 'failed', error: { code: 'BUNDLE_LIMIT_EXCEEDED', message: `${u.key} is ${body.length} bytes, over the bundle limit of 1000 bytes` } });
    expect(webhook.messages).toHaveLength(1);
    expect(webhook.messages[0]).toMatch(/^:x: /);
    expect(webhook.messages[0]).toContain('over the bundle limit of 1000 bytes');
    // Assess: nothing read, nothing deployed, nobody called (the recorder did see the record being written)
    expect(requests.some((r) => isWrite(r) && decodeURIComponent(r.path).startsWith(`/${account.bucket}/deployments/`))).toBe(true);
    expect(readsOf(requests, u.key)).toEqual([]);
    expect(requests.filter((r) => r.service === 'lambda' && isWrite(r))).toEqual([]);
    expect(requests.filter((r) => isWrite(r) && !decodeURIComponent(r.path).startsWith(`/${account.bucket}/deployments/`)).map((r) => `${r.method} ${r.path}`)).toEqual([]);
    expect(mm.requests).toEqual([]);
    expect(await tagsOf(u.key)).toEqual({});
  });

  it('records every problem of an invalid bundle, reports it on the webhook, and deploys and lists nothing', async () => {
    // Prepare
    const appId = 'auto-invalid';
    const { homepage_url: _missing, ...withoutHomepage } = manifest(appId);
    const invalid = { ...withoutHomepage, aws_lambda: { functions: [{ path: '/', name: 'main', handler: '', runtime: 'nodejs22.x' }] } };
    const u = await upload(`bundles/${appId}.zip`, await bundleFor(appId, { manifest: invalid }));

    // Act
    const { value: outcomes, requests } = await recording(() => deliver(s3Event(s3Record(u))));

    // Assess: the record holds the error with one detail per problem
    expect(outcomes).toEqual([{ status: 'failed', deploymentId: expect.any(String) }]);
    const record = await deploymentRecord((outcomes[0] as { deploymentId: string }).deploymentId);
    expect(record.state).toBe('failed');
    expect(record.error).toMatchObject({ code: 'BUNDLE_VALIDATION_FAILED', message: expect.stringContaining('is not a valid Mattermost App') });
    const paths = record.error!.details.map((d) => d.path ?? '');
    expect(paths).toContain('manifest.json: homepage_url');
    expect(paths.some((p) => p.startsWith('manifest.json: aws_lambda') && p.endsWith('handler'))).toBe(true);
    // Assess: the webhook names the error and its problems
    expect(webhook.messages).toHaveLength(1);
    expect(webhook.messages[0]).toMatch(/^:x: Mattermost apps deployment failed: /);
    expect(webhook.messages[0]).toContain('is not a valid Mattermost App');
    expect(webhook.messages[0]).toContain('homepage_url');
    // Assess: the bundle was read (to be validated), and nothing deployed, Mattermost not called, the object not marked
    expect(readsOf(requests, u.key).length).toBeGreaterThan(0);
    expect(requests.filter((r) => r.service === 'lambda' && isWrite(r))).toEqual([]);
    expect(requests.filter((r) => isWrite(r) && !decodeURIComponent(r.path).startsWith(`/${account.bucket}/deployments/`)).map((r) => `${r.method} ${r.path}`)).toEqual([]);
    expect(await exists(manifestKey(appId, VERSION))).toBe(false);
    expect(mm.requests).toEqual([]);
    expect(await tagsOf(u.key)).toEqual({});
  });
});

describe('auto-deploy: events that are not bundle uploads', () => {
  it.each([
    { case: 'a key outside bundles/', key: 'uploads/auto-outside.zip', eventName: 'ObjectCreated:Put', bucket: undefined },
    { case: 'a key that is not a .zip', key: 'bundles/auto-tarball.tar.gz', eventName: 'ObjectCreated:Put', bucket: undefined },
    { case: 'a deletion', key: 'bundles/auto-removed.zip', eventName: 'ObjectRemoved:Delete', bucket: undefined },
    { case: 'a tagging change', key: 'bundles/auto-tagged.zip', eventName: 'ObjectTagging:Put', bucket: undefined },
    { case: 'another bucket', key: 'bundles/auto-elsewhere.zip', eventName: 'ObjectCreated:Put', bucket: 'some-other-bucket' },
  ])('ignores $case', async ({ key, eventName, bucket }) => {
    // Prepare
    const u = await upload(key, await bundleFor('auto-ignored'));

    // Act
    const outcomes = await deliver(s3Event(s3Record(u, { eventName, ...(bucket ? { bucket } : {}) })));

    // Assess
    expect(outcomes).toEqual([{ status: 'ignored', reason: expect.any(String) }]);
    expect(await keys('deployments/')).toEqual([]);
    expect(mm.requests).toEqual([]);
    expect(webhook.messages).toEqual([]);
    expect(await tagsOf(key)).toEqual({});
  });
});
