import {
  CreateFunctionCommand, DeleteFunctionCommand, GetFunctionConfigurationCommand, InvokeCommand, type LambdaClient,
  type FunctionConfiguration, UpdateFunctionCodeCommand, UpdateFunctionConfigurationCommand,
} from '@aws-sdk/client-lambda';
import { paginateListFunctions } from '@aws-sdk/client-lambda';
import { setTimeout as sleep } from 'node:timers/promises';
import { AwsOperationError } from '../core/errors';
import type { FunctionInfo, FunctionSpec, LambdaPort } from '../core/ports';
import { errorName, isTransient, withRetry } from './retry';

const notFound = (err: unknown) => errorName(err) === 'ResourceNotFoundException';

/**
 * Errors that clear up by themselves: a function still being updated (ResourceConflictException), and a role that
 * IAM has created but Lambda cannot assume yet (InvalidParameterValueException "The role defined for the function
 * cannot be assumed by Lambda").
 */
export function isLambdaSettling(err: unknown): boolean {
  const name = errorName(err);
  if (name === 'ResourceConflictException' && !/already exist/i.test((err as Error).message ?? '')) return true;
  if (name === 'InvalidParameterValueException' && /cannot be assumed by Lambda|role/i.test((err as Error).message ?? '')) return true;
  return isTransient(err);
}

const isAlreadyExists = (err: unknown) => errorName(err) === 'ResourceConflictException' && /already exist/i.test((err as Error)?.message ?? '');

function sameConfiguration(existing: FunctionInfo, spec: FunctionSpec): boolean {
  const want = spec.environment ?? {};
  const have = existing.environment;
  const keys = Object.keys(want);
  return (
    existing.handler === spec.handler &&
    existing.runtime === spec.runtime &&
    existing.role === spec.role &&
    keys.length === Object.keys(have).length &&
    keys.every((k) => have[k] === want[k])
  );
}

function toInfo(c: FunctionConfiguration): FunctionInfo {
  return {
    name: c.FunctionName!,
    arn: c.FunctionArn!,
    codeSha256: c.CodeSha256 ?? '',
    handler: c.Handler ?? '',
    runtime: c.Runtime ?? '',
    role: c.Role ?? '',
    environment: c.Environment?.Variables ?? {},
    ...(c.State ? { state: c.State } : {}),
    ...(c.LastUpdateStatus ? { lastUpdateStatus: c.LastUpdateStatus } : {}),
    ...(c.StateReason ? { stateReason: c.StateReason } : {}),
  };
}

/** The unqualified ARN (`…:function:name`), which the invoke policy lists; some responses carry a `:$LATEST` suffix. */
export function unqualifiedArn(arn: string): string {
  const parts = arn.split(':');
  return parts.length > 7 ? parts.slice(0, 7).join(':') : arn;
}

export class SdkLambdaPort implements LambdaPort {
  constructor(
    private readonly lambda: LambdaClient,
    private readonly wait = { timeoutMs: Number(process.env.APPS_DEPLOYER_LAMBDA_WAIT_MS ?? 300_000), initialDelayMs: 250, maxDelayMs: 5_000 },
  ) {}

  async getFunction(name: string): Promise<FunctionInfo | undefined> {
    try {
      const res = await withRetry(`GetFunctionConfiguration ${name}`, () => this.lambda.send(new GetFunctionConfigurationCommand({ FunctionName: name })), (e) => !notFound(e) && isTransient(e));
      return { ...toInfo(res), arn: unqualifiedArn(res.FunctionArn!) };
    } catch (err) {
      if (notFound((err as { cause?: unknown }).cause ?? err)) return undefined;
      throw err;
    }
  }

  /**
   * Idempotent as a retry must be: when a first attempt reached Lambda and its response was lost, the retry (the SDK's
   * or ours) meets ResourceConflictException "Function already exist". A function that has the configuration asked for
   * is then taken as created; the caller checks its CodeSha256. Any other existing function is still a conflict.
   */
  async createFunction(spec: FunctionSpec): Promise<FunctionInfo> {
    try {
      return await this.createFunctionOnce(spec);
    } catch (err) {
      if (!isAlreadyExists((err as { cause?: unknown }).cause ?? err)) throw err;
      const existing = await this.getFunction(spec.name);
      if (existing && sameConfiguration(existing, spec)) return existing;
      throw err;
    }
  }

  private async createFunctionOnce(spec: FunctionSpec): Promise<FunctionInfo> {
    const res = await withRetry(
      `CreateFunction ${spec.name}`,
      () =>
        this.lambda.send(
          new CreateFunctionCommand({
            FunctionName: spec.name,
            Handler: spec.handler,
            Runtime: spec.runtime as never,
            Role: spec.role,
            Code: { S3Bucket: spec.code.s3Bucket, S3Key: spec.code.s3Key },
            PackageType: 'Zip',
            ...(spec.environment && Object.keys(spec.environment).length > 0 ? { Environment: { Variables: spec.environment } } : {}),
          }),
        ),
      isLambdaSettling,
    );
    return { ...toInfo(res), arn: unqualifiedArn(res.FunctionArn!) };
  }

  async updateFunctionCode(name: string, code: { s3Bucket: string; s3Key: string }): Promise<FunctionInfo> {
    const res = await withRetry(`UpdateFunctionCode ${name}`, () => this.lambda.send(new UpdateFunctionCodeCommand({ FunctionName: name, S3Bucket: code.s3Bucket, S3Key: code.s3Key })), isLambdaSettling);
    return { ...toInfo(res), arn: unqualifiedArn(res.FunctionArn!) };
  }

  async updateFunctionConfiguration(name: string, config: { handler: string; runtime: string; role: string; environment: Record<string, string> }): Promise<FunctionInfo> {
    const res = await withRetry(
      `UpdateFunctionConfiguration ${name}`,
      () =>
        this.lambda.send(
          new UpdateFunctionConfigurationCommand({
            FunctionName: name,
            Handler: config.handler,
            Runtime: config.runtime as never,
            Role: config.role,
            Environment: { Variables: config.environment },
          }),
        ),
      isLambdaSettling,
    );
    return { ...toInfo(res), arn: unqualifiedArn(res.FunctionArn!) };
  }

  async waitUntilReady(name: string, after: 'create' | 'update', answered?: FunctionInfo): Promise<FunctionInfo> {
    const deadline = Date.now() + this.wait.timeoutMs;
    let delay = this.wait.initialDelayMs;
    // Lambda answers a create Pending and an update InProgress, so this is mostly one GetFunction saved on emulators
    // that answer Active at once; a function already ready is ready, whoever says so.
    let known = (after === 'create' ? answered?.state : answered?.lastUpdateStatus) !== undefined ? answered : undefined;
    for (;;) {
      const info = known ?? (await this.getFunction(name));
      known = undefined;
      if (!info) throw new AwsOperationError(`function ${name} disappeared while waiting for it to become ready`);
      const failed = info.state === 'Failed' || info.lastUpdateStatus === 'Failed';
      if (failed) throw new AwsOperationError(`function ${name} failed to become ready: ${info.stateReason ?? info.lastUpdateStatus ?? info.state}`);
      const ready = after === 'create' ? info.state === 'Active' || info.state === undefined : (info.lastUpdateStatus ?? 'Successful') === 'Successful' && info.state !== 'Pending';
      if (ready) return info;
      if (Date.now() > deadline) throw new AwsOperationError(`function ${name} is still ${info.state}/${info.lastUpdateStatus} after ${Math.round(this.wait.timeoutMs / 1000)} s`);
      await sleep(delay * (0.5 + Math.random()));
      delay = Math.min(delay * 2, this.wait.maxDelayMs);
    }
  }

  async deleteFunction(name: string): Promise<void> {
    try {
      await withRetry(`DeleteFunction ${name}`, () => this.lambda.send(new DeleteFunctionCommand({ FunctionName: name })), (e) => !notFound(e) && isLambdaSettling(e));
    } catch (err) {
      if (!notFound((err as { cause?: unknown }).cause ?? err)) throw err;
    }
  }

  async invoke(name: string, payload: string): Promise<{ payload: string; functionError?: string }> {
    // Not wrapped in withRetry: an invocation is not idempotent, and the SDK already retries what fails before the
    // function runs (throttling).
    let res;
    try {
      res = await this.lambda.send(new InvokeCommand({ FunctionName: name, InvocationType: 'RequestResponse', Payload: Buffer.from(payload, 'utf8') }));
    } catch (err) {
      throw new AwsOperationError(`Invoke ${name} failed: ${errorName(err)}: ${(err as Error).message}`, { cause: err });
    }
    return { payload: res.Payload ? Buffer.from(res.Payload).toString('utf8') : '', ...(res.FunctionError ? { functionError: res.FunctionError } : {}) };
  }

  async listFunctionsUsingRole(roleArn: string): Promise<string[]> {
    return withRetry(`ListFunctions (looking for users of ${roleArn})`, async () => {
      const names: string[] = [];
      for await (const page of paginateListFunctions({ client: this.lambda }, {})) {
        for (const f of page.Functions ?? []) if (f.Role === roleArn) names.push(f.FunctionName!);
      }
      return names;
    });
  }
}
