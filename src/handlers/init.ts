import { z } from 'zod';
import { DEFAULTS } from '../core/config';
import { API_SPELLING, IAM_NAME_LIMITS, IAM_NAME_PATTERN, initialize } from '../core/init';
import { SdkIamPort } from '../adapters/iam';
import { SdkS3Port } from '../adapters/s3';
import { httpHandler } from './http/stack';
import { getInitRuntime, logger } from './http/runtime';

const iamName = (max: number, fallback: string) =>
  z.string().min(1).max(max).regex(IAM_NAME_PATTERN, 'must be letters, digits and +=,.@_- only').default(fallback);

/** `POST /init` body: the options of `appsctl aws init`, all optional. Unknown fields are refused (a typo is a 400, not a default). */
export const initBody = z
  .object({
    create: z.boolean().default(false),
    createAccessKey: z.boolean().default(false),
    newAccessKey: z.boolean().default(false),
    user: iamName(IAM_NAME_LIMITS.user, DEFAULTS.user),
    group: iamName(IAM_NAME_LIMITS.group, DEFAULTS.group),
    policy: iamName(IAM_NAME_LIMITS.policy, DEFAULTS.policy),
    executeRole: iamName(IAM_NAME_LIMITS.executeRole, DEFAULTS.executeRole),
  })
  .strict();

export type InitBody = z.infer<typeof initBody>;

/**
 * `aws init` over HTTP (design.md §3), with the control plane's own role credentials and bucket. A new access key's
 * secret is in this response only: the shared stack logs neither bodies nor headers, and the core logs key IDs only.
 */
export const handler = httpHandler({ access: 'admin', body: initBody, runtime: getInitRuntime }, async ({ body, runtime }) => {
  const { config, aws } = runtime;
  const result = await initialize(
    { iam: new SdkIamPort(aws.iam), s3: new SdkS3Port(aws.s3, config.bucket, config.region) },
    { ...body, bucket: config.bucket, spelling: API_SPELLING },
    logger,
  );
  return { status: 200, body: result };
});
