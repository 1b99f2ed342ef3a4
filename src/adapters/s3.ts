import {
  CreateBucketCommand, DeleteObjectCommand, DeleteObjectsCommand, GetObjectCommand, GetObjectTaggingCommand, HeadBucketCommand,
  HeadObjectCommand, PutBucketEncryptionCommand, PutObjectCommand, PutObjectTaggingCommand,
  PutPublicAccessBlockCommand, type BucketLocationConstraint, type S3Client, paginateListObjectsV2,
} from '@aws-sdk/client-s3';
import { AppsDeployerError, AwsOperationError } from '../core/errors';
import type { ListedObject, ObjectInfo, PutObjectInput, S3Port } from '../core/ports';
import { errorName, httpStatus, isTransient, withRetry } from './retry';

/**
 * SigV4 signs a request's payload hash: for a Buffer body the signer hashes every byte again (on the benchmark's first
 * deploy, ~0.15 s of CPU), for a stream it sends UNSIGNED-PAYLOAD. The SHA-256 is known from validation: given as
 * `x-amz-content-sha256`, the signer takes it as it is, and S3 checks the body against it (as against the checksum).
 */
function signWithKnownPayloadHash(command: PutObjectCommand, sha256Base64: string): void {
  const hex = Buffer.from(sha256Base64, 'base64').toString('hex');
  command.middlewareStack.add(
    (next) => async (args) => {
      const request = args.request as { headers?: Record<string, string> };
      if (request.headers) request.headers['x-amz-content-sha256'] = hex;
      return next(args);
    },
    { step: 'build', name: 'knownPayloadHash' },
  );
}

/** A conditional write lost: somebody else wrote (or created) the object first. */
export class PreconditionFailedError extends AppsDeployerError {
  readonly code = 'PRECONDITION_FAILED';
  readonly status = 409;
}

const notFound = (err: unknown) => ['NotFound', 'NoSuchKey', 'NoSuchBucket'].includes(errorName(err)) || httpStatus(err) === 404;
const preconditionFailed = (err: unknown) => errorName(err) === 'PreconditionFailed' || httpStatus(err) === 412;
const retryable = (err: unknown) => !notFound(err) && !preconditionFailed(err) && isTransient(err);

function rootCause(err: unknown): unknown {
  return (err as { cause?: unknown })?.cause ?? err;
}

export class SdkS3Port implements S3Port {
  constructor(
    private readonly s3: S3Client,
    readonly bucket: string,
    private readonly region: string,
  ) {}

  async bucketExists(): Promise<boolean> {
    try {
      await withRetry(`HeadBucket ${this.bucket}`, () => this.s3.send(new HeadBucketCommand({ Bucket: this.bucket })), retryable);
      return true;
    } catch (err) {
      if (notFound(rootCause(err))) return false;
      throw err;
    }
  }

  async createBucket(): Promise<void> {
    const Bucket = this.bucket;
    // us-east-1 is the one region that refuses an explicit LocationConstraint.
    const config = this.region === 'us-east-1' ? {} : { CreateBucketConfiguration: { LocationConstraint: this.region as BucketLocationConstraint } };
    await withRetry(`CreateBucket ${Bucket}`, () => this.s3.send(new CreateBucketCommand({ Bucket, ...config })), retryable);
    await withRetry(`PutPublicAccessBlock ${Bucket}`, () =>
      this.s3.send(new PutPublicAccessBlockCommand({
        Bucket,
        PublicAccessBlockConfiguration: { BlockPublicAcls: true, IgnorePublicAcls: true, BlockPublicPolicy: true, RestrictPublicBuckets: true },
      })), retryable);
    await withRetry(`PutBucketEncryption ${Bucket}`, () =>
      this.s3.send(new PutBucketEncryptionCommand({
        Bucket,
        ServerSideEncryptionConfiguration: { Rules: [{ ApplyServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }] },
      })), retryable);
  }

  async headObject(key: string): Promise<ObjectInfo | undefined> {
    try {
      const res = await withRetry(`HeadObject s3://${this.bucket}/${key}`, () => this.s3.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key })), retryable);
      return {
        size: res.ContentLength ?? 0,
        ...(res.ETag ? { etag: res.ETag } : {}),
        ...(res.VersionId ? { versionId: res.VersionId } : {}),
        metadata: res.Metadata ?? {},
      };
    } catch (err) {
      if (notFound(rootCause(err))) return undefined;
      throw err;
    }
  }

  async getObjectText(key: string): Promise<{ text: string; etag?: string } | undefined> {
    try {
      return await withRetry(`GetObject s3://${this.bucket}/${key}`, async () => {
        const res = await this.s3.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
        const text = await res.Body!.transformToString('utf8');
        return { text, ...(res.ETag ? { etag: res.ETag } : {}) };
      }, retryable);
    } catch (err) {
      if (notFound(rootCause(err))) return undefined;
      throw err;
    }
  }

  async putObject(input: PutObjectInput): Promise<{ etag?: string; versionId?: string }> {
    const send = async () => {
      const command = new PutObjectCommand({
        Bucket: this.bucket,
        Key: input.key,
        Body: typeof input.body === 'function' ? await input.body() : input.body,
        ContentLength: input.contentLength,
        ...(input.contentType ? { ContentType: input.contentType } : {}),
        ...(input.metadata ? { Metadata: input.metadata } : {}),
        ...(input.sha256Base64 ? { ChecksumSHA256: input.sha256Base64 } : {}),
        ...(input.ifNoneMatch ? { IfNoneMatch: input.ifNoneMatch } : {}),
        ...(input.ifMatch ? { IfMatch: input.ifMatch } : {}),
      });
      if (input.sha256Base64) signWithKnownPayloadHash(command, input.sha256Base64);
      return this.s3.send(command);
    };
    try {
      const res = await withRetry(`PutObject s3://${this.bucket}/${input.key}`, send, retryable);
      return { ...(res.ETag ? { etag: res.ETag } : {}), ...(res.VersionId ? { versionId: res.VersionId } : {}) };
    } catch (err) {
      if (preconditionFailed(rootCause(err))) throw new PreconditionFailedError(`s3://${this.bucket}/${input.key} was changed by someone else`, { cause: err });
      if (err instanceof AppsDeployerError) throw err;
      throw new AwsOperationError(`PutObject s3://${this.bucket}/${input.key} failed: ${errorName(err)}: ${(err as Error).message}`, { cause: err });
    }
  }

  async deleteObject(key: string, options: { ifMatch?: string } = {}): Promise<void> {
    const { ifMatch } = options;
    try {
      await withRetry(
        `DeleteObject s3://${this.bucket}/${key}`,
        () => this.s3.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key, ...(ifMatch ? { IfMatch: ifMatch } : {}) })),
        retryable,
      );
    } catch (err) {
      // With If-Match, S3 answers 404 for an object that is not there: a retry whose first attempt deleted it, say.
      if (ifMatch && notFound(rootCause(err))) return;
      if (preconditionFailed(rootCause(err))) throw new PreconditionFailedError(`s3://${this.bucket}/${key} was changed by someone else`, { cause: err });
      throw err;
    }
  }

  async listKeys(prefix: string): Promise<ListedObject[]> {
    return withRetry(`ListObjectsV2 s3://${this.bucket}/${prefix}`, async () => {
      const out: ListedObject[] = [];
      for await (const page of paginateListObjectsV2({ client: this.s3 }, { Bucket: this.bucket, Prefix: prefix })) {
        for (const o of page.Contents ?? []) {
          out.push({ key: o.Key!, size: o.Size ?? 0, ...(o.ETag ? { etag: o.ETag } : {}), ...(o.LastModified ? { lastModified: o.LastModified } : {}) });
        }
      }
      return out;
    }, retryable);
  }

  async getTags(key: string): Promise<Record<string, string>> {
    const res = await withRetry(`GetObjectTagging s3://${this.bucket}/${key}`, () => this.s3.send(new GetObjectTaggingCommand({ Bucket: this.bucket, Key: key })), retryable);
    return Object.fromEntries((res.TagSet ?? []).map((t) => [t.Key!, t.Value!]));
  }

  async putTags(key: string, tags: Record<string, string>): Promise<void> {
    await withRetry(`PutObjectTagging s3://${this.bucket}/${key}`, () =>
      this.s3.send(new PutObjectTaggingCommand({ Bucket: this.bucket, Key: key, Tagging: { TagSet: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })) } })), retryable);
  }

  async deleteObjects(keys: string[]): Promise<void> {
    for (let i = 0; i < keys.length; i += 1000) {
      const batch = keys.slice(i, i + 1000);
      const res = await withRetry(`DeleteObjects s3://${this.bucket} (${batch.length} keys)`, () =>
        this.s3.send(new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } })), retryable);
      // DeleteObjects answers 200 even when some keys failed; those come back in Errors.
      const failed = (res.Errors ?? []).filter((e) => e.Code !== 'NoSuchKey');
      if (failed.length > 0) {
        throw new AwsOperationError(
          `DeleteObjects s3://${this.bucket} failed for ${failed.length} key(s): ${failed.slice(0, 5).map((e) => `${e.Key}: ${e.Code} ${e.Message ?? ''}`.trim()).join('; ')}`,
        );
      }
    }
  }
}
