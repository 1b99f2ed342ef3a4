import type { Command } from 'commander';
import { ENV, readAwsTarget } from '../../core/config';
import { AppsDeployerError } from '../../core/errors';
import { callLambda, getStatic, HELLO_APP, isTextResponse, listS3Apps } from '../../core/upstream';
import { makeDeployPorts } from '../../adapters/ports';
import { contextOf, type CliContext, type CliIO } from '../context';
import { addDeployFlags, runDeploy } from './deploy';

/**
 * `appsctl aws test lambda | s3 | list | deploy BUNDLE` (appsctl.md §3): checks a deployed hello-serverless the way the
 * Mattermost server will reach it, i.e. with the invoke user's keys, not the deploy admin's.
 */

/** A check that ran and saw the wrong thing; the message is the original's. */
class TestFailedError extends AppsDeployerError {
  readonly code = 'TEST_FAILED';
  readonly status = 502;
}

const STATIC_PONG = 'static pong';

function invokePorts(ctx: CliContext) {
  return makeDeployPorts(readAwsTarget(ctx.env, { access: ENV.access, secret: ENV.secret }));
}

/** Go's `fmt.Println([]apps.AppID{…})`: `[a b c]`, no quoting. */
export function goSliceString(items: readonly string[]): string {
  return `[${items.join(' ')}]`;
}

export function registerTestCommands(aws: Command, io: CliIO): void {
  const test = aws.command('test').description('test accessing a deployed resource');

  test
    .command('lambda')
    .description('invoke hello-serverless /ping as the Mattermost server would, expecting PONG')
    .action(async (_opts: unknown, cmd: Command) => {
      const ctx = contextOf(cmd, io);
      const { lambda } = invokePorts(ctx);
      const data = await callLambda(lambda, HELLO_APP, '/ping');
      ctx.logger.debug('Received', { data });
      if (!isTextResponse(data, 'PONG')) throw new TestFailedError(`invalid value received: ${data}`);
      ctx.out('OK\n');
    });

  test
    .command('s3')
    .description(`read hello-serverless's static test.txt, expecting '${STATIC_PONG}'`)
    .action(async (_opts: unknown, cmd: Command) => {
      const ctx = contextOf(cmd, io);
      const { s3 } = invokePorts(ctx);
      const data = await getStatic(s3, HELLO_APP, 'test.txt');
      ctx.logger.debug('Received', { data });
      if (data !== STATIC_PONG) throw new TestFailedError(`expected '${STATIC_PONG}', got '${data}'`);
      ctx.out('OK\n');
    });

  test
    .command('list')
    .description('list the app IDs whose manifests in S3 start with "hello"')
    .action(async (_opts: unknown, cmd: Command) => {
      const ctx = contextOf(cmd, io);
      const { s3 } = invokePorts(ctx);
      ctx.out(`${goSliceString(await listS3Apps(s3, 'hello'))}\n`);
    });

  addDeployFlags(
    test
      .command('deploy')
      .description("deploy a hello-serverless bundle for testing: `aws deploy BUNDLE --update` without listing it in Mattermost")
      .argument('<bundle>', 'path to the app bundle .zip'),
    false,
  ).action(async (bundle: string, flags: Parameters<typeof runDeploy>[2], cmd: Command) => runDeploy(contextOf(cmd, io), bundle, flags, 'test'));

  // buildProgram configures only two levels of commands; these are three deep.
  for (const c of [test, ...test.commands]) c.exitOverride().configureOutput({ writeOut: io.stdout, writeErr: io.stderr });
}
