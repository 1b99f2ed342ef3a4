import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';

/**
 * serverless.yml as written (variables unresolved). It is read with serverless's own reader, which knows the
 * CloudFormation tags (`!Sub` → `{ "Fn::Sub": … }`) exactly as `serverless package` will; `npm run package` and
 * scripts/check-package.mjs then check the resolved template.
 */
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const require = createRequire(import.meta.url);
const readServerlessConfiguration = require('serverless/lib/configuration/read') as (path: string) => Promise<unknown>;

interface HttpApiEvent {
  httpApi?: { method: string; path: string } | string;
  s3?: { bucket: string; event: string; existing?: boolean; rules?: Array<{ prefix?: string; suffix?: string }> };
  schedule?: string | { rate: string | string[] };
}
interface FunctionConfig {
  name?: string;
  handler: string;
  timeout?: number;
  memorySize?: number;
  ephemeralStorageSize?: number;
  environment?: Record<string, string>;
  package?: { patterns?: string[] };
  events?: HttpApiEvent[];
}
interface Statement {
  Sid?: string;
  Effect: string;
  Action?: string | string[];
  NotAction?: unknown;
  Resource: unknown;
}
interface ServerlessConfig {
  provider: { runtime: string; architecture: string; environment: Record<string, string>; iam: { role: { statements: Statement[] } } };
  package: { individually: boolean };
  custom: Record<string, string>;
  functions: Record<string, FunctionConfig>;
}

// design.md §3 and the app lifecycle (list, rollback, undeploy), plus the functions without a route: the worker, the
// S3 auto-deployer (§4) and the hourly reconcile.
const DESIGN_ROUTES = [
  'POST /init', 'POST /bundles', 'POST /deploy', 'GET /deployments/{id}', 'POST /provision-data', 'GET /apps/{appId}',
  'GET /apps', 'POST /apps/{appId}/rollback', 'DELETE /apps/{appId}/versions/{version}',
];
const FUNCTIONS = [
  'init', 'bundles', 'deploy', 'deploy-worker', 'deployment-status', 'provision-data', 'app-status', 'auto-deploy',
  'apps-list', 'app-rollback', 'app-undeploy', 'reconcile',
];
const DESIGN_ENV = [
  'MM_APPS_S3_BUCKET',
  'MM_APPS_AWS_REGION',
  'MM_SERVICESETTINGS_SITEURL',
  'MM_ADMIN_TOKEN_PARAM',
  'APPS_DEPLOYER_ADMIN_TOKEN_PARAM',
  'APPS_DEPLOYER_STATUS_TOKEN_PARAM',
  'APPS_DEPLOYER_WEBHOOK_URL',
  'APPS_DEPLOYER_AUTO_INSTALL',
  'APPS_DEPLOYER_MAX_BUNDLE_BYTES',
];

const asList = <T>(v: T | T[] | undefined): T[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

let config: ServerlessConfig;
beforeAll(async () => {
  config = (await readServerlessConfiguration(`${ROOT}serverless.yml`)) as ServerlessConfig;
});

describe('serverless.yml', () => {
  it('declares exactly the control plane functions, on nodejs22.x arm64, packaged one zip each', () => {
    // Prepare
    const expected = [...FUNCTIONS].sort();
    // Act
    const names = Object.keys(config.functions).sort();
    // Assess
    expect(names).toEqual(expected);
    expect(config.provider.runtime).toBe('nodejs22.x');
    expect(config.provider.architecture).toBe('arm64');
    expect(config.package.individually).toBe(true);
  });

  it.each(FUNCTIONS)('%s runs the esbuild output of its own src/handlers file, and packages only that file', (name) => {
    // Prepare
    const fn = config.functions[name]!;
    // Act
    const file = /^dist\/handlers\/(.+)\.handler$/.exec(fn.handler)?.[1];
    // Assess
    expect(file).toBe(name);
    expect(existsSync(`${ROOT}src/handlers/${file}.ts`), `src/handlers/${file}.ts must exist: scripts/build.mjs builds it`).toBe(true);
    expect(fn.package?.patterns).toEqual(['!**', `dist/handlers/${name}.mjs`]);
  });

  it('routes exactly the endpoints of the design and the app lifecycle', () => {
    // Prepare
    const expected = [...DESIGN_ROUTES].sort();
    // Act
    const routes = Object.values(config.functions)
      .flatMap((fn) => fn.events ?? [])
      .flatMap((e) => (e.httpApi === undefined ? [] : [typeof e.httpApi === 'string' ? e.httpApi : `${e.httpApi.method.toUpperCase()} ${e.httpApi.path}`]))
      .sort();
    // Assess
    expect(routes).toEqual(expected);
  });

  it('triggers auto-deploy on .zip files created under bundles/ of the existing apps bucket', () => {
    // Prepare
    const s3Events = Object.entries(config.functions).flatMap(([name, fn]) => (fn.events ?? []).filter((e) => e.s3).map((e) => ({ name, s3: e.s3! })));
    // Act
    const [trigger] = s3Events;
    // Assess
    expect(s3Events).toHaveLength(1);
    expect(trigger!.name).toBe('auto-deploy');
    expect(trigger!.s3).toMatchObject({ bucket: '${param:appsBucket}', event: 's3:ObjectCreated:*', existing: true });
    expect(trigger!.s3.rules).toEqual([{ prefix: 'bundles/' }, { suffix: '.zip' }]);
  });

  it('runs reconcile every hour, and only reconcile on a schedule', () => {
    // Prepare
    const scheduled = Object.entries(config.functions).flatMap(([name, fn]) => (fn.events ?? []).filter((e) => e.schedule !== undefined).map((e) => ({ name, schedule: e.schedule })));
    // Act
    const [only] = scheduled;
    // Assess
    expect(scheduled).toHaveLength(1);
    expect(only).toEqual({ name: 'reconcile', schedule: 'rate(1 hour)' });
  });

  it('gives the worker, auto-deploy and reconcile the time and /tmp room for a 512 MiB bundle', () => {
    // Prepare
    const longRunning = ['deploy-worker', 'auto-deploy', 'reconcile'].map((name) => config.functions[name]!);
    // Act
    const limits = longRunning.map((fn) => [fn.timeout, fn.memorySize, fn.ephemeralStorageSize]);
    // Assess
    expect(limits).toEqual([
      [900, 1024, 4096],
      [900, 1024, 4096],
      [900, 1024, 4096],
    ]);
    expect(config.functions['provision-data']!.ephemeralStorageSize).toBe(2048);
  });

  it('passes every setting of design.md §3 to the functions, secrets by SSM parameter name only', () => {
    // Prepare
    const env = config.provider.environment;
    // Act
    const names = Object.keys(env);
    // Assess
    expect(names).toEqual(expect.arrayContaining(DESIGN_ENV));
    expect(names.filter((n) => /TOKEN$/.test(n))).toEqual([]);
  });

  it('tells deploy the worker name, and lets the role invoke only that function', () => {
    // Prepare
    const worker = config.functions['deploy-worker']!;
    const invokes = config.provider.iam.role.statements.filter((s) => asList(s.Action).includes('lambda:InvokeFunction'));
    // Act
    const invokeResources = invokes.map((s) => JSON.stringify(s.Resource));
    // Assess
    expect(worker.name).toBe('${self:custom.workerFunctionName}');
    expect(config.functions.deploy!.environment?.APPS_DEPLOYER_WORKER_FUNCTION).toBe('${self:custom.workerFunctionName}');
    expect(invokeResources).toHaveLength(1);
    expect(invokeResources[0]).toMatch(/:function:\$\{self:custom\.workerFunctionName\}"/);
  });

  it('grants no wildcard action, and "*" resources only where IAM offers nothing narrower', () => {
    // Prepare
    const statements = config.provider.iam.role.statements;
    // Act
    const actions = statements.flatMap((s) => asList(s.Action));
    const onEveryResource = statements.filter((s) => asList(s.Resource).includes('*')).flatMap((s) => asList(s.Action));
    // Assess
    expect(statements.every((s) => s.Effect === 'Allow' && s.NotAction === undefined)).toBe(true);
    expect(actions.filter((a) => a === '*' || a.endsWith(':*') || a.includes('*'))).toEqual([]);
    expect(onEveryResource).toEqual(['iam:ListPolicies']);
  });
});
