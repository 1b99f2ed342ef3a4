import { createHash } from 'node:crypto';
import { BUNDLES_PREFIX, handleBundleEvent, type ControlPlane } from './control-plane';
import { DEPLOYMENTS_PREFIX } from './deployments';
import { withKeyLock } from './key-lock';
import type { ListedObject } from './ports';

/**
 * Reconcile (design.md §4 made whole): S3 delivers events at least once in theory, and not at all when a
 * notification is misconfigured, a Lambda is throttled past its retries, or the bucket was written before the stack
 * existed. Every hour, and on demand (`appsctl aws reconcile`), bundles under `bundles/` that no deployment has
 * marked deployed are handed to the S3 event path itself (handleBundleEvent), so that they are deployed exactly as an
 * event would have deployed them.
 *
 * A bundle that fails is retried every run, but reported to the webhook once: a marker per bundle object under
 * `deployments/reconcile/` keeps the last error and whether it was reported. The webhook hears again only when the
 * error changes or the bundle finally deploys.
 */
export const RECONCILE_PREFIX = `${DEPLOYMENTS_PREFIX}reconcile/`;

/**
 * Younger bundles are left to their own S3 event, which may still be on its way or running (the auto-deployer may
 * take its whole 15 minutes): reconciling them now would only race it.
 */
export const DEFAULT_MIN_AGE_MS = 20 * 60 * 1000;

export interface ReconcileOptions {
  minAgeMs: number;
  /** Lists what would be deployed, deploys nothing and writes nothing. */
  dryRun: boolean;
  /** Epoch ms after which no further bundle is started (a Lambda's remaining time); the next run goes on. */
  deadline?: number;
  now?: () => Date;
}

export type ReconcileStatus = 'deployed' | 'failed' | 'skipped' | 'would-deploy';

export interface ReconcileItem {
  key: string;
  status: ReconcileStatus;
  reason?: string;
  deploymentId?: string;
  error?: { code: string; message: string };
  /** For a failure: whether the webhook has been told of this error (now or on an earlier run). */
  notified?: boolean;
  /** How many reconcile attempts this bundle object has had, this one included. */
  attempts?: number;
}

export interface ReconcileResult {
  bundles: ReconcileItem[];
  deployed: number;
  failed: number;
  skipped: number;
  /** Bundles left for the next run because the deadline came. */
  deferred: number;
}

interface FailureMarker {
  key: string;
  object: string;
  attempts: number;
  lastAttemptAt: string;
  error?: { code: string; message: string };
  notified: boolean;
  deploymentId?: string;
}

const markerKey = (objectIdentity: string) => `${RECONCILE_PREFIX}${createHash('sha256').update(objectIdentity).digest('hex')}.json`;
const isPreconditionFailed = (err: unknown) => (err as { code?: string })?.code === 'PRECONDITION_FAILED';

/** Another deployer holding the app: not this bundle's failure, and worth no notice; the next run tries again. */
function isLockConflict(error: { code: string; message: string }): boolean {
  return error.code === 'CONFLICT' && /^another deployment of .+ (is in progress|has just started)/.test(error.message);
}

export async function reconcile(cp: ControlPlane, opts: ReconcileOptions): Promise<ReconcileResult> {
  const now = opts.now ?? (() => new Date());
  // Oldest first: when several versions of an app were missed, the newest is deployed (and listed) last.
  const bundles = (await cp.ports.s3.listKeys(BUNDLES_PREFIX))
    .filter((o) => o.key.endsWith('.zip'))
    .sort((a, b) => (a.lastModified?.getTime() ?? 0) - (b.lastModified?.getTime() ?? 0) || a.key.localeCompare(b.key));
  const items: ReconcileItem[] = [];
  let deferred = 0;
  for (const o of bundles) {
    if (opts.deadline !== undefined && Date.now() > opts.deadline) {
      deferred++;
      continue;
    }
    const item = await reconcileOne(cp, o, opts, now());
    cp.logger.info('reconcile', { key: item.key, status: item.status, ...(item.reason ? { reason: item.reason } : {}) });
    items.push(item);
  }
  return {
    bundles: items,
    deployed: items.filter((i) => i.status === 'deployed').length,
    failed: items.filter((i) => i.status === 'failed').length,
    skipped: items.filter((i) => i.status === 'skipped').length,
    deferred,
  };
}

async function reconcileOne(cp: ControlPlane, o: ListedObject, opts: ReconcileOptions, now: Date): Promise<ReconcileItem> {
  const { s3 } = cp.ports;
  const key = o.key;
  if (o.lastModified && now.getTime() - o.lastModified.getTime() < opts.minAgeMs) {
    return { key, status: 'skipped', reason: `uploaded ${Math.round((now.getTime() - o.lastModified.getTime()) / 1000)} s ago: left to its S3 event` };
  }
  const head = await s3.headObject(key);
  if (!head) return { key, status: 'skipped', reason: 'deleted meanwhile' };
  // The mark handleBundleEvent leaves on success; tags belong to the object version, so a new upload has none.
  if ((await s3.getTags(key)).deployed === 'true') return { key, status: 'skipped', reason: 'already deployed' };

  const object = `${s3.bucket}/${key}#${head.versionId ? `v=${head.versionId}` : `etag=${head.etag ?? o.etag ?? ''}`}`;
  const mKey = markerKey(object);
  const previous = await s3.getObjectText(mKey);
  const marker = previous ? (JSON.parse(previous.text) as FailureMarker) : undefined;
  if (opts.dryRun) {
    return { key, status: 'would-deploy', ...(marker?.error ? { reason: `failed ${marker.attempts} time(s) before: ${marker.error.message}` } : {}) };
  }

  // Counting the attempt first, with a conditional write, makes concurrent reconcilers take turns and gives each
  // attempt its own claim identity, so that a retry is never mistaken for a duplicate of the attempt before it.
  const attempt: FailureMarker = {
    key,
    object,
    attempts: (marker?.attempts ?? 0) + 1,
    lastAttemptAt: now.toISOString(),
    notified: marker?.notified ?? false,
    ...(marker?.error ? { error: marker.error } : {}),
    ...(marker?.deploymentId ? { deploymentId: marker.deploymentId } : {}),
  };
  let etag: string | undefined;
  try {
    etag = await withKeyLock(mKey, async () => (await putMarker(cp, mKey, attempt, previous?.etag)).etag);
  } catch (err) {
    if (isPreconditionFailed(err)) return { key, status: 'skipped', reason: 'another reconcile is deploying it' };
    throw err;
  }

  // The deployment's own notices are held back and posted below only when they say something new.
  const notices: string[] = [];
  const quiet: ControlPlane = { ...cp, notifier: { notify: async (text) => void notices.push(text) } };
  const outcome = await handleBundleEvent(
    quiet,
    { eventName: 'ObjectCreated:Reconcile', bucket: s3.bucket, key, size: head.size, ...(head.versionId ? { versionId: head.versionId } : {}), ...(head.etag ? { etag: head.etag } : {}) },
    { source: 'reconcile', identity: `reconcile:${object}#attempt=${attempt.attempts}` },
  );

  if (outcome.status === 'deployed') {
    await post(cp, notices);
    await s3.deleteObject(mKey);
    return { key, status: 'deployed', deploymentId: outcome.deploymentId, attempts: attempt.attempts };
  }
  if (outcome.status === 'ignored' || outcome.status === 'duplicate') {
    return { key, status: 'skipped', reason: outcome.status === 'ignored' ? outcome.reason : 'already being deployed' };
  }

  const record = await cp.store.get(outcome.deploymentId);
  const error = record?.error
    ? { code: record.error.code, message: record.error.message }
    : { code: 'REJECTED', message: outcome.status === 'rejected' ? outcome.reason : 'deployment failed' };
  if (isLockConflict(error)) {
    return { key, status: 'skipped', reason: `${error.message}; the next run tries again`, deploymentId: outcome.deploymentId };
  }
  const alreadyReported = marker?.notified === true && marker.error?.code === error.code && marker.error.message === error.message;
  const notified = alreadyReported || (await post(cp, notices));
  await withKeyLock(mKey, () => putMarker(cp, mKey, { ...attempt, error, notified, deploymentId: outcome.deploymentId }, etag)).catch((err) => {
    // Losing this write costs at most one repeated notice on the next run.
    cp.logger.warn('could not record the reconcile failure', { key, error: (err as Error).message });
  });
  return { key, status: 'failed', deploymentId: outcome.deploymentId, error, notified, attempts: attempt.attempts };
}

async function putMarker(cp: ControlPlane, key: string, marker: FailureMarker, etag: string | undefined): Promise<{ etag?: string }> {
  const body = JSON.stringify(marker);
  return cp.ports.s3.putObject({ key, body, contentLength: Buffer.byteLength(body), contentType: 'application/json', ...(etag ? { ifMatch: etag } : { ifNoneMatch: '*' as const }) });
}

/** Posts the held-back notices; true when every one reached the webhook. */
async function post(cp: ControlPlane, notices: string[]): Promise<boolean> {
  if (!cp.notifier || notices.length === 0) return false;
  try {
    for (const text of notices) await cp.notifier.notify(text);
    return true;
  } catch (err) {
    cp.logger.warn('could not post the webhook notice', { error: (err as Error).message });
    return false;
  }
}
