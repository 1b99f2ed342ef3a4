import { Command, CommanderError } from 'commander';
import { formatError } from '../core/errors';
import type { CliIO } from './context';
import { registerBundleCommands } from './commands/bundle';
import { registerInitCommands } from './commands/init';
import { registerDeployCommand } from './commands/deploy';
import { registerTestCommands } from './commands/test';
import { registerListCommand, registerPruneCommand, registerReconcileCommand, registerRollbackCommand, registerUndeployCommand } from './commands/lifecycle';

/** Builds `appsctl` with the command tree of the original Go tool (appsctl.md §0–§4). */
export function buildProgram(io: CliIO): Command {
  const program = new Command('appsctl')
    .description('Deploy Mattermost Apps bundles to AWS')
    .option('-v, --verbose', 'show debug logs')
    .option('-q, --quiet', 'show errors only')
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
    .exitOverride()
    .showHelpAfterError();
  const aws = program.command('aws').description('manage Mattermost Apps on AWS');
  const terraform = program.command('terraform').description('Terraform helpers');
  registerBundleCommands(program, aws, terraform, io);
  registerInitCommands(aws, io);
  registerDeployCommand(aws, io);
  registerTestCommands(aws, io);
  registerListCommand(aws, io);
  registerRollbackCommand(aws, io);
  registerUndeployCommand(aws, io);
  registerPruneCommand(aws, io);
  registerReconcileCommand(aws, io);
  for (const c of [program, aws, terraform, ...program.commands, ...aws.commands, ...terraform.commands]) {
    c.exitOverride().configureOutput({ writeOut: io.stdout, writeErr: io.stderr });
  }
  return program;
}

/** Runs the CLI; resolves to the process exit code. Errors are one plain message plus its details, no stack trace. */
export async function runCli(argv: string[], io: CliIO): Promise<number> {
  const program = buildProgram(io);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version exit through here with code 0; usage errors were already printed by commander.
      return err.exitCode;
    }
    io.stderr(`Error: ${formatError(err)}\n`);
    return 1;
  }
}
