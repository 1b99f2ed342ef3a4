import { randomUUID } from 'node:crypto';
import { presignBundleUpload } from '../adapters/presign';
import { BUNDLES_PREFIX } from '../core/control-plane-read';
import { httpHandler } from './http/stack';
import { bundlesBody } from './http/schemas';
import { getS3Runtime } from './http/runtime';

/** Presigned uploads live 15 minutes (design.md §7): long enough for a 512 MiB upload, short enough to leak little. */
export const UPLOAD_EXPIRY_SECONDS = 15 * 60;

/** `POST /bundles`: where and how to upload one bundle; its arrival under bundles/ starts the auto-deploy. */
export const handler = httpHandler({ access: 'admin', body: bundlesBody, runtime: getS3Runtime }, async ({ body, runtime }) => {
  const { config, aws } = runtime;
  const key = `${BUNDLES_PREFIX}${randomUUID()}/${body.name}`;
  const post = await presignBundleUpload(aws.s3, config.bucket, key, config.maxBundleBytes, UPLOAD_EXPIRY_SECONDS);
  return {
    status: 200,
    body: { ...post, key, expiresAt: new Date(Date.now() + UPLOAD_EXPIRY_SECONDS * 1000).toISOString(), maxBytes: config.maxBundleBytes },
  };
});
