import middy from '@middy/core';
import { z } from 'zod';
import { runDeployment } from '../core/control-plane';
import { BadRequestError } from '../core/errors';
import { getRuntime, logger } from './http/runtime';

/** The worker's invocation payload, sent by `POST /deploy` (LambdaWorker). */
export const workerEvent = z.object({
  deploymentId: z.string().regex(/^[0-9a-f-]{36}$/),
  environment: z.record(z.string(), z.string()).optional(),
});

/**
 * Runs one deployment to its end. Its outcome is in the record, so the invocation succeeds even when the deploy
 * failed: Lambda's automatic retries of async invocations are for crashes only.
 */
export const handler = middy(async (event: unknown) => {
  const parsed = workerEvent.safeParse(event);
  if (!parsed.success) {
    logger.error('invalid worker event', { issues: parsed.error.issues.map((i) => i.message) });
    throw new BadRequestError('invalid worker event');
  }
  const { controlPlane } = await getRuntime();
  const record = await runDeployment(controlPlane, parsed.data.deploymentId, parsed.data.environment);
  return { deploymentId: record.id, state: record.state };
});
