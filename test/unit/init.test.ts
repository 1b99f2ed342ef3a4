// The logic of init and clean (src/core/init.ts) on in-memory ports, where every write is counted and any
// failure can be injected; plus the IAM adapter's throttling retry against a local HTTP server.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { makeAwsClients } from '../../src/adapters/aws';
import { SdkIamPort } from '../../src/adapters/iam';
import { DEFAULTS } from '../../src/core/config';
import { AppsDeployerError, BadRequestError, ConflictError, NotFoundError } from '../../src/core/errors';
import { API_SPELLING, clean, formatCleanSummary, formatInitSummary, initialize, type InitOptions } from '../../src/core/init';
import type { LogFields, Logger } from '../../src/core/logger';
import { EXECUTE_ROLE_TRUST_POLICY, initialInvokePolicy, renderPolicy } from '../../src/core/policy';
import type { AccessKey, IamEntity, IamPolicy, IamPort, PolicyVersion, S3Port } from '../../src/core/ports';

const ACCOUNT = '123456789012';
const BUCKET = 'unit-bucket';
const arnOf = (kind: string, name: string) => `arn:aws:iam::${ACCOUNT}:${kind}/${name}`;

/** An IAM account in memory. Reads answer from the state; writes change it and are appended to `writes`. */
class FakeIam implements IamPort {
  users = new Map<string, string[]>(); // user → access key IDs
  groups = new Map<string, { members: string[]; policies: string[] }>();
  policies = new Map<string, { name: string; versions: Array<{ id: string; doc: string }>; defaultVersion: string }>();
  roles = new Map<string, { trust: string; policies: string[] }>();
  writes: string[] = [];
  failOn?: string;
  private keyCounter = 0;

  private write(op: string): void {
    if (this.failOn === op) throw new Error(`${op} failed (injected)`);
    this.writes.push(op);
  }

  async getUser(name: string): Promise<IamEntity | undefined> {
    return this.users.has(name) ? { name, arn: arnOf('user', name) } : undefined;
  }
  async createUser(name: string): Promise<IamEntity> {
    this.write('CreateUser');
    this.users.set(name, []);
    return { name, arn: arnOf('user', name) };
  }
  async deleteUser(name: string): Promise<void> {
    this.write('DeleteUser');
    this.users.delete(name);
  }
  async listAccessKeys(user: string): Promise<AccessKey[]> {
    return (this.users.get(user) ?? []).map((accessKeyId) => ({ accessKeyId }));
  }
  async createAccessKey(user: string): Promise<Required<AccessKey>> {
    this.write('CreateAccessKey');
    const accessKeyId = `AKIAFAKE${++this.keyCounter}`;
    this.users.get(user)!.push(accessKeyId);
    return { accessKeyId, secretAccessKey: `secret-${accessKeyId}-do-not-log` };
  }
  async deleteAccessKey(user: string, accessKeyId: string): Promise<void> {
    this.write(`DeleteAccessKey ${accessKeyId}`);
    const keys = this.users.get(user);
    if (keys) this.users.set(user, keys.filter((k) => k !== accessKeyId));
  }
  async getGroup(name: string) {
    const g = this.groups.get(name);
    return g ? { name, arn: arnOf('group', name), members: [...g.members] } : undefined;
  }
  async createGroup(name: string): Promise<IamEntity> {
    this.write('CreateGroup');
    this.groups.set(name, { members: [], policies: [] });
    return { name, arn: arnOf('group', name) };
  }
  async deleteGroup(name: string): Promise<void> {
    this.write('DeleteGroup');
    this.groups.delete(name);
  }
  async addUserToGroup(user: string, group: string): Promise<void> {
    this.write('AddUserToGroup');
    this.groups.get(group)!.members.push(user);
  }
  async removeUserFromGroup(user: string, group: string): Promise<void> {
    this.write('RemoveUserFromGroup');
    const g = this.groups.get(group);
    if (g) g.members = g.members.filter((m) => m !== user);
  }
  async listAttachedGroupPolicies(group: string): Promise<string[]> {
    return [...(this.groups.get(group)?.policies ?? [])];
  }
  async attachGroupPolicy(group: string, policyArn: string): Promise<void> {
    this.write('AttachGroupPolicy');
    this.groups.get(group)!.policies.push(policyArn);
  }
  async detachGroupPolicy(group: string, policyArn: string): Promise<void> {
    this.write('DetachGroupPolicy');
    const g = this.groups.get(group);
    if (g) g.policies = g.policies.filter((p) => p !== policyArn);
  }
  async findPolicy(name: string): Promise<IamPolicy | undefined> {
    const p = this.policies.get(name);
    return p ? { name, arn: arnOf('policy', name), defaultVersionId: p.defaultVersion } : undefined;
  }
  async createPolicy(name: string, document: string): Promise<IamPolicy> {
    this.write(`CreatePolicy ${document}`);
    this.policies.set(name, { name, versions: [{ id: 'v1', doc: document }], defaultVersion: 'v1' });
    return { name, arn: arnOf('policy', name), defaultVersionId: 'v1' };
  }
  async deletePolicy(arn: string): Promise<void> {
    this.write('DeletePolicy');
    for (const [name] of this.policies) if (arnOf('policy', name) === arn) this.policies.delete(name);
  }
  private policyByArn(arn: string) {
    return [...this.policies.values()].find((p) => arnOf('policy', p.name) === arn)!;
  }
  async listPolicyVersions(arn: string): Promise<PolicyVersion[]> {
    const p = this.policyByArn(arn);
    return p.versions.map((v) => ({ versionId: v.id, isDefault: v.id === p.defaultVersion }));
  }
  async getPolicyDocument(arn: string, versionId: string): Promise<string> {
    return this.policyByArn(arn).versions.find((v) => v.id === versionId)!.doc;
  }
  async createPolicyVersion(arn: string, document: string): Promise<string> {
    this.write('CreatePolicyVersion');
    const p = this.policyByArn(arn);
    const id = `v${p.versions.length + 1}`;
    p.versions.push({ id, doc: document });
    p.defaultVersion = id;
    return id;
  }
  async deletePolicyVersion(arn: string, versionId: string): Promise<void> {
    this.write(`DeletePolicyVersion ${versionId}`);
    const p = this.policyByArn(arn);
    p.versions = p.versions.filter((v) => v.id !== versionId);
  }
  async getRole(name: string): Promise<IamEntity | undefined> {
    return this.roles.has(name) ? { name, arn: arnOf('role', name) } : undefined;
  }
  async createRole(name: string, trustPolicy: string): Promise<IamEntity> {
    this.write(`CreateRole ${trustPolicy}`);
    this.roles.set(name, { trust: trustPolicy, policies: [] });
    return { name, arn: arnOf('role', name) };
  }
  async deleteRole(name: string): Promise<void> {
    this.write('DeleteRole');
    this.roles.delete(name);
  }
  async listAttachedRolePolicies(role: string): Promise<string[]> {
    return [...(this.roles.get(role)?.policies ?? [])];
  }
  async attachRolePolicy(role: string, policyArn: string): Promise<void> {
    this.write(`AttachRolePolicy ${policyArn}`);
    this.roles.get(role)!.policies.push(policyArn);
  }
  async detachRolePolicy(role: string, policyArn: string): Promise<void> {
    this.write(`DetachRolePolicy ${policyArn}`);
    const r = this.roles.get(role);
    if (r) r.policies = r.policies.filter((p) => p !== policyArn);
  }
}

function fakeS3(exists: boolean, writes: string[]): S3Port {
  const s3 = {
    bucket: BUCKET,
    bucketExists: async () => exists,
    createBucket: async () => {
      writes.push('CreateBucket');
      exists = true;
    },
  };
  return s3 as unknown as S3Port;
}

/** Records every log call with its fields, so tests can look for a secret in all of them. */
function recordingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const at = (level: string) => (msg: string, fields?: LogFields) => void lines.push(`${level} ${msg} ${JSON.stringify(fields ?? {})}`);
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

function options(overrides: Partial<InitOptions> = {}): InitOptions {
  return {
    bucket: BUCKET,
    user: DEFAULTS.user,
    group: DEFAULTS.group,
    policy: DEFAULTS.policy,
    executeRole: DEFAULTS.executeRole,
    create: true,
    createAccessKey: false,
    newAccessKey: false,
    ...overrides,
  };
}

/** An account as a complete `init --create` leaves it, without going through init. */
function completeAccount(iam: FakeIam, keys: string[] = []): void {
  iam.users.set(DEFAULTS.user, [...keys]);
  iam.groups.set(DEFAULTS.group, { members: [DEFAULTS.user], policies: [arnOf('policy', DEFAULTS.policy)] });
  iam.policies.set(DEFAULTS.policy, { name: DEFAULTS.policy, versions: [{ id: 'v1', doc: renderPolicy(initialInvokePolicy(BUCKET)) }], defaultVersion: 'v1' });
  iam.roles.set(DEFAULTS.executeRole, { trust: EXECUTE_ROLE_TRUST_POLICY, policies: [DEFAULTS.lambdaExecutionPolicyArn] });
}

describe('initialize', () => {
  it('on an empty account, creates everything in order and the access key last', async () => {
    // Prepare
    const iam = new FakeIam();
    const s3Writes: string[] = [];

    // Act
    const result = await initialize({ iam, s3: fakeS3(false, s3Writes) }, options({ createAccessKey: true }), recordingLogger());

    // Assess
    expect(s3Writes).toEqual(['CreateBucket']);
    expect(iam.writes).toEqual([
      'CreateUser',
      'CreateGroup',
      `CreatePolicy ${renderPolicy(initialInvokePolicy(BUCKET))}`,
      'AttachGroupPolicy',
      'AddUserToGroup',
      `CreateRole ${EXECUTE_ROLE_TRUST_POLICY}`,
      `AttachRolePolicy ${DEFAULTS.lambdaExecutionPolicyArn}`,
      'CreateAccessKey',
    ]);
    expect(result.accessKey?.accessKeyId).toBe('AKIAFAKE1');
    expect(result.changes).toHaveLength(9);
  });

  it('on a complete account, writes nothing', async () => {
    // Prepare
    const iam = new FakeIam();
    completeAccount(iam, ['AKIAOLD']);
    const s3Writes: string[] = [];

    // Act
    const result = await initialize({ iam, s3: fakeS3(true, s3Writes) }, options({ createAccessKey: true }), recordingLogger());

    // Assess
    expect([...iam.writes, ...s3Writes]).toEqual([]);
    expect(result).toMatchObject({ changes: [], warnings: [], existingAccessKeyIds: ['AKIAOLD'] });
    expect(result.accessKey).toBeUndefined();
  });

  it('completes the attachments of existing resources without re-creating them', async () => {
    // Prepare: everything exists, but the user is not in the group and nothing is attached
    const iam = new FakeIam();
    completeAccount(iam);
    iam.groups.set(DEFAULTS.group, { members: [], policies: [] });
    iam.roles.get(DEFAULTS.executeRole)!.policies = [];

    // Act
    const result = await initialize({ iam, s3: fakeS3(true, []) }, options({ create: false }), recordingLogger());

    // Assess
    expect(iam.writes).toEqual(['AttachGroupPolicy', 'AddUserToGroup', `AttachRolePolicy ${DEFAULTS.lambdaExecutionPolicyArn}`]);
    expect(result.group).toMatchObject({ created: false, userAdded: true, policyAttached: true });
  });

  it.each([
    { keys: [], createAccessKey: true, newAccessKey: false, created: true, notice: false },
    { keys: ['AKIA1'], createAccessKey: true, newAccessKey: false, created: false, notice: true },
    { keys: ['AKIA1', 'AKIA2'], createAccessKey: true, newAccessKey: false, created: false, notice: true },
    { keys: [], createAccessKey: false, newAccessKey: true, created: true, notice: false },
    { keys: ['AKIA1'], createAccessKey: false, newAccessKey: true, created: true, notice: false },
    { keys: ['AKIA1'], createAccessKey: false, newAccessKey: false, created: false, notice: false },
  ])('with keys $keys, createAccessKey=$createAccessKey, newAccessKey=$newAccessKey: key created=$created', async ({ keys, createAccessKey, newAccessKey, created, notice }) => {
    // Prepare
    const iam = new FakeIam();
    completeAccount(iam, keys);
    const logger = recordingLogger();

    // Act
    const result = await initialize({ iam, s3: fakeS3(true, []) }, options({ createAccessKey, newAccessKey }), logger);

    // Assess
    expect(Boolean(result.accessKey)).toBe(created);
    expect(iam.writes).toEqual(created ? ['CreateAccessKey'] : []);
    expect(logger.lines.some((l) => l.includes('whose secret cannot be shown again'))).toBe(notice);
    if (result.accessKey) expect(logger.lines.join('\n')).not.toContain(result.accessKey.secretAccessKey);
  });

  it('refuses newAccessKey at IAM\'s limit before any write, even with things left to create', async () => {
    // Prepare: the group is missing, so a run that went ahead would create it
    const iam = new FakeIam();
    completeAccount(iam, ['AKIA1', 'AKIA2']);
    iam.groups.delete(DEFAULTS.group);

    // Act
    const run = initialize({ iam, s3: fakeS3(false, []) }, options({ newAccessKey: true }), recordingLogger());

    // Assess
    await expect(run).rejects.toBeInstanceOf(ConflictError);
    await expect(run).rejects.toThrow(/user "mattermost-apps-invoke" already has 2 access keys \(AKIA1, AKIA2\).*delete-access-key/);
    expect(iam.writes).toEqual([]);
  });

  it('without create, names every missing resource and the option to pass, before any write', async () => {
    // Prepare
    const iam = new FakeIam();
    completeAccount(iam);
    iam.policies.clear();
    iam.roles.clear();

    // Act
    const run = initialize({ iam, s3: fakeS3(true, []) }, options({ create: false, createAccessKey: true, spelling: API_SPELLING }), recordingLogger());

    // Assess
    const err = await run.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotFoundError);
    expect((err as Error).message).toBe(
      'failed to find policy "mattermost-apps-invoke-policy"; failed to find execute role "mattermost-apps-execute-lambda-role": pass "create": true to create them. Nothing was changed.',
    );
    expect((err as AppsDeployerError).details.map((d) => d.path)).toEqual(['policy', 'executeRole']);
    expect(iam.writes).toEqual([]);
  });

  it('creates no access key when an earlier step fails, so no secret is lost', async () => {
    // Prepare
    const iam = new FakeIam();
    iam.failOn = 'AttachGroupPolicy';

    // Act
    const run = initialize({ iam, s3: fakeS3(true, []) }, options({ createAccessKey: true }), recordingLogger());

    // Assess
    await expect(run).rejects.toThrow('AttachGroupPolicy failed');
    expect(iam.writes).not.toContain('CreateAccessKey');
  });

  it.each([
    { document: JSON.stringify({ Version: '2012-10-17', Statement: [] }), problem: 'does not grant s3:GetObject on arn:aws:s3:::unit-bucket/manifests/*, s3:GetObject on arn:aws:s3:::unit-bucket/static/*, s3:ListBucket on arn:aws:s3:::unit-bucket' },
    { document: renderPolicy(initialInvokePolicy('another-bucket')), problem: 'does not grant s3:GetObject on arn:aws:s3:::unit-bucket/manifests/*' },
    { document: 'not json', problem: 'is not a JSON policy document' },
  ])('warns about an invoke policy that $problem, without rewriting it', async ({ document, problem }) => {
    // Prepare
    const iam = new FakeIam();
    completeAccount(iam);
    iam.policies.get(DEFAULTS.policy)!.versions = [{ id: 'v1', doc: document }];
    const logger = recordingLogger();

    // Act
    const result = await initialize({ iam, s3: fakeS3(true, []) }, options(), logger);

    // Assess
    expect(result.warnings).toHaveLength(1);
    expect(result.warnings[0]).toContain(problem);
    expect(logger.lines.filter((l) => l.startsWith('warn '))).toHaveLength(1);
    expect(iam.writes).toEqual([]);
  });

  it.each([
    { field: 'user', value: 'has space' },
    { field: 'executeRole', value: 'r'.repeat(65) },
    { field: 'group', value: '' },
  ])('refuses an invalid $field before any call', async ({ field, value }) => {
    // Prepare
    const iam = new FakeIam();
    const reads: string[] = [];
    iam.getUser = async () => (reads.push('GetUser'), undefined);

    // Act
    const run = initialize({ iam, s3: fakeS3(true, []) }, options({ [field]: value }), recordingLogger());

    // Assess
    await expect(run).rejects.toBeInstanceOf(BadRequestError);
    expect(reads).toEqual([]);
  });
});

describe('formatInitSummary', () => {
  it('prints the summary of appsctl.md §1, the execute role, and the export lines', () => {
    // Prepare
    const result = {
      user: { name: 'u', arn: arnOf('user', 'u'), created: false },
      group: { name: 'g', arn: arnOf('group', 'g'), created: false, userAdded: false, policyAttached: false },
      policy: { name: 'p', arn: arnOf('policy', 'p'), created: false },
      bucket: { name: 'b', created: false },
      executeRole: { name: 'r', arn: arnOf('role', 'r'), created: false, policyAttached: false },
      accessKey: { accessKeyId: 'AKIAX', secretAccessKey: 's/ecret+1' },
      existingAccessKeyIds: [],
      changes: [],
      warnings: [],
    };

    // Act
    const text = formatInitSummary(result);

    // Assess
    expect(text).toBe(
      'Ready to deploy AWS Lambda Mattermost Apps!\n\n' +
        `User:\t"arn:aws:iam::${ACCOUNT}:user/u"\nGroup:\t"arn:aws:iam::${ACCOUNT}:group/g"\n` +
        `Policy:\t"arn:aws:iam::${ACCOUNT}:policy/p"\nBucket:\t"b"\nExecute role:\t"arn:aws:iam::${ACCOUNT}:role/r"\n` +
        '\nPlease store the Access Key securely, it will not be viewable again.\n\n' +
        "export MM_APPS_AWS_ACCESS_KEY='AKIAX'\nexport MM_APPS_AWS_SECRET_KEY='s/ecret+1'\n",
    );
  });
});

describe('clean', () => {
  const cleanOptions = { ...options(), accessKeyId: 'AKIA1' };

  it('removes everything in upstream\'s order, with the other keys and old policy versions, and keeps the bucket', async () => {
    // Prepare
    const iam = new FakeIam();
    completeAccount(iam, ['AKIA2', 'AKIA1']);
    iam.policies.get(DEFAULTS.policy)!.versions.push({ id: 'v2', doc: '{}' });
    iam.policies.get(DEFAULTS.policy)!.defaultVersion = 'v2';

    // Act
    const result = await clean({ iam, lambda: { listFunctionsUsingRole: async () => [] } }, cleanOptions, recordingLogger());

    // Assess
    expect(iam.writes).toEqual([
      'RemoveUserFromGroup',
      'DetachGroupPolicy',
      'DeleteAccessKey AKIA1',
      'DeleteAccessKey AKIA2',
      'DeleteGroup',
      'DeleteUser',
      'DeletePolicyVersion v1',
      'DeletePolicy',
      `DetachRolePolicy ${DEFAULTS.lambdaExecutionPolicyArn}`,
      'DeleteRole',
    ]);
    expect(result).toMatchObject({ deletedAccessKeyIds: ['AKIA1', 'AKIA2'], executeRole: { status: 'deleted' }, bucket: { name: BUCKET, status: 'kept' } });
    expect(formatCleanSummary(result)).toContain(`Bucket:\t"${BUCKET}" kept`);
  });

  it('keeps the execute role while functions use it, and says which', async () => {
    // Prepare
    const iam = new FakeIam();
    completeAccount(iam, ['AKIA1']);
    const usedWith: string[] = [];
    const lambda = { listFunctionsUsingRole: async (roleArn: string) => (usedWith.push(roleArn), ['app_1_a', 'app_1_b']) };

    // Act
    const result = await clean({ iam, lambda }, cleanOptions, recordingLogger());

    // Assess
    expect(usedWith).toEqual([arnOf('role', DEFAULTS.executeRole)]);
    expect(iam.writes.filter((w) => w.includes('Role'))).toEqual([]);
    expect(result.executeRole).toMatchObject({ status: 'kept', usedBy: ['app_1_a', 'app_1_b'] });
    expect(result.warnings[0]).toContain('functions app_1_a, app_1_b still use it');
    expect(formatCleanSummary(result)).toContain('kept: used by app_1_a, app_1_b');
  });

  it('on an empty account, writes nothing and reports everything already gone', async () => {
    // Prepare
    const iam = new FakeIam();

    // Act
    const result = await clean({ iam, lambda: { listFunctionsUsingRole: async () => [] } }, cleanOptions, recordingLogger());

    // Assess
    expect(iam.writes).toEqual([]);
    expect(result).toMatchObject({ user: { status: 'absent' }, group: { status: 'absent' }, policy: { status: 'absent' }, executeRole: { status: 'absent' } });
  });

  it('warns when the given key is not the user\'s, and still deletes the user\'s keys', async () => {
    // Prepare
    const iam = new FakeIam();
    completeAccount(iam, ['AKIA9']);

    // Act
    const result = await clean({ iam, lambda: { listFunctionsUsingRole: async () => [] } }, cleanOptions, recordingLogger());

    // Assess
    expect(result.warnings[0]).toContain('access key AKIA1 is not a key of user');
    expect(result.deletedAccessKeyIds).toEqual(['AKIA9']);
  });
});

describe('IAM throttling', () => {
  let server: Server | undefined;
  const savedEndpoint = process.env.AWS_ENDPOINT_URL_IAM;

  afterEach(async () => {
    if (savedEndpoint === undefined) delete process.env.AWS_ENDPOINT_URL_IAM;
    else process.env.AWS_ENDPOINT_URL_IAM = savedEndpoint;
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  });

  it('is retried (the SDK\'s adaptive backoff, then ours) until IAM answers', async () => {
    // Prepare: an IAM endpoint that throttles the first two requests, as AWS does under a burst
    const times: number[] = [];
    server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        times.push(Date.now());
        res.setHeader('content-type', 'text/xml');
        if (times.length <= 2) {
          res.statusCode = 400;
          res.end('<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>r</RequestId></ErrorResponse>');
          return;
        }
        res.end(
          '<GetUserResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><GetUserResult><User><Path>/</Path><UserName>u</UserName>' +
            `<UserId>AIDAX</UserId><Arn>${arnOf('user', 'u')}</Arn><CreateDate>2024-01-01T00:00:00Z</CreateDate></User></GetUserResult>` +
            '<ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></GetUserResponse>',
        );
      });
    });
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    process.env.AWS_ENDPOINT_URL_IAM = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const clients = makeAwsClients({ region: 'us-east-1', bucket: BUCKET, credentials: { accessKeyId: 'AKIATEST', secretAccessKey: 'test' } });
    const iam = new SdkIamPort(clients.iam);

    // Act
    const user = await iam.getUser('u');
    clients.iam.destroy();

    // Assess
    expect(user).toEqual({ name: 'u', arn: arnOf('user', 'u') });
    expect(times).toHaveLength(3);
  });
});
