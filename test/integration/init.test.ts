// `appsctl aws init` and `appsctl aws clean` against moto (appsctl.md §1): what a fresh account gets, that a
// second run writes nothing, that missing resources and bad environments fail before any change, and that clean
// undoes init.
import {
  CreatePolicyCommand, CreatePolicyVersionCommand, DeleteGroupCommand,
  DeleteRoleCommand, DetachGroupPolicyCommand, DetachRolePolicyCommand, GetGroupCommand, GetPolicyVersionCommand, GetRoleCommand,
  ListAccessKeysCommand, ListAttachedGroupPoliciesCommand, ListAttachedRolePoliciesCommand, ListGroupsCommand,
  ListPoliciesCommand, ListPolicyVersionsCommand, ListRolesCommand, ListUsersCommand, RemoveUserFromGroupCommand,
} from '@aws-sdk/client-iam';
import { CreateBucketCommand, GetBucketEncryptionCommand, GetPublicAccessBlockCommand, ListBucketsCommand } from '@aws-sdk/client-s3';
import { CreateFunctionCommand } from '@aws-sdk/client-lambda';
import { ZipFile } from 'yazl';
import { beforeEach, describe, expect, inject, it } from 'vitest';
import { runCli } from '../../src/cli/program';
import { goQuote } from '../../src/core/gojson';
import { EXECUTE_ROLE_TRUST_POLICY, initialInvokePolicy, renderPolicy } from '../../src/core/policy';
import { iamClient, lambdaClient, s3Client, TEST_ACCOUNT_ID } from '../support/aws.js';
import { isWrite } from '../support/writes';
import { motoRecorder, resetMoto, type RecordedMotoRequest } from '../support/moto.js';

const endpoint = inject('motoEndpoint');

const BUCKET = 'apps-init-test-bucket';
const USER = 'mattermost-apps-invoke';
const GROUP = 'mattermost-apps-invoke-group';
const POLICY = 'mattermost-apps-invoke-policy';
const ROLE = 'mattermost-apps-execute-lambda-role';
const BASIC_EXECUTION = 'arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole';
const arn = (kind: string, name: string) => `arn:aws:iam::${TEST_ACCOUNT_ID}:${kind}/${name}`;

type Env = Record<string, string | undefined>;

function baseEnv(extra: Env = {}): Env {
  return { ...process.env, MM_APPS_S3_BUCKET: BUCKET, ...extra };
}

async function appsctl(args: string[], env: Env = baseEnv()) {
  let stdout = '';
  let stderr = '';
  const code = await runCli(args, { env, stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t), isTTY: false });
  return { code, stdout, stderr };
}

/** Runs `fn` with moto's recorder on: what reached the server, not what the SDK meant to send. */
async function recorded<T>(fn: () => Promise<T>): Promise<{ result: T; requests: RecordedMotoRequest[] }> {
  const { value, requests } = await motoRecorder.record(endpoint, fn);
  return { result: value, requests };
}

const writes = (requests: RecordedMotoRequest[]) => requests.filter(isWrite).map((r) => `${r.service} ${r.operation}`);

/** GetPolicyVersion / GetRole documents: AWS URL-encodes them, moto does not. */
const decodeDoc = (doc: string | undefined) => JSON.parse(doc!.trimStart().startsWith('{') ? doc! : decodeURIComponent(doc!));

function summary(bucket = BUCKET, names = { user: USER, group: GROUP, policy: POLICY, role: ROLE }): string {
  return (
    'Ready to deploy AWS Lambda Mattermost Apps!\n\n' +
    `User:\t${goQuote(arn('user', names.user))}\n` +
    `Group:\t${goQuote(arn('group', names.group))}\n` +
    `Policy:\t${goQuote(arn('policy', names.policy))}\n` +
    `Bucket:\t${goQuote(bucket)}\n` +
    `Execute role:\t${goQuote(arn('role', names.role))}\n`
  );
}

const EXPORT_LINES = /\nPlease store the Access Key securely, it will not be viewable again\.\n\nexport MM_APPS_AWS_ACCESS_KEY='([^'\n]+)'\nexport MM_APPS_AWS_SECRET_KEY='([^'\n]+)'\n$/;

async function accessKeyIds(user = USER): Promise<string[]> {
  const res = await iamClient().send(new ListAccessKeysCommand({ UserName: user }));
  return (res.AccessKeyMetadata ?? []).map((k) => k.AccessKeyId!);
}

function zipOf(name: string, content: string): Promise<Buffer> {
  const zip = new ZipFile();
  zip.addBuffer(Buffer.from(content), name, { mtime: new Date('2024-01-01T00:00:00Z') });
  zip.end();
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    zip.outputStream.on('data', (c: Buffer) => chunks.push(c));
    zip.outputStream.on('error', reject);
    zip.outputStream.on('end', () => resolve(Buffer.concat(chunks)));
  });
}

// Each test starts from an empty account: "exactly these resources" must not count another test's.
beforeEach(async () => {
  await resetMoto(endpoint);
});

describe('appsctl aws init', () => {
  it('gives a fresh account exactly the resources and documents of appsctl.md §1', async () => {
    // Prepare
    const iam = iamClient();
    const s3 = s3Client();

    // Act
    const run = await appsctl(['aws', 'init', '--create']);

    // Assess
    expect(run).toMatchObject({ code: 0, stdout: summary() });
    expect((await iam.send(new ListUsersCommand({}))).Users?.map((u) => u.UserName)).toEqual([USER]);
    expect((await iam.send(new ListGroupsCommand({}))).Groups?.map((g) => g.GroupName)).toEqual([GROUP]);
    expect((await iam.send(new ListRolesCommand({}))).Roles?.map((r) => r.RoleName)).toEqual([ROLE]);
    const policies = (await iam.send(new ListPoliciesCommand({ Scope: 'Local' }))).Policies ?? [];
    expect(policies.map((p) => p.PolicyName)).toEqual([POLICY]);
    expect((await s3.send(new ListBucketsCommand({}))).Buckets?.map((b) => b.Name)).toEqual([BUCKET]);

    const version = await iam.send(new GetPolicyVersionCommand({ PolicyArn: arn('policy', POLICY), VersionId: policies[0]!.DefaultVersionId! }));
    expect(decodeDoc(version.PolicyVersion?.Document)).toEqual(JSON.parse(renderPolicy(initialInvokePolicy(BUCKET))));
    expect((await iam.send(new ListPolicyVersionsCommand({ PolicyArn: arn('policy', POLICY) }))).Versions).toHaveLength(1);

    const group = await iam.send(new GetGroupCommand({ GroupName: GROUP }));
    expect(group.Users?.map((u) => u.UserName)).toEqual([USER]);
    const groupPolicies = await iam.send(new ListAttachedGroupPoliciesCommand({ GroupName: GROUP }));
    expect(groupPolicies.AttachedPolicies?.map((p) => p.PolicyArn)).toEqual([arn('policy', POLICY)]);

    const role = await iam.send(new GetRoleCommand({ RoleName: ROLE }));
    expect(decodeDoc(role.Role?.AssumeRolePolicyDocument)).toEqual(JSON.parse(EXECUTE_ROLE_TRUST_POLICY));
    const rolePolicies = await iam.send(new ListAttachedRolePoliciesCommand({ RoleName: ROLE }));
    expect(rolePolicies.AttachedPolicies?.map((p) => p.PolicyArn)).toEqual([BASIC_EXECUTION]);

    const block = await s3.send(new GetPublicAccessBlockCommand({ Bucket: BUCKET }));
    expect(block.PublicAccessBlockConfiguration).toEqual({ BlockPublicAcls: true, IgnorePublicAcls: true, BlockPublicPolicy: true, RestrictPublicBuckets: true });
    const encryption = await s3.send(new GetBucketEncryptionCommand({ Bucket: BUCKET }));
    expect(encryption.ServerSideEncryptionConfiguration?.Rules?.[0]?.ApplyServerSideEncryptionByDefault?.SSEAlgorithm).toBe('AES256');

    // No key was asked for.
    expect(await accessKeyIds()).toEqual([]);
    expect(run.stderr).toContain('created user');
  });

  it.each([
    { flags: ['--create'] },
    { flags: ['--create', '--create-access-key'] },
    { flags: ['--create', '--json'] },
  ])('makes no write call when run again with $flags', async ({ flags }) => {
    // Prepare
    const first = await appsctl(['aws', 'init', ...flags]);
    expect(first.code).toBe(0);
    const keysBefore = await accessKeyIds();

    // Act
    const { result: second, requests } = await recorded(() => appsctl(['aws', 'init', ...flags]));

    // Assess
    expect(second.code).toBe(0);
    expect(requests.length).toBeGreaterThan(0);
    expect(writes(requests)).toEqual([]);
    expect(await accessKeyIds()).toEqual(keysBefore);
    if (flags.includes('--create-access-key')) {
      // The notice names the existing key, and no secret is printed since none was created.
      expect(second.stderr).toContain(`already has access key ${keysBefore[0]}`);
      expect(second.stderr).toContain('--new-access-key');
      expect(second.stdout).toBe(summary());
    }
  });

  it('prints JSON with --json, and a second run reports nothing created or changed', async () => {
    // Act
    const first = await appsctl(['aws', 'init', '--create', '--json']);
    const second = await appsctl(['aws', 'init', '--json']);

    // Assess
    const a = JSON.parse(first.stdout);
    expect(a).toMatchObject({
      user: { name: USER, arn: arn('user', USER), created: true },
      group: { name: GROUP, arn: arn('group', GROUP), created: true, userAdded: true, policyAttached: true },
      policy: { name: POLICY, arn: arn('policy', POLICY), created: true },
      bucket: { name: BUCKET, created: true },
      executeRole: { name: ROLE, arn: arn('role', ROLE), created: true, policyAttached: true },
      warnings: [],
    });
    expect(a.accessKey).toBeUndefined();
    expect(a.changes.length).toBeGreaterThan(0);
    const b = JSON.parse(second.stdout);
    expect(b).toMatchObject({
      user: { created: false },
      group: { created: false, userAdded: false, policyAttached: false },
      policy: { created: false },
      bucket: { created: false },
      executeRole: { created: false, policyAttached: false },
      changes: [],
      warnings: [],
    });
  });

  it.each([
    {
      situation: 'a fresh account',
      prepare: async () => {},
      args: [] as string[],
      named: [`S3 bucket "${BUCKET}" is not configured`, `user "${USER}"`, `group "${GROUP}"`, `policy "${POLICY}"`, `execute role "${ROLE}"`],
    },
    {
      situation: 'only the bucket',
      prepare: async () => void (await s3Client().send(new CreateBucketCommand({ Bucket: BUCKET }))),
      args: [],
      named: [`user "${USER}"`, `group "${GROUP}"`, `policy "${POLICY}"`, `execute role "${ROLE}"`],
    },
    {
      situation: 'everything but the bucket',
      prepare: async () => {
        await appsctl(['aws', 'init', '--create'], baseEnv({ MM_APPS_S3_BUCKET: 'another-bucket' }));
      },
      args: [],
      named: [`S3 bucket "${BUCKET}" is not configured`],
    },
    {
      situation: 'everything but the execute role',
      prepare: async () => {
        await appsctl(['aws', 'init', '--create']);
        await iamClient().send(new DetachRolePolicyCommand({ RoleName: ROLE, PolicyArn: BASIC_EXECUTION }));
        await iamClient().send(new DeleteRoleCommand({ RoleName: ROLE }));
      },
      args: [],
      named: [`execute role "${ROLE}"`],
    },
    {
      situation: 'everything but a group named by --group',
      prepare: async () => {
        await appsctl(['aws', 'init', '--create']);
      },
      args: ['--group', 'other-group', '--create-access-key'],
      named: ['group "other-group"'],
    },
  ])('with $situation and no --create, fails naming what is missing and changes nothing', async ({ prepare, args, named }) => {
    // Prepare
    await prepare();

    // Act
    const { result: run, requests } = await recorded(() => appsctl(['aws', 'init', ...args]));

    // Assess
    expect(run.code).toBe(1);
    for (const what of named) expect(run.stderr).toContain(what);
    expect(run.stderr).toContain('--create');
    expect(run.stdout).toBe('');
    expect(writes(requests)).toEqual([]);
  });

  it('reports an invoke policy that lacks the S3 grants, and leaves it as it is', async () => {
    // Prepare: a hand-made policy with the Lambda statement only
    const handMade = JSON.stringify({ Version: '2012-10-17', Statement: [{ Sid: 'AllowLambda', Effect: 'Allow', Action: ['lambda:InvokeFunction'], Resource: ['*'] }] });
    await iamClient().send(new CreatePolicyCommand({ PolicyName: POLICY, PolicyDocument: handMade }));

    // Act
    const run = await appsctl(['aws', 'init', '--create', '--json']);

    // Assess
    expect(run.code).toBe(0);
    const result = JSON.parse(run.stdout);
    expect(result.policy.created).toBe(false);
    expect(result.warnings).toHaveLength(1);
    expect(result.warnings[0]).toContain(`s3:GetObject on arn:aws:s3:::${BUCKET}/manifests/*`);
    expect(result.warnings[0]).toContain(`s3:ListBucket on arn:aws:s3:::${BUCKET}`);
    expect(run.stderr).toContain(`warn: invoke policy "${POLICY}"`);
    const versions = await iamClient().send(new ListPolicyVersionsCommand({ PolicyArn: arn('policy', POLICY) }));
    expect(versions.Versions?.map((v) => v.VersionId)).toEqual(['v1']);
  });

  it('prints a new access key exactly as the export lines of appsctl.md §1, and nowhere else', async () => {
    // Act
    const run = await appsctl(['aws', 'init', '--create', '--create-access-key']);

    // Assess
    expect(run.code).toBe(0);
    const match = EXPORT_LINES.exec(run.stdout);
    expect(match).not.toBeNull();
    const [, id, secret] = match!;
    expect(run.stdout).toBe(
      `${summary()}\nPlease store the Access Key securely, it will not be viewable again.\n\n` +
        `export MM_APPS_AWS_ACCESS_KEY='${id}'\nexport MM_APPS_AWS_SECRET_KEY='${secret}'\n`,
    );
    expect(await accessKeyIds()).toEqual([id]);
    expect(run.stderr).not.toContain(secret);
    expect(run.stderr).toContain(id);
  });

  it('creates a second key with --new-access-key, and at IAM\'s limit of 2 fails before any change', async () => {
    // Prepare: two keys, and a deleted group that a run going ahead would re-create
    const first = await appsctl(['aws', 'init', '--create', '--create-access-key']);
    const second = await appsctl(['aws', 'init', '--new-access-key']);
    expect(EXPORT_LINES.test(second.stdout)).toBe(true);
    const keys = await accessKeyIds();
    expect(keys).toHaveLength(2);
    expect(first.code + second.code).toBe(0);
    await iamClient().send(new RemoveUserFromGroupCommand({ GroupName: GROUP, UserName: USER }));
    await iamClient().send(new DetachGroupPolicyCommand({ GroupName: GROUP, PolicyArn: arn('policy', POLICY) }));
    await iamClient().send(new DeleteGroupCommand({ GroupName: GROUP }));

    // Act
    const { result: third, requests } = await recorded(() => appsctl(['aws', 'init', '--create', '--new-access-key']));

    // Assess
    expect(third.code).toBe(1);
    expect(third.stderr).toContain(`user "${USER}" already has 2 access keys`);
    expect(third.stderr).toContain('aws iam delete-access-key');
    expect(third.stdout).toBe('');
    expect(writes(requests)).toEqual([]);
    expect(await accessKeyIds()).toEqual(keys);
    expect((await iamClient().send(new ListGroupsCommand({}))).Groups).toEqual([]);
  });

  it.each([
    { variable: 'MM_APPS_AWS_REGION' },
    { variable: 'MM_APPS_DEPLOY_AWS_ACCESS_KEY' },
    { variable: 'MM_APPS_DEPLOY_AWS_SECRET_KEY' },
  ])('without $variable, fails naming it and makes no AWS call', async ({ variable }) => {
    // Prepare: no SDK credentials either, so that the default chain cannot stand in
    const env = baseEnv({ [variable]: undefined, AWS_ACCESS_KEY_ID: undefined, AWS_SECRET_ACCESS_KEY: undefined });

    // Act
    const { result: run, requests } = await recorded(() => appsctl(['aws', 'init', '--create'], env));

    // Assess
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`Please set ${variable}`);
    expect(requests).toEqual([]);
  });
});

describe('appsctl aws clean', () => {
  it('removes what init made, keeps the bucket, and succeeds again when everything is gone', async () => {
    // Prepare: two keys and an extra policy version, which IAM requires gone before the user and the policy
    const init = await appsctl(['aws', 'init', '--create', '--create-access-key']);
    const [, keyId] = EXPORT_LINES.exec(init.stdout)!;
    await appsctl(['aws', 'init', '--new-access-key']);
    const grown = initialInvokePolicy(BUCKET);
    grown.Statement.push({ Sid: 'AllowLambda', Effect: 'Allow', Action: ['lambda:InvokeFunction'], Resource: ['arn:aws:lambda:us-east-1:123456789012:function:x'] });
    const doc = renderPolicy(grown);
    await iamClient().send(new CreatePolicyVersionCommand({ PolicyArn: arn('policy', POLICY), PolicyDocument: doc, SetAsDefault: true }));
    const env = baseEnv({ MM_APPS_AWS_ACCESS_KEY: keyId });

    // Act
    const first = await appsctl(['aws', 'clean'], env);
    const again = await appsctl(['aws', 'clean', '--json'], env);

    // Assess
    expect(first.code).toBe(0);
    const iam = iamClient();
    expect((await iam.send(new ListUsersCommand({}))).Users).toEqual([]);
    expect((await iam.send(new ListGroupsCommand({}))).Groups).toEqual([]);
    expect((await iam.send(new ListRolesCommand({}))).Roles).toEqual([]);
    expect((await iam.send(new ListPoliciesCommand({ Scope: 'Local' }))).Policies).toEqual([]);
    expect((await s3Client().send(new ListBucketsCommand({}))).Buckets?.map((b) => b.Name)).toEqual([BUCKET]);
    expect(first.stdout).toContain(`Bucket:\t"${BUCKET}" kept`);
    expect(first.stdout).toContain(`Execute role:\t"${ROLE}" deleted`);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({
      user: { status: 'absent' },
      group: { status: 'absent' },
      policy: { status: 'absent' },
      executeRole: { status: 'absent' },
      bucket: { name: BUCKET, status: 'kept' },
      deletedAccessKeyIds: [],
    });
  });

  it('keeps an execute role that a function still uses, and names the function', async () => {
    // Prepare: custom names, to show clean takes the same flags as init
    const names = ['--user', 'u1', '--group', 'g1', '--policy', 'p1', '--execute-role', 'r1'];
    const init = await appsctl(['aws', 'init', '--create', '--create-access-key', ...names]);
    expect(init.code).toBe(0);
    const [, keyId] = EXPORT_LINES.exec(init.stdout)!;
    await lambdaClient().send(
      new CreateFunctionCommand({ FunctionName: 'app_1-0-0_fn', Runtime: 'nodejs22.x', Handler: 'index.handler', Role: arn('role', 'r1'), Code: { ZipFile: await zipOf('index.js', '') } }),
    );

    // Act
    const run = await appsctl(['aws', 'clean', '--json', ...names], baseEnv({ MM_APPS_AWS_ACCESS_KEY: keyId }));

    // Assess
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({
      user: { name: 'u1', status: 'deleted' },
      group: { name: 'g1', status: 'deleted' },
      policy: { name: 'p1', status: 'deleted' },
      deletedAccessKeyIds: [keyId],
      executeRole: { name: 'r1', status: 'kept', usedBy: ['app_1-0-0_fn'] },
    });
    expect(run.stderr).toContain('app_1-0-0_fn');
    expect((await iamClient().send(new GetRoleCommand({ RoleName: 'r1' }))).Role?.RoleName).toBe('r1');
    expect((await iamClient().send(new ListAttachedRolePoliciesCommand({ RoleName: 'r1' }))).AttachedPolicies).toHaveLength(1);
  });

  it('without MM_APPS_AWS_ACCESS_KEY, fails naming it and makes no AWS call', async () => {
    // Act
    const { result: run, requests } = await recorded(() => appsctl(['aws', 'clean'], baseEnv({ MM_APPS_AWS_ACCESS_KEY: undefined })));

    // Assess
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('Please set MM_APPS_AWS_ACCESS_KEY');
    expect(requests).toEqual([]);
  });
});
