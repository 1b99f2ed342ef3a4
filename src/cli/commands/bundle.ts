import type { Command } from 'commander';
import { formatDeployData, withAppBundle } from '../../core/provision';
import { inspectionCacheFromEnv } from '../../adapters/inspection-cache';
import { contextOf, type CliIO } from '../context';

/**
 * Commands that only read a bundle: `generate-terraform-data` (and its newer spelling `terraform generate-data`) and
 * `aws validate`. Neither touches AWS.
 */
export async function generateTerraformData(cmd: Command, io: CliIO, bundlePath: string): Promise<void> {
  const ctx = contextOf(cmd, io);
  // The original accepts a name AWS would refuse and prints the Go value; `aws validate` is where that is reported.
  const text = await withAppBundle(bundlePath, { strictness: 'go', label: bundlePath, cache: inspectionCacheFromEnv(ctx.env) }, async (app) => {
    for (const w of app.warnings) ctx.logger.debug(`${w.path}: ${w.message}`);
    return formatDeployData(app.deployData);
  });
  ctx.out(text);
}

export async function validateBundle(cmd: Command, io: CliIO, bundlePath: string): Promise<void> {
  const ctx = contextOf(cmd, io);
  await withAppBundle(bundlePath, { strictness: 'deployable', label: bundlePath, cache: inspectionCacheFromEnv(ctx.env) }, async (app) => {
    for (const w of app.warnings) ctx.logger.warn(`${w.path}: ${w.message}`);
    for (const name of app.ignored) ctx.logger.debug('ignored unknown file', { name });
    ctx.logger.debug('deploy data', { data: app.deployData });
    const { app_id: id, version } = app.manifest;
    const n = app.functions.length;
    const s = app.statics.length;
    ctx.out(`Bundle is valid! ${id} ${version ?? ''}: ${n} function${n === 1 ? '' : 's'}, ${s} static asset${s === 1 ? '' : 's'}.\n`);
  });
}

export function registerBundleCommands(program: Command, aws: Command, terraform: Command, io: CliIO): void {
  program
    .command('generate-terraform-data')
    .description('print the deploy data (function names, S3 keys) of a bundle as JSON, without touching AWS')
    .argument('<bundle>', 'path to the app bundle .zip')
    .action(async (bundle: string, _opts, cmd: Command) => generateTerraformData(cmd, io, bundle));
  terraform
    .command('generate-data')
    .description('print the deploy data (function names, S3 keys) of a bundle as JSON, without touching AWS')
    .argument('<bundle>', 'path to the app bundle .zip')
    .action(async (bundle: string, _opts, cmd: Command) => generateTerraformData(cmd, io, bundle));
  aws
    .command('validate')
    .description('check that a bundle is safe and deployable, without touching AWS')
    .argument('<bundle>', 'path to the app bundle .zip')
    .action(async (bundle: string, _opts, cmd: Command) => validateBundle(cmd, io, bundle));
}
