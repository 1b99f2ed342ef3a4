// The pure parts of the app lifecycle: shrinking the invoke policy, and what "newest" means for prune.
import { describe, expect, it } from 'vitest';
import { newestFirst } from '../../src/core/lifecycle';
import { ALLOW_LAMBDA_SID, initialInvokePolicy, lambdaNameOfArn, removeLambdaArns, renderPolicy, type PolicyDocument } from '../../src/core/policy';

const arn = (name: string) => `arn:aws:lambda:us-east-1:123456789012:function:${name}`;
const withLambda = (names: string[]): PolicyDocument => {
  const initial = initialInvokePolicy('bucket');
  return { ...initial, Statement: [...initial.Statement, { Sid: ALLOW_LAMBDA_SID, Effect: 'Allow', Action: ['lambda:InvokeFunction'], Resource: names.map(arn) }] };
};

describe('removeLambdaArns', () => {
  it('drops the matching ARNs and keeps the rest in order, in the Go rendering deploy writes', () => {
    // Prepare
    const doc = withLambda(['app_v1_a', 'app_v2_a', 'app_v1_b']);

    // Act
    const shrunk = removeLambdaArns(doc, (a) => lambdaNameOfArn(a)?.startsWith('app_v1_') ?? false);

    // Assess
    expect(shrunk?.removed).toEqual([arn('app_v1_a'), arn('app_v1_b')]);
    expect(shrunk?.text).toBe(renderPolicy(withLambda(['app_v2_a'])));
  });

  it('drops AllowLambda as a whole when it would be left empty, since IAM refuses an empty Resource', () => {
    // Act
    const shrunk = removeLambdaArns(withLambda(['app_v1_a']), () => true);

    // Assess
    expect(shrunk?.doc).toEqual(initialInvokePolicy('bucket'));
  });

  it.each([
    { case: 'nothing matches', doc: withLambda(['app_v2_a']) },
    { case: 'there is no AllowLambda statement', doc: initialInvokePolicy('bucket') },
  ])('answers undefined (no new policy version) when $case', ({ doc }) => {
    // Act
    const shrunk = removeLambdaArns(doc, (a) => a.includes('app_v1_'));

    // Assess
    expect(shrunk).toBeUndefined();
  });

  it.each([
    { value: arn('app_v1_main'), name: 'app_v1_main' },
    { value: `${arn('app_v1_main')}:live`, name: 'app_v1_main' },
    { value: 'arn:aws:s3:::bucket/static/*', name: undefined },
  ])('reads the function name of $value', ({ value, name }) => {
    // Act / Assess
    expect(lambdaNameOfArn(value)).toBe(name);
  });
});

describe('newestFirst', () => {
  it.each([
    { case: 'by when the manifest was written', a: { version: 'v9', deployedAt: '2024-01-01T00:00:00Z' }, b: { version: 'v1', deployedAt: '2024-01-02T00:00:00Z' }, first: 'v1' },
    { case: 'ties by version, numbers as numbers', a: { version: 'v9', deployedAt: '2024-01-01T00:00:00Z' }, b: { version: 'v10', deployedAt: '2024-01-01T00:00:00Z' }, first: 'v10' },
    { case: 'a version without a date last', a: { version: 'v2' }, b: { version: 'v1', deployedAt: '2024-01-01T00:00:00Z' }, first: 'v1' },
  ])('orders $case', ({ a, b, first }) => {
    // Act
    const sorted = [a, b].sort(newestFirst);

    // Assess
    expect(sorted[0]!.version).toBe(first);
  });
});
