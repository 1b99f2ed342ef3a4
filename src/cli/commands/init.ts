import type { Command } from 'commander';
import { DEFAULTS, ENV, readAwsTarget } from '../../core/config';
import { ConfigError } from '../../core/errors';
import { CLI_SPELLING, clean, formatCleanSummary, formatInitSummary, initialize } from '../../core/init';
import { makeAwsClients, type AwsClients } from '../../adapters/aws';
import { SdkIamPort } from '../../adapters/iam';
import { SdkLambdaPort } from '../../adapters/lambda';
import { SdkS3Port } from '../../adapters/s3';
import { contextOf, type CliIO } from '../context';

/** `appsctl aws init` and `appsctl aws clean` (appsctl.md §1). */

interface NameFlags {
  user: string;
  group: string;
  policy: string;
  executeRole: string;
  json?: boolean;
}

interface InitFlags extends NameFlags {
  create?: boolean;
  createAccessKey?: boolean;
  newAccessKey?: boolean;
}

/** The SDK keeps sockets open; a CLI run must not hang on them after its work is done. */
async function withClients<T>(clients: AwsClients, fn: (c: AwsClients) => Promise<T>): Promise<T> {
  try {
    return await fn(clients);
  } finally {
    clients.s3.destroy();
    clients.iam.destroy();
    clients.lambda.destroy();
  }
}

export async function runInit(cmd: Command, io: CliIO, flags: InitFlags): Promise<void> {
  const ctx = contextOf(cmd, io);
  const target = readAwsTarget(ctx.env);
  const result = await withClients(makeAwsClients(target, ctx.env), (aws) =>
    initialize(
      { iam: new SdkIamPort(aws.iam), s3: new SdkS3Port(aws.s3, target.bucket, target.region) },
      {
        bucket: target.bucket,
        user: flags.user,
        group: flags.group,
        policy: flags.policy,
        executeRole: flags.executeRole,
        create: Boolean(flags.create),
        createAccessKey: Boolean(flags.createAccessKey),
        newAccessKey: Boolean(flags.newAccessKey),
        spelling: CLI_SPELLING,
      },
      ctx.logger,
    ),
  );
  ctx.out(flags.json ? `${JSON.stringify(result, null, 2)}\n` : formatInitSummary(result));
}

export async function runClean(cmd: Command, io: CliIO, flags: NameFlags): Promise<void> {
  const ctx = contextOf(cmd, io);
  const target = readAwsTarget(ctx.env);
  const accessKeyId = ctx.env[ENV.access]?.trim();
  if (!accessKeyId) {
    throw new ConfigError(`no AWS access key was provided. Please set ${ENV.access} to the invoke user's access key to delete`, {
      details: [{ path: ENV.access, message: 'missing' }],
    });
  }
  const result = await withClients(makeAwsClients(target, ctx.env), (aws) =>
    clean(
      { iam: new SdkIamPort(aws.iam), lambda: new SdkLambdaPort(aws.lambda) },
      { accessKeyId, bucket: target.bucket, user: flags.user, group: flags.group, policy: flags.policy, executeRole: flags.executeRole },
      ctx.logger,
    ),
  );
  ctx.out(flags.json ? `${JSON.stringify(result, null, 2)}\n` : formatCleanSummary(result));
}

function nameOptions(cmd: Command): Command {
  return cmd
    .option('--user <name>', 'the IAM user the Mattermost server invokes apps as', DEFAULTS.user)
    .option('--group <name>', 'the IAM group of the invoke user', DEFAULTS.group)
    .option('--policy <name>', 'the invoke policy, attached to the group', DEFAULTS.policy)
    .option('--execute-role <name>', 'the role the app functions run as', DEFAULTS.executeRole)
    .option('--json', 'print the result as JSON');
}

export function registerInitCommands(aws: Command, io: CliIO): void {
  nameOptions(
    aws
      .command('init')
      .description(`set up the IAM user, group, invoke policy and execute role (and, with --create, the S3 bucket ${ENV.bucket}); safe to run again`)
      .option('--create', 'create the resources (and the bucket) that do not exist yet')
      .option('--create-access-key', 'create an access key for the invoke user, unless it already has one')
      .option('--new-access-key', 'create a new access key for the invoke user even if it has one (IAM allows 2)'),
  ).action(async (flags: InitFlags, cmd: Command) => runInit(cmd, io, flags));

  nameOptions(
    aws
      .command('clean')
      .description(`delete what init set up (the access key in ${ENV.access} and the user's other keys too); the bucket is kept`),
  ).action(async (flags: NameFlags, cmd: Command) => runClean(cmd, io, flags));
}
