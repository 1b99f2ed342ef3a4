import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import type { Readable } from 'node:stream';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { CreateFunctionCommand, GetFunctionConfigurationCommand, ListFunctionsCommand } from '@aws-sdk/client-lambda';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { GetPolicyVersionCommand, ListPolicyVersionsCommand, CreatePolicyVersionCommand } from '@aws-sdk/client-iam';
import { iamClient, lambdaClient, s3Client, TEST_ACCOUNT_ID } from '../support/aws';
import { prepareAccount, type PreparedAccount } from '../support/account';
import { buildBundle, buildZip } from '../support/bundle-builder';
import { appsctl } from '../support/cli';
import { PEER_BUNDLE } from '../support/fixtures';
import { startMattermostFake, UPDATE_APP_LISTING_PATH, INSTALL_APP_PATH, type MattermostFake } from '../support/mattermost-fake';
import { headerValue, motoRecorder, resetMoto } from '../support/moto';
import { describeRequests, isWrite } from '../support/writes';
import { initialInvokePolicy, renderPolicy } from '../../src/core/policy';
import { DEFAULT_DEPLOY_OPTIONS, deploy } from '../../src/core/deploy';
import { withAppBundle } from '../../src/core/provision';
import { silentLogger } from '../../src/core/logger';
import { makeDeployPorts } from '../../src/adapters/ports';

const endpoint = inject('motoEndpoint');
const TOKEN = 'mm-admin-token-for-tests';
const s3 = s3Client();
const lambda = lambdaClient();
const iam = iamClient();

let dir: string;
let mm: MattermostFake;
let account: PreparedAccount;
let env: Record<string, string>;

const manifest = (version = 'v1.0.0', handler = 'index.handler') => ({
  app_id: 'hello-deployer',
  version,
  display_name: 'Hello <Deployer>',
  homepage_url: 'https://example.com/hello',
  requested_permissions: ['act_as_bot'],
  requested_locations: ['/command'],
  app_type: 'aws_lambda', // a legacy key: tolerated in the bundle, not sent in the listing
  aws_lambda: {
    functions: [
      { path: '/', name: 'main', handler, runtime: 'nodejs22.x' },
      { path: '/webhook', name: 'webhook', handler: 'app.handler', runtime: 'python3.12' },
    ],
  },
});

const STATICS = { 'icon.png': Buffer.from('89504e470d0a1a0a', 'hex'), 'test.txt': 'static pong', 'docs/read me.md': '# hello\n' };

async function ownBundle(name: string, opts: { version?: string; handler?: string; mainCode?: string } = {}): Promise<string> {
  return buildBundle(dir, {
    fileName: name,
    manifest: manifest(opts.version, opts.handler),
    functions: {
      'main.zip': { 'index.js': opts.mainCode ?? 'exports.handler = async () => ({ statusCode: 200, body: "{}" });\n' },
      'webhook.zip': { 'app.py': 'def handler(event, context):\n    return {"statusCode": 200, "body": "{}"}\n' },
    },
    statics: STATICS,
  });
}

const sha256b64 = (b: Buffer) => createHash('sha256').update(b).digest('base64');

async function objectText(key: string): Promise<string> {
  const res = await s3.send(new GetObjectCommand({ Bucket: account.bucket, Key: key }));
  return res.Body!.transformToString('utf8');
}

async function listKeys(prefix = ''): Promise<string[]> {
  const res = await s3.send(new ListObjectsV2Command({ Bucket: account.bucket, Prefix: prefix }));
  return (res.Contents ?? []).map((o) => o.Key!).sort();
}

async function policyDocument(): Promise<string> {
  const versions = await iam.send(new ListPolicyVersionsCommand({ PolicyArn: account.policyArn }));
  const def = versions.Versions!.find((v) => v.IsDefaultVersion)!;
  const res = await iam.send(new GetPolicyVersionCommand({ PolicyArn: account.policyArn, VersionId: def.VersionId }));
  const doc = res.PolicyVersion!.Document!;
  return doc.startsWith('{') ? doc : decodeURIComponent(doc);
}

async function recordWrites<T>(fn: () => Promise<T>): Promise<{ value: T; writes: string[]; all: string[] }> {
  const { value, requests } = await motoRecorder.record(endpoint, fn);
  return { value, writes: describeRequests(requests.filter(isWrite)), all: describeRequests(requests) };
}

const arnOf = (name: string) => `arn:aws:lambda:us-east-1:${TEST_ACCOUNT_ID}:function:${name}`;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'deploy-test-'));
  mm = await startMattermostFake({ token: TOKEN });
  env = { MM_SERVICESETTINGS_SITEURL: mm.url, MM_ADMIN_TOKEN: TOKEN };
});

afterAll(async () => {
  await mm.close();
  await rm(dir, { recursive: true, force: true });
});

beforeEach(async () => {
  await resetMoto(endpoint);
  account = await prepareAccount();
  mm.reset();
});

describe('appsctl aws deploy', () => {
  it('puts every asset, function, policy statement and manifest where the Mattermost server looks, then lists the app', async () => {
    // Prepare
    const bundle = await ownBundle('hello.zip');

    // Act
    const run = await appsctl(['aws', 'deploy', bundle], env);

    // Assess: the command
    expect(run.stderr).not.toContain(TOKEN);
    expect(run.code, run.stderr).toBe(0);
    // Assess: static assets under static/<appID>_<version>_app/, spaces → '-'
    expect(await listKeys('static/')).toEqual([
      'static/hello-deployer_v1.0.0_app/docs/read-me.md',
      'static/hello-deployer_v1.0.0_app/icon.png',
      'static/hello-deployer_v1.0.0_app/test.txt',
    ]);
    expect(await objectText('static/hello-deployer_v1.0.0_app/test.txt')).toBe('static pong');
    // Assess: the manifest, under the key the server computes
    expect(JSON.parse(await objectText('manifests/hello-deployer_v1.0.0.json'))).toEqual(manifest());
    // Assess: functions under their semantic names, with handler, runtime, role and the bundle's code
    const mainZip = await buildZip({ 'index.js': 'exports.handler = async () => ({ statusCode: 200, body: "{}" });\n' });
    const expected = [
      { name: 'hello-deployer_v1-0-0_main', handler: 'index.handler', runtime: 'nodejs22.x', sha: sha256b64(mainZip) },
      { name: 'hello-deployer_v1-0-0_webhook', handler: 'app.handler', runtime: 'python3.12' },
    ];
    for (const e of expected) {
      const fn = await lambda.send(new GetFunctionConfigurationCommand({ FunctionName: e.name }));
      expect(fn.Handler).toBe(e.handler);
      expect(fn.Runtime).toBe(e.runtime);
      expect(fn.Role).toBe(account.roleArn);
      expect(fn.State).toBe('Active');
      if (e.sha) expect(fn.CodeSha256).toBe(e.sha);
    }
    // Assess: code went through S3 under the private functions/ prefix
    expect((await listKeys('functions/')).map((k) => k.split('/')[1])).toEqual(['hello-deployer_v1-0-0_main', 'hello-deployer_v1-0-0_webhook']);
    // Assess: the invoke policy = initial document + AllowLambda with both unqualified ARNs, in Go's compact JSON
    const initial = initialInvokePolicy(account.bucket);
    const allowLambda = { Sid: 'AllowLambda', Effect: 'Allow', Action: ['lambda:InvokeFunction'], Resource: [arnOf('hello-deployer_v1-0-0_main'), arnOf('hello-deployer_v1-0-0_webhook')] };
    expect(await policyDocument()).toBe(renderPolicy({ ...initial, Statement: [...initial.Statement, allowLambda] }));
    const doc = JSON.parse(await policyDocument()) as { Statement: Array<{ Sid: string; Action: string[]; Resource: string[] }> };
    expect(doc.Statement.slice(0, 2)).toEqual(initial.Statement);
    expect(doc.Statement[2]).toEqual({
      Sid: 'AllowLambda',
      Effect: 'Allow',
      Action: ['lambda:InvokeFunction'],
      Resource: expect.arrayContaining([arnOf('hello-deployer_v1-0-0_main'), arnOf('hello-deployer_v1-0-0_webhook')]),
    });
    expect(doc.Statement[2]!.Resource).toHaveLength(2);
    // Assess: Mattermost was told, with the exact header and body shape of appsctl.md §2 step 10
    expect(mm.requests.map((r) => r.path)).toEqual([UPDATE_APP_LISTING_PATH]);
    const listing = mm.requests[0]!;
    expect(listing.headers.authorization).toBe(`BEARER ${TOKEN}`);
    const { app_type: _legacy, ...listedFields } = manifest();
    expect(listing.body).toEqual({ ...listedFields, Replace: false, add_deploys: ['aws_lambda'] });
    expect(Object.keys(listing.body as object).slice(-2)).toEqual(['Replace', 'add_deploys']);
    // Assess: the summary of appsctl.md §2 step 12
    expect(run.stdout).toBe(
      `\n'Hello <Deployer>' is now deployed to AWS.\n` +
        `Created/updated 2 functions in AWS Lambda, 3 static assets in S3\n\n` +
        `Execute role:\t${account.roleArn}\n` +
        `Execute policy:\tarn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole\n` +
        `Invoke policy:\t${account.policyArn}\n\n` +
        `Invoke policy document:\n${await policyDocument()}\n\n` +
        `You can now install it in Mattermost using:\n  /apps install listed hello-deployer\n\n`,
    );
  });

  it('makes no Lambda, IAM or S3 write when the same bundle is deployed again', async () => {
    // Prepare
    const bundle = await ownBundle('hello.zip');
    expect((await appsctl(['aws', 'deploy', bundle], env)).code).toBe(0);

    // Act
    const { value: run, writes, all } = await recordWrites(() => appsctl(['aws', 'deploy', bundle, '--update'], env));

    // Assess
    expect(run.code, run.stderr).toBe(0);
    expect(all.length).toBeGreaterThan(0);
    expect(writes).toEqual([]);
    // The plan's reads, started while the bundle was validated, are each made once: one GetFunction per function.
    expect(all.filter((r) => r.startsWith('lambda GET'))).toHaveLength(2);
    expect(mm.requests.map((r) => r.path)).toEqual([UPDATE_APP_LISTING_PATH, UPDATE_APP_LISTING_PATH]);
  });

  it('tells unchanged assets by the listed ETags alone, and sends again a same-size asset whose bytes changed', async () => {
    // Prepare: the same bundle but test.txt, whose new content has the old one's size.
    expect((await appsctl(['aws', 'deploy', await ownBundle('v1.zip')], env)).code).toBe(0);
    const changed = await buildBundle(dir, {
      fileName: 'v1-same-size.zip',
      manifest: manifest(),
      functions: {
        'main.zip': { 'index.js': 'exports.handler = async () => ({ statusCode: 200, body: "{}" });\n' },
        'webhook.zip': { 'app.py': 'def handler(event, context):\n    return {"statusCode": 200, "body": "{}"}\n' },
      },
      statics: { ...STATICS, 'test.txt': 'static PONG' },
    });

    // Act
    const { value: run, requests } = await motoRecorder.record(endpoint, () => appsctl(['aws', 'deploy', changed, '--update'], env));

    // Assess
    expect(run.code, run.stderr).toBe(0);
    const staticPrefix = '/mattermost-apps-bucket/static/hello-deployer_v1.0.0_app/';
    const toStatic = requests.filter((r) => r.path.startsWith(staticPrefix)).map((r) => `${r.method} ${decodeURIComponent(r.path.slice(staticPrefix.length))}`);
    // Only the asset whose listed ETag is not the MD5 of the bundle's bytes gets a HEAD (one per plan: before the app
    // lock and again once it is held), then its upload; the others cost no request of their own.
    expect(new Set(toStatic)).toEqual(new Set(['HEAD test.txt', 'PUT test.txt']));
    expect(toStatic.filter((r) => r.startsWith('PUT'))).toEqual(['PUT test.txt']);
    // Sent with the SHA-256 found at validation, for S3 to check the bytes against (moto does not; S3 does), and so as
    // a plain body rather than aws-chunked with a checksum trailer of the SDK's own.
    const put = requests.find((r) => r.method === 'PUT' && r.path === `${staticPrefix}test.txt`)!;
    expect(headerValue(put.headers, 'x-amz-checksum-sha256')).toBe(sha256b64(Buffer.from('static PONG')));
    expect(headerValue(put.headers, 'content-encoding') ?? '').not.toContain('aws-chunked');
    const stored = await s3.send(new GetObjectCommand({ Bucket: 'mattermost-apps-bucket', Key: 'static/hello-deployer_v1.0.0_app/test.txt' }));
    expect(await stored.Body!.transformToString()).toBe('static PONG');
  });

  it('--update brings changed code and handler to the bundle; only the changed function is touched', async () => {
    // Prepare
    expect((await appsctl(['aws', 'deploy', await ownBundle('v1.zip')], env)).code).toBe(0);
    const changed = await ownBundle('v1-changed.zip', { handler: 'main.run', mainCode: 'exports.run = async () => ({ statusCode: 200 });\n' });

    // Act
    const { value: run, writes } = await recordWrites(() => appsctl(['aws', 'deploy', changed, '--update', '--json'], env));

    // Assess
    expect(run.code, run.stderr).toBe(0);
    const fn = await lambda.send(new GetFunctionConfigurationCommand({ FunctionName: 'hello-deployer_v1-0-0_main' }));
    expect(fn.Handler).toBe('main.run');
    expect(fn.CodeSha256).toBe(sha256b64(await buildZip({ 'index.js': 'exports.run = async () => ({ statusCode: 200 });\n' })));
    const result = JSON.parse(run.stdout) as { functions: Array<{ name: string; action: string; changes: string[] }> };
    expect(result.functions.find((f) => f.name === 'main')).toMatchObject({ action: 'update', changes: ['code', 'handler'] });
    expect(result.functions.find((f) => f.name === 'webhook')).toMatchObject({ action: 'unchanged' });
    // The manifest changed (new handler), the webhook function and the policy did not.
    expect(writes.filter((w) => w.startsWith('lambda'))).toHaveLength(2); // UpdateFunctionCode + UpdateFunctionConfiguration
    expect(writes.filter((w) => w.startsWith('iam'))).toEqual([]);
  });

  it('without --update, refuses a function that exists with different code, before any change', async () => {
    // Prepare
    expect((await appsctl(['aws', 'deploy', await ownBundle('v1.zip')], env)).code).toBe(0);
    const changed = await ownBundle('v1-changed.zip', { mainCode: 'exports.handler = async () => 42;\n' });

    // Act
    const { value: run, writes } = await recordWrites(() => appsctl(['aws', 'deploy', changed], env));

    // Assess
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('hello-deployer_v1-0-0_main already exists with a different code');
    expect(run.stderr).toContain('--update');
    expect(writes).toEqual([]);
  });

  it('--dry-run prints the plan and changes nothing', async () => {
    // Prepare
    const bundle = await ownBundle('hello.zip');

    // Act
    const { value: run, writes } = await recordWrites(() => appsctl(['aws', 'deploy', bundle, '--dry-run'], env));

    // Assess
    expect(run.code, run.stderr).toBe(0);
    expect(writes).toEqual([]);
    expect(mm.requests).toEqual([]);
    expect(run.stdout).toContain('function  hello-deployer_v1-0-0_main  create');
    expect(run.stdout).toContain('static    static/hello-deployer_v1.0.0_app/test.txt  create');
    expect(run.stdout).toContain('policy    mattermost-apps-invoke-policy  update (+2 function ARNs)');
    expect(run.stdout).toContain('manifest  manifests/hello-deployer_v1.0.0.json  create');
    expect(run.stdout).toContain('No changes made (dry run).');
  });

  it('--install installs after listing, with the body of appsctl.md §2 step 11; --env sets the functions\' variables', async () => {
    // Prepare
    const bundle = await ownBundle('hello.zip');

    // Act
    const run = await appsctl(['aws', 'deploy', bundle, '--install', '--env', 'A=1,B=two', '--env', 'C=x=y'], env);

    // Assess
    expect(run.code, run.stderr).toBe(0);
    expect(mm.requests.map((r) => r.path)).toEqual([UPDATE_APP_LISTING_PATH, INSTALL_APP_PATH]);
    expect(mm.requests[1]!.body).toEqual({ app_id: 'hello-deployer', deploy_type: 'aws_lambda', remote_oauth2: {} });
    expect(mm.requests[1]!.headers.authorization).toBe(`BEARER ${TOKEN}`);
    expect(mm.installed.has('hello-deployer')).toBe(true);
    expect(run.stdout).not.toContain('/apps install listed');
    const fn = await lambda.send(new GetFunctionConfigurationCommand({ FunctionName: 'hello-deployer_v1-0-0_webhook' }));
    expect(fn.Environment?.Variables).toEqual({ A: '1', B: 'two', C: 'x=y' });
  });

  it('reports a Mattermost failure after the AWS steps, and a re-run completes the listing', async () => {
    // Prepare
    const bundle = await ownBundle('hello.zip');
    mm.failNext(UPDATE_APP_LISTING_PATH, 500, JSON.stringify({ id: 'app.error', message: 'boom', status_code: 500 }));

    // Act
    const failed = await appsctl(['aws', 'deploy', bundle], env);
    const rerun = await appsctl(['aws', 'deploy', bundle], env);

    // Assess
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain('failed to add local manifest to Mattermost: 500 boom');
    expect(rerun.code, rerun.stderr).toBe(0);
    expect(mm.listed.get('hello-deployer')).toMatchObject({ app_id: 'hello-deployer', version: 'v1.0.0' });
  });

  it('checks MM_SERVICESETTINGS_SITEURL and MM_ADMIN_TOKEN before any AWS call', async () => {
    // Prepare
    const bundle = await ownBundle('hello.zip');

    // Act
    const { value: run, all } = await recordWrites(() => appsctl(['aws', 'deploy', bundle], { MM_SERVICESETTINGS_SITEURL: '', MM_ADMIN_TOKEN: '' }));

    // Assess
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('MM_SERVICESETTINGS_SITEURL and MM_ADMIN_TOKEN must be set');
    expect(all).toEqual([]);
  });

  it('refuses the peer fixture before any AWS call: its long function name becomes a Lambda name with dots', async () => {
    // Act
    const { value: run, all } = await recordWrites(() => appsctl(['aws', 'deploy', PEER_BUNDLE], env));

    // Assess
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('function-with-very-very-very-very-very-very-very-long-name');
    expect(run.stderr).toContain('com.mattermost.servicenow_0.1.0_95f51579baba92ea2a0a3ad98c24fcbc');
    expect(run.stderr).toContain('contains "."');
    expect(run.stderr).not.toMatch(/\n\s+at /); // no stack trace
    expect(all).toEqual([]);
    expect(mm.requests).toEqual([]);
  });

  it('keeps the invoke policy within IAM\'s 5 versions across many deploys', async () => {
    // Prepare: four versions exist already
    for (let i = 0; i < 4; i++) {
      await iam.send(new CreatePolicyVersionCommand({ PolicyArn: account.policyArn, PolicyDocument: renderPolicy(initialInvokePolicy(account.bucket)), SetAsDefault: true }));
    }

    // Act: three app versions, each adding ARNs
    for (const v of ['v1', 'v2', 'v3']) {
      const run = await appsctl(['aws', 'deploy', await ownBundle(`${v}.zip`, { version: v })], env);
      expect(run.code, run.stderr).toBe(0);
    }

    // Assess
    const versions = await iam.send(new ListPolicyVersionsCommand({ PolicyArn: account.policyArn }));
    expect(versions.Versions!.length).toBeLessThanOrEqual(5);
    const doc = JSON.parse(await policyDocument()) as { Statement: Array<{ Sid: string; Resource: string[] }> };
    expect(doc.Statement.find((s) => s.Sid === 'AllowLambda')!.Resource).toHaveLength(6);
  });

  it("grows the invoke policy from its document as it is at apply time, keeping an ARN another app's deployer added after the plan read it", async () => {
    // Prepare: IAM ports that, once the plan has read the policy, let "another deployer" add its function's ARN.
    const other = arnOf('other-app_v1-0-0_fn');
    const ports = makeDeployPorts({ region: 'us-east-1', bucket: account.bucket });
    let raced = false;
    const iamPort = new Proxy(ports.iam, {
      get(target, prop, receiver) {
        const value = Reflect.get(target, prop, receiver) as unknown;
        if (prop !== 'getPolicyDocument' || typeof value !== 'function') return typeof value === 'function' ? value.bind(target) : value;
        return async (arn: string, versionId: string) => {
          const text = (await (value as typeof target.getPolicyDocument).call(target, arn, versionId)) as string;
          if (!raced) {
            raced = true;
            const doc = JSON.parse(text) as { Statement: Array<{ Sid?: string; Resource: string[] }> };
            const base = initialInvokePolicy(account.bucket);
            await iam.send(new CreatePolicyVersionCommand({
              PolicyArn: account.policyArn,
              SetAsDefault: true,
              PolicyDocument: renderPolicy({ ...base, Statement: [...base.Statement.filter((st) => st.Sid !== 'AllowLambda'), { Sid: 'AllowLambda', Effect: 'Allow', Action: ['lambda:InvokeFunction'], Resource: [...(doc.Statement.find((st) => st.Sid === 'AllowLambda')?.Resource ?? []), other] }] }),
            }));
          }
          return text;
        };
      },
    });

    // Act
    const { result } = await withAppBundle(await ownBundle('hello.zip'), { strictness: 'deployable' }, (app, open) =>
      deploy({ ...ports, iam: iamPort }, { app, open: async (e) => (await open(e)) as Readable }, { ...DEFAULT_DEPLOY_OPTIONS, listInMattermost: false }, silentLogger),
    );

    // Assess
    expect(raced).toBe(true);
    const policy = await iam.send(new GetPolicyVersionCommand({ PolicyArn: account.policyArn, VersionId: (await iam.send(new ListPolicyVersionsCommand({ PolicyArn: account.policyArn }))).Versions!.find((v) => v.IsDefaultVersion)!.VersionId! }));
    const resources = (JSON.parse(decodeURIComponent(policy.PolicyVersion!.Document!)) as { Statement: Array<{ Sid?: string; Resource: string[] }> }).Statement.find((st) => st.Sid === 'AllowLambda')!.Resource;
    expect(resources).toEqual(expect.arrayContaining([other, ...result!.functions.map((f) => f.arn)]));
  });

  it('prunes ARNs of deleted functions to make room, and fails before any change when the policy would still exceed 6,144 characters', async () => {
    // Prepare: an AllowLambda statement filled to just under IAM's limit
    const initial = initialInvokePolicy(account.bucket);
    const names: string[] = [];
    const docWith = (ns: string[]) =>
      renderPolicy({ ...initial, Statement: [...initial.Statement, { Sid: 'AllowLambda', Effect: 'Allow', Action: ['lambda:InvokeFunction'], Resource: ns.map(arnOf) }] });
    const filler = () => `filler-${String(names.length).padStart(3, '0')}-${'x'.repeat(50)}`;
    // Each filler adds ~110 characters: stop within 130 of the limit, so that two more ARNs (~155) cannot fit.
    while (docWith([...names, filler()]).length <= 6144 - 20) names.push(filler());
    await iam.send(new CreatePolicyVersionCommand({ PolicyArn: account.policyArn, SetAsDefault: true, PolicyDocument: docWith(names) }));
    const bundle = await ownBundle('hello.zip');

    // Act 1: the filler functions do not exist, so their ARNs can go
    const plan = await appsctl(['aws', 'deploy', bundle, '--dry-run'], env);

    // Assess 1
    expect(plan.code, plan.stderr).toBe(0);
    expect(plan.stdout).toContain(`policy    mattermost-apps-invoke-policy  update (+2 function ARNs, -${names.length} of deleted functions)`);

    // Prepare 2: now they exist, nothing can be pruned
    const zip = await buildZip({ 'index.js': '' });
    for (const name of names) {
      await lambda.send(new CreateFunctionCommand({ FunctionName: name, Runtime: 'nodejs22.x', Handler: 'index.handler', Role: account.roleArn, Code: { ZipFile: zip } }));
    }

    // Act 2
    const { value: refused, writes } = await recordWrites(() => appsctl(['aws', 'deploy', bundle], env));

    // Assess 2
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/the invoke policy mattermost-apps-invoke-policy would be \d+ characters with 2 new function ARN\(s\), over IAM's limit of 6144/);
    expect(writes).toEqual([]);
    expect(await policyDocument()).toBe(docWith(names));
  });

  it('lets one of two concurrent deploys of the same app proceed and refuses the other clearly', async () => {
    // Prepare
    const bundle = await ownBundle('hello.zip');

    // Act
    const runs = await Promise.all([appsctl(['aws', 'deploy', bundle], env), appsctl(['aws', 'deploy', bundle], env)]);

    // Assess: one deployed, the other was told why it could not, and the app is whole
    const codes = runs.map((r) => r.code).sort();
    expect(codes).toEqual([0, 1]);
    const refused = runs.find((r) => r.code === 1)!;
    expect(refused.stderr).toMatch(/another deployment of hello-deployer is in progress \(appsctl on .+\); try again when it has finished/);
    expect(await listKeys('static/')).toHaveLength(3);
    expect(await listKeys('deployments/locks/')).toEqual([]);
    const rerun = await appsctl(['aws', 'deploy', bundle], env);
    expect(rerun.code, rerun.stderr).toBe(0);
  });

  it('takes over an app lock left by a crashed deployer once it has expired', async () => {
    // Prepare
    const stale = { owner: 'dead', holder: 'appsctl on crashed-host (pid 1)', acquiredAt: '2020-01-01T00:00:00.000Z', expiresAt: '2020-01-01T00:30:00.000Z' };
    await s3.send(new PutObjectCommand({ Bucket: account.bucket, Key: 'deployments/locks/hello-deployer.json', Body: JSON.stringify(stale) }));

    // Act
    const run = await appsctl(['aws', 'deploy', await ownBundle('hello.zip')], env);

    // Assess
    expect(run.code, run.stderr).toBe(0);
    expect(await listKeys('deployments/locks/')).toEqual([]);
  });

  it('deploys a 60 MB function through S3, past Lambda\'s 50 MB inline limit', async () => {
    // Prepare: incompressible code, so the function zip really is ~60 MB
    const big = randomBytes(60 * 1024 * 1024);
    const bundle = await buildBundle(dir, {
      fileName: 'big.zip',
      manifest: { ...manifest(), aws_lambda: { functions: [{ path: '/', name: 'main', handler: 'index.handler', runtime: 'nodejs22.x' }] } },
      functions: { 'main.zip': { 'index.js': 'exports.handler = async () => ({});\n', 'blob.bin': big } },
    });

    // Act
    const run = await appsctl(['aws', 'deploy', bundle], env);

    // Assess
    expect(run.code, run.stderr).toBe(0);
    const fns = await lambda.send(new ListFunctionsCommand({}));
    const fn = fns.Functions!.find((f) => f.FunctionName === 'hello-deployer_v1-0-0_main')!;
    expect(fn.CodeSize).toBeGreaterThan(60 * 1024 * 1024);
  }, 180_000);
});
