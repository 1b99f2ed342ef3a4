import { goMarshal } from './gojson';
import { PolicyLimitError } from './errors';

/**
 * IAM documents of appsctl.md §1–§2, and the invoke-policy growth rule of design.md §2.
 */
export const IAM_POLICY_MAX_CHARS = 6144;
export const IAM_POLICY_MAX_VERSIONS = 5;
export const ALLOW_LAMBDA_SID = 'AllowLambda';

/** Go struct order: Version, Statement; statements Sid, Effect, Action, Resource (no omitempty). */
export interface PolicyStatement {
  Sid: string;
  Effect: string;
  Action: string[];
  Resource: string[];
}

export interface PolicyDocument {
  Version: string;
  Statement: PolicyStatement[];
}

/** The initial invoke policy document, `{{.Bucket}}` substituted (appsctl.md §1). */
export function initialInvokePolicy(bucket: string): PolicyDocument {
  return {
    Version: '2012-10-17',
    Statement: [
      { Sid: 'AllowS3', Effect: 'Allow', Action: ['s3:GetObject'], Resource: [`arn:aws:s3:::${bucket}/manifests/*`, `arn:aws:s3:::${bucket}/static/*`] },
      { Sid: 'AllowS3list', Effect: 'Allow', Action: ['s3:ListBucket'], Resource: [`arn:aws:s3:::${bucket}`] },
    ],
  };
}

/** The execute role's trust policy: Lambda may assume it. `Action` is a plain string, as upstream writes it. */
export const EXECUTE_ROLE_TRUST_POLICY = JSON.stringify({
  Version: '2012-10-17',
  Statement: [{ Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' }, Action: 'sts:AssumeRole' }],
});

export function renderPolicy(doc: PolicyDocument): string {
  return goMarshal({
    Version: doc.Version,
    Statement: doc.Statement.map((s) => ({ Sid: s.Sid, Effect: s.Effect, Action: s.Action, Resource: s.Resource })),
  });
}

const asArray = (v: unknown): string[] => (Array.isArray(v) ? v.map(String) : typeof v === 'string' ? [v] : []);

/**
 * Decodes a policy document like upstream's typed decode, but tolerant: a plain-string Action/Resource becomes an
 * array instead of failing. Fields upstream drops (Principal, Condition, NotAction) are dropped here too, since the
 * rewrite must produce what upstream would; `droppedFields` reports them so the caller can warn.
 */
export function parsePolicy(text: string): { doc: PolicyDocument; droppedFields: string[] } {
  const raw = JSON.parse(text) as { Version?: unknown; Statement?: unknown };
  const statements = Array.isArray(raw.Statement) ? raw.Statement : raw.Statement ? [raw.Statement] : [];
  const dropped = new Set<string>();
  const doc: PolicyDocument = {
    Version: typeof raw.Version === 'string' ? raw.Version : '',
    Statement: statements.map((s: Record<string, unknown>) => {
      for (const k of Object.keys(s)) if (!['Sid', 'Effect', 'Action', 'Resource'].includes(k)) dropped.add(k);
      return { Sid: typeof s.Sid === 'string' ? s.Sid : '', Effect: String(s.Effect ?? ''), Action: asArray(s.Action), Resource: asArray(s.Resource) };
    }),
  };
  return { doc, droppedFields: [...dropped] };
}

/** Whether the invoke policy still grants what the Mattermost server needs from S3 (appsctl.md §6). */
export function missingS3Grants(doc: PolicyDocument, bucket: string): string[] {
  const grants = (action: string, resource: string) =>
    doc.Statement.some((s) => s.Effect === 'Allow' && (s.Action.includes(action) || s.Action.includes('s3:*')) && s.Resource.includes(resource));
  const wanted: Array<[string, string]> = [
    ['s3:GetObject', `arn:aws:s3:::${bucket}/manifests/*`],
    ['s3:GetObject', `arn:aws:s3:::${bucket}/static/*`],
    ['s3:ListBucket', `arn:aws:s3:::${bucket}`],
  ];
  return wanted.filter(([a, r]) => !grants(a, r)).map(([a, r]) => `${a} on ${r}`);
}

/**
 * AddResourcesToPolicyDocument (appsctl.md §2 step 7): appends each ARN not yet in the `AllowLambda` statement
 * (created at the end if absent). Returns undefined when nothing was added, so no new version is made. With
 * `prune`, ARNs in AllowLambda for which `prune(arn)` is true are removed first (functions that no longer exist).
 * Fails before any change when the new document would exceed IAM's size limit.
 */
export function addLambdaArns(doc: PolicyDocument, arns: string[], opts: { prune?: (arn: string) => boolean; policyName?: string } = {}): { doc: PolicyDocument; text: string; added: string[]; removed: string[] } | undefined {
  const index = doc.Statement.findIndex((s) => s.Sid === ALLOW_LAMBDA_SID);
  const current = index >= 0 ? doc.Statement[index]! : { Sid: ALLOW_LAMBDA_SID, Effect: 'Allow', Action: ['lambda:InvokeFunction'], Resource: [] };
  const removed = opts.prune ? current.Resource.filter((r) => opts.prune!(r)) : [];
  const kept = current.Resource.filter((r) => !removed.includes(r));
  const added = [...new Set(arns)].filter((a) => !kept.includes(a));
  if (added.length === 0 && removed.length === 0) return undefined;
  const statement = { ...current, Resource: [...kept, ...added] };
  const next: PolicyDocument = {
    Version: doc.Version,
    Statement: index >= 0 ? doc.Statement.map((s, i) => (i === index ? statement : s)) : [...doc.Statement, statement],
  };
  const text = renderPolicy(next);
  // IAM counts the document without whitespace; renderPolicy writes none.
  if (text.length > IAM_POLICY_MAX_CHARS) {
    throw new PolicyLimitError(
      `the invoke policy${opts.policyName ? ` ${opts.policyName}` : ''} would be ${text.length} characters with ${added.length} new function ARN(s), over IAM's limit of ${IAM_POLICY_MAX_CHARS}; ` +
        `remove versions of apps that are no longer used (their functions' ARNs) or use another invoke policy (--policy)`,
    );
  }
  return { doc: next, text, added, removed };
}

/** The function name of a Lambda ARN (qualified or not), or undefined for any other resource. */
export function lambdaNameOfArn(arn: string): string | undefined {
  const parts = arn.split(':');
  return parts[2] === 'lambda' && parts[5] === 'function' && parts[6] ? parts[6] : undefined;
}

/**
 * The inverse of addLambdaArns: drops from `AllowLambda` every resource for which `remove(arn)` is true. Returns
 * undefined when nothing matched, so no new version is made. A statement left with no resource is dropped as a whole,
 * since IAM refuses an empty Resource; upstream's AddResourcesToPolicyDocument recreates it when it next needs it.
 */
export function removeLambdaArns(doc: PolicyDocument, remove: (arn: string) => boolean): { doc: PolicyDocument; text: string; removed: string[] } | undefined {
  const index = doc.Statement.findIndex((s) => s.Sid === ALLOW_LAMBDA_SID);
  if (index < 0) return undefined;
  const current = doc.Statement[index]!;
  const removed = current.Resource.filter((r) => remove(r));
  if (removed.length === 0) return undefined;
  const kept = current.Resource.filter((r) => !removed.includes(r));
  const next: PolicyDocument = {
    Version: doc.Version,
    Statement: kept.length > 0 ? doc.Statement.map((s, i) => (i === index ? { ...current, Resource: kept } : s)) : doc.Statement.filter((_, i) => i !== index),
  };
  return { doc: next, text: renderPolicy(next), removed };
}
