import { createHash, randomUUID } from 'node:crypto';
import { ConflictError, NotFoundError, type ErrorDetail } from './errors';
import type { S3Port } from './ports';
import type { DeployPlan, DeployResult, ProgressEvent } from './deploy';
import { withKeyLock } from './key-lock';

/**
 * Deployment records (design.md §3): one JSON object per deployment under the private `deployments/` prefix of the
 * apps bucket, created with `If-None-Match: *` and updated with `If-Match: <etag>`, so two writers can never both
 * win. The invoke user's policy grants `manifests/*` and `static/*` only, so it never reaches them.
 */
export type DeploymentState = 'pending' | 'running' | 'succeeded' | 'failed';
export type DeploymentSource = 'api' | 's3-event' | 'reconcile';

export interface DeploymentOptions {
  install: boolean;
  update: boolean;
  policy: string;
  executeRole: string;
  /** Names only: values may be secrets and travel to the worker in its invocation, never into a record. */
  envKeys: string[];
}

export interface DeploymentRecord {
  id: string;
  state: DeploymentState;
  source: DeploymentSource;
  bundle: { bucket: string; key: string; versionId?: string; etag?: string };
  options: DeploymentOptions;
  app?: { appId: string; version: string };
  createdAt: string;
  updatedAt: string;
  steps: Array<ProgressEvent & { at: string }>;
  plan?: DeployPlan;
  result?: DeployResult;
  error?: { code: string; message: string; details: ErrorDetail[] };
  warnings: string[];
}

/** The last deployment of an app, kept beside the records so that `GET /apps/{appId}` needs no scan. */
export interface AppSummary {
  appId: string;
  /** Absent when only the CLI (which keeps no records) has deployed or rolled back the app. */
  lastDeployment?: { id: string; state: DeploymentState; version?: string; at: string };
  /** The version last listed in Mattermost by any of our tools (deploy, auto-deploy, rollback). */
  listedVersion?: string;
  installed: boolean;
}

export const DEPLOYMENTS_PREFIX = 'deployments/';
const recordKey = (id: string) => `${DEPLOYMENTS_PREFIX}${id}.json`;
const claimKey = (hash: string) => `${DEPLOYMENTS_PREFIX}claims/${hash}.json`;
const appKey = (appId: string) => `${DEPLOYMENTS_PREFIX}apps/${encodeURIComponent(appId)}.json`;

const ID_PATTERN = /^[0-9a-f-]{36}$/;

export function isDeploymentId(id: string): boolean {
  return ID_PATTERN.test(id);
}

function isPreconditionFailed(err: unknown): boolean {
  return (err as { code?: string })?.code === 'PRECONDITION_FAILED';
}

export class DeploymentStore {
  constructor(
    private readonly s3: S3Port,
    private readonly now: () => Date = () => new Date(),
  ) {}

  async create(input: Pick<DeploymentRecord, 'source' | 'bundle' | 'options'> & { id?: string }): Promise<DeploymentRecord> {
    const at = this.now().toISOString();
    const record: DeploymentRecord = { id: input.id ?? randomUUID(), state: 'pending', source: input.source, bundle: input.bundle, options: input.options, createdAt: at, updatedAt: at, steps: [], warnings: [] };
    const key = recordKey(record.id);
    await withKeyLock(key, () => this.s3.putObject({ key, body: JSON.stringify(record), contentLength: Buffer.byteLength(JSON.stringify(record)), contentType: 'application/json', ifNoneMatch: '*' }));
    return record;
  }

  async get(id: string): Promise<DeploymentRecord | undefined> {
    if (!isDeploymentId(id)) return undefined;
    const obj = await this.s3.getObjectText(recordKey(id));
    return obj ? (JSON.parse(obj.text) as DeploymentRecord) : undefined;
  }

  /**
   * Read-modify-write with `If-Match`: a concurrent writer makes this one re-read and re-apply `change`, so no update
   * is lost. `change` returns undefined to leave the record as it is.
   */
  async update(id: string, change: (r: DeploymentRecord) => DeploymentRecord | undefined): Promise<DeploymentRecord> {
    const result = await this.rewrite<DeploymentRecord>(
      recordKey(id),
      (current) => {
        if (!current) throw new NotFoundError(`deployment ${id} not found`);
        const next = change(current);
        return next && { ...next, updatedAt: this.now().toISOString() };
      },
      `deployment ${id} is being updated by another writer; gave up after 8 attempts`,
    );
    return result!;
  }

  /**
   * Claims an S3 event identity (bucket/key/versionId, or ETag + sequencer) once: the first caller gets true, every
   * duplicate false. The claim names the deployment it started.
   */
  async claim(identity: string, deploymentId: string): Promise<boolean> {
    const hash = createHash('sha256').update(identity).digest('hex');
    const key = claimKey(hash);
    const body = JSON.stringify({ identity, deploymentId, at: this.now().toISOString() });
    return withKeyLock(key, async () => {
      try {
        await this.s3.putObject({ key, body, contentLength: Buffer.byteLength(body), contentType: 'application/json', ifNoneMatch: '*' });
        return true;
      } catch (err) {
        if (isPreconditionFailed(err)) return false;
        throw err;
      }
    });
  }

  async getAppSummary(appId: string): Promise<AppSummary | undefined> {
    const obj = await this.s3.getObjectText(appKey(appId));
    return obj ? (JSON.parse(obj.text) as AppSummary) : undefined;
  }

  /**
   * Records that `version` is the one Mattermost lists now. Reads first and writes only on a change, so that a
   * deploy of an unchanged bundle stays free of writes.
   */
  async recordListed(appId: string, version: string, installed = false): Promise<void> {
    const current = await this.getAppSummary(appId);
    if (current?.listedVersion === version && (current.installed || !installed)) return;
    await this.updateAppSummary(appId, (s) => ({ ...s, appId, listedVersion: version, installed: installed || (s?.installed ?? false) }));
  }

  async updateAppSummary(appId: string, change: (s: AppSummary | undefined) => AppSummary): Promise<AppSummary> {
    const result = await this.rewrite<AppSummary>(appKey(appId), change, `the summary of ${appId} is being updated by another writer`);
    return result!;
  }

  /**
   * Read-modify-write of one JSON object, conditional on what was read (`If-Match` its ETag, or `If-None-Match: *`
   * when it did not exist): a concurrent writer makes this one re-read and re-apply `change`, so no update is lost.
   * `change` returns undefined to leave the object as it is.
   */
  private async rewrite<T>(key: string, change: (current: T | undefined) => T | undefined, busy: string): Promise<T | undefined> {
    return withKeyLock(key, async () => {
      for (let attempt = 0; attempt < 8; attempt++) {
        const obj = await this.s3.getObjectText(key);
        const current = obj ? (JSON.parse(obj.text) as T) : undefined;
        const next = change(current);
        if (next === undefined) return current;
        const body = JSON.stringify(next);
        const condition = obj ? (obj.etag ? { ifMatch: obj.etag } : {}) : { ifNoneMatch: '*' as const };
        try {
          await this.s3.putObject({ key, body, contentLength: Buffer.byteLength(body), contentType: 'application/json', ...condition });
          return next;
        } catch (err) {
          if (!isPreconditionFailed(err)) throw err;
        }
      }
      throw new ConflictError(busy);
    });
  }
}
