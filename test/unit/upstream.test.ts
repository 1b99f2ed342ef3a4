import { describe, expect, it } from 'vitest';
import { AwsOperationError, NotFoundError } from '../../src/core/errors';
import type { LambdaPort, S3Port } from '../../src/core/ports';
import {
  callLambda,
  callRequestJson,
  decodeInvokeResponse,
  getStatic,
  HELLO_APP,
  invokePayload,
  isTextResponse,
  listS3Apps,
  matchFunction,
  type UpstreamApp,
} from '../../src/core/upstream';

const fn = (path: string, name: string) => ({ path, name, handler: 'h', runtime: 'go1.x' });

/** The routing example of appsctl.md §6. */
const ROUTED: UpstreamApp = {
  app_id: 'app',
  version: 'v1',
  aws_lambda: { functions: [fn('/topic', 'topic'), fn('/topic/subtopic/', 'subtopic'), fn('/other', 'other'), fn('/', 'root')] },
};

describe('HELLO_APP', () => {
  it('routes /ping to the Lambda the original test commands call', () => {
    expect(matchFunction('/ping', HELLO_APP)).toBe('hello-serverless_v1-2-0_hello-serverless');
  });
});

describe('matchFunction', () => {
  it.each([
    ['/topic/other/x', 'app_v1_topic'],
    ['/different', 'app_v1_root'],
    ['/topic/subtopic/deeper', 'app_v1_subtopic'],
    // No segment boundary: a plain string prefix, as Go's strings.HasPrefix.
    ['/topical', 'app_v1_topic'],
    ['/topic/subtopic', 'app_v1_topic'],
    ['/other', 'app_v1_other'],
  ])('%s → %s', (callPath, expected) => {
    // Act
    const name = matchFunction(callPath, ROUTED);
    // Assess
    expect(name).toBe(expected);
  });

  it('keeps the first of two functions with the same path', () => {
    // Prepare
    const app: UpstreamApp = { app_id: 'app', version: 'v1', aws_lambda: { functions: [fn('/a', 'first'), fn('/a', 'second'), fn('/', 'root')] } };
    // Act
    const name = matchFunction('/a/b', app);
    // Assess
    expect(name).toBe('app_v1_first');
  });

  it('names the Lambda as the server does (dots replaced, spaces replaced)', () => {
    const app: UpstreamApp = { app_id: 'com.example.app', version: '0.1.0', aws_lambda: { functions: [fn('/', 'my function')] } };
    expect(matchFunction('/x', app)).toBe('com-example-app_0-1-0_my-function');
  });

  it.each([
    ['no function serves the path', { app_id: 'app', version: 'v1', aws_lambda: { functions: [fn('/only', 'only')] } }],
    ['the app has no aws_lambda section', { app_id: 'app', version: 'v1' }],
  ])('throws NotFoundError when %s', (_case, app: UpstreamApp) => {
    expect(() => matchFunction('/ping', app)).toThrow(NotFoundError);
  });
});

describe('invokePayload', () => {
  it('is the HTTPCallRequest of appsctl.md §6 for a call with only a path, byte for byte', () => {
    // Prepare
    const expectedBody = '{"path":"/ping","context":{"app_id":"","mattermost_site_url":"","app_path":"","bot_user_id":"","oauth2":{}}}';
    // Act
    const payload = invokePayload({ call: { path: '/ping' } });
    // Assess
    expect(payload).toBe(`{"path":"/ping","httpMethod":"POST","headers":{"Content-Type":"application/json"},"body":${JSON.stringify(expectedBody)}}`);
    expect(JSON.parse(payload)).toEqual({ path: '/ping', httpMethod: 'POST', headers: { 'Content-Type': 'application/json' }, body: expectedBody });
    expect(payload).not.toContain('rawQuery');
  });

  it('escapes as Go does (<, >, & as \\u00xx), in the body and again in the envelope', () => {
    // Act
    const payload = invokePayload({ call: { path: '/a<b>&c' } });
    // Assess
    expect(payload.startsWith('{"path":"/a\\u003cb\\u003e\\u0026c",')).toBe(true);
    expect(JSON.parse(JSON.parse(payload).body).path).toBe('/a<b>&c');
  });
});

describe('callRequestJson', () => {
  it.each([
    ['empty strings and maps are omitted', { call: { path: '/p' }, values: {}, rawCommand: '', selectedField: '', query: '' }, '{"path":"/p","context":{"app_id":"","mattermost_site_url":"","app_path":"","bot_user_id":"","oauth2":{}}}'],
    [
      'set fields keep the Go struct order, values as a sorted Go map',
      { call: { path: '/p', expand: { acting_user: 'all' }, state: 's' }, values: { b: 1, a: 'x' }, context: { app_id: 'x' }, rawCommand: '/cmd', selectedField: 'f', query: 'q' },
      '{"path":"/p","expand":{"acting_user":"all"},"state":"s","values":{"a":"x","b":1},"context":{"app_id":"x"},"raw_command":"/cmd","selected_field":"f","query":"q"}',
    ],
  ])('%s', (_case, creq, expected) => {
    expect(callRequestJson(creq)).toBe(expected);
  });
});

describe('decodeInvokeResponse', () => {
  it.each([
    ['a 200 response', '{"statusCode":200,"body":"{\\"type\\":\\"ok\\"}"}', '{"type":"ok"}'],
    ['a body flagged base64, taken as is', '{"statusCode":200,"isBase64Encoded":true,"body":"eyJ9"}', 'eyJ9'],
    ['keys in any case, as Go matches them', '{"StatusCode":200,"BODY":"x","headers":{"a":"b"}}', 'x'],
    ['a 200 without a body', '{"statusCode":200}', ''],
    ['unknown keys ignored', '{"statusCode":200,"body":"b","multiValueHeaders":{"x":["y"]}}', 'b'],
  ])('returns the body of %s', (_case, payload, expected) => {
    expect(decodeInvokeResponse(payload)).toBe(expected);
  });

  it.each([
    ['a 500', '{"statusCode":500,"body":"boom"}', 'function failed with status code 500, body boom'],
    ['a Lambda error payload (no statusCode → 0)', '{"errorMessage":"x","errorType":"y"}', 'function failed with status code 0, body '],
    ['JSON null', 'null', 'function failed with status code 0, body '],
    ['a 201', '{"statusCode":201,"body":"created"}', 'function failed with status code 201, body created'],
    ['a statusCode of the wrong type', '{"statusCode":"200","body":"x"}', 'error decoding JSON-encoded HTTP response: json: cannot unmarshal string into Go struct field HTTPCallResponse.statusCode of type int'],
    ['an array', '[]', 'error decoding JSON-encoded HTTP response: json: cannot unmarshal array into Go value of type apps.HTTPCallResponse'],
  ])('fails on %s', (_case, payload, message) => {
    // Act
    const act = () => decodeInvokeResponse(payload);
    // Assess
    expect(act).toThrow(AwsOperationError);
    expect(act).toThrow(message);
  });

  it('fails on text that is not JSON', () => {
    expect(() => decodeInvokeResponse('not json')).toThrow(/^error decoding JSON-encoded HTTP response: /);
  });
});

describe('isTextResponse', () => {
  it.each([
    ['{"type":"ok","text":"PONG"}', true],
    ['{"text":"PONG","type":"ok","unknown":1}', true],
    ['{"Type":"ok","TEXT":"PONG"}', true],
    ['{"type":"ok","text":"PONG","data":null}', true],
    // A field of the wrong type stays zero and the decode error is ignored, as in Go.
    ['{"type":"ok","text":"PONG","use_external_browser":"yes"}', true],
    ['{"type":"ok","text":"pong"}', false],
    ['{"type":"error","text":"PONG"}', false],
    ['{"type":"ok","text":"PONG","data":{"a":1}}', false],
    ['{"type":"ok","text":"PONG","navigate_to_url":"https://x"}', false],
    ['{"type":"ok","text":"PONG","use_external_browser":true}', false],
    ['{"type":"ok","text":"PONG","form":{}}', false],
    ['{"type":"ok","text":"PONG","call":{"path":"/x"}}', false],
    ['"PONG"', false],
    ['not json', false],
  ])('%s → %s', (data, expected) => {
    expect(isTextResponse(data, 'PONG')).toBe(expected);
  });
});

/** In-memory ports with only what the upstream calls. */
function fakeS3(objects: Record<string, string>): S3Port {
  return {
    bucket: 'bucket',
    getObjectText: async (key: string) => (key in objects ? { text: objects[key]! } : undefined),
    listKeys: async (prefix: string) => Object.keys(objects).filter((k) => k.startsWith(prefix)).map((key) => ({ key, size: objects[key]!.length })),
  } as unknown as S3Port;
}

describe('callLambda', () => {
  it('invokes the matched Lambda with the payload and returns the decoded body', async () => {
    // Prepare
    const calls: Array<[string, string]> = [];
    const lambda = {
      invoke: async (name: string, payload: string) => {
        calls.push([name, payload]);
        return { payload: JSON.stringify({ statusCode: 200, body: 'hi' }) };
      },
    } as unknown as LambdaPort;
    // Act
    const body = await callLambda(lambda, HELLO_APP, '/ping');
    // Assess
    expect(body).toBe('hi');
    expect(calls).toEqual([['hello-serverless_v1-2-0_hello-serverless', invokePayload({ call: { path: '/ping' } })]]);
  });
});

describe('getStatic', () => {
  it('reads static/<app_id>_<version>_app/<name, spaces → ->', async () => {
    // Prepare
    const s3 = fakeS3({ 'static/hello-serverless_v1.2.0_app/my-file.txt': 'content' });
    // Act
    const text = await getStatic(s3, HELLO_APP, 'my file.txt');
    // Assess
    expect(text).toBe('content');
  });

  it('throws NotFoundError naming the bucket and path when the object is missing', async () => {
    await expect(getStatic(fakeS3({}), HELLO_APP, 'test.txt')).rejects.toThrow(/can't download from S3:bucket:bucket, path:test\.txt/);
  });
});

describe('listS3Apps', () => {
  it('lists manifests/<prefix>…, dedups and sorts the app IDs by bytes, skipping keys that are not manifests', async () => {
    // Prepare
    const s3 = fakeS3({
      'manifests/hello-zeta_v1.json': '',
      'manifests/hello-serverless_v1.2.0.json': '',
      'manifests/hello-serverless_v1.1.0.json': '',
      'manifests/hello_with_underscores_v1.json': '',
      'manifests/hello-notes.txt': '',
      'manifests/other_v1.json': '',
      'static/hello-serverless_v1.2.0_app/test.txt': '',
    });
    // Act
    const ids = await listS3Apps(s3, 'hello');
    // Assess
    expect(ids).toEqual(['hello-serverless', 'hello-zeta', 'hello_with_underscores']);
  });

  it('throws NotFoundError when no manifest matches', async () => {
    await expect(listS3Apps(fakeS3({ 'manifests/other_v1.json': '' }), 'hello')).rejects.toThrow(NotFoundError);
  });
});
