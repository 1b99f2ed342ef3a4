import { posix } from 'node:path';
import { z } from 'zod';
import { BundleValidationError, type ErrorDetail } from './errors';

/**
 * manifest.json, the HEAD schema of apps/manifest.go (appsctl.md §5) with the deploy sections embedded at the top level.
 *
 * The schemas never transform: what validates is exactly what was decoded, unknown keys included (legacy `app_type`,
 * `root_url`, future fields), so a caller may validate with `manifestIssues` and keep using its own decoded object.
 * A Call may therefore be a bare string; `callOf` gives the object form.
 *
 * Every problem is reported, not only the first. Each schema issue carries a predicate ("must not be empty") and
 * `manifestIssues` prefixes it with the field path, so messages read `aws_lambda.functions[1].runtime must not be empty`.
 */

/** `MaxManifestSize` in apps/manifest.go. */
export const MAX_MANIFEST_BYTES = 1024 * 1024;
export const MIN_APP_ID_BYTES = 3;
export const MAX_APP_ID_BYTES = 32;
/** `len("v00_00_000")`. */
export const MAX_VERSION_BYTES = 10;

export const PERMISSIONS = [
  'user_joined_channel_notification',
  'act_as_bot',
  'act_as_user',
  'remote_oauth2',
  'remote_webhooks',
] as const;
export type Permission = (typeof PERMISSIONS)[number];

/** Permission → the permission it cannot work without. */
export const PERMISSION_DEPENDENCIES: ReadonlyArray<readonly [Permission, Permission]> = [
  ['remote_webhooks', 'act_as_bot'],
  ['remote_oauth2', 'act_as_user'],
  ['user_joined_channel_notification', 'act_as_bot'],
];

export const REMOTE_WEBHOOK_AUTH_TYPES = ['none', 'secret', 'jwt'] as const;

/** The levels of ExpandLevel; Go's ParseExpandLevel also accepts `none` and a `+` (required) or `-` (optional) prefix. */
export const EXPAND_LEVELS = ['', 'id', 'summary', 'all'] as const;

export const CALL_FIELDS = [
  'bindings',
  'on_install',
  'on_version_changed',
  'on_uninstall',
  'on_enable',
  'on_disable',
  'get_oauth2_connect_url',
  'on_oauth2_complete',
  'on_remote_webhook',
] as const;
export type CallField = (typeof CALL_FIELDS)[number];

export const DEPLOY_SECTIONS = ['http', 'aws_lambda', 'plugin', 'open_faas'] as const;

// ---------------------------------------------------------------------------------------------------------------------
// Field rules. Messages are predicates: the field path is put in front of them by `manifestIssues`.

const nonEmptyString = z.string().refine((s) => s !== '', { message: 'must not be empty' });

/** `AppID.Validate` and `AppVersion.Validate`: bytes as in Go; runes that are letters (L*), numbers (N*), `-` `_` `.`. */
function badIdCharacters(s: string): string[] {
  const bad = new Set<string>();
  for (const ch of s) if (!/^[\p{L}\p{N}_.-]$/u.test(ch)) bad.add(ch);
  return [...bad];
}

function charactersProblem(s: string): string | undefined {
  const bad = badIdCharacters(s);
  if (bad.length === 0) return undefined;
  return (
    `contains ${bad.map(quoteChar).join(', ')}, which ${bad.length === 1 ? 'is' : 'are'} not allowed: ` +
    'use only letters, digits, "-", "_" and "."'
  );
}

export const AppIdSchema = z.string().superRefine((id, ctx) => {
  const n = byteLength(id);
  if (n < MIN_APP_ID_BYTES || n > MAX_APP_ID_BYTES) {
    const message = `must be ${MIN_APP_ID_BYTES} to ${MAX_APP_ID_BYTES} bytes long, got ${n}`;
    ctx.addIssue({ code: 'custom', message, input: id });
  }
  const chars = charactersProblem(id);
  if (chars) ctx.addIssue({ code: 'custom', message: chars, input: id });
});

export const AppVersionSchema = z.string().superRefine((v, ctx) => {
  const n = byteLength(v);
  if (n > MAX_VERSION_BYTES) {
    ctx.addIssue({
      code: 'custom',
      message: `must be at most ${MAX_VERSION_BYTES} bytes long (the v00_00_000 format), got ${n}`,
      input: v,
    });
  }
  const chars = charactersProblem(v);
  if (chars) ctx.addIssue({ code: 'custom', message: chars, input: v });
});

/** `httputils.IsValidURL`: url.ParseRequestURI, then scheme http or https, then a host. */
export const HttpUrlSchema = z.string().superRefine((raw, ctx) => {
  if (raw === '') {
    ctx.addIssue({ code: 'custom', message: 'must not be empty', input: raw });
    return;
  }
  const problem = httpUrlProblem(raw);
  if (problem) {
    const message = `must be an absolute http or https URL with a host: ${quote(raw)} ${problem}`;
    ctx.addIssue({ code: 'custom', message, input: raw });
  }
});

/** `icon`: a path relative to static/ (utils.CleanStaticPath), and no `..` segment at all. */
export const StaticPathSchema = z.string().superRefine((p, ctx) => {
  if (p === '') return; // Go skips the check for an empty icon
  const problem = staticPathProblem(p);
  if (problem) ctx.addIssue({ code: 'custom', message: problem, input: p });
});

export const ExpandLevelSchema = z.string().refine(isExpandLevel, {
  error: (iss) =>
    'must be an expand level ("", "none", "id", "summary" or "all", optionally prefixed with "+" or "-"), ' +
    `got ${quote(String(iss.input))}`,
});

/**
 * Go's Expand struct has a field per entity (app, acting_user, acting_user_access_token, locale, channel,
 * channel_member, team, team_member, post, root_post, user, oauth2_app, oauth2_user, …), each an ExpandLevel. Any key
 * is accepted so that newer fields do not break old tooling; every value must be a level.
 */
export const ExpandSchema = z.record(z.string(), ExpandLevelSchema);

export const CallObjectSchema = z.looseObject({
  path: z.string().optional(),
  expand: ExpandSchema.optional(),
  state: z.unknown().optional(),
});
export type CallObject = z.infer<typeof CallObjectSchema>;

/** A Call as the JSON may hold it: the object, or a bare string that is the path (Call.UnmarshalJSON). */
export type Call = string | CallObject;

export const CallSchema = z
  .custom<Call>(() => true)
  .superRefine((value, ctx) => {
    if (typeof value === 'string') return;
    if (!isPlainObject(value)) {
      ctx.addIssue({
        code: 'custom',
        message: `must be a path string or an object {path, expand, state}, got ${describeJson(value)}`,
        input: value,
      });
      return;
    }
    // A union would hide the object's own problems behind "invalid input"; report them at their own paths instead.
    const result = CallObjectSchema.safeParse(value, { error: predicateFor });
    if (!result.success) {
      for (const iss of result.error.issues) {
        ctx.addIssue({ code: 'custom', message: iss.message, path: iss.path, input: value });
      }
    }
  });

export const PermissionSchema = z.enum(PERMISSIONS, {
  error: (iss) => `is not a known permission: ${quote(String(iss.input))} (known: ${PERMISSIONS.join(', ')})`,
});

export const PermissionsSchema = z.array(PermissionSchema).superRefine((granted, ctx) => {
  for (const [permission, needs] of PERMISSION_DEPENDENCIES) {
    if (granted.includes(permission) && !granted.includes(needs)) {
      ctx.addIssue({
        code: 'custom',
        message: `has ${quote(permission)}, which requires ${quote(needs)}: add ${quote(needs)} too`,
        input: granted,
      });
    }
  }
});

export const RemoteWebhookAuthTypeSchema = z.enum(['', ...REMOTE_WEBHOOK_AUTH_TYPES], {
  error: (iss) =>
    `must be one of ${REMOTE_WEBHOOK_AUTH_TYPES.map(quote).join(', ')} (or empty), got ${describeJson(iss.input)}`,
});

const LEGACY_AWS_LAMBDA =
  'is a bare array of functions, the legacy v0.x manifest format, which Mattermost no longer reads: ' +
  'write it as an object, "aws_lambda": {"functions": [ ... ]}';

const atLeastOneFunction = (iss: { input?: unknown }) =>
  iss.input === undefined || Array.isArray(iss.input) ? 'must list at least one function' : undefined;

export const AwsLambdaFunctionSchema = z.looseObject({
  path: nonEmptyString,
  name: nonEmptyString,
  handler: nonEmptyString,
  runtime: nonEmptyString,
});
export type AwsLambdaFunction = z.infer<typeof AwsLambdaFunctionSchema>;

export const AwsLambdaSchema = z.looseObject(
  { functions: z.array(AwsLambdaFunctionSchema, { error: atLeastOneFunction }).min(1, { error: atLeastOneFunction }) },
  { error: (iss) => (iss.code === 'invalid_type' && Array.isArray(iss.input) ? LEGACY_AWS_LAMBDA : undefined) },
);
export type AwsLambda = z.infer<typeof AwsLambdaSchema>;

export const HttpDeploySchema = z.looseObject({
  root_url: HttpUrlSchema,
  use_jwt: z.boolean().optional(),
});
export type HttpDeploy = z.infer<typeof HttpDeploySchema>;

export const PluginDeploySchema = z.looseObject({ plugin_id: nonEmptyString });
export type PluginDeploy = z.infer<typeof PluginDeploySchema>;

export const OpenFaasFunctionSchema = z.looseObject({ path: nonEmptyString, name: nonEmptyString });
export type OpenFaasFunction = z.infer<typeof OpenFaasFunctionSchema>;

export const OpenFaasSchema = z.looseObject({
  functions: z.array(OpenFaasFunctionSchema, { error: atLeastOneFunction }).min(1, { error: atLeastOneFunction }),
});
export type OpenFaas = z.infer<typeof OpenFaasSchema>;

const NO_DEPLOYMENT = 'has no deployment information (http, aws_lambda, open_faas, etc.)';

export const ManifestSchema = z
  .looseObject({
    SchemaVersion: z.string().optional(),
    app_id: AppIdSchema,
    version: AppVersionSchema.optional(),
    homepage_url: HttpUrlSchema,
    display_name: nonEmptyString,
    description: z.string().optional(),
    icon: StaticPathSchema.optional(),
    bindings: CallSchema.optional(),
    on_install: CallSchema.optional(),
    on_version_changed: CallSchema.optional(),
    on_uninstall: CallSchema.optional(),
    on_enable: CallSchema.optional(),
    on_disable: CallSchema.optional(),
    get_oauth2_connect_url: CallSchema.optional(),
    on_oauth2_complete: CallSchema.optional(),
    on_remote_webhook: CallSchema.optional(),
    requested_permissions: PermissionsSchema.optional(),
    remote_webhook_auth_type: RemoteWebhookAuthTypeSchema.optional(),
    requested_locations: z.array(z.string()).optional(),
    http: HttpDeploySchema.optional(),
    aws_lambda: AwsLambdaSchema.optional(),
    plugin: PluginDeploySchema.optional(),
    open_faas: OpenFaasSchema.optional(),
  })
  .superRefine(
    (m, ctx) => {
      // Checked even when fields are invalid, so that this problem is reported with the others. `null` counts as
      // absent, as for Go's pointer fields (it is also reported as the wrong type by the section's own schema).
      if (DEPLOY_SECTIONS.every((k) => (m as Record<string, unknown>)[k] == null)) {
        ctx.addIssue({ code: 'custom', message: NO_DEPLOYMENT, input: m });
      }
    },
    { when: (payload) => isPlainObject(payload.value) },
  );
export type Manifest = z.infer<typeof ManifestSchema>;

// ---------------------------------------------------------------------------------------------------------------------
// Public API

/** Every problem of an already-decoded manifest, each with its field path; empty when it is valid. */
export function manifestIssues(value: unknown): ErrorDetail[] {
  const result = ManifestSchema.safeParse(value, { error: predicateFor });
  if (result.success) return [];
  return result.error.issues.map((iss) => {
    const path = formatPath(iss.path);
    return path === '' ? { message: `manifest ${iss.message}` } : { path, message: `${path} ${iss.message}` };
  });
}

/**
 * Decodes manifest.json and validates it. Throws a `BundleValidationError` ("manifest.json is invalid") whose `details`
 * list every problem: the size, the JSON syntax, or each invalid field.
 */
export function parseManifest(bytes: Uint8Array | string): Manifest {
  const size = typeof bytes === 'string' ? byteLength(bytes) : bytes.byteLength;
  if (size > MAX_MANIFEST_BYTES) {
    throw invalid([{ message: `manifest.json is ${size} bytes, over the ${MAX_MANIFEST_BYTES}-byte (1 MiB) limit` }]);
  }
  // ignoreBOM keeps a leading BOM in the text, so that it is reported as Go's decoder would refuse it.
  const text = typeof bytes === 'string' ? bytes : new TextDecoder('utf-8', { ignoreBOM: true }).decode(bytes);
  if (text.startsWith('\uFEFF')) {
    const message = 'manifest.json is not valid JSON: it starts with a byte order mark (BOM); save it as UTF-8 without BOM';
    throw invalid([{ message }]);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw invalid([{ message: `manifest.json is not valid JSON: ${jsonErrorText(err, text)}` }], err);
  }
  const issues = manifestIssues(value);
  if (issues.length > 0) throw invalid(issues);
  return value as Manifest;
}

/** The aws_lambda functions of a manifest, or none. */
export function awsLambdaFunctions(m: Manifest): AwsLambdaFunction[] {
  const fns = m.aws_lambda?.functions;
  return Array.isArray(fns) ? fns : [];
}

/** The object form of a Call field: a bare string is the path (Call.UnmarshalJSON). */
export function callOf(call: Call | undefined): CallObject | undefined {
  if (call === undefined) return undefined;
  return typeof call === 'string' ? { path: call } : call;
}

/** The deploy sections a manifest has, in Go's DeployTypes order. */
export function deployTypes(m: Manifest): Array<(typeof DEPLOY_SECTIONS)[number]> {
  return (['aws_lambda', 'http', 'open_faas', 'plugin'] as const).filter((k) => m[k] != null);
}

export function isExpandLevel(value: unknown): boolean {
  if (typeof value !== 'string') return false;
  const level = value.startsWith('+') || value.startsWith('-') ? value.slice(1) : value;
  return level === 'none' || (EXPAND_LEVELS as readonly string[]).includes(level);
}

/**
 * Why `raw` is not what `httputils.IsValidURL` accepts (Go's url.ParseRequestURI, scheme http/https, non-empty host),
 * or undefined when it is fine. The reason is a phrase to put after the URL: `has no host`.
 */
export function httpUrlProblem(raw: string): string | undefined {
  const parsed = parseRequestUri(raw);
  if (typeof parsed === 'string') return parsed;
  if (parsed.scheme === '') return 'has no scheme (it must start with http:// or https://)';
  if (parsed.scheme !== 'http' && parsed.scheme !== 'https') {
    return `has the scheme ${quote(parsed.scheme)}, not http or https`;
  }
  if (parsed.host === '') return 'has no host';
  return undefined;
}

/**
 * Why `p` is not a safe name inside static/ (utils.CleanStaticPath, made stricter: no `..` segment at all, even one
 * that would stay inside static/), or undefined. Percent-escapes are decoded repeatedly first, as in Go.
 */
export function staticPathProblem(p: string): string | undefined {
  let decoded = p;
  for (;;) {
    const next = pathUnescape(decoded);
    if (next === undefined) return `has an invalid percent-escape: ${quote(p)}`;
    if (next === decoded) break;
    decoded = next;
  }
  if (decoded.split('/').includes('..')) {
    return `must be a path inside static/ without ".." segments, got ${quote(p)}`;
  }
  if (decoded.startsWith('/')) return `must be a path relative to static/, not an absolute path, got ${quote(p)}`;
  if (posix.normalize(decoded) === './' || posix.normalize(decoded) === '.') {
    return `must name a file inside static/, got ${quote(p)}`;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------------------------------
// Helpers

const isHex = (c: string | undefined) => c !== undefined && /^[0-9A-Fa-f]$/.test(c);

function invalid(details: ErrorDetail[], cause?: unknown): BundleValidationError {
  return new BundleValidationError('manifest.json is invalid', cause === undefined ? { details } : { details, cause });
}

/** The per-parse error map: turns zod's own issues into predicates; custom issues keep their message. */
function predicateFor(iss: z.core.$ZodRawIssue): string | undefined {
  switch (iss.code) {
    case 'invalid_type':
      if (iss.input === undefined) return 'is required';
      return `must be ${expectedPhrase(iss.expected)}, got ${describeJson(iss.input)}`;
    case 'invalid_value':
      return `must be one of ${iss.values.map((v) => quote(String(v))).join(', ')}, got ${describeJson(iss.input)}`;
    default:
      return undefined;
  }
}

function expectedPhrase(expected: string): string {
  switch (expected) {
    case 'object':
    case 'record':
      return 'an object';
    case 'array':
      return 'an array';
    case 'boolean':
      return 'true or false';
    case 'string':
      return 'a string';
    case 'number':
      return 'a number';
    default:
      return expected;
  }
}

/** `null`, `an array`, `the number 3`, `the string "x"` … for messages. */
function describeJson(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  switch (typeof v) {
    case 'string':
      return `the string ${quote(v)}`;
    case 'number':
    case 'boolean':
      return `${typeof v} ${String(v)}`;
    case 'object':
      return 'an object';
    default:
      return typeof v;
  }
}

/** `aws_lambda.functions[1].runtime`; keys that are not plain names are bracketed: `bindings.expand["a b"]`. */
export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else if (typeof key === 'string' && /^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) out += out === '' ? key : `.${key}`;
    else out += `[${JSON.stringify(String(key))}]`;
  }
  return out;
}

function quote(s: string): string {
  return JSON.stringify(s.length > 100 ? `${s.slice(0, 100)}…` : s);
}

function quoteChar(ch: string): string {
  const cp = ch.codePointAt(0) ?? 0;
  return cp < 0x20 || cp === 0x7f ? `U+${cp.toString(16).toUpperCase().padStart(4, '0')}` : JSON.stringify(ch);
}

function byteLength(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * V8's reason without the copy of the source it may quote, and where the syntax error is: `Unexpected token '}' at
 * line 3, column 5`.
 */
function jsonErrorText(err: unknown, text: string): string {
  const message = err instanceof Error ? err.message : String(err);
  const reason = message.replace(/, "[\s\S]*" is not valid JSON$/, '').replace(/ (?:in JSON )?at position \d+[\s\S]*$/, '');
  const at = jsonErrorOffset(text);
  if (at === undefined) return reason;
  const before = text.slice(0, at);
  const line = before.split('\n').length;
  const column = at - before.lastIndexOf('\n');
  return `${reason} at line ${line}, column ${column}`;
}

/** The offset of the first JSON syntax error in `text` (RFC 8259, as JSON.parse), undefined if none or too deep. */
function jsonErrorOffset(text: string): number | undefined {
  let i = 0;
  class At {
    constructor(readonly offset: number) {}
  }
  const fail = (): never => {
    throw new At(i);
  };
  const ws = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i] as string)) i++;
  };
  const expect = (c: string) => {
    if (text[i] !== c) fail();
    i++;
  };
  const string = () => {
    expect('"');
    for (;;) {
      const c = text[i];
      if (c === undefined || c < ' ') fail();
      i++;
      if (c === '"') return;
      if (c !== '\\') continue;
      const e = text[i];
      if (e !== undefined && '"\\/bfnrt'.includes(e)) i++;
      else if (e === 'u') {
        i++;
        for (let k = 0; k < 4; k++, i++) if (!isHex(text[i])) fail();
      } else fail();
    }
  };
  const value = (): void => {
    ws();
    const c = text[i];
    if (c === '{' || c === '[') {
      const close = c === '{' ? '}' : ']';
      i++;
      ws();
      if (text[i] === close) {
        i++;
        return;
      }
      for (;;) {
        if (c === '{') {
          ws();
          string();
          ws();
          expect(':');
        }
        value();
        ws();
        if (text[i] === ',') i++;
        else return expect(close);
      }
    }
    if (c === '"') return string();
    const number = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
    number.lastIndex = i;
    const n = number.exec(text);
    if (n) {
      i += n[0].length;
      return;
    }
    for (const literal of ['true', 'false', 'null']) {
      if (text.startsWith(literal, i)) {
        i += literal.length;
        return;
      }
    }
    fail();
  };
  try {
    value();
    ws();
    if (i < text.length) fail();
    return undefined;
  } catch (e) {
    return e instanceof At ? e.offset : undefined; // RangeError: nested too deep to locate
  }
}

/** url.PathUnescape: undefined on a malformed escape. Decoded bytes are read back as UTF-8. */
function pathUnescape(s: string): string | undefined {
  if (!s.includes('%')) return s;
  const bytes: number[] = [];
  const raw = Buffer.from(s, 'utf8');
  for (let i = 0; i < raw.length; i++) {
    const b = raw[i] as number;
    if (b !== 0x25) {
      bytes.push(b);
      continue;
    }
    const h = String.fromCharCode(raw[i + 1] ?? 0, raw[i + 2] ?? 0);
    if (!isHex(h[0]) || !isHex(h[1])) return undefined;
    bytes.push(parseInt(h, 16));
    i += 2;
  }
  return Buffer.from(bytes).toString('utf8');
}

interface RequestUri {
  scheme: string;
  host: string;
}

/**
 * The parts of Go's url.ParseRequestURI (net/url parse with viaRequest=true) that decide validity here: control
 * characters, the scheme, opaque forms, the authority (userinfo, bracketed hosts, port digits, characters allowed in a
 * host) and percent-escapes. Returns the lower-cased scheme and the host, or the reason it fails.
 */
function parseRequestUri(raw: string): RequestUri | string {
  if (/[\x00-\x1f\x7f]/.test(raw)) return 'contains a control character';
  if (raw === '*') return { scheme: '', host: '' };

  // getScheme
  let scheme = '';
  let rest = raw;
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i] as string;
    if (/[A-Za-z]/.test(c)) continue;
    if (/[0-9+.-]/.test(c)) {
      if (i === 0) break;
      continue;
    }
    if (c === ':') {
      if (i === 0) return 'has no scheme before ":"';
      scheme = raw.slice(0, i).toLowerCase();
      rest = raw.slice(i + 1);
    }
    break;
  }

  if (rest.endsWith('?') && rest.indexOf('?') === rest.length - 1) rest = rest.slice(0, -1);
  else if (rest.includes('?')) rest = rest.slice(0, rest.indexOf('?'));

  if (!rest.startsWith('/')) {
    if (scheme !== '') return { scheme, host: '' }; // opaque, e.g. "https:example.com"
    return 'is not an absolute URL';
  }

  let host = '';
  if (scheme !== '' && rest.startsWith('//')) {
    let authority = rest.slice(2);
    const slash = authority.indexOf('/');
    if (slash >= 0) {
      rest = authority.slice(slash);
      authority = authority.slice(0, slash);
    } else {
      rest = '';
    }
    const at = authority.lastIndexOf('@');
    let hostPart = authority;
    if (at >= 0) {
      const userinfo = authority.slice(0, at);
      if (!/^[A-Za-z0-9\-._:~!$&'()*+,;=%@]*$/.test(userinfo)) return 'has invalid characters in its user information';
      if (unescapeProblem(userinfo, false)) return 'has an invalid percent-escape in its user information';
      hostPart = authority.slice(at + 1);
    }
    const hostProblem = parseHostProblem(hostPart);
    if (hostProblem) return hostProblem;
    host = hostPart;
  }
  if (unescapeProblem(rest, false)) return 'has an invalid percent-escape in its path';
  return { scheme, host };
}

function parseHostProblem(host: string): string | undefined {
  if (host.startsWith('[')) {
    const close = host.lastIndexOf(']');
    if (close < 0) return 'has a "[" without "]" in its host';
    if (!validOptionalPort(host.slice(close + 1))) return `has an invalid port ${quote(host.slice(close + 1))}`;
  } else {
    const colon = host.lastIndexOf(':');
    if (colon >= 0 && !validOptionalPort(host.slice(colon))) return `has an invalid port ${quote(host.slice(colon))}`;
  }
  return unescapeProblem(host, true);
}

function validOptionalPort(port: string): boolean {
  return port === '' || /^:[0-9]*$/.test(port);
}

/** net/url `unescape` in encodeHost mode (host) or a mode that only checks escapes (path, userinfo). */
function unescapeProblem(s: string, hostMode: boolean): string | undefined {
  for (let i = 0; i < s.length; i++) {
    const c = s[i] as string;
    if (c === '%') {
      if (!isHex(s[i + 1]) || !isHex(s[i + 2])) return `has an invalid percent-escape ${quote(s.slice(i, i + 3))}`;
      if (hostMode && parseInt(s[i + 1] as string, 16) < 8 && s.slice(i, i + 3) !== '%25') {
        return `has a percent-escape ${quote(s.slice(i, i + 3))} that is not allowed in a host`;
      }
      i += 2;
    } else if (hostMode && c.charCodeAt(0) < 0x80 && !/[A-Za-z0-9\-_.~!$&'()*+,;=:[\]<>"]/.test(c)) {
      return `has the character ${quoteChar(c)}, which is not allowed in a host`;
    }
  }
  return undefined;
}
