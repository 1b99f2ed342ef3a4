import { startDeployment } from '../core/control-plane';
import { httpHandler } from './http/stack';
import { deployBody } from './http/schemas';
import { getRuntime } from './http/runtime';

/**
 * `POST /deploy`: 202 with the deployment id, the worker doing the deploy asynchronously (API Gateway stops waiting at
 * 29 s); a dry run answers its plan at once.
 */
export const handler = httpHandler({ access: 'admin', body: deployBody, runtime: getRuntime }, async ({ body, runtime }) => {
  const { env, ...rest } = body;
  const outcome = await startDeployment(runtime.controlPlane, { ...rest, ...(env ? { env } : {}) });
  if (outcome.dryRun) return { status: 200, body: { dryRun: true, plan: outcome.plan } };
  return { status: 202, body: { deploymentId: outcome.record.id, status: outcome.record.state } };
});
