import { AwsOperationError, NotFoundError } from './errors';
import { GoMap, goMarshal } from './gojson';
import { lambdaName, parseManifestKey, staticKey } from './naming';
import type { LambdaPort, S3Port } from './ports';

/**
 * The Mattermost server's side of an AWS app (appsctl.md §6, upstream/upaws/upstream.go): how it picks the Lambda for a
 * call, what it sends, how it reads the answer, and where it looks for static files and manifests. `appsctl aws test`
 * plays the server with the invoke user's credentials, so what we deploy is checked the way the server will use it.
 * Everything here must stay byte for byte what the server does, or a test that passes here fails in Mattermost.
 */

export interface UpstreamFunction {
  readonly path: string;
  readonly name: string;
  readonly handler: string;
  readonly runtime: string;
}

/** The part of a manifest the upstream reads; a parsed `Manifest` fits it as is. */
export interface UpstreamApp {
  readonly app_id: string;
  readonly version?: string | undefined;
  readonly aws_lambda?: { readonly functions: readonly UpstreamFunction[] } | undefined;
}

/** The app the original `aws test` commands hard-code (cmd/appsctl/aws.go `helloServerless()`, appsctl.md §3). */
export const HELLO_APP: UpstreamApp = Object.freeze({
  app_id: 'hello-serverless',
  version: 'v1.2.0',
  aws_lambda: Object.freeze({
    functions: Object.freeze([Object.freeze({ path: '/', name: 'hello-serverless', handler: 'hello-serverless', runtime: 'go1.x' })]),
  }),
});

/**
 * `match(callPath, manifest)`: the function whose `path` is a plain string prefix of the call path (no segment
 * boundary, so `/top` also catches `/topic`), the longest one winning and ties keeping the first. Go starts from an
 * empty best match and requires a strictly longer path, so a function with an empty path could never be chosen;
 * lengths are bytes, as Go's len().
 */
export function matchFunction(callPath: string, app: UpstreamApp): string {
  let matched: UpstreamFunction | undefined;
  let matchedLength = 0;
  for (const f of app.aws_lambda?.functions ?? []) {
    const length = Buffer.byteLength(f.path, 'utf8');
    if (callPath.startsWith(f.path) && length > matchedLength) {
      matched = f;
      matchedLength = length;
    }
  }
  if (!matched) {
    throw new NotFoundError(`no aws_lambda function of ${app.app_id} ${app.version ?? ''} serves call path ${JSON.stringify(callPath)}`);
  }
  return lambdaName(app.app_id, app.version ?? '', matched.name);
}

/** The fields of apps.CallRequest we can send; anything else stays at Go's zero value. */
export interface CallRequest {
  call: { path: string; expand?: Record<string, string>; state?: unknown };
  values?: Record<string, unknown>;
  /** Marshalled as given; absent means Go's zero `apps.Context` (ZERO_CONTEXT). */
  context?: Record<string, unknown>;
  rawCommand?: string;
  selectedField?: string;
  query?: string;
}

/**
 * What Go marshals for a zero `apps.Context` at HEAD: `context` has no pointer, so omitempty cannot drop it, and
 * inside it only the tags without omitempty survive — `app_id` (UserAgentContext), then `mattermost_site_url`,
 * `app_path`, `bot_user_id` and the `oauth2` struct, whose own fields are all omitempty (ExpandedContext).
 */
export const ZERO_CONTEXT: Readonly<Record<string, unknown>> = Object.freeze({
  app_id: '',
  mattermost_site_url: '',
  app_path: '',
  bot_user_id: '',
  oauth2: Object.freeze({}),
});

/**
 * `json.Marshal(apps.CallRequest)`: the embedded Call's fields first, then the request's, with Go's omitempty rules
 * (an empty string or map is dropped, a nil interface is dropped but any set `state` is kept). For
 * `{call: {path: '/ping'}}` this is `{"path":"/ping","context":{…ZERO_CONTEXT}}`.
 */
export function callRequestJson(creq: CallRequest): string {
  const nonEmpty = (s: string | undefined) => (s ? s : undefined);
  return goMarshal({
    path: nonEmpty(creq.call.path),
    expand: creq.call.expand ?? undefined,
    state: creq.call.state ?? undefined,
    values: creq.values && Object.keys(creq.values).length > 0 ? new GoMap(creq.values) : undefined,
    context: creq.context ?? ZERO_CONTEXT,
    raw_command: nonEmpty(creq.rawCommand),
    selected_field: nonEmpty(creq.selectedField),
    query: nonEmpty(creq.query),
  });
}

/**
 * The Invoke payload, `apps.HTTPCallRequest` (a cut-down API Gateway proxy event):
 * `{"path":…,"httpMethod":"POST","headers":{"Content-Type":"application/json"},"body":"<CallRequest JSON>"}`.
 * `rawQuery` is omitempty and a CallRequest never carries one, so it never appears.
 */
export function invokePayload(creq: CallRequest): string {
  return goMarshal({
    path: creq.call.path,
    httpMethod: 'POST',
    headers: new GoMap({ 'Content-Type': 'application/json' }),
    body: callRequestJson(creq),
  });
}

/**
 * `HTTPCallResponseFromJSON`: decodes `{statusCode, headers, isBase64Encoded, body}` and returns `body` as is (never
 * base64-decoded, whatever the flag says). A status other than 200 is an error; so is Lambda's own error payload
 * (`{"errorMessage":…,"errorType":…}`), which has no statusCode and so reads as 0. Like Go, keys match
 * case-insensitively, unknown keys are ignored and `null` leaves a field at its zero value.
 */
export function decodeInvokeResponse(payloadText: string): string {
  let value: unknown;
  try {
    value = JSON.parse(payloadText);
  } catch (err) {
    throw decodeError((err as Error).message, err);
  }
  let statusCode = 0;
  let body = '';
  if (value !== null) {
    if (typeof value !== 'object' || Array.isArray(value)) throw decodeError(`json: cannot unmarshal ${jsonType(value)} into Go value of type apps.HTTPCallResponse`);
    for (const [key, v] of Object.entries(value)) {
      const field = HTTP_CALL_RESPONSE_FIELDS[key.toLowerCase()];
      if (!field || v === null) continue;
      if (!field.accepts(v)) throw decodeError(`json: cannot unmarshal ${jsonType(v)} into Go struct field HTTPCallResponse.${field.name} of type ${field.goType}`);
      if (field.name === 'statusCode') statusCode = v as number;
      if (field.name === 'body') body = v as string;
    }
  }
  if (statusCode !== 200) throw new AwsOperationError(`function failed with status code ${statusCode}, body ${body}`);
  return body;
}

const isStringMap = (v: unknown) => typeof v === 'object' && v !== null && !Array.isArray(v) && Object.values(v).every((x) => x === null || typeof x === 'string');
const HTTP_CALL_RESPONSE_FIELDS: Record<string, { name: string; goType: string; accepts: (v: unknown) => boolean }> = {
  statuscode: { name: 'statusCode', goType: 'int', accepts: (v) => typeof v === 'number' && Number.isSafeInteger(v) },
  headers: { name: 'headers', goType: 'map[string]string', accepts: isStringMap },
  isbase64encoded: { name: 'isBase64Encoded', goType: 'bool', accepts: (v) => typeof v === 'boolean' },
  body: { name: 'body', goType: 'string', accepts: (v) => typeof v === 'string' },
};

function decodeError(reason: string, cause?: unknown): AwsOperationError {
  return new AwsOperationError(`error decoding JSON-encoded HTTP response: ${reason}`, cause === undefined ? {} : { cause });
}

function jsonType(v: unknown): string {
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'object') return 'object';
  return typeof v === 'boolean' ? 'bool' : typeof v;
}

/** `Roundtrip` for a synchronous call with only a path, as `aws test lambda` sends: the decoded response body. */
export async function callLambda(lambda: LambdaPort, app: UpstreamApp, callPath: string): Promise<string> {
  const name = matchFunction(callPath, app);
  // FunctionError is not looked at: Go reads the payload only, and an error payload fails decoding with status 0.
  const { payload } = await lambda.invoke(name, invokePayload({ call: { path: callPath } }));
  return decodeInvokeResponse(payload);
}

/**
 * `apps.CallResponse` compared with `==` to `NewTextResponse(text)`, after a `json.Unmarshal` whose error is ignored:
 * fields that decode keep their value, a field of the wrong JSON type stays zero, and every other field must be zero
 * too. Go would panic comparing a `data` that is an object or array; we call that unequal.
 */
export function isTextResponse(data: string, text: string): boolean {
  let value: unknown;
  try {
    value = JSON.parse(data);
  } catch {
    return false;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const got: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) got[key.toLowerCase()] = v;
  const str = (k: string) => (typeof got[k] === 'string' ? (got[k] as string) : '');
  const isSet = (k: string) => got[k] !== undefined && got[k] !== null;
  const pointerSet = (k: string) => typeof got[k] === 'object' && got[k] !== null && !Array.isArray(got[k]);
  return (
    str('type') === 'ok' &&
    str('text') === text &&
    !isSet('data') &&
    str('navigate_to_url') === '' &&
    got['use_external_browser'] !== true &&
    !pointerSet('call') &&
    !pointerSet('form')
  );
}

/**
 * `GetStatic(app, path)`: the object at `static/<app_id>_<version>_app/<path, spaces → ->`, read as text. The server
 * answers HTTP 400 for any failure; a missing object is a NotFoundError here so the CLI can say so.
 */
export async function getStatic(s3: S3Port, app: UpstreamApp, path: string): Promise<string> {
  const key = staticKey(app.app_id, app.version ?? '', path);
  const obj = await s3.getObjectText(key);
  if (!obj) throw new NotFoundError(`can't download from S3:bucket:${s3.bucket}, path:${path}: no object s3://${s3.bucket}/${key}`);
  return obj.text;
}

/**
 * `ListS3Apps(prefix)`: the app IDs of every `manifests/<prefix>…` key that parses as a manifest key, deduplicated and
 * sorted by bytes (Go's sort.Strings). Go lists one ListObjects page (≤ 1,000 keys); listKeys reads them all.
 */
export async function listS3Apps(s3: S3Port, prefix: string): Promise<string[]> {
  const listPrefix = `manifests/${prefix}`;
  const ids = new Set<string>();
  for (const { key } of await s3.listKeys(listPrefix)) {
    const parsed = parseManifestKey(key);
    if (parsed) ids.add(parsed.appId);
  }
  if (ids.size === 0) throw new NotFoundError(`${prefix}: not found: no app manifest under s3://${s3.bucket}/${listPrefix}`);
  return [...ids].sort((a, b) => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8')));
}
