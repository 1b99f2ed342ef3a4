import { z } from 'zod';
import { DEFAULTS, ENV, type Env } from './config';
import { ConfigError } from './errors';
import { DEFAULT_BUNDLE_LIMITS } from './limits';

/**
 * Configuration of the deployed control plane and of the local stack (design.md §3), validated once per process.
 * Values come from the environment; a `<NAME>_PARAM` variable names an SSM parameter to read instead (resolved by
 * the caller before this schema runs, so the schema sees plain values only).
 */
export const SECRET_SETTINGS = ['MM_ADMIN_TOKEN', 'APPS_DEPLOYER_ADMIN_TOKEN', 'APPS_DEPLOYER_STATUS_TOKEN'] as const;


export const controlPlaneConfigSchema = z.object({
  [ENV.bucket]: z.string().trim().min(3).default(DEFAULTS.bucket),
  [ENV.region]: z.string().trim().min(1).optional(),
  AWS_REGION: z.string().trim().min(1).optional(),
  [ENV.siteUrl]: z.url({ protocol: /^https?$/, error: 'must be an http or https URL' }).optional(),
  [ENV.adminToken]: z.string().min(1).optional(),
  APPS_DEPLOYER_ADMIN_TOKEN: z.string({ error: 'is required (or APPS_DEPLOYER_ADMIN_TOKEN_PARAM naming an SSM parameter)' }).min(16, 'must be at least 16 characters'),
  APPS_DEPLOYER_STATUS_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
  APPS_DEPLOYER_WEBHOOK_URL: z.url({ protocol: /^https?$/, error: 'must be an http or https URL' }).optional(),
  APPS_DEPLOYER_AUTO_INSTALL: z.enum(['true', 'false', '']).optional(),
  APPS_DEPLOYER_MAX_BUNDLE_BYTES: z.coerce.number().int().positive().optional(),
});

export interface ControlPlaneConfig {
  bucket: string;
  region: string;
  mattermost?: { siteUrl: string; token: string };
  adminToken: string;
  statusToken?: string;
  webhookUrl?: string;
  autoInstall: boolean;
  maxBundleBytes: number;
}

export function parseControlPlaneConfig(env: Env): ControlPlaneConfig {
  const blanksRemoved = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = controlPlaneConfigSchema.safeParse(blanksRemoved);
  if (!parsed.success) {
    const details = parsed.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message }));
    throw new ConfigError(`invalid configuration: ${details.map((d) => `${d.path} ${d.message}`).join('; ')}`, { details });
  }
  const c = parsed.data;
  const siteUrl = c[ENV.siteUrl];
  const token = c[ENV.adminToken];
  if ((siteUrl === undefined) !== (token === undefined)) {
    throw new ConfigError(`${ENV.siteUrl} and ${ENV.adminToken} must be set together`);
  }
  return {
    bucket: c[ENV.bucket],
    region: c[ENV.region] ?? c.AWS_REGION ?? DEFAULTS.region,
    ...(siteUrl && token ? { mattermost: { siteUrl: siteUrl.replace(/\/+$/, ''), token } } : {}),
    adminToken: c.APPS_DEPLOYER_ADMIN_TOKEN,
    ...(c.APPS_DEPLOYER_STATUS_TOKEN ? { statusToken: c.APPS_DEPLOYER_STATUS_TOKEN } : {}),
    ...(c.APPS_DEPLOYER_WEBHOOK_URL ? { webhookUrl: c.APPS_DEPLOYER_WEBHOOK_URL } : {}),
    autoInstall: c.APPS_DEPLOYER_AUTO_INSTALL === 'true',
    maxBundleBytes: c.APPS_DEPLOYER_MAX_BUNDLE_BYTES ?? DEFAULT_BUNDLE_LIMITS.maxBundleBytes,
  };
}
