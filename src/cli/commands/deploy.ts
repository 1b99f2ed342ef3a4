import { Command, InvalidArgumentError } from 'commander';
import { readAwsTarget, readMattermostTarget, DEFAULTS } from '../../core/config';
import { deploy, DEFAULT_DEPLOY_OPTIONS, withBundleToDeploy, type DeployOptions, type DeployPlan, type DeployResult, type ProgressEvent } from '../../core/deploy';
import { goMarshalIndent } from '../../core/gojson';
import { inspectionCacheFromEnv } from '../../adapters/inspection-cache';
import { processLockHolder } from '../../core/app-lock';
import { makeDeployPorts } from '../../adapters/ports';
import { HttpMattermostPort } from '../../adapters/mattermost';
import { contextOf, type CliContext, type CliIO } from '../context';
import { withFailpoint } from '../failpoint';

/**
 * pflag's StringToString: `k=v,k2=v2`, comma-separated with CSV quoting, repeatable; later keys win.
 */
export function parseEnvFlag(value: string, previous: Record<string, string> | undefined): Record<string, string> {
  const out = { ...(previous ?? {}) };
  for (const pair of splitCsv(value)) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new InvalidArgumentError(`${JSON.stringify(pair)} must be formatted as key=value`);
    out[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return out;
}

function splitCsv(s: string): string[] {
  const fields: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (quoted) {
      if (c === '"' && s[i + 1] === '"') (cur += '"'), i++;
      else if (c === '"') quoted = false;
      else cur += c;
    } else if (c === '"' && cur === '') quoted = true;
    else if (c === ',') fields.push(cur), (cur = '');
    else cur += c;
  }
  fields.push(cur);
  return fields.filter((f) => f !== '');
}

interface DeployFlags {
  install?: boolean;
  update?: boolean;
  policy: string;
  executeRole: string;
  env?: Record<string, string>;
  dryRun?: boolean;
  json?: boolean;
  concurrency: number;
  validateFirst?: boolean;
}

/** Progress on a terminal: one line rewritten in place on stderr; elsewhere nothing (logs say enough with -v). */
function progressReporter(ctx: CliContext, total: number, write: (t: string) => void): { onProgress: (e: ProgressEvent) => void; done: () => void } {
  if (!ctx.isTTY || total === 0) return { onProgress: () => {}, done: () => {} };
  let n = 0;
  return {
    onProgress: (e) => {
      n++;
      write(`\r\x1b[2K[${n}/${total}] ${e.step} ${e.name}: ${e.action}`);
    },
    done: () => write('\r\x1b[2K'),
  };
}

export function formatPlan(plan: DeployPlan, opts: Pick<DeployOptions, 'install' | 'listInMattermost'>): string {
  const rows: string[] = [];
  const describe = (action: string, changes: string[] = []) => (action === 'update' && changes.length > 0 ? `update (${changes.join(', ')})` : action);
  for (const f of plan.functions) rows.push(`  function  ${f.lambdaName}  ${describe(f.action, f.changes)}`);
  for (const s of plan.statics) rows.push(`  static    ${s.key}  ${s.action}`);
  const p = plan.invokePolicy;
  rows.push(`  policy    ${p.name}  ${p.action === 'update' ? `update (+${p.addedArns.length} function ARNs${p.removedArns.length ? `, -${p.removedArns.length} of deleted functions` : ''})` : 'unchanged'}`);
  rows.push(`  manifest  ${plan.manifest.key}  ${plan.manifest.action}`);
  if (opts.listInMattermost) rows.push(`  mattermost  update-app-listing${opts.install ? ', install-app' : ''}`);
  return `Plan for '${plan.displayName}' (${plan.appId} ${plan.version}) in bucket ${plan.bucket}:\n${rows.join('\n')}\n`;
}

/** appsctl.md §2 step 12, byte for byte. */
export function formatDeploySummary(result: DeployResult, install: boolean): string {
  let out =
    `\n'${result.displayName}' is now deployed to AWS.\n` +
    `Created/updated ${result.functions.length} functions in AWS Lambda, ${result.statics.length} static assets in S3\n\n` +
    `Execute role:\t${result.executeRole.arn}\n` +
    `Execute policy:\t${result.executePolicyArn}\n` +
    `Invoke policy:\t${result.invokePolicy.arn}\n\n` +
    `Invoke policy document:\n${result.invokePolicy.document}\n` +
    `\n`;
  if (!install) out += `You can now install it in Mattermost using:\n  /apps install listed ${result.appId}\n\n`;
  return out;
}

/** `aws test deploy`: DeployAppResult as upstream prints it. */
export function formatTestDeployResult(result: DeployResult, manifest: unknown): string {
  return `Success!\n\n${goMarshalIndent(
    {
      InvokePolicyDoc: result.invokePolicy.document,
      InvokePolicyARN: result.invokePolicy.arn,
      ExecuteRoleARN: result.executeRole.arn,
      ExecutePolicyARN: result.executePolicyArn,
      LambdaARNs: result.functions.map((f) => f.arn),
      StaticARNs: result.statics.map((s) => `arn:aws:s3:::${result.bucket}/${s.key}`),
      ManifestURL: result.manifestUrl,
      Manifest: manifest,
    },
    '',
    '  ',
  )}\n`;
}

export async function runDeploy(ctx: CliContext, bundlePath: string, flags: DeployFlags, mode: 'deploy' | 'test'): Promise<void> {
  const target = readAwsTarget(ctx.env);
  const mattermost = mode === 'deploy' ? new HttpMattermostPort(readMattermostTarget(ctx.env)) : undefined;
  const opts: DeployOptions = {
    ...DEFAULT_DEPLOY_OPTIONS,
    update: mode === 'test' ? true : Boolean(flags.update),
    install: Boolean(flags.install),
    dryRun: Boolean(flags.dryRun),
    policyName: flags.policy,
    executeRoleName: flags.executeRole,
    ...(flags.env && Object.keys(flags.env).length > 0 ? { environment: flags.env } : {}),
    listInMattermost: mode === 'deploy',
    concurrency: flags.concurrency,
    validateFirst: Boolean(flags.validateFirst),
    // Host and pid go into the lock too: a later run on this host may take over the lock of a process that died.
    lockHolder: processLockHolder('appsctl'),
  };
  const ports = makeDeployPorts(target, mattermost);
  const bundleOpts = { strictness: 'deployable' as const, label: bundlePath, cache: inspectionCacheFromEnv(ctx.env) };
  await withBundleToDeploy(bundlePath, bundleOpts, ports, opts, async (source, planPorts) => {
    const { app } = source;
    const total = app.functions.length + app.statics.length + 3;
    const progress = progressReporter(ctx, total, (t) => process.stderr.write(t));
    let outcome;
    try {
      outcome = await deploy(planPorts, source, opts, ctx.logger, withFailpoint(ctx.env, progress.onProgress));
    } finally {
      progress.done();
    }
    const { plan, result } = outcome;
    if (flags.json) {
      ctx.out(`${JSON.stringify(result ?? { dryRun: true, plan }, null, 2)}\n`);
    } else if (!result) {
      ctx.out(`${formatPlan(plan, opts)}No changes made (dry run).\n`);
    } else if (mode === 'test') {
      ctx.out(formatTestDeployResult(result, app.manifest));
    } else {
      ctx.out(formatDeploySummary(result, opts.install));
    }
  });
}

const positiveInt = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 64) throw new InvalidArgumentError('must be an integer from 1 to 64');
  return n;
};

export function addDeployFlags(cmd: Command, full: boolean): Command {
  if (full) {
    cmd
      .option('--install', 'install the app in Mattermost after listing it', false)
      .option('--update', 'update functions if they already exist', false)
      .option('--policy <name>', 'name of the invoke policy to extend', DEFAULTS.policy)
      .option('--execute-role <name>', 'name of the role the functions run as', DEFAULTS.executeRole)
      .option('--env <k=v,...>', 'environment variables for the functions (repeatable)', parseEnvFlag);
  } else {
    cmd.option('--policy <name>', 'name of the invoke policy to extend', DEFAULTS.policy).option('--execute-role <name>', 'name of the role the functions run as', DEFAULTS.executeRole);
  }
  return cmd
    .option('--dry-run', 'print what would be created, updated or left alone, and change nothing', false)
    .option('--json', 'print the result as JSON', false)
    .option('--concurrency <n>', 'parallel uploads and function steps', positiveInt, DEFAULT_DEPLOY_OPTIONS.concurrency)
    .option('--validate-first', 'read and check the whole bundle before the first AWS call (slower: no read or upload starts during validation)', false);
}

export function registerDeployCommand(aws: Command, io: CliIO): void {
  addDeployFlags(
    aws.command('deploy').description('deploy an app bundle to AWS and list it in Mattermost').argument('<bundle>', 'path to the app bundle .zip'),
    true,
  ).action(async (bundle: string, flags: DeployFlags, cmd: Command) => runDeploy(contextOf(cmd, io), bundle, flags, 'deploy'));
}
