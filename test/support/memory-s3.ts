// An S3Port in memory for unit tests of code built on conditional writes (the deployment store, the app lock).
// Unlike moto (design.md §6), `If-None-Match: *` and `If-Match` are atomic here as they are on AWS: the check and the
// write happen in one synchronous step after the simulated network hop, so concurrent callers interleave at the hop
// and never inside the check.
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { PreconditionFailedError } from '../../src/adapters/s3';
import { AwsOperationError } from '../../src/core/errors';
import type { ObjectInfo, PutObjectInput, S3Port } from '../../src/core/ports';

export interface StoredObject {
  body: Buffer;
  /** Quoted hex MD5, as S3 answers for a single-part upload: the same bytes give the same ETag. */
  etag: string;
  contentType?: string;
  metadata: Record<string, string>;
  tags: Record<string, string>;
}

export interface MemoryS3Call {
  op: 'head' | 'get' | 'put' | 'delete' | 'list' | 'getTags' | 'putTags';
  key: string;
  /** For puts and conditional deletes: whether the write happened or lost its precondition. */
  outcome?: 'written' | 'precondition-failed';
  ifNoneMatch?: '*';
  ifMatch?: string;
}

const etagOf = (body: Buffer) => `"${createHash('md5').update(body).digest('hex')}"`;

/** One macrotask: long enough for every other pending caller to reach the same point, as a network round trip would. */
const hop = () => new Promise<void>((resolve) => setImmediate(resolve));

async function bodyBytes(body: PutObjectInput['body']): Promise<Buffer> {
  if (typeof body === 'string') return Buffer.from(body, 'utf8');
  if (Buffer.isBuffer(body)) return body;
  const chunks: Buffer[] = [];
  for await (const chunk of (await body()) as Readable) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string));
  return Buffer.concat(chunks);
}

export class MemoryS3 implements S3Port {
  readonly objects = new Map<string, StoredObject>();
  readonly calls: MemoryS3Call[] = [];
  private readonly afterReadHooks = new Map<string, Array<() => void>>();
  private bucketCreated = true;

  constructor(readonly bucket = 'memory-apps-bucket') {}

  /**
   * Runs `change` once, right after the next read of `key` has taken its snapshot and before the reader can write:
   * the window in which another process's write would make the reader's `If-Match` fail.
   */
  afterNextRead(key: string, change: () => void): void {
    const hooks = this.afterReadHooks.get(key) ?? [];
    hooks.push(change);
    this.afterReadHooks.set(key, hooks);
  }

  /** Writes as another process would, unconditionally and without a hop; for tests to change what a reader sees. */
  putRaw(key: string, body: string | Buffer): StoredObject {
    const bytes = Buffer.isBuffer(body) ? body : Buffer.from(body, 'utf8');
    const stored: StoredObject = { body: bytes, etag: etagOf(bytes), metadata: {}, tags: this.objects.get(key)?.tags ?? {} };
    this.objects.set(key, stored);
    return stored;
  }

  text(key: string): string | undefined {
    return this.objects.get(key)?.body.toString('utf8');
  }

  json<T = unknown>(key: string): T | undefined {
    const t = this.text(key);
    return t === undefined ? undefined : (JSON.parse(t) as T);
  }

  keys(prefix = ''): string[] {
    return [...this.objects.keys()].filter((k) => k.startsWith(prefix)).sort();
  }

  async bucketExists(): Promise<boolean> {
    await hop();
    return this.bucketCreated;
  }

  async createBucket(): Promise<void> {
    await hop();
    this.bucketCreated = true;
  }

  async headObject(key: string): Promise<ObjectInfo | undefined> {
    await hop();
    this.calls.push({ op: 'head', key });
    const o = this.objects.get(key);
    return o ? { size: o.body.length, etag: o.etag, metadata: { ...o.metadata } } : undefined;
  }

  async getObjectText(key: string): Promise<{ text: string; etag?: string } | undefined> {
    await hop();
    this.calls.push({ op: 'get', key });
    const o = this.objects.get(key);
    const snapshot = o ? { text: o.body.toString('utf8'), etag: o.etag } : undefined;
    const hook = this.afterReadHooks.get(key)?.shift();
    hook?.();
    return snapshot;
  }

  async putObject(input: PutObjectInput): Promise<{ etag?: string; versionId?: string }> {
    const body = await bodyBytes(input.body);
    await hop();
    // From here to the write there is no await: the condition and the write are one atomic step.
    const call: MemoryS3Call = {
      op: 'put',
      key: input.key,
      ...(input.ifNoneMatch ? { ifNoneMatch: input.ifNoneMatch } : {}),
      ...(input.ifMatch ? { ifMatch: input.ifMatch } : {}),
    };
    this.calls.push(call);
    const current = this.objects.get(input.key);
    if (input.ifNoneMatch === '*' && current) {
      call.outcome = 'precondition-failed';
      throw new PreconditionFailedError(`s3://${this.bucket}/${input.key} was changed by someone else`);
    }
    if (input.ifMatch !== undefined) {
      // S3 answers 404 NoSuchKey, not 412, to If-Match on an object that does not exist.
      if (!current) throw new AwsOperationError(`PutObject s3://${this.bucket}/${input.key} failed: NoSuchKey`);
      if (current.etag !== input.ifMatch) {
        call.outcome = 'precondition-failed';
        throw new PreconditionFailedError(`s3://${this.bucket}/${input.key} was changed by someone else`);
      }
    }
    const stored: StoredObject = {
      body,
      etag: etagOf(body),
      ...(input.contentType ? { contentType: input.contentType } : {}),
      metadata: { ...(input.metadata ?? {}) },
      // S3 drops an object's tags when it is overwritten without new ones.
      tags: {},
    };
    this.objects.set(input.key, stored);
    call.outcome = 'written';
    return { etag: stored.etag };
  }

  async deleteObject(key: string, options: { ifMatch?: string } = {}): Promise<void> {
    await hop();
    const call: MemoryS3Call = { op: 'delete', key, ...(options.ifMatch ? { ifMatch: options.ifMatch } : {}) };
    this.calls.push(call);
    const current = this.objects.get(key);
    if (options.ifMatch !== undefined && current && current.etag !== options.ifMatch) {
      call.outcome = 'precondition-failed';
      throw new PreconditionFailedError(`s3://${this.bucket}/${key} was changed by someone else`);
    }
    this.objects.delete(key);
  }

  async listKeys(prefix: string): Promise<Array<{ key: string; size: number; etag?: string }>> {
    await hop();
    this.calls.push({ op: 'list', key: prefix });
    return this.keys(prefix).map((key) => {
      const o = this.objects.get(key)!;
      return { key, size: o.body.length, etag: o.etag };
    });
  }

  async getTags(key: string): Promise<Record<string, string>> {
    await hop();
    this.calls.push({ op: 'getTags', key });
    const o = this.objects.get(key);
    if (!o) throw new AwsOperationError(`GetObjectTagging s3://${this.bucket}/${key} failed: NoSuchKey`);
    return { ...o.tags };
  }

  async putTags(key: string, tags: Record<string, string>): Promise<void> {
    await hop();
    this.calls.push({ op: 'putTags', key });
    const o = this.objects.get(key);
    if (!o) throw new AwsOperationError(`PutObjectTagging s3://${this.bucket}/${key} failed: NoSuchKey`);
    o.tags = { ...tags };
  }

  /** Puts that happened (or lost) on `key`, in order. */
  putsOf(key: string): MemoryS3Call[] {
    return this.calls.filter((c) => c.op === 'put' && c.key === key);
  }
}
