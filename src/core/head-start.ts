import type { Readable } from 'node:stream';
import pLimit, { type LimitFunction } from 'p-limit';
import { acquireAppLock, type AcquiredAppLock, type AppLockHolder } from './app-lock';
import type { CheckedEntry } from './bundle';
import { codeKey, codeObject, deleteKeys, staticObject } from './objects';
import type { PutObjectInput, S3Port } from './ports';
import type { AppBundle, PlannedFunction, PlannedStatic } from './provision';

/**
 * A first deploy's uploads, started while the bundle is still being validated.
 *
 * Validation reads, inflates and hashes every byte of the bundle before the plan; uploading only afterwards put all of
 * it on the deploy's critical path (on the benchmark's 75 MiB bundle, a third of the time above the raw-upload floor).
 * The head start uploads each function zip and asset as soon as its own bytes have passed their checks, on these terms:
 *
 * - Only objects that do not exist yet, under keys nothing names before this deploy's manifest: the version's static
 *   prefix and the private, content-addressed functions/ prefix. Nothing that exists is overwritten (an existing asset
 *   that differs, a function) before the bundle as a whole is known good; that stays with the apply step.
 * - Only once the app's lock is written: no other deployer of the app can create or rely on these keys meanwhile. Every
 *   PUT is conditional (`If-None-Match: *`) as well, for what was created between the early listing and the lock, and
 *   for a store whose lock turns out, read back, to be another deployer's (see takeLock).
 * - If the bundle is refused after all (a later entry is bad, the plan finds a conflict), every object it created is
 *   deleted before the lock is released: bad input still changes nothing. Once the apply step has begun, what was
 *   uploaded stays, as every upload of apply does (a re-run completes a failed deploy).
 *
 * It is best effort: a lock held by another deployer, or a failed upload, only means the apply step uploads it.
 */
export interface HeadStartHandle {
  /** Whether the app lock was free when asked for (withAppLock's firstTry): if not, the plan's early reads are stale. */
  readonly firstTry: boolean;
  /** Resolves true when this run created `key` with the given SHA-256, false when the apply step must see to it. */
  uploaded(key: string, sha256Hex: string): Promise<boolean>;
  /** Called when the apply step begins: from then on, a failure leaves what was uploaded. */
  commit(): void;
  /** For the deploy's log: a stale lock taken over (withAppLock's onTakeover). */
  readonly warnings: readonly string[];
}

/**
 * Checked bytes held for upload at most. Validation that runs ahead of the uploads waits for room (the data pass awaits
 * offer()): memory stays flat whatever the bundle's size, and no asset is read and inflated twice. Reading assets again
 * instead, beside validation, made both slower: the same thread pool reads and inflates for both.
 */
const HELD_BYTES_MAX = 8 * 1024 * 1024;

type Target = { kind: 'static'; planned: PlannedStatic } | { kind: 'function'; planned: PlannedFunction };
type Open = (entryName: string) => Promise<NodeJS.ReadableStream>;

export interface HeadStartOptions {
  concurrency: number;
  lockHolder: string | AppLockHolder;
}

export class HeadStart implements HeadStartHandle {
  private targets: Map<string, Target> | undefined;
  private readonly waiting: Array<[CheckedEntry, Open]> = [];
  private readonly uploads = new Map<string, { sha256Hex: string; created: Promise<boolean> }>();
  private readonly limit: LimitFunction;
  /** The static keys that existed before the lock (left to the apply step), once the head start is known worth it. */
  private worth: Promise<ReadonlySet<string> | undefined> | undefined;
  /** The app lock once written, undefined when it was not taken; its read-back (`confirmed`) may still be on its way. */
  private lock: Promise<AcquiredAppLock | undefined> | undefined;
  private stopped = false;
  /** Bytes of checked assets waiting for their upload (CheckedEntry.bytes). */
  private heldBytes = 0;
  private readonly roomWaiters: Array<() => void> = [];
  /** True once it is known that the head start will upload nothing (not worth it, or the lock is someone else's). */
  private idle = false;
  private committed = false;
  firstTry = false;
  readonly warnings: string[] = [];

  constructor(
    private readonly s3: S3Port,
    private readonly opts: HeadStartOptions,
  ) {
    this.limit = pLimit(opts.concurrency);
  }

  /**
   * The bundle's preview resolved: what each entry deploys as is known. Once `worthIt` answers the static keys that
   * exist already (listed before the lock: see upload()), the app lock is asked for; when it answers undefined, nothing
   * is uploaded early.
   */
  begin(preview: AppBundle, worthIt: Promise<ReadonlySet<string> | undefined>): void {
    if (this.stopped || this.targets) return;
    this.targets = new Map<string, Target>([
      ...preview.functions.map((f): [string, Target] => [f.file.entryName, { kind: 'function', planned: f }]),
      ...preview.statics.map((s): [string, Target] => [s.file.entryName, { kind: 'static', planned: s }]),
    ]);
    const appId = preview.manifest.app_id;
    this.worth = worthIt.then((existing) => (this.stopped ? undefined : existing));
    this.lock = this.worth.then((existing) => (existing ? this.takeLock(appId) : undefined));
    void this.lock.then((acquired) => this.stepBackUnless(acquired !== undefined));
    for (const [entry, open] of this.waiting.splice(0)) void this.offer(entry, open);
  }

  /**
   * Resolves once the lock is written, held until finish(); undefined when it could not be taken (the deploy will say
   * why). Uploads start then, beside its read-back: each is conditional and creates only a new key, so one made under a
   * lock that the read-back then finds to be another deployer's is left in place, never deleted (finish()). Whoever holds
   * the lock plans from what it finds, so an asset left there is overwritten if its bytes differ, and a code object's key
   * is its content's hash.
   */
  private async takeLock(appId: string): Promise<AcquiredAppLock | undefined> {
    try {
      const lock = await acquireAppLock(this.s3, appId, this.opts.lockHolder, { onTakeover: (message) => this.warnings.push(message) });
      void lock.confirmed.then(
        (ours) => this.stepBackUnless(ours),
        () => this.stepBackUnless(false),
      );
      return lock;
    } catch {
      return undefined;
    }
  }

  /** Once false, nothing more is uploaded, and whoever waits for room to hold an asset stops waiting. */
  private stepBackUnless(goOn: boolean): void {
    if (goOn) return;
    this.idle = true;
    this.wake();
  }

  /** withAppBundle's onEntryChecked: one entry's own bytes passed their checks, and `open` reads them. */
  async offer(entry: CheckedEntry, open: Open): Promise<void> {
    if (this.stopped) return;
    if (!this.targets) {
      // Without its bytes: those are held only within HELD_BYTES_MAX, counted from begin().
      const { bytes: _bytes, ...rest } = entry;
      this.waiting.push([rest, open]);
      return;
    }
    const target = this.targets.get(entry.file.entryName);
    if (!target) return;
    const held = target.kind === 'static' ? entry.bytes : undefined;
    if (held) {
      await this.reserve(held.length);
      if (this.stopped) return this.unreserve(held.length);
    }
    const opener = async (name: string) => (await open(name)) as Readable;
    // The preview's entries carry no hashes yet: the checked entry's are the ones uploaded.
    let put: PutObjectInput;
    if (target.kind === 'static') {
      put = staticObject({ ...target.planned, file: { ...target.planned.file, ...entry.file, md5Hex: entry.md5Hex ?? '' } }, opener);
      // The checked bytes: uploaded as they are, not read from the bundle again.
      if (held) put = { ...put, body: held };
    } else {
      const planned = { ...target.planned, file: { ...target.planned.file, ...entry.file } };
      put = codeObject(planned, codeKey(planned.lambdaName, planned.file.sha256Hex), opener);
    }
    const { key } = put;
    if (this.uploads.has(key)) {
      if (held) this.unreserve(held.length);
      return;
    }
    const created = this.limit(() => this.upload(target.kind, put))
      .catch(() => false)
      .finally(() => {
        if (held) this.unreserve(held.length);
      });
    this.uploads.set(key, { sha256Hex: entry.file.sha256Hex, created });
  }

  private async upload(kind: Target['kind'], put: PutObjectInput): Promise<boolean> {
    const existing = await this.worth;
    if (!existing || this.stopped) return false;
    const { key } = put;
    // An asset that exists may be the deployed version's: the apply step decides. The listing was made before the lock
    // was held (it is the plan's, read early), and a code object is looked for while the lock is being taken, not after:
    // what another deployer created since either read is refused by If-None-Match.
    if (kind === 'static' && existing.has(key)) return false;
    const found = kind === 'function' ? this.s3.headObject(key) : Promise.resolve(undefined);
    found.catch(() => undefined);
    const acquired = await this.lock;
    if (!acquired || this.stopped || this.idle || (await found)) return false;
    try {
      await this.s3.putObject({ ...put, ifNoneMatch: '*' });
    } catch (err) {
      // Someone else's object, or ours (the SDK retried a PUT whose response was lost): it cannot be told which, so it
      // is not claimed, and never deleted by finish(). The apply step writes it again.
      if ((err as { code?: string })?.code === 'PRECONDITION_FAILED') return false;
      throw err;
    }
    return true;
  }

  /**
   * Counts `bytes` as held once they fit within HELD_BYTES_MAX (at once when nothing will be uploaded, or all is over).
   * The check and the count are one step: entries offered side by side cannot all pass the check before either counts.
   */
  private async reserve(bytes: number): Promise<void> {
    while (this.heldBytes > 0 && this.heldBytes + bytes > HELD_BYTES_MAX && !this.stopped && !this.idle) {
      await new Promise<void>((resolve) => this.roomWaiters.push(resolve));
    }
    this.heldBytes += bytes;
  }

  private unreserve(bytes: number): void {
    this.heldBytes -= bytes;
    this.wake();
  }

  private wake(): void {
    for (const resolve of this.roomWaiters.splice(0)) resolve();
  }

  uploaded(key: string, sha256Hex: string): Promise<boolean> {
    const upload = this.uploads.get(key);
    if (!upload || upload.sha256Hex !== sha256Hex) return Promise.resolve(false);
    return upload.created;
  }

  commit(): void {
    this.committed = true;
  }

  /**
   * The bundle is known good and every entry was offered: the handle for the deploy, or undefined when the head start
   * never held the lock (the deploy then takes it itself).
   */
  async ready(): Promise<HeadStartHandle | undefined> {
    const acquired = await this.lock;
    if (!acquired) return undefined;
    if (!(await acquired.confirmed.catch(() => false))) {
      // Not ours, or it could not be read back: let go of it now (release() deletes it only if ours), so that the
      // deploy, taking the lock itself, meets the other deployer's and not this one's.
      await acquired.release();
      return undefined;
    }
    this.firstTry = acquired.firstTry;
    return this;
  }

  /**
   * The deploy ended, or the bundle was refused. Waits for every upload; unless the apply step had begun, deletes every
   * object the head start created under a lock confirmed ours; then releases the lock. Deletion is best effort: what is
   * left is named by no manifest.
   */
  async finish(): Promise<void> {
    this.stopped = true;
    this.wake();
    const results = await Promise.all([...this.uploads].map(async ([key, u]) => ((await u.created) ? key : undefined)));
    const created = results.filter((k): k is string => k !== undefined);
    // A lock still being taken is taken, then released: nothing else would ever release it.
    const lock = await this.lock;
    const ours = (await lock?.confirmed.catch(() => false)) ?? false;
    if (ours && !this.committed) await deleteKeys(this.s3, created, this.limit).catch(() => undefined);
    await lock?.release();
  }
}
