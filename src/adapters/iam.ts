import {
  AddUserToGroupCommand, AttachGroupPolicyCommand, AttachRolePolicyCommand, CreateAccessKeyCommand, CreateGroupCommand,
  CreatePolicyCommand, CreatePolicyVersionCommand, CreateRoleCommand, CreateUserCommand, DeleteAccessKeyCommand,
  DeleteGroupCommand, DeletePolicyCommand, DeletePolicyVersionCommand, DeleteRoleCommand, DeleteUserCommand,
  DetachGroupPolicyCommand, DetachRolePolicyCommand, GetPolicyVersionCommand, GetRoleCommand,
  GetUserCommand, type IAMClient, ListAccessKeysCommand, 
  ListPolicyVersionsCommand, RemoveUserFromGroupCommand,
  paginateListPolicies, paginateGetGroup, paginateListAttachedGroupPolicies, paginateListAttachedRolePolicies,
} from '@aws-sdk/client-iam';
import type { AccessKey, IamEntity, IamPolicy, IamPort, PolicyVersion } from '../core/ports';
import { errorName, isTransient, withRetry } from './retry';


const notFound = (err: unknown) => errorName(err) === 'NoSuchEntityException' || errorName(err) === 'NoSuchEntity';

/** A just-created IAM entity may not be visible to the next call yet (IAM is eventually consistent). */
const transientOrNotYetVisible = (err: unknown) => isTransient(err) || notFound(err);

async function getOrUndefined<T>(what: string, fn: () => Promise<T>): Promise<T | undefined> {
  try {
    return await withRetry(what, fn, (err) => !notFound(err) && isTransient(err));
  } catch (err) {
    if (notFound((err as { cause?: unknown }).cause ?? err)) return undefined;
    throw err;
  }
}

/** Tolerates "already gone": the goal of a delete is the absence of the thing. */
async function deleteIdempotent(what: string, fn: () => Promise<unknown>): Promise<void> {
  try {
    await withRetry(what, fn, (err) => !notFound(err) && isTransient(err));
  } catch (err) {
    if (notFound((err as { cause?: unknown }).cause ?? err)) return;
    throw err;
  }
}

export class SdkIamPort implements IamPort {
  constructor(private readonly iam: IAMClient) {}

  async getUser(name: string): Promise<IamEntity | undefined> {
    const res = await getOrUndefined(`GetUser ${name}`, () => this.iam.send(new GetUserCommand({ UserName: name })));
    return res?.User ? { name, arn: res.User.Arn! } : undefined;
  }
  async createUser(name: string): Promise<IamEntity> {
    const res = await withRetry(`CreateUser ${name}`, () => this.iam.send(new CreateUserCommand({ UserName: name })));
    return { name, arn: res.User!.Arn! };
  }
  async deleteUser(name: string): Promise<void> {
    await deleteIdempotent(`DeleteUser ${name}`, () => this.iam.send(new DeleteUserCommand({ UserName: name })));
  }
  async listAccessKeys(user: string): Promise<AccessKey[]> {
    const res = await getOrUndefined(`ListAccessKeys ${user}`, () => this.iam.send(new ListAccessKeysCommand({ UserName: user })));
    return (res?.AccessKeyMetadata ?? []).map((k) => ({ accessKeyId: k.AccessKeyId! }));
  }
  async createAccessKey(user: string): Promise<Required<AccessKey>> {
    const res = await withRetry(`CreateAccessKey for ${user}`, () => this.iam.send(new CreateAccessKeyCommand({ UserName: user })), transientOrNotYetVisible);
    return { accessKeyId: res.AccessKey!.AccessKeyId!, secretAccessKey: res.AccessKey!.SecretAccessKey! };
  }
  async deleteAccessKey(user: string, accessKeyId: string): Promise<void> {
    await deleteIdempotent(`DeleteAccessKey ${accessKeyId} of ${user}`, () => this.iam.send(new DeleteAccessKeyCommand({ UserName: user, AccessKeyId: accessKeyId })));
  }

  async getGroup(name: string): Promise<(IamEntity & { members: string[] }) | undefined> {
    return getOrUndefined(`GetGroup ${name}`, async () => {
      let arn = '';
      const members: string[] = [];
      for await (const page of paginateGetGroup({ client: this.iam }, { GroupName: name })) {
        arn = page.Group?.Arn ?? arn;
        for (const u of page.Users ?? []) members.push(u.UserName!);
      }
      return { name, arn, members };
    });
  }
  async createGroup(name: string): Promise<IamEntity> {
    const res = await withRetry(`CreateGroup ${name}`, () => this.iam.send(new CreateGroupCommand({ GroupName: name })));
    return { name, arn: res.Group!.Arn! };
  }
  async deleteGroup(name: string): Promise<void> {
    await deleteIdempotent(`DeleteGroup ${name}`, () => this.iam.send(new DeleteGroupCommand({ GroupName: name })));
  }
  async addUserToGroup(user: string, group: string): Promise<void> {
    await withRetry(`AddUserToGroup ${user} ${group}`, () => this.iam.send(new AddUserToGroupCommand({ UserName: user, GroupName: group })), transientOrNotYetVisible);
  }
  async removeUserFromGroup(user: string, group: string): Promise<void> {
    await deleteIdempotent(`RemoveUserFromGroup ${user} ${group}`, () => this.iam.send(new RemoveUserFromGroupCommand({ UserName: user, GroupName: group })));
  }
  async listAttachedGroupPolicies(group: string): Promise<string[]> {
    const arns: string[] = [];
    const res = await getOrUndefined(`ListAttachedGroupPolicies ${group}`, async () => {
      for await (const page of paginateListAttachedGroupPolicies({ client: this.iam }, { GroupName: group })) {
        for (const p of page.AttachedPolicies ?? []) arns.push(p.PolicyArn!);
      }
      return arns;
    });
    return res ?? [];
  }
  async attachGroupPolicy(group: string, policyArn: string): Promise<void> {
    await withRetry(`AttachGroupPolicy ${policyArn} to ${group}`, () => this.iam.send(new AttachGroupPolicyCommand({ GroupName: group, PolicyArn: policyArn })), transientOrNotYetVisible);
  }
  async detachGroupPolicy(group: string, policyArn: string): Promise<void> {
    await deleteIdempotent(`DetachGroupPolicy ${policyArn} from ${group}`, () => this.iam.send(new DetachGroupPolicyCommand({ GroupName: group, PolicyArn: policyArn })));
  }

  async findPolicy(name: string): Promise<IamPolicy | undefined> {
    // Scope Local: customer-managed policies only. "All" (what upstream lists) pages through ~1,000 AWS-managed ones.
    return withRetry(`ListPolicies (looking for ${name})`, async () => {
      for await (const page of paginateListPolicies({ client: this.iam }, { Scope: 'Local' })) {
        const p = page.Policies?.find((x) => x.PolicyName === name);
        if (p) return { name, arn: p.Arn!, defaultVersionId: p.DefaultVersionId! };
      }
      return undefined;
    });
  }
  async createPolicy(name: string, document: string): Promise<IamPolicy> {
    const res = await withRetry(`CreatePolicy ${name}`, () => this.iam.send(new CreatePolicyCommand({ PolicyName: name, PolicyDocument: document })));
    return { name, arn: res.Policy!.Arn!, defaultVersionId: res.Policy!.DefaultVersionId ?? 'v1' };
  }
  async deletePolicy(arn: string): Promise<void> {
    await deleteIdempotent(`DeletePolicy ${arn}`, () => this.iam.send(new DeletePolicyCommand({ PolicyArn: arn })));
  }
  async listPolicyVersions(arn: string): Promise<PolicyVersion[]> {
    const res = await withRetry(`ListPolicyVersions ${arn}`, () => this.iam.send(new ListPolicyVersionsCommand({ PolicyArn: arn })));
    return (res.Versions ?? []).map((v) => ({ versionId: v.VersionId!, isDefault: Boolean(v.IsDefaultVersion), ...(v.CreateDate ? { createDate: v.CreateDate } : {}) }));
  }
  async getPolicyDocument(arn: string, versionId: string): Promise<string> {
    const res = await withRetry(`GetPolicyVersion ${arn} ${versionId}`, () => this.iam.send(new GetPolicyVersionCommand({ PolicyArn: arn, VersionId: versionId })));
    const doc = res.PolicyVersion?.Document ?? '';
    // AWS returns the document URL-encoded (RFC 3986), moto returns it plain: a JSON document starts with "{".
    return doc.trimStart().startsWith('{') ? doc : decodeURIComponent(doc.replace(/\+/g, '%20'));
  }
  /**
   * Not idempotent in IAM: an attempt whose response was lost has made a version already, and its retry makes another
   * (harmless, the next deploy prunes it) or, with 5 versions, fails with LimitExceeded. So before a retry of ours, and
   * on LimitExceeded, look whether the default version already is this document: then that is the version made.
   */
  async createPolicyVersion(arn: string, document: string): Promise<string> {
    let attempts = 0;
    const created = () => this.defaultVersionWith(arn, document).catch(() => undefined);
    try {
      return await withRetry(`CreatePolicyVersion ${arn}`, async () => {
        if (attempts++ > 0) {
          const found = await created();
          if (found) return found;
        }
        const res = await this.iam.send(new CreatePolicyVersionCommand({ PolicyArn: arn, PolicyDocument: document, SetAsDefault: true }));
        return res.PolicyVersion!.VersionId!;
      });
    } catch (err) {
      if (errorName((err as { cause?: unknown }).cause ?? err) !== 'LimitExceededException') throw err;
      const found = await created();
      if (found) return found;
      throw err;
    }
  }

  /** The default version's id when its document is `document` (compared as JSON), else undefined. */
  private async defaultVersionWith(arn: string, document: string): Promise<string | undefined> {
    const current = (await this.listPolicyVersions(arn)).find((v) => v.isDefault);
    if (!current) return undefined;
    const text = await this.getPolicyDocument(arn, current.versionId);
    try {
      return JSON.stringify(JSON.parse(text)) === JSON.stringify(JSON.parse(document)) ? current.versionId : undefined;
    } catch {
      return undefined;
    }
  }
  async deletePolicyVersion(arn: string, versionId: string): Promise<void> {
    await deleteIdempotent(`DeletePolicyVersion ${arn} ${versionId}`, () => this.iam.send(new DeletePolicyVersionCommand({ PolicyArn: arn, VersionId: versionId })));
  }

  async getRole(name: string): Promise<IamEntity | undefined> {
    const res = await getOrUndefined(`GetRole ${name}`, () => this.iam.send(new GetRoleCommand({ RoleName: name })));
    return res?.Role ? { name, arn: res.Role.Arn! } : undefined;
  }
  async createRole(name: string, trustPolicy: string): Promise<IamEntity> {
    const res = await withRetry(`CreateRole ${name}`, () => this.iam.send(new CreateRoleCommand({ RoleName: name, AssumeRolePolicyDocument: trustPolicy })));
    return { name, arn: res.Role!.Arn! };
  }
  async deleteRole(name: string): Promise<void> {
    await deleteIdempotent(`DeleteRole ${name}`, () => this.iam.send(new DeleteRoleCommand({ RoleName: name })));
  }
  async listAttachedRolePolicies(role: string): Promise<string[]> {
    const arns: string[] = [];
    const res = await getOrUndefined(`ListAttachedRolePolicies ${role}`, async () => {
      for await (const page of paginateListAttachedRolePolicies({ client: this.iam }, { RoleName: role })) {
        for (const p of page.AttachedPolicies ?? []) arns.push(p.PolicyArn!);
      }
      return arns;
    });
    return res ?? [];
  }
  async attachRolePolicy(role: string, policyArn: string): Promise<void> {
    await withRetry(`AttachRolePolicy ${policyArn} to ${role}`, () => this.iam.send(new AttachRolePolicyCommand({ RoleName: role, PolicyArn: policyArn })), transientOrNotYetVisible);
  }
  async detachRolePolicy(role: string, policyArn: string): Promise<void> {
    await deleteIdempotent(`DetachRolePolicy ${policyArn} from ${role}`, () => this.iam.send(new DetachRolePolicyCommand({ RoleName: role, PolicyArn: policyArn })));
  }
}
