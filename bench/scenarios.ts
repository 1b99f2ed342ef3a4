// The timed scenarios: our deploy (validate + deploy, as `appsctl aws deploy` runs it), the raw-upload floor, and the
// original tool's algorithm as a baseline. All of them go through the same counting proxy to the same moto.
import { createReadStream, readdirSync, readFileSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CreateBucketCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { CreateFunctionCommand, ListFunctionsCommand } from '@aws-sdk/client-lambda';
import pLimit from 'p-limit';
import { makeAwsClients } from '../src/adapters/aws';
import { makeDeployPorts } from '../src/adapters/ports';
import { DirectoryInspectionCache } from '../src/adapters/inspection-cache';
import type { AwsTarget } from '../src/core/config';
import { DEFAULT_DEPLOY_OPTIONS, deploy, withBundleToDeploy, type DeployOptions, type DeployResult } from '../src/core/deploy';
import { silentLogger } from '../src/core/logger';
import { lambdaName, manifestKey, staticKey } from '../src/core/naming';
import { prepareAccount, type PreparedAccount } from '../test/support/account';
import { resetMoto } from '../test/support/moto';
import type { GeneratedBundle } from './generate';
import type { ProxyStats, RequestRecord } from './proxy';
import type { ProxyControl } from './proxy-process';

export interface BenchEnv {
  motoEndpoint: string;
  /** moto_server's pid, to read the CPU time it spends on each scenario (undefined where /proc is missing). */
  motoPid: number | undefined;
  proxy: ProxyControl;
  target: AwsTarget;
  concurrency: number;
  /** appsctl's inspection cache for our deploys. */
  cacheDir: string;
}

export interface Timed {
  ms: number;
  /** CPU time moto spent during the scenario (all its threads), and this process. */
  motoCpuMs: number | undefined;
  benchCpuMs: number;
  stats: ProxyStats;
  records: RequestRecord[];
}

/** A pause after set-up, so that moto's clean-up of the previous state (Python GC) is not billed to the next scenario. */
const settle = () => new Promise((resolve) => setTimeout(resolve, Number(process.env.BENCH_SETTLE_MS ?? 500)));

/**
 * Empties moto, then wakes its Lambda backend: after a reset, moto answers the first two Lambda requests of any kind in
 * about a second in all (measured: ~0.6 s and ~0.9 s, then ~10 ms each), a cost of the emulator that a region never
 * charges. Left in, it lands on whichever scenario makes the first Lambda call.
 */
async function resetAndWarm(env: BenchEnv): Promise<void> {
  await resetMoto(env.motoEndpoint);
  const { lambda } = makeAwsClients(env.target);
  for (let i = 0; i < 3; i++) await lambda.send(new ListFunctionsCommand({}));
  lambda.destroy();
}

/** Empties moto and sets up the account as `appsctl aws init --create` would (not timed, not counted). */
export async function freshAccount(env: BenchEnv): Promise<PreparedAccount> {
  await resetAndWarm(env);
  // The default bucket (mattermost-apps-bucket), which is also env.target.bucket.
  const account = await prepareAccount();
  await settle();
  await env.proxy.reset();
  return account;
}

export async function freshBucket(env: BenchEnv): Promise<void> {
  await resetAndWarm(env);
  const { s3 } = makeAwsClients(env.target);
  await s3.send(new CreateBucketCommand({ Bucket: env.target.bucket }));
  s3.destroy();
  await settle();
  await env.proxy.reset();
}

const CLK_TCK = 100;

/** utime + stime of a process, in ms (Linux /proc; every thread counted). */
export function processCpuMs(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLK_TCK;
  } catch {
    return undefined;
  }
}

/** The pid of the moto_server listening on `port` (its command line names the port). */
export function findMotoPid(port: number): number | undefined {
  try {
    for (const d of readdirSync('/proc')) {
      if (!/^\d+$/.test(d)) continue;
      let cmd: string[];
      try {
        cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
      } catch {
        continue;
      }
      if (cmd.some((c) => c.endsWith('moto_server')) && cmd[cmd.indexOf('-p') + 1] === String(port)) return Number(d);
    }
  } catch {
    // No /proc.
  }
  return undefined;
}

async function timed<T>(env: BenchEnv, fn: () => Promise<T>): Promise<Timed & { value: T }> {
  await env.proxy.reset();
  const moto0 = processCpuMs(env.motoPid);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const value = await fn();
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const moto1 = processCpuMs(env.motoPid);
  const { stats, records } = await env.proxy.snapshot();
  return {
    ms,
    value,
    stats,
    records,
    motoCpuMs: moto0 !== undefined && moto1 !== undefined ? moto1 - moto0 : undefined,
    benchCpuMs: (cpu.user + cpu.system) / 1000,
  };
}

export interface OurDeploy extends Timed {
  validateMs: number;
  result: DeployResult | undefined;
}

/**
 * What `appsctl aws test deploy BUNDLE` does (deploy with --update, no Mattermost listing): open and validate the bundle
 * (every byte read, hashed and checked), build SDK-backed ports, plan, apply. Timed from the first byte read to the end.
 */
export async function ourDeploy(env: BenchEnv, bundle: GeneratedBundle, cache: 'cold' | 'warm'): Promise<OurDeploy> {
  const opts: DeployOptions = { ...DEFAULT_DEPLOY_OPTIONS, update: true, listInMattermost: false, concurrency: env.concurrency, lockHolder: 'bench' };
  // appsctl's inspection cache (src/adapters/inspection-cache.ts) in a directory of the run's own. 'cold' empties it
  // first: a first deploy is of a bundle this machine has never validated.
  if (cache === 'cold') await rm(env.cacheDir, { recursive: true, force: true });
  let validateMs = 0;
  const profiler = process.env.BENCH_CPU_PROF ? await startCpuProfile(cache === 'cold' ? 'first-deploy' : 'redeploy') : undefined;
  const t0 = performance.now();
  const run = await timed(env, () =>
    // As runDeploy (src/cli/commands/deploy.ts) does it.
    withBundleToDeploy(
      bundle.path,
      { strictness: 'deployable', label: 'bench bundle', cache: new DirectoryInspectionCache(env.cacheDir) },
      makeDeployPorts(env.target),
      opts,
      async (source, planPorts) => {
        validateMs = performance.now() - t0;
        return (await deploy(planPorts, source, opts, silentLogger)).result;
      },
    ),
  );
  if (profiler) await profiler.stop(process.env.BENCH_CPU_PROF!);
  const { value, ...rest } = run;
  return { ...rest, validateMs, result: value };
}

/**
 * BENCH_CPU_PROF=DIR: a V8 CPU profile of each of our deploys and raw-upload floors (this process only, the scenario
 * alone), written to DIR/{first-deploy,redeploy,floor}-N.cpuprofile for Chrome DevTools or `node bench/profile-summary.mjs FILE`.
 */
async function startCpuProfile(name: string): Promise<{ stop: (dir: string) => Promise<void> }> {
  const { Session } = await import('node:inspector/promises');
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 200 });
  await session.post('Profiler.start');
  return {
    async stop(dir) {
      const { profile } = await session.post('Profiler.stop');
      session.disconnect();
      await mkdir(dir, { recursive: true });
      const file = join(dir, `${name}-${++profiles}.cpuprofile`);
      await writeFile(file, JSON.stringify(profile));
      process.stderr.write(`[bench] CPU profile: ${file}\n`);
    },
  };
}
let profiles = 0;

/** Every function zip, asset and the manifest of the bundle, as in-memory buffers (loaded before any timing). */
export interface LoadedBundle {
  objects: Array<{ entry: string; kind: 'function' | 'static' | 'manifest'; path?: string; body: Buffer }>;
  bytes: number;
}

export async function loadBundle(bundle: GeneratedBundle): Promise<LoadedBundle> {
  const objects: LoadedBundle['objects'] = [];
  for (const f of bundle.files) objects.push({ entry: f.entry, kind: f.kind, path: f.path, body: await readFile(f.path) });
  objects.push({ entry: 'manifest.json', kind: 'manifest', body: bundle.manifest });
  return { objects, bytes: objects.reduce((n, o) => n + o.body.length, 0) };
}

/**
 * The raw-upload floor: the same bytes PUT straight to S3 with the SDK at the same concurrency, nothing else (no
 * validation, no hashing, no reads, no Lambda). `body: 'buffer'` sends each object from memory (Content-Length, one
 * checksum header); `'stream'` sends it from its file on disk, as the deploy sends bundle entries (the SDK then uses
 * aws-chunked encoding with a trailing checksum): the difference between the two is the cost of streaming.
 */
export async function rawUploadFloor(env: BenchEnv, loaded: LoadedBundle, body: 'buffer' | 'stream'): Promise<Timed> {
  const profiler = body === 'buffer' && process.env.BENCH_CPU_PROF ? await startCpuProfile('floor') : undefined;
  const run = await timed(env, async () => {
    const { s3 } = makeAwsClients(env.target);
    const limit = pLimit(env.concurrency);
    await Promise.all(
      loaded.objects.map((o) =>
        limit(() =>
          s3.send(
            new PutObjectCommand({
              Bucket: env.target.bucket,
              Key: `floor/${o.entry}`,
              Body: body === 'stream' && o.path ? createReadStream(o.path) : o.body,
              ContentLength: o.body.length,
            }),
          ),
        ),
      ),
    );
    s3.destroy();
  });
  if (profiler) await profiler.stop(process.env.BENCH_CPU_PROF!);
  return run;
}

/**
 * The original tool's algorithm (appsctl.md §2, upaws): every static asset PutObject one after another, then every
 * function CreateFunction with the zip inline (Code.ZipFile) one after another, then the manifest. Bytes come from
 * memory, which only flatters the baseline.
 */
export async function originalToolBaseline(env: BenchEnv, bundle: GeneratedBundle, loaded: LoadedBundle, account: PreparedAccount): Promise<Timed> {
  return timed(env, async () => {
    const { s3, lambda } = makeAwsClients(env.target);
    const put = (s3c: S3Client, key: string, b: Buffer) => s3c.send(new PutObjectCommand({ Bucket: env.target.bucket, Key: key, Body: b, ContentLength: b.length }));
    for (const o of loaded.objects) {
      if (o.kind === 'static') await put(s3, staticKey(bundle.appId, bundle.version, o.entry.slice('static/'.length)), o.body);
    }
    for (const o of loaded.objects) {
      if (o.kind !== 'function') continue;
      const name = o.entry.replace(/\.zip$/, '');
      await lambda.send(
        new CreateFunctionCommand({
          FunctionName: lambdaName(bundle.appId, bundle.version, name),
          Role: account.roleArn,
          Handler: 'index.handler',
          Runtime: 'nodejs22.x',
          Code: { ZipFile: o.body },
          PackageType: 'Zip',
        }),
      );
    }
    await put(s3, manifestKey(bundle.appId, bundle.version), bundle.manifest);
    s3.destroy();
    lambda.destroy();
  });
}

/** `/bucket/key?x-id=PutObject` → `key`. */
export function s3KeyOf(url: string, bucket: string): string {
  const path = url.split('?')[0] ?? '';
  const prefix = `/${bucket}/`;
  return path.startsWith(prefix) ? decodeURIComponent(path.slice(prefix.length)) : path;
}

export interface Step {
  step: string;
  requests: number;
  /** First request received and last response ended, ms since the scenario started. */
  from: number;
  to: number;
  bytes: number;
}

function stepOf(r: RequestRecord, bucket: string): string {
  if (r.service === 's3') {
    const key = s3KeyOf(r.url, bucket);
    if (key.startsWith('deployments/')) return 'S3 app lock';
    if (r.method === 'HEAD') return key.startsWith('functions/') ? 'S3 HEAD code' : 'S3 HEAD static/manifest';
    if (r.method === 'PUT') return key.startsWith('static/') ? 'S3 PUT static' : key.startsWith('functions/') ? 'S3 PUT code' : key.startsWith('manifests/') ? 'S3 PUT manifest' : 'S3 PUT other';
    return `S3 ${r.method}`;
  }
  if (r.service === 'lambda') return r.method === 'GET' ? 'Lambda GetFunction' : r.method === 'POST' ? 'Lambda CreateFunction' : `Lambda ${r.method}`;
  return r.service === 'iam' ? 'IAM' : r.service;
}

/** Where a scenario's time went: per kind of request, how many, and the span from the first to the last. */
export function timeline(records: RequestRecord[], bucket: string): Step[] {
  const steps = new Map<string, Step>();
  for (const r of records) {
    const name = stepOf(r, bucket);
    const st = steps.get(name) ?? { step: name, requests: 0, from: Infinity, to: 0, bytes: 0 };
    st.requests++;
    st.from = Math.min(st.from, r.start);
    st.to = Math.max(st.to, r.start + r.ms);
    st.bytes += r.bodyBytes;
    steps.set(name, st);
  }
  return [...steps.values()].sort((a, b) => a.from - b.from).map((x) => ({ ...x, from: Math.round(x.from), to: Math.round(x.to) }));
}
