import { DEFAULTS } from './config';
import { BadRequestError, ConflictError, NotFoundError, type ErrorDetail } from './errors';
import { goQuote as quote } from './gojson';
import type { Logger } from './logger';
import { EXECUTE_ROLE_TRUST_POLICY, initialInvokePolicy, missingS3Grants, parsePolicy, renderPolicy } from './policy';
import type { IamEntity, IamPolicy, IamPort, LambdaPort, S3Port } from './ports';

/**
 * `appsctl aws init` / `POST /init` and `appsctl aws clean` (appsctl.md §1), reworked to be safe to run again:
 * everything is looked up first, nothing is written when a lookup shows a problem, and a write is made only for
 * what is actually missing. An existing resource is never modified (its attachments are completed, as upstream
 * did unconditionally).
 */

/** IAM allows this many access keys per user. */
export const MAX_ACCESS_KEYS_PER_USER = 2;

/** IAM's name rules (the character set is the same for users, groups, policies and roles; lengths differ). */
export const IAM_NAME_LIMITS = { user: 64, group: 128, policy: 128, executeRole: 64 } as const;
export const IAM_NAME_PATTERN = /^[\w+=,.@-]+$/;

/** How the caller spells the options in its error hints: the CLI's flags or the API's body fields. */
export interface OptionSpelling {
  create: string;
  newAccessKey: string;
}
export const CLI_SPELLING: OptionSpelling = { create: '--create', newAccessKey: '--new-access-key' };
export const API_SPELLING: OptionSpelling = { create: '"create": true', newAccessKey: '"newAccessKey": true' };

export interface IamNames {
  user: string;
  group: string;
  policy: string;
  executeRole: string;
}

export interface InitOptions extends IamNames {
  bucket: string;
  /** Create what is missing (the bucket too); otherwise a missing resource is an error. */
  create: boolean;
  /** Create an access key when the user has none yet. */
  createAccessKey: boolean;
  /** Create an access key even when the user already has one (fails up front at IAM's limit). */
  newAccessKey: boolean;
  spelling?: OptionSpelling;
}

export interface InitResult {
  user: IamEntity & { created: boolean };
  group: IamEntity & { created: boolean; userAdded: boolean; policyAttached: boolean };
  policy: IamEntity & { created: boolean };
  bucket: { name: string; created: boolean };
  executeRole: IamEntity & { created: boolean; policyAttached: boolean };
  /** Present only when a key was created by this run; the secret is not kept anywhere else. */
  accessKey?: { accessKeyId: string; secretAccessKey: string };
  /** IDs of the keys the user had before this run; looked up only when a key was asked for, otherwise empty. */
  existingAccessKeyIds: string[];
  /** One line per write this run made, in order; empty on a run that found everything in place. */
  changes: string[];
  warnings: string[];
}

export const defaultIamNames: IamNames = {
  user: DEFAULTS.user,
  group: DEFAULTS.group,
  policy: DEFAULTS.policy,
  executeRole: DEFAULTS.executeRole,
};

/** Fails before any AWS call on a name IAM would refuse, so that the error names the option rather than an API. */
export function checkIamNames(names: IamNames): void {
  const details: ErrorDetail[] = [];
  for (const key of Object.keys(IAM_NAME_LIMITS) as Array<keyof IamNames>) {
    const value = names[key];
    const max = IAM_NAME_LIMITS[key];
    if (value.length === 0 || value.length > max || !IAM_NAME_PATTERN.test(value)) {
      details.push({ path: key, message: `${JSON.stringify(value)} is not a valid IAM name (1–${max} characters of letters, digits and +=,.@_-)` });
    }
  }
  if (details.length > 0) throw new BadRequestError(`invalid IAM name${details.length > 1 ? 's' : ''}: ${details.map((d) => `${d.path} ${d.message}`).join('; ')}`, { details });
}

function deleteKeyHint(user: string): string {
  return `aws iam delete-access-key --user-name ${user} --access-key-id <id>`;
}

interface Found {
  bucketExists: boolean;
  user?: IamEntity;
  keyIds: string[];
  group?: IamEntity & { members: string[] };
  groupPolicies: string[];
  policy?: IamPolicy;
  role?: IamEntity;
  rolePolicies: string[];
}

/**
 * Looks everything up and creates only what is missing. Reads come first, all of them, so that a missing resource
 * without `create`, or an access-key request IAM would refuse, fails before the first write. The access key is
 * created last: a failure anywhere earlier then never leaves behind a key whose secret nobody saw.
 */
export async function initialize(ports: { iam: IamPort; s3: S3Port }, opts: InitOptions, logger: Logger): Promise<InitResult> {
  const { iam, s3 } = ports;
  const spelling = opts.spelling ?? CLI_SPELLING;
  checkIamNames(opts);
  const wantKey = opts.createAccessKey || opts.newAccessKey;

  // ---- read phase ----
  const user = await iam.getUser(opts.user);
  const keyIds = user && wantKey ? (await iam.listAccessKeys(opts.user)).map((k) => k.accessKeyId) : [];
  if (opts.newAccessKey && keyIds.length >= MAX_ACCESS_KEYS_PER_USER) {
    throw new ConflictError(
      `user "${opts.user}" already has ${keyIds.length} access keys (${keyIds.join(', ')}), the most IAM allows per user; ` +
        `delete one first (${deleteKeyHint(opts.user)}) and run again. Nothing was changed.`,
      { details: keyIds.map((id) => ({ path: 'accessKey', message: id })) },
    );
  }
  const found: Found = {
    bucketExists: await s3.bucketExists(),
    ...(user ? { user } : {}),
    keyIds,
    groupPolicies: [],
    rolePolicies: [],
  };
  const group = await iam.getGroup(opts.group);
  if (group) {
    found.group = group;
    found.groupPolicies = await iam.listAttachedGroupPolicies(opts.group);
  }
  const policy = await iam.findPolicy(opts.policy);
  if (policy) found.policy = policy;
  const role = await iam.getRole(opts.executeRole);
  if (role) {
    found.role = role;
    found.rolePolicies = await iam.listAttachedRolePolicies(opts.executeRole);
  }

  if (!opts.create) {
    const missing: ErrorDetail[] = [];
    if (!found.bucketExists) missing.push({ path: 'bucket', message: `S3 bucket "${opts.bucket}" is not configured` });
    if (!found.user) missing.push({ path: 'user', message: `failed to find user "${opts.user}"` });
    if (!found.group) missing.push({ path: 'group', message: `failed to find group "${opts.group}"` });
    if (!found.policy) missing.push({ path: 'policy', message: `failed to find policy "${opts.policy}"` });
    if (!found.role) missing.push({ path: 'executeRole', message: `failed to find execute role "${opts.executeRole}"` });
    if (missing.length > 0) {
      const them = missing.length === 1 ? 'it' : 'them';
      throw new NotFoundError(`${missing.map((m) => m.message).join('; ')}: pass ${spelling.create} to create ${them}. Nothing was changed.`, { details: missing });
    }
  }

  const warnings: string[] = [];
  const warn = (message: string) => {
    warnings.push(message);
    logger.warn(message);
  };
  if (found.policy) {
    // Reported, not rewritten: the document may carry grants somebody added on purpose.
    const problem = await invokePolicyProblem(iam, found.policy, opts.bucket);
    if (problem) warn(`invoke policy "${opts.policy}" (${found.policy.arn}) ${problem}; it was left unchanged: add the grants, or delete the policy and run init with ${spelling.create} to create it afresh`);
  }

  // ---- write phase: only what the reads found missing ----
  const changes: string[] = [];
  const did = (message: string, fields: Record<string, unknown>) => {
    changes.push(message);
    logger.info(message, fields);
  };
  const using = (what: string, fields: Record<string, unknown>) => logger.info(`using existing ${what}`, fields);

  if (found.bucketExists) using('S3 bucket', { name: opts.bucket });
  else {
    await s3.createBucket();
    did(`created S3 bucket ${opts.bucket} (public access blocked, default encryption on)`, {});
  }

  let userEntity = found.user;
  if (userEntity) using('user', { arn: userEntity.arn });
  else {
    userEntity = await iam.createUser(opts.user);
    did(`created user ${opts.user}`, { arn: userEntity.arn });
  }

  let groupEntity: IamEntity | undefined = found.group;
  if (groupEntity) using('group', { arn: groupEntity.arn });
  else {
    groupEntity = await iam.createGroup(opts.group);
    did(`created group ${opts.group}`, { arn: groupEntity.arn });
  }

  let policyEntity: IamEntity | undefined = found.policy;
  if (policyEntity) using('policy', { arn: policyEntity.arn });
  else {
    policyEntity = await iam.createPolicy(opts.policy, renderPolicy(initialInvokePolicy(opts.bucket)));
    did(`created policy ${opts.policy}`, { arn: policyEntity.arn });
  }

  const policyAttached = !found.groupPolicies.includes(policyEntity.arn);
  if (policyAttached) {
    await iam.attachGroupPolicy(opts.group, policyEntity.arn);
    did(`attached policy ${opts.policy} to group ${opts.group}`, { policy: policyEntity.arn });
  }
  const userAdded = !(found.group?.members ?? []).includes(opts.user);
  if (userAdded) {
    await iam.addUserToGroup(opts.user, opts.group);
    did(`added user ${opts.user} to group ${opts.group}`, {});
  }

  let roleEntity = found.role;
  if (roleEntity) using('execute role', { arn: roleEntity.arn });
  else {
    roleEntity = await iam.createRole(opts.executeRole, EXECUTE_ROLE_TRUST_POLICY);
    did(`created execute role ${opts.executeRole}`, { arn: roleEntity.arn });
  }
  const rolePolicyAttached = !found.rolePolicies.includes(DEFAULTS.lambdaExecutionPolicyArn);
  if (rolePolicyAttached) {
    await iam.attachRolePolicy(opts.executeRole, DEFAULTS.lambdaExecutionPolicyArn);
    did(`attached ${DEFAULTS.lambdaExecutionPolicyArn} to execute role ${opts.executeRole}`, {});
  }

  let accessKey: InitResult['accessKey'];
  if (opts.newAccessKey || (opts.createAccessKey && keyIds.length === 0)) {
    const key = await iam.createAccessKey(opts.user);
    accessKey = { accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey };
    // The ID only: the secret goes to the caller's result and nowhere else.
    did(`created access key ${key.accessKeyId} for user ${opts.user}`, {});
  } else if (opts.createAccessKey) {
    logger.warn(
      `user "${opts.user}" already has access key${keyIds.length > 1 ? 's' : ''} ${keyIds.join(', ')}, whose secret cannot be shown again; no key was created. ` +
        `To get a new one, run again with ${spelling.newAccessKey} (IAM allows ${MAX_ACCESS_KEYS_PER_USER} keys per user)` +
        (keyIds.length >= MAX_ACCESS_KEYS_PER_USER ? ` after deleting one (${deleteKeyHint(opts.user)})` : ''),
    );
  }

  return {
    user: { ...userEntity, created: !found.user },
    group: { ...groupEntity, created: !found.group, userAdded, policyAttached },
    policy: { name: policyEntity.name, arn: policyEntity.arn, created: !found.policy },
    bucket: { name: opts.bucket, created: !found.bucketExists },
    executeRole: { ...roleEntity, created: !found.role, policyAttached: rolePolicyAttached },
    ...(accessKey ? { accessKey } : {}),
    existingAccessKeyIds: keyIds,
    changes,
    warnings,
  };
}

/** What is wrong with an existing invoke policy's default version, for the Mattermost server's reads from S3. */
async function invokePolicyProblem(iam: IamPort, policy: IamPolicy, bucket: string): Promise<string | undefined> {
  const text = await iam.getPolicyDocument(policy.arn, policy.defaultVersionId);
  let missing: string[];
  try {
    missing = missingS3Grants(parsePolicy(text).doc, bucket);
  } catch {
    return `has a default version (${policy.defaultVersionId}) that is not a JSON policy document`;
  }
  return missing.length > 0 ? `does not grant ${missing.join(', ')}` : undefined;
}

/** The summary of appsctl.md §1, byte for byte (Go %q quoting), plus the execute role; then the access-key block when a key was made. */
export function formatInitSummary(result: InitResult): string {
  let out =
    'Ready to deploy AWS Lambda Mattermost Apps!\n\n' +
    `User:\t${quote(result.user.arn)}\n` +
    `Group:\t${quote(result.group.arn)}\n` +
    `Policy:\t${quote(result.policy.arn)}\n` +
    `Bucket:\t${quote(result.bucket.name)}\n` +
    `Execute role:\t${quote(result.executeRole.arn)}\n`;
  if (result.accessKey) {
    out +=
      '\nPlease store the Access Key securely, it will not be viewable again.\n\n' +
      `export MM_APPS_AWS_ACCESS_KEY='${result.accessKey.accessKeyId}'\n` +
      `export MM_APPS_AWS_SECRET_KEY='${result.accessKey.secretAccessKey}'\n`;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// clean

export interface CleanOptions extends IamNames {
  /** The invoke user's key to delete (MM_APPS_AWS_ACCESS_KEY, as upstream). */
  accessKeyId: string;
  bucket: string;
}

export type CleanStatus = 'deleted' | 'absent' | 'kept';

export interface CleanResult {
  user: { name: string; status: CleanStatus };
  group: { name: string; status: CleanStatus };
  policy: { name: string; arn?: string; status: CleanStatus; deletedVersions: string[] };
  /** IDs only. */
  deletedAccessKeyIds: string[];
  executeRole: { name: string; arn?: string; status: CleanStatus; usedBy: string[]; detachedPolicies: string[] };
  bucket: { name: string; status: 'kept' };
  warnings: string[];
}

/**
 * Removes what init made, in upstream's order, tolerant of what is already gone. Goes further than upstream: the
 * user's other keys (DeleteUser refuses a user that has any), the policy's old versions (DeletePolicy refuses a
 * policy that has any) and the execute role, unless a function still runs under it. The bucket holds the apps and
 * is never deleted.
 */
export async function clean(ports: { iam: IamPort; lambda: Pick<LambdaPort, 'listFunctionsUsingRole'> }, opts: CleanOptions, logger: Logger): Promise<CleanResult> {
  const { iam, lambda } = ports;
  checkIamNames(opts);
  const warnings: string[] = [];
  const warn = (message: string) => {
    warnings.push(message);
    logger.warn(message);
  };

  const user = await iam.getUser(opts.user);
  const group = await iam.getGroup(opts.group);
  const policy = await iam.findPolicy(opts.policy);

  if (user && group) await iam.removeUserFromGroup(opts.user, opts.group);
  if (group && policy) await iam.detachGroupPolicy(opts.group, policy.arn);

  const deletedAccessKeyIds: string[] = [];
  if (user) {
    const keys = (await iam.listAccessKeys(opts.user)).map((k) => k.accessKeyId);
    if (!keys.includes(opts.accessKeyId)) warn(`access key ${opts.accessKeyId} is not a key of user "${opts.user}" (already deleted?)`);
    // The given key first, as upstream; then the others, since IAM deletes no user that still has keys.
    for (const id of [opts.accessKeyId, ...keys.filter((k) => k !== opts.accessKeyId)]) {
      if (!keys.includes(id)) continue;
      await iam.deleteAccessKey(opts.user, id);
      deletedAccessKeyIds.push(id);
      logger.info(`deleted access key ${id} of user ${opts.user}`);
    }
  }

  const gone = (what: string, name: string) => logger.info(`${what} ${name} does not exist (already deleted?)`);
  if (group) {
    await iam.deleteGroup(opts.group);
    logger.info(`deleted group ${opts.group}`);
  } else gone('group', opts.group);
  if (user) {
    await iam.deleteUser(opts.user);
    logger.info(`deleted user ${opts.user}`);
  } else gone('user', opts.user);

  const deletedVersions: string[] = [];
  if (policy) {
    for (const v of await iam.listPolicyVersions(policy.arn)) {
      if (v.isDefault) continue;
      await iam.deletePolicyVersion(policy.arn, v.versionId);
      deletedVersions.push(v.versionId);
    }
    await iam.deletePolicy(policy.arn);
    logger.info(`deleted policy ${opts.policy}`, { arn: policy.arn, ...(deletedVersions.length > 0 ? { versions: deletedVersions } : {}) });
  } else gone('policy', opts.policy);

  // Lambda is regional: only the functions of the clients' region are seen; IAM's role is global.
  const role = await iam.getRole(opts.executeRole);
  let roleResult: CleanResult['executeRole'] = { name: opts.executeRole, status: 'absent', usedBy: [], detachedPolicies: [] };
  if (!role) gone('execute role', opts.executeRole);
  else {
    const usedBy = await lambda.listFunctionsUsingRole(role.arn);
    if (usedBy.length > 0) {
      roleResult = { name: opts.executeRole, arn: role.arn, status: 'kept', usedBy, detachedPolicies: [] };
      warn(`execute role "${opts.executeRole}" was kept: ${usedBy.length === 1 ? 'function' : 'functions'} ${usedBy.join(', ')} still ${usedBy.length === 1 ? 'uses' : 'use'} it`);
    } else {
      const attached = await iam.listAttachedRolePolicies(opts.executeRole);
      for (const arn of attached) await iam.detachRolePolicy(opts.executeRole, arn);
      await iam.deleteRole(opts.executeRole);
      roleResult = { name: opts.executeRole, arn: role.arn, status: 'deleted', usedBy: [], detachedPolicies: attached };
      logger.info(`deleted execute role ${opts.executeRole}`, { arn: role.arn });
    }
  }

  return {
    user: { name: opts.user, status: user ? 'deleted' : 'absent' },
    group: { name: opts.group, status: group ? 'deleted' : 'absent' },
    policy: { name: opts.policy, ...(policy ? { arn: policy.arn } : {}), status: policy ? 'deleted' : 'absent', deletedVersions },
    deletedAccessKeyIds,
    executeRole: roleResult,
    bucket: { name: opts.bucket, status: 'kept' },
    warnings,
  };
}

export function formatCleanSummary(result: CleanResult): string {
  const line = (label: string, name: string, status: CleanStatus) => `${label}:\t${quote(name)} ${status === 'deleted' ? 'deleted' : status === 'absent' ? 'already gone' : 'kept'}\n`;
  let out = 'Removed the Mattermost Apps IAM set-up.\n\n';
  out += line('User', result.user.name, result.user.status);
  out += `Access keys:\t${result.deletedAccessKeyIds.length > 0 ? `${result.deletedAccessKeyIds.join(', ')} deleted` : 'none to delete'}\n`;
  out += line('Group', result.group.name, result.group.status);
  out += line('Policy', result.policy.name, result.policy.status);
  const role = result.executeRole;
  out += role.status === 'kept' ? `Execute role:\t${quote(role.name)} kept: used by ${role.usedBy.join(', ')}\n` : line('Execute role', role.name, role.status);
  out += `Bucket:\t${quote(result.bucket.name)} kept: it holds the deployed apps; delete it yourself if you no longer need them\n`;
  return out;
}
