// Proves the test environment itself: the SDK v3 clients reach moto over HTTP, moto has the settings
// later tests rely on (managed IAM policies, Docker-less Lambda, queued answers), and the recorder
// sees the calls. If this file fails, every other integration failure is suspect.
import { createHash } from 'node:crypto';
import { CreateBucketCommand, GetObjectCommand, ListBucketsCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import {
  AttachRolePolicyCommand,
  CreateRoleCommand,
  CreateUserCommand,
  GetUserCommand,
  ListAttachedRolePoliciesCommand,
} from '@aws-sdk/client-iam';
import { CreateFunctionCommand, GetFunctionCommand, InvokeCommand } from '@aws-sdk/client-lambda';
import { ZipFile } from 'yazl';
import { describe, expect, inject, it } from 'vitest';
import { iamClient, lambdaClient, s3Client, TEST_ACCOUNT_ID, TEST_REGION } from '../support/aws.js';
import { motoRecorder, queueLambdaResults, resetMoto } from '../support/moto.js';

const endpoint = inject('motoEndpoint');

const LAMBDA_BASIC_EXECUTION_ROLE = 'arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole';
const LAMBDA_TRUST_POLICY = JSON.stringify({
  Version: '2012-10-17',
  Statement: [{ Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' }, Action: 'sts:AssumeRole' }],
});

function zipOf(files: Record<string, string>): Promise<Buffer> {
  const zip = new ZipFile();
  // A fixed mtime keeps the bytes, and so CodeSha256, the same from run to run.
  const mtime = new Date('2024-01-01T00:00:00Z');
  for (const [name, content] of Object.entries(files)) zip.addBuffer(Buffer.from(content), name, { mtime });
  zip.end();
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    zip.outputStream.on('data', (chunk: Buffer) => chunks.push(chunk));
    zip.outputStream.on('error', reject);
    zip.outputStream.on('end', () => resolve(Buffer.concat(chunks)));
  });
}

async function createExecuteRole(name: string): Promise<string> {
  const iam = iamClient();
  const { Role } = await iam.send(new CreateRoleCommand({ RoleName: name, AssumeRolePolicyDocument: LAMBDA_TRUST_POLICY }));
  await iam.send(new AttachRolePolicyCommand({ RoleName: name, PolicyArn: LAMBDA_BASIC_EXECUTION_ROLE }));
  return Role!.Arn!;
}

async function createFunction(name: string, roleArn: string, zip: Buffer) {
  return lambdaClient().send(
    new CreateFunctionCommand({
      FunctionName: name,
      Runtime: 'nodejs22.x',
      Handler: 'index.handler',
      Role: roleArn,
      Code: { ZipFile: zip },
    }),
  );
}

describe('S3 on moto', () => {
  it('stores an object and gives it back', async () => {
    // Prepare
    const s3 = s3Client();
    await s3.send(new CreateBucketCommand({ Bucket: 'env-test-bucket' }));

    // Act
    await s3.send(
      new PutObjectCommand({ Bucket: 'env-test-bucket', Key: 'static/app_0.1.0_app/hello world.txt', Body: 'hello, moto' }),
    );
    const got = await s3.send(new GetObjectCommand({ Bucket: 'env-test-bucket', Key: 'static/app_0.1.0_app/hello world.txt' }));

    // Assess
    expect(await got.Body!.transformToString()).toBe('hello, moto');
  });
});

describe('IAM on moto', () => {
  it('creates a user', async () => {
    // Prepare
    const iam = iamClient();

    // Act
    await iam.send(new CreateUserCommand({ UserName: 'mattermost-apps-invoke' }));
    const { User } = await iam.send(new GetUserCommand({ UserName: 'mattermost-apps-invoke' }));

    // Assess
    expect(User?.Arn).toBe(`arn:aws:iam::${TEST_ACCOUNT_ID}:user/mattermost-apps-invoke`);
  });

  it('attaches the AWS-managed AWSLambdaBasicExecutionRole to a role', async () => {
    // Prepare
    const iam = iamClient();

    // Act: fails with NoSuchEntity unless moto was started with MOTO_IAM_LOAD_MANAGED_POLICIES=true
    await createExecuteRole('mattermost-apps-execute-lambda-role');
    const { AttachedPolicies } = await iam.send(
      new ListAttachedRolePoliciesCommand({ RoleName: 'mattermost-apps-execute-lambda-role' }),
    );

    // Assess
    expect(AttachedPolicies?.map((p) => p.PolicyArn)).toEqual([LAMBDA_BASIC_EXECUTION_ROLE]);
  });
});

describe('Lambda on moto without Docker', () => {
  it('creates an Active function whose CodeSha256 is base64(sha256(zip))', async () => {
    // Prepare
    const roleArn = await createExecuteRole('env-test-create-role');
    const zip = await zipOf({ 'index.js': 'exports.handler = async () => ({ ok: true });\n' });

    // Act
    const created = await createFunction('env-test_0-1-0_create', roleArn, zip);
    const { Configuration } = await lambdaClient().send(new GetFunctionCommand({ FunctionName: 'env-test_0-1-0_create' }));

    // Assess
    const expectedSha = createHash('sha256').update(zip).digest('base64');
    expect(created.CodeSha256).toBe(expectedSha);
    expect(Configuration).toMatchObject({
      State: 'Active',
      LastUpdateStatus: 'Successful',
      CodeSha256: expectedSha,
      FunctionArn: `arn:aws:lambda:${TEST_REGION}:${TEST_ACCOUNT_ID}:function:env-test_0-1-0_create`,
    });
  });

  it('answers Invoke with the queued results in order, then echoes the payload', async () => {
    // Prepare
    const roleArn = await createExecuteRole('env-test-invoke-role');
    await createFunction('env-test_0-1-0_invoke', roleArn, await zipOf({ 'index.js': '// never run\n' }));
    const answers = ['{"type":"ok","text":"first"}', '{"type":"ok","text":"second"}'];
    await queueLambdaResults(endpoint, answers);
    const invoke = async (payload: string) => {
      const out = await lambdaClient().send(
        new InvokeCommand({ FunctionName: 'env-test_0-1-0_invoke', Payload: Buffer.from(payload) }),
      );
      return { status: out.StatusCode, payload: Buffer.from(out.Payload ?? []).toString('utf8') };
    };

    // Act
    const results = [await invoke('{"n":1}'), await invoke('{"n":2}'), await invoke('{"n":3}')];

    // Assess
    expect(results).toEqual([
      { status: 200, payload: answers[0] },
      { status: 200, payload: answers[1] },
      { status: 200, payload: '{"n":3}' },
    ]);
  });
});

describe('moto recorder', () => {
  it('records the SDK calls made while it is on, with their bodies', async () => {
    // Prepare
    const s3 = s3Client();
    await s3.send(new CreateBucketCommand({ Bucket: 'env-test-recorded' }));
    await motoRecorder.clear(endpoint);
    await motoRecorder.start(endpoint);

    // Act
    await s3.send(new PutObjectCommand({ Bucket: 'env-test-recorded', Key: 'manifests/a b.json', Body: '{"app_id":"x"}' }));
    await iamClient().send(new CreateUserCommand({ UserName: 'env-test-recorded-user' }));
    const roleArn = await createExecuteRole('env-test-recorded-role');
    await createFunction('env-test_0-1-0_recorded', roleArn, await zipOf({ 'index.js': '' }));
    await motoRecorder.stop(endpoint);
    await s3.send(new ListBucketsCommand({}));
    const recording = await motoRecorder.download(endpoint);

    // Assess
    expect(recording.map((r) => `${r.service} ${r.operation}`)).toEqual([
      's3 PutObject',
      'iam CreateUser',
      'iam CreateRole',
      'iam AttachRolePolicy',
      'lambda POST /2015-03-31/functions',
    ]);
    const put = recording[0]!;
    expect(put).toMatchObject({ method: 'PUT', path: '/env-test-recorded/manifests/a%20b.json', bodyText: '{"app_id":"x"}' });
    expect(recording[1]!.bodyText).toContain('UserName=env-test-recorded-user');
    expect(JSON.parse(recording[4]!.bodyText)).toMatchObject({ FunctionName: 'env-test_0-1-0_recorded' });
  });
});

describe('moto reset', () => {
  it('empties the backends and the queued Lambda answers but keeps Lambda Docker-less', async () => {
    // Prepare
    await s3Client().send(new CreateBucketCommand({ Bucket: 'env-test-before-reset' }));
    await queueLambdaResults(endpoint, ['"stale answer"']);

    // Act
    await resetMoto(endpoint);
    const { Buckets } = await s3Client().send(new ListBucketsCommand({}));
    const roleArn = await createExecuteRole('env-test-after-reset-role');
    await createFunction('env-test_0-1-0_after_reset', roleArn, await zipOf({ 'index.js': '' }));
    const out = await lambdaClient().send(
      new InvokeCommand({ FunctionName: 'env-test_0-1-0_after_reset', Payload: Buffer.from('"echo"') }),
    );

    // Assess
    expect(Buckets ?? []).toEqual([]);
    expect(Buffer.from(out.Payload ?? []).toString('utf8')).toBe('"echo"');
  });
});
