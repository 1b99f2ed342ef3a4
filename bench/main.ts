// `npm run bench`: speed and memory figures of apps-deployer against a real moto (design.md §6), printed as a table
// and written to bench/results/latest.json (and, for a full run, bench/RESULTS.md). Figures, not pass/fail tests: the "met?" column
// compares each figure with the goal of the issue, and the process exits 0 either way (non-zero only when a scenario
// did not do what it should, e.g. a deploy failed).
//
// Knobs (environment):
//   BENCH_QUICK=1            small bundles and few runs: a smoke run of a minute or two
//   BENCH_ONLY=deploy,rss,handlers   run only these parts (default: all)
//   BENCH_REPEATS=n          runs of (floor, first deploy) per profile; the median is reported (default 3, quick 1)
//   BENCH_RSS_SIZES=100,200,400      bundle sizes in MiB for the peak-RSS runs
//   BENCH_HANDLER_RUNS=n     cold imports per handler (default 9, quick 3)
//   BENCH_WAN_MS=30          delay the WAN profile adds to every request
//   BENCH_CONCURRENCY=8      deploy concurrency (the floor uses the same)
//   BENCH_TIMELINE=1         also log when each kind of request of each first deploy ran
//   BENCH_TIMELINE=requests  also log every request (bulk PUTs aside) of each first deploy and unchanged redeploy
//   BENCH_SETTLE_MS=500      pause after each reset of moto
//   BENCH_CPU_PROF=DIR       write a V8 CPU profile of each of our deploys and floors to DIR (bench/profile-summary.mjs)
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { lambdaName, staticKey } from '../src/core/naming';
import { codeKey } from '../src/core/deploy';
import { startMoto, type MotoServer } from '../test/support/moto';
import { generateBundle, KiB, MiB, referenceAssetSizes, sizedShape, type BundleShape, type GeneratedBundle } from './generate';
import { measureHandlers, median, type HandlerFigures } from './handlers';
import { spawnProxy, type ProxyControl } from './proxy-process';
import type { RequestRecord } from './proxy';
import { runProbed, type ChildRun } from './rss';
import {
  findMotoPid, freshAccount, freshBucket, loadBundle, timeline, originalToolBaseline, ourDeploy, rawUploadFloor, s3KeyOf, type BenchEnv, type LoadedBundle,
  type OurDeploy, type Timed,
} from './scenarios';

// dist/bench/main.mjs → the repository root.
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

const QUICK = process.env.BENCH_QUICK === '1';
const ONLY = new Set((process.env.BENCH_ONLY ?? 'deploy,rss,handlers').split(',').map((s) => s.trim()));
const REPEATS = Number(process.env.BENCH_REPEATS ?? (QUICK ? 1 : 3));
const RSS_SIZES = (process.env.BENCH_RSS_SIZES ?? (QUICK ? '25,50' : '100,200,400')).split(',').map(Number);
const HANDLER_RUNS = Number(process.env.BENCH_HANDLER_RUNS ?? (QUICK ? 3 : 9));
const WAN_MS = Number(process.env.BENCH_WAN_MS ?? 30);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 8);

const REFERENCE: BundleShape = QUICK
  ? { functions: 4, functionBytes: 1 * MiB, assetSizes: referenceAssetSizes(60, 4 * KiB, 256 * KiB), deflateAssets: true }
  : { functions: 4, functionBytes: 5 * MiB, assetSizes: referenceAssetSizes(300), deflateAssets: true };

const BUCKET = 'mattermost-apps-bucket';

interface Row {
  section: string;
  figure: string;
  value: string;
  goal: string;
  met: boolean | null;
}

const rows: Row[] = [];
const row = (section: string, figure: string, value: string, goal = '', met: boolean | null = null) => rows.push({ section, figure, value, goal, met });
const problems: string[] = [];

const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const mb = (bytes: number) => `${(bytes / MiB).toFixed(1)} MiB`;
const ratio = (x: number) => x.toFixed(2);
/** A ratio against its goal: with a third decimal when two would show the goal itself for a ratio that misses it. */
const ratioVs = (x: number, goal: number) => (x > goal && x.toFixed(2) === goal.toFixed(2) ? x.toFixed(3) : ratio(x));
const log = (msg: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);

/** BENCH_TIMELINE=requests: every request of a scenario but the bulk PUTs, with when it started and how long it took. */
function logRequests(records: RequestRecord[], bucket: string): void {
  for (const r of records) {
    if (r.method === 'PUT' && r.service === 's3' && !s3KeyOf(r.url, bucket).startsWith('deployments/') && !s3KeyOf(r.url, bucket).startsWith('manifests/')) continue;
    log(`    ${r.start.toFixed(0).padStart(6)} ms +${r.ms.toFixed(0).padStart(4)} ms  ${r.service} ${r.method} ${r.url.slice(0, 100)} → ${r.status}`);
  }
}

function sh(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return 'unknown';
  }
}

function motoBin(): string {
  const bin = process.env.MOTO_SERVER_BIN || join(ROOT, '.venv', 'bin', 'moto_server');
  if (!existsSync(bin)) {
    log('moto_server not found: running scripts/moto-venv.sh');
    const r = spawnSync('bash', [join(ROOT, 'scripts', 'moto-venv.sh')], { stdio: ['ignore', 'ignore', 'inherit'] });
    if (r.status !== 0) throw new Error('scripts/moto-venv.sh failed');
  }
  return bin;
}

/** Median wall time of `node -e 0`: a yardstick of the machine's speed for the cold-init figures. */
function nodeStartupMs(): number {
  const runs: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t = performance.now();
    spawnSync(process.execPath, ['-e', '0'], { stdio: 'ignore' });
    runs.push(performance.now() - t);
  }
  return Math.round(median(runs));
}

function machine(bin: string) {
  const cpuinfo = existsSync('/proc/cpuinfo') ? readFileSync('/proc/cpuinfo', 'utf8') : '';
  const python = join(dirname(bin), 'python');
  return {
    nproc: Number(sh('nproc', [])) || os.availableParallelism(),
    cpu: /model name\s*:\s*(.+)/.exec(cpuinfo)?.[1]?.trim() ?? os.cpus()[0]?.model ?? 'unknown',
    memoryGiB: Number((os.totalmem() / 1024 ** 3).toFixed(1)),
    node: process.version,
    moto: existsSync(python) ? sh(python, ['-c', 'import moto; print(moto.__version__)']) : 'unknown',
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    date: new Date().toISOString(),
    loadAverageAtStart: os.loadavg().map((x) => Number(x.toFixed(2))),
    nodeStartupMs: nodeStartupMs(),
  };
}

interface ProfileFigures {
  delayMs: number;
  floorBufferMs: number[];
  floorStreamMs: number[];
  firstMs: number[];
  firstValidateMs: number[];
  floorMotoCpuMs: number[];
  firstMotoCpuMs: number[];
  floorBenchCpuMs: number[];
  firstBenchCpuMs: number[];
  loadedObjects: number;
  first: OurDeploy;
  unchanged: OurDeploy;
  changed: OurDeploy;
  changedExpected: string[];
  changedPut: string[];
  changedBytesExpected: number;
  baseline?: Timed;
}

function checkFirst(d: OurDeploy, bundle: GeneratedBundle, where: string): void {
  const r = d.result;
  if (!r) return void problems.push(`${where}: deploy returned no result`);
  const created = r.functions.filter((f) => f.action === 'create').length;
  const uploaded = r.statics.filter((x) => x.action === 'create').length;
  const statics = bundle.files.filter((f) => f.kind === 'static').length;
  if (created !== bundle.functionNames.length || uploaded !== statics) {
    problems.push(`${where}: expected ${bundle.functionNames.length} functions and ${statics} assets created, got ${created} and ${uploaded}`);
  }
  const s5xx = d.records.filter((x) => x.status >= 500).length;
  if (s5xx > 0 || d.stats.errors > 0) problems.push(`${where}: ${s5xx} 5xx answers, ${d.stats.errors} proxy errors (retried by the SDK)`);
}

async function profile(env: BenchEnv, delayMs: number, ref: GeneratedBundle, changedBundle: GeneratedBundle, loaded: LoadedBundle, changes: { fn: string; asset: string }, withBaseline: boolean): Promise<ProfileFigures> {
  await env.proxy.setDelay(delayMs);
  const name = delayMs > 0 ? `WAN ${delayMs} ms` : 'LAN';
  const floorBufferMs: number[] = [];
  const floorStreamMs: number[] = [];
  const firstMs: number[] = [];
  const firstValidateMs: number[] = [];
  const floorMotoCpuMs: number[] = [];
  let loadedObjects = 0;
  const firstMotoCpuMs: number[] = [];
  const floorBenchCpuMs: number[] = [];
  const firstBenchCpuMs: number[] = [];
  let first: OurDeploy | undefined;
  for (let i = 0; i < REPEATS; i++) {
    await freshBucket(env);
    const fb = await rawUploadFloor(env, loaded, 'buffer');
    loadedObjects = fb.stats.requests;
    floorBufferMs.push(fb.ms);
    floorMotoCpuMs.push(fb.motoCpuMs ?? NaN);
    floorBenchCpuMs.push(fb.benchCpuMs);
    log(`${name}: floor (buffers) ${s(fb.ms)}, ${mb(fb.stats.uploadBytes)} sent; moto CPU ${s(fb.motoCpuMs ?? NaN)}`);
    await freshBucket(env);
    const fs = await rawUploadFloor(env, loaded, 'stream');
    floorStreamMs.push(fs.ms);
    log(`${name}: floor (file streams) ${s(fs.ms)}, ${mb(fs.stats.uploadBytes)} sent`);
    await freshAccount(env);
    first = await ourDeploy(env, ref, 'cold');
    checkFirst(first, ref, `${name} first deploy`);
    firstMs.push(first.ms);
    firstValidateMs.push(first.validateMs);
    firstMotoCpuMs.push(first.motoCpuMs ?? NaN);
    firstBenchCpuMs.push(first.benchCpuMs);
    log(`${name}: first deploy ${s(first.ms)} (validation ${s(first.validateMs)}), ${mb(first.stats.uploadBytes)} sent in ${first.stats.requests} requests; moto CPU ${s(first.motoCpuMs ?? NaN)}, ours ${s(first.benchCpuMs)}`);
    if (process.env.BENCH_TIMELINE === '1') for (const st of timeline(first.records, env.target.bucket)) log(`    ${st.step}: ${st.requests} requests, ${st.from}–${st.to} ms`);
    if (process.env.BENCH_TIMELINE === 'requests') logRequests(first.records, env.target.bucket);
  }
  // The state of the last first deploy is in moto: deploy the same bundle again, then the changed one.
  const unchanged = await ourDeploy(env, ref, 'warm');
  log(`${name}: unchanged redeploy ${s(unchanged.ms)}, ${unchanged.stats.uploadBytes} bytes sent in ${unchanged.stats.requests} requests`);
  if (process.env.BENCH_TIMELINE === 'requests') logRequests(unchanged.records, env.target.bucket);
  if (unchanged.result && unchanged.result.functions.some((f) => f.action !== 'unchanged')) problems.push(`${name}: unchanged redeploy changed a function`);
  const changed = await ourDeploy(env, changedBundle, 'warm');
  const r = changed.result;
  const fnPlan = r?.functions.find((f) => f.name === changes.fn.replace(/\.zip$/, ''));
  const changedExpected = [staticKey(ref.appId, ref.version, changes.asset.slice('static/'.length)), fnPlan ? fnPlan.codeKey : codeKey(lambdaName(ref.appId, ref.version, 'fn0'), '?')].sort();
  const changedPut = changed.records
    .filter((x) => x.service === 's3' && x.method === 'PUT')
    .map((x) => s3KeyOf(x.url, env.target.bucket))
    .filter((k) => !k.startsWith('deployments/'))
    .sort();
  const changedBytesExpected = changedBundle.files.filter((f) => f.entry === changes.fn || f.entry === changes.asset).reduce((n, f) => n + f.size, 0);
  log(`${name}: changed deploy ${s(changed.ms)}, PUT ${changedPut.join(', ')}`);
  let baseline: Timed | undefined;
  if (withBaseline) {
    const account = await freshAccount(env);
    baseline = await originalToolBaseline(env, ref, loaded, account);
    log(`${name}: original tool's algorithm ${s(baseline.ms)}, ${mb(baseline.stats.uploadBytes)} sent; moto CPU ${s(baseline.motoCpuMs ?? NaN)}`);
  }
  return {
    delayMs, floorBufferMs, floorStreamMs, firstMs, firstValidateMs, floorMotoCpuMs, firstMotoCpuMs, floorBenchCpuMs, firstBenchCpuMs, loadedObjects, first: first!, unchanged, changed, changedExpected, changedPut, changedBytesExpected,
    ...(baseline ? { baseline } : {}),
  };
}

function reportProfile(section: string, p: ProfileFigures, ref: GeneratedBundle): void {
  const first = median(p.firstMs);
  const floor = median(p.floorBufferMs);
  const floorStream = median(p.floorStreamMs);
  const n = p.firstMs.length > 1 ? ` (median of ${p.firstMs.length})` : '';
  row(section, `first deploy: validate + deploy${n}`, `${s(first)} (validation ends at ${s(median(p.firstValidateMs))}; uploads start beside it)`);
  row(section, `raw-upload floor: same bytes, SDK PutObject from memory, concurrency ${CONCURRENCY}${n}`, s(floor));
  row(section, 'first deploy ÷ floor', ratioVs(first / floor, 1.25), '≤ 1.25', first / floor <= 1.25);
  row(section, '(diagnostic) first deploy after validation ends ÷ floor', ratio((first - median(p.firstValidateMs)) / floor));
  row(section, `(diagnostic) floor with file-stream bodies (aws-chunked)${n}`, `${s(floorStream)} (${ratio(floorStream / floor)} × floor)`);
  row(
    section,
    '(diagnostic) CPU time, moto / this process: floor; first deploy',
    `${s(median(p.floorMotoCpuMs))} / ${s(median(p.floorBenchCpuMs))}; ${s(median(p.firstMotoCpuMs))} / ${s(median(p.firstBenchCpuMs))} (moto is one Python process: its CPU time is a floor for the wall time)`,
  );
  row(section, '(diagnostic) requests: floor / first deploy', `${p.loadedObjects} / ${p.first.stats.requests}`);
  const up = p.first.stats.byService;
  row(section, 'first deploy: bytes sent to S3 / bundle payload', `${mb(up.s3?.uploadBytes ?? 0)} / ${mb(ref.files.reduce((x, f) => x + f.size, 0))}`);
  const u = p.unchanged.stats.byService;
  const s3Lambda = (u.s3?.uploadBytes ?? 0) + (u.lambda?.uploadBytes ?? 0);
  row(section, 'unchanged redeploy: bytes uploaded to S3 + Lambda', `${s3Lambda} B (IAM read bodies ${u.iam?.uploadBytes ?? 0} B; ${p.unchanged.stats.requests} requests)`, '0', s3Lambda === 0);
  const heads = timeline(p.unchanged.records, BUCKET).find((x) => x.step === 'S3 HEAD static/manifest');
  row(
    section,
    '(diagnostic) unchanged redeploy: where the time went',
    `validation ${s(p.unchanged.validateMs)} (bundle known to the inspection cache: its central directory read, no entry); ${p.unchanged.stats.requests} requests` +
      ` (${heads ? `${heads.requests} S3 HEAD over ${s(heads.to - heads.from)}` : 'no HEAD: assets told unchanged by their listed ETags'}); total ${s(p.unchanged.ms)}`,
  );
  row(section, 'unchanged redeploy: time ÷ first deploy', `${ratioVs(p.unchanged.ms / first, 0.1)} (${s(p.unchanged.ms)}, validation ${s(p.unchanged.validateMs)})`, '≤ 0.10', p.unchanged.ms / first <= 0.1);
  const onlyThose = JSON.stringify(p.changedPut) === JSON.stringify(p.changedExpected);
  const c = p.changed.stats.byService;
  const lambdaWrites = p.changed.records.filter((x) => x.service === 'lambda' && (x.method === 'PUT' || x.method === 'POST')).map((x) => `${x.method} ${decodeURIComponent(x.url.split('?')[0] ?? '')}`);
  row(
    section,
    'one changed function + one changed asset: objects PUT (besides the app lock)',
    `${p.changedPut.length}: ${p.changedPut.join(', ')}`,
    'only those 2',
    onlyThose,
  );
  row(section, '… bytes sent to S3 / size of the 2 changed files', `${mb(c.s3?.uploadBytes ?? 0)} / ${mb(p.changedBytesExpected)}; Lambda writes: ${lambdaWrites.join(', ') || 'none'}`);
  row(section, '… time', `${s(p.changed.ms)} (validation ${s(p.changed.validateMs)})`);
  if (p.baseline) {
    row(section, "original tool's algorithm (sequential PutObject, then sequential CreateFunction inline)", s(p.baseline.ms));
    row(section, "first deploy ÷ original tool's algorithm", ratioVs(first / p.baseline.ms, 0.3), section.startsWith('WAN') ? '≤ 0.30' : '', section.startsWith('WAN') ? first / p.baseline.ms <= 0.3 : null);
  }
}

async function main(): Promise<void> {
  const bin = motoBin();
  const info = machine(bin);
  log(`machine: ${info.nproc} CPU ${info.cpu}, ${info.memoryGiB} GiB, node ${info.node}, moto ${info.moto}; load ${info.loadAverageAtStart.join(' ')}`);
  const tmp = await mkdtemp(join(os.tmpdir(), 'apps-deployer-bench-'));
  let moto: MotoServer | undefined;
  let proxy: ProxyControl | undefined;
  const cleanup = async () => {
    await proxy?.close().catch(() => undefined);
    await moto?.stop().catch(() => undefined);
    await rm(tmp, { recursive: true, force: true });
  };
  const onSignal = () => {
    void cleanup().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const results: Record<string, unknown> = { machine: info, config: { QUICK, REPEATS, RSS_SIZES, HANDLER_RUNS, WAN_MS, CONCURRENCY, reference: { ...REFERENCE, assetSizes: undefined, assets: REFERENCE.assetSizes.length } } };
  const started = performance.now();
  try {
    Object.assign(process.env, {
      AWS_ACCESS_KEY_ID: 'testing',
      AWS_SECRET_ACCESS_KEY: 'testing',
      AWS_REGION: 'us-east-1',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    });
    delete process.env.AWS_PROFILE;
    delete process.env.AWS_SESSION_TOKEN;

    if (ONLY.has('deploy') || ONLY.has('rss')) {
      log('starting moto');
      moto = await startMoto({ bin });
      proxy = await spawnProxy(moto.endpoint, 0);
      // Every SDK client of this process (ours, the floor's, the baseline's, the test helpers') goes through the proxy.
      process.env.AWS_ENDPOINT_URL = proxy.url;
    }
    const env: BenchEnv | undefined =
      moto && proxy
        ? { motoEndpoint: moto.endpoint, motoPid: findMotoPid(moto.port), proxy, target: { region: 'us-east-1', bucket: BUCKET, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } }, concurrency: CONCURRENCY, cacheDir: join(tmp, 'inspection-cache') }
        : undefined;

    if (ONLY.has('deploy') && env) {
      log('generating the reference bundle');
      const refDir = join(tmp, 'reference');
      const ref = await generateBundle(refDir, 'reference.zip', REFERENCE);
      const changes = { fn: 'fn0.zip', asset: ref.files.filter((f) => f.kind === 'static')[Math.floor(REFERENCE.assetSizes.length / 2)]!.entry };
      const changedBundle = await generateBundle(refDir, 'changed.zip', REFERENCE, { changes: [changes.fn, changes.asset] });
      const loaded = await loadBundle(ref);
      const payload = ref.files.reduce((n, f) => n + f.size, 0);
      log(`reference bundle: ${mb(ref.bytes)} zip, ${ref.functionNames.length} functions, ${REFERENCE.assetSizes.length} assets, ${mb(payload)} payload`);
      results.reference = { zipBytes: ref.bytes, payloadBytes: payload, functions: ref.functionNames.length, functionBytes: REFERENCE.functionBytes, assets: REFERENCE.assetSizes.length, assetBytes: REFERENCE.assetSizes.reduce((a, b) => a + b, 0), changes };
      row('bundle', 'reference bundle', `${mb(ref.bytes)}: ${ref.functionNames.length} functions × ${mb(REFERENCE.functionBytes)}, ${REFERENCE.assetSizes.length} assets ${Math.round(Math.min(...REFERENCE.assetSizes) / KiB)} KiB–${Math.round(Math.max(...REFERENCE.assetSizes) / KiB)} KiB (${mb(REFERENCE.assetSizes.reduce((a, b) => a + b, 0))})`);

      const lan = await profile(env, 0, ref, changedBundle, loaded, changes, true);
      reportProfile('LAN (moto on loopback)', lan, ref);
      const wan = await profile(env, WAN_MS, ref, changedBundle, loaded, changes, true);
      reportProfile(`WAN (+${WAN_MS} ms per request)`, wan, ref);
      await env.proxy.setDelay(0);
      results.deploy = { lan: summarise(lan), wan: summarise(wan) };
      await rm(refDir, { recursive: true, force: true });
    }

    if (ONLY.has('rss') && env && moto) {
      const rss: Array<{ sizeMiB: number; zipBytes: number; validate: ChildRun; deploy: ChildRun }> = [];
      const childEnv = {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '',
        AWS_ENDPOINT_URL: moto.endpoint,
        MM_APPS_AWS_REGION: 'us-east-1',
        MM_APPS_S3_BUCKET: BUCKET,
        MM_APPS_DEPLOY_AWS_ACCESS_KEY: 'testing',
        MM_APPS_DEPLOY_AWS_SECRET_KEY: 'testing',
        AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
        // The deploy must read the whole bundle, not find it validated by the `aws validate` just before.
        APPS_DEPLOYER_CACHE_DIR: 'off',
      };
      // The process before it reads any bundle: what the CLI costs just by loading.
      const idle = await runProbed(ROOT, ['--help'], childEnv, tmp);
      for (const size of RSS_SIZES) {
        const dir = join(tmp, `rss-${size}`);
        log(`generating a ${size} MiB bundle`);
        const b = await generateBundle(dir, `bundle-${size}.zip`, sizedShape(size));
        await freshAccount(env);
        const validate = await runProbed(ROOT, ['aws', 'validate', b.path], childEnv, tmp);
        const deployRun = await runProbed(ROOT, ['aws', 'test', 'deploy', b.path, '--json', '--concurrency', String(CONCURRENCY)], childEnv, tmp);
        for (const [what, r] of [['validate', validate], ['deploy', deployRun]] as const) {
          if (r.code !== 0) problems.push(`${size} MiB ${what}: appsctl exited ${r.code}: ${r.stderr.slice(-500)}`);
        }
        log(`${size} MiB: validate peak ${validate.peakMiB.toFixed(1)} MiB in ${s(validate.ms)}; validate+deploy peak ${deployRun.peakMiB.toFixed(1)} MiB in ${s(deployRun.ms)}`);
        rss.push({ sizeMiB: size, zipBytes: b.bytes, validate, deploy: deployRun });
        await rm(dir, { recursive: true, force: true });
      }
      const peaks = rss.map((r) => Math.max(r.validate.peakMiB, r.deploy.peakMiB));
      const heap = (r: ChildRun) => `JS heap ${r.atPeakMiB.heapUsed ?? '?'} MiB used of ${r.atPeakMiB.heapTotal ?? '?'}`;
      row('peak RSS (appsctl process, VmHWM)', 'appsctl --help (loading only)', `${idle.peakMiB.toFixed(1)} MiB`);
      for (const r of rss) {
        const peak = Math.max(r.validate.peakMiB, r.deploy.peakMiB);
        row(
          'peak RSS (appsctl process, VmHWM)',
          `${r.sizeMiB} MiB bundle: aws validate / aws test deploy`,
          `${r.validate.peakMiB.toFixed(1)} / ${r.deploy.peakMiB.toFixed(1)} MiB (at the deploy's peak: ${heap(r.deploy)}; deploy took ${s(r.deploy.ms)})`,
          '≤ 200 MB',
          peak * MiB <= 200e6,
        );
      }
      if (rss.length > 1) {
        const growth = peaks[peaks.length - 1]! - peaks[0]!;
        const sizeGrowth = RSS_SIZES[RSS_SIZES.length - 1]! - RSS_SIZES[0]!;
        row(
          'peak RSS (appsctl process, VmHWM)',
          `growth from the ${RSS_SIZES[0]} to the ${RSS_SIZES[RSS_SIZES.length - 1]} MiB bundle`,
          `${growth >= 0 ? '+' : ''}${growth.toFixed(1)} MiB for +${sizeGrowth} MiB of bundle (${((growth / sizeGrowth) * 100).toFixed(1)}%)`,
          'flat: < 10% of the bundle growth',
          growth / sizeGrowth < 0.1,
        );
      }
      results.rss = { idle, runs: rss };
    }

    if (ONLY.has('handlers')) {
      log(`handler bundles: ${HANDLER_RUNS} cold imports each`);
      const figures: HandlerFigures[] = await measureHandlers(join(ROOT, 'dist', 'handlers'), HANDLER_RUNS);
      for (const h of figures) {
        row(
          'handlers (dist/handlers)',
          `${h.name}.mjs: size / cold init, wall (CPU), median of ${h.initMs.length}`,
          `${(h.bytes / 1e6).toFixed(3)} MB / ${h.medianMs.toFixed(0)} ms (${h.medianCpuMs.toFixed(0)} ms)`,
          '≤ 1 MB / ≤ 150 ms',
          h.bytes <= 1e6 && h.medianMs <= 150,
        );
      }
      results.handlers = figures;
    }
  } finally {
    await cleanup();
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
  const loadAtEnd = os.loadavg().map((x) => Number(x.toFixed(2)));
  results.loadAverageAtEnd = loadAtEnd;
  results.totalSeconds = Number(((performance.now() - started) / 1000).toFixed(1));
  results.rows = rows;
  results.problems = problems;

  const table = renderTable();
  process.stdout.write(`\n${table}\n`);
  if (problems.length > 0) process.stdout.write(`\nProblems:\n${problems.map((p) => `- ${p}`).join('\n')}\n`);
  await mkdir(join(ROOT, 'bench', 'results'), { recursive: true });
  await writeFile(join(ROOT, 'bench', 'results', 'latest.json'), `${JSON.stringify(results, null, 2)}\n`);
  // RESULTS.md is the committed record of the latest FULL run: a smoke or partial run leaves it alone.
  const full = !QUICK && ['deploy', 'rss', 'handlers'].every((part) => ONLY.has(part));
  if (full) await writeFile(join(ROOT, 'bench', 'RESULTS.md'), resultsMarkdown(info, loadAtEnd, results.totalSeconds as number, table));
  log(`wrote bench/results/latest.json${full ? ' and bench/RESULTS.md' : ' (not a full run: bench/RESULTS.md left as it was)'} in ${results.totalSeconds} s`);
  if (problems.length > 0) process.exitCode = 1;
}

function summarise(p: ProfileFigures) {
  const slim = (t: Timed) => ({ ms: t.ms, motoCpuMs: t.motoCpuMs, benchCpuMs: t.benchCpuMs, stats: t.stats });
  return {
    delayMs: p.delayMs,
    floorBufferMs: p.floorBufferMs,
    floorStreamMs: p.floorStreamMs,
    firstMs: p.firstMs,
    firstValidateMs: p.firstValidateMs,
    floorMotoCpuMs: p.floorMotoCpuMs,
    firstMotoCpuMs: p.firstMotoCpuMs,
    floorBenchCpuMs: p.floorBenchCpuMs,
    firstBenchCpuMs: p.firstBenchCpuMs,
    first: { ...slim(p.first), timeline: timeline(p.first.records, BUCKET) },
    unchanged: { ...slim(p.unchanged), validateMs: p.unchanged.validateMs, timeline: timeline(p.unchanged.records, BUCKET) },
    changed: { ...slim(p.changed), validateMs: p.changed.validateMs, timeline: timeline(p.changed.records, BUCKET), put: p.changedPut, expected: p.changedExpected, expectedBytes: p.changedBytesExpected },
    ...(p.baseline ? { baseline: slim(p.baseline) } : {}),
  };
}

function renderTable(): string {
  const header = ['figure', 'value', 'goal', 'met?'];
  const lines: string[][] = [];
  let section = '';
  for (const r of rows) {
    if (r.section !== section) {
      section = r.section;
      lines.push([`**${section}**`, '', '', '']);
    }
    lines.push([r.figure, r.value, r.goal, r.met === null ? '' : r.met ? 'yes' : 'NO']);
  }
  const esc = (c: string) => c.replaceAll('|', '\\|');
  return [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`, ...lines.map((l) => `| ${l.map(esc).join(' | ')} |`)].join('\n');
}

function resultsMarkdown(info: ReturnType<typeof machine>, loadAtEnd: number[], seconds: number, table: string): string {
  return [
    '# Benchmark results (latest full run)',
    '',
    'Written by `npm run bench` (bench/main.ts); see bench/README.md for what each figure measures.',
    '',
    `- Date: ${info.date}`,
    `- Machine: ${info.nproc} CPUs (nproc), ${info.cpu}, ${info.memoryGiB} GiB RAM, ${info.os}`,
    `- Node ${info.node} (\`node -e 0\` takes ${info.nodeStartupMs} ms here), moto ${info.moto} (server mode, loopback)`,
    `- Load average (1/5/15 min) at start ${info.loadAverageAtStart.join(' / ')}, at end ${loadAtEnd.join(' / ')}`,
    `- Run: ${QUICK ? 'QUICK (smoke) ' : ''}${seconds} s; repeats ${REPEATS}; concurrency ${CONCURRENCY}; WAN delay ${WAN_MS} ms`,
    '',
    table,
    '',
    problems.length > 0 ? `Problems:\n${problems.map((p) => `- ${p}`).join('\n')}\n` : '',
  ].join('\n');
}

await main();
