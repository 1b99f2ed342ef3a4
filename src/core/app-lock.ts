import { randomUUID } from 'node:crypto';
import { ConflictError } from './errors';
import { withKeyLock } from './key-lock';
import type { S3Port } from './ports';

/**
 * One deployment of an app at a time, across processes and machines: a lock object in the apps bucket, created with
 * `If-None-Match: *`. A lock older than its expiry (a crashed deployer) is taken over with `If-Match`, so a crash never
 * blocks an app for longer than the TTL. The CLI, the worker and the auto-deployer all take it.
 */
export const LOCK_TTL_MS = 30 * 60 * 1000;

interface LockBody {
  owner: string;
  holder: string;
  acquiredAt: string;
  expiresAt: string;
}

const lockKey = (appId: string) => `deployments/locks/${encodeURIComponent(appId)}.json`;
const isPreconditionFailed = (err: unknown) => (err as { code?: string })?.code === 'PRECONDITION_FAILED';

export async function withAppLock<T>(s3: S3Port, appId: string, holder: string, fn: () => Promise<T>, ttlMs = LOCK_TTL_MS): Promise<T> {
  const key = lockKey(appId);
  const owner = randomUUID();
  const now = new Date();
  const lock: LockBody = { owner, holder, acquiredAt: now.toISOString(), expiresAt: new Date(now.getTime() + ttlMs).toISOString() };
  const body = JSON.stringify(lock);
  await withKeyLock(key, async () => {
    try {
      await s3.putObject({ key, body, contentLength: Buffer.byteLength(body), contentType: 'application/json', ifNoneMatch: '*' });
      return;
    } catch (err) {
      if (!isPreconditionFailed(err)) throw err;
    }
    const current = await s3.getObjectText(key);
    if (current) {
      const held = JSON.parse(current.text) as LockBody;
      if (Date.parse(held.expiresAt) > now.getTime()) {
        throw new ConflictError(
          `another deployment of ${appId} is in progress (${held.holder}, since ${held.acquiredAt}); try again when it has finished` +
            ` (a crashed one releases the app at ${held.expiresAt})`,
        );
      }
    }
    // Expired (or released meanwhile): take it over, unless someone else just did.
    try {
      await s3.putObject({ key, body, contentLength: Buffer.byteLength(body), contentType: 'application/json', ...(current?.etag ? { ifMatch: current.etag } : { ifNoneMatch: '*' as const }) });
    } catch (err) {
      if (isPreconditionFailed(err)) throw new ConflictError(`another deployment of ${appId} has just started; try again when it has finished`);
      throw err;
    }
  });
  try {
    return await fn();
  } finally {
    const current = await s3.getObjectText(key).catch(() => undefined);
    if (current && (JSON.parse(current.text) as LockBody).owner === owner) await s3.deleteObject(key).catch(() => undefined);
  }
}
