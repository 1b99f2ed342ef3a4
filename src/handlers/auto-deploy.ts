import middy from '@middy/core';
import type { S3Event } from 'aws-lambda';
import { handleBundleEvent, type BundleEvent, type BundleEventOutcome } from '../core/control-plane';
import { getRuntime, logger } from './http/runtime';

/** S3 event keys are URL-encoded with `+` for spaces. */
export function decodeS3Key(key: string): string {
  return decodeURIComponent(key.replace(/\+/g, ' '));
}

export function bundleEventsOf(event: S3Event): BundleEvent[] {
  return (event.Records ?? []).map((r) => ({
    eventName: r.eventName,
    bucket: r.s3.bucket.name,
    key: decodeS3Key(r.s3.object.key),
    size: r.s3.object.size,
    ...(r.s3.object.versionId ? { versionId: r.s3.object.versionId } : {}),
    ...(r.s3.object.eTag ? { etag: r.s3.object.eTag } : {}),
    ...(r.s3.object.sequencer ? { sequencer: r.s3.object.sequencer } : {}),
  }));
}

/** `s3:ObjectCreated:*` on `bundles/*.zip` (design.md §4). Records are handled one by one, duplicates by their claim. */
export const handler = middy(async (event: S3Event): Promise<BundleEventOutcome[]> => {
  const { controlPlane } = await getRuntime();
  const outcomes: BundleEventOutcome[] = [];
  for (const e of bundleEventsOf(event)) {
    const outcome = await handleBundleEvent(controlPlane, e);
    logger.info('bundle event', { key: e.key, status: outcome.status });
    outcomes.push(outcome);
  }
  return outcomes;
});
