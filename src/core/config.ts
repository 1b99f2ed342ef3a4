import { z } from 'zod';
import { ConfigError } from './errors';

/** Constants of upstream/upaws/aws.go (appsctl.md §0). */
export const ENV = {
  access: 'MM_APPS_AWS_ACCESS_KEY',
  secret: 'MM_APPS_AWS_SECRET_KEY',
  deployAccess: 'MM_APPS_DEPLOY_AWS_ACCESS_KEY',
  deploySecret: 'MM_APPS_DEPLOY_AWS_SECRET_KEY',
  bucket: 'MM_APPS_S3_BUCKET',
  region: 'MM_APPS_AWS_REGION',
  siteUrl: 'MM_SERVICESETTINGS_SITEURL',
  adminToken: 'MM_ADMIN_TOKEN',
} as const;

export const DEFAULTS = {
  bucket: 'mattermost-apps-bucket',
  region: 'us-east-1',
  executeRole: 'mattermost-apps-execute-lambda-role',
  policy: 'mattermost-apps-invoke-policy',
  user: 'mattermost-apps-invoke',
  group: 'mattermost-apps-invoke-group',
  lambdaExecutionPolicyArn: 'arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole',
} as const;

export type Env = Record<string, string | undefined>;

export interface StaticCredentials {
  accessKeyId: string;
  secretAccessKey: string;
}

export interface AwsTarget {
  region: string;
  bucket: string;
  /** Static credentials from the MM_APPS_* variables; undefined means the SDK's default provider chain. */
  credentials?: StaticCredentials;
}

const nonEmpty = (v: string | undefined): v is string => v !== undefined && v.trim() !== '';

/** Variables by which the AWS SDK's default chain can find credentials on its own. */
const SDK_CREDENTIAL_SOURCES = ['AWS_ACCESS_KEY_ID', 'AWS_PROFILE', 'AWS_WEB_IDENTITY_TOKEN_FILE', 'AWS_CONTAINER_CREDENTIALS_FULL_URI', 'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI', 'AWS_LAMBDA_FUNCTION_NAME'];

/**
 * The AWS client configuration of `makeDeployAWSClient` (appsctl.md §0), checked in the same order with the same
 * messages: region, access key, secret. As an extension, when neither MM_APPS key variable is set but the standard
 * AWS SDK configuration provides credentials (AWS_ACCESS_KEY_ID, AWS_PROFILE, a Lambda role…), that chain is used.
 */
export function readAwsTarget(env: Env, keys: { access: string; secret: string } = { access: ENV.deployAccess, secret: ENV.deploySecret }): AwsTarget {
  const region = env[ENV.region];
  if (!nonEmpty(region)) throw new ConfigError(`no AWS region was provided. Please set ${ENV.region}`, { details: [{ path: ENV.region, message: 'missing' }] });
  const bucket = nonEmpty(env[ENV.bucket]) ? env[ENV.bucket]! : DEFAULTS.bucket;
  const access = env[keys.access];
  const secret = env[keys.secret];
  if (!nonEmpty(access) && !nonEmpty(secret) && SDK_CREDENTIAL_SOURCES.some((k) => nonEmpty(env[k]))) {
    return { region, bucket };
  }
  if (!nonEmpty(access)) throw new ConfigError(`no AWS access key was provided. Please set ${keys.access}`, { details: [{ path: keys.access, message: 'missing' }] });
  if (!nonEmpty(secret)) throw new ConfigError(`no AWS secret key was provided. Please set ${keys.secret}`, { details: [{ path: keys.secret, message: 'missing' }] });
  return { region, bucket, credentials: { accessKeyId: access, secretAccessKey: secret } };
}

export interface MattermostTarget {
  siteUrl: string;
  token: string;
}

/** appsctl.md §2 step 1: both are required, checked before any AWS change. */
export function readMattermostTarget(env: Env): MattermostTarget {
  const siteUrl = env[ENV.siteUrl];
  const token = env[ENV.adminToken];
  if (!nonEmpty(siteUrl) || !nonEmpty(token)) {
    const missing = [ENV.siteUrl, ENV.adminToken].filter((k) => !nonEmpty(env[k]));
    throw new ConfigError(`${ENV.siteUrl} and ${ENV.adminToken} must be set`, { details: missing.map((k) => ({ path: k, message: 'missing' })) });
  }
  const parsed = z.url({ protocol: /^https?$/ }).safeParse(siteUrl);
  if (!parsed.success) throw new ConfigError(`${ENV.siteUrl} must be an http or https URL`, { details: [{ path: ENV.siteUrl, message: 'not an http(s) URL' }] });
  return { siteUrl: siteUrl.replace(/\/+$/, ''), token };
}
