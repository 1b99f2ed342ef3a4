import { z } from 'zod';

/**
 * Response bodies of the REST API (design.md §3), for `openapi.ts` to publish. Written to match the src/core types they
 * publish (test/unit/openapi.test.ts checks both ways at the type level); the handlers answer those types, so these
 * schemas document and never transform. No handler imports this file, so that no cold start builds them.
 */
export const bundlesResponse = z.object({
  url: z.string(),
  fields: z.record(z.string(), z.string()),
  key: z.string(),
  expiresAt: z.string(),
  maxBytes: z.number(),
});

export const deployAccepted = z.object({ deploymentId: z.string(), status: z.enum(['pending', 'running', 'succeeded', 'failed']) });

const errorDetail = z.object({ path: z.string().optional(), message: z.string() });

export const errorResponse = z.object({
  error: z.object({
    code: z.string(),
    message: z.string(),
    details: z.array(errorDetail),
  }),
});

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
    versionId: z.string().describe('The default version when planned, whose document the plan grew into `document`.'),
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

/** One function of a deployed version (src/core/lifecycle.ts); GET /apps/{appId} shows it without its ARN. */
const versionFunction = z.object({
  name: z.string(),
  lambdaName: z.string(),
  exists: z.boolean(),
  arn: z.string().optional(),
  state: z.string().optional(),
  lastUpdateStatus: z.string().optional(),
  runtime: z.string().optional(),
});

/** AppStatus of src/core/control-plane.ts: what `GET /apps/{appId}` answers. */
export const appStatusResponse = z.object({
  appId: z.string(),
  versions: z.array(
    z.object({
      version: z.string(),
      manifestKey: z.string(),
      complete: z.boolean().describe('The manifest is valid and names this app and version, every function exists and has not failed, and the icon exists: the version can be rolled back to.'),
      functions: z.array(versionFunction.omit({ arn: true })),
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
