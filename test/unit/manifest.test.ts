import { fileURLToPath } from 'node:url';
import yauzl from 'yauzl';
import { describe, expect, it } from 'vitest';
import { BundleValidationError, formatError, type ErrorDetail } from '../../src/core/errors';
import {
  MAX_MANIFEST_BYTES,
  awsLambdaFunctions,
  callOf,
  deployTypes,
  httpUrlProblem,
  manifestIssues,
  parseManifest,
  staticPathProblem,
  type Manifest,
} from '../../src/core/manifest';

const FIXTURE = fileURLToPath(new URL('../../../shared/fixtures/test_aws_bundle.zip', import.meta.url));

/** The bytes of one entry of a zip file. */
async function readZipEntry(zipPath: string, name: string): Promise<Buffer> {
  const zip = await yauzl.openPromise(zipPath, { lazyEntries: true });
  try {
    for await (const entry of zip.eachEntry()) {
      if (entry.fileName !== name) continue;
      const chunks: Buffer[] = [];
      for await (const chunk of await zip.openReadStreamPromise(entry)) chunks.push(chunk as Buffer);
      return Buffer.concat(chunks);
    }
  } finally {
    zip.close();
  }
  throw new Error(`${name} not found in ${zipPath}`);
}

/** A small valid manifest; each test changes what it is about. */
function validManifest(): Record<string, unknown> {
  return {
    app_id: 'hello-serverless',
    version: 'v1.2.0',
    display_name: 'Hello, serverless!',
    homepage_url: 'https://github.com/mattermost/mattermost-plugin-apps',
    aws_lambda: {
      functions: [{ path: '/', name: 'hello-serverless', handler: 'hello-serverless', runtime: 'go1.x' }],
    },
  };
}

type Change = (m: Record<string, unknown>) => void;

function changed(change: Change): Record<string, unknown> {
  const m = validManifest();
  change(m);
  return m;
}

/** Runs `fn`, which must throw, and returns the error. */
function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected an error');
}

describe('the peer fixture manifest (test_aws_bundle.zip)', () => {
  it('is valid and keeps the legacy app_type and root_url keys', async () => {
    // Prepare
    const bytes = await readZipEntry(FIXTURE, 'manifest.json');

    // Act
    const manifest = parseManifest(bytes);

    // Assess
    expect(manifest.app_id).toBe('com.mattermost.servicenow');
    expect(manifest.version).toBe('0.1.0');
    expect(manifest.display_name).toBe('ServiceNow');
    expect(manifest['app_type']).toBe('aws_lambda');
    expect(manifest['root_url']).toBe('');
    expect(manifest.requested_permissions).toEqual([]);
    expect(manifest.requested_locations).toEqual(['/command', '/channel_header', '/post_menu']);
    expect(awsLambdaFunctions(manifest).map((f) => f.name)).toEqual([
      'function1',
      'function2',
      'function with spaces',
      'function-with-very-very-very-very-very-very-very-long-name',
    ]);
    expect(awsLambdaFunctions(manifest)[1]).toEqual({
      path: '/js',
      name: 'function2',
      handler: 'index.handler',
      runtime: 'nodejs14.x',
    });
  });

  it('gives no issues from manifestIssues', async () => {
    // Prepare
    const value: unknown = JSON.parse((await readZipEntry(FIXTURE, 'manifest.json')).toString('utf8'));

    // Act
    const issues = manifestIssues(value);

    // Assess
    expect(issues).toEqual([]);
  });
});

describe('valid manifests', () => {
  it.each<[string, Change]>([
    ['the minimal manifest', () => {}],
    ['unicode letters in app_id (приложение, 20 bytes)', (m) => (m['app_id'] = 'приложение')],
    ['an app_id of exactly 32 bytes', (m) => (m['app_id'] = 'a'.repeat(32))],
    ['an app_id of exactly 3 bytes', (m) => (m['app_id'] = 'a.b')],
    ['an app_id of 16 two-byte letters (32 bytes)', (m) => (m['app_id'] = 'ж'.repeat(16))],
    ['unicode digits in app_id (Arabic-Indic)', (m) => (m['app_id'] = 'app٣')],
    ['an empty version', (m) => (m['version'] = '')],
    ['no version', (m) => delete m['version']],
    ['a version of exactly 10 bytes', (m) => (m['version'] = 'v00_00_000')],
    ['an http homepage_url with a port', (m) => (m['homepage_url'] = 'http://localhost:8065/plugins')],
    ['a homepage_url with query and fragment', (m) => (m['homepage_url'] = 'https://example.com/a?b=c#d')],
    ['an upper-case scheme', (m) => (m['homepage_url'] = 'HTTPS://example.com')],
    ['a homepage_url with an IPv6 host', (m) => (m['homepage_url'] = 'http://[::1]:8080/')],
    ['a description', (m) => (m['description'] = 'Says hello')],
    ['an icon in a subfolder of static/', (m) => (m['icon'] = 'icons/app icon.png')],
    ['an empty icon', (m) => (m['icon'] = '')],
    ['a bare-string Call', (m) => (m['bindings'] = '/bindings')],
    [
      'an object Call with expand and state',
      (m) =>
        (m['on_install'] = {
          path: '/install',
          expand: { app: 'all', acting_user: 'summary', channel: 'id', team: '', future_field: 'all' },
          state: { any: ['json', 1] },
        }),
    ],
    ['Go-style prefixed expand levels', (m) => (m['bindings'] = { expand: { acting_user: '+summary', post: '-all', team: 'none' } })],
    ['every Call field', (m) => {
      for (const f of ['bindings', 'on_install', 'on_version_changed', 'on_uninstall', 'on_enable', 'on_disable',
        'get_oauth2_connect_url', 'on_oauth2_complete', 'on_remote_webhook']) m[f] = `/${f}`;
    }],
    ['all five permissions', (m) => (m['requested_permissions'] = ['user_joined_channel_notification', 'act_as_bot', 'act_as_user', 'remote_oauth2', 'remote_webhooks'])],
    ['remote_webhooks with act_as_bot', (m) => (m['requested_permissions'] = ['remote_webhooks', 'act_as_bot'])],
    ['remote_oauth2 with act_as_user', (m) => (m['requested_permissions'] = ['act_as_user', 'remote_oauth2'])],
    ['an empty remote_webhook_auth_type', (m) => (m['remote_webhook_auth_type'] = '')],
    ['remote_webhook_auth_type jwt', (m) => (m['remote_webhook_auth_type'] = 'jwt')],
    ['requested_locations of any strings', (m) => (m['requested_locations'] = ['/in_post', 'anything'])],
    ['http only', (m) => {
      delete m['aws_lambda'];
      m['http'] = { root_url: 'https://app.example.com', use_jwt: true };
    }],
    ['plugin only', (m) => {
      delete m['aws_lambda'];
      m['plugin'] = { plugin_id: 'com.example.plugin' };
    }],
    ['open_faas only', (m) => {
      delete m['aws_lambda'];
      m['open_faas'] = { functions: [{ path: '/', name: 'hello' }] };
    }],
    ['unknown keys at every level', (m) => {
      m['SchemaVersion'] = 'v1.2.0';
      m['x_future'] = { anything: true };
      (m['aws_lambda'] as Record<string, unknown>)['memory'] = 512;
    }],
  ])('accepts %s', (_name, change) => {
    // Prepare
    const manifest = changed(change);

    // Act
    const issues = manifestIssues(manifest);

    // Assess
    expect(issues).toEqual([]);
  });

  it('keeps unknown keys, nested ones included, in what parseManifest returns', () => {
    // Prepare
    const json = JSON.stringify(
      changed((m) => {
        m['x_top'] = 1;
        m['bindings'] = { path: '/b', x_call: 2, expand: { x_expand: 'all' } };
        (m['aws_lambda'] as { functions: Array<Record<string, unknown>> }).functions[0]!['x_fn'] = 3;
      }),
    );

    // Act
    const manifest = parseManifest(json);

    // Assess
    expect(manifest['x_top']).toBe(1);
    expect(manifest.bindings).toEqual({ path: '/b', x_call: 2, expand: { x_expand: 'all' } });
    expect(awsLambdaFunctions(manifest)[0]!['x_fn']).toBe(3);
  });
});

describe('invalid manifests: every rule, with its path and message', () => {
  it.each<[string, Change, string | undefined, string]>([
    // app_id
    ['app_id missing', (m) => delete m['app_id'], 'app_id', 'app_id is required'],
    ['app_id not a string', (m) => (m['app_id'] = 42), 'app_id', 'app_id must be a string, got number 42'],
    ['app_id too short', (m) => (m['app_id'] = 'ab'), 'app_id', 'app_id must be 3 to 32 bytes long, got 2'],
    ['app_id empty', (m) => (m['app_id'] = ''), 'app_id', 'app_id must be 3 to 32 bytes long, got 0'],
    ['app_id of 33 bytes', (m) => (m['app_id'] = 'a'.repeat(33)), 'app_id', 'app_id must be 3 to 32 bytes long, got 33'],
    [
      'app_id of 11 three-byte letters (33 bytes)',
      (m) => (m['app_id'] = '日本語アプリケーション'),
      'app_id',
      'app_id must be 3 to 32 bytes long, got 33',
    ],
    ['app_id with a space', (m) => (m['app_id'] = 'my app'), 'app_id', 'app_id contains " ", which is not allowed'],
    ['app_id with a slash and a colon', (m) => (m['app_id'] = 'a/b:c'), 'app_id', 'contains "/", ":", which are not allowed'],
    ['app_id with a combining mark', (m) => (m['app_id'] = 'cafe\u0301'), 'app_id', 'contains "\u0301"'],
    // version
    ['version of 11 bytes', (m) => (m['version'] = 'v00_00_0000'), 'version', 'version must be at most 10 bytes long (the v00_00_000 format), got 11'],
    ['version of 6 two-byte letters', (m) => (m['version'] = 'вввввв'), 'version', 'got 12'],
    ['version with a plus', (m) => (m['version'] = '1.0.0+b1'), 'version', 'version contains "+"'],
    ['version a number', (m) => (m['version'] = 1), 'version', 'version must be a string'],
    // homepage_url
    ['homepage_url missing', (m) => delete m['homepage_url'], 'homepage_url', 'homepage_url is required'],
    ['homepage_url empty', (m) => (m['homepage_url'] = ''), 'homepage_url', 'homepage_url must not be empty'],
    ['homepage_url relative', (m) => (m['homepage_url'] = 'example.com/app'), 'homepage_url', 'homepage_url must be an absolute http or https URL'],
    ['homepage_url a path only', (m) => (m['homepage_url'] = '/app'), 'homepage_url', 'has no scheme'],
    ['homepage_url ftp', (m) => (m['homepage_url'] = 'ftp://example.com'), 'homepage_url', 'has the scheme "ftp", not http or https'],
    ['homepage_url without host', (m) => (m['homepage_url'] = 'https:///path'), 'homepage_url', 'has no host'],
    ['homepage_url opaque', (m) => (m['homepage_url'] = 'https:example.com'), 'homepage_url', 'has no host'],
    ['homepage_url bad port', (m) => (m['homepage_url'] = 'https://example.com:80a'), 'homepage_url', 'invalid port ":80a"'],
    ['homepage_url space in host', (m) => (m['homepage_url'] = 'https://exa mple.com'), 'homepage_url', 'not allowed in a host'],
    ['homepage_url bad escape', (m) => (m['homepage_url'] = 'https://example.com/%zz'), 'homepage_url', 'invalid percent-escape'],
    ['homepage_url control character', (m) => (m['homepage_url'] = 'https://example.com/\n'), 'homepage_url', 'control character'],
    // display_name, description
    ['display_name missing', (m) => delete m['display_name'], 'display_name', 'display_name is required'],
    ['display_name empty', (m) => (m['display_name'] = ''), 'display_name', 'display_name must not be empty'],
    ['description not a string', (m) => (m['description'] = ['x']), 'description', 'description must be a string, got an array'],
    // icon
    ['icon escaping static/', (m) => (m['icon'] = '../manifest.json'), 'icon', 'icon must be a path inside static/ without ".." segments'],
    ['icon with a .. segment inside', (m) => (m['icon'] = 'a/../b.png'), 'icon', 'without ".." segments'],
    ['icon with an escaped ..', (m) => (m['icon'] = 'X%252F..%2F..%2525252FY'), 'icon', 'without ".." segments'],
    ['icon absolute', (m) => (m['icon'] = '/etc/passwd'), 'icon', 'icon must be a path relative to static/, not an absolute path'],
    ['icon absolute once unescaped', (m) => (m['icon'] = '%2Ficon.png'), 'icon', 'not an absolute path'],
    ['icon with a bad escape', (m) => (m['icon'] = 'icon%zz.png'), 'icon', 'icon has an invalid percent-escape'],
    ['icon that names static/ itself', (m) => (m['icon'] = '.'), 'icon', 'icon must name a file inside static/'],
    // Calls
    ['a Call that is a number', (m) => (m['on_install'] = 7), 'on_install', 'on_install must be a path string or an object {path, expand, state}, got number 7'],
    ['a Call that is an array', (m) => (m['on_remote_webhook'] = ['/x']), 'on_remote_webhook', 'got an array'],
    ['a Call path that is not a string', (m) => (m['bindings'] = { path: 1 }), 'bindings.path', 'bindings.path must be a string'],
    ['a Call expand that is not an object', (m) => (m['on_uninstall'] = { expand: 'all' }), 'on_uninstall.expand', 'on_uninstall.expand must be an object'],
    ['an unknown expand level', (m) => (m['get_oauth2_connect_url'] = { expand: { acting_user: 'everything' } }), 'get_oauth2_connect_url.expand.acting_user', 'get_oauth2_connect_url.expand.acting_user must be an expand level'],
    ['an expand level that is not a string', (m) => (m['on_enable'] = { expand: { app: true } }), 'on_enable.expand.app', 'on_enable.expand.app must be a string, got boolean true'],
    ['an odd expand key', (m) => (m['on_disable'] = { expand: { 'acting user': 'x' } }), 'on_disable.expand["acting user"]', 'must be an expand level'],
    // requested_permissions
    ['an unknown permission', (m) => (m['requested_permissions'] = ['act_as_bot', 'act_as_admin']), 'requested_permissions[1]', 'requested_permissions[1] is not a known permission: "act_as_admin"'],
    ['requested_permissions not an array', (m) => (m['requested_permissions'] = 'act_as_bot'), 'requested_permissions', 'must be an array'],
    ['remote_webhooks without act_as_bot', (m) => (m['requested_permissions'] = ['remote_webhooks']), 'requested_permissions', 'requested_permissions has "remote_webhooks", which requires "act_as_bot"'],
    ['remote_oauth2 without act_as_user', (m) => (m['requested_permissions'] = ['remote_oauth2', 'act_as_bot']), 'requested_permissions', 'has "remote_oauth2", which requires "act_as_user"'],
    ['user_joined_channel_notification without act_as_bot', (m) => (m['requested_permissions'] = ['user_joined_channel_notification']), 'requested_permissions', 'has "user_joined_channel_notification", which requires "act_as_bot"'],
    // remote_webhook_auth_type, requested_locations
    ['an unknown remote_webhook_auth_type', (m) => (m['remote_webhook_auth_type'] = 'basic'), 'remote_webhook_auth_type', 'remote_webhook_auth_type must be one of "none", "secret", "jwt" (or empty), got the string "basic"'],
    ['requested_locations with a number', (m) => (m['requested_locations'] = ['/command', 3]), 'requested_locations[1]', 'requested_locations[1] must be a string'],
    // aws_lambda
    ['aws_lambda without functions', (m) => (m['aws_lambda'] = {}), 'aws_lambda.functions', 'aws_lambda.functions must list at least one function'],
    ['aws_lambda with no function', (m) => (m['aws_lambda'] = { functions: [] }), 'aws_lambda.functions', 'aws_lambda.functions must list at least one function'],
    ['aws_lambda a string', (m) => (m['aws_lambda'] = 'yes'), 'aws_lambda', 'aws_lambda must be an object, got the string "yes"'],
    ['aws_lambda functions an object', (m) => (m['aws_lambda'] = { functions: {} }), 'aws_lambda.functions', 'must be an array'],
    ['a function runtime empty', (m) => (m['aws_lambda'] = { functions: [{ path: '/', name: 'f', handler: 'h', runtime: '' }] }), 'aws_lambda.functions[0].runtime', 'aws_lambda.functions[0].runtime must not be empty'],
    ['a function name missing', (m) => (m['aws_lambda'] = { functions: [{ path: '/', handler: 'h', runtime: 'go1.x' }] }), 'aws_lambda.functions[0].name', 'aws_lambda.functions[0].name is required'],
    ['a function path empty', (m) => (m['aws_lambda'] = { functions: [{ path: '', name: 'f', handler: 'h', runtime: 'go1.x' }] }), 'aws_lambda.functions[0].path', 'must not be empty'],
    ['a function handler a number', (m) => (m['aws_lambda'] = { functions: [{ path: '/', name: 'f', handler: 1, runtime: 'go1.x' }] }), 'aws_lambda.functions[0].handler', 'must be a string'],
    ['a function that is a string', (m) => (m['aws_lambda'] = { functions: ['f'] }), 'aws_lambda.functions[0]', 'aws_lambda.functions[0] must be an object'],
    // http, plugin, open_faas
    ['http without root_url', (m) => (m['http'] = {}), 'http.root_url', 'http.root_url is required'],
    ['http with a bad root_url', (m) => (m['http'] = { root_url: 'localhost:4000' }), 'http.root_url', 'http.root_url must be an absolute http or https URL'],
    ['http use_jwt not a boolean', (m) => (m['http'] = { root_url: 'https://x.example', use_jwt: 'yes' }), 'http.use_jwt', 'http.use_jwt must be true or false'],
    ['plugin without plugin_id', (m) => (m['plugin'] = {}), 'plugin.plugin_id', 'plugin.plugin_id is required'],
    ['plugin with an empty plugin_id', (m) => (m['plugin'] = { plugin_id: '' }), 'plugin.plugin_id', 'plugin.plugin_id must not be empty'],
    ['open_faas with no function', (m) => (m['open_faas'] = { functions: [] }), 'open_faas.functions', 'open_faas.functions must list at least one function'],
    ['open_faas function without name', (m) => (m['open_faas'] = { functions: [{ path: '/' }] }), 'open_faas.functions[0].name', 'is required'],
    // the manifest as a whole
    ['no deploy section', (m) => delete m['aws_lambda'], undefined, 'manifest has no deployment information (http, aws_lambda, open_faas, etc.)'],
  ])('rejects %s', (_name, change, path, fragment) => {
    // Prepare
    const manifest = changed(change);

    // Act
    const issues = manifestIssues(manifest);

    // Assess
    expect(issues).toHaveLength(1);
    expect(issues[0]!.path).toBe(path);
    expect(issues[0]!.message).toContain(fragment);
  });

  it.each<[string, unknown]>([
    ['an array', []],
    ['a string', 'manifest'],
    ['null', null],
  ])('rejects a manifest that is %s', (_name, value) => {
    // Act
    const issues = manifestIssues(value);

    // Assess
    expect(issues).toEqual([{ message: expect.stringMatching(/^manifest must be an object, got /) as unknown as string }]);
  });
});

describe('legacy v0.x manifests', () => {
  it('rejects an array-valued aws_lambda, saying it is the legacy format and how to write it', () => {
    // Prepare: the v0.2–v0.6 layout, functions as a bare array next to app_type
    const manifest = changed((m) => {
      m['app_type'] = 'aws_lambda';
      m['aws_lambda'] = [{ path: '/', name: 'f', handler: 'h', runtime: 'go1.x' }];
    });

    // Act
    const issues = manifestIssues(manifest);

    // Assess
    expect(issues).toHaveLength(1);
    expect(issues[0]!.path).toBe('aws_lambda');
    expect(issues[0]!.message).toContain('aws_lambda is a bare array of functions, the legacy v0.x manifest format');
    expect(issues[0]!.message).toContain('"aws_lambda": {"functions": [ ... ]}');
  });
});

describe('all problems are reported together', () => {
  it('lists every invalid field of one manifest, in field order', () => {
    // Prepare
    const manifest = {
      app_id: 'x',
      version: 'v1.0.0-beta.1',
      homepage_url: 'ftp://example.com',
      icon: '../icon.png',
      bindings: { expand: { app: 'lots' } },
      requested_permissions: ['remote_webhooks', 'bogus'],
      remote_webhook_auth_type: 'basic',
      aws_lambda: {
        functions: [
          { path: '/', name: 'ok', handler: 'h', runtime: 'go1.x' },
          { path: '/x', name: '', handler: 'h' },
        ],
      },
    };

    // Act
    const issues = manifestIssues(manifest);

    // Assess
    expect(issues.map((d) => d.path)).toEqual([
      'app_id',
      'version',
      'homepage_url',
      'display_name',
      'icon',
      'bindings.expand.app',
      'requested_permissions[1]',
      'remote_webhook_auth_type',
      'aws_lambda.functions[1].name',
      'aws_lambda.functions[1].runtime',
    ]);
    expect(issues.find((d) => d.path === 'aws_lambda.functions[1].runtime')!.message).toBe(
      'aws_lambda.functions[1].runtime is required',
    );
  });

  it('reports cross-field problems with field problems (no deploy section, permission dependency)', () => {
    // Prepare
    const manifest = changed((m) => {
      delete m['aws_lambda'];
      m['app_id'] = 'a b';
      m['requested_permissions'] = ['remote_oauth2'];
    });

    // Act
    const issues = manifestIssues(manifest);

    // Assess
    expect(issues).toEqual<ErrorDetail[]>([
      { path: 'app_id', message: expect.stringContaining('app_id contains " "') as unknown as string },
      { path: 'requested_permissions', message: expect.stringContaining('requires "act_as_user"') as unknown as string },
      { message: 'manifest has no deployment information (http, aws_lambda, open_faas, etc.)' },
    ]);
  });

  it('reports both the length and the characters of one app_id', () => {
    // Act
    const issues = manifestIssues(changed((m) => (m['app_id'] = '!')));

    // Assess
    expect(issues.map((d) => d.message)).toEqual([
      'app_id must be 3 to 32 bytes long, got 1',
      'app_id contains "!", which is not allowed: use only letters, digits, "-", "_" and "."',
    ]);
  });
});

describe('parseManifest', () => {
  it('accepts a Buffer and a string alike', () => {
    // Prepare
    const json = JSON.stringify(validManifest());

    // Act
    const fromString = parseManifest(json);
    const fromBuffer = parseManifest(Buffer.from(json));

    // Assess
    expect(fromBuffer).toEqual(fromString);
    expect(fromString.app_id).toBe('hello-serverless');
  });

  it('throws a BundleValidationError listing every problem', () => {
    // Prepare
    const json = JSON.stringify(changed((m) => {
      m['app_id'] = 'ab';
      m['display_name'] = '';
    }));

    // Act
    const err = thrown(() => parseManifest(json));

    // Assess
    expect(err).toBeInstanceOf(BundleValidationError);
    const e = err as BundleValidationError;
    expect(e.message).toBe('manifest.json is invalid');
    expect(e.code).toBe('BUNDLE_VALIDATION_FAILED');
    expect(e.status).toBe(422);
    expect(e.details).toEqual([
      { path: 'app_id', message: 'app_id must be 3 to 32 bytes long, got 2' },
      { path: 'display_name', message: 'display_name must not be empty' },
    ]);
    expect(formatError(e)).toBe(
      'manifest.json is invalid\n  - app_id: app_id must be 3 to 32 bytes long, got 2\n  - display_name: display_name must not be empty',
    );
  });

  it.each<[string, string | Buffer, string]>([
    ['a syntax error', '{"app_id": "abc",}', 'manifest.json is not valid JSON'],
    ['an empty file', '', 'manifest.json is not valid JSON'],
    ['a truncated document', '{"app_id": ', 'manifest.json is not valid JSON'],
    ['a UTF-8 byte order mark in a Buffer', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(JSON.stringify(validManifest()))]), 'byte order mark'],
    ['a byte order mark in a string', `\uFEFF${JSON.stringify(validManifest())}`, 'byte order mark'],
  ])('reports invalid JSON (%s) as one detail', (_name, input, fragment) => {
    // Act
    const err = thrown(() => parseManifest(input));

    // Assess
    expect(err).toBeInstanceOf(BundleValidationError);
    const { details } = err as BundleValidationError;
    expect(details).toHaveLength(1);
    expect(details[0]!.message).toContain(fragment);
  });

  it.each<[string, string]>([
    ['{\n  "app_id": "abc"\n  "version": "1"\n}', "Expected ',' or '}' after property value at line 3, column 3"],
    ['{\n  "app_id": "abc",\n}', 'Expected double-quoted property name at line 3, column 1'],
    ['{"a": [1, 2,, 3]}', "Unexpected token ',' at line 1, column 13"],
    ['{"a": tru}', "Unexpected token '}' at line 1, column 7"],
    ['{"a": "x\ty"}', 'Bad control character in string literal at line 1, column 9'],
    ['{"a": 1} x', 'Unexpected non-whitespace character after JSON at line 1, column 10'],
    ['{"a": "\\q"}', 'Bad escaped character at line 1, column 9'],
    ['', 'Unexpected end of JSON input at line 1, column 1'],
  ])('locates the JSON syntax error in %j', (input, expected) => {
    // Act
    const err = thrown(() => parseManifest(input)) as BundleValidationError;

    // Assess
    expect(err.details).toEqual([{ message: `manifest.json is not valid JSON: ${expected}` }]);
  });

  it('rejects a manifest over 1 MiB before decoding it', () => {
    // Prepare: valid JSON padded with spaces to one byte over the limit
    const json = JSON.stringify(validManifest());
    const tooBig = json + ' '.repeat(MAX_MANIFEST_BYTES + 1 - json.length);
    const justFits = json + ' '.repeat(MAX_MANIFEST_BYTES - json.length);

    // Act
    const err = thrown(() => parseManifest(Buffer.from(tooBig))) as BundleValidationError;

    // Assess
    expect(err).toBeInstanceOf(BundleValidationError);
    expect(err.details).toEqual([{ message: 'manifest.json is 1048577 bytes, over the 1048576-byte (1 MiB) limit' }]);
    expect(parseManifest(justFits).app_id).toBe('hello-serverless');
  });

  it('counts the size of a string in UTF-8 bytes', () => {
    // Prepare: 349,526 three-byte characters are 1,048,578 bytes
    const json = JSON.stringify({ ...validManifest(), description: 'ж'.repeat(524_289) });

    // Act
    const err = thrown(() => parseManifest(json)) as BundleValidationError;

    // Assess
    expect(err.details[0]!.message).toMatch(/^manifest\.json is \d+ bytes, over the 1048576-byte/);
  });
});

describe('helpers', () => {
  it.each<[Manifest['bindings'], ReturnType<typeof callOf>]>([
    ['/bindings', { path: '/bindings' }],
    [{ path: '/b', expand: { app: 'all' } }, { path: '/b', expand: { app: 'all' } }],
    [undefined, undefined],
  ])('callOf(%j) is %j', (call, expected) => {
    // Act / Assess
    expect(callOf(call)).toEqual(expected);
  });

  it('awsLambdaFunctions is empty for a manifest without aws_lambda', () => {
    // Prepare
    const manifest = parseManifest(JSON.stringify(changed((m) => {
      delete m['aws_lambda'];
      m['http'] = { root_url: 'https://x.example' };
    })));

    // Act / Assess
    expect(awsLambdaFunctions(manifest)).toEqual([]);
    expect(deployTypes(manifest)).toEqual(['http']);
  });

  it.each<[string, string | undefined]>([
    ['https://example.com', undefined],
    ['http://user:p%40ss@example.com:8080/x', undefined],
    ['https://пример.рф/', undefined],
    ['https://example.com?', undefined],
    ['https://:443', undefined], // Go's Host is ":443", which is not empty
    ['*', 'has no scheme (it must start with http:// or https://)'],
    [':foo', 'has no scheme before ":"'],
    ['mailto:someone@example.com', 'has the scheme "mailto", not http or https'],
    ['https://exa%41mple.com', 'has a percent-escape "%41" that is not allowed in a host'],
    ['https://[::1', 'has a "[" without "]" in its host'],
    ['https://us er@example.com', 'has invalid characters in its user information'],
    ['https://example.com#frag', 'has the character "#", which is not allowed in a host'],
  ])('httpUrlProblem(%j) is %j (as Go url.ParseRequestURI + scheme + host)', (raw, expected) => {
    // Act / Assess
    expect(httpUrlProblem(raw)).toBe(expected);
  });

  it.each<[string, boolean]>([
    ['icon.png', true],
    ['a/b/c.png', true],
    ['./icon.png', true],
    ['..', false],
    ['a/..', false],
    ['X%252f..%252f..%252fmanifest', false],
    ['%2FX%2F..%2F..%2FY', false],
    ['/abs.png', false],
  ])('staticPathProblem(%j) accepts: %s', (p, ok) => {
    // Act / Assess
    expect(staticPathProblem(p) === undefined).toBe(ok);
  });
});
