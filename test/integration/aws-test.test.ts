import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { GetPolicyVersionCommand, ListPolicyVersionsCommand } from '@aws-sdk/client-iam';
import { iamClient, s3Client, TEST_ACCOUNT_ID } from '../support/aws';
import { prepareAccount, type PreparedAccount } from '../support/account';
import { buildBundle } from '../support/bundle-builder';
import { appsctl } from '../support/cli';
import { motoRecorder, queueLambdaResults, resetMoto, type RecordedMotoRequest } from '../support/moto';

const endpoint = inject('motoEndpoint');
const s3 = s3Client();
const iam = iamClient();

const LAMBDA = 'hello-serverless_v1-2-0_hello-serverless';
const TEST_TXT = 'static/hello-serverless_v1.2.0_app/test.txt';

/** The invoke user's keys (appsctl.md §0); the deploy admin's come from test/support/integration-setup.ts. */
const INVOKE_ENV = { MM_APPS_AWS_ACCESS_KEY: 'testing', MM_APPS_AWS_SECRET_KEY: 'testing' };
/** `aws test deploy` must not need Mattermost: these stay unset. */
const NO_MATTERMOST = { MM_SERVICESETTINGS_SITEURL: undefined, MM_ADMIN_TOKEN: undefined };

const MANIFEST = {
  app_id: 'hello-serverless',
  version: 'v1.2.0',
  display_name: 'Hello, Serverless!',
  homepage_url: 'https://github.com/mattermost/mattermost-plugin-apps',
  requested_permissions: ['act_as_bot'],
  requested_locations: ['/command'],
  aws_lambda: { functions: [{ path: '/', name: 'hello-serverless', handler: 'index.handler', runtime: 'nodejs22.x' }] },
};

let dir: string;

async function helloBundle(text = 'PONG'): Promise<string> {
  return buildBundle(dir, {
    fileName: `hello-serverless-${text}.zip`,
    manifest: MANIFEST,
    functions: { 'hello-serverless.zip': { 'index.js': `exports.handler = async () => ({ statusCode: 200, body: JSON.stringify({ type: "ok", text: "${text}" }) });\n` } },
    statics: { 'test.txt': 'static pong' },
  });
}

async function putTestTxt(body: string): Promise<void> {
  await s3.send(new PutObjectCommand({ Bucket: 'mattermost-apps-bucket', Key: TEST_TXT, Body: body }));
}

async function policyDocument(arn: string): Promise<string> {
  const versions = await iam.send(new ListPolicyVersionsCommand({ PolicyArn: arn }));
  const def = versions.Versions!.find((v) => v.IsDefaultVersion)!;
  const res = await iam.send(new GetPolicyVersionCommand({ PolicyArn: arn, VersionId: def.VersionId }));
  const doc = res.PolicyVersion!.Document!;
  return doc.startsWith('{') ? doc : decodeURIComponent(doc);
}

/** Runs `fn` with moto's recorder on, returning what it saw. */
function recorded<T>(fn: () => Promise<T>): Promise<{ value: T; requests: RecordedMotoRequest[] }> {
  return motoRecorder.record(endpoint, fn);
}

const awsRequests = (rs: RecordedMotoRequest[]) => rs.filter((r) => r.service !== '');

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'aws-test-'));
});

afterAll(async () => {
  s3.destroy();
  iam.destroy();
  await rm(dir, { recursive: true, force: true });
});

describe('appsctl aws test deploy BUNDLE', () => {
  let account: PreparedAccount;

  beforeAll(async () => {
    await resetMoto(endpoint);
    account = await prepareAccount();
  });

  it('deploys with --update forced, without Mattermost, and prints the DeployAppResult', async () => {
    // Prepare
    const bundle = await helloBundle();
    // The function already exists with other code: without --update the run below would be refused.
    expect((await appsctl(['aws', 'test', 'deploy', await helloBundle('OLD')], NO_MATTERMOST)).code).toBe(0);

    // Act
    const run = await appsctl(['aws', 'test', 'deploy', bundle], NO_MATTERMOST);

    // Assess
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout.startsWith('Success!\n\n{\n')).toBe(true);
    expect(run.stdout.endsWith('}\n')).toBe(true);
    const result = JSON.parse(run.stdout.slice('Success!\n\n'.length)) as Record<string, unknown>;
    expect(Object.keys(result)).toEqual(['InvokePolicyDoc', 'InvokePolicyARN', 'ExecuteRoleARN', 'ExecutePolicyARN', 'LambdaARNs', 'StaticARNs', 'ManifestURL', 'Manifest']);
    expect(result).toEqual({
      InvokePolicyDoc: await policyDocument(account.policyArn),
      InvokePolicyARN: account.policyArn,
      ExecuteRoleARN: account.roleArn,
      ExecutePolicyARN: 'arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole',
      LambdaARNs: [`arn:aws:lambda:us-east-1:${TEST_ACCOUNT_ID}:function:${LAMBDA}`],
      StaticARNs: [`arn:aws:s3:::mattermost-apps-bucket/${TEST_TXT}`],
      ManifestURL: 'https://s3-us-east-1.amazonaws.com/mattermost-apps-bucket/manifests/hello-serverless_v1.2.0.json',
      Manifest: MANIFEST,
    });
    expect(await policyDocument(account.policyArn)).toContain(`function:${LAMBDA}`);
  });
});

describe('appsctl aws test lambda | s3 | list, against a deployed hello-serverless', () => {
  beforeAll(async () => {
    await resetMoto(endpoint);
    await prepareAccount();
    const deployed = await appsctl(['aws', 'test', 'deploy', await helloBundle()], NO_MATTERMOST);
    expect(deployed.code, deployed.stderr).toBe(0);
  });

  it('lambda: sends the server’s exact invoke payload for /ping and prints OK on PONG', async () => {
    // Prepare
    await queueLambdaResults(endpoint, [JSON.stringify({ statusCode: 200, body: JSON.stringify({ type: 'ok', text: 'PONG' }) })]);

    // Act
    const { value: run, requests } = await recorded(() => appsctl(['aws', 'test', 'lambda'], INVOKE_ENV));

    // Assess
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toBe('OK\n');
    const invokes = requests.filter((r) => r.method === 'POST' && r.path === `/2015-03-31/functions/${LAMBDA}/invocations`);
    expect(invokes).toHaveLength(1);
    expect(invokes[0]!.bodyText).toBe(
      '{"path":"/ping","httpMethod":"POST","headers":{"Content-Type":"application/json"},' +
        '"body":"{\\"path\\":\\"/ping\\",\\"context\\":{\\"app_id\\":\\"\\",\\"mattermost_site_url\\":\\"\\",\\"app_path\\":\\"\\",\\"bot_user_id\\":\\"\\",\\"oauth2\\":{}}}"}',
    );
    // Synchronous, by name: the server's Invoke (appsctl.md §6).
    expect(invokes[0]!.headers['X-Amz-Invocation-Type'] ?? invokes[0]!.headers['x-amz-invocation-type']).toBe('RequestResponse');
  });

  it.each([
    ['a different CallResponse', JSON.stringify({ statusCode: 200, body: '{"type":"ok","text":"pong"}' }), 'Error: invalid value received: {"type":"ok","text":"pong"}\n'],
    ['a body that is not a CallResponse', JSON.stringify({ statusCode: 200, body: 'PONG' }), 'Error: invalid value received: PONG\n'],
    ['status 500', JSON.stringify({ statusCode: 500, body: 'internal error' }), 'Error: function failed with status code 500, body internal error\n'],
    ['a Lambda error payload', JSON.stringify({ errorMessage: 'boom', errorType: 'Error' }), 'Error: function failed with status code 0, body \n'],
  ])('lambda: fails on %s', async (_case, answer, expectedStderr) => {
    // Prepare
    await queueLambdaResults(endpoint, [answer]);

    // Act
    const run = await appsctl(['aws', 'test', 'lambda'], INVOKE_ENV);

    // Assess
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toBe(expectedStderr);
  });

  it("s3: prints OK when static/hello-serverless_v1.2.0_app/test.txt is 'static pong'", async () => {
    // Act
    const run = await appsctl(['aws', 'test', 's3'], INVOKE_ENV);

    // Assess
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toBe('OK\n');
  });

  it("s3: fails with the content it got when it is not 'static pong'", async () => {
    // Prepare
    const original = await (await s3.send(new GetObjectCommand({ Bucket: 'mattermost-apps-bucket', Key: TEST_TXT }))).Body!.transformToString();
    await putTestTxt('static pong\n');

    try {
      // Act
      const run = await appsctl(['aws', 'test', 's3'], INVOKE_ENV);

      // Assess
      expect(run.code).toBe(1);
      expect(run.stdout).toBe('');
      expect(run.stderr).toBe("Error: expected 'static pong', got 'static pong\n'\n");
    } finally {
      await putTestTxt(original);
    }
  });

  it('list: prints the app IDs as Go prints a slice', async () => {
    // Act
    const run = await appsctl(['aws', 'test', 'list'], INVOKE_ENV);

    // Assess
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toBe('[hello-serverless]\n');
  });

  // The SDK's own credential sources are cleared too, or readAwsTarget would fall back to them.
  const NO_SDK_CREDENTIALS = { AWS_ACCESS_KEY_ID: undefined, AWS_SECRET_ACCESS_KEY: undefined, AWS_PROFILE: undefined };
  it.each([
    ['lambda', { MM_APPS_AWS_ACCESS_KEY: undefined, MM_APPS_AWS_SECRET_KEY: 'testing' }, 'MM_APPS_AWS_ACCESS_KEY'],
    ['s3', { MM_APPS_AWS_ACCESS_KEY: undefined, MM_APPS_AWS_SECRET_KEY: 'testing' }, 'MM_APPS_AWS_ACCESS_KEY'],
    ['list', { MM_APPS_AWS_ACCESS_KEY: undefined, MM_APPS_AWS_SECRET_KEY: undefined, ...NO_SDK_CREDENTIALS }, 'MM_APPS_AWS_ACCESS_KEY'],
    ['lambda', { MM_APPS_AWS_ACCESS_KEY: 'testing', MM_APPS_AWS_SECRET_KEY: undefined }, 'MM_APPS_AWS_SECRET_KEY'],
  ])('%s: refuses without the invoke user’s keys (%j), naming the variable, before any AWS call', async (sub, env, variable) => {
    // Act: the deploy admin's keys are set (integration-setup.ts) and must not be used instead
    const { value: run, requests } = await recorded(() => appsctl(['aws', 'test', sub], env));

    // Assess
    expect(run.code).toBe(1);
    // The first line is the original's message; detail lines under it are ours.
    expect(run.stderr.startsWith(`Error: no AWS ${variable.endsWith('ACCESS_KEY') ? 'access' : 'secret'} key was provided. Please set ${variable}\n`)).toBe(true);
    expect(awsRequests(requests)).toEqual([]);
  });
});
