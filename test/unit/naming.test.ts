import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { lambdaName, lambdaNameProblem, manifestKey, parseManifestKey, staticKey } from '../../src/core/naming';

describe('lambdaName (appsctl.md §2, byte for byte)', () => {
  it.each([
    ['com.mattermost.servicenow', '0.1.0', 'function1', 'com-mattermost-servicenow_0-1-0_function1'],
    ['com.mattermost.servicenow', '0.1.0', 'function with spaces', 'com-mattermost-servicenow_0-1-0_function-with-spaces'],
    ['testID', 'v00.00.000', 'main', 'testID_v00-00-000_main'],
    ['hello-serverless', 'v1.2.0', 'hello-serverless', 'hello-serverless_v1-2-0_hello-serverless'],
    // The sha256 fallback keeps the ORIGINAL (dotted) app id and version: an upstream bug we must reproduce.
    [
      'com.mattermost.servicenow',
      '0.1.0',
      'function-with-very-very-very-very-very-very-very-long-name',
      'com.mattermost.servicenow_0.1.0_95f51579baba92ea2a0a3ad98c24fcbc',
    ],
  ])('%s %s %s → %s', (appId, version, fn, expected) => {
    // Act
    const name = lambdaName(appId, version, fn);
    // Assess
    expect(name).toBe(expected);
  });

  it('hashes the sanitised long name and truncates to 64 − len(appID) − len(version) − 2', () => {
    // Prepare
    const appId = 'app';
    const version = 'v1';
    const fn = 'x'.repeat(80);
    const expectedHash = createHash('sha256').update(`app_v1_${fn}`).digest('hex').slice(0, 64 - 3 - 2 - 2);
    // Act
    const name = lambdaName(appId, version, fn);
    // Assess
    expect(name).toBe(`app_v1_${expectedHash}`);
    expect(name).toHaveLength(64);
  });

  it('keeps a name of exactly 64 characters as is', () => {
    const fn = 'f'.repeat(64 - 'app_v1_'.length);
    expect(lambdaName('app', 'v1', fn)).toBe(`app_v1_${fn}`);
  });
});

describe('S3 keys', () => {
  it.each([
    ['com.mattermost.servicenow', '0.1.0', 'static file with spaces.txt', 'static/com.mattermost.servicenow_0.1.0_app/static-file-with-spaces.txt'],
    ['hello-serverless', 'v1.2.0', 'test.txt', 'static/hello-serverless_v1.2.0_app/test.txt'],
    ['app', '1', 'img/a b/c.png', 'static/app_1_app/img/a-b/c.png'],
  ])('staticKey(%s, %s, %s) = %s', (appId, version, name, expected) => {
    expect(staticKey(appId, version, name)).toBe(expected);
  });

  it('manifestKey is not sanitised', () => {
    expect(manifestKey('com.mattermost.servicenow', '0.1.0')).toBe('manifests/com.mattermost.servicenow_0.1.0.json');
  });

  it.each([
    ['manifests/com.mattermost.servicenow_0.1.0.json', { appId: 'com.mattermost.servicenow', version: '0.1.0' }],
    // The split is at the LAST underscore, so an app id may contain underscores.
    ['manifests/my_app_v1.json', { appId: 'my_app', version: 'v1' }],
    ['manifests/hello_.json', { appId: 'hello', version: '' }],
    ['manifests/noversion.json', undefined],
    ['manifests/app_1.txt', undefined],
    ['static/app_1.json', undefined],
  ])('parseManifestKey(%s)', (key, expected) => {
    expect(parseManifestKey(key)).toEqual(expected);
  });
});

describe('lambdaNameProblem', () => {
  it.each([
    ['com-mattermost-servicenow_0-1-0_function1', undefined],
    ['com.mattermost.servicenow_0.1.0_95f51579baba92ea2a0a3ad98c24fcbc', 'contains "."'],
    ['a'.repeat(65), 'over Lambda\'s 64'],
    ['', 'contains'],
  ])('%s', (name, fragment) => {
    const problem = lambdaNameProblem(name);
    if (fragment === undefined) expect(problem).toBeUndefined();
    else expect(problem).toContain(fragment);
  });
});
