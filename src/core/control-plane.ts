import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import { AppsDeployerError, BundleLimitError, NotFoundError, type ErrorDetail } from './errors';
import { DEFAULT_DEPLOY_OPTIONS, deploy, planDeploy, withBundleToDeploy, type BundleSource, type DeployOptions, type DeployPlan, type DeployPorts, type ProgressEvent } from './deploy';
import { DeploymentStore, type DeploymentOptions, type DeploymentRecord } from './deployments';
import { BUNDLES_PREFIX, type ControlPlane } from './control-plane-read';
import { withAppBundle, type AppBundle } from './provision';

/**
 * The control plane's deploy use cases (design.md §3–§4), shared by the HTTP handlers, the worker, the S3 auto-deployer
 * and the local stack. Nothing here knows about Lambda events or HTTP. What the control plane is made of and its
 * read-only use cases are in control-plane-read.ts (re-exported here), apart, so that the handlers that never read a
 * bundle do not bundle the deploy path.
 */
export { appStatus, BUNDLES_PREFIX, type AppStatus, type AppVersionStatus, type ControlPlane, type Notifier, type WorkerPort } from './control-plane-read';

export interface DeployRequest {
  bundleKey: string;
  install: boolean;
  update: boolean;
  dryRun: boolean;
  policy: string;
  executeRole: string;
  env?: Record<string, string>;
}

function deployOptions(cp: ControlPlane, options: DeploymentOptions, environment: Record<string, string> | undefined, dryRun: boolean): DeployOptions {
  return {
    ...DEFAULT_DEPLOY_OPTIONS,
    update: options.update,
    install: options.install,
    dryRun,
    policyName: options.policy,
    executeRoleName: options.executeRole,
    ...(environment && Object.keys(environment).length > 0 ? { environment } : {}),
    listInMattermost: cp.ports.mattermost !== undefined,
  };
}

/**
 * Downloads and opens a bundle. With `deployOpts`, for a deploy (withBundleToDeploy): the plan's reads start from its
 * preview (and uploads may start before it is known good: src/core/head-start.ts), and `fn` gets the ports holding them;
 * otherwise it gets the control plane's own.
 */
async function withBundleFromS3<T>(
  cp: ControlPlane,
  key: string,
  fn: (source: BundleSource, ports: DeployPorts) => Promise<T>,
  version?: { versionId?: string; etag?: string },
  deployOpts?: DeployOptions,
): Promise<T> {
  const bundleOpts = { strictness: 'deployable' as const, label: key, limits: { maxBundleBytes: cp.maxBundleBytes } };
  return cp.fetchBundle(
    key,
    (path) =>
      deployOpts
        ? withBundleToDeploy(path, bundleOpts, cp.ports, deployOpts, fn)
        : withAppBundle(path, bundleOpts, (app, open) => fn({ app, open: async (e) => (await open(e)) as Readable }, cp.ports)),
    version,
  );
}

/** `POST /deploy`: a dry run answers the plan at once; otherwise a pending record is created and the worker started. */
export async function startDeployment(cp: ControlPlane, req: DeployRequest): Promise<{ dryRun: true; plan: DeployPlan } | { dryRun: false; record: DeploymentRecord }> {
  const head = await cp.ports.s3.headObject(req.bundleKey);
  if (!head) throw new NotFoundError(`no bundle at s3://${cp.ports.s3.bucket}/${req.bundleKey}; upload it first (POST /bundles)`);
  if (head.size > cp.maxBundleBytes) throw new BundleLimitError(`${req.bundleKey} is ${head.size} bytes, over the bundle limit of ${cp.maxBundleBytes} bytes`);
  const options: DeploymentOptions = { install: req.install, update: req.update, policy: req.policy, executeRole: req.executeRole, envKeys: Object.keys(req.env ?? {}).sort() };
  if (req.dryRun) {
    const plan = await withBundleFromS3(cp, req.bundleKey, (source) => planDeploy(cp.ports, source, deployOptions(cp, options, req.env, true)));
    return { dryRun: true, plan };
  }
  if (!cp.worker) throw new Error('startDeployment: no worker configured');
  const record = await cp.store.create({
    source: 'api',
    bundle: { bucket: cp.ports.s3.bucket, key: req.bundleKey, ...(head.versionId ? { versionId: head.versionId } : {}), ...(head.etag ? { etag: head.etag } : {}) },
    options,
  });
  await cp.worker.start(record.id, req.env);
  return { dryRun: false, record };
}

function errorOf(err: unknown): { code: string; message: string; details: ErrorDetail[] } {
  if (err instanceof AppsDeployerError) return { code: err.code, message: err.message, details: err.details };
  return { code: 'INTERNAL', message: err instanceof Error ? err.message : String(err), details: [] };
}

/**
 * The worker: runs one recorded deployment to its end and records every step. A record that already ended is left
 * alone, so a redelivered invocation does nothing; one left `running` by a crashed worker is run again, which the
 * idempotent deploy completes.
 */
export async function runDeployment(cp: ControlPlane, id: string, environment?: Record<string, string>): Promise<DeploymentRecord> {
  const started = await cp.store.update(id, (r) => (r.state === 'pending' || r.state === 'running' ? { ...r, state: 'running' } : undefined));
  if (started.state !== 'running') return started;

  const pending: Array<ProgressEvent & { at: string }> = [];
  let flushing: Promise<unknown> = Promise.resolve();
  const flush = () => {
    flushing = flushing.then(async () => {
      if (pending.length === 0) return;
      const batch = pending.splice(0);
      await cp.store.update(id, (r) => ({ ...r, steps: [...r.steps, ...batch] }));
    });
    return flushing;
  };
  let timer: NodeJS.Timeout | undefined;
  const onProgress = (e: ProgressEvent) => {
    pending.push({ ...e, at: new Date().toISOString() });
    // At most one record write a second, whatever the number of assets.
    timer ??= setTimeout(() => {
      timer = undefined;
      void flush().catch((err) => cp.logger.warn('could not record progress', { id, error: (err as Error).message }));
    }, 1000);
  };

  let record: DeploymentRecord;
  try {
    const opts = { ...deployOptions(cp, started.options, environment, false), lockHolder: `deployment ${id}` };
    const outcome = await withBundleFromS3(cp, started.bundle.key, async (source, planPorts) => {
      const { app } = source;
      await cp.store.update(id, (r) => ({ ...r, app: { appId: app.manifest.app_id, version: app.manifest.version ?? '' } }));
      const warnings = cp.ports.mattermost ? [] : ['Mattermost is not configured (MM_SERVICESETTINGS_SITEURL, MM_ADMIN_TOKEN): the app was deployed but not listed'];
      return { ...(await deploy(planPorts, source, opts, cp.logger, onProgress)), warnings, manifest: app.manifest };
    }, { ...(started.bundle.versionId ? { versionId: started.bundle.versionId } : {}), ...(started.bundle.etag ? { etag: started.bundle.etag } : {}) }, opts);
    if (timer) clearTimeout(timer), (timer = undefined);
    await flush();
    const result = outcome.result!;
    record = await cp.store.update(id, (r) => ({ ...r, state: 'succeeded', plan: outcome.plan, result, warnings: [...r.warnings, ...outcome.plan.warnings, ...outcome.warnings] }));
    await cp.store.updateAppSummary(result.appId, (s) => ({
      appId: result.appId,
      lastDeployment: { id, state: 'succeeded', version: result.version, at: record.updatedAt },
      listedVersion: result.listed ? result.version : s?.listedVersion,
      installed: result.installed || (s?.installed ?? false),
    }));
    await markDeployed(cp, started.bundle.key);
    await notify(cp, `:white_check_mark: A Mattermost app was successfully deployed/updated: **${outcome.manifest.display_name ?? result.appId}** (${result.appId} ${result.version}) from \`${started.bundle.key}\`: ${result.functions.length} functions, ${result.statics.length} static assets${result.listed ? ', listed in Mattermost' : ''}${result.installed ? ' and installed' : ''}.`);
  } catch (err) {
    if (timer) clearTimeout(timer), (timer = undefined);
    await flush().catch(() => undefined);
    const error = errorOf(err);
    cp.logger.error('deployment failed', { id, code: error.code, error: error.message });
    record = await cp.store.update(id, (r) => ({ ...r, state: 'failed', error }));
    if (record.app) {
      await cp.store.updateAppSummary(record.app.appId, (s) => ({
        appId: record.app!.appId,
        lastDeployment: { id, state: 'failed', version: record.app!.version, at: record.updatedAt },
        ...(s?.listedVersion ? { listedVersion: s.listedVersion } : {}),
        installed: s?.installed ?? false,
      }));
    }
    const what = record.app ? `${record.app.appId} ${record.app.version}` : started.bundle.key;
    await notify(cp, `:x: Mattermost apps deployment failed: ${what} from \`${started.bundle.key}\`: ${error.message}${error.details.length ? `\n${error.details.map((d) => `- ${d.path ? `${d.path}: ` : ''}${d.message}`).join('\n')}` : ''}`);
  }
  return record;
}

/**
 * Tags a deployed bundle `deployed=true` (as the cloud deployer did), whichever way it was deployed, so that reconcile
 * leaves it alone. Tagging replaces the whole tag set: without the current tags (object gone, read refused) it is
 * skipped rather than risk wiping the uploader's tags; the deployment record says it succeeded either way.
 */
async function markDeployed(cp: ControlPlane, key: string): Promise<void> {
  try {
    const tags = await cp.ports.s3.getTags(key);
    if (tags.deployed !== 'true') await cp.ports.s3.putTags(key, { ...tags, deployed: 'true' });
  } catch (err) {
    cp.logger.warn('could not tag the deployed bundle', { key, error: (err as Error).message });
  }
}

async function notify(cp: ControlPlane, text: string): Promise<void> {
  if (!cp.notifier) return;
  try {
    await cp.notifier.notify(text);
  } catch (err) {
    // A notice that cannot be delivered must not turn a deployment into a failure.
    cp.logger.warn('could not post the webhook notice', { error: (err as Error).message });
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// S3 auto-deploy (design.md §4)

export interface BundleEvent {
  eventName: string;
  bucket: string;
  /** Already URL-decoded. */
  key: string;
  size: number;
  versionId?: string;
  etag?: string;
  sequencer?: string;
}

export type BundleEventOutcome =
  | { status: 'ignored'; reason: string }
  | { status: 'duplicate'; identity: string }
  | { status: 'rejected'; deploymentId: string; reason: string }
  | { status: 'deployed' | 'failed'; deploymentId: string };

/** S3 events arrive at least once and out of order: the first delivery of an object version claims it, duplicates do nothing. */
export function eventIdentity(e: BundleEvent): string {
  return e.versionId ? `${e.bucket}/${e.key}#v=${e.versionId}` : `${e.bucket}/${e.key}#etag=${e.etag ?? ''}#seq=${e.sequencer ?? ''}`;
}

/**
 * The S3 event path, also taken by reconcile for bundles whose event was lost. Reconcile passes its own `identity`
 * (one per attempt) and `source`, so that a retry is not taken for a duplicate of the attempt before it.
 */
export async function handleBundleEvent(cp: ControlPlane, e: BundleEvent, opts: { source?: 's3-event' | 'reconcile'; identity?: string } = {}): Promise<BundleEventOutcome> {
  if (!e.eventName.startsWith('ObjectCreated')) return { status: 'ignored', reason: `event ${e.eventName}` };
  if (e.bucket !== cp.ports.s3.bucket) return { status: 'ignored', reason: `bucket ${e.bucket} is not the apps bucket` };
  if (!e.key.startsWith(BUNDLES_PREFIX) || !e.key.endsWith('.zip')) return { status: 'ignored', reason: `${e.key} is not a bundle (${BUNDLES_PREFIX}*.zip)` };

  const identity = opts.identity ?? eventIdentity(e);
  const id = randomUUID();
  if (!(await cp.store.claim(identity, id))) {
    cp.logger.info('duplicate bundle event ignored', { key: e.key });
    return { status: 'duplicate', identity };
  }
  const record = await cp.store.create({
    id,
    source: opts.source ?? 's3-event',
    bundle: { bucket: e.bucket, key: e.key, ...(e.versionId ? { versionId: e.versionId } : {}), ...(e.etag ? { etag: e.etag } : {}) },
    options: { install: cp.autoInstall, update: true, policy: DEFAULT_DEPLOY_OPTIONS.policyName, executeRole: DEFAULT_DEPLOY_OPTIONS.executeRoleName, envKeys: [] },
  });
  // The size is known from the event: an oversized upload is refused before a byte of it is read.
  if (e.size > cp.maxBundleBytes) {
    const reason = `${e.key} is ${e.size} bytes, over the bundle limit of ${cp.maxBundleBytes} bytes`;
    await cp.store.update(record.id, (r) => ({ ...r, state: 'failed', error: { code: new BundleLimitError('').code, message: reason, details: [] } }));
    await notify(cp, `:x: Mattermost apps deployment failed: \`${e.key}\` was refused: ${reason}`);
    return { status: 'rejected', deploymentId: record.id, reason };
  }
  const done = await runDeployment(cp, record.id);
  return { status: done.state === 'succeeded' ? 'deployed' : 'failed', deploymentId: record.id };
}
