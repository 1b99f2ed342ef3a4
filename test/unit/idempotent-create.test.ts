// Creates whose first attempt reached AWS but whose response was lost: the retry must not fail, nor make a second thing.
import { describe, expect, it } from 'vitest';
import { CreateFunctionCommand, GetFunctionConfigurationCommand, type LambdaClient } from '@aws-sdk/client-lambda';
import { CreatePolicyVersionCommand, GetPolicyVersionCommand, ListPolicyVersionsCommand, type IAMClient } from '@aws-sdk/client-iam';
import { SdkLambdaPort } from '../../src/adapters/lambda';
import { SdkIamPort } from '../../src/adapters/iam';

const awsError = (name: string, message: string, status: number) => Object.assign(new Error(message), { name, $metadata: { httpStatusCode: status } });
const connectionReset = () => Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });

const ROLE = 'arn:aws:iam::123456789012:role/r';
const spec = { name: 'app_v1_main', handler: 'index.handler', runtime: 'nodejs22.x', role: ROLE, environment: { A: '1' }, code: { s3Bucket: 'b', s3Key: 'k' } };
const config = (over: Record<string, unknown> = {}) => ({
  FunctionName: spec.name,
  FunctionArn: `arn:aws:lambda:us-east-1:123456789012:function:${spec.name}`,
  Handler: spec.handler,
  Runtime: spec.runtime,
  Role: ROLE,
  CodeSha256: 'abc=',
  Environment: { Variables: { A: '1' } },
  State: 'Active',
  ...over,
});

function fakeLambda(existing: Record<string, unknown>): LambdaClient {
  return {
    send: async (cmd: unknown) => {
      if (cmd instanceof CreateFunctionCommand) throw awsError('ResourceConflictException', `Function already exist: ${spec.name}`, 409);
      if (cmd instanceof GetFunctionConfigurationCommand) return existing;
      throw new Error(`unexpected ${(cmd as object).constructor.name}`);
    },
  } as unknown as LambdaClient;
}

describe('CreateFunction retried after a lost response', () => {
  it('takes the function it finds as created when it has the configuration asked for', async () => {
    const port = new SdkLambdaPort(fakeLambda(config()));
    await expect(port.createFunction(spec)).resolves.toMatchObject({ name: spec.name, codeSha256: 'abc=', handler: spec.handler });
  });

  it('still fails when the function it finds is another one', async () => {
    const port = new SdkLambdaPort(fakeLambda(config({ Handler: 'other.handler' })));
    await expect(port.createFunction(spec)).rejects.toThrow(/CreateFunction app_v1_main failed: ResourceConflictException: Function already exist/);
  });
});

describe('CreatePolicyVersion retried after a lost response', () => {
  const ARN = 'arn:aws:iam::123456789012:policy/p';
  const DOC = '{"Version":"2012-10-17","Statement":[{"Sid":"AllowLambda","Effect":"Allow","Action":["lambda:InvokeFunction"],"Resource":["x"]}]}';

  /** IAM with `versions` documents; `onCreate` decides what one CreatePolicyVersion does. */
  function fakeIam(versions: string[], onCreate: (n: number) => 'store-and-lose' | 'limit' | 'store') {
    let creates = 0;
    const client = {
      send: async (cmd: unknown) => {
        if (cmd instanceof CreatePolicyVersionCommand) {
          const what = onCreate(++creates);
          if (what === 'limit') throw awsError('LimitExceededException', 'A managed policy can have up to 5 versions.', 409);
          versions.push(cmd.input.PolicyDocument!);
          if (what === 'store-and-lose') throw connectionReset();
          return { PolicyVersion: { VersionId: `v${versions.length}` } };
        }
        if (cmd instanceof ListPolicyVersionsCommand) {
          return { Versions: versions.map((_, i) => ({ VersionId: `v${i + 1}`, IsDefaultVersion: i === versions.length - 1 })) };
        }
        if (cmd instanceof GetPolicyVersionCommand) {
          return { PolicyVersion: { Document: encodeURIComponent(versions[Number(cmd.input.VersionId!.slice(1)) - 1]!) } };
        }
        throw new Error(`unexpected ${(cmd as object).constructor.name}`);
      },
    } as unknown as IAMClient;
    return { client, creates: () => creates };
  }

  it('does not make a second version when the first one was made', async () => {
    // Prepare
    const versions = ['{"Version":"2012-10-17","Statement":[]}'];
    const iam = fakeIam(versions, (n) => (n === 1 ? 'store-and-lose' : 'store'));

    // Act
    const id = await new SdkIamPort(iam.client).createPolicyVersion(ARN, DOC);

    // Assess
    expect(id).toBe('v2');
    expect(versions).toHaveLength(2);
    expect(iam.creates()).toBe(1);
  });

  it('answers the version it made when the retry meets the 5-version limit', async () => {
    // Prepare: five versions, the fifth made by an attempt whose answer was lost (inside the SDK, which retried)
    const versions = ['{}', '{}', '{}', '{}', DOC];
    const iam = fakeIam(versions, () => 'limit');

    // Act
    const id = await new SdkIamPort(iam.client).createPolicyVersion(ARN, DOC.replace('{"Version"', '{ "Version"'));

    // Assess: found by content, compared as JSON
    expect(id).toBe('v5');
  });
});

// moto answers every create Active and every update Successful, so the Pending / InProgress answers that Lambda gives
// are made here by a stub client.
describe('waiting for a function to be ready after a create or an update', () => {
  function polledLambda(states: Array<Record<string, unknown>>): { client: LambdaClient; polls: () => number } {
    let polls = 0;
    const client = {
      send: async (cmd: unknown) => {
        if (!(cmd instanceof GetFunctionConfigurationCommand)) throw new Error(`unexpected ${(cmd as object).constructor.name}`);
        return config(states[Math.min(polls++, states.length - 1)]);
      },
    } as unknown as LambdaClient;
    return { client, polls: () => polls };
  }
  const info = (over: Record<string, string>) => ({ name: spec.name, arn: 'arn', codeSha256: 'abc=', handler: spec.handler, runtime: spec.runtime, role: ROLE, environment: {}, ...over });
  const fast = { timeoutMs: 5_000, initialDelayMs: 1, maxDelayMs: 2 };

  it.each([
    { case: 'a create answered Active', after: 'create' as const, answered: info({ state: 'Active' }), polls: 0 },
    { case: 'an update answered Successful', after: 'update' as const, answered: info({ state: 'Active', lastUpdateStatus: 'Successful' }), polls: 0 },
    { case: 'a create answered Pending', after: 'create' as const, answered: info({ state: 'Pending' }), polls: 2 },
    { case: 'an update answered InProgress', after: 'update' as const, answered: info({ state: 'Active', lastUpdateStatus: 'InProgress' }), polls: 2 },
    { case: 'no answer given', after: 'create' as const, answered: undefined, polls: 2 },
  ])('after $case, asks GetFunction $polls times', async ({ after, answered, polls }) => {
    // Prepare: Lambda says not ready once, then ready
    const notReady = after === 'create' ? { State: 'Pending' } : { LastUpdateStatus: 'InProgress' };
    const lambda = polledLambda([notReady, { State: 'Active', LastUpdateStatus: 'Successful' }]);
    const port = new SdkLambdaPort(lambda.client, fast);

    // Act
    const ready = await port.waitUntilReady(spec.name, after, answered);

    // Assess
    expect(lambda.polls()).toBe(polls);
    expect(ready.state).toBe('Active');
  });

  it('fails at once, naming the function, when the answer says Failed', async () => {
    const lambda = polledLambda([{ State: 'Active' }]);
    const port = new SdkLambdaPort(lambda.client, fast);
    await expect(port.waitUntilReady(spec.name, 'create', info({ state: 'Failed', stateReason: 'role cannot be assumed' }))).rejects.toThrow(
      `function ${spec.name} failed to become ready: role cannot be assumed`,
    );
    expect(lambda.polls()).toBe(0);
  });
});
