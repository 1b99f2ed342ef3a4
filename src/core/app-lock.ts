import { randomUUID } from 'node:crypto';
import { hostname as osHostname } from 'node:os';
import { ConflictError } from './errors';
import { withKeyLock } from './key-lock';
import type { S3Port } from './ports';

/**
 * One deployment of an app at a time, across processes and machines: a lock object in the apps bucket, created with
 * `If-None-Match: *`. A lock older than its expiry (a crashed deployer) is taken over with `If-Match`, so a crash never
 * blocks an app for longer than the TTL. A lock whose holder ran on this very host, in a process that no longer exists
 * (a deploy killed with SIGKILL, a closed laptop lid then a reboot), is taken over at once: waiting 30 minutes for a
 * process that is known to be dead helps nobody. The CLI, the worker and the auto-deployer all take it.
 */
export const LOCK_TTL_MS = 30 * 60 * 1000;

/** Who holds the lock: a description for messages, and for a local process its host and pid (for takeover). */
export interface AppLockHolder {
  /** As other deployers see it: `appsctl on <host> (pid N)`, `deployment <id>`. */
  description: string;
  /** `os.hostname()` of the holding process, when the holder is a process that another one on the host can check. */
  hostname?: string;
  pid?: number;
}

interface LockBody {
  owner: string;
  holder: string;
  hostname?: string;
  pid?: number;
  acquiredAt: string;
  expiresAt: string;
}

/** The holder for this process, as the CLI takes the lock. */
export function processLockHolder(tool = 'appsctl'): AppLockHolder {
  const host = osHostname();
  return { description: `${tool} on ${host} (pid ${process.pid})`, hostname: host, pid: process.pid };
}

/** Whether a process with that pid exists on this host (EPERM: it does, and belongs to someone else). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as { code?: string }).code === 'EPERM';
  }
}

/** Why a held lock may be taken over, or undefined when its holder may still be at work. */
export function staleReason(held: LockBody, now: number, host: string = osHostname(), alive: (pid: number) => boolean = processAlive): string | undefined {
  if (!(Date.parse(held.expiresAt) > now)) return `it expired at ${held.expiresAt}`;
  if (held.hostname !== undefined && held.hostname === host && Number.isInteger(held.pid) && held.pid! > 0 && !alive(held.pid!)) {
    return `its holder (pid ${held.pid} on ${host}) is no longer running`;
  }
  return undefined;
}

/** The app's lock object. */
export const appLockKey = (appId: string) => `deployments/locks/${encodeURIComponent(appId)}.json`;
const isPreconditionFailed = (err: unknown) => (err as { code?: string })?.code === 'PRECONDITION_FAILED';

function parseLock(text: string): LockBody | undefined {
  try {
    const body = JSON.parse(text) as LockBody;
    return typeof body?.owner === 'string' ? body : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Whether the app's lock is held by nobody who may still be at work: expired, or left by a dead process on this host.
 * False when there is no lock. A deploy with nothing to change uses it to free an app that a killed run left locked.
 */
export async function appLockIsStale(s3: S3Port, appId: string): Promise<boolean> {
  const current = await s3.getObjectText(appLockKey(appId));
  const held = current ? parseLock(current.text) : undefined;
  return held !== undefined && staleReason(held, Date.now()) !== undefined;
}

export interface AppLockOptions {
  ttlMs?: number;
  /** Told when a stale lock is taken over, with the reason (for a warning). */
  onTakeover?: (message: string) => void;
}

/** A lock this process wrote: see acquireAppLock. */
export interface AcquiredAppLock {
  /** The lock was free when asked for (nobody held it, nor had to be taken over). */
  readonly firstTry: boolean;
  /**
   * Whether the lock object, read back, is ours. S3 conditional writes are atomic, but some S3-compatible stores (moto
   * among them, design.md §6) let two concurrent creates both succeed; the later one is what stays, and the earlier
   * writer must step back: false. Rejects when the read fails.
   */
  readonly confirmed: Promise<boolean>;
  /** Deletes the lock if it is still ours; best effort, never throws; a second call does nothing more. */
  release(): Promise<void>;
}

/**
 * Takes the app's lock, or throws ConflictError naming who holds it. Resolves as soon as the conditional write is done;
 * its read-back (`confirmed`) is left to the caller, so that work which is safe to do before it (the head start's
 * conditional uploads, which it never deletes unconfirmed) need not wait for one more round trip. withAppLock waits.
 */
export async function acquireAppLock(s3: S3Port, appId: string, holder: string | AppLockHolder, options: number | AppLockOptions = {}): Promise<AcquiredAppLock> {
  const { ttlMs = LOCK_TTL_MS, onTakeover } = typeof options === 'number' ? { ttlMs: options } : options;
  const who: AppLockHolder = typeof holder === 'string' ? { description: holder } : holder;
  const key = appLockKey(appId);
  const owner = randomUUID();
  const now = new Date();
  const lock: LockBody = {
    owner,
    holder: who.description,
    ...(who.hostname !== undefined ? { hostname: who.hostname } : {}),
    ...(who.pid !== undefined ? { pid: who.pid } : {}),
    acquiredAt: now.toISOString(),
    expiresAt: new Date(now.getTime() + ttlMs).toISOString(),
  };
  const body = JSON.stringify(lock);
  const put = (condition: { ifNoneMatch: '*' } | { ifMatch: string }) =>
    s3.putObject({ key, body, contentLength: Buffer.byteLength(body), contentType: 'application/json', ...condition });
  /** The ETag of our lock object as last read: what the release deletes, and only that. */
  let ourEtag: string | undefined;
  /**
   * Whether the lock object is ours. Asked after a conditional write answered 412 (the write may have been our own: the
   * first attempt reached S3 and its response was lost, so the retry found the object) and after every acquisition.
   */
  const ours = async () => {
    const current = await s3.getObjectText(key);
    const mine = current ? parseLock(current.text)?.owner === owner : false;
    if (mine) ourEtag = current!.etag;
    return mine;
  };

  let firstTry = true;
  await withKeyLock(key, async () => {
    try {
      await put({ ifNoneMatch: '*' });
    } catch (err) {
      if (!isPreconditionFailed(err)) throw err;
      firstTry = false;
      const current = await s3.getObjectText(key);
      const held = current ? parseLock(current.text) : undefined;
      if (held?.owner === owner) return;
      if (current && !held) {
        throw new ConflictError(
          `the lock of ${appId} (s3://${s3.bucket}/${key}) cannot be read; if no deployment of ${appId} is running, delete it and try again`,
        );
      }
      const reason = held ? staleReason(held, now.getTime()) : 'released meanwhile';
      if (!reason) {
        throw new ConflictError(
          `another deployment of ${appId} is in progress (${held!.holder}, since ${held!.acquiredAt}); try again when it has finished` +
            ` (a crashed one releases the app at ${held!.expiresAt})`,
        );
      }
      // Stale or released meanwhile: take it over, unless someone else just did.
      try {
        await put(current?.etag ? { ifMatch: current.etag } : { ifNoneMatch: '*' });
      } catch (err2) {
        if (!isPreconditionFailed(err2)) throw err2;
        if (!(await ours())) throw new ConflictError(`another deployment of ${appId} has just started; try again when it has finished`);
      }
      if (held) onTakeover?.(`took over the lock of ${appId} left by ${held.holder} since ${held.acquiredAt}: ${reason}`);
    }
  });
  const confirmed = ours();
  confirmed.catch(() => undefined);
  /**
   * One conditional DELETE of our own ETag (`If-Match`, which S3 evaluates for general purpose buckets since September
   * 2025) rather than a read and then a delete: this is the last request of every deploy that changed something. A
   * lock taken over meanwhile (a deploy that outlived the TTL) fails it with 412 and stays; one left behind expires.
   */
  const releaseOnce = async () => {
    await confirmed.catch(() => undefined);
    if (ourEtag !== undefined) return s3.deleteObject(key, { ifMatch: ourEtag }).catch(() => undefined);
    // No ETag read (the read-back failed, or a store answers none): read, then delete if ours.
    const current = await s3.getObjectText(key).catch(() => undefined);
    if (current && parseLock(current.text)?.owner === owner) await s3.deleteObject(key).catch(() => undefined);
  };
  // Released once, however many callers let go of it (the head start lets go early when it steps back, then at the end).
  let released: Promise<void> | undefined;
  return {
    firstTry,
    confirmed,
    release: () => (released ??= releaseOnce()),
  };
}

/** Runs `fn` holding the app's lock, confirmed; releases it after, whatever `fn` did. */
export async function withAppLock<T>(
  s3: S3Port,
  appId: string,
  holder: string | AppLockHolder,
  /** `firstTry`: the lock was free when asked for (nobody held it, nor had to be taken over). */
  fn: (acquired: { firstTry: boolean }) => Promise<T>,
  options: number | AppLockOptions = {},
): Promise<T> {
  const lock = await acquireAppLock(s3, appId, holder, options);
  let confirmed: boolean;
  try {
    confirmed = await lock.confirmed;
  } catch (err) {
    await lock.release();
    throw err;
  }
  if (!confirmed) throw new ConflictError(`another deployment of ${appId} has just started; try again when it has finished`);
  try {
    return await fn({ firstTry: lock.firstTry });
  } finally {
    await lock.release();
  }
}
