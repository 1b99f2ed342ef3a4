// The local stack (design.md §3, §6): moto, a Mattermost (the fake unless a real one is configured), the REST API on
// 127.0.0.1:${PORT:-3000} served by the real handlers, and S3 events delivered to the real auto-deploy handler. It
// then does what a user would do through the API (init, presigned upload of the example app, auto-deploy) and prints
// where everything is. `--once` (or LOCAL_STACK_ONCE=1) exits after that; otherwise it runs until SIGINT/SIGTERM.
//
// Bundled by scripts/build.mjs to dist/local-stack.mjs; the fakes stay in test/ and are bundled in from there.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { startMattermostFake, type MattermostFake } from '../test/support/mattermost-fake';
import { startMoto, type MotoServer } from '../test/support/moto';
import type { BundleEventOutcome } from '../src/core/control-plane';
import type { ApiServer } from '../src/local/server';
import type { S3EventPump } from '../src/local/s3-events';

const EXAMPLE_APP_ID = 'hello-serverless';
const DEPLOY_TIMEOUT_MS = 90_000;

/** The clone's root, found from this file whether it runs bundled (dist/) or from source (scripts/). */
function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'apps-deployer') return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error('local-stack: cannot find the apps-deployer checkout above ' + fileURLToPath(import.meta.url));
    dir = parent;
  }
}

const say = (line = '') => process.stdout.write(`${line}\n`);
const warn = (line: string) => process.stderr.write(`local-stack: ${line}\n`);

/**
 * moto from the project's virtualenv, created on first use so that `npm start` works on a fresh clone after `npm ci`.
 * The path is passed explicitly: test/support/moto.ts finds the venv relative to its own file, which is no longer
 * where it was once bundled into dist/.
 */
function motoBin(root: string): string {
  if (process.env.MOTO_SERVER_BIN) return process.env.MOTO_SERVER_BIN;
  const bin = join(root, '.venv', 'bin', 'moto_server');
  if (!existsSync(bin)) {
    warn('moto_server not found: creating the project virtualenv (scripts/moto-venv.sh), once');
    // Its stdout would interleave with the summary; everything it says goes to stderr.
    const run = spawnSync('bash', [join(root, 'scripts', 'moto-venv.sh')], { cwd: root, stdio: ['ignore', 2, 2] });
    if (run.status !== 0 || !existsSync(bin)) throw new Error(`scripts/moto-venv.sh failed (exit ${run.status ?? run.signal}); see its output above`);
  }
  return bin;
}

const token = () => randomBytes(24).toString('base64url');

interface Api {
  url: string;
  call<T = unknown>(method: 'GET' | 'POST', path: string, opts?: { body?: unknown; token?: string }): Promise<{ status: number; body: T }>;
}

function apiClient(url: string, adminToken: string): Api {
  return {
    url,
    async call(method, path, opts = {}) {
      const res = await fetch(`${url}${path}`, {
        method,
        headers: { authorization: `Bearer ${opts.token ?? adminToken}`, ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}) },
        ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
      });
      const text = await res.text();
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {
        // Not JSON: kept as text for the error message.
      }
      return { status: res.status, body: body as never };
    },
  };
}

async function expectOk<T>(what: string, p: Promise<{ status: number; body: T }>): Promise<T> {
  const res = await p;
  if (res.status < 200 || res.status >= 300) throw new Error(`${what} answered ${res.status}: ${JSON.stringify(res.body)}`);
  return res.body;
}

/**
 * The example app's bundle, built by examples/hello/build-bundle.mjs into a temporary directory (the tree is left as
 * it is). Imported at run time, not bundled into dist/: it finds its sources relative to its own file.
 */
async function buildExampleBundle(root: string, outDir: string): Promise<string> {
  const script = join(root, 'examples', 'hello', 'build-bundle.mjs');
  if (!existsSync(script)) throw new Error(`${script} is missing: the example app cannot be built`);
  const { buildBundle } = (await import(pathToFileURL(script).href)) as { buildBundle?: (outDir?: string) => Promise<{ path: string }> };
  if (typeof buildBundle !== 'function') throw new Error(`${script} does not export buildBundle(outDir)`);
  return (await buildBundle(outDir)).path;
}

/** The browser-style upload a presigned POST is made for: every policy field, then the file, last (S3 ignores fields after it). */
async function uploadThroughPresignedPost(post: { url: string; fields: Record<string, string> }, path: string): Promise<void> {
  const form = new FormData();
  for (const [k, v] of Object.entries(post.fields)) form.append(k, v);
  form.append('file', new Blob([await readFile(path)], { type: 'application/zip' }), basename(path));
  const res = await fetch(post.url, { method: 'POST', body: form });
  if (!res.ok) throw new Error(`the presigned upload answered ${res.status}: ${await res.text()}`);
}

interface DeploymentRecordView {
  id: string;
  state: string;
  app?: { appId: string; version: string };
  steps?: unknown[];
  error?: { code: string; message: string; details: Array<{ path?: string; message: string }> };
  result?: { functions?: unknown[]; statics?: unknown[]; listed?: boolean };
}

interface AppStatusView {
  appId: string;
  versions: Array<{ version: string; manifestKey: string; complete: boolean; functions: Array<{ name: string; lambdaName: string; state?: string; runtime?: string }> }>;
  listedVersion?: string;
  installed: boolean;
  lastDeployment?: { id: string; state: string; version?: string };
}

async function main(): Promise<number> {
  const once = process.argv.includes('--once') || process.env.LOCAL_STACK_ONCE === '1';
  const root = repoRoot();
  const stoppers: Array<[string, () => Promise<void>]> = [];
  const stopAll = async () => {
    for (const [name, stop] of stoppers.reverse().splice(0)) {
      await stop().catch((err: unknown) => warn(`stopping ${name}: ${(err as Error).message}`));
    }
  };

  let stopping: Promise<void> | undefined;
  const shutdown = (signal: string) => {
    if (stopping) {
      warn(`${signal} again: exiting without cleaning up`);
      process.exit(130);
    }
    say(`\n${signal}: stopping the local stack…`);
    stopping = stopAll().then(() => process.exit(0));
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));

  try {
    const moto = await startMoto({ bin: motoBin(root) });
    stoppers.push(['moto', () => moto.stop()]);

    // Everything the control plane reads, pointed at this moto. Credentials are moto's dummies, always: a developer's
    // real AWS profile must never be reached from here.
    const region = process.env.MM_APPS_AWS_REGION || 'us-east-1';
    const bucket = process.env.MM_APPS_S3_BUCKET || 'mattermost-apps-bucket';
    Object.assign(process.env, {
      AWS_ENDPOINT_URL: moto.endpoint,
      AWS_ACCESS_KEY_ID: 'testing',
      AWS_SECRET_ACCESS_KEY: 'testing',
      AWS_REGION: region,
      MM_APPS_AWS_REGION: region,
      MM_APPS_S3_BUCKET: bucket,
      APPS_DEPLOYER_ADMIN_TOKEN: process.env.APPS_DEPLOYER_ADMIN_TOKEN || token(),
      APPS_DEPLOYER_STATUS_TOKEN: process.env.APPS_DEPLOYER_STATUS_TOKEN || token(),
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    });
    for (const k of ['AWS_PROFILE', 'AWS_SESSION_TOKEN', 'AWS_ENDPOINT_URL_S3', 'AWS_ENDPOINT_URL_IAM', 'AWS_ENDPOINT_URL_LAMBDA', 'AWS_ENDPOINT_URL_SQS', 'AWS_LAMBDA_FUNCTION_NAME', 'APPS_DEPLOYER_WORKER_FUNCTION']) {
      // Outside Lambda and without a worker function, POST /deploy runs the deploy in this process.
      delete process.env[k];
    }
    const adminToken = process.env.APPS_DEPLOYER_ADMIN_TOKEN!;
    const statusToken = process.env.APPS_DEPLOYER_STATUS_TOKEN!;
    say('apps-deployer local stack');
    say(`  moto (AWS):     ${moto.endpoint}  (region ${region}, bucket ${bucket}, any credentials)`);
    say(`  admin token:    ${adminToken}`);
    say(`  status token:   ${statusToken}`);

    let fake: MattermostFake | undefined;
    if (process.env.MM_SERVICESETTINGS_SITEURL) {
      if (!process.env.MM_ADMIN_TOKEN) throw new Error('MM_SERVICESETTINGS_SITEURL is set but MM_ADMIN_TOKEN is not: the control plane needs both');
      say(`  Mattermost:     ${process.env.MM_SERVICESETTINGS_SITEURL} (real server, MM_ADMIN_TOKEN from the environment)`);
    } else {
      const mmToken = token();
      const started = await startMattermostFake({ token: mmToken });
      fake = started;
      stoppers.push(['Mattermost fake', () => started.close()]);
      Object.assign(process.env, { MM_SERVICESETTINGS_SITEURL: fake.url, MM_ADMIN_TOKEN: mmToken });
      say(`  Mattermost:     ${fake.url} (fake, test/support/mattermost-fake.ts)`);
    }

    // The summary below says what happened; the handlers' per-request JSON logs would drown it (LOG_LEVEL=info shows them).
    process.env.LOG_LEVEL ??= 'warn';
    // Imported only now: the handlers' logger and runtime read the environment when they load.
    const { startApiServer } = await import('../src/local/server');
    const { startS3EventPump } = await import('../src/local/s3-events');
    const { getRuntime } = await import('../src/handlers/http/runtime');

    const port = process.env.PORT === undefined || process.env.PORT === '' ? 3000 : Number(process.env.PORT);
    let server: ApiServer;
    try {
      server = await startApiServer({ port, host: '127.0.0.1' });
    } catch (err) {
      if ((err as { code?: string }).code === 'EADDRINUSE') throw new Error(`port ${port} is in use: set PORT to another one (PORT=0 picks a free port)`, { cause: err });
      throw err;
    }
    stoppers.push(['API server', () => server.close()]);
    stoppers.push([
      'deployments in progress',
      async () => {
        // An in-process deploy still writing to moto when moto stops would fail noisily.
        const worker = (await getRuntime()).controlPlane.worker as { idle?: () => Promise<void> } | undefined;
        await Promise.race([worker?.idle?.(), new Promise((r) => setTimeout(r, 10_000).unref())]);
      },
    ]);
    say(`  API:            ${server.url}`);
    say();

    const api = apiClient(server.url, adminToken);

    // 1. The account, as `appsctl aws init --create` would leave it (bucket, invoke user and policy, execute role).
    say('→ POST /init {"create": true}');
    await expectOk('POST /init', api.call('POST', '/init', { body: { create: true } }));

    // 2. The bucket exists now: its bundles/*.zip uploads go to the auto-deploy handler from here on.
    const outcomes = new Map<string, BundleEventOutcome[]>();
    const pump: S3EventPump = await startS3EventPump({
      bucket,
      region,
      onOutcome: (keys, out) => keys.forEach((k, i) => outcomes.set(k, out[i] ? [out[i]!] : out)),
    });
    // Not detached from the bucket: moto stops right after, and on Ctrl-C in a terminal it is already gone.
    stoppers.push(['S3 event pump', () => pump.stop({ detach: false })]);
    say(`→ S3 events of s3://${bucket}/bundles/*.zip → SQS ${pump.queueArn} → auto-deploy handler`);

    // 3. The example app, uploaded the way a browser or CI job would: a presigned POST, then S3 does the rest.
    // LOCAL_STACK_BUNDLE deploys your own bundle at start instead of the example.
    const workDir = await mkdtemp(join(tmpdir(), 'apps-deployer-local-'));
    stoppers.push(['temporary files', () => rm(workDir, { recursive: true, force: true })]);
    const bundlePath = process.env.LOCAL_STACK_BUNDLE || (await buildExampleBundle(root, workDir));
    say(`→ bundle ${process.env.LOCAL_STACK_BUNDLE ? bundlePath : 'of examples/hello (examples/hello/build-bundle.mjs)'}`);
    const uploadName = process.env.LOCAL_STACK_BUNDLE ? basename(bundlePath).replace(/[^A-Za-z0-9._-]/g, '-') : `${EXAMPLE_APP_ID}.zip`;
    const post = await expectOk<{ url: string; fields: Record<string, string>; key: string }>('POST /bundles', api.call('POST', '/bundles', { body: { name: uploadName } }));
    say(`→ POST /bundles → ${post.key}`);
    await uploadThroughPresignedPost(post, bundlePath);
    say('→ uploaded through the presigned POST; waiting for the auto-deploy…');

    // moto sends the event while it stores the object, so the outcome is only the handler's run away.
    const deadline = Date.now() + DEPLOY_TIMEOUT_MS;
    let outcome: BundleEventOutcome | undefined;
    while (!(outcome = outcomes.get(post.key)?.[0])) {
      if (Date.now() > deadline) throw new Error(`no S3 event for ${post.key} reached the auto-deploy handler within ${DEPLOY_TIMEOUT_MS / 1000} s`);
      await new Promise((r) => setTimeout(r, 200));
    }
    if (!('deploymentId' in outcome)) throw new Error(`the auto-deploy handler did not deploy ${post.key}: ${JSON.stringify(outcome)}`);
    const record = await expectOk<DeploymentRecordView>('GET /deployments/{id}', api.call('GET', `/deployments/${outcome.deploymentId}`, { token: statusToken }));
    if (record.state !== 'succeeded') {
      const details = (record.error?.details ?? []).map((d) => `\n  - ${d.path ? `${d.path}: ` : ''}${d.message}`).join('');
      throw new Error(`deployment ${record.id} ${record.state}: ${record.error?.message ?? ''}${details}`);
    }
    const appId = record.app?.appId ?? EXAMPLE_APP_ID;
    const app = await expectOk<AppStatusView>(`GET /apps/${appId}`, api.call('GET', `/apps/${appId}`, { token: statusToken }));

    // 4. What there is to see.
    say();
    say('================================================================================');
    say('apps-deployer local stack is up');
    say('================================================================================');
    say(`API:            ${server.url}`);
    say(`  admin token:  ${adminToken}`);
    say(`  status token: ${statusToken}  (GET endpoints only)`);
    say(`moto (AWS):     ${moto.endpoint}  region ${region}, bucket ${bucket}; e.g. AWS_ENDPOINT_URL=${moto.endpoint} aws s3 ls s3://${bucket} --recursive`);
    say(`S3 events:      s3://${bucket}/bundles/*.zip → ${pump.queueUrl} → auto-deploy handler`);
    if (fake) {
      say(`Mattermost:     ${fake.url} (fake)`);
      for (const [id, m] of fake.listed) say(`  listed app:   ${id} ${String(m.version ?? '')} (${['aws_lambda', 'http', 'open_faas', 'plugin'].filter((t) => m[t] !== undefined).join(', ')})`);
      for (const [id] of fake.installed) say(`  installed:    ${id}`);
      for (const r of fake.requests) say(`  received:     ${r.method} ${r.path} → ${r.status}`);
    } else {
      say(`Mattermost:     ${process.env.MM_SERVICESETTINGS_SITEURL} (real server)`);
    }
    say();
    say(`Deployment ${record.id} (auto-deploy of ${post.key}): ${record.state}, ${record.steps?.length ?? 0} steps, ${record.result?.functions?.length ?? 0} functions, ${record.result?.statics?.length ?? 0} static assets${record.result?.listed ? ', listed in Mattermost' : ''}`);
    say(`App ${app.appId}: listed version ${app.listedVersion ?? '(none)'}, installed ${app.installed}`);
    for (const v of app.versions) {
      say(`  version ${v.version} (${v.manifestKey})${v.complete ? '' : ' INCOMPLETE'}`);
      for (const f of v.functions) say(`    function ${f.name}: ${f.lambdaName} ${f.state ?? 'missing'} ${f.runtime ?? ''}`.trimEnd());
    }
    say();
    say('Try it:');
    say(`  export API=${server.url} TOKEN=${adminToken} STATUS_TOKEN=${statusToken}`);
    say(`  curl -s -H "Authorization: Bearer $STATUS_TOKEN" $API/apps/${app.appId}`);
    say(`  curl -s -H "Authorization: Bearer $STATUS_TOKEN" $API/deployments/${record.id}`);
    say(`  curl -s -H "Authorization: Bearer $TOKEN" -X POST $API/provision-data -d '{"bundleKey":"${post.key}"}'`);
    say(`  curl -s -H "Authorization: Bearer $TOKEN" -X POST $API/deploy -d '{"bundleKey":"${post.key}","dryRun":true}'`);
    say(`  curl -s -H "Authorization: Bearer $TOKEN" -X POST $API/bundles -d '{"name":"my-app.zip"}'   # → url, fields, key`);
    say('    then: curl -F key=… -F <every other field> -F file=@my-app.zip <url>   (the file last): the upload deploys itself');
    say('  # appsctl against the same AWS and Mattermost:');
    say(`  export AWS_ENDPOINT_URL=${moto.endpoint} MM_APPS_AWS_REGION=${region} MM_APPS_DEPLOY_AWS_ACCESS_KEY=test MM_APPS_DEPLOY_AWS_SECRET_KEY=test`);
    say(`  export MM_SERVICESETTINGS_SITEURL=${process.env.MM_SERVICESETTINGS_SITEURL}${fake ? ` MM_ADMIN_TOKEN=${process.env.MM_ADMIN_TOKEN}` : ''}`);
    say('  npx appsctl aws list');
    say();

    if (once) {
      say('--once: stopping');
      await stopAll();
      return 0;
    }
    say('Running; Ctrl-C stops everything.');
    await new Promise<never>(() => undefined);
    return 0;
  } catch (err) {
    warn(`failed: ${err instanceof Error ? err.message : String(err)}`);
    await stopAll();
    return 1;
  }
}

const code = await main();
// Open keep-alive sockets or SDK agents must not keep a finished --once run alive.
process.exit(code);
