// `npm start` as a user runs it: the built dist/local-stack.mjs in a child process, with its own moto, Mattermost fake,
// API server and S3 event pump (the test run's shared moto is not used). It must bring the example app up through the
// API, say where everything is, and leave nothing running when it ends.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));
const RUN_TIMEOUT_MS = 120_000;

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** The child's environment: the test run's AWS and control-plane settings must not leak into the stack's own. */
function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, PORT: '0', ...extra };
  for (const k of ['AWS_ENDPOINT_URL', 'APPS_DEPLOYER_ADMIN_TOKEN', 'APPS_DEPLOYER_STATUS_TOKEN', 'MM_SERVICESETTINGS_SITEURL', 'MM_ADMIN_TOKEN', 'MM_APPS_S3_BUCKET', 'LOCAL_STACK_ONCE', 'LOCAL_STACK_BUNDLE']) {
    if (!(k in extra)) delete env[k];
  }
  return env;
}

/** Runs dist/local-stack.mjs; `whenUp` is called once it prints that it is up, with a way to signal it. */
function runStack(args: string[], env: NodeJS.ProcessEnv, whenUp?: (stdout: string, kill: (s: NodeJS.Signals) => void) => void): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['dist/local-stack.mjs', ...args], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let up = false;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`local stack did not end within ${RUN_TIMEOUT_MS} ms\nstdout:\n${stdout}\nstderr:\n${stderr}`));
    }, RUN_TIMEOUT_MS);
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString('utf8');
      if (!up && whenUp && stdout.includes('Ctrl-C stops everything')) {
        up = true;
        whenUp(stdout, (s) => child.kill(s));
      }
    });
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** The summary lines, without the handlers' JSON log lines. */
const summary = (stdout: string) => stdout.split('\n').filter((l) => !l.startsWith('{')).join('\n');

function urlAfter(label: string, text: string): string {
  const m = new RegExp(`${label}\\s+(http://127\\.0\\.0\\.1:\\d+)`).exec(text);
  if (!m) throw new Error(`no ${label} URL in:\n${text}`);
  return m[1]!;
}

async function answers(url: string): Promise<boolean> {
  try {
    await (await fetch(url, { signal: AbortSignal.timeout(2_000) })).arrayBuffer();
    return true;
  } catch {
    return false;
  }
}

let dir: string;

beforeAll(() => {
  // What `npm start` runs first.
  const build = spawnSync(process.execPath, ['scripts/build.mjs'], { cwd: root, encoding: 'utf8' });
  expect(build.status, build.stderr).toBe(0);
}, RUN_TIMEOUT_MS);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'local-stack-test-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('the local stack (npm start)', () => {
  it('--once deploys the example through the API, prints where everything is, and exits 0 leaving nothing running', async () => {
    // Act
    const run = await runStack(['--once'], childEnv());

    // Assess
    const out = summary(run.stdout);
    expect(run.code, `${out}\n${run.stderr}`).toBe(0);
    const tokens = /admin token:\s+(\S+)\n\s+status token:\s+(\S+)/.exec(out);
    expect(tokens, out).not.toBeNull();
    expect(out.indexOf('admin token:')).toBeLessThan(out.indexOf('POST /init'));
    const api = urlAfter('API:', out);
    const moto = urlAfter('moto \\(AWS\\):', out);
    const mattermost = urlAfter('Mattermost:', out);
    expect(out).toMatch(/listed app:\s+hello-serverless v1\.2\.0 \(aws_lambda\)/);
    expect(out).toMatch(/received:\s+POST \/plugins\/com\.mattermost\.apps\/api\/v1\/update-app-listing → 200/);
    expect(out).toMatch(/Deployment [0-9a-f-]{36} \(auto-deploy of bundles\/[0-9a-f-]{36}\/hello-serverless\.zip\): succeeded/);
    expect(out).toMatch(/App hello-serverless: listed version v1\.2\.0/);
    expect(out).toMatch(/function hello-serverless: hello-serverless_v1-2-0_hello-serverless Active nodejs22\.x/);
    expect(out).toContain(`curl -s -H "Authorization: Bearer $STATUS_TOKEN" $API/apps/hello-serverless`);
    expect(await answers(`${api}/apps/hello-serverless`)).toBe(false);
    expect(await answers(`${moto}/moto-api/`)).toBe(false);
    expect(await answers(mattermost)).toBe(false);
  }, RUN_TIMEOUT_MS);

  it('without --once serves the API until SIGTERM, then stops everything and exits 0', async () => {
    // Prepare
    let during: { api: string; moto: string; status: number; body: string } | undefined;
    let probe: Promise<void> = Promise.resolve();

    // Act
    const run = await runStack([], childEnv(), (stdout, kill) => {
      probe = (async () => {
        const out = summary(stdout);
        const api = urlAfter('API:', out);
        const statusToken = /status token:\s+(\S+)/.exec(out)![1]!;
        const res = await fetch(`${api}/apps/hello-serverless`, { headers: { authorization: `Bearer ${statusToken}` } });
        during = { api, moto: urlAfter('moto \\(AWS\\):', out), status: res.status, body: await res.text() };
      })().finally(() => kill('SIGTERM'));
    });
    await probe;

    // Assess
    expect(run.code, `${summary(run.stdout)}\n${run.stderr}`).toBe(0);
    expect(during?.status, during?.body).toBe(200);
    expect(JSON.parse(during!.body)).toMatchObject({ appId: 'hello-serverless', listedVersion: 'v1.2.0' });
    expect(run.stdout).toContain('SIGTERM: stopping the local stack');
    expect(await answers(`${during!.api}/apps/hello-serverless`)).toBe(false);
    expect(await answers(`${during!.moto}/moto-api/`)).toBe(false);
  }, RUN_TIMEOUT_MS);

  it('--once exits 1 with the deployment\'s problems when the bundle does not deploy, and still cleans up', async () => {
    // Prepare
    const bad = join(dir, 'not-a-bundle.zip');
    await writeFile(bad, 'this is not a zip file');

    // Act
    const run = await runStack(['--once'], childEnv({ LOCAL_STACK_BUNDLE: bad }));

    // Assess
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/local-stack: failed: deployment [0-9a-f-]{36} failed/);
    expect(await answers(`${urlAfter('moto \\(AWS\\):', summary(run.stdout))}/moto-api/`)).toBe(false);
  }, RUN_TIMEOUT_MS);
});
