import { z } from 'zod';
import { DEFAULTS } from '../../core/config';

/**
 * Request and response schemas of the REST API (design.md §3). The handlers validate with them and
 * `openapi.ts` publishes them, so the document cannot drift from what the code accepts.
 */
const iamName = z.string().min(1).max(128).regex(/^[\w+=,.@-]+$/, 'must be letters, digits and +=,.@_- only');

export const bundleKeySchema = z
  .string()
  .max(1024)
  .regex(/^bundles\/[^\0\\]+\.zip$/, 'must be an object key under bundles/ ending in .zip')
  .refine((k) => !k.split('/').includes('..'), 'must not contain ".." segments')
  // JSON Schema cannot say what the refinement checks: the document says it in words.
  .describe('An object key under bundles/ ending in .zip, without ".." segments, e.g. the `key` answered by POST /bundles.');

export const provisionDataBody = z.object({ bundleKey: bundleKeySchema }).strict();

export const bundlesBody = z
  .object({
    name: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}\.zip$/, 'must be a file name ending in .zip (letters, digits, . _ -)')
      .default('bundle.zip'),
  })
  .strict();

export const bundlesResponse = z.object({
  url: z.string(),
  fields: z.record(z.string(), z.string()),
  key: z.string(),
  expiresAt: z.string(),
  maxBytes: z.number(),
});

export const deployBody = z
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

export const deployAccepted = z.object({ deploymentId: z.string(), status: z.enum(['pending', 'running', 'succeeded', 'failed']) });

const errorDetail = z.object({ path: z.string().optional(), message: z.string() });

export const errorResponse = z.object({
  error: z.object({
    code: z.string(),
    message: z.string(),
    details: z.array(errorDetail),
  }),
});

export const deploymentIdParam = z.string().regex(/^[0-9a-f-]{36}$/, 'must be a deployment id');

// ---------------------------------------------------------------------------------------------------------------------
// Response bodies. Written to match the src/core types they publish (test/unit/openapi.test.ts checks both ways at
// the type level); the handlers answer those types, so these schemas document and never transform.

const deploymentState = z.enum(['pending', 'running', 'succeeded', 'failed']);
const planAction = z.enum(['create', 'update', 'unchanged']);
const iamResource = z.object({ name: z.string(), arn: z.string() });

/** DeployPlan of src/core/deploy.ts. */
export const deployPlanSchema = z.object({
  appId: z.string(),
  version: z.string(),
  displayName: z.string(),
  bucket: z.string(),
  executeRole: iamResource,
  invokePolicy: iamResource.extend({
    action: z.enum(['update', 'unchanged']),
    addedArns: z.array(z.string()),
    removedArns: z.array(z.string()),
    document: z.string(),
  }),
  functions: z.array(
    z.object({
      name: z.string(),
      lambdaName: z.string(),
      arn: z.string(),
      action: planAction,
      changes: z.array(z.string()).describe('What differs, for an update: code, handler, runtime, role, environment.'),
      codeKey: z.string(),
      codeSha256: z.string(),
    }),
  ),
  statics: z.array(z.object({ name: z.string(), key: z.string(), action: planAction })),
  manifest: z.object({ key: z.string(), action: planAction }),
  warnings: z.array(z.string()),
});

/** DeployResult of src/core/deploy.ts. */
export const deployResultSchema = deployPlanSchema.extend({
  executePolicyArn: z.string(),
  manifestUrl: z.string(),
  listed: z.boolean(),
  installed: z.boolean(),
});

/** `POST /deploy` with `dryRun: true`: the plan, and nothing changed. */
export const deployDryRunResponse = z.object({ dryRun: z.literal(true), plan: deployPlanSchema });

/** DeploymentRecord of src/core/deployments.ts: what `GET /deployments/{id}` answers. */
export const deploymentRecordSchema = z.object({
  id: z.string(),
  state: deploymentState,
  source: z.enum(['api', 's3-event', 'reconcile']),
  bundle: z.object({ bucket: z.string(), key: z.string(), versionId: z.string().optional(), etag: z.string().optional() }),
  options: z.object({
    install: z.boolean(),
    update: z.boolean(),
    policy: z.string(),
    executeRole: z.string(),
    envKeys: z.array(z.string()).describe('Names of the environment variables passed; their values are never recorded.'),
  }),
  app: z.object({ appId: z.string(), version: z.string() }).optional(),
  createdAt: z.string(),
  updatedAt: z.string(),
  steps: z.array(
    z.object({
      step: z.enum(['static', 'code', 'function', 'policy', 'manifest', 'mattermost']),
      name: z.string(),
      action: z.string(),
      at: z.string(),
    }),
  ),
  plan: deployPlanSchema.optional(),
  result: deployResultSchema.optional(),
  error: z.object({ code: z.string(), message: z.string(), details: z.array(errorDetail) }).optional(),
  warnings: z.array(z.string()),
});

/** AppStatus of src/core/control-plane.ts: what `GET /apps/{appId}` answers. */
export const appStatusResponse = z.object({
  appId: z.string(),
  versions: z.array(
    z.object({
      version: z.string(),
      manifestKey: z.string(),
      complete: z.boolean().describe('The manifest is valid and names this app and version, every function exists and has not failed, and the icon exists: the version can be rolled back to.'),
      functions: z.array(
        z.object({
          name: z.string(),
          lambdaName: z.string(),
          exists: z.boolean(),
          state: z.string().optional(),
          lastUpdateStatus: z.string().optional(),
          runtime: z.string().optional(),
        }),
      ),
    }),
  ),
  listedVersion: z.string().optional(),
  installed: z.boolean(),
  lastDeployment: z.object({ id: z.string(), state: z.string(), version: z.string().optional(), at: z.string() }).optional(),
});

/** DeployData of src/core/provision.ts, as `appsctl generate-terraform-data` prints it (design.md §1). */
export const provisionDataResponse = z.object({
  static_files: z.record(z.string(), z.object({ key: z.string() })),
  lambda_functions: z.record(z.string(), z.object({ name: z.string(), handler: z.string(), runtime: z.string() })),
  manifest_key: z.string(),
});

/** InitResult of src/core/init.ts: what `POST /init` answers. */
export const initResponse = z.object({
  user: iamResource.extend({ created: z.boolean() }),
  group: iamResource.extend({ created: z.boolean(), userAdded: z.boolean(), policyAttached: z.boolean() }),
  policy: iamResource.extend({ created: z.boolean() }),
  bucket: z.object({ name: z.string(), created: z.boolean() }),
  executeRole: iamResource.extend({ created: z.boolean(), policyAttached: z.boolean() }),
  accessKey: z
    .object({ accessKeyId: z.string(), secretAccessKey: z.string() })
    .optional()
    .describe('Present only when this request created a key: the secret is answered once and kept nowhere.'),
  existingAccessKeyIds: z.array(z.string()),
  changes: z.array(z.string()),
  warnings: z.array(z.string()),
});

// ---------------------------------------------------------------------------------------------------------------------
// App lifecycle: GET /apps, POST /apps/{appId}/rollback, DELETE /apps/{appId}/versions/{version} (src/core/lifecycle.ts).

const appChars = /^[\p{L}\p{N}._-]*$/u;

/** Path parameters are checked by the core with the manifest's own rules (AppIdSchema, AppVersionSchema). */
export const appsListQuery = z
  .object({
    prefix: z.string().max(32).regex(appChars, 'must be the start of an app id: letters, digits, "-", "_" and "."').default('').describe('Only apps whose id starts with this.'),
  })
  .strict();

const booleanQuery = z.enum(['true', 'false']).default('false');

export const rollbackBody = z
  .object({
    version: z.string().min(1).max(10).regex(appChars, 'must be an app version: letters, digits, "-", "_" and "."').describe('A deployed version of the app, to list in Mattermost again.'),
    policy: iamName.default(DEFAULTS.policy).describe('The invoke policy that must grant the version\'s functions.'),
  })
  .strict();

export const undeployQuery = z
  .object({
    force: booleanQuery.describe('Remove the version even when it is the one Mattermost lists.'),
    dryRun: booleanQuery.describe('Answer what would be removed, and change nothing.'),
    policy: iamName.default(DEFAULTS.policy).describe('The invoke policy to remove the function ARNs from.'),
  })
  .strict();

const versionFunction = z.object({
  name: z.string(),
  lambdaName: z.string(),
  exists: z.boolean(),
  arn: z.string().optional(),
  state: z.string().optional(),
  lastUpdateStatus: z.string().optional(),
  runtime: z.string().optional(),
});

/** AppListing of src/core/lifecycle.ts. */
export const appListingSchema = z.object({
  appId: z.string(),
  listedVersion: z.string().optional(),
  listedVersionSource: z
    .enum(['record', 'presumed'])
    .optional()
    .describe('record: a deploy or rollback of ours listed it. presumed: nothing was recorded, so the newest version is taken to be listed.'),
  installed: z.boolean(),
  versions: z
    .array(
      z.object({
        version: z.string(),
        manifestKey: z.string(),
        deployedAt: z.string().optional().describe('When the manifest was last written: what "newest" means for prune.'),
        listed: z.boolean(),
        complete: z.boolean().describe('The manifest is valid, every function exists and has not failed, the icon exists: the version can be rolled back to.'),
        problems: z.array(z.string()).describe('Why the version is not complete.'),
        functions: z.array(versionFunction),
      }),
    )
    .describe('Newest first.'),
});

export const appsListResponse = z.object({ apps: z.array(appListingSchema) });

/** RollbackResult of src/core/lifecycle.ts. */
export const rollbackResponse = z.object({
  appId: z.string(),
  version: z.string(),
  previousListedVersion: z.string().optional(),
  policy: z.object({ name: z.string(), action: z.enum(['update', 'unchanged']), addedArns: z.array(z.string()) }),
  listed: z.literal(true),
});

/** UndeployResult of src/core/lifecycle.ts. */
export const undeployResponse = z.object({
  plan: z.object({
    appId: z.string(),
    versions: z.array(
      z.object({
        version: z.string(),
        manifestKey: z.string().optional(),
        functions: z.array(z.string()),
        codeObjects: z.array(z.string()),
        staticAssets: z.array(z.string()),
        resumed: z.boolean().describe('An earlier undeploy of this version stopped part-way; this one finished it.'),
      }),
    ),
    policy: z
      .object({ name: z.string(), arn: z.string(), action: z.enum(['update', 'unchanged']), removedArns: z.array(z.string()), document: z.string() })
      .optional(),
    warnings: z.array(z.string()),
  }),
  dryRun: z.boolean(),
  changed: z.boolean().describe('False when there was nothing to remove.'),
});
