import pRetry from 'p-retry';
import { AwsOperationError } from '../core/errors';

/**
 * Retries on top of the SDK's own (which already covers throttling, 5xx and dropped connections): the errors AWS
 * returns while a resource it just created or changed is not visible or settled yet. Bounded and jittered; the final
 * error names the operation and the resource, never a secret.
 */
export interface RetryPolicy {
  retries: number;
  minTimeout: number;
  maxTimeout: number;
}

export const DEFAULT_RETRY: RetryPolicy = {
  retries: Number(process.env.APPS_DEPLOYER_RETRIES ?? 6),
  minTimeout: Number(process.env.APPS_DEPLOYER_RETRY_MIN_MS ?? 400),
  maxTimeout: 15_000,
};

export function errorName(err: unknown): string {
  const e = err as { name?: string; Code?: string; code?: string };
  return e?.name ?? e?.Code ?? e?.code ?? 'Error';
}

export function httpStatus(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
}

/** Throttling, 5xx and network failures: what the SDK retries too, kept here for calls it gave up on. */
export function isTransient(err: unknown): boolean {
  const name = errorName(err);
  const status = httpStatus(err) ?? 0;
  return (
    /Throttl|TooManyRequests|SlowDown|RequestLimitExceeded|ServiceUnavailable|InternalError|RequestTimeout|TimeoutError/i.test(name) ||
    status >= 500 ||
    status === 429 ||
    ['ECONNRESET', 'EPIPE', 'ECONNREFUSED', 'ETIMEDOUT', 'EAI_AGAIN'].includes((err as { code?: string })?.code ?? '')
  );
}

export async function withRetry<T>(
  what: string,
  fn: () => Promise<T>,
  isRetryable: (err: unknown) => boolean = isTransient,
  policy: RetryPolicy = DEFAULT_RETRY,
): Promise<T> {
  try {
    return await pRetry(fn, {
      retries: policy.retries,
      minTimeout: policy.minTimeout,
      maxTimeout: policy.maxTimeout,
      randomize: true,
      shouldRetry: ({ error }) => isRetryable(error),
    });
  } catch (err) {
    if (err instanceof AwsOperationError) throw err;
    throw new AwsOperationError(`${what} failed: ${errorName(err)}: ${(err as Error)?.message ?? String(err)}`, { cause: err });
  }
}
