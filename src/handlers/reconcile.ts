import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { z } from 'zod';
import { DEFAULT_MIN_AGE_MS, reconcile, type ReconcileResult } from '../core/reconcile';
import { getRuntime, logger } from './http/runtime';

/**
 * The hourly reconcile (serverless.yml `schedule: rate(1 hour)`). EventBridge sends its own scheduled-event payload;
 * a schedule's `input` may instead set `minAgeMinutes`, which is also how a test or an operator runs it at once.
 */
export const reconcileEvent = z.looseObject({ minAgeMinutes: z.number().int().min(0).optional() });

/**
 * Room left after the last bundle is started: one deployment may take minutes, and one cut off by the timeout is only
 * retried an hour later.
 */
const RESERVE_MS = 5 * 60 * 1000;

export const handler = middy(async (event: unknown, context: Context): Promise<ReconcileResult> => {
  const parsed = reconcileEvent.safeParse(event ?? {});
  const minAgeMs = parsed.success && parsed.data.minAgeMinutes !== undefined ? parsed.data.minAgeMinutes * 60_000 : DEFAULT_MIN_AGE_MS;
  const { controlPlane } = await getRuntime();
  const remaining = typeof context?.getRemainingTimeInMillis === 'function' ? context.getRemainingTimeInMillis() : undefined;
  const result = await reconcile(controlPlane, { minAgeMs, dryRun: false, ...(remaining !== undefined ? { deadline: Date.now() + Math.max(0, remaining - RESERVE_MS) } : {}) });
  logger.info('reconcile done', { deployed: result.deployed, failed: result.failed, skipped: result.skipped, deferred: result.deferred });
  return result;
});
