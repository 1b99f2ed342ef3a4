// Runs after `npm run package` in CI: proves that what serverless packaged is what we meant to deploy, without AWS.
// The expectations are written out here rather than read from serverless.yml, so that a wrong edit of serverless.yml
// fails CI instead of redefining what is expected.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

const DIR = '.serverless';
const TEMPLATE = join(DIR, 'cloudformation-template-update-stack.json');
const RUNTIME = 'nodejs22.x';
const KiB = 1024;
const MiB = 1024 * KiB;
// Lambda takes far bigger zips; these bound cold starts. The goal is 1 MiB per handler, the hard stop 5 MiB.
const WARN_BYTES = 1 * MiB;
const FAIL_BYTES = 5 * MiB;

/** Handler file name → its HTTP route (design.md §3), or null for the ones without one. */
const EXPECTED = {
  init: 'POST /init',
  bundles: 'POST /bundles',
  deploy: 'POST /deploy',
  'deploy-worker': null,
  'deployment-status': 'GET /deployments/{id}',
  'provision-data': 'POST /provision-data',
  'app-status': 'GET /apps/{appId}',
  'auto-deploy': null,
  'apps-list': 'GET /apps',
  'app-rollback': 'POST /apps/{appId}/rollback',
  'app-undeploy': 'DELETE /apps/{appId}/versions/{version}',
  reconcile: null,
};

const errors = [];
const warnings = [];
const fail = (msg) => errors.push(msg);

if (!existsSync(TEMPLATE)) {
  console.error(`${TEMPLATE} not found: run \`npm run package\` first`);
  process.exit(1);
}
const resources = JSON.parse(readFileSync(TEMPLATE, 'utf8')).Resources ?? {};
const ofType = (type) => Object.entries(resources).filter(([, r]) => r.Type === type);

// Functions are matched by handler, not by logical ID: the handler path is what Lambda will actually load.
const functions = ofType('AWS::Lambda::Function');
const logicalIdOf = {};
for (const name of Object.keys(EXPECTED)) {
  const handler = `dist/handlers/${name}.handler`;
  const found = functions.filter(([, r]) => r.Properties?.Handler === handler);
  if (found.length !== 1) {
    fail(`${name}: expected one function with handler ${handler}, found ${found.length}`);
    continue;
  }
  const [id, fn] = found[0];
  logicalIdOf[name] = id;
  if (fn.Properties.Runtime !== RUNTIME) fail(`${name}: runtime is ${fn.Properties.Runtime}, expected ${RUNTIME}`);
  const s3Key = fn.Properties.Code?.S3Key ?? '';
  if (!s3Key.endsWith(`/${name}.zip`)) fail(`${name}: code key ${s3Key} is not its own ${name}.zip (package.individually?)`);
}
// Every function in the template, ours or serverless's own (the custom resource behind `existing: true`), must run
// on a runtime Lambda still accepts for new functions.
for (const [id, fn] of functions) {
  if (Object.values(logicalIdOf).includes(id)) continue;
  if (fn.Properties?.Runtime !== RUNTIME) fail(`${id}: runtime is ${fn.Properties?.Runtime}, expected ${RUNTIME}`);
}
// Besides ours, only serverless's custom resources (the function behind a Custom::* ServiceToken) may be there.
const customResourceFunctions = Object.values(resources)
  .filter((r) => r.Type?.startsWith('Custom::'))
  .map((r) => r.Properties?.ServiceToken?.['Fn::GetAtt']?.[0]);
for (const [id, r] of functions) {
  if (!Object.values(logicalIdOf).includes(id) && !customResourceFunctions.includes(id)) {
    fail(`unexpected function ${id} (handler ${r.Properties?.Handler})`);
  }
}

// HTTP routes: exactly the design's, each integrated with the function of the same name.
const functionOfRoute = new Map(
  ofType('AWS::ApiGatewayV2::Route').map(([, r]) => {
    const integrationId = r.Properties.Target?.['Fn::Join']?.[1]?.[1]?.Ref;
    const uri = resources[integrationId]?.Properties?.IntegrationUri;
    return [r.Properties.RouteKey, uri?.['Fn::GetAtt']?.[0]];
  }),
);
const expectedRoutes = Object.entries(EXPECTED).filter(([, route]) => route !== null);
for (const [name, route] of expectedRoutes) {
  if (!functionOfRoute.has(route)) fail(`${name}: route ${route} missing`);
  else if (logicalIdOf[name] && functionOfRoute.get(route) !== logicalIdOf[name]) {
    fail(`route ${route} goes to ${functionOfRoute.get(route)}, not to ${name} (${logicalIdOf[name]})`);
  }
}
for (const route of functionOfRoute.keys()) {
  if (!expectedRoutes.some(([, r]) => r === route)) fail(`unexpected route ${route}`);
}

// The S3 trigger (design.md §4) on the existing apps bucket: serverless@3 wires `existing: true` as a Custom::S3.
const s3Triggers = ofType('Custom::S3');
const autoDeployName = resources[logicalIdOf['auto-deploy']]?.Properties?.FunctionName;
const bundleTrigger = s3Triggers.find(([, r]) => r.Properties?.FunctionName === autoDeployName);
if (!bundleTrigger) {
  fail(`auto-deploy: no S3 trigger (Custom::S3) for ${autoDeployName ?? 'the auto-deploy function'}`);
} else {
  const configs = bundleTrigger[1].Properties.BucketConfigs ?? [];
  const ok = configs.some((c) => {
    const rules = c.Rules ?? [];
    return (
      c.Event === 's3:ObjectCreated:*' &&
      rules.some((rule) => rule.Prefix === 'bundles/') &&
      rules.some((rule) => rule.Suffix === '.zip')
    );
  });
  if (!ok) fail(`auto-deploy: S3 trigger is not s3:ObjectCreated:* on prefix bundles/ suffix .zip: ${JSON.stringify(configs)}`);
}
if (s3Triggers.length !== 1) fail(`expected exactly one S3 trigger, found ${s3Triggers.length}`);

// The zips themselves.
const sizes = [];
for (const name of Object.keys(EXPECTED)) {
  const zip = join(DIR, `${name}.zip`);
  if (!existsSync(zip)) {
    fail(`${name}: ${zip} missing`);
    continue;
  }
  const size = statSync(zip).size;
  sizes.push([name, size]);
  if (size > FAIL_BYTES) fail(`${name}: ${zip} is ${fmt(size)}, over the ${fmt(FAIL_BYTES)} limit`);
  else if (size > WARN_BYTES) warnings.push(`${name}: ${zip} is ${fmt(size)}, over the ${fmt(WARN_BYTES)} goal`);
}

function fmt(bytes) {
  return bytes >= MiB ? `${(bytes / MiB).toFixed(2)} MiB` : `${(bytes / KiB).toFixed(1)} KiB`;
}

const width = Math.max(...Object.keys(EXPECTED).map((n) => n.length));
for (const [name, size] of sizes) console.log(`${name.padEnd(width)}  ${String(size).padStart(9)} B  ${fmt(size)}`);
for (const w of warnings) console.warn(`warning: ${w}`);
if (errors.length > 0) {
  for (const e of errors) console.error(`error: ${e}`);
  process.exit(1);
}
console.log(`ok: ${Object.keys(EXPECTED).length} functions on ${RUNTIME}, ${expectedRoutes.length} routes, S3 trigger on bundles/*.zip`);
