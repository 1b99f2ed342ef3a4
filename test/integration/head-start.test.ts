// The head start (src/core/head-start.ts): a first deploy's new objects are uploaded while the bundle is still being
// validated, under the app lock, and undone when the bundle or the plan is refused.
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { s3Client } from '../support/aws';
import { prepareAccount, type PreparedAccount } from '../support/account';
import { buildBundle, buildZip } from '../support/bundle-builder';
import { appsctl } from '../support/cli';
import { startMattermostFake, type MattermostFake } from '../support/mattermost-fake';
import { headerValue, motoRecorder, resetMoto, type RecordedMotoRequest } from '../support/moto';
import { writeRawZip, type RawZipEntry } from '../support/raw-zip';
import { ConflictError } from '../../src/core/errors';
import { DEFAULT_DEPLOY_OPTIONS, deploy, withBundleToDeploy, type DeployOptions } from '../../src/core/deploy';
import { codeKey } from '../../src/core/objects';
import { silentLogger } from '../../src/core/logger';
import { makeDeployPorts } from '../../src/adapters/ports';

const endpoint = inject('motoEndpoint');
const TOKEN = 'mm-admin-token-for-tests';
const s3 = s3Client();
const APP = 'head-start-app';
const STATIC_PREFIX = `static/${APP}_v1.0.0_app/`;

let dir: string;
let mm: MattermostFake;
let account: PreparedAccount;
let env: Record<string, string>;

const manifest = {
  app_id: APP,
  version: 'v1.0.0',
  display_name: 'Head start',
  homepage_url: 'https://example.com/head-start',
  aws_lambda: { functions: [{ path: '/', name: 'main', handler: 'index.handler', runtime: 'nodejs22.x' }] },
};
const MAIN_JS = 'exports.handler = async () => ({ statusCode: 200, body: "{}" });\n';
const STATICS: Record<string, string> = Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`page-${i}.html`, `<p>page ${i}</p>\n`]));

const sha256Hex = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
const opts: DeployOptions = { ...DEFAULT_DEPLOY_OPTIONS, listInMattermost: false, lockHolder: 'head-start test' };

async function bundle(name: string, statics: Record<string, string> = STATICS): Promise<string> {
  return buildBundle(dir, { fileName: name, manifest, functions: { 'main.zip': { 'index.js': MAIN_JS } }, statics });
}

async function listKeys(prefix: string): Promise<string[]> {
  const res = await s3.send(new ListObjectsV2Command({ Bucket: account.bucket, Prefix: prefix }));
  return (res.Contents ?? []).map((o) => o.Key!).sort();
}

/** The good entries of bundle(), then `last` (a forged one), in that order: checked (and uploaded early) before it. */
async function corruptBundle(name: string, last: RawZipEntry): Promise<string> {
  return writeRawZip(join(dir, name), [
    { name: 'manifest.json', data: JSON.stringify(manifest) },
    { name: 'main.zip', data: await buildZip({ 'index.js': MAIN_JS }) },
    ...Object.entries(STATICS).map(([n, data]) => ({ name: `static/${n}`, data })),
    last,
  ]);
}

/** A refused deploy left no asset, no code object and no lock. */
async function expectNothingLeft(): Promise<void> {
  expect(await listKeys('static/')).toEqual([]);
  expect(await listKeys('functions/')).toEqual([]);
  expect(await listKeys('deployments/locks/')).toEqual([]);
}

/** The S3 object key of a recorded request, decoded. */
function keyOf(r: RecordedMotoRequest): string {
  return decodeURIComponent(r.path.replace(`/${account.bucket}/`, ''));
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'head-start-test-'));
  mm = await startMattermostFake({ token: TOKEN });
  env = { MM_SERVICESETTINGS_SITEURL: mm.url, MM_ADMIN_TOKEN: TOKEN };
});

afterAll(async () => {
  await mm.close();
  await rm(dir, { recursive: true, force: true });
});

beforeEach(async () => {
  await resetMoto(endpoint);
  account = await prepareAccount();
  mm.reset();
});

describe('head start', () => {
  it('uploads every new asset and code object of a first deploy once, each conditionally and with its checksum', async () => {
    // Prepare
    const path = await bundle('first.zip');

    // Act
    const { value: run, requests } = await motoRecorder.record(endpoint, () => appsctl(['aws', 'deploy', path], env));

    // Assess
    expect(run.code, run.stderr).toBe(0);
    const puts = requests.filter((r) => r.method === 'PUT' && (keyOf(r).startsWith(STATIC_PREFIX) || keyOf(r).startsWith('functions/')));
    const mainZip = await buildZip({ 'index.js': MAIN_JS });
    expect(puts.map(keyOf).sort()).toEqual([codeKey(`${APP}_v1-0-0_main`, sha256Hex(mainZip)), ...Object.keys(STATICS).map((n) => `${STATIC_PREFIX}${n}`)].sort());
    // If-None-Match: the head start never overwrites; only the apply step, once the bundle is known good, may.
    for (const put of puts) {
      expect(headerValue(put.headers, 'if-none-match'), keyOf(put)).toBe('*');
      // The SHA-256 found at validation, twice: as the checksum, and as the payload hash SigV4 signs (not hashed again).
      const checksum = headerValue(put.headers, 'x-amz-checksum-sha256');
      expect(checksum, keyOf(put)).toBeDefined();
      expect(headerValue(put.headers, 'x-amz-content-sha256'), keyOf(put)).toBe(Buffer.from(checksum!, 'base64').toString('hex'));
    }
    const page3 = puts.find((r) => keyOf(r) === `${STATIC_PREFIX}page-3.html`)!;
    expect(headerValue(page3.headers, 'x-amz-content-sha256')).toBe(sha256Hex(STATICS['page-3.html']!));
    const page = await s3.send(new GetObjectCommand({ Bucket: account.bucket, Key: `${STATIC_PREFIX}page-3.html` }));
    expect(await page.Body!.transformToString()).toBe(STATICS['page-3.html']);
    expect(await listKeys('deployments/locks/')).toEqual([]);
  });

  it('deletes every object it created and releases the app lock when the deploy is refused before its apply step', async () => {
    // Prepare
    const path = await bundle('refused.zip');
    const ports = makeDeployPorts({ region: 'us-east-1', bucket: account.bucket });
    const created: string[] = [];

    // Act: the bundle is good; what refuses the deploy is a stand-in for the plan (a conflict found with the hashes).
    const outcome = withBundleToDeploy(path, { strictness: 'deployable' }, ports, opts, async (source) => {
      const head = source.headStart;
      expect(head, 'the head start held the lock').toBeDefined();
      for (const s of source.app.statics) if (await head!.uploaded(s.key, s.file.sha256Hex)) created.push(s.key);
      for (const f of source.app.functions) {
        const key = codeKey(f.lambdaName, f.file.sha256Hex);
        if (await head!.uploaded(key, f.file.sha256Hex)) created.push(key);
      }
      expect((await listKeys('deployments/locks/')).length).toBe(1);
      throw new ConflictError('refused by the test');
    });

    // Assess
    await expect(outcome).rejects.toThrow('refused by the test');
    expect(created).toHaveLength(Object.keys(STATICS).length + 1);
    await expectNothingLeft();
  });

  it('keeps what it uploaded once the apply step has begun, as every upload of apply is kept', async () => {
    // Prepare
    const path = await bundle('committed.zip');
    const ports = makeDeployPorts({ region: 'us-east-1', bucket: account.bucket });

    // Act
    const outcome = withBundleToDeploy(path, { strictness: 'deployable' }, ports, opts, async (source) => {
      for (const s of source.app.statics) await source.headStart!.uploaded(s.key, s.file.sha256Hex);
      source.headStart!.commit();
      throw new Error('failed during apply');
    });

    // Assess: a re-run completes the deploy from there.
    await expect(outcome).rejects.toThrow('failed during apply');
    expect(await listKeys(STATIC_PREFIX)).toHaveLength(Object.keys(STATICS).length);
    expect(await listKeys('deployments/locks/')).toEqual([]);
    const rerun = await appsctl(['aws', 'deploy', path], env);
    expect(rerun.code, rerun.stderr).toBe(0);
  });

  it('leaves no object and no lock behind when a later entry of the bundle is corrupt', async () => {
    // Prepare: good entries first (checked and uploaded early), then a large asset whose CRC-32 lies, checked last.
    const path = await corruptBundle('corrupt.zip', { name: 'static/big.bin', data: Buffer.alloc(8 * 1024 * 1024, 7), declaredCrc32: 1 });

    // Act
    const run = await appsctl(['aws', 'deploy', path], env);

    // Assess: whether or not uploads had started when the bad entry was found, none is left.
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('entry "static/big.bin" is corrupt: its data does not match its CRC-32');
    expect(await listKeys('static/')).toEqual([]);
    expect(await listKeys('functions/')).toEqual([]);
    expect(await listKeys('manifests/')).toEqual([]);
    expect(await listKeys('deployments/locks/')).toEqual([]);
  });

  it('--validate-first makes no AWS call before the whole bundle is checked, and then uploads only in the apply step', async () => {
    // Prepare: a bundle whose last entry is corrupt, and a good one.
    const corrupt = await corruptBundle('corrupt-strict.zip', { name: 'static/last.bin', data: Buffer.alloc(1024, 1), declaredCrc32: 1 });
    const good = await bundle('strict.zip');

    // Act
    const refused = await motoRecorder.record(endpoint, () => appsctl(['aws', 'deploy', corrupt, '--validate-first'], env));
    const deployed = await motoRecorder.record(endpoint, () => appsctl(['aws', 'deploy', good, '--validate-first'], env));

    // Assess
    expect(refused.value.code).toBe(1);
    expect(refused.value.stderr).toContain('entry "static/last.bin" is corrupt');
    expect(refused.requests).toEqual([]);
    expect(deployed.value.code, deployed.value.stderr).toBe(0);
    const puts = deployed.requests.filter((r) => r.method === 'PUT' && keyOf(r).startsWith(STATIC_PREFIX));
    expect(puts).toHaveLength(Object.keys(STATICS).length);
    expect(puts.filter((r) => headerValue(r.headers, 'if-none-match') !== undefined)).toEqual([]);
  });

  it("never overwrites an existing asset: a changed one is the apply step's, a new one is the head start's", async () => {
    // Prepare: v1.0.0 deployed; the same version again with page-0 changed and one page added.
    expect((await appsctl(['aws', 'deploy', await bundle('v1.zip')], env)).code).toBe(0);
    const path = await bundle('v1-again.zip', { ...STATICS, 'page-0.html': '<p>page zero</p>\n', 'new.html': '<p>new</p>\n' });

    // Act
    const { value: run, requests } = await motoRecorder.record(endpoint, () => appsctl(['aws', 'deploy', path, '--update'], env));

    // Assess
    expect(run.code, run.stderr).toBe(0);
    const puts = requests.filter((r) => r.method === 'PUT' && keyOf(r).startsWith(STATIC_PREFIX));
    expect(puts.map((r) => [keyOf(r), headerValue(r.headers, 'if-none-match') ?? null]).sort()).toEqual([
      [`${STATIC_PREFIX}new.html`, '*'],
      [`${STATIC_PREFIX}page-0.html`, null],
    ]);
  });

  it('takes no lock and uploads nothing early when the same bundle is deployed again', async () => {
    // Prepare
    const path = await bundle('same.zip');
    expect((await appsctl(['aws', 'deploy', path], env)).code).toBe(0);

    // Act
    const { value: run, requests } = await motoRecorder.record(endpoint, () => appsctl(['aws', 'deploy', path], env));

    // Assess
    expect(run.code, run.stderr).toBe(0);
    expect(requests.filter((r) => r.service === 's3' && !['GET', 'HEAD'].includes(r.method)).map((r) => `${r.method} ${keyOf(r)}`)).toEqual([]);
  });

  it('stands back when another deployer holds the app lock: the deploy is refused clearly and creates nothing', async () => {
    // Prepare: a live deployer (this very process) holds the lock.
    const path = await bundle('locked.zip');
    const ports = makeDeployPorts({ region: 'us-east-1', bucket: account.bucket });
    const { withAppLock, processLockHolder } = await import('../../src/core/app-lock');

    // Act
    const run = await withAppLock(ports.s3, APP, processLockHolder('other deployer'), () => appsctl(['aws', 'deploy', path], env));

    // Assess
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/another deployment of head-start-app is in progress \(other deployer on .+\)/);
    await expectNothingLeft();
  });

  it('a deploy through the core API with a head start gives the same end state as one without', async () => {
    // Prepare
    const path = await bundle('core.zip');
    const ports = makeDeployPorts({ region: 'us-east-1', bucket: account.bucket });

    // Act
    const result = await withBundleToDeploy(path, { strictness: 'deployable' }, ports, opts, async (source, planPorts) => {
      expect(source.headStart).toBeDefined();
      return (await deploy(planPorts, source, opts, silentLogger)).result!;
    });

    // Assess
    expect(result.statics.map((s) => s.action)).toEqual(Object.keys(STATICS).map(() => 'create'));
    expect(result.functions.map((f) => f.action)).toEqual(['create']);
    expect(await listKeys(STATIC_PREFIX)).toHaveLength(Object.keys(STATICS).length);
    expect(await listKeys('manifests/')).toEqual([`manifests/${APP}_v1.0.0.json`]);
    expect(await listKeys('deployments/locks/')).toEqual([]);
  });
});
