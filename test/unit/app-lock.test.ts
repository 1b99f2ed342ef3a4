import { spawnSync } from 'node:child_process';
import { hostname } from 'node:os';
import { describe, expect, it } from 'vitest';
import { PreconditionFailedError } from '../../src/adapters/s3';
import { acquireAppLock, appLockIsStale, processAlive, processLockHolder, staleReason, withAppLock } from '../../src/core/app-lock';
import type { PutObjectInput } from '../../src/core/ports';
import { MemoryS3 } from '../support/memory-s3';

const KEY = 'deployments/locks/my-app.json';
const later = () => new Date(Date.now() + 10 * 60_000).toISOString();
const deadPid = () => spawnSync(process.execPath, ['-e', '']).pid!;
const lockBody = (fields: Record<string, unknown>) =>
  JSON.stringify({ owner: 'someone', holder: 'appsctl on somewhere (pid 1)', acquiredAt: new Date().toISOString(), expiresAt: later(), ...fields });

describe('the app lock', () => {
  it('records the holder\'s host and pid as fields, and releases the lock after the work', async () => {
    // Prepare
    const s3 = new MemoryS3();
    let seen: Record<string, unknown> | undefined;

    // Act
    await withAppLock(s3, 'my-app', processLockHolder('appsctl'), async () => {
      seen = s3.json(KEY);
    });

    // Assess
    expect(seen).toMatchObject({ holder: `appsctl on ${hostname()} (pid ${process.pid})`, hostname: hostname(), pid: process.pid });
    expect(s3.keys('deployments/locks/')).toEqual([]);
  });

  it.each([
    { case: 'still ours', takenOver: false, left: [] },
    { case: 'taken over meanwhile (it outlived its TTL)', takenOver: true, left: [KEY] },
  ])('releases with one conditional DELETE of its own ETag, and leaves a lock $case', async ({ takenOver, left }) => {
    // Prepare
    const s3 = new MemoryS3();

    // Act
    await withAppLock(s3, 'my-app', 'test', async () => {
      s3.calls.length = 0;
      if (takenOver) s3.putRaw(KEY, lockBody({ owner: 'the one who took it over' }));
    });

    // Assess: no read before the delete, and someone else's lock stays
    expect(s3.calls.map((c) => [c.op, c.ifMatch !== undefined, c.outcome])).toEqual([['delete', true, takenOver ? 'precondition-failed' : undefined]]);
    expect(s3.keys('deployments/locks/')).toEqual(left);
  });

  it('releases once however many times it is let go of', async () => {
    // Prepare
    const s3 = new MemoryS3();
    const lock = await acquireAppLock(s3, 'my-app', 'test');
    await lock.confirmed;
    s3.calls.length = 0;

    // Act
    await Promise.all([lock.release(), lock.release()]);
    await lock.release();

    // Assess
    expect(s3.calls.map((c) => c.op)).toEqual(['delete']);
    expect(s3.keys('deployments/locks/')).toEqual([]);
  });

  it('holds the lock when its own create reached S3 but the answer was lost (the retry met 412)', async () => {
    // Prepare: the first conditional create is stored, then answers as the SDK port does after its retry found the object
    const s3 = new MemoryS3();
    const put = s3.putObject.bind(s3);
    let lost = false;
    s3.putObject = async (input: PutObjectInput) => {
      const res = await put(input);
      if (input.key === KEY && !lost) {
        lost = true;
        throw new PreconditionFailedError('the retry of a create whose response was lost');
      }
      return res;
    };
    let ran = false;

    // Act
    await withAppLock(s3, 'my-app', 'test', async () => {
      ran = true;
    });

    // Assess
    expect(lost).toBe(true);
    expect(ran).toBe(true);
    expect(s3.keys('deployments/locks/')).toEqual([]);
  });

  it('refuses while a live holder on this host or any holder elsewhere has it; takes over from a dead process on this host', async () => {
    // Prepare
    const gone = deadPid();
    const s3 = new MemoryS3();
    const warnings: string[] = [];
    const run = () => withAppLock(s3, 'my-app', processLockHolder(), async () => 'done', { onTakeover: (m) => warnings.push(m) });

    // Act + Assess: alive here
    s3.putRaw(KEY, lockBody({ hostname: hostname(), pid: process.pid }));
    await expect(run()).rejects.toThrow(/another deployment of my-app is in progress/);
    expect(await appLockIsStale(s3, 'my-app')).toBe(false);

    // Act + Assess: elsewhere, whatever its pid
    s3.putRaw(KEY, lockBody({ hostname: `not-${hostname()}`, pid: gone }));
    await expect(run()).rejects.toThrow(/another deployment of my-app is in progress/);

    // Act + Assess: no host recorded (the worker, an older CLI): the expiry only
    s3.putRaw(KEY, lockBody({}));
    await expect(run()).rejects.toThrow(/another deployment of my-app is in progress/);

    // Act + Assess: dead here
    s3.putRaw(KEY, lockBody({ hostname: hostname(), pid: gone, holder: `appsctl on ${hostname()} (pid ${gone})` }));
    expect(await appLockIsStale(s3, 'my-app')).toBe(true);
    await expect(run()).resolves.toBe('done');
    expect(warnings).toEqual([expect.stringContaining(`left by appsctl on ${hostname()} (pid ${gone})`)]);
    expect(warnings[0]).toContain('is no longer running');
    expect(s3.keys('deployments/locks/')).toEqual([]);
  });

  it('says why a lock is stale: expired, or its process gone from this host', () => {
    const now = Date.now();
    const base = { owner: 'o', holder: 'h', acquiredAt: new Date(now).toISOString() };
    expect(staleReason({ ...base, expiresAt: new Date(now - 1).toISOString() }, now)).toMatch(/expired/);
    expect(staleReason({ ...base, expiresAt: new Date(now + 1000).toISOString(), hostname: 'h1', pid: 42 }, now, 'h1', () => false)).toMatch(/pid 42 on h1.*no longer running/);
    expect(staleReason({ ...base, expiresAt: new Date(now + 1000).toISOString(), hostname: 'h1', pid: 42 }, now, 'h1', () => true)).toBeUndefined();
    expect(staleReason({ ...base, expiresAt: new Date(now + 1000).toISOString(), hostname: 'h2', pid: 42 }, now, 'h1', () => false)).toBeUndefined();
    expect(processAlive(process.pid)).toBe(true);
    expect(processAlive(deadPid())).toBe(false);
  });
});
