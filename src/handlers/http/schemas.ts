import { z } from 'zod';
import { DEFAULTS } from '../../core/config';

/**
 * Request schemas of the REST API (design.md §3): what the handlers validate bodies, queries and parameters with, and
 * what `openapi.ts` publishes, so the document cannot drift from what the code accepts. The response schemas are in
 * `responses.ts`: documentation only, they stay out of the handler bundles, which would otherwise build every one of
 * them at each cold start. Each schema here is marked `@__PURE__` (building one changes nothing else) so that esbuild
 * bundles into a handler only the schemas it uses, not every route's: mark a new one the same way.
 */
const iamName = /* @__PURE__ */ z.string().min(1).max(128).regex(/^[\w+=,.@-]+$/, 'must be letters, digits and +=,.@_- only');

export const bundleKeySchema = /* @__PURE__ */ z
  .string()
  .max(1024)
  .regex(/^bundles\/[^\0\\]+\.zip$/, 'must be an object key under bundles/ ending in .zip')
  .refine((k) => !k.split('/').includes('..'), 'must not contain ".." segments')
  // JSON Schema cannot say what the refinement checks: the document says it in words.
  .describe('An object key under bundles/ ending in .zip, without ".." segments, e.g. the `key` answered by POST /bundles.');

export const provisionDataBody = /* @__PURE__ */ z.object({ bundleKey: bundleKeySchema }).strict();

export const bundlesBody = /* @__PURE__ */ z
  .object({
    name: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}\.zip$/, 'must be a file name ending in .zip (letters, digits, . _ -)')
      .default('bundle.zip'),
  })
  .strict();

export const deployBody = /* @__PURE__ */ z
  .object({
    bundleKey: bundleKeySchema,
    install: z.boolean().default(false),
    update: z.boolean().default(false),
    dryRun: z.boolean().default(false),
    policy: iamName.default(DEFAULTS.policy),
    executeRole: iamName.default(DEFAULTS.executeRole),
    env: z
      .record(z.string().regex(/^[A-Za-z][A-Za-z0-9_]*$/, 'must be a valid environment variable name'), z.string())
      .refine((e) => Object.keys(e).length <= 64, 'at most 64 variables')
      .meta({ maxProperties: 64, description: 'Environment variables for every function of the app. Values are passed to the worker, never stored in the deployment record.' })
      .optional(),
  })
  .strict();

export const deploymentIdParam = /* @__PURE__ */ z.string().regex(/^[0-9a-f-]{36}$/, 'must be a deployment id');

// ---------------------------------------------------------------------------------------------------------------------
// App lifecycle: GET /apps, POST /apps/{appId}/rollback, DELETE /apps/{appId}/versions/{version} (src/core/lifecycle.ts).

const appChars = /^[\p{L}\p{N}._-]*$/u;

/** Path parameters are checked by the core with the manifest's own rules (AppIdSchema, AppVersionSchema). */
export const appsListQuery = /* @__PURE__ */ z
  .object({
    prefix: z.string().max(32).regex(appChars, 'must be the start of an app id: letters, digits, "-", "_" and "."').default('').describe('Only apps whose id starts with this.'),
  })
  .strict();

const booleanQuery = /* @__PURE__ */ z.enum(['true', 'false']).default('false');

export const rollbackBody = /* @__PURE__ */ z
  .object({
    version: z.string().min(1).max(10).regex(appChars, 'must be an app version: letters, digits, "-", "_" and "."').describe('A deployed version of the app, to list in Mattermost again.'),
    policy: iamName.default(DEFAULTS.policy).describe('The invoke policy that must grant the version\'s functions.'),
  })
  .strict();

export const undeployQuery = /* @__PURE__ */ z
  .object({
    force: booleanQuery.describe('Remove the version even when it is the one Mattermost lists.'),
    dryRun: booleanQuery.describe('Answer what would be removed, and change nothing.'),
    policy: iamName.default(DEFAULTS.policy).describe('The invoke policy to remove the function ARNs from.'),
  })
  .strict();
