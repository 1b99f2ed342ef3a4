import type { Readable } from 'node:stream';

/**
 * The ports through which src/core reaches AWS and Mattermost. Adapters in src/adapters implement them with the AWS
 * SDK and fetch; tests may implement them in memory. Every method maps to one or a few API calls, so a reader can
 * count the write calls a core step makes.
 *
 * Conventions: `get*`/`find*` return undefined for "not found" and throw for anything else; writes throw
 * AwsOperationError naming the resource after the SDK's own retries are spent.
 */

// ---------- IAM ----------
export interface IamEntity {
  name: string;
  arn: string;
}

export interface IamPolicy extends IamEntity {
  defaultVersionId: string;
}

export interface PolicyVersion {
  versionId: string;
  isDefault: boolean;
  createDate?: Date;
}

export interface AccessKey {
  accessKeyId: string;
  /** Only present right after creation. */
  secretAccessKey?: string;
}

export interface IamPort {
  getUser(name: string): Promise<IamEntity | undefined>;
  createUser(name: string): Promise<IamEntity>;
  deleteUser(name: string): Promise<void>;
  listAccessKeys(user: string): Promise<AccessKey[]>;
  createAccessKey(user: string): Promise<Required<AccessKey>>;
  deleteAccessKey(user: string, accessKeyId: string): Promise<void>;

  /** The group and the names of its members. */
  getGroup(name: string): Promise<(IamEntity & { members: string[] }) | undefined>;
  createGroup(name: string): Promise<IamEntity>;
  deleteGroup(name: string): Promise<void>;
  addUserToGroup(user: string, group: string): Promise<void>;
  removeUserFromGroup(user: string, group: string): Promise<void>;
  listAttachedGroupPolicies(group: string): Promise<string[]>;
  attachGroupPolicy(group: string, policyArn: string): Promise<void>;
  detachGroupPolicy(group: string, policyArn: string): Promise<void>;

  /** A customer-managed policy found by name. */
  findPolicy(name: string): Promise<IamPolicy | undefined>;
  createPolicy(name: string, document: string): Promise<IamPolicy>;
  deletePolicy(arn: string): Promise<void>;
  listPolicyVersions(arn: string): Promise<PolicyVersion[]>;
  /** The document as JSON text, URL-decoded whatever the endpoint returned (AWS encodes, moto does not). */
  getPolicyDocument(arn: string, versionId: string): Promise<string>;
  createPolicyVersion(arn: string, document: string): Promise<string>;
  deletePolicyVersion(arn: string, versionId: string): Promise<void>;

  getRole(name: string): Promise<IamEntity | undefined>;
  createRole(name: string, trustPolicy: string): Promise<IamEntity>;
  deleteRole(name: string): Promise<void>;
  listAttachedRolePolicies(role: string): Promise<string[]>;
  attachRolePolicy(role: string, policyArn: string): Promise<void>;
  detachRolePolicy(role: string, policyArn: string): Promise<void>;
}

// ---------- S3 ----------
export interface ObjectInfo {
  size: number;
  etag?: string;
  versionId?: string;
  metadata: Record<string, string>;
}

export interface PutObjectInput {
  key: string;
  /** A factory for stream bodies, so that a failed upload can be retried with a fresh stream. */
  body: Buffer | string | (() => Promise<Readable>);
  contentLength: number;
  contentType?: string;
  metadata?: Record<string, string>;
  /**
   * SHA-256 of the body (base64), when known: S3 then checks the bytes it receives against the ones validated, and the
   * SDK sends a stream body as it is, rather than re-encoded as aws-chunked with a checksum of its own in a trailer.
   */
  sha256Base64?: string;
  /** Conditional write: `*` = only if absent; an ETag = only if unchanged. A lost race throws PreconditionFailedError. */
  ifNoneMatch?: '*';
  ifMatch?: string;
}

export interface S3Port {
  readonly bucket: string;
  bucketExists(): Promise<boolean>;
  /** Creates the bucket private: all public access blocked, default encryption on. */
  createBucket(): Promise<void>;
  headObject(key: string): Promise<ObjectInfo | undefined>;
  getObjectText(key: string): Promise<{ text: string; etag?: string } | undefined>;
  putObject(input: PutObjectInput): Promise<{ etag?: string; versionId?: string }>;
  /**
   * A missing key is not an error. With `ifMatch`, deletes only the object of that ETag: another one throws
   * PreconditionFailedError (code PRECONDITION_FAILED), and none at all is done already.
   */
  deleteObject(key: string, options?: { ifMatch?: string }): Promise<void>;
  listKeys(prefix: string): Promise<ListedObject[]>;
  getTags(key: string): Promise<Record<string, string>>;
  putTags(key: string, tags: Record<string, string>): Promise<void>;
  /**
   * Deletes many keys in as few calls as S3 allows (DeleteObjects, 1,000 a call); a missing key is not an error.
   * Optional so that in-memory ports need not have it: callers fall back to deleteObject one key at a time.
   */
  deleteObjects?(keys: string[]): Promise<void>;
}

export interface ListedObject {
  key: string;
  size: number;
  etag?: string;
  /** As ListObjectsV2 answers it (second precision). */
  lastModified?: Date;
}

// ---------- Lambda ----------
export interface FunctionInfo {
  name: string;
  arn: string;
  codeSha256: string;
  handler: string;
  runtime: string;
  role: string;
  environment: Record<string, string>;
  state?: string;
  lastUpdateStatus?: string;
  stateReason?: string;
}

export interface FunctionSpec {
  name: string;
  handler: string;
  runtime: string;
  role: string;
  environment?: Record<string, string>;
  code: { s3Bucket: string; s3Key: string };
}

export interface LambdaPort {
  getFunction(name: string): Promise<FunctionInfo | undefined>;
  createFunction(spec: FunctionSpec): Promise<FunctionInfo>;
  updateFunctionCode(name: string, code: { s3Bucket: string; s3Key: string }): Promise<FunctionInfo>;
  updateFunctionConfiguration(name: string, config: { handler: string; runtime: string; role: string; environment: Record<string, string> }): Promise<FunctionInfo>;
  /**
   * Waits for State=Active (after create) or LastUpdateStatus=Successful (after update); throws naming the function
   * otherwise. `answered`: what the create or update call answered, which needs no GetFunction when it says ready.
   */
  waitUntilReady(name: string, after: 'create' | 'update', answered?: FunctionInfo): Promise<FunctionInfo>;
  deleteFunction(name: string): Promise<void>;
  /** Invokes synchronously; returns the payload text. */
  invoke(name: string, payload: string): Promise<{ payload: string; functionError?: string }>;
  /** Names of the functions (in the client's region, all pages) whose execution role is `roleArn`. */
  listFunctionsUsingRole(roleArn: string): Promise<string[]>;
}

// ---------- Mattermost ----------
export interface MattermostPort {
  /** `POST …/update-app-listing` with the manifest flattened, `Replace` and `add_deploys` (appsctl.md §2 step 10). */
  updateAppListing(manifest: Record<string, unknown>, opts: { replace: boolean; addDeploys: string[] }): Promise<unknown>;
  /** `POST …/install-app` (appsctl.md §2 step 11). */
  installApp(appId: string, deployType: string): Promise<unknown>;
}
