// Runs in each integration test file's worker before the file: points every AWS client (ours and the
// SDK's defaults) at the shared moto and gives the file an empty moto.
import { beforeAll, inject } from 'vitest';
import { resetMoto } from './moto.js';

const endpoint = inject('motoEndpoint');

// Set at load time, before the test file is imported, so that code reading the environment at import
// time sees it too; moto accepts any credentials.
Object.assign(process.env, {
  AWS_ENDPOINT_URL: endpoint,
  AWS_ACCESS_KEY_ID: 'testing',
  AWS_SECRET_ACCESS_KEY: 'testing',
  AWS_REGION: 'us-east-1',
  // appsctl's own variables (appsctl.md §0): it uses static credentials and never the default chain.
  MM_APPS_AWS_REGION: 'us-east-1',
  MM_APPS_DEPLOY_AWS_ACCESS_KEY: 'testing',
  MM_APPS_DEPLOY_AWS_SECRET_KEY: 'testing',
  // The SDK's notice that it will drop Node 20 says nothing about the code under test and would
  // bury real output once per test file.
  AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
});
// A developer's ~/.aws profile must not leak into the tests.
delete process.env.AWS_PROFILE;
delete process.env.AWS_SESSION_TOKEN;

beforeAll(async () => {
  await resetMoto(endpoint);
});
