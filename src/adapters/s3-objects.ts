import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import { GetObjectCommand, HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { AwsOperationError, BundleLimitError, NotFoundError, SupersededError } from '../core/errors';

function isPreconditionFailed(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e?.name === 'PreconditionFailed' || e?.$metadata?.httpStatusCode === 412;
}

function quoteEtag(etag: string): string {
  return etag.startsWith('"') ? etag : `"${etag}"`;
}

function isNotFound(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e?.name === 'NotFound' || e?.name === 'NoSuchKey' || e?.$metadata?.httpStatusCode === 404;
}

/**
 * Downloads an object to a private temporary file (streamed, never whole in memory) and runs `fn` on its path;
 * the file is removed afterwards. The size is checked before the download so an oversized object costs nothing.
 */
export async function withDownloadedObject<T>(
  s3: S3Client,
  location: { bucket: string; key: string; maxBytes: number; versionId?: string; etag?: string },
  fn: (path: string, info: { size: number; etag?: string; versionId?: string }) => Promise<T>,
): Promise<T> {
  const { bucket, key, maxBytes } = location;
  // A pinned version (S3 events carry one on versioned buckets) or ETag: the bytes the event was about, not whatever
  // a later upload put in their place.
  const pin = { ...(location.versionId ? { VersionId: location.versionId } : {}), ...(!location.versionId && location.etag ? { IfMatch: quoteEtag(location.etag) } : {}) };
  let head;
  try {
    head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key, ...pin }));
  } catch (err) {
    if (isPreconditionFailed(err)) throw new SupersededError(`s3://${bucket}/${key} was replaced by a newer upload before this one was deployed; the newer upload is deployed on its own`, { cause: err });
    if (isNotFound(err)) throw new NotFoundError(`no object s3://${bucket}/${key}`, { cause: err });
    throw new AwsOperationError(`cannot read s3://${bucket}/${key}: ${(err as Error).message}`, { cause: err });
  }
  const size = head.ContentLength ?? 0;
  if (size > maxBytes) {
    throw new BundleLimitError(`s3://${bucket}/${key} is ${size} bytes, over the bundle limit of ${maxBytes} bytes`);
  }
  const dir = await mkdtemp(join(tmpdir(), 'apps-deployer-dl-'));
  try {
    const path = join(dir, 'bundle.zip');
    let obj;
    try {
      obj = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key, ...(head.VersionId ? { VersionId: head.VersionId } : {}), ...(pin.IfMatch ? { IfMatch: pin.IfMatch } : {}) }));
    } catch (err) {
      if (isPreconditionFailed(err)) throw new SupersededError(`s3://${bucket}/${key} was replaced by a newer upload while it was being read`, { cause: err });
      throw err;
    }
    await pipeline(obj.Body as Readable, createWriteStream(path));
    return await fn(path, { size, ...(head.ETag ? { etag: head.ETag } : {}), ...(head.VersionId ? { versionId: head.VersionId } : {}) });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
