import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withBundle } from '../../src/core/bundle';
import type { BundleValidationError } from '../../src/core/errors';
import { DEFAULT_DEPLOY_OPTIONS, prefetchPlanReads, type DeployPorts } from '../../src/core/deploy';
import { resolveBundle, withAppBundle, type AppBundle } from '../../src/core/provision';
import { buildBundle } from '../support/bundle-builder';

/** Ports whose every method records its call and answers a canned value. */
function recordingPorts(): { ports: DeployPorts; calls: string[] } {
  const calls: string[] = [];
  const answers: Record<string, unknown> = {
    getRole: { name: 'role', arn: 'arn:aws:iam::123456789012:role/role' },
    findPolicy: { name: 'policy', arn: 'arn:aws:iam::123456789012:policy/policy', defaultVersionId: 'v3' },
    getPolicyDocument: '{"Version":"2012-10-17","Statement":[]}',
    getFunction: undefined,
    listKeys: [],
    headObject: undefined,
  };
  const port = (service: string) =>
    new Proxy(
      { bucket: 'bucket' },
      {
        get(target, prop) {
          if (prop === 'bucket') return target.bucket;
          if (prop === 'then') return undefined;
          return async (...args: unknown[]) => {
            calls.push(`${service}.${String(prop)}(${args.join(',')})`);
            return answers[String(prop)];
          };
        },
      },
    );
  return { ports: { region: 'us-east-1', iam: port('iam'), lambda: port('lambda'), s3: port('s3') } as unknown as DeployPorts, calls };
}

const MANIFEST = {
  app_id: 'my-app',
  version: 'v1.0.0',
  homepage_url: 'https://example.com',
  display_name: 'My app',
  aws_lambda: { functions: [{ path: '/hello', name: 'hello', handler: 'index.handler', runtime: 'nodejs22.x' }] },
};
const flush = () => new Promise((resolve) => setTimeout(resolve, 10));

let dir: string;
let bundlePath: string;
let preview: AppBundle;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'prefetch-test-'));
  bundlePath = await buildBundle(dir, { fileName: 'b.zip', manifest: MANIFEST, functions: { 'hello.zip': { 'index.js': 'exports.handler = async () => 1;\n' } }, statics: { 'a.txt': 'a' } });
  preview = await withBundle(bundlePath, undefined, async (b) => resolveBundle(await b.preview()).bundle!);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('Bundle.preview', () => {
  it('names every function, asset and key that the full inspection does, before any entry data is checked', async () => {
    // Act
    const full = await withAppBundle(bundlePath, { strictness: 'deployable' }, async (app) => app);
    // Assess
    expect(preview.functions.map((f) => [f.name, f.lambdaName, f.file.size])).toEqual(full.functions.map((f) => [f.name, f.lambdaName, f.file.size]));
    expect(preview.statics.map((s) => s.key)).toEqual(full.statics.map((s) => s.key));
    expect(preview.deployData).toEqual(full.deployData);
    expect(preview.functions[0]!.file.sha256Hex).toBe('');
  });

  it('is told to onPreview only for a bundle whose names resolve', async () => {
    // Prepare: a manifest naming a function the bundle does not have.
    const broken = await buildBundle(dir, { fileName: 'broken.zip', manifest: { ...MANIFEST, aws_lambda: { functions: [{ path: '/x', name: 'missing', handler: 'h', runtime: 'nodejs22.x' }] } }, functions: { 'hello.zip': { 'index.js': '' } } });
    const told: string[] = [];
    // Act
    await withAppBundle(bundlePath, { strictness: 'deployable', onPreview: (app) => told.push(app.manifest.app_id) }, async () => flush());
    const refused = await withAppBundle(broken, { strictness: 'deployable', onPreview: (app) => told.push(`broken ${app.manifest.app_id}`) }, async () => 'deployed').catch((e: BundleValidationError) => JSON.stringify(e.details));
    await flush();
    // Assess
    expect(told).toEqual(['my-app']);
    expect(refused).toContain('missing');
  });
});

describe('prefetchPlanReads', () => {
  it('starts every read a plan makes from names alone, the policy document once the policy is found', async () => {
    // Prepare
    const { ports, calls } = recordingPorts();
    // Act
    prefetchPlanReads(ports, preview, DEFAULT_DEPLOY_OPTIONS);
    await flush();
    // Assess
    expect(calls.sort()).toEqual(
      [
        `iam.getRole(${DEFAULT_DEPLOY_OPTIONS.executeRoleName})`,
        `iam.findPolicy(${DEFAULT_DEPLOY_OPTIONS.policyName})`,
        'iam.getPolicyDocument(arn:aws:iam::123456789012:policy/policy,v3)',
        'lambda.getFunction(my-app_v1-0-0_hello)',
        's3.listKeys(static/my-app_v1.0.0_app/)',
        's3.headObject(manifests/my-app_v1.0.0.json)',
        // deploy()'s check for a lock left by a dead deployer
        's3.getObjectText(deployments/locks/my-app.json)',
      ].sort(),
    );
  });

  it('answers the first call of each read from what it fetched, and sends every later or other call to AWS', async () => {
    // Prepare
    const { ports, calls } = recordingPorts();
    const ahead = prefetchPlanReads(ports, preview, DEFAULT_DEPLOY_OPTIONS);
    await flush();
    calls.length = 0;
    // Act
    const role = await ahead.iam.getRole(DEFAULT_DEPLOY_OPTIONS.executeRoleName);
    await ahead.lambda.getFunction('my-app_v1-0-0_hello');
    await ahead.s3.headObject('manifests/my-app_v1.0.0.json');
    const afterFirst = [...calls];
    await ahead.iam.getRole(DEFAULT_DEPLOY_OPTIONS.executeRoleName);
    await ahead.s3.headObject('static/my-app_v1.0.0_app/other.txt');
    // Assess
    expect(role).toEqual({ name: 'role', arn: 'arn:aws:iam::123456789012:role/role' });
    expect(afterFirst).toEqual([]);
    expect(calls).toEqual([`iam.getRole(${DEFAULT_DEPLOY_OPTIONS.executeRoleName})`, 's3.headObject(static/my-app_v1.0.0_app/other.txt)']);
    expect(ahead.s3.bucket).toBe('bucket');
  });
});
