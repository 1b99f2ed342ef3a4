import { InvalidArgumentError, type Command } from 'commander';
import { DEFAULTS, ENV, readAwsTarget, readMattermostTarget } from '../../core/config';
import { processLockHolder } from '../../core/app-lock';
import { DEFAULT_BUNDLE_LIMITS } from '../../core/limits';
import type { ControlPlane } from '../../core/control-plane';
import { DeploymentStore } from '../../core/deployments';
import { AppsDeployerError } from '../../core/errors';
import {
  hasRemovals, lifecycleContext, listApps, prune, rollback, undeploy, type AppListing, type LifecycleContext, type PruneResult,
  type RemovalPlan, type RollbackResult, type UndeployResult,
} from '../../core/lifecycle';
import { DEFAULT_MIN_AGE_MS, reconcile, type ReconcileResult } from '../../core/reconcile';
import { makeAwsClients } from '../../adapters/aws';
import { WebhookNotifier } from '../../adapters/control-plane';
import { SdkIamPort } from '../../adapters/iam';
import { SdkLambdaPort } from '../../adapters/lambda';
import { HttpMattermostPort } from '../../adapters/mattermost';
import { makeDeployPorts } from '../../adapters/ports';
import { SdkS3Port } from '../../adapters/s3';
import { withDownloadedObject } from '../../adapters/s3-objects';
import { contextOf, type CliContext, type CliIO } from '../context';

/**
 * `appsctl aws list | rollback | undeploy | prune | reconcile`: the lifecycle after deploy (src/core/lifecycle.ts,
 * src/core/reconcile.ts), with the same credentials and variables as `aws deploy` (appsctl.md §0).
 */

// Host and pid let a later run on this host take over the lock of a process that died.
const lockHolder = () => processLockHolder('appsctl');

function context(ctx: CliContext, withMattermost: boolean): LifecycleContext {
  const target = readAwsTarget(ctx.env);
  return lifecycleContext(makeDeployPorts(target, withMattermost ? new HttpMattermostPort(readMattermostTarget(ctx.env)) : undefined), ctx.logger);
}

const json = (ctx: CliContext, value: unknown) => ctx.out(`${JSON.stringify(value, null, 2)}\n`);

// ---------------------------------------------------------------------------------------------------------------------
// list

export function formatApps(apps: AppListing[]): string {
  const lines: string[] = [];
  for (const app of apps) {
    const listed = app.listedVersion === undefined ? 'no version listed' : `listed: ${app.listedVersion}${app.listedVersionSource === 'presumed' ? ' (presumed)' : ''}`;
    lines.push(`${app.appId} (${listed}${app.installed ? ', installed' : ''})`);
    if (app.versions.length === 0) lines.push('  no deployed version');
    for (const v of app.versions) {
      const flags = [v.listed ? 'listed' : '', v.complete ? 'complete' : 'INCOMPLETE', v.deployedAt ? `deployed ${v.deployedAt}` : ''].filter(Boolean);
      lines.push(`  ${v.version}  ${flags.join('  ')}`);
      const width = Math.max(0, ...v.functions.map((f) => f.name.length));
      for (const f of v.functions) {
        const state = f.exists ? [f.state, f.lastUpdateStatus].filter(Boolean).join('/') || 'exists' : 'MISSING';
        lines.push(`    ${f.name.padEnd(width)}  ${f.lambdaName}  ${state}`);
      }
      for (const p of v.problems) lines.push(`    ! ${p}`);
    }
  }
  return lines.length > 0 ? `${lines.join('\n')}\n` : '';
}

export function registerListCommand(aws: Command, io: CliIO): void {
  aws
    .command('list')
    .description('list deployed apps and versions, their functions, and which version Mattermost lists')
    .argument('[prefix]', 'only apps whose id starts with this', '')
    .option('--json', 'print the result as JSON', false)
    .action(async (prefix: string, flags: { json?: boolean }, cmd: Command) => {
      const ctx = contextOf(cmd, io);
      const lc = context(ctx, false);
      const apps = await listApps(lc, prefix);
      if (flags.json) return json(ctx, { apps });
      ctx.out(apps.length > 0 ? formatApps(apps) : `No apps deployed under s3://${lc.ports.s3.bucket}/manifests/${prefix}\n`);
    });
}

// ---------------------------------------------------------------------------------------------------------------------
// rollback

export function formatRollback(r: RollbackResult): string {
  let out = `'${r.appId}' ${r.version} is listed in Mattermost again${r.previousListedVersion && r.previousListedVersion !== r.version ? ` (instead of ${r.previousListedVersion})` : ''}.\n`;
  if (r.policy.action === 'update') out += `Invoke policy ${r.policy.name}: ${r.policy.addedArns.length} function ARN(s) granted again.\n`;
  return out;
}

export function registerRollbackCommand(aws: Command, io: CliIO): void {
  aws
    .command('rollback')
    .description('list an earlier version that is still deployed in Mattermost again')
    .argument('<app>', 'app id')
    .argument('<version>', 'the deployed version to list')
    .option('--policy <name>', 'name of the invoke policy that must grant its functions', DEFAULTS.policy)
    .option('--json', 'print the result as JSON', false)
    .action(async (appId: string, version: string, flags: { policy: string; json?: boolean }, cmd: Command) => {
      const ctx = contextOf(cmd, io);
      const result = await rollback(context(ctx, true), appId, version, { policyName: flags.policy, lockHolder: lockHolder() });
      if (flags.json) return json(ctx, result);
      ctx.out(formatRollback(result));
    });
}

// ---------------------------------------------------------------------------------------------------------------------
// undeploy, prune

export function formatRemoval(plan: RemovalPlan, dryRun: boolean): string {
  const rows: string[] = [];
  for (const v of plan.versions) {
    if (v.manifestKey) rows.push(`  manifest  ${v.manifestKey}`);
    for (const f of v.functions) rows.push(`  function  ${f}`);
    for (const k of v.codeObjects) rows.push(`  code      ${k}`);
    for (const k of v.staticAssets) rows.push(`  static    ${k}`);
  }
  if (plan.policy?.action === 'update') rows.push(`  policy    ${plan.policy.name}  -${plan.policy.removedArns.length} function ARN(s)`);
  const versions = plan.versions.map((v) => v.version).join(', ');
  const head = dryRun ? `Would remove ${plan.appId} ${versions}:` : `Removed ${plan.appId} ${versions}:`;
  return `${head}\n${rows.join('\n')}\n${dryRun ? 'No changes made (dry run).\n' : ''}`;
}

interface RemovalFlags {
  force?: boolean;
  dryRun?: boolean;
  policy: string;
  json?: boolean;
}

function printRemoval(ctx: CliContext, appId: string, what: string, r: UndeployResult): void {
  for (const w of r.plan.warnings) ctx.logger.warn(w);
  if (!hasRemovals(r.plan)) ctx.out(`Nothing of ${appId} ${what} is deployed: nothing to remove.\n`);
  else ctx.out(formatRemoval(r.plan, r.dryRun));
}

function addRemovalFlags(cmd: Command): Command {
  return cmd
    .option('--force', 'remove the version Mattermost lists too', false)
    .option('--dry-run', 'print what would be removed, and change nothing', false)
    .option('--policy <name>', 'name of the invoke policy to remove the function ARNs from', DEFAULTS.policy)
    .option('--json', 'print the result as JSON', false);
}

export function registerUndeployCommand(aws: Command, io: CliIO): void {
  addRemovalFlags(
    aws
      .command('undeploy')
      .description("remove one version of an app: its manifest, functions, code, static assets and invoke policy ARNs")
      .argument('<app>', 'app id')
      .argument('<version>', 'the version to remove'),
  ).action(async (appId: string, version: string, flags: RemovalFlags, cmd: Command) => {
    const ctx = contextOf(cmd, io);
    const result = await undeploy(context(ctx, false), appId, version, { policyName: flags.policy, dryRun: Boolean(flags.dryRun), force: Boolean(flags.force), lockHolder: lockHolder() });
    if (flags.json) return json(ctx, result);
    printRemoval(ctx, appId, version, result);
  });
}

const wholeNumber = (v: string) => {
  const n = Number(v);
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(n)) throw new InvalidArgumentError('must be a whole number');
  return n;
};

export function formatPrune(r: PruneResult): string {
  let out = '';
  for (const k of r.kept) out += `Keeping ${r.plan.appId} ${k.version}: ${k.reason}\n`;
  if (!hasRemovals(r.plan)) return `${out}Nothing to prune.\n`;
  return out + formatRemoval(r.plan, r.dryRun);
}

export function registerPruneCommand(aws: Command, io: CliIO): void {
  addRemovalFlags(
    aws
      .command('prune')
      .description('remove all but the newest N versions of an app (newest by when their manifest was written)')
      .argument('<app>', 'app id')
      .requiredOption('--keep <n>', 'how many of the newest versions to keep', wholeNumber),
  ).action(async (appId: string, flags: RemovalFlags & { keep: number }, cmd: Command) => {
    const ctx = contextOf(cmd, io);
    const result = await prune(context(ctx, false), appId, flags.keep, { policyName: flags.policy, dryRun: Boolean(flags.dryRun), force: Boolean(flags.force), lockHolder: lockHolder() });
    if (flags.json) return json(ctx, result);
    for (const w of result.plan.warnings) ctx.logger.warn(w);
    ctx.out(formatPrune(result));
  });
}

// ---------------------------------------------------------------------------------------------------------------------
// reconcile

interface ReconcileFlags {
  minAge: number;
  dryRun?: boolean;
  json?: boolean;
  install: boolean;
  webhookUrl?: string;
}

/** The control plane as the deployed reconcile function has it, from appsctl's credentials and the control plane's variables. */
export function cliControlPlane(ctx: CliContext, flags: Pick<ReconcileFlags, 'install' | 'webhookUrl'>): ControlPlane {
  const env = ctx.env;
  const target = readAwsTarget(env);
  // Listing is optional, as it is for the auto-deployer; half a configuration is a mistake, said before any AWS call.
  const mattermost = env[ENV.siteUrl] || env[ENV.adminToken] ? new HttpMattermostPort(readMattermostTarget(env)) : undefined;
  const rawMax = env.APPS_DEPLOYER_MAX_BUNDLE_BYTES;
  const maxBundleBytes = rawMax ? Number(rawMax) : DEFAULT_BUNDLE_LIMITS.maxBundleBytes;
  if (!Number.isSafeInteger(maxBundleBytes) || maxBundleBytes <= 0) throw new InvalidArgumentError('APPS_DEPLOYER_MAX_BUNDLE_BYTES must be a positive whole number');
  const clients = makeAwsClients(target, env);
  const s3 = new SdkS3Port(clients.s3, target.bucket, target.region);
  return {
    ports: { region: target.region, s3, lambda: new SdkLambdaPort(clients.lambda), iam: new SdkIamPort(clients.iam), ...(mattermost ? { mattermost } : {}) },
    store: new DeploymentStore(s3),
    fetchBundle: (key, fn) => withDownloadedObject(clients.s3, { bucket: target.bucket, key, maxBytes: maxBundleBytes }, fn),
    logger: ctx.logger,
    maxBundleBytes,
    autoInstall: flags.install,
    ...(flags.webhookUrl ? { notifier: new WebhookNotifier(flags.webhookUrl) } : {}),
  };
}

export function formatReconcile(r: ReconcileResult): string {
  const lines = r.bundles.map((b) => {
    const detail =
      b.status === 'failed'
        ? `${b.error?.message ?? 'failed'} (${b.notified ? 'reported to the webhook' : 'not reported'}; attempt ${b.attempts ?? 1})`
        : b.status === 'deployed'
          ? `deployment ${b.deploymentId}`
          : (b.reason ?? '');
    return `  ${b.status.padEnd(12)}  ${b.key}${detail ? `  ${detail}` : ''}`;
  });
  const summary = `${r.deployed} deployed, ${r.failed} failed, ${r.skipped} skipped${r.deferred ? `, ${r.deferred} left for the next run` : ''}`;
  return `${lines.length > 0 ? `${lines.join('\n')}\n` : 'No bundles under bundles/.\n'}${summary}\n`;
}

class ReconcileFailedError extends AppsDeployerError {
  readonly code = 'RECONCILE_FAILED';
  readonly status = 500;
}

export function registerReconcileCommand(aws: Command, io: CliIO): void {
  aws
    .command('reconcile')
    .description('deploy bundles under bundles/ whose S3 event was lost, through the same path as the auto-deployer')
    .option('--min-age <minutes>', 'leave bundles younger than this to their S3 event', wholeNumber, DEFAULT_MIN_AGE_MS / 60_000)
    .option('--install', 'install apps after listing them (default: APPS_DEPLOYER_AUTO_INSTALL)')
    .option('--webhook-url <url>', 'Mattermost incoming webhook for notices (default: APPS_DEPLOYER_WEBHOOK_URL)')
    .option('--dry-run', 'print which bundles would be deployed, and change nothing', false)
    .option('--json', 'print the result as JSON', false)
    .action(async (flags: Omit<ReconcileFlags, 'install'> & { install?: boolean }, cmd: Command) => {
      const ctx = contextOf(cmd, io);
      const webhookUrl = flags.webhookUrl ?? ctx.env.APPS_DEPLOYER_WEBHOOK_URL;
      const cp = cliControlPlane(ctx, { install: flags.install ?? ctx.env.APPS_DEPLOYER_AUTO_INSTALL === 'true', ...(webhookUrl ? { webhookUrl } : {}) });
      const result = await reconcile(cp, { minAgeMs: flags.minAge * 60_000, dryRun: Boolean(flags.dryRun) });
      if (flags.json) json(ctx, result);
      else ctx.out(formatReconcile(result));
      if (result.failed > 0) throw new ReconcileFailedError(`${result.failed} bundle(s) failed to deploy`);
    });
}
