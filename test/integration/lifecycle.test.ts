// The app lifecycle after deploy: list, rollback, undeploy, prune (src/core/lifecycle.ts) and reconcile
// (src/core/reconcile.ts), through the CLI and the HTTP handlers, against moto and the Mattermost fake.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { CreateFunctionCommand, DeleteFunctionCommand, GetFunctionConfigurationCommand } from '@aws-sdk/client-lambda';
import { GetObjectCommand, GetObjectTaggingCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { AttachRolePolicyCommand, CreatePolicyCommand, CreatePolicyVersionCommand, CreateRoleCommand, GetPolicyVersionCommand, ListPolicyVersionsCommand } from '@aws-sdk/client-iam';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { iamClient, lambdaClient, s3Client, TEST_ACCOUNT_ID } from '../support/aws';
import { prepareAccount, type PreparedAccount } from '../support/account';
import { buildBundle, buildZip } from '../support/bundle-builder';
import { appsctl } from '../support/cli';
import { startMattermostFake, UPDATE_APP_LISTING_PATH, type MattermostFake } from '../support/mattermost-fake';
import { motoRecorder, resetMoto } from '../support/moto';
import { describeRequests, isWrite } from '../support/writes';
import { DEFAULTS } from '../../src/core/config';
import type { AppListing, PruneResult, UndeployResult } from '../../src/core/lifecycle';
import { lifecycleContext, undeploy } from '../../src/core/lifecycle';
import { EXECUTE_ROLE_TRUST_POLICY, IAM_POLICY_MAX_CHARS, initialInvokePolicy, renderPolicy } from '../../src/core/policy';
import type { ReconcileResult } from '../../src/core/reconcile';
import { makeDeployPorts } from '../../src/adapters/ports';
import { resetRuntime } from '../../src/handlers/http/runtime';
import { handler as appsListHandler } from '../../src/handlers/apps-list';
import { handler as rollbackHandler } from '../../src/handlers/app-rollback';
import { handler as undeployHandler } from '../../src/handlers/app-undeploy';
import { handler as reconcileHandler } from '../../src/handlers/reconcile';
import { silentLogger } from '../../src/core/logger';

const endpoint = inject('motoEndpoint');
const MM_TOKEN = 'mm-admin-token-for-lifecycle-tests';
const ADMIN_TOKEN = 'lifecycle-admin-token-0123456789abcdef';
const APP = 'hello-deployer';
const s3 = s3Client();
const lambda = lambdaClient();
const iam = iamClient();

let dir: string;
let mm: MattermostFake;
let account: PreparedAccount;
let env: Record<string, string>;

const manifest = (version: string) => ({
  app_id: APP,
  version,
  display_name: 'Hello Deployer',
  homepage_url: 'https://example.com/hello',
  icon: 'icon.png',
  requested_permissions: ['act_as_bot'],
  requested_locations: ['/command'],
  aws_lambda: {
    functions: [
      { path: '/', name: 'main', handler: 'index.handler', runtime: 'nodejs22.x' },
      { path: '/webhook', name: 'webhook', handler: 'app.handler', runtime: 'python3.12' },
    ],
  },
});

async function bundle(version: string, fileName = `${version}.zip`): Promise<string> {
  return buildBundle(dir, {
    fileName,
    manifest: manifest(version),
    functions: {
      'main.zip': { 'index.js': `exports.handler = async () => ({ statusCode: 200, body: "${version}" });\n` },
      'webhook.zip': { 'app.py': 'def handler(event, context):\n    return {"statusCode": 200, "body": "{}"}\n' },
    },
    statics: { 'icon.png': Buffer.from('89504e470d0a1a0a', 'hex'), 'read me.txt': `about ${version}` },
  });
}

async function deployVersions(...versions: string[]): Promise<void> {
  for (const v of versions) {
    const run = await appsctl(['aws', 'deploy', await bundle(v)], env);
    expect(run.code, run.stderr).toBe(0);
  }
}

const lambdaNameOf = (version: string, fn: string) => `${APP}_${version.replaceAll('.', '-')}_${fn}`;
const arnOf = (name: string) => `arn:aws:lambda:us-east-1:${TEST_ACCOUNT_ID}:function:${name}`;

async function listKeys(prefix = ''): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const res = await s3.send(new ListObjectsV2Command({ Bucket: account.bucket, Prefix: prefix, ...(token ? { ContinuationToken: token } : {}) }));
    keys.push(...(res.Contents ?? []).map((o) => o.Key!));
    token = res.NextContinuationToken;
  } while (token);
  return keys.sort();
}

/** What a version owns in the bucket, by the server's naming rules. */
const versionKeys = (keys: string[], version: string) =>
  keys.filter(
    (k) =>
      k === `manifests/${APP}_${version}.json` ||
      k.startsWith(`static/${APP}_${version}_app/`) ||
      k.startsWith(`functions/${lambdaNameOf(version, 'main')}/`) ||
      k.startsWith(`functions/${lambdaNameOf(version, 'webhook')}/`),
  );

async function functionExists(name: string): Promise<boolean> {
  try {
    await lambda.send(new GetFunctionConfigurationCommand({ FunctionName: name }));
    return true;
  } catch (err) {
    if ((err as Error).name === 'ResourceNotFoundException') return false;
    throw err;
  }
}

async function policyDocument(): Promise<string> {
  const versions = await iam.send(new ListPolicyVersionsCommand({ PolicyArn: account.policyArn }));
  const def = versions.Versions!.find((v) => v.IsDefaultVersion)!;
  const res = await iam.send(new GetPolicyVersionCommand({ PolicyArn: account.policyArn, VersionId: def.VersionId }));
  const doc = res.PolicyVersion!.Document!;
  return doc.startsWith('{') ? doc : decodeURIComponent(doc);
}

async function invokeArns(): Promise<string[]> {
  const doc = JSON.parse(await policyDocument()) as { Statement: Array<{ Sid: string; Resource: string[] }> };
  return doc.Statement.find((s) => s.Sid === 'AllowLambda')?.Resource ?? [];
}

async function recordWrites<T>(fn: () => Promise<T>): Promise<{ value: T; writes: string[] }> {
  const { value, requests } = await motoRecorder.record(endpoint, fn);
  return { value, writes: describeRequests(requests.filter(isWrite)) };
}

async function listJson(prefix?: string): Promise<AppListing[]> {
  const run = await appsctl(['aws', 'list', ...(prefix === undefined ? [] : [prefix]), '--json'], env);
  expect(run.code, run.stderr).toBe(0);
  return (JSON.parse(run.stdout) as { apps: AppListing[] }).apps;
}

// ---------- HTTP handlers, invoked as API Gateway (HTTP API, payload 2.0) would ----------

function apiEvent(method: string, routeKey: string, path: string, opts: { params?: Record<string, string>; query?: Record<string, string>; body?: unknown; token?: string } = {}): APIGatewayProxyEventV2 {
  return {
    version: '2.0',
    routeKey: `${method} ${routeKey}`,
    rawPath: path,
    rawQueryString: new URLSearchParams(opts.query ?? {}).toString(),
    headers: { authorization: `Bearer ${opts.token ?? ADMIN_TOKEN}`, ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(opts.query ? { queryStringParameters: opts.query } : {}),
    ...(opts.params ? { pathParameters: opts.params } : {}),
    requestContext: { http: { method, path } },
    ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
    isBase64Encoded: false,
  } as unknown as APIGatewayProxyEventV2;
}

const lambdaContext = { awsRequestId: 'lifecycle-test-request', getRemainingTimeInMillis: () => 900_000 } as unknown as Context;

async function invoke(h: (e: APIGatewayProxyEventV2, c: Context) => Promise<unknown>, event: APIGatewayProxyEventV2): Promise<{ status: number; body: any }> {
  const res = (await h(event, lambdaContext)) as APIGatewayProxyStructuredResultV2;
  return { status: res.statusCode!, body: JSON.parse(String(res.body)) };
}

// ---------- A webhook that records what it is told ----------

interface Webhook {
  url: string;
  texts: string[];
  close(): Promise<void>;
}

async function startWebhook(): Promise<Webhook> {
  const texts: string[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      texts.push((JSON.parse(Buffer.concat(chunks).toString('utf8')) as { text: string }).text);
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    });
  });
  server.listen(0, '127.0.0.1');
  await new Promise<void>((resolve) => server.once('listening', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/test`,
    texts,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const ENV_KEYS = ['APPS_DEPLOYER_ADMIN_TOKEN', 'MM_SERVICESETTINGS_SITEURL', 'MM_ADMIN_TOKEN', 'APPS_DEPLOYER_WEBHOOK_URL', 'MM_APPS_S3_BUCKET'];
const savedEnv = Object.fromEntries(ENV_KEYS.map((k) => [k, process.env[k]]));

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lifecycle-test-'));
  mm = await startMattermostFake({ token: MM_TOKEN });
  env = { MM_SERVICESETTINGS_SITEURL: mm.url, MM_ADMIN_TOKEN: MM_TOKEN };
  // The handlers read their configuration from the environment, as on Lambda.
  Object.assign(process.env, { APPS_DEPLOYER_ADMIN_TOKEN: ADMIN_TOKEN, MM_SERVICESETTINGS_SITEURL: mm.url, MM_ADMIN_TOKEN: MM_TOKEN, MM_APPS_S3_BUCKET: DEFAULTS.bucket });
  delete process.env.APPS_DEPLOYER_WEBHOOK_URL;
  resetRuntime();
});

afterAll(async () => {
  for (const [k, v] of Object.entries(savedEnv)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  resetRuntime();
  await mm.close();
  await rm(dir, { recursive: true, force: true });
});

beforeEach(async () => {
  await resetMoto(endpoint);
  account = await prepareAccount();
  mm.reset();
});

describe('appsctl aws list / GET /apps', () => {
  it('shows every version newest first, its functions and their state, and which version Mattermost lists', async () => {
    // Prepare
    await deployVersions('v1', 'v2');

    // Act
    const apps = await listJson();
    const text = await appsctl(['aws', 'list'], env);

    // Assess
    expect(apps).toHaveLength(1);
    const app = apps[0]!;
    expect(app).toMatchObject({ appId: APP, listedVersion: 'v2', listedVersionSource: 'record', installed: false });
    expect(app.versions.map((v) => [v.version, v.listed, v.complete])).toEqual([
      ['v2', true, true],
      ['v1', false, true],
    ]);
    expect(app.versions[1]!.functions).toEqual([
      { name: 'main', lambdaName: lambdaNameOf('v1', 'main'), exists: true, arn: arnOf(lambdaNameOf('v1', 'main')), state: 'Active', lastUpdateStatus: 'Successful', runtime: 'nodejs22.x' },
      { name: 'webhook', lambdaName: lambdaNameOf('v1', 'webhook'), exists: true, arn: arnOf(lambdaNameOf('v1', 'webhook')), state: 'Active', lastUpdateStatus: 'Successful', runtime: 'python3.12' },
    ]);
    expect(app.versions[0]!.manifestKey).toBe(`manifests/${APP}_v2.json`);
    expect(Date.parse(app.versions[0]!.deployedAt!)).not.toBeNaN();
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toContain(`${APP} (listed: v2)\n  v2  listed  complete  deployed `);
    expect(text.stdout).toMatch(new RegExp(`\\n    main     ${lambdaNameOf('v1', 'main')}  Active/Successful\\n`));
  });

  it.each([
    { prefix: 'hello', found: [APP] },
    { prefix: APP, found: [APP] },
    { prefix: 'other', found: [] },
  ])('with prefix "$prefix" finds $found', async ({ prefix, found }) => {
    // Prepare
    await deployVersions('v1');

    // Act
    const apps = await listJson(prefix);

    // Assess
    expect(apps.map((a) => a.appId)).toEqual(found);
  });

  it('marks a version whose function was deleted as incomplete, with the reason', async () => {
    // Prepare
    await deployVersions('v1');
    await lambda.send(new DeleteFunctionCommand({ FunctionName: lambdaNameOf('v1', 'webhook') }));

    // Act
    const [app] = await listJson();

    // Assess
    expect(app!.versions[0]).toMatchObject({ version: 'v1', complete: false, problems: [`function webhook (${lambdaNameOf('v1', 'webhook')}) does not exist`] });
    expect(app!.versions[0]!.functions[1]).toEqual({ name: 'webhook', lambdaName: lambdaNameOf('v1', 'webhook'), exists: false });
  });

  it('GET /apps answers the same listing, with the status token too', async () => {
    // Prepare
    await deployVersions('v1', 'v2');

    // Act
    const res = await invoke(appsListHandler as never, apiEvent('GET', '/apps', '/apps', { query: { prefix: 'hello' } }));
    const refused = await invoke(appsListHandler as never, apiEvent('GET', '/apps', '/apps', { query: { prefix: 'no spaces' } }));

    // Assess
    expect(res.status).toBe(200);
    expect(res.body.apps).toEqual(await listJson());
    expect(refused.status).toBe(400);
    expect(refused.body.error.details[0].path).toBe('query.prefix');
  });
});

describe('appsctl aws rollback / POST /apps/{appId}/rollback', () => {
  it('lists a complete earlier version again, with the request body of a deploy (Replace false, add_deploys)', async () => {
    // Prepare
    await deployVersions('v1', 'v2');
    mm.requests.length = 0;

    // Act
    const run = await appsctl(['aws', 'rollback', APP, 'v1'], env);

    // Assess
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toBe(`'${APP}' v1 is listed in Mattermost again (instead of v2).\n`);
    expect(mm.requests.map((r) => r.path)).toEqual([UPDATE_APP_LISTING_PATH]);
    expect(mm.requests[0]!.headers.authorization).toBe(`BEARER ${MM_TOKEN}`);
    expect(mm.requests[0]!.body).toEqual({ ...manifest('v1'), Replace: false, add_deploys: ['aws_lambda'] });
    expect(mm.listed.get(APP)).toMatchObject({ version: 'v1' });
    const [app] = await listJson();
    expect(app).toMatchObject({ listedVersion: 'v1', listedVersionSource: 'record' });
    expect(app!.versions.find((v) => v.listed)!.version).toBe('v1');
  });

  it('refuses a version that is not complete, with the reason, and lists nothing', async () => {
    // Prepare
    await deployVersions('v1', 'v2');
    await lambda.send(new DeleteFunctionCommand({ FunctionName: lambdaNameOf('v1', 'main') }));
    mm.requests.length = 0;

    // Act
    const run = await appsctl(['aws', 'rollback', APP, 'v1'], env);
    const api = await invoke(rollbackHandler as never, apiEvent('POST', '/apps/{appId}/rollback', `/apps/${APP}/rollback`, { params: { appId: APP }, body: { version: 'v1' } }));

    // Assess
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`cannot roll back ${APP} to v1: the version is not completely deployed: function main (${lambdaNameOf('v1', 'main')}) does not exist`);
    expect(api.status).toBe(409);
    expect(api.body.error.details).toEqual([{ message: `function main (${lambdaNameOf('v1', 'main')}) does not exist` }]);
    expect(mm.requests).toEqual([]);
    expect(mm.listed.get(APP)).toMatchObject({ version: 'v2' });
  });

  it.each([
    { case: 'a version that was never deployed', version: 'v9', status: 404, message: `${APP} v9 is not deployed` },
    { case: 'an invalid version', version: 'v 1', status: 400, message: 'invalid request body' },
  ])('answers $status to $case', async ({ version, status, message }) => {
    // Prepare
    await deployVersions('v1');

    // Act
    const res = await invoke(rollbackHandler as never, apiEvent('POST', '/apps/{appId}/rollback', `/apps/${APP}/rollback`, { params: { appId: APP }, body: { version } }));

    // Assess
    expect(res.status).toBe(status);
    expect(res.body.error.message).toContain(message);
  });

  it('POST /apps/{appId}/rollback re-lists and grants the version\'s ARNs again if the policy lost them', async () => {
    // Prepare: v1 and v2 deployed, v1's ARNs dropped from the policy by hand
    await deployVersions('v1', 'v2');
    const initial = initialInvokePolicy(account.bucket);
    const v2Only = [arnOf(lambdaNameOf('v2', 'main')), arnOf(lambdaNameOf('v2', 'webhook'))];
    await iam.send(new CreatePolicyVersionCommand({ PolicyArn: account.policyArn, SetAsDefault: true, PolicyDocument: renderPolicy({ ...initial, Statement: [...initial.Statement, { Sid: 'AllowLambda', Effect: 'Allow', Action: ['lambda:InvokeFunction'], Resource: v2Only }] }) }));
    mm.requests.length = 0;

    // Act
    const res = await invoke(rollbackHandler as never, apiEvent('POST', '/apps/{appId}/rollback', `/apps/${APP}/rollback`, { params: { appId: APP }, body: { version: 'v1' } }));

    // Assess
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      appId: APP,
      version: 'v1',
      previousListedVersion: 'v2',
      policy: { name: DEFAULTS.policy, action: 'update', addedArns: [arnOf(lambdaNameOf('v1', 'main')), arnOf(lambdaNameOf('v1', 'webhook'))] },
      listed: true,
    });
    expect(await invokeArns()).toEqual([...v2Only, arnOf(lambdaNameOf('v1', 'main')), arnOf(lambdaNameOf('v1', 'webhook'))]);
    expect(mm.listed.get(APP)).toMatchObject({ version: 'v1' });
  });
});

describe('appsctl aws undeploy / DELETE /apps/{appId}/versions/{version}', () => {
  it('removes exactly that version\'s manifest, functions, code, assets and invoke ARNs; other versions are untouched', async () => {
    // Prepare
    await deployVersions('v1', 'v2');
    const before = await listKeys();
    const v1Keys = versionKeys(before, 'v1');
    expect(v1Keys).toHaveLength(1 + 2 + 2); // manifest, 2 statics, 2 code objects
    const arnsBefore = await invokeArns();

    // Act
    const run = await appsctl(['aws', 'undeploy', APP, 'v1'], env);

    // Assess
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain(`Removed ${APP} v1:\n  manifest  manifests/${APP}_v1.json\n  function  ${lambdaNameOf('v1', 'main')}\n`);
    expect(run.stdout).toContain(`  policy    ${DEFAULTS.policy}  -2 function ARN(s)\n`);
    expect(await listKeys()).toEqual(before.filter((k) => !v1Keys.includes(k)));
    expect(await functionExists(lambdaNameOf('v1', 'main'))).toBe(false);
    expect(await functionExists(lambdaNameOf('v1', 'webhook'))).toBe(false);
    expect(await functionExists(lambdaNameOf('v2', 'main'))).toBe(true);
    expect(await functionExists(lambdaNameOf('v2', 'webhook'))).toBe(true);
    expect(await invokeArns()).toEqual(arnsBefore.filter((a) => !a.includes('_v1_')));
    expect((await listJson())[0]!.versions.map((v) => v.version)).toEqual(['v2']);
  });

  it('refuses to remove the version Mattermost lists unless --force', async () => {
    // Prepare
    await deployVersions('v1', 'v2');

    // Act
    const { value: refused, writes } = await recordWrites(() => appsctl(['aws', 'undeploy', APP, 'v2'], env));
    const forced = await appsctl(['aws', 'undeploy', APP, 'v2', '--force'], env);

    // Assess
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`${APP} v2 is the version Mattermost lists; removing it would break the app. Roll back to another version first (appsctl aws rollback ${APP} VERSION), or pass --force`);
    expect(writes).toEqual([]);
    expect(forced.code, forced.stderr).toBe(0);
    expect(versionKeys(await listKeys(), 'v2')).toEqual([]);
  });

  it('--dry-run shows what would go and changes nothing', async () => {
    // Prepare
    await deployVersions('v1', 'v2');
    const before = await listKeys();

    // Act
    const { value: run, writes } = await recordWrites(() => appsctl(['aws', 'undeploy', APP, 'v1', '--dry-run'], env));

    // Assess
    expect(run.code, run.stderr).toBe(0);
    expect(writes).toEqual([]);
    expect(run.stdout).toBe(
      `Would remove ${APP} v1:\n` +
        `  manifest  manifests/${APP}_v1.json\n` +
        `  function  ${lambdaNameOf('v1', 'main')}\n` +
        `  function  ${lambdaNameOf('v1', 'webhook')}\n` +
        versionKeys(before, 'v1').filter((k) => k.startsWith('functions/')).map((k) => `  code      ${k}\n`).join('') +
        `  static    static/${APP}_v1_app/icon.png\n` +
        `  static    static/${APP}_v1_app/read-me.txt\n` +
        `  policy    ${DEFAULTS.policy}  -2 function ARN(s)\n` +
        'No changes made (dry run).\n',
    );
    expect(await listKeys()).toEqual(before);
  });

  it('is a no-op when run again: no write, and says there is nothing to remove', async () => {
    // Prepare
    await deployVersions('v1', 'v2');
    expect((await appsctl(['aws', 'undeploy', APP, 'v1'], env)).code).toBe(0);

    // Act
    const { value: again, writes } = await recordWrites(() => appsctl(['aws', 'undeploy', APP, 'v1', '--json'], env));

    // Assess
    expect(again.code, again.stderr).toBe(0);
    expect(writes).toEqual([]);
    expect((JSON.parse(again.stdout) as UndeployResult).changed).toBe(false);
  });

  it('finishes an undeploy that failed part-way when run again, though its manifest is already gone', async () => {
    // Prepare: a run that loses its Lambda connection after the manifest was deleted
    await deployVersions('v1', 'v2');
    const ports = makeDeployPorts({ region: 'us-east-1', bucket: account.bucket });
    const broken = { ...ports, lambda: { ...ports.lambda, getFunction: ports.lambda.getFunction.bind(ports.lambda), deleteFunction: async () => Promise.reject(new Error('connection reset')) } };
    const opts = { policyName: DEFAULTS.policy, dryRun: false, force: false, lockHolder: 'test' };
    await expect(undeploy(lifecycleContext(broken, silentLogger), APP, 'v1', opts)).rejects.toThrow('connection reset');
    expect(await listKeys('manifests/')).toEqual([`manifests/${APP}_v2.json`]);
    expect(await functionExists(lambdaNameOf('v1', 'main'))).toBe(true);

    // Act
    const run = await appsctl(['aws', 'undeploy', APP, 'v1', '--json'], env);

    // Assess
    expect(run.code, run.stderr).toBe(0);
    const result = JSON.parse(run.stdout) as UndeployResult;
    expect(result.plan.versions[0]).toMatchObject({ version: 'v1', resumed: true, functions: [lambdaNameOf('v1', 'main'), lambdaNameOf('v1', 'webhook')] });
    expect(result.plan.versions[0]!.manifestKey).toBeUndefined();
    expect(await functionExists(lambdaNameOf('v1', 'main'))).toBe(false);
    expect(versionKeys(await listKeys(), 'v1')).toEqual([]);
    expect((await invokeArns()).filter((a) => a.includes('_v1_'))).toEqual([]);
    expect(await listKeys('deployments/undeploys/')).toEqual([]);
    expect(await listKeys('deployments/locks/')).toEqual([]);
  });

  it('DELETE refuses the listed version (409), answers a dry run (200, nothing changed), then removes', async () => {
    // Prepare
    await deployVersions('v1', 'v2');
    const del = (version: string, query?: Record<string, string>) =>
      invoke(undeployHandler as never, apiEvent('DELETE', '/apps/{appId}/versions/{version}', `/apps/${APP}/versions/${version}`, { params: { appId: APP, version }, ...(query ? { query } : {}) }));

    // Act
    const listed = await del('v2');
    const dry = await del('v1', { dryRun: 'true' });
    const keysAfterDry = await listKeys();
    const removed = await del('v1');
    const again = await del('v1');
    const badQuery = await del('v1', { force: 'yes' });

    // Assess
    expect(listed.status).toBe(409);
    expect(listed.body.error.code).toBe('CONFLICT');
    expect(dry.status).toBe(200);
    expect(dry.body).toMatchObject({ dryRun: true, changed: false, plan: { appId: APP, versions: [{ version: 'v1', manifestKey: `manifests/${APP}_v1.json` }] } });
    expect(versionKeys(keysAfterDry, 'v1')).toHaveLength(5);
    expect(removed.status).toBe(200);
    expect(removed.body).toMatchObject({ dryRun: false, changed: true });
    expect(removed.body.plan.policy.removedArns).toEqual([arnOf(lambdaNameOf('v1', 'main')), arnOf(lambdaNameOf('v1', 'webhook'))]);
    expect(again).toMatchObject({ status: 200, body: { changed: false } });
    expect(badQuery.status).toBe(400);
    expect(versionKeys(await listKeys(), 'v1')).toEqual([]);
  });
});

describe('appsctl aws prune', () => {
  it('--keep 1 removes every version but the newest', async () => {
    // Prepare
    await deployVersions('v1', 'v2', 'v3');

    // Act
    const run = await appsctl(['aws', 'prune', APP, '--keep', '1', '--json'], env);

    // Assess
    expect(run.code, run.stderr).toBe(0);
    const result = JSON.parse(run.stdout) as PruneResult;
    expect(result.plan.versions.map((v) => v.version).sort()).toEqual(['v1', 'v2']);
    expect(result.kept).toEqual([{ version: 'v3', reason: 'one of the newest 1' }]);
    expect(await listKeys('manifests/')).toEqual([`manifests/${APP}_v3.json`]);
    expect((await listKeys('static/')).every((k) => k.startsWith(`static/${APP}_v3_app/`))).toBe(true);
    expect(await invokeArns()).toEqual([arnOf(lambdaNameOf('v3', 'main')), arnOf(lambdaNameOf('v3', 'webhook'))]);
    const versions = await iam.send(new ListPolicyVersionsCommand({ PolicyArn: account.policyArn }));
    expect(versions.Versions!.length).toBeLessThanOrEqual(5);
  });

  it('keeps the listed version too, however old, unless --force', async () => {
    // Prepare
    await deployVersions('v1', 'v2', 'v3');
    expect((await appsctl(['aws', 'rollback', APP, 'v1'], env)).code).toBe(0);

    // Act
    const run = await appsctl(['aws', 'prune', APP, '--keep', '1'], env);

    // Assess
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain(`Keeping ${APP} v1: listed in Mattermost; pass --force to remove it\n`);
    expect(await listKeys('manifests/')).toEqual([`manifests/${APP}_v1.json`, `manifests/${APP}_v3.json`]);
  });

  it('makes room in an invoke policy at its size limit: a deploy refused for size succeeds after pruning', async () => {
    // Prepare: three versions deployed, then the policy filled near 6,144 characters with ARNs of functions that exist
    await deployVersions('v1', 'v2', 'v3');
    const initial = initialInvokePolicy(account.bucket);
    const appArns = await invokeArns();
    const fillers: string[] = [];
    const docWith = (names: string[]) =>
      renderPolicy({ ...initial, Statement: [...initial.Statement, { Sid: 'AllowLambda', Effect: 'Allow', Action: ['lambda:InvokeFunction'], Resource: [...appArns, ...names.map(arnOf)] }] });
    const filler = () => `filler-${String(fillers.length).padStart(3, '0')}-${'x'.repeat(50)}`;
    while (docWith([...fillers, filler()]).length <= IAM_POLICY_MAX_CHARS - 20) fillers.push(filler());
    const zip = await buildZip({ 'index.js': '' });
    for (const name of fillers) {
      await lambda.send(new CreateFunctionCommand({ FunctionName: name, Runtime: 'nodejs22.x', Handler: 'index.handler', Role: account.roleArn, Code: { ZipFile: zip } }));
    }
    await iam.send(new CreatePolicyVersionCommand({ PolicyArn: account.policyArn, SetAsDefault: true, PolicyDocument: docWith(fillers) }));
    const v4 = await bundle('v4');
    const refused = await appsctl(['aws', 'deploy', v4], env);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`over IAM's limit of ${IAM_POLICY_MAX_CHARS}`);

    // Act
    const pruned = await appsctl(['aws', 'prune', APP, '--keep', '1'], env);
    const deployed = await appsctl(['aws', 'deploy', v4], env);

    // Assess
    expect(pruned.code, pruned.stderr).toBe(0);
    expect(deployed.code, deployed.stderr).toBe(0);
    const doc = await policyDocument();
    expect(doc.length).toBeLessThanOrEqual(IAM_POLICY_MAX_CHARS);
    const arns = await invokeArns();
    expect(arns.filter((a) => a.includes(`:function:${APP}_`))).toEqual([
      arnOf(lambdaNameOf('v3', 'main')),
      arnOf(lambdaNameOf('v3', 'webhook')),
      arnOf(lambdaNameOf('v4', 'main')),
      arnOf(lambdaNameOf('v4', 'webhook')),
    ]);
    expect(arns.filter((a) => a.includes(':function:filler-'))).toHaveLength(fillers.length);
  });
});

describe('reconcile', () => {
  async function upload(key: string, body: Buffer | string): Promise<void> {
    await s3.send(new PutObjectCommand({ Bucket: account.bucket, Key: key, Body: body }));
  }

  async function reconcileJson(extra: string[] = [], extraEnv: Record<string, string> = {}): Promise<{ code: number; result: ReconcileResult; stderr: string }> {
    const run = await appsctl(['aws', 'reconcile', '--min-age', '0', '--json', ...extra], { ...env, ...extraEnv });
    return { code: run.code, result: JSON.parse(run.stdout) as ReconcileResult, stderr: run.stderr };
  }

  it('deploys a bundle whose S3 event was lost, through the auto-deploy path, and marks it deployed', async () => {
    // Prepare: uploaded with the SDK; no event is delivered to anyone
    await upload('bundles/lost/hello.zip', await readFile(await bundle('v1')));

    // Act
    const { code, result, stderr } = await reconcileJson();

    // Assess
    expect(code, stderr).toBe(0);
    expect(result).toMatchObject({ deployed: 1, failed: 0, skipped: 0, bundles: [{ key: 'bundles/lost/hello.zip', status: 'deployed' }] });
    expect(await functionExists(lambdaNameOf('v1', 'main'))).toBe(true);
    expect(await listKeys('manifests/')).toEqual([`manifests/${APP}_v1.json`]);
    expect(mm.listed.get(APP)).toMatchObject({ version: 'v1' });
    const tags = await s3.send(new GetObjectTaggingCommand({ Bucket: account.bucket, Key: 'bundles/lost/hello.zip' }));
    expect(tags.TagSet).toEqual([{ Key: 'deployed', Value: 'true' }]);
    const record = await s3.send(new GetObjectCommand({ Bucket: account.bucket, Key: `deployments/${result.bundles[0]!.deploymentId}.json` }));
    expect(JSON.parse(await record.Body!.transformToString())).toMatchObject({ source: 'reconcile', state: 'succeeded', app: { appId: APP, version: 'v1' } });
    expect(await listKeys('deployments/reconcile/')).toEqual([]);
  });

  it('skips bundles already deployed: a second run makes no write at all', async () => {
    // Prepare
    await upload('bundles/lost/hello.zip', await readFile(await bundle('v1')));
    expect((await reconcileJson()).code).toBe(0);
    mm.requests.length = 0;

    // Act
    const { value: second, writes } = await recordWrites(() => reconcileJson());

    // Assess
    expect(second.code, second.stderr).toBe(0);
    expect(second.result.bundles).toEqual([{ key: 'bundles/lost/hello.zip', status: 'skipped', reason: 'already deployed' }]);
    expect(writes.filter((w) => w.startsWith('lambda') || w.startsWith('iam'))).toEqual([]);
    expect(writes).toEqual([]);
    expect(mm.requests).toEqual([]);
  });

  it.each([
    { case: 'younger than --min-age', args: ['--min-age', '20'], status: 'skipped' },
    { case: 'a dry run', args: ['--min-age', '0', '--dry-run'], status: 'would-deploy' },
  ])('leaves a bundle alone in $case', async ({ args, status }) => {
    // Prepare
    await upload('bundles/new/hello.zip', await readFile(await bundle('v1')));

    // Act
    const { value: run, writes } = await recordWrites(() => appsctl(['aws', 'reconcile', '--json', ...args], env));

    // Assess
    expect(run.code, run.stderr).toBe(0);
    expect((JSON.parse(run.stdout) as ReconcileResult).bundles).toMatchObject([{ key: 'bundles/new/hello.zip', status }]);
    expect(writes).toEqual([]);
    expect(await functionExists(lambdaNameOf('v1', 'main'))).toBe(false);
  });

  it('reports a failing bundle to the webhook once across runs, again when its error changes, and when it finally deploys', async () => {
    // Prepare: an account without its execute role and invoke policy, so that the same bundle fails in two ways
    await resetMoto(endpoint);
    await s3.send(new CreateBucketCommand({ Bucket: DEFAULTS.bucket }));
    account = { bucket: DEFAULTS.bucket, roleArn: '', policyArn: '' };
    const hook = await startWebhook();
    const hookEnv = { APPS_DEPLOYER_WEBHOOK_URL: hook.url };
    await upload('bundles/lost/hello.zip', await readFile(await bundle('v1')));

    try {
      // Act 1: two runs, the same error
      const first = await reconcileJson([], hookEnv);
      const second = await reconcileJson([], hookEnv);

      // Assess 1
      expect(first.code).toBe(1);
      expect(first.stderr).toContain('1 bundle(s) failed to deploy');
      expect(first.result.bundles[0]).toMatchObject({ status: 'failed', notified: true, attempts: 1, error: { code: 'NOT_FOUND' } });
      expect(first.result.bundles[0]!.error!.message).toContain(`execute role ${DEFAULTS.executeRole} not found`);
      expect(second.result.bundles[0]).toMatchObject({ status: 'failed', notified: true, attempts: 2 });
      expect(hook.texts).toHaveLength(1);
      expect(hook.texts[0]).toContain(':x: Mattermost apps deployment failed');
      expect(hook.texts[0]).toContain('bundles/lost/hello.zip');

      // Act 2: a different error
      const role = await iam.send(new CreateRoleCommand({ RoleName: DEFAULTS.executeRole, AssumeRolePolicyDocument: EXECUTE_ROLE_TRUST_POLICY }));
      await iam.send(new AttachRolePolicyCommand({ RoleName: DEFAULTS.executeRole, PolicyArn: DEFAULTS.lambdaExecutionPolicyArn }));
      const third = await reconcileJson([], hookEnv);

      // Assess 2
      expect(third.result.bundles[0]!.error!.message).toContain(`invoke policy ${DEFAULTS.policy} not found`);
      expect(hook.texts).toHaveLength(2);
      expect(hook.texts[1]).toContain(`invoke policy ${DEFAULTS.policy} not found`);

      // Act 3: fixed
      const policy = await iam.send(new CreatePolicyCommand({ PolicyName: DEFAULTS.policy, PolicyDocument: renderPolicy(initialInvokePolicy(DEFAULTS.bucket)) }));
      account = { bucket: DEFAULTS.bucket, roleArn: role.Role!.Arn!, policyArn: policy.Policy!.Arn! };
      const fourth = await reconcileJson([], hookEnv);
      const fifth = await reconcileJson([], hookEnv);

      // Assess 3
      expect(fourth.code, fourth.stderr).toBe(0);
      expect(fourth.result.bundles[0]).toMatchObject({ status: 'deployed' });
      expect(fifth.result.bundles[0]).toMatchObject({ status: 'skipped', reason: 'already deployed' });
      expect(hook.texts).toHaveLength(3);
      expect(hook.texts[2]).toContain(':white_check_mark:');
      expect(await listKeys('deployments/reconcile/')).toEqual([]);
    } finally {
      await hook.close();
    }
  });

  it('the scheduled function deploys lost bundles and reports a bad one once', async () => {
    // Prepare
    const hook = await startWebhook();
    process.env.APPS_DEPLOYER_WEBHOOK_URL = hook.url;
    resetRuntime();
    await upload('bundles/a/hello.zip', await readFile(await bundle('v1')));
    await upload('bundles/b/broken.zip', 'this is not a zip');

    try {
      // Act
      const first = (await reconcileHandler({ minAgeMinutes: 0 }, lambdaContext)) as ReconcileResult;
      const second = (await reconcileHandler({ minAgeMinutes: 0 }, lambdaContext)) as ReconcileResult;

      // Assess
      expect(first.bundles.map((b) => [b.key, b.status])).toEqual([
        ['bundles/a/hello.zip', 'deployed'],
        ['bundles/b/broken.zip', 'failed'],
      ]);
      expect(second.bundles.map((b) => [b.key, b.status])).toEqual([
        ['bundles/a/hello.zip', 'skipped'],
        ['bundles/b/broken.zip', 'failed'],
      ]);
      expect(hook.texts.filter((t) => t.includes('broken.zip'))).toHaveLength(1);
      expect(hook.texts.filter((t) => t.includes(':white_check_mark:'))).toHaveLength(1);
      expect(await functionExists(lambdaNameOf('v1', 'main'))).toBe(true);
    } finally {
      delete process.env.APPS_DEPLOYER_WEBHOOK_URL;
      resetRuntime();
      await hook.close();
    }
  });
});
