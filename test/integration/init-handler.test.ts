// `POST /init` (design.md §3) on the shared handler stack, against moto: the bearer token is required, the body is
// validated strictly, and the new access key's secret appears in the one response and never in the logs.
import { ListAccessKeysCommand, ListGroupsCommand, ListRolesCommand, ListUsersCommand } from '@aws-sdk/client-iam';
import { GetPublicAccessBlockCommand } from '@aws-sdk/client-s3';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import fs from 'node:fs';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, inject, it, vi, type MockInstance } from 'vitest';
import { handler } from '../../src/handlers/init';
import { logger, resetRuntime } from '../../src/handlers/http/runtime';
import { iamClient, s3Client, TEST_ACCOUNT_ID } from '../support/aws.js';
import { resetMoto } from '../support/moto.js';

const endpoint = inject('motoEndpoint');

const TOKEN = 'init-handler-admin-token-0123456789';
const BUCKET = 'apps-init-handler-bucket';
const arn = (kind: string, name: string) => `arn:aws:iam::${TEST_ACCOUNT_ID}:${kind}/${name}`;

function event(opts: { body?: unknown; authorization?: string }): APIGatewayProxyEventV2 {
  return {
    version: '2.0',
    routeKey: 'POST /init',
    rawPath: '/init',
    rawQueryString: '',
    headers: opts.authorization === undefined ? {} : { authorization: opts.authorization },
    requestContext: { http: { method: 'POST', path: '/init' } },
    body: opts.body === undefined ? undefined : typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body),
    isBase64Encoded: false,
  } as unknown as APIGatewayProxyEventV2;
}

const context = { awsRequestId: 'test-request', functionName: 'apps-deployer-init', getRemainingTimeInMillis: () => 30_000 } as unknown as Context;

async function post(opts: { body?: unknown; authorization?: string }) {
  const res = (await handler(event(opts), context)) as APIGatewayProxyStructuredResultV2;
  return { status: res.statusCode, body: JSON.parse(String(res.body)) };
}

const admin = `Bearer ${TOKEN}`;

// Everything the handler logs, seen twice: the logger port's calls (arguments before redaction, so the stricter
// check) and the lines pino writes. pino writes to fd 1 with fs.write (sonic-boom), not through process.stdout.
let logCalls: string[] = [];
let logLines: string[] = [];
const spies: MockInstance[] = [];
const logged = () => [...logCalls, ...logLines].join('\n');

function captureFd1Writes(): void {
  const write = fs.write.bind(fs) as (...args: unknown[]) => void;
  const writeSync = fs.writeSync.bind(fs) as (...args: unknown[]) => number;
  spies.push(
    vi.spyOn(fs, 'write').mockImplementation(((fd: number, data: unknown, ...rest: unknown[]) => {
      if (fd !== 1) return write(fd, data, ...rest);
      const text = String(data);
      logLines.push(text);
      const callback = rest[rest.length - 1];
      if (typeof callback === 'function') process.nextTick(callback, null, Buffer.byteLength(text));
    }) as never),
    vi.spyOn(fs, 'writeSync').mockImplementation(((fd: number, data: unknown, ...rest: unknown[]) => {
      if (fd !== 1) return writeSync(fd, data, ...rest);
      const text = String(data);
      logLines.push(text);
      return Buffer.byteLength(text);
    }) as never),
  );
}

const savedEnv = { ...process.env };

beforeAll(() => {
  Object.assign(process.env, { APPS_DEPLOYER_ADMIN_TOKEN: TOKEN, MM_APPS_S3_BUCKET: BUCKET });
  resetRuntime();
});

afterAll(() => {
  for (const k of ['APPS_DEPLOYER_ADMIN_TOKEN', 'MM_APPS_S3_BUCKET']) {
    if (savedEnv[k] === undefined) delete process.env[k];
    else process.env[k] = savedEnv[k];
  }
  resetRuntime();
});

beforeEach(async () => {
  await resetMoto(endpoint);
  logCalls = [];
  logLines = [];
  for (const level of ['debug', 'info', 'warn', 'error'] as const) {
    const original = logger[level];
    spies.push(vi.spyOn(logger, level).mockImplementation((msg, fields) => (logCalls.push(`${msg} ${JSON.stringify(fields ?? {})}`), original(msg, fields))));
  }
  captureFd1Writes();
});

afterEach(() => {
  for (const s of spies.splice(0)) s.mockRestore();
});

describe('POST /init', () => {
  it.each([
    { case: 'no Authorization header', authorization: undefined, status: 401, code: 'UNAUTHORIZED' },
    { case: 'a header that is not a bearer token', authorization: `Basic ${TOKEN}`, status: 401, code: 'UNAUTHORIZED' },
    { case: 'a wrong token', authorization: 'Bearer not-the-admin-token-at-all', status: 403, code: 'FORBIDDEN' },
  ])('refuses $case with $status and changes nothing', async ({ authorization, status, code }) => {
    // Act
    const res = await post({ body: { create: true }, ...(authorization === undefined ? {} : { authorization }) });

    // Assess
    expect(res).toMatchObject({ status, body: { error: { code } } });
    expect((await iamClient().send(new ListUsersCommand({}))).Users).toEqual([]);
  });

  it.each([
    { case: 'an unknown field', body: { create: true, bucket: 'other' }, path: '(body)' },
    { case: 'a boolean as a string', body: { create: 'yes' }, path: 'create' },
    { case: 'an invalid IAM name', body: { user: 'no spaces allowed' }, path: 'user' },
    { case: 'a name over IAM\'s length limit', body: { executeRole: 'r'.repeat(65) }, path: 'executeRole' },
    { case: 'a body that is not JSON', body: '{create: true', path: undefined },
  ])('answers 400 to $case', async ({ body, path }) => {
    // Act
    const res = await post({ body, authorization: admin });

    // Assess
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('BAD_REQUEST');
    if (path) expect(res.body.error.details.map((d: { path: string }) => d.path)).toContain(path);
  });

  it('without create, answers 404 naming what is missing', async () => {
    // Act
    const res = await post({ body: {}, authorization: admin });

    // Assess
    expect(res.status).toBe(404);
    expect(res.body.error.message).toContain(`S3 bucket "${BUCKET}" is not configured`);
    expect(res.body.error.message).toContain('"create": true');
    expect(res.body.error.details.map((d: { path: string }) => d.path)).toEqual(['bucket', 'user', 'group', 'policy', 'executeRole']);
  });

  it('creates the set-up, returns the new access key once, and never logs its secret', async () => {
    // Act
    const first = await post({ body: { create: true, createAccessKey: true }, authorization: admin });
    const second = await post({ body: { create: true, createAccessKey: true }, authorization: admin });

    // Assess
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({
      user: { name: 'mattermost-apps-invoke', arn: arn('user', 'mattermost-apps-invoke'), created: true },
      group: { arn: arn('group', 'mattermost-apps-invoke-group'), created: true },
      policy: { arn: arn('policy', 'mattermost-apps-invoke-policy'), created: true },
      bucket: { name: BUCKET, created: true },
      executeRole: { arn: arn('role', 'mattermost-apps-execute-lambda-role'), created: true },
      warnings: [],
    });
    const { accessKeyId, secretAccessKey } = first.body.accessKey;
    expect(secretAccessKey).toEqual(expect.any(String));
    const keys = await iamClient().send(new ListAccessKeysCommand({ UserName: 'mattermost-apps-invoke' }));
    expect(keys.AccessKeyMetadata?.map((k) => k.AccessKeyId)).toEqual([accessKeyId]);

    expect(second.status).toBe(200);
    expect(second.body.accessKey).toBeUndefined();
    expect(second.body).toMatchObject({ existingAccessKeyIds: [accessKeyId], changes: [] });
    expect(JSON.stringify(second.body)).not.toContain(secretAccessKey);

    // The capture works: pino wrote the request lines and the core's, with the key's ID.
    expect(logLines.some((l) => JSON.parse(l).msg === 'request')).toBe(true);
    expect(logged()).toContain(`created access key ${accessKeyId}`);
    expect(logged()).not.toContain(secretAccessKey);
    expect(logged()).not.toContain(TOKEN);

    expect((await iamClient().send(new ListGroupsCommand({}))).Groups?.map((g) => g.GroupName)).toEqual(['mattermost-apps-invoke-group']);
    expect((await iamClient().send(new ListRolesCommand({}))).Roles?.map((r) => r.RoleName)).toEqual(['mattermost-apps-execute-lambda-role']);
    const block = await s3Client().send(new GetPublicAccessBlockCommand({ Bucket: BUCKET }));
    expect(block.PublicAccessBlockConfiguration?.BlockPublicAcls).toBe(true);
  });

  it('takes custom names and newAccessKey, and answers 409 at IAM\'s limit of two keys', async () => {
    // Prepare
    const names = { user: 'api-user', group: 'api-group', policy: 'api-policy', executeRole: 'api-role' };
    const first = await post({ body: { create: true, createAccessKey: true, ...names }, authorization: admin });
    const second = await post({ body: { newAccessKey: true, ...names }, authorization: admin });

    // Act
    const third = await post({ body: { newAccessKey: true, ...names }, authorization: admin });

    // Assess
    expect(first.body.user.arn).toBe(arn('user', 'api-user'));
    expect(second.status).toBe(200);
    expect(second.body.accessKey.accessKeyId).not.toBe(first.body.accessKey.accessKeyId);
    expect(third.status).toBe(409);
    expect(third.body.error.message).toContain('user "api-user" already has 2 access keys');
    const secrets = [first.body.accessKey.secretAccessKey, second.body.accessKey.secretAccessKey];
    for (const s of secrets) {
      expect(logged()).not.toContain(s);
      expect(JSON.stringify(third.body)).not.toContain(s);
    }
  });
});
