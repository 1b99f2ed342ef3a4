// Prepares an AWS account in moto the way `appsctl aws init --create` leaves it, with plain SDK calls, so that
// deploy tests do not depend on the init code they are not about.
import { AttachRolePolicyCommand, CreatePolicyCommand, CreateRoleCommand } from '@aws-sdk/client-iam';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { EXECUTE_ROLE_TRUST_POLICY, initialInvokePolicy, renderPolicy } from '../../src/core/policy';
import { DEFAULTS } from '../../src/core/config';
import { iamClient, s3Client } from './aws';

export interface PreparedAccount {
  bucket: string;
  roleArn: string;
  policyArn: string;
}

export async function prepareAccount(bucket = DEFAULTS.bucket, policyDocument?: string): Promise<PreparedAccount> {
  const s3 = s3Client();
  const iam = iamClient();
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  const role = await iam.send(new CreateRoleCommand({ RoleName: DEFAULTS.executeRole, AssumeRolePolicyDocument: EXECUTE_ROLE_TRUST_POLICY }));
  await iam.send(new AttachRolePolicyCommand({ RoleName: DEFAULTS.executeRole, PolicyArn: DEFAULTS.lambdaExecutionPolicyArn }));
  const policy = await iam.send(
    new CreatePolicyCommand({ PolicyName: DEFAULTS.policy, PolicyDocument: policyDocument ?? renderPolicy(initialInvokePolicy(bucket)) }),
  );
  s3.destroy();
  iam.destroy();
  return { bucket, roleArn: role.Role!.Arn!, policyArn: policy.Policy!.Arn! };
}
