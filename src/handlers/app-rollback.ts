import { rollback } from '../core/lifecycle';
import { httpHandler } from './http/stack';
import { rollbackBody } from './http/schemas';
import { getLifecycleRuntime } from './http/runtime';

/**
 * `POST /apps/{appId}/rollback` `{version}`: lists an earlier, still complete version in Mattermost again; 409 with
 * the reasons when it is not complete, 404 when it is not deployed.
 */
export const handler = httpHandler({ access: 'admin', body: rollbackBody, runtime: getLifecycleRuntime }, async ({ body, params, runtime }, context) => {
  const { ports, store, logger } = runtime.controlPlane;
  const result = await rollback({ ports, store, logger }, params.appId ?? '', body.version, {
    policyName: body.policy,
    lockHolder: `rollback request ${context?.awsRequestId ?? 'local'}`,
  });
  return { status: 200, body: result };
});
