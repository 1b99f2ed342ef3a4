// The Mattermost fake is only worth its results if it refuses what the real Apps plugin refuses:
// these tests pin the behaviour the deployer's own tests rely on.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  INSTALL_APP_PATH,
  startMattermostFake,
  UPDATE_APP_LISTING_PATH,
  type MattermostFake,
} from '../support/mattermost-fake.js';

const TOKEN = 'sysadmin-token-123';

const lambdaManifest = {
  app_id: 'com.example.hello',
  version: 'v1.0.0',
  homepage_url: 'https://example.com/hello',
  display_name: 'Hello',
  aws_lambda: { functions: [{ path: '/', name: 'main', handler: 'index.handler', runtime: 'nodejs22.x' }] },
};

let mm: MattermostFake;

beforeEach(async () => {
  mm = await startMattermostFake({ token: TOKEN });
});

afterEach(async () => {
  await mm.close();
});

/** `authorization: null` sends no Authorization header. */
async function post(path: string, body: unknown, authorization: string | null = `BEARER ${TOKEN}`) {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (authorization !== null) headers.authorization = authorization;
  const response = await fetch(`${mm.url}${path}`, { method: 'POST', headers, body: JSON.stringify(body) });
  const text = await response.text();
  return { status: response.status, body: JSON.parse(text) as Record<string, unknown> };
}

/** What appsctl sends (appsctl.md §2 step 10). */
function listing(manifest: object, replace = false) {
  return { ...manifest, Replace: replace, add_deploys: ['aws_lambda'] };
}

describe('authorization', () => {
  it.each([
    { case: 'no Authorization header', authorization: null, status: 401 },
    { case: 'an empty bearer token', authorization: 'BEARER ', status: 401 },
    { case: 'another scheme', authorization: `Basic ${TOKEN}`, status: 401 },
    { case: 'a wrong token', authorization: 'BEARER not-the-token', status: 403 },
    { case: 'the token as appsctl sends it', authorization: `BEARER ${TOKEN}`, status: 200 },
    { case: 'the scheme in another case', authorization: `Bearer ${TOKEN}`, status: 200 },
  ])('answers $status to $case', async ({ authorization, status }) => {
    // Prepare
    const body = listing(lambdaManifest);

    // Act
    const response = await post(UPDATE_APP_LISTING_PATH, body, authorization);

    // Assess
    expect(response.status).toBe(status);
    if (status === 200) expect(mm.listed.has('com.example.hello')).toBe(true);
    else {
      expect(response.body).toMatchObject({ status_code: status, id: expect.any(String), message: expect.any(String) });
      expect(mm.listed.size).toBe(0);
    }
    expect(mm.requests).toHaveLength(1);
    expect(mm.requests[0]).toMatchObject({ method: 'POST', path: UPDATE_APP_LISTING_PATH, status, body });
  });
});

describe('update-app-listing', () => {
  it.each([
    { case: 'no app_id', change: { app_id: undefined }, problem: 'app_id is empty' },
    { case: 'a 2-byte app_id', change: { app_id: 'ab' }, problem: 'app_id must be 3-32 bytes' },
    { case: 'a 33-byte app_id', change: { app_id: 'a'.repeat(33) }, problem: 'app_id must be 3-32 bytes' },
    { case: 'no homepage_url', change: { homepage_url: undefined }, problem: 'homepage_url is empty' },
    { case: 'no display_name', change: { display_name: undefined }, problem: 'display_name is empty' },
    { case: 'no deploy section', change: { aws_lambda: undefined }, problem: 'no deployment information' },
    { case: 'a function without handler', change: { aws_lambda: { functions: [{ path: '/', name: 'main', runtime: 'nodejs22.x' }] } }, problem: 'functions[0].handler is empty' },
  ])('refuses a manifest with $case', async ({ change, problem }) => {
    // Prepare
    const manifest = { ...lambdaManifest, ...change };

    // Act
    const response = await post(UPDATE_APP_LISTING_PATH, listing(manifest));

    // Assess
    expect(response.status).toBe(400);
    expect(response.body.message).toContain(problem);
    expect(mm.listed.size).toBe(0);
  });

  it('answers with the stored manifest, without the request-only fields', async () => {
    // Act
    const response = await post(UPDATE_APP_LISTING_PATH, listing(lambdaManifest));

    // Assess
    expect(response).toEqual({ status: 200, body: lambdaManifest });
    expect(mm.listed.get('com.example.hello')).toEqual(lambdaManifest);
  });

  it('keeps the deploy types listed before when Replace is false', async () => {
    // Prepare
    const http = { root_url: 'https://hello.example.com' };
    await post(UPDATE_APP_LISTING_PATH, { ...lambdaManifest, aws_lambda: undefined, http, Replace: false, add_deploys: ['http'] });
    const newFunctions = { functions: [{ path: '/', name: 'v2', handler: 'index.handler', runtime: 'nodejs22.x' }] };

    // Act
    const response = await post(UPDATE_APP_LISTING_PATH, listing({ ...lambdaManifest, version: 'v2.0.0', aws_lambda: newFunctions }));

    // Assess
    expect(response.status).toBe(200);
    expect(mm.listed.get('com.example.hello')).toMatchObject({ version: 'v2.0.0', http, aws_lambda: newFunctions });
  });

  it('drops the deploy types listed before when Replace is true', async () => {
    // Prepare
    const http = { root_url: 'https://hello.example.com' };
    await post(UPDATE_APP_LISTING_PATH, { ...lambdaManifest, aws_lambda: undefined, http, Replace: false, add_deploys: ['http'] });

    // Act
    await post(UPDATE_APP_LISTING_PATH, listing(lambdaManifest, true));

    // Assess
    expect(mm.listed.get('com.example.hello')).toEqual(lambdaManifest);
  });

  it('ignores a new deploy type that is neither listed before nor in add_deploys', async () => {
    // Act
    const response = await post(UPDATE_APP_LISTING_PATH, { ...lambdaManifest, Replace: false });

    // Assess: the plugin's mergeDeployData only takes types that were listed or are being added
    expect(response.status).toBe(200);
    expect(mm.listed.get('com.example.hello')).not.toHaveProperty('aws_lambda');
  });
});

describe('install-app', () => {
  const installBody = { app_id: 'com.example.hello', deploy_type: 'aws_lambda', remote_oauth2: {} };

  it('installs a listed app', async () => {
    // Prepare
    await post(UPDATE_APP_LISTING_PATH, listing(lambdaManifest));

    // Act
    const response = await post(INSTALL_APP_PATH, installBody);

    // Assess
    expect(response.status).toBe(200);
    expect(response.body).toMatchObject({ app_id: 'com.example.hello', deploy_type: 'aws_lambda', remote_oauth2: {} });
    expect(mm.installed.get('com.example.hello')).toEqual(response.body);
  });

  it('refuses an app that is not listed', async () => {
    // Act
    const response = await post(INSTALL_APP_PATH, installBody);

    // Assess
    expect(response.status).toBe(404);
    expect(response.body.message).toContain('failed to find manifest to install app');
    expect(mm.installed.size).toBe(0);
  });

  it('refuses a deploy type the listed app does not have', async () => {
    // Prepare
    await post(UPDATE_APP_LISTING_PATH, listing(lambdaManifest));

    // Act
    const response = await post(INSTALL_APP_PATH, { ...installBody, deploy_type: 'http' });

    // Assess
    expect(response.status).toBe(400);
    expect(response.body.message).toBe('app does not support http deployment');
    expect(mm.installed.size).toBe(0);
  });

  it('requires the admin token too', async () => {
    // Prepare
    await post(UPDATE_APP_LISTING_PATH, listing(lambdaManifest));

    // Act
    const response = await post(INSTALL_APP_PATH, installBody, 'BEARER wrong');

    // Assess
    expect(response.status).toBe(403);
    expect(mm.installed.size).toBe(0);
  });
});

describe('failNext', () => {
  it('fails only the next request to that path, changes nothing, and records it', async () => {
    // Prepare
    mm.failNext(UPDATE_APP_LISTING_PATH, 502, '{"message":"bad gateway"}');

    // Act
    const failed = await post(UPDATE_APP_LISTING_PATH, listing(lambdaManifest));
    const retried = await post(UPDATE_APP_LISTING_PATH, listing(lambdaManifest));

    // Assess
    expect(failed).toEqual({ status: 502, body: { message: 'bad gateway' } });
    expect(retried.status).toBe(200);
    expect(mm.requests.map((r) => r.status)).toEqual([502, 200]);
    expect(mm.listed.has('com.example.hello')).toBe(true);
  });

  it('leaves other paths alone and answers a Mattermost-style error by default', async () => {
    // Prepare
    mm.failNext(INSTALL_APP_PATH, 500);

    // Act
    const listed = await post(UPDATE_APP_LISTING_PATH, listing(lambdaManifest));
    const install = await post(INSTALL_APP_PATH, { app_id: 'com.example.hello', deploy_type: 'aws_lambda', remote_oauth2: {} });

    // Assess
    expect(listed.status).toBe(200);
    expect(install).toMatchObject({ status: 500, body: { status_code: 500 } });
    expect(mm.installed.size).toBe(0);
  });
});

describe('routing', () => {
  it('answers 404 to an unknown path and records it', async () => {
    // Act
    const response = await post('/api/v4/users/me', {});

    // Assess
    expect(response.status).toBe(404);
    expect(mm.requests).toEqual([expect.objectContaining({ path: '/api/v4/users/me', status: 404 })]);
  });
});
