import { createPresignedPost } from '@aws-sdk/s3-presigned-post';
import type { S3Client } from '@aws-sdk/client-s3';

/**
 * A presigned POST for one bundle key: the policy pins the key and bounds the size (`content-length-range`), so
 * AWS refuses an oversized upload before storing a byte. (moto does not enforce the policy; the auto-deployer checks
 * the size again.)
 */
export async function presignBundleUpload(s3: S3Client, bucket: string, key: string, maxBytes: number, expiresSeconds: number) {
  const post = await createPresignedPost(s3, {
    Bucket: bucket,
    Key: key,
    Conditions: [['content-length-range', 1, maxBytes], ['eq', '$Content-Type', 'application/zip']],
    Fields: { 'Content-Type': 'application/zip' },
    Expires: expiresSeconds,
  });
  return { url: post.url, fields: post.fields };
}
