import { mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { withBundle, type BundleLimits, type InspectedBundle, type InspectionCache } from '../../src/core/bundle';
import { CorruptZipError } from '../../src/core/errors';
import { DirectoryInspectionCache, inspectionCacheFromEnv } from '../../src/adapters/inspection-cache';
import { buildBundle } from '../support/bundle-builder';
import { writeRawZip } from '../support/raw-zip';

/** An in-memory cache that counts what it is asked. */
class MemoryCache implements InspectionCache {
  readonly entries = new Map<string, string>();
  // The test bundles are written just before they are inspected: trusted at once (see the racy test below).
  racyMs = 0;
  gets = 0;
  puts = 0;
  async get(key: string) {
    this.gets++;
    return this.entries.get(key);
  }
  async put(key: string, text: string) {
    this.puts++;
    this.entries.set(key, text);
  }
}

const MANIFEST = { app_id: 'cache-app', version: 'v1', display_name: 'Cache', aws_lambda: { functions: [{ path: '/hello', name: 'hello', handler: 'index.handler', runtime: 'nodejs22.x' }] } };

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'inspection-cache-test-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function bundle(name: string, text = 'hello'): Promise<string> {
  return buildBundle(dir, { fileName: name, manifest: MANIFEST, functions: { 'hello.zip': { 'index.js': 'exports.handler = async () => 1;\n' } }, statics: { 'a.txt': text, 'img/b.bin': Buffer.alloc(3000, 7) } });
}

function inspect(path: string, cache: InspectionCache, limits?: Partial<BundleLimits>): Promise<InspectedBundle> {
  return withBundle(path, limits, (b) => b.inspect(), cache);
}

describe('inspection cache (core)', () => {
  it('gives back, for the same bytes, what the full inspection found, and streams function zips from the bundle', async () => {
    // Prepare
    const cache = new MemoryCache();
    const path = await bundle('one.zip');
    const full = await inspect(path, cache);
    // Act
    const { inspected: again, functionZip } = await withBundle(
      path,
      undefined,
      async (b) => {
        const inspected = await b.inspect();
        const chunks: Buffer[] = [];
        for await (const c of await b.openReadStream('hello.zip')) chunks.push(c as Buffer);
        return { inspected, functionZip: Buffer.concat(chunks) };
      },
      cache,
    );
    // Assess
    expect(cache.puts).toBe(1);
    expect(cache.gets).toBe(2);
    expect(again).toEqual(full);
    expect(functionZip.length).toBe(full.functions[0]!.size);
  });

  it('really skips the data pass on a hit: a record edited in the cache is what comes back', async () => {
    // Prepare
    const cache = new MemoryCache();
    const path = await bundle('one.zip');
    await inspect(path, cache);
    const [key, text] = [...cache.entries][0]!;
    cache.entries.set(key, text.replace(/"md5Hex":"[0-9a-f]{32}"/, `"md5Hex":"${'0'.repeat(32)}"`));
    // Act
    const again = await inspect(path, cache);
    // Assess
    expect(again.statics.map((s) => s.md5Hex)).toContain('0'.repeat(32));
  });

  it.each([
    ['other bytes', async () => ({ path: await bundle('two.zip', 'hellO'), limits: undefined })],
    ['other limits', async () => ({ path: await bundle('one.zip'), limits: { maxEntries: 500 } })],
  ])('inspects in full a bundle with %s', async (_label, variant) => {
    // Prepare
    const cache = new MemoryCache();
    await inspect(await bundle('one.zip'), cache);
    const { path, limits } = await variant();
    // Act
    await inspect(path, cache, limits);
    // Assess
    expect(cache.puts).toBe(2);
    expect(cache.entries.size).toBe(2);
  });

  it('inspects in full a bundle rewritten in place with other bytes of the same size', async () => {
    // Prepare: same path, same inode, same size; only the bytes (and so the nanosecond timestamps) differ.
    const cache = new MemoryCache();
    const path = await bundle('same.zip', 'hello');
    const first = await inspect(path, cache);
    await bundle('same.zip', 'hellO');
    // Act
    const again = await inspect(path, cache);
    // Assess
    expect(cache.puts).toBe(2);
    expect(again.statics[0]!.sha256Hex).not.toBe(first.statics[0]!.sha256Hex);
  });

  it('does not remember a bundle changed less than 2 s before it was inspected (a coarse timestamp could hide its next change)', async () => {
    // Prepare: the default margin, and a bundle written just now.
    const cache = new MemoryCache();
    delete (cache as { racyMs?: number }).racyMs;
    const path = await bundle('fresh.zip');
    // Act
    await inspect(path, cache);
    await inspect(path, cache);
    // Assess
    expect(cache.gets).toBe(2);
    expect(cache.puts).toBe(0);
  });

  it.each([
    ['not JSON', () => 'garbage{'],
    ['of another format', (t: string) => t.replace('"format":2', '"format":1')],
    ['naming an entry the bundle does not have', (t: string) => t.replace('"entryName":"static/a.txt"', '"entryName":"static/zzz.txt"')],
    ['with a field of the wrong type', (t: string) => t.replace(/"size":\d+/, '"size":"big"')],
  ])('ignores a record %s and inspects in full', async (_label, spoil) => {
    // Prepare
    const cache = new MemoryCache();
    const path = await bundle('one.zip');
    const good = await inspect(path, cache);
    const [key, text] = [...cache.entries][0]!;
    cache.entries.set(key, spoil(text));
    // Act
    const again = await inspect(path, cache);
    // Assess
    expect(again).toEqual(good);
    expect(cache.puts).toBe(2);
  });

  it('never remembers a bundle that failed, which fails again the next time', async () => {
    // Prepare: an entry whose data does not match its CRC-32.
    const cache = new MemoryCache();
    const path = join(dir, 'bad.zip');
    await writeRawZip(path, [
      { name: 'manifest.json', data: JSON.stringify(MANIFEST) },
      { name: 'static/a.txt', data: 'hello', declaredCrc32: 1234 },
    ]);
    // Act
    const first = await inspect(path, cache).catch((e: unknown) => e);
    const second = await inspect(path, cache).catch((e: unknown) => e);
    // Assess
    expect(first).toBeInstanceOf(CorruptZipError);
    expect(second).toBeInstanceOf(CorruptZipError);
    expect(cache.puts).toBe(0);
  });

  it('still fails a good bundle whose cache cannot be read or written: the cache only saves time', async () => {
    // Prepare
    const broken: InspectionCache = { get: async () => Promise.reject(new Error('EACCES')), put: async () => Promise.reject(new Error('ENOSPC')) };
    const path = await bundle('one.zip');
    // Act
    const inspected = await inspect(path, broken);
    // Assess
    expect(inspected.statics.map((s) => s.name).sort()).toEqual(['a.txt', 'img/b.bin']);
  });
});

describe('DirectoryInspectionCache', () => {
  it('stores whole files, private to the user, and leaves no temporary file', async () => {
    // Prepare
    const cache = new DirectoryInspectionCache(join(dir, 'c'));
    // Act
    await cache.put('k1', '{"a":1}');
    // Assess
    expect(await cache.get('k1')).toBe('{"a":1}');
    expect(await cache.get('k2')).toBeUndefined();
    expect(await readdir(join(dir, 'c'))).toEqual(['k1.json']);
  });

  it('keeps the 64 most recent entries', async () => {
    // Prepare
    const cache = new DirectoryInspectionCache(join(dir, 'c'));
    await cache.put('k0', 'x');
    await writeFile(join(dir, 'c', 'k0.json'), 'x'); // the oldest stays the oldest
    const old = new Date(Date.now() - 60_000);
    await utimes(join(dir, 'c', 'k0.json'), old, old);
    // Act
    for (let i = 1; i <= 64; i++) await cache.put(`k${i}`, 'x');
    // Assess
    const names = await readdir(join(dir, 'c'));
    expect(names).toHaveLength(64);
    expect(names).not.toContain('k0.json');
  });

  it.each([
    [{ APPS_DEPLOYER_CACHE_DIR: 'off' }, undefined],
    [{ APPS_DEPLOYER_CACHE_DIR: '/tmp/x' }, '/tmp/x'],
    [{ XDG_CACHE_HOME: '/xdg', HOME: '/home/u' }, '/xdg/apps-deployer/bundles'],
    [{ HOME: '/home/u' }, '/home/u/.cache/apps-deployer/bundles'],
  ])('reads its directory from %j', (env, expected) => {
    // Act
    const cache = inspectionCacheFromEnv(env);
    // Assess
    expect(cache === undefined ? undefined : (cache as DirectoryInspectionCache).dir).toBe(expected);
  });
});
