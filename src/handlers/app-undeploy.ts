import { undeploy } from '../core/lifecycle';
import { httpHandler } from './http/stack';
import { validQuery } from './http/query';
import { undeployQuery } from './http/schemas';
import { getLifecycleRuntime } from './http/runtime';

/**
 * `DELETE /apps/{appId}/versions/{version}[?force=true][&dryRun=true]`: removes the version's manifest, functions,
 * code, static assets and invoke-policy ARNs; 409 for the listed version unless forced. Deleting what is gone answers
 * 200 with `changed: false`, so a client may simply retry. A version is a handful of calls, well within the 29 s.
 */
export const handler = httpHandler({ access: 'admin', runtime: getLifecycleRuntime }, async ({ params, query, runtime }, context) => {
  const q = validQuery(undeployQuery, query);
  const { ports, store, logger } = runtime.controlPlane;
  const result = await undeploy({ ports, store, logger }, params.appId ?? '', params.version ?? '', {
    policyName: q.policy,
    force: q.force === 'true',
    dryRun: q.dryRun === 'true',
    lockHolder: `undeploy request ${context?.awsRequestId ?? 'local'}`,
  });
  return { status: 200, body: result };
});
