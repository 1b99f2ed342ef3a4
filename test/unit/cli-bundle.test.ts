import { readFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appsctl } from '../support/cli';
import { buildBundle } from '../support/bundle-builder';
import { PEER_BUNDLE, PEER_PROVISION_JSON } from '../support/fixtures';

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cli-bundle-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const goodManifest = {
  app_id: 'hello-serverless',
  version: 'v1.2.0',
  display_name: 'Hello',
  homepage_url: 'https://example.com',
  aws_lambda: { functions: [{ path: '/', name: 'hello-serverless', handler: 'index.handler', runtime: 'nodejs22.x' }] },
};

describe('appsctl generate-terraform-data', () => {
  it.each([[['generate-terraform-data']], [['terraform', 'generate-data']]])('%j prints the peer fixture\'s expected output byte for byte, on stdout', async (command) => {
    // Prepare
    const expected = await readFile(PEER_PROVISION_JSON, 'utf8');

    // Act
    const run = await appsctl([...command, PEER_BUNDLE]);

    // Assess
    expect(run.code).toBe(0);
    expect(run.stdout).toBe(expected);
    expect(run.stderr).toBe('');
  });

  it('escapes like Go and sorts map keys by bytes', async () => {
    // Prepare: names with characters Go escapes in JSON
    const bundle = await buildBundle(dir, {
      fileName: 'escapes.zip',
      manifest: goodManifest,
      functions: { 'hello-serverless.zip': { 'index.js': '' } },
      statics: { 'b<&>.txt': 'x', 'a.txt': 'y' },
    });

    // Act
    const run = await appsctl(['generate-terraform-data', bundle]);

    // Assess
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain('\t\t"b\\u003c\\u0026\\u003e.txt": {\n\t\t\t"key": "static/hello-serverless_v1.2.0_app/b\\u003c\\u0026\\u003e.txt"');
    expect(run.stdout.indexOf('"a.txt"')).toBeLessThan(run.stdout.indexOf('"b\\u003c'));
  });

  it('fails with the Go validation problems, all at once', async () => {
    // Prepare: two manifest functions, one missing from the bundle, and a second problem in the manifest
    const bundle = await buildBundle(dir, {
      fileName: 'missing.zip',
      manifest: {
        ...goodManifest,
        aws_lambda: { functions: [...goodManifest.aws_lambda.functions, { path: '/x', name: 'other', handler: 'h', runtime: 'nodejs22.x' }] },
      },
      functions: { 'hello-serverless.zip': { 'index.js': '' } },
    });

    // Act
    const run = await appsctl(['generate-terraform-data', bundle]);

    // Assess
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toContain('different number of functions in the manifest and in the bundle: expected 2, found 1');
    expect(run.stderr).toContain('function "other" was not found in the bundle');
  });
});

describe('appsctl aws validate', () => {
  it('confirms a valid bundle', async () => {
    // Prepare
    const bundle = await buildBundle(dir, { fileName: 'ok.zip', manifest: goodManifest, functions: { 'hello-serverless.zip': { 'index.js': '' } }, statics: { 'test.txt': 'static pong' } });

    // Act
    const run = await appsctl(['aws', 'validate', bundle]);

    // Assess
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toBe('Bundle is valid! hello-serverless v1.2.0: 1 function, 1 static asset.\n');
  });

  it('rejects the peer fixture, naming the Lambda name AWS would refuse and how to fix it, without a stack trace', async () => {
    // Act
    const run = await appsctl(['aws', 'validate', PEER_BUNDLE]);

    // Assess
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toContain('"com.mattermost.servicenow_0.1.0_95f51579baba92ea2a0a3ad98c24fcbc", contains "."');
    expect(run.stderr).toContain('shorten the function name');
    expect(run.stderr).not.toMatch(/^\s+at /m);
  });

  it.each([
    ['not a zip', async () => writeFile(join(dir, 'junk.zip'), 'this is not a zip').then(() => join(dir, 'junk.zip')), /not a zip/i],
    ['no manifest', async () => buildBundle(dir, { fileName: 'nomanifest.zip', functions: { 'f.zip': { 'a.js': '' } } }), /no manifest found/],
    ['manifest field invalid', async () => buildBundle(dir, { fileName: 'badfield.zip', manifest: { ...goodManifest, app_id: 'x' }, functions: { 'hello-serverless.zip': { 'a.js': '' } } }), /app_id must be 3 to 32 bytes long/],
    ['unknown runtime', async () => buildBundle(dir, { fileName: 'runtime.zip', manifest: { ...goodManifest, aws_lambda: { functions: [{ ...goodManifest.aws_lambda.functions[0], runtime: 'node22' }] } }, functions: { 'hello-serverless.zip': { 'a.js': '' } } }), /runtime "node22" is not an AWS Lambda runtime/],
    ['entry escaping the bundle', async () => {
      const { writeRawZip } = await import('../support/raw-zip');
      return writeRawZip(join(dir, 'escape.zip'), [{ name: '../evil.txt', data: Buffer.from('x') }]);
    }, /\.\./],
  ])('explains %s in plain words (exit 1)', async (_case, make, pattern) => {
    // Prepare
    const bundle = await make();

    // Act
    const run = await appsctl(['aws', 'validate', bundle]);

    // Assess
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/^Error: /);
    expect(run.stderr).toMatch(pattern);
    expect(run.stderr).not.toMatch(/^\s+at /m);
  });
});

describe('global flags and help', () => {
  it.each([
    [['--help']],
    [['aws', '--help']],
    [['aws', 'validate', '--help']],
    [['aws', 'deploy', '--help']],
    [['generate-terraform-data', '--help']],
    [['terraform', 'generate-data', '--help']],
  ])('%j prints help and exits 0', async (args) => {
    const run = await appsctl(args);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^Usage: appsctl/);
  });

  it.each([
    [[], 'warning'],
    [['-q'], null],
  ])('%j controls warnings on stderr', async (flags, expected) => {
    // Prepare: a deprecated runtime is a warning, not an error
    const bundle = await buildBundle(dir, {
      fileName: `warn${flags.length}.zip`,
      manifest: { ...goodManifest, aws_lambda: { functions: [{ ...goodManifest.aws_lambda.functions[0], runtime: 'nodejs18.x' }] } },
      functions: { 'hello-serverless.zip': { 'a.js': '' } },
    });

    // Act
    const run = await appsctl([...flags, 'aws', 'validate', bundle]);

    // Assess
    expect(run.code).toBe(0);
    if (expected) expect(run.stderr).toContain('runtime nodejs18.x is deprecated');
    else expect(run.stderr).toBe('');
  });

  it('-v adds debug lines such as ignored files', async () => {
    const bundle = await buildBundle(dir, { fileName: 'verbose.zip', manifest: goodManifest, functions: { 'hello-serverless.zip': { 'a.js': '' } }, extra: { 'README.md': 'hi' } });
    const run = await appsctl(['-v', 'aws', 'validate', bundle]);
    expect(run.code).toBe(0);
    expect(run.stderr).toContain('ignored unknown file name=README.md');
  });

  it('refuses extra positional arguments', async () => {
    const run = await appsctl(['aws', 'validate', PEER_BUNDLE, 'extra']);
    expect(run.code).not.toBe(0);
    expect(run.stderr).toMatch(/too many arguments/);
  });
});

describe('all problems at once', () => {
  it('reports manifest field problems together with function and runtime problems', async () => {
    // Prepare: a missing homepage_url, an unknown runtime and a function missing from the bundle
    const { homepage_url: _h, ...noHomepage } = goodManifest;
    const bundle = await buildBundle(dir, {
      fileName: 'many.zip',
      manifest: {
        ...noHomepage,
        aws_lambda: { functions: [{ ...goodManifest.aws_lambda.functions[0], runtime: 'node22' }, { path: '/x', name: 'absent', handler: 'h', runtime: 'nodejs22.x' }] },
      },
      functions: { 'hello-serverless.zip': { 'a.js': '' } },
    });

    // Act
    const run = await appsctl(['aws', 'validate', bundle]);

    // Assess
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('homepage_url');
    expect(run.stderr).toContain('function "absent" was not found in the bundle');
    expect(run.stderr).toContain('runtime "node22" is not an AWS Lambda runtime');
    expect(run.stderr).toContain('different number of functions in the manifest and in the bundle: expected 2, found 1');
  });
});
