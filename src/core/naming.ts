import { createHash } from 'node:crypto';

/**
 * The names a Mattermost server computes by itself (appsctl.md §2 "Naming rules"). These must stay byte for byte
 * what upstream/upaws computes, including its bugs, or the server cannot find what we deploy.
 */
export const MAX_LAMBDA_NAME = 64;

/**
 * `LambdaName(appID, version, function)`. Over 64 characters the server falls back to a sha256 of the sanitised name
 * prefixed with the ORIGINAL app id and version: dots survive there (an upstream bug), see `lambdaNameProblem`.
 * Lengths are in bytes, as in Go.
 */
export function lambdaName(appId: string, version: string, functionName: string): string {
  const sanitized = `${appId.replaceAll('.', '-')}_${version.replaceAll('.', '-')}_${functionName.replaceAll(' ', '-')}`;
  if (byteLength(sanitized) <= MAX_LAMBDA_NAME) return sanitized;
  const n = MAX_LAMBDA_NAME - byteLength(appId) - byteLength(version) - 2;
  if (n < 0) {
    // Go panics on a negative slice bound; the manifest rules (app_id ≤ 32, version ≤ 10) make this unreachable.
    throw new RangeError(`app id and version are too long to name a Lambda function: ${appId} ${version}`);
  }
  const hash = createHash('sha256').update(sanitized, 'utf8').digest('hex').slice(0, n);
  return `${appId}_${version}_${hash}`;
}

/** `S3StaticName`: note the literal `_app` suffix and that only spaces in the file name are replaced. */
export function staticKey(appId: string, version: string, name: string): string {
  return `static/${appId}_${version}_app/${name.replaceAll(' ', '-')}`;
}

/** `S3ManifestName`. */
export function manifestKey(appId: string, version: string): string {
  return `manifests/${appId}_${version}.json`;
}

/** `ParseS3ManifestName`: split at the LAST `_`; undefined for a key that is not a manifest key. */
export function parseManifestKey(key: string): { appId: string; version: string } | undefined {
  if (!key.startsWith('manifests/') || !key.endsWith('.json')) return undefined;
  const base = key.slice('manifests/'.length, -'.json'.length);
  const i = base.lastIndexOf('_');
  if (i < 0) return undefined;
  return { appId: base.slice(0, i), version: base.slice(i + 1) };
}

/** Lambda's own rule for FunctionName: 1–64 of letters, digits, hyphens, underscores. */
const LAMBDA_NAME_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * Why AWS would refuse `name`, or undefined when it would accept it. moto does not check names, so we must.
 */
export function lambdaNameProblem(name: string): string | undefined {
  if (LAMBDA_NAME_PATTERN.test(name)) return undefined;
  if (byteLength(name) > MAX_LAMBDA_NAME) return `is ${byteLength(name)} characters long, over Lambda's ${MAX_LAMBDA_NAME}`;
  const bad = [...new Set([...name].filter((c) => !/[A-Za-z0-9_-]/.test(c)))];
  return `contains ${bad.map((c) => JSON.stringify(c)).join(', ')}, which Lambda does not allow in a function name`;
}

function byteLength(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}
