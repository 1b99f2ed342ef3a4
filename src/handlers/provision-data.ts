import { formatDeployData, withAppBundle } from '../core/provision';
import { withDownloadedObject } from '../adapters/s3-objects';
import { httpHandler } from './http/stack';
import { provisionDataBody } from './http/schemas';
import { getS3Runtime } from './http/runtime';

/** `POST /provision-data`: the DeployData JSON of a bundle already uploaded under `bundles/` (design.md §3). */
export const handler = httpHandler({ access: 'admin', body: provisionDataBody, runtime: getS3Runtime }, async ({ body, runtime }) => {
  const { config, aws } = runtime;
  const raw = await withDownloadedObject(aws.s3, { bucket: config.bucket, key: body.bundleKey, maxBytes: config.maxBundleBytes }, (path) =>
    withAppBundle(path, { strictness: 'go', label: body.bundleKey, limits: { maxBundleBytes: config.maxBundleBytes } }, async (app) =>
      formatDeployData(app.deployData),
    ),
  );
  return { status: 200, raw };
});
