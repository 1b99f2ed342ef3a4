import { z } from 'zod';
import { AppIdSchema, AppVersionSchema, MAX_APP_ID_BYTES, MAX_VERSION_BYTES, MIN_APP_ID_BYTES } from '../../core/manifest';
import { initBody } from '../init';
import { appsListQuery, bundlesBody, deployBody, deploymentIdParam, provisionDataBody, rollbackBody, undeployQuery } from './schemas';
import {
  appsListResponse, appStatusResponse, bundlesResponse, deployAccepted, deployDryRunResponse, deploymentRecordSchema, deployPlanSchema,
  deployResultSchema, errorResponse, initResponse, provisionDataResponse, rollbackResponse, undeployResponse,
} from './responses';

/**
 * The REST API of design.md §3 as an OpenAPI 3.1 document, generated from the very zod schemas the handlers validate
 * with, so it cannot promise a field the code refuses. `openapi.json` at the repository root is this document written
 * out; test/unit/openapi.test.ts fails when the two differ and checks the document against the handlers.
 */

/** The contract's version, not the package's: bump it when a route, a field or a status changes meaning. */
export const API_VERSION = '1.0.0';

const ref = (id: string) => `#/components/schemas/${id}`;

// Requests are documented as clients write them (defaults optional), responses as the handlers answer them. One
// registry per direction: z.toJSONSchema turns a schema registered under an id into a $ref wherever it is reused.
const REQUEST_SCHEMAS = {
  InitRequest: initBody,
  BundlesRequest: bundlesBody,
  DeployRequest: deployBody,
  ProvisionDataRequest: provisionDataBody,
  RollbackRequest: rollbackBody,
} as const;

const RESPONSE_SCHEMAS = {
  InitResponse: initResponse,
  BundlesResponse: bundlesResponse,
  DeployAccepted: deployAccepted,
  DeployDryRun: deployDryRunResponse,
  DeployPlan: deployPlanSchema,
  DeployResult: deployResultSchema,
  DeploymentRecord: deploymentRecordSchema,
  ProvisionData: provisionDataResponse,
  AppStatus: appStatusResponse,
  AppsList: appsListResponse,
  RollbackResult: rollbackResponse,
  UndeployResult: undeployResponse,
  ErrorResponse: errorResponse,
} as const;

type JsonObject = Record<string, unknown>;

function inputSchema(schema: z.ZodType): JsonObject {
  const { $schema: _dialect, ...rest } = z.toJSONSchema(schema, { io: 'input' }) as JsonObject;
  return rest;
}

function componentSchemas(schemas: Record<string, z.ZodType>, io: 'input' | 'output'): Record<string, JsonObject> {
  const registry = z.registry<{ id: string }>();
  for (const [id, schema] of Object.entries(schemas)) registry.add(schema, { id });
  const { schemas: converted } = z.toJSONSchema(registry, { io, uri: ref });
  // A component is not a document: `$schema` is the document's dialect, and a fragment `$id` is not allowed in 2020-12.
  return Object.fromEntries(
    Object.entries(converted).map(([id, s]) => {
      const { $schema: _dialect, $id: _id, ...rest } = s as JsonObject;
      return [id, rest];
    }),
  );
}

/** The error statuses of design.md §3, each answered with the ErrorResponse shape. */
const ERRORS = {
  400: { name: 'BadRequest', description: 'The body is not JSON, or the body or a path parameter does not match its schema (`BAD_REQUEST`); `details` has one entry per problem, with the field path.' },
  401: { name: 'Unauthorized', description: 'No `Authorization: Bearer <token>` header, or a malformed one (`UNAUTHORIZED`).' },
  403: { name: 'Forbidden', description: 'The token is not accepted for this route (`FORBIDDEN`). The answer never says which tokens exist.' },
  404: { name: 'NotFound', description: 'The bundle, deployment, app or AWS resource named does not exist (`NOT_FOUND`).' },
  409: { name: 'Conflict', description: 'The request conflicts with the current state (`CONFLICT`, `POLICY_LIMIT_EXCEEDED`): for example a function exists with other code and `update` is false, or another deployment of the app is in progress.' },
  413: { name: 'PayloadTooLarge', description: 'The bundle is over a configured limit (`BUNDLE_LIMIT_EXCEEDED`): size, entry count, uncompressed size or compression ratio.' },
  422: { name: 'UnprocessableBundle', description: 'The bundle is not a safe, well-formed zip (`BUNDLE_*`) or not a valid Mattermost App (`BUNDLE_VALIDATION_FAILED`, every problem in `details`).' },
  500: { name: 'InternalError', description: 'The control plane is misconfigured (`CONFIG_INVALID`) or failed unexpectedly (`INTERNAL`, with no detail of its insides).' },
  502: { name: 'BadGateway', description: 'An AWS or Mattermost call failed after retries (`AWS_OPERATION_FAILED`, `MATTERMOST_CALL_FAILED`); the message names the resource.' },
} as const;

export type ErrorStatus = keyof typeof ERRORS;

export interface RouteDoc {
  method: 'get' | 'post' | 'put' | 'delete';
  path: string;
  /** The file under src/handlers/ whose `handler` serves the route, as serverless.yml maps it. */
  handler: string;
  operationId: string;
  summary: string;
  description: string;
  access: 'admin' | 'read';
  request?: { schema: keyof typeof REQUEST_SCHEMAS; example: JsonObject };
  parameters?: JsonObject[];
  responses: Record<number, { description: string; schema: keyof typeof RESPONSE_SCHEMAS }>;
  errors: ErrorStatus[];
}

const AUTH_ERRORS: ErrorStatus[] = [401, 403];

const APP_ID_PARAMETER: JsonObject = {
  name: 'appId',
  in: 'path',
  required: true,
  description: `The app's \`app_id\`: ${MIN_APP_ID_BYTES} to ${MAX_APP_ID_BYTES} bytes of letters, digits, "-", "_" and "." (a malformed id is a 400).`,
  schema: inputSchema(AppIdSchema),
};

export const ROUTES: RouteDoc[] = [
  {
    method: 'post',
    path: '/init',
    handler: 'init',
    operationId: 'init',
    summary: 'Set up the AWS account for Mattermost Apps (`appsctl aws init`)',
    description:
      'Finds, and with `create` creates, the invoke user, its group, the invoke policy, the execute role and the apps bucket. ' +
      'Without `create` a missing resource is a 404 listing every one. With `createAccessKey` (when the user has none) or ' +
      '`newAccessKey`, the new key is in this response only.',
    access: 'admin',
    request: { schema: 'InitRequest', example: { create: true, createAccessKey: true } },
    responses: { 200: { description: 'What was found and what was created.', schema: 'InitResponse' } },
    errors: [400, ...AUTH_ERRORS, 404, 409, 500, 502],
  },
  {
    method: 'post',
    path: '/bundles',
    handler: 'bundles',
    operationId: 'createBundleUpload',
    summary: 'Get a presigned POST to upload one bundle',
    description:
      'Answers a presigned S3 POST for `bundles/<uuid>/<name>`, bounded by `content-length-range` to the configured maximum ' +
      '(`maxBytes`) and valid for 15 minutes. Send `fields` and then the file as multipart/form-data to `url`; the upload ' +
      'starts the S3 auto-deployer.',
    access: 'admin',
    request: { schema: 'BundlesRequest', example: { name: 'my-app.zip' } },
    responses: { 200: { description: 'Where and how to upload.', schema: 'BundlesResponse' } },
    errors: [400, ...AUTH_ERRORS, 500],
  },
  {
    method: 'post',
    path: '/deploy',
    handler: 'deploy',
    operationId: 'deploy',
    summary: 'Deploy an uploaded bundle (`appsctl aws deploy`)',
    description:
      'Records a pending deployment and hands it to the worker, answering 202 at once (API Gateway stops waiting after 29 s): ' +
      'follow it with GET /deployments/{id}. With `dryRun` the plan is answered at once with 200 and nothing changes. ' +
      'Bundle problems of a dry run are answered here; those of a real run are in the deployment record.',
    access: 'admin',
    request: { schema: 'DeployRequest', example: { bundleKey: 'bundles/0b7c6a52-3f3e-4c1e-9d7e-0a5b1d2c3e4f/my-app.zip', update: true } },
    responses: {
      202: { description: 'The deployment was recorded and started.', schema: 'DeployAccepted' },
      200: { description: 'Dry run: what would be created, updated or left alone.', schema: 'DeployDryRun' },
    },
    errors: [400, ...AUTH_ERRORS, 404, 409, 413, 422, 500, 502],
  },
  {
    method: 'get',
    path: '/deployments/{id}',
    handler: 'deployment-status',
    operationId: 'getDeployment',
    summary: 'Follow a deployment',
    description: 'The deployment record: state (`pending`, `running`, `succeeded`, `failed`), the steps done, the plan, and the result or the error.',
    access: 'read',
    parameters: [{ name: 'id', in: 'path', required: true, description: 'The `deploymentId` answered by POST /deploy.', schema: inputSchema(deploymentIdParam) }],
    responses: { 200: { description: 'The deployment record.', schema: 'DeploymentRecord' } },
    errors: [...AUTH_ERRORS, 404, 500, 502],
  },
  {
    method: 'post',
    path: '/provision-data',
    handler: 'provision-data',
    operationId: 'provisionData',
    summary: 'The DeployData of an uploaded bundle (`appsctl generate-terraform-data`)',
    description:
      'The JSON `appsctl generate-terraform-data` prints for the bundle, byte for byte (tab-indented, sorted maps, Go escaping): ' +
      'the S3 keys of the static files and the manifest and the Lambda name, handler and runtime of each function.',
    access: 'admin',
    request: { schema: 'ProvisionDataRequest', example: { bundleKey: 'bundles/0b7c6a52-3f3e-4c1e-9d7e-0a5b1d2c3e4f/my-app.zip' } },
    responses: { 200: { description: 'The DeployData.', schema: 'ProvisionData' } },
    errors: [400, ...AUTH_ERRORS, 404, 413, 422, 500, 502],
  },
  {
    method: 'get',
    path: '/apps/{appId}',
    handler: 'app-status',
    operationId: 'getAppStatus',
    summary: 'What is deployed of an app',
    description: 'For Mattermost webhooks: the deployed versions, their functions and state, the listed version, whether it was installed, and its last deployment.',
    access: 'read',
    parameters: [
      {
        name: 'appId',
        in: 'path',
        required: true,
        description: `The app's \`app_id\`: ${MIN_APP_ID_BYTES} to ${MAX_APP_ID_BYTES} bytes of letters, digits, "-", "_" and "." (a malformed id is a 400).`,
        // The byte-length and character rules are code (a superRefine), which JSON Schema cannot carry: see the description.
        schema: inputSchema(AppIdSchema),
      },
    ],
    responses: { 200: { description: 'The app as deployed.', schema: 'AppStatus' } },
    errors: [400, ...AUTH_ERRORS, 404, 500, 502],
  },
  {
    method: 'get',
    path: '/apps',
    handler: 'apps-list',
    operationId: 'listApps',
    summary: 'Every deployed app and version (`appsctl aws list`)',
    description:
      'Every app with a manifest under `manifests/` (parsed as the Mattermost server parses the keys), newest version first, with ' +
      'its functions and their state, whether each version is complete, and which version Mattermost lists.',
    access: 'read',
    parameters: [{ name: 'prefix', in: 'query', required: false, description: 'Only apps whose id starts with this.', schema: inputSchema(appsListQuery.shape.prefix) }],
    responses: { 200: { description: 'The apps, by app id.', schema: 'AppsList' } },
    errors: [400, ...AUTH_ERRORS, 500, 502],
  },
  {
    method: 'post',
    path: '/apps/{appId}/rollback',
    handler: 'app-rollback',
    operationId: 'rollbackApp',
    summary: 'List an earlier deployed version in Mattermost again (`appsctl aws rollback`)',
    description:
      'Calls Mattermost `update-app-listing` with the stored manifest of `version`, as a deploy does, after checking that the ' +
      'version is complete (manifest, functions, icon) and granting its functions in the invoke policy again if needed. ' +
      'An incomplete version is a 409 with every reason in `details`; one that is not deployed a 404.',
    access: 'admin',
    parameters: [APP_ID_PARAMETER],
    request: { schema: 'RollbackRequest', example: { version: 'v1.2.0' } },
    responses: { 200: { description: 'The version is listed.', schema: 'RollbackResult' } },
    errors: [400, ...AUTH_ERRORS, 404, 409, 500, 502],
  },
  {
    method: 'delete',
    path: '/apps/{appId}/versions/{version}',
    handler: 'app-undeploy',
    operationId: 'undeployAppVersion',
    summary: 'Remove one deployed version (`appsctl aws undeploy`)',
    description:
      "Deletes the version's manifest first, then its functions, code objects and static assets, then its ARNs from the invoke " +
      'policy. The version Mattermost lists is refused with 409 unless `force=true`; `dryRun=true` answers what would go. ' +
      'Removing what is already gone answers 200 with `changed: false`, so the request can be repeated safely.',
    access: 'admin',
    parameters: [
      APP_ID_PARAMETER,
      {
        name: 'version',
        in: 'path',
        required: true,
        description: `The version: at most ${MAX_VERSION_BYTES} bytes of letters, digits, "-", "_" and "." (a malformed one is a 400).`,
        schema: inputSchema(AppVersionSchema),
      },
      ...(['force', 'dryRun', 'policy'] as const).map((name) => ({
        name,
        in: 'query',
        required: false,
        description: undeployQuery.shape[name].description,
        schema: inputSchema(undeployQuery.shape[name]),
      })),
    ],
    responses: { 200: { description: 'What was removed (or, for a dry run, would be).', schema: 'UndeployResult' } },
    errors: [400, ...AUTH_ERRORS, 409, 500, 502],
  },
];

const SECURITY = {
  admin: [{ adminToken: [] }],
  read: [{ adminToken: [] }, { statusToken: [] }],
} as const;

function operation(route: RouteDoc): JsonObject {
  const responses: JsonObject = {};
  for (const [status, r] of Object.entries(route.responses)) {
    responses[status] = { description: r.description, content: { 'application/json': { schema: { $ref: ref(r.schema) } } } };
  }
  for (const status of route.errors) responses[String(status)] = { $ref: `#/components/responses/${ERRORS[status].name}` };
  return {
    operationId: route.operationId,
    summary: route.summary,
    description: route.description,
    security: SECURITY[route.access],
    ...(route.parameters ? { parameters: route.parameters } : {}),
    ...(route.request
      ? {
          requestBody: {
            // An empty body is read as `{}`: a request whose fields are all optional may send none.
            required: ((inputSchema(REQUEST_SCHEMAS[route.request.schema]).required ?? []) as string[]).length > 0,
            content: { 'application/json': { schema: { $ref: ref(route.request.schema) }, example: route.request.example } },
          },
        }
      : {}),
    responses,
    'x-handler': `src/handlers/${route.handler}.ts`,
  };
}

export function openApiDocument(): JsonObject {
  const paths: Record<string, JsonObject> = {};
  for (const route of ROUTES) paths[route.path] = { ...(paths[route.path] ?? {}), [route.method]: operation(route) };
  return {
    openapi: '3.1.0',
    info: {
      title: 'apps-deployer control plane',
      version: API_VERSION,
      description:
        'Deploys Mattermost Apps bundles to AWS (design.md §3). Every request carries `Authorization: Bearer <token>`: the admin ' +
        'token for every route, or the read-only status token for the GET routes. Bodies are JSON; every error is ' +
        '`{"error": {"code", "message", "details"}}`.',
    },
    security: SECURITY.admin,
    paths,
    components: {
      schemas: { ...componentSchemas(REQUEST_SCHEMAS, 'input'), ...componentSchemas(RESPONSE_SCHEMAS, 'output') },
      responses: Object.fromEntries(
        Object.values(ERRORS).map((e) => [e.name, { description: e.description, content: { 'application/json': { schema: { $ref: ref('ErrorResponse') } } } }]),
      ),
      securitySchemes: {
        adminToken: {
          type: 'http',
          scheme: 'bearer',
          description: 'The admin token (`APPS_DEPLOYER_ADMIN_TOKEN`, or the SSM parameter `APPS_DEPLOYER_ADMIN_TOKEN_PARAM` names). Accepted by every route.',
        },
        statusToken: {
          type: 'http',
          scheme: 'bearer',
          description:
            'The read-only status token (`APPS_DEPLOYER_STATUS_TOKEN` or `APPS_DEPLOYER_STATUS_TOKEN_PARAM`), for Mattermost webhooks and dashboards. ' +
            'Accepted by the GET routes only; any POST answers 403 to it.',
        },
      },
    },
  };
}

/** `openapi.json` as committed: two-space indent and a final newline. */
export function openApiJson(): string {
  return `${JSON.stringify(openApiDocument(), null, 2)}\n`;
}
