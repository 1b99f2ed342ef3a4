// Runs the built Lambda handler bundles (dist/handlers/*.mjs) the way Lambda does: imported by a fresh Node process,
// configured by the environment, called with API Gateway v2 and S3 events. Prints one JSON line per step:
// { step, status, body }. Used by test/integration/built-handlers.test.ts; the environment (AWS_ENDPOINT_URL, the
// bucket, the SSM parameter name of the admin token) is the caller's.
// Usage: node built-handlers-run.mjs HANDLERS_DIR BUNDLE_KEY ADMIN_TOKEN
import { pathToFileURL } from 'node:url';

const [dir, bundleKey, token] = process.argv.slice(2);
const handler = async (name) => (await import(pathToFileURL(`${dir}/${name}.mjs`).href)).handler;
const http = (routeKey, { body, pathParameters, query, auth = `Bearer ${token}` } = {}) => ({
  version: '2.0',
  routeKey,
  rawPath: '/',
  headers: { authorization: auth },
  requestContext: { http: { method: routeKey.split(' ')[0] } },
  ...(body ? { body: JSON.stringify(body) } : {}),
  ...(pathParameters ? { pathParameters } : {}),
  ...(query ? { queryStringParameters: query } : {}),
});
const ctx = { awsRequestId: 'built-handlers', getRemainingTimeInMillis: () => 60_000 };
const step = async (name, run) => {
  let r;
  try {
    r = await run();
  } catch (err) {
    r = { error: err instanceof Error ? err.message : String(err) };
  }
  const body = r && typeof r.body === 'string' ? JSON.parse(r.body) : r;
  console.log(JSON.stringify({ step: name, status: r?.statusCode ?? null, body }));
  return body;
};

await step('init', async () => (await handler('init'))(http('POST /init', { body: { create: true } }), ctx));
await step('unauthorized', async () => (await handler('app-status'))(http('GET /apps/{appId}', { pathParameters: { appId: 'x' }, auth: 'Bearer wrong-token-0123456789' }), ctx));
await step('bundles', async () => (await handler('bundles'))(http('POST /bundles', { body: { name: 'app.zip' } }), ctx));
await step('provision-data', async () => (await handler('provision-data'))(http('POST /provision-data', { body: { bundleKey } }), ctx));
await step('deploy dry run', async () => (await handler('deploy'))(http('POST /deploy', { body: { bundleKey, dryRun: true } }), ctx));
const bucket = process.env.MM_APPS_S3_BUCKET;
const event = { Records: [{ eventSource: 'aws:s3', eventName: 'ObjectCreated:Put', s3: { bucket: { name: bucket }, object: { key: bundleKey, size: Number(process.env.BUNDLE_SIZE), eTag: process.env.BUNDLE_ETAG, sequencer: '01' } } }] };
const deployed = await step('auto-deploy', async () => (await handler('auto-deploy'))(event, ctx));
const list = await step('apps-list', async () => (await handler('apps-list'))(http('GET /apps', { query: {} }), ctx));
const appId = list?.apps?.[0]?.appId;
const version = list?.apps?.[0]?.versions?.[0]?.version;
await step('app-status', async () => (await handler('app-status'))(http('GET /apps/{appId}', { pathParameters: { appId } }), ctx));
await step('deployment-status 404', async () => (await handler('deployment-status'))(http('GET /deployments/{id}', { pathParameters: { id: '00000000-0000-0000-0000-000000000000' } }), ctx));
await step('app-rollback', async () => (await handler('app-rollback'))(http('POST /apps/{appId}/rollback', { pathParameters: { appId }, body: { version } }), ctx));
await step('reconcile', async () => (await handler('reconcile'))({ source: 'aws.events', 'detail-type': 'Scheduled Event' }, ctx));
await step('app-undeploy', async () => (await handler('app-undeploy'))(http('DELETE /apps/{appId}/versions/{version}', { pathParameters: { appId, version }, query: { force: 'true' } }), ctx));
// A redelivered invocation for a deployment that has ended: the worker reads the record and leaves it alone.
await step('deploy-worker again', async () => (await handler('deploy-worker'))({ deploymentId: deployed?.[0]?.deploymentId }, ctx));
