// The Lambda handler bundles as built for serverless.yml (scripts/build.mjs), not their TypeScript sources: the build's
// plugins drop code (src modules nothing uses, SDK shapes no command sends, credential providers Lambda never reaches),
// and only running the bundles shows that nothing they need was dropped. Each is imported by a fresh Node process and
// called as Lambda would, against moto, with the admin token read from SSM as serverless.yml configures it.
import { spawn } from 'node:child_process';
import { cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { CreateBucketCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { s3Client, testEndpoint, TEST_REGION } from '../support/aws';
import { buildBundle } from '../support/bundle-builder';
import { startMattermostFake, UPDATE_APP_LISTING_PATH, type MattermostFake } from '../support/mattermost-fake';
import { resetMoto } from '../support/moto';

const endpoint = inject('motoEndpoint');
const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const BUCKET = 'built-handlers-bucket';
const TOKEN = 'built-handlers-admin-token-0123456789';
const TOKEN_PARAM = '/apps-deployer/test/admin-token';
const BUNDLE_KEY = 'bundles/test/hello.zip';

const MM_TOKEN = 'built-handlers-mm-token';

let dir: string;
let mm: MattermostFake;

interface Step {
  step: string;
  status: number | null;
  body: Record<string, unknown> & { error?: string };
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const child = spawn(cmd, args, { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('exit', (code) => done({ code, stdout, stderr }));
  });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'built-handlers-'));
  mm = await startMattermostFake({ token: MM_TOKEN });
  const build = await run(process.execPath, ['scripts/build.mjs'], process.env);
  if (build.code !== 0) throw new Error(`node scripts/build.mjs failed (${build.code}):\n${build.stdout}${build.stderr}`);
  // A copy: a later build of dist/ by another test file must not change the bundles under this one.
  await cp(join(repoRoot, 'dist', 'handlers'), join(dir, 'handlers'), { recursive: true });
}, 180_000);

afterAll(async () => {
  await mm?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('built handler bundles', () => {
  it('each one runs from its bundle alone: init, upload, provision data, dry run, auto-deploy, status, rollback, reconcile, undeploy', async () => {
    // Prepare: an empty account, the admin token in SSM, and a bundle where an upload puts it (after init made the bucket).
    await resetMoto(endpoint);
    const ssm = new SSMClient({ endpoint: testEndpoint(), region: TEST_REGION, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } });
    await ssm.send(new PutParameterCommand({ Name: TOKEN_PARAM, Value: TOKEN, Type: 'SecureString' }));
    const bundle = await buildBundle(dir, {
      fileName: 'hello.zip',
      manifest: { app_id: 'built-hello', version: 'v1.0.0', display_name: 'Built', homepage_url: 'https://example.com', aws_lambda: { functions: [{ path: '/', name: 'main', handler: 'index.handler', runtime: 'nodejs22.x' }] } },
      functions: { 'main.zip': { 'index.js': 'exports.handler = async () => ({ statusCode: 200, body: "{}" });\n' } },
      statics: { 'icon.png': Buffer.from('89504e470d0a1a0a', 'hex') },
    });
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH ?? '',
      AWS_ENDPOINT_URL: endpoint,
      AWS_ACCESS_KEY_ID: 'testing',
      AWS_SECRET_ACCESS_KEY: 'testing',
      AWS_REGION: TEST_REGION,
      MM_APPS_AWS_REGION: TEST_REGION,
      MM_APPS_S3_BUCKET: BUCKET,
      APPS_DEPLOYER_ADMIN_TOKEN_PARAM: TOKEN_PARAM,
      MM_SERVICESETTINGS_SITEURL: mm.url,
      MM_ADMIN_TOKEN: MM_TOKEN,
      LOG_LEVEL: 'silent',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    };
    const runner = join(repoRoot, 'test', 'support', 'built-handlers-run.mjs');
    // The bucket exists already (init finds it and leaves it), so that the bundle is there for the steps after init.
    const s3 = s3Client();
    await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
    const put = await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: BUNDLE_KEY, Body: await readFile(bundle) }));

    // Act
    const out = await run(process.execPath, [runner, join(dir, 'handlers'), BUNDLE_KEY, TOKEN], {
      ...env,
      BUNDLE_SIZE: String((await readFile(bundle)).length),
      BUNDLE_ETAG: (put.ETag ?? '').replace(/"/g, ''),
    });

    // Assess
    expect(out.code, out.stderr).toBe(0);
    const steps = new Map(out.stdout.trim().split('\n').map((line) => JSON.parse(line) as Step).map((s) => [s.step, s]));
    const status = (name: string) => steps.get(name)?.status;
    expect(status('init'), JSON.stringify(steps.get('init'))).toBe(200);
    expect(status('unauthorized')).toBe(403); // a token that is not ours (401 is for none at all)
    expect(status('bundles')).toBe(200);
    expect(status('provision-data')).toBe(200);
    expect(steps.get('provision-data')!.body).toMatchObject({ manifest_key: 'manifests/built-hello_v1.0.0.json' });
    expect(status('deploy dry run')).toBe(200);
    expect(steps.get('auto-deploy')!.body).toMatchObject([{ status: 'deployed' }]);
    // Listed by the auto-deployer, then again by the rollback.
    expect(mm.requests.filter((r) => r.path === UPDATE_APP_LISTING_PATH)).toHaveLength(2);
    expect(status('apps-list')).toBe(200);
    expect(steps.get('apps-list')!.body).toMatchObject({ apps: [{ appId: 'built-hello', versions: [{ version: 'v1.0.0' }] }] });
    expect(status('app-status')).toBe(200);
    expect(status('deployment-status 404')).toBe(404);
    expect(status('app-rollback')).toBe(200);
    expect(steps.get('reconcile')!.body).toMatchObject({ failed: 0 });
    expect(status('app-undeploy')).toBe(200);
    expect(steps.get('deploy-worker again')!.body).toMatchObject({ state: 'succeeded' });
  }, 120_000);
});
