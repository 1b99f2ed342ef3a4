// HeadStart (src/core/head-start.ts) on its own, with an S3 in memory whose uploads the test lets through one by one.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { CheckedEntry } from '../../src/core/bundle';
import { withAppLock } from '../../src/core/app-lock';
import { HeadStart } from '../../src/core/head-start';
import type { PutObjectInput } from '../../src/core/ports';
import type { AppBundle } from '../../src/core/provision';
import { MemoryS3 } from '../support/memory-s3';

const MiB = 1024 * 1024;
const ASSETS = 12;

/** Uploads wait at the door until the test opens it, one at a time or all at once. */
class GatedS3 extends MemoryS3 {
  private readonly gate: Array<() => void> = [];
  waitingPuts = 0;
  open = false;
  override async putObject(input: PutObjectInput) {
    if (!input.key.startsWith('deployments/') && !this.open) {
      this.waitingPuts++;
      await new Promise<void>((resolve) => this.gate.push(resolve));
      this.waitingPuts--;
    }
    return super.putObject(input);
  }
  letOneThrough(): void {
    this.gate.shift()?.();
  }
  openAll(): void {
    this.open = true;
    for (const resolve of this.gate.splice(0)) resolve();
  }
}

const key = (i: number) => `static/app_v1_app/a${i}.bin`;
const preview = {
  manifest: { app_id: 'app', version: 'v1' },
  functions: [],
  statics: Array.from({ length: ASSETS }, (_, i) => ({
    name: `a${i}.bin`,
    key: key(i),
    file: { entryName: `static/a${i}.bin`, size: MiB, sha256Hex: '', sha256Base64: '', md5Hex: '' },
  })),
} as unknown as AppBundle;

function checked(i: number): CheckedEntry {
  const bytes = Buffer.alloc(MiB, i);
  const sha = createHash('sha256').update(bytes).digest();
  return {
    kind: 'static',
    file: { entryName: `static/a${i}.bin`, size: MiB, sha256Hex: sha.toString('hex'), sha256Base64: sha.toString('base64') },
    md5Hex: createHash('md5').update(bytes).digest('hex'),
    bytes,
  };
}

const noStream = async () => {
  throw new Error('the head start read an entry again instead of uploading its checked bytes');
};
const settled = (p: Promise<unknown>) => Promise.race([p.then(() => true), new Promise((resolve) => setTimeout(() => resolve(false), 20))]);

describe('HeadStart', () => {
  it('holds at most 8 MiB of checked bytes: the entry that would pass it waits until an upload is done', async () => {
    // Prepare
    const s3 = new GatedS3();
    const head = new HeadStart(s3, { concurrency: 16, lockHolder: 'test' });
    head.begin(preview, Promise.resolve(new Set<string>()));

    // Act: offer every asset as the data pass would, without waiting.
    const offers = Array.from({ length: ASSETS }, (_, i) => head.offer(checked(i), noStream));
    const early = await Promise.all(offers.map(settled));
    s3.letOneThrough();
    const afterOne = await Promise.all(offers.map(settled));
    s3.openAll();
    await Promise.all(offers);
    const handle = await head.ready();

    // Assess
    expect(early.filter(Boolean)).toHaveLength(8);
    expect(afterOne.filter(Boolean)).toHaveLength(9);
    for (let i = 0; i < ASSETS; i++) expect(await handle!.uploaded(key(i), checked(i).file.sha256Hex)).toBe(true);
    expect(s3.keys('static/')).toHaveLength(ASSETS);
    expect(s3.calls.filter((c) => c.op === 'put' && c.key.startsWith('static/')).every((c) => c.ifNoneMatch === '*')).toBe(true);
    handle!.commit();
    await head.finish();
    expect(s3.keys('static/')).toHaveLength(ASSETS);
    expect(s3.keys('deployments/')).toEqual([]);
  });

  it('when not worth it, takes no lock, uploads nothing and never makes the data pass wait', async () => {
    // Prepare
    const s3 = new GatedS3();
    const head = new HeadStart(s3, { concurrency: 8, lockHolder: 'test' });
    head.begin(preview, Promise.resolve(undefined));

    // Act
    await Promise.all(Array.from({ length: ASSETS }, (_, i) => head.offer(checked(i), noStream)));
    const handle = await head.ready();
    await head.finish();

    // Assess
    expect(handle).toBeUndefined();
    expect(s3.calls.filter((c) => c.op === 'put')).toEqual([]);
    expect(s3.waitingPuts).toBe(0);
  });

  it('leaves alone, and never deletes, an object someone else created meanwhile (If-None-Match refused it)', async () => {
    // Prepare: a0 appears after the early listing (empty) and before the head start's PUT.
    const s3 = new GatedS3();
    s3.openAll();
    s3.putRaw(key(0), 'theirs');
    const head = new HeadStart(s3, { concurrency: 8, lockHolder: 'test' });
    head.begin(preview, Promise.resolve(new Set<string>()));

    // Act: two assets offered, then the deploy is refused before its apply step.
    await head.offer(checked(0), noStream);
    await head.offer(checked(1), noStream);
    const handle = await head.ready();
    const claimed = [await handle!.uploaded(key(0), checked(0).file.sha256Hex), await handle!.uploaded(key(1), checked(1).file.sha256Hex)];
    await head.finish();

    // Assess
    expect(claimed).toEqual([false, true]);
    expect(s3.text(key(0))).toBe('theirs');
    expect(s3.keys('static/')).toEqual([key(0)]);
    expect(s3.keys('deployments/')).toEqual([]);
  });

  it('stands back, deleting nothing, when the lock read back is another deployer\'s (a store whose creates are not atomic)', async () => {
    // Prepare: the lock's create succeeds, but by the read-back another deployer's create has replaced it, as on moto
    const s3 = new GatedS3();
    const lockKey = 'deployments/locks/app.json';
    const theirs = JSON.stringify({ owner: 'other', holder: 'appsctl elsewhere', acquiredAt: new Date().toISOString(), expiresAt: new Date(Date.now() + 60_000).toISOString() });
    const put = s3.putObject.bind(s3);
    s3.putObject = async (input: PutObjectInput) => {
      const res = await put(input);
      if (input.key === lockKey) s3.putRaw(lockKey, theirs);
      return res;
    };
    const head = new HeadStart(s3, { concurrency: 8, lockHolder: 'test' });
    head.begin(preview, Promise.resolve(new Set<string>()));

    // Act: one upload starts beside the read-back; the rest are offered once it has answered; the deploy ends.
    const tick = () => new Promise((resolve) => setImmediate(resolve));
    await head.offer(checked(0), noStream);
    while (s3.waitingPuts === 0 || !s3.calls.some((c) => c.op === 'get' && c.key === lockKey)) await tick();
    await tick();
    await Promise.all(Array.from({ length: ASSETS - 1 }, (_, i) => head.offer(checked(i + 1), noStream)));
    s3.openAll();
    const handle = await head.ready();
    await head.finish();

    // Assess: no handle (the deploy takes the lock itself and is told who holds it), the upload made beside the
    // read-back stays (named by no manifest; whoever holds the lock plans from what it finds), none after it, and the
    // other deployer's lock is left alone.
    expect(handle).toBeUndefined();
    expect(s3.keys('static/')).toEqual([key(0)]);
    expect(s3.calls.filter((c) => c.op === 'delete')).toEqual([]);
    expect(s3.text(lockKey)).toBe(theirs);
  });

  it('lets go of its lock at once when the read-back fails, so that the deploy can take the lock itself', async () => {
    // Prepare: the lock's read-back fails (after the SDK's retries), every later read works
    const s3 = new GatedS3();
    s3.openAll();
    const lockKey = 'deployments/locks/app.json';
    const get = s3.getObjectText.bind(s3);
    let failed = false;
    s3.getObjectText = async (k: string) => {
      if (k === lockKey && !failed) {
        failed = true;
        throw new Error('read timed out');
      }
      return get(k);
    };
    const head = new HeadStart(s3, { concurrency: 8, lockHolder: 'test' });
    head.begin(preview, Promise.resolve(new Set<string>()));

    // Act
    await head.offer(checked(0), noStream);
    const handle = await head.ready();
    const lockAfterReady = s3.keys('deployments/');
    const deployed = await withAppLock(s3, 'app', 'the deploy itself', async () => 'deployed');
    await head.finish();

    // Assess
    expect(failed).toBe(true);
    expect(handle).toBeUndefined();
    expect(lockAfterReady).toEqual([]);
    expect(deployed).toBe('deployed');
    expect(s3.keys('deployments/')).toEqual([]);
  });
});
